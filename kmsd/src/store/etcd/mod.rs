//! The etcd backend: several kmsd instances share one key set. Every
//! mutation is one etcd transaction that commits only if the region's
//! revision key (`P/r/R/rev`) is still at the revision the plan read, so two
//! instances never lose each other's updates; the loser re-plans on the
//! newer state (crate::service::pipeline). Each instance keeps its state
//! in memory and current from a watch ([`watch`]), measures how current by
//! heartbeats, and one instance at a time holds the sweeper's lease
//! ([`leader`]). Layout and codec: [`super::etcd_layout`]; the whole
//! design: docs/STORE.md ("etcd").
//!
//! [`Store`] is synchronous and called from blocking threads, so the
//! backend owns a small runtime of its own; each call is a task there with
//! a deadline, waited for on a channel.

mod config;
mod leader;
mod live;
mod watch;

pub use config::{EtcdConfig, EtcdTls};

use super::etcd_layout::{self as layout, ABORTED, KINDS, Layout, Op};
use super::{AuditRef, ChangeSink, CommitError, Mutation, Row, Store, StoreError};
use etcd_client::{Client, Compare, CompareOp, DeleteOptions, GetOptions, Txn, TxnOp};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Pause between attempts while etcd elects a leader.
const NO_LEADER_PAUSE: Duration = Duration::from_millis(50);

/// Keys read per range request while scanning.
const PAGE: i64 = 512;

/// A failed call to etcd.
#[derive(Debug)]
enum CallError {
    /// Refused before it could apply: nothing was written.
    Refused(String),
    /// The member has no raft leader (an election, or no quorum): refused
    /// before it was proposed, so [`EtcdBackend::run`] tries again until
    /// its deadline.
    NoLeader(String),
    /// Timed out or the connection failed: it may have applied.
    Unknown(String),
}

impl CallError {
    fn message(&self) -> &str {
        match self {
            CallError::Refused(m) | CallError::NoLeader(m) | CallError::Unknown(m) => m,
        }
    }
}

fn classify(e: etcd_client::Error) -> CallError {
    use etcd_client::Error as E;
    let text = kmsd_client::logsafe::escape(&e.to_string()).into_owned();
    match &e {
        E::GRpcStatus(s) => match s.code() {
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled | tonic::Code::Unknown => {
                CallError::Unknown(text)
            }
            // "no leader" is refused before it is proposed; a timeout in
            // raft is not.
            tonic::Code::Unavailable if s.message().contains("no leader") => {
                CallError::NoLeader(text)
            }
            tonic::Code::Unavailable => CallError::Unknown(text),
            _ => CallError::Refused(text),
        },
        E::InvalidArgs(_) | E::InvalidUri(_) | E::Utf8Error(_) => CallError::Refused(text),
        _ => CallError::Unknown(text),
    }
}

/// The connection shared by every region's store: one client, one
/// runtime, one instance id.
pub struct EtcdBackend {
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    client: Client,
    pub config: EtcdConfig,
    instance: String,
    /// The lease of `P/live/<instance>` once claimed (crate::store::etcd::live).
    live_lease: Mutex<Option<i64>>,
}

impl EtcdBackend {
    /// Connects (lazily: the first call finds the endpoints).
    pub fn connect(config: EtcdConfig, instance: &str) -> Result<Arc<EtcdBackend>, StoreError> {
        layout::check_prefix(&config.prefix)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("kmsd-etcd")
            .build()
            .map_err(|e| StoreError(format!("cannot start the etcd runtime: {e}")))?;
        let options = config.connect_options()?;
        let endpoints = config.urls();
        let client = rt
            .block_on(async {
                tokio::time::timeout(config.timeout, Client::connect(endpoints, Some(options)))
                    .await
            })
            .map_err(|_| StoreError(format!("cannot reach etcd at {}", config.describe())))?
            .map_err(|e| StoreError(format!("etcd at {}: {e}", config.describe())))?;
        Ok(Arc::new(EtcdBackend {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
            client,
            config,
            instance: instance.to_string(),
            live_lease: Mutex::new(None),
        }))
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Runs `f` on the backend's runtime within the deadline.
    fn run<T, F>(&self, f: impl FnOnce(Client) -> F) -> Result<T, CallError>
    where
        F: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(self.client.clone());
        let timeout = self.config.timeout;
        self.handle.spawn(async move {
            let r = match tokio::time::timeout(timeout, fut).await {
                Ok(r) => r.map_err(classify),
                Err(_) => Err(CallError::Unknown(format!(
                    "no answer from etcd within {} ms",
                    timeout.as_millis()
                ))),
            };
            let _ = tx.send(r);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(CallError::Refused("the etcd runtime stopped".into())))
    }

    /// Checks (or, on an empty prefix, writes) `P/format`: the deployment's
    /// root key check. An instance with another root key, or a prefix
    /// holding records but no format (an interrupted migration), is
    /// refused before anything is written.
    pub fn check_format(&self, root_check: &str, create: bool) -> Result<(), StoreError> {
        let key = layout::format_key(&self.config.prefix);
        let want = serde_json::json!({ "format": 1, "rootCheck": root_check }).to_string();
        let k = key.clone();
        let found = self
            .run(|mut c| async move { c.get(k, None).await })
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))?;
        let stored = found.kvs().first().map(|kv| kv.value().to_vec());
        let stored = match stored {
            Some(v) => v,
            None if !create => {
                return Err(StoreError(format!(
                    "etcd prefix {} holds no kmsd state",
                    self.config.prefix
                )));
            }
            None => {
                let records = self.count(&layout::regions_prefix(&self.config.prefix))?;
                if records > 0 {
                    return Err(StoreError(format!(
                        "etcd prefix {} holds {records} records but no {key}: an interrupted \
                         migration? Run `kmsd migrate-store` again",
                        self.config.prefix
                    )));
                }
                // Another instance starting now may win: check its value.
                self.put_if_absent(&key, &want)?.into_bytes()
            }
        };
        let v: serde_json::Value =
            serde_json::from_slice(&stored).map_err(|e| StoreError(format!("{key}: {e}")))?;
        if v["rootCheck"].as_str() != Some(root_check) {
            return Err(StoreError(format!(
                "the state under etcd prefix {} was made with another root key; \
                 every instance needs the same --root-key-file",
                self.config.prefix
            )));
        }
        Ok(())
    }

    /// Marks a filled prefix usable (`P/format`), as the last step of a
    /// migration into it.
    pub fn seal_format(&self, root_check: &str) -> Result<(), StoreError> {
        let key = layout::format_key(&self.config.prefix);
        let want = serde_json::json!({ "format": 1, "rootCheck": root_check }).to_string();
        let got = self.put_if_absent(&key, &want)?;
        if got != want {
            return Err(StoreError(format!(
                "{key} was written by someone else meanwhile"
            )));
        }
        Ok(())
    }

    /// Writes `key` unless it exists; returns the value it holds after.
    pub fn put_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let (k, v) = (key.to_string(), value.to_string());
        let r = self
            .run(|mut c| async move {
                let t = Txn::new()
                    .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(k.clone(), v, None)])
                    .or_else([TxnOp::get(k, None)]);
                c.txn(t).await
            })
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))?;
        if r.succeeded() {
            return Ok(value.to_string());
        }
        Ok(first_get(&r)
            .and_then(|kv| std::str::from_utf8(kv.value()).ok().map(str::to_string))
            .unwrap_or_default())
    }

    /// How many keys start with `prefix`.
    pub fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let p = prefix.to_string();
        self.run(|mut c| async move {
            c.get(p, Some(GetOptions::new().with_prefix().with_count_only()))
                .await
        })
        .map(|r| r.count())
        .map_err(|e| StoreError(format!("etcd: {}", e.message())))
    }

    /// Deletes every key starting with `prefix` (an interrupted migration).
    pub fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let p = prefix.to_string();
        self.run(|mut c| async move { c.delete(p, Some(DeleteOptions::new().with_prefix())).await })
            .map(|_| ())
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))
    }

    /// Writes `key` (no condition).
    pub fn put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (k, v) = (key.to_string(), value.to_string());
        self.run(|mut c| async move { c.put(k, v, None).await })
            .map(|_| ())
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))
    }

    /// The regions that have records, sorted (a skip scan: one request per
    /// region).
    pub fn region_names(&self) -> Result<Vec<String>, StoreError> {
        let base = layout::regions_prefix(&self.config.prefix);
        let end = layout::prefix_end(&base);
        let mut from = base.as_bytes().to_vec();
        let mut out = Vec::new();
        loop {
            let (f, e) = (from.clone(), end.clone());
            let r = self
                .run(|mut c| async move {
                    c.get(
                        f,
                        Some(
                            GetOptions::new()
                                .with_range(e)
                                .with_limit(1)
                                .with_keys_only(),
                        ),
                    )
                    .await
                })
                .map_err(|e| StoreError(format!("etcd: {}", e.message())))?;
            let Some(kv) = r.kvs().first() else {
                return Ok(out);
            };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let Some(name) = key[base.len()..].split('/').next().map(str::to_string) else {
                return Ok(out);
            };
            from = layout::prefix_end(&format!("{base}{name}/"));
            out.push(name);
        }
    }

    /// The instances with audited refs in `region`.
    pub fn instances(&self, region: &str) -> Result<Vec<String>, StoreError> {
        let l = Layout::new(&self.config.prefix, region, "");
        let p = l.kind_prefix("audited/");
        let q = p.clone();
        let r = self
            .run(|mut c| async move {
                c.get(q, Some(GetOptions::new().with_prefix().with_keys_only()))
                    .await
            })
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))?;
        let mut out: Vec<String> = r
            .kvs()
            .iter()
            .filter_map(|kv| {
                let k = std::str::from_utf8(kv.key()).ok()?;
                k[p.len()..].split('/').next().map(str::to_string)
            })
            .collect();
        out.dedup();
        Ok(out)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let k = key.to_string();
        let r = self
            .run(|mut c| async move { c.get(k, None).await })
            .map_err(|e| StoreError(format!("etcd: {}", e.message())))?;
        Ok(r.kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }
}

impl Drop for EtcdBackend {
    fn drop(&mut self) {
        self.release_instance();
        let rt = self.rt.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(rt) = rt {
            // Safe inside or outside an async context.
            rt.shutdown_background();
        }
    }
}

fn first_get(r: &etcd_client::TxnResponse) -> Option<etcd_client::KeyValue> {
    r.op_responses().into_iter().find_map(|o| match o {
        etcd_client::TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    })
}

/// What the watch, the heartbeats and the leader task share with the
/// store.
struct Shared {
    /// The region's revision in the last scan.
    loaded: AtomicI64,
    /// The etcd revision of the last scan (the watch starts after it).
    scanned_at: AtomicI64,
    /// Heartbeats sent and not yet seen back: counter and send time.
    sent: Mutex<VecDeque<(u64, Instant)>>,
    /// Everything committed before this instant has been applied.
    current_as_of: Mutex<Instant>,
    leader: AtomicBool,
    lease: AtomicI64,
}

impl Shared {
    /// Our heartbeat `counter` came back through the watch.
    fn echoed(&self, counter: u64) {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(c, at)) = sent.front() {
            if c > counter {
                break;
            }
            sent.pop_front();
            if c == counter {
                *self.current_as_of.lock().unwrap_or_else(|p| p.into_inner()) = at;
            }
        }
    }

    fn fresh_as_of(&self, at: Instant) {
        *self.current_as_of.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

/// One region's state in etcd.
pub struct EtcdStore {
    backend: Arc<EtcdBackend>,
    layout: Layout,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl EtcdStore {
    /// A region's store for a serving instance: it campaigns for the
    /// sweeper ([`leader`]).
    pub fn open(backend: Arc<EtcdBackend>, region: &str) -> EtcdStore {
        let store = EtcdStore::open_passive(backend, region);
        let t = leader::spawn(
            &store.backend.handle,
            store.backend.client.clone(),
            store.layout.clone(),
            store.shared.clone(),
            store.backend.config.lease_ttl_secs,
        );
        store.tasks().push(t);
        store
    }

    /// A region's store for a tool (migrate-store): no sweeper, no watch.
    pub fn open_passive(backend: Arc<EtcdBackend>, region: &str) -> EtcdStore {
        let layout = Layout::new(&backend.config.prefix, region, &backend.instance);
        EtcdStore {
            shared: Arc::new(Shared {
                loaded: AtomicI64::new(0),
                scanned_at: AtomicI64::new(0),
                sent: Mutex::new(VecDeque::new()),
                current_as_of: Mutex::new(Instant::now()),
                leader: AtomicBool::new(false),
                lease: AtomicI64::new(0),
            }),
            layout,
            backend,
            tasks: Mutex::new(Vec::new()),
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn unavailable(&self, e: &CallError) -> StoreError {
        StoreError(format!(
            "etcd ({}): {}",
            self.backend.config.describe(),
            e.message()
        ))
    }

    /// Settles a transaction whose outcome is unknown through its audited
    /// ref: written as `aborted` if absent (the transaction, which requires
    /// it absent, can then never commit), read otherwise.
    fn fence(&self, r: &AuditRef, cause: CallError) -> Result<i64, CommitError> {
        let key = self.layout.audited(r.seq);
        let ours = format!("{} {}", r.request_id, r.event_name);
        let deadline = Instant::now() + self.backend.config.timeout;
        loop {
            let k = key.clone();
            let settled = self.backend.run(|mut c| async move {
                let t = Txn::new()
                    .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(k.clone(), ABORTED, None)])
                    .or_else([TxnOp::get(k, None)]);
                c.txn(t).await
            });
            match settled {
                Ok(t) if t.succeeded() => {
                    return Err(CommitError::Retryable(self.unavailable(&cause)));
                }
                Ok(t) => {
                    return match first_get(&t) {
                        Some(kv) if kv.value() == ours.as_bytes() => Ok(kv.mod_revision()),
                        _ => Err(CommitError::Unavailable(self.unavailable(&cause))),
                    };
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) => return Err(CommitError::Ambiguous(self.unavailable(&cause))),
            }
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        for t in self.tasks().drain(..) {
            t.abort();
        }
        let lease = self.shared.lease.load(Ordering::Acquire);
        if lease != 0 {
            // Hand the sweeper over at once rather than after the TTL.
            let _ = self
                .backend
                .run(move |mut c| async move { c.lease_revoke(lease).await });
        }
    }
}

/// Every row of one region at one revision: (etcd revision, region
/// revision, rows in [`Store::scan`]'s order).
async fn scan_rows(
    mut c: Client,
    layout: Layout,
) -> Result<(i64, i64, Vec<Row>), etcd_client::Error> {
    let guard = c.get(layout.guard(), None).await?;
    let at = guard.header().map_or(0, |h| h.revision());
    let loaded = guard.kvs().first().map_or(0, |kv| kv.mod_revision());
    let mut rows = Vec::new();
    for kind in KINDS {
        let prefix = layout.kind_prefix(kind);
        let end = layout::prefix_end(&prefix);
        let mut from = prefix.as_bytes().to_vec();
        loop {
            let page = c
                .get(
                    from.clone(),
                    Some(
                        GetOptions::new()
                            .with_range(end.clone())
                            .with_revision(at)
                            .with_limit(PAGE),
                    ),
                )
                .await?;
            for kv in page.kvs() {
                let key = kv.key_str()?;
                let id = &key[prefix.len()..];
                let value = kv.value_str()?;
                let row = layout::row(kind, id, value)
                    .map_err(|e| etcd_client::Error::InvalidArgs(e.0))?;
                rows.push(row);
            }
            match page.kvs().last() {
                Some(last) if page.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
    }
    Ok((at, loaded, rows))
}

impl Store for EtcdStore {
    fn load(&self) -> Result<super::Snapshot, StoreError> {
        super::Snapshot::gather(|visit| self.scan(visit))
    }

    fn scan(&self, visit: &mut dyn FnMut(Row) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let started = Instant::now();
        let layout = self.layout.clone();
        let (at, loaded, rows) = self
            .backend
            .run(|c| scan_rows(c, layout))
            .map_err(|e| self.unavailable(&e))?;
        self.shared.scanned_at.store(at, Ordering::Release);
        self.shared.loaded.store(loaded, Ordering::Release);
        self.shared.fresh_as_of(started);
        for row in rows {
            visit(row)?;
        }
        Ok(())
    }

    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError> {
        // Unconditional (migrate-store into an empty prefix).
        let ops = self.layout.ops(batch)?;
        self.backend
            .run(|mut c| async move { c.txn(Txn::new().and_then(txn_ops(ops))).await })
            .map(|_| ())
            .map_err(|e| self.unavailable(&e))
    }

    fn commit_at(&self, batch: &[Mutation], expect: i64) -> Result<i64, CommitError> {
        let ops = self.layout.ops(batch).map_err(CommitError::Failed)?;
        let guard = self.layout.guard();
        let mut when = vec![Compare::mod_revision(
            guard.clone(),
            CompareOp::Equal,
            expect,
        )];
        let audited = batch.iter().find_map(|m| match m {
            Mutation::Audited(r) => Some(r.clone()),
            _ => None,
        });
        if let Some(r) = &audited {
            // A fenced-off attempt can never commit afterwards.
            when.push(Compare::create_revision(
                self.layout.audited(r.seq),
                CompareOp::Equal,
                0,
            ));
        }
        let txn = Txn::new()
            .when(when)
            .and_then(txn_ops(ops))
            .or_else([TxnOp::get(guard, None)]);
        // While etcd elects a leader the txn is refused before it is
        // proposed: send it again until the deadline.
        let deadline = Instant::now() + self.backend.config.timeout;
        let r = loop {
            let t = txn.clone();
            match self.backend.run(|mut c| async move { c.txn(t).await }) {
                Err(CallError::NoLeader(m)) => {
                    if Instant::now() + NO_LEADER_PAUSE >= deadline {
                        break Err(CallError::Refused(m));
                    }
                    std::thread::sleep(NO_LEADER_PAUSE);
                }
                other => break other,
            }
        };
        match r {
            Ok(t) if t.succeeded() => Ok(t.header().map_or(0, |h| h.revision())),
            Ok(t) => Err(CommitError::Conflict {
                current: first_get(&t).map_or(0, |kv| kv.mod_revision()),
            }),
            Err(e @ (CallError::Refused(_) | CallError::NoLeader(_))) => {
                Err(CommitError::Unavailable(self.unavailable(&e)))
            }
            Err(e) => match &audited {
                Some(r) => self.fence(r, e),
                None => Err(CommitError::Ambiguous(self.unavailable(&e))),
            },
        }
    }

    fn audited(&self) -> Result<Vec<AuditRef>, StoreError> {
        let prefix = self.layout.audited_prefix();
        let p = prefix.clone();
        let r = self
            .backend
            .run(|mut c| async move { c.get(p, Some(GetOptions::new().with_prefix())).await })
            .map_err(|e| self.unavailable(&e))?;
        let mut out = Vec::new();
        for kv in r.kvs() {
            let key = kv.key_str().map_err(|e| StoreError(e.to_string()))?;
            let value = kv.value_str().map_err(|e| StoreError(e.to_string()))?;
            if value == ABORTED {
                continue;
            }
            let seq = key[prefix.len()..]
                .parse::<u64>()
                .map_err(|_| StoreError(format!("audited ref {key}")))?;
            let (request_id, event_name) = value.split_once(' ').unwrap_or((value, ""));
            out.push(AuditRef {
                seq,
                request_id: request_id.to_string(),
                event_name: event_name.to_string(),
            });
        }
        Ok(out)
    }

    fn revision(&self) -> i64 {
        self.shared.loaded.load(Ordering::Acquire)
    }

    fn shared(&self) -> bool {
        true
    }

    fn subscribe(&self, sink: Weak<dyn ChangeSink>) {
        let start = self.shared.scanned_at.load(Ordering::Acquire) + 1;
        let c = &self.backend.config;
        let tasks = watch::spawn(
            &self.backend.handle,
            self.backend.client.clone(),
            self.layout.clone(),
            self.shared.clone(),
            sink,
            start,
            c.heartbeat,
        );
        self.tasks().extend(tasks);
    }

    fn staleness(&self) -> Option<Duration> {
        let at = *self
            .shared
            .current_as_of
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some(at.elapsed())
    }

    fn may_sweep(&self) -> bool {
        self.shared.leader.load(Ordering::Acquire)
    }
}

fn txn_ops(ops: Vec<Op>) -> Vec<TxnOp> {
    ops.into_iter()
        .map(|o| match o {
            Op::Put(k, v) => TxnOp::put(k, v, None),
            Op::Delete(k) => TxnOp::delete(k, None),
            Op::DeletePrefix(k) => TxnOp::delete(k, Some(DeleteOptions::new().with_prefix())),
        })
        .collect()
}
