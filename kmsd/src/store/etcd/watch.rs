//! Keeping an instance's memory current: one watch on the region's
//! prefix hands each committed transaction to the service, and a heartbeat
//! every `--etcd-heartbeat-ms` measures how current that is. When the
//! instance's own heartbeat comes back through the watch, every change
//! committed before it was sent has been applied (a watch delivers in
//! revision order), so the staleness is "now − send time of the last
//! heartbeat seen back".

use super::Shared;
use crate::store::etcd_layout::{Layout, Watched};
use crate::store::{ChangeSink, Mutation};
use etcd_client::{Client, EventType, WatchOptions};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Heartbeats kept waiting for their echo.
const MAX_PENDING: usize = 256;

pub(super) fn spawn(
    rt: &tokio::runtime::Handle,
    client: Client,
    layout: Layout,
    shared: Arc<Shared>,
    sink: Weak<dyn ChangeSink>,
    start: i64,
    heartbeat: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        rt.spawn(watch_loop(
            client.clone(),
            layout.clone(),
            shared.clone(),
            sink,
            start,
        )),
        rt.spawn(heartbeat_loop(client, layout, shared, heartbeat)),
    ]
}

async fn heartbeat_loop(mut c: Client, layout: Layout, shared: Arc<Shared>, every: Duration) {
    let key = layout.heartbeat();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counter = 0u64;
    loop {
        tick.tick().await;
        counter += 1;
        {
            let mut sent = shared.sent.lock().unwrap_or_else(|p| p.into_inner());
            if sent.len() == MAX_PENDING {
                sent.pop_front();
            }
            sent.push_back((counter, Instant::now()));
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let put = c.put(key.clone(), format!("{counter} {ms}"), None);
        if tokio::time::timeout(every * 5, put).await.is_err() {
            tracing::debug!("heartbeat to etcd timed out");
        }
    }
}

/// The changes of one etcd revision.
struct Pending {
    revision: i64,
    batch: Vec<Mutation>,
    region_changed: bool,
}

async fn watch_loop(
    mut c: Client,
    layout: Layout,
    shared: Arc<Shared>,
    sink: Weak<dyn ChangeSink>,
    start: i64,
) {
    let mut next = start;
    let mut backoff = Duration::from_millis(50);
    loop {
        let opts = WatchOptions::new().with_prefix().with_start_revision(next);
        match c.watch(layout.region_prefix(), Some(opts)).await {
            Ok(mut stream) => {
                while let Ok(Some(resp)) = stream.message().await {
                    backoff = Duration::from_millis(50);
                    if resp.compact_revision() > 0 || resp.canceled() {
                        tracing::warn!(
                            compacted = resp.compact_revision(),
                            reason = %kmsd_client::logsafe::escape(resp.cancel_reason()),
                            "etcd watch lost its history; reloading the state"
                        );
                        match reload(&mut c, &layout, &sink).await {
                            Some(at) => next = at + 1,
                            None => return,
                        }
                        break;
                    }
                    let Some(s) = sink.upgrade() else { return };
                    if let Some(last) = apply(&layout, &shared, &*s, resp.events()) {
                        next = last + 1;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %kmsd_client::logsafe::escape(&e.to_string()), "cannot watch etcd; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Hands the events of one watch response to the service, one revision
/// (one transaction) at a time; returns the last revision seen.
fn apply(
    layout: &Layout,
    shared: &Shared,
    sink: &dyn ChangeSink,
    events: &[etcd_client::Event],
) -> Option<i64> {
    let mut cur: Option<Pending> = None;
    let mut last = None;
    for ev in events {
        let Some(kv) = ev.kv() else { continue };
        let rev = kv.mod_revision();
        if cur.as_ref().is_some_and(|p| p.revision != rev) {
            deliver(sink, cur.take());
        }
        let p = cur.get_or_insert_with(|| Pending {
            revision: rev,
            batch: Vec::new(),
            region_changed: false,
        });
        let value = match ev.event_type() {
            EventType::Put => Some(kv.value()),
            EventType::Delete => None,
        };
        match layout.watched(kv.key(), value) {
            Ok(Watched::Change(m)) => {
                p.region_changed = true;
                p.batch.push(m);
            }
            Ok(Watched::Guard) => p.region_changed = true,
            Ok(Watched::Heartbeat(inst, v)) if inst == layout.instance() => {
                if let Some(n) = v.split(' ').next().and_then(|n| n.parse().ok()) {
                    shared.echoed(n);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot apply a change from etcd"),
        }
        last = Some(rev);
    }
    deliver(sink, cur.take());
    last
}

fn deliver(sink: &dyn ChangeSink, p: Option<Pending>) {
    if let Some(p) = p.filter(|p| p.region_changed) {
        sink.changed(p.revision, p.batch);
    }
}

/// A full reload after a compaction: the state at a new revision, handed
/// over whole. Returns the etcd revision it was read at; `None` once the
/// service is gone.
async fn reload(c: &mut Client, layout: &Layout, sink: &Weak<dyn ChangeSink>) -> Option<i64> {
    loop {
        match super::scan_rows(c.clone(), layout.clone()).await {
            Ok((at, loaded, rows)) => {
                sink.upgrade()?.reload(loaded, rows);
                crate::metrics::METRICS.etcd_reloads.inc();
                return Some(at);
            }
            Err(e) => {
                tracing::warn!(error = %kmsd_client::logsafe::escape(&e.to_string()), "cannot reload the state from etcd; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
