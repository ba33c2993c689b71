//! One live process per instance id: `P/live/<instance>` is created only if
//! absent, on a lease the process keeps alive. Two processes with one id
//! (a copied state dir) would interleave their audited refs and fight over
//! the same chain, so the second is refused at start. A process killed
//! with SIGKILL leaves its key until the lease expires; a restart on the
//! same host and boot, whose recorded pid no longer runs, takes it over
//! at once.

use super::{CallError, EtcdBackend, first_get};
use crate::store::StoreError;
use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Holder {
    host: String,
    boot: String,
    pid: u32,
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into `buf`.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn me() -> Holder {
    Holder {
        host: hostname(),
        boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|b| b.trim().to_string())
            .unwrap_or_default(),
        pid: std::process::id(),
    }
}

/// Whether `h` is a process of this host and boot that no longer runs.
fn is_dead_here(h: &Holder, me: &Holder) -> bool {
    h.host == me.host
        && h.boot == me.boot
        && !me.boot.is_empty()
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.pid as i32), None)
            == Err(nix::errno::Errno::ESRCH)
}

fn err(e: CallError) -> StoreError {
    StoreError(format!("etcd: {}", e.message()))
}

impl EtcdBackend {
    /// Claims `P/live/<instance>` for this process (see the module text)
    /// and keeps its lease alive until the backend is dropped.
    pub fn claim_instance(&self) -> Result<(), StoreError> {
        let key = format!("{}/live/{}", self.config.prefix, self.instance);
        let me = me();
        let value = serde_json::to_string(&me).map_err(|e| StoreError(e.to_string()))?;
        let ttl = self.config.lease_ttl_secs.max(1);
        let lease = self
            .run(move |mut c| async move { c.lease_grant(ttl, None).await })
            .map_err(err)?
            .id();
        for _ in 0..2 {
            let (k, v) = (key.clone(), value.clone());
            let r = self
                .run(move |mut c| async move {
                    let t = Txn::new()
                        .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(
                            k.clone(),
                            v,
                            Some(PutOptions::new().with_lease(lease)),
                        )])
                        .or_else([TxnOp::get(k, None)]);
                    c.txn(t).await
                })
                .map_err(err)?;
            if r.succeeded() {
                self.keep_alive(lease, ttl);
                *self.live_lease.lock().unwrap_or_else(|p| p.into_inner()) = Some(lease);
                return Ok(());
            }
            let Some(kv) = first_get(&r) else { continue };
            let holder: Option<Holder> = serde_json::from_slice(kv.value()).ok();
            match holder {
                Some(h) if is_dead_here(&h, &me) => {
                    tracing::info!(
                        pid = h.pid,
                        "taking over the instance id from a process that no longer runs"
                    );
                    let old = kv.lease();
                    let k = key.clone();
                    self.run(move |mut c| async move {
                        if old != 0 {
                            c.lease_revoke(old).await.map(|_| ())
                        } else {
                            c.delete(k, None).await.map(|_| ())
                        }
                    })
                    .map_err(err)?;
                }
                Some(h) => {
                    return Err(StoreError(format!(
                        "instance id {} is live on host {} (pid {}): is this state dir a copy? \
                         Give each instance its own state dir (or --instance-id)",
                        self.instance,
                        kmsd_client::logsafe::escape(&h.host),
                        h.pid
                    )));
                }
                None => {
                    return Err(StoreError(format!(
                        "{key} holds something kmsd did not write"
                    )));
                }
            }
        }
        Err(StoreError(format!("could not claim {key}")))
    }

    fn keep_alive(&self, lease: i64, ttl: i64) {
        let mut c = self.client.clone();
        let period = Duration::from_millis((ttl as u64 * 1000 / 3).max(200));
        self.handle.spawn(async move {
            loop {
                if let Ok((mut keeper, mut answers)) = c.lease_keep_alive(lease).await {
                    loop {
                        let alive = async {
                            keeper.keep_alive().await?;
                            answers.message().await
                        };
                        match tokio::time::timeout(period, alive).await {
                            Ok(Ok(Some(a))) if a.ttl() > 0 => {}
                            Ok(Ok(Some(_))) => {
                                tracing::error!("this instance's lease expired (etcd unreachable for longer than its TTL)");
                                return;
                            }
                            _ => break,
                        }
                        tokio::time::sleep(period).await;
                    }
                }
                tokio::time::sleep(period).await;
            }
        });
    }

    /// Gives the instance id back (a clean stop).
    pub(super) fn release_instance(&self) {
        let lease = self
            .live_lease
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(l) = lease {
            let _ = self.run(move |mut c| async move { c.lease_revoke(l).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_process_of_this_boot_is_taken_over() {
        let here = me();
        let dead = Holder {
            pid: 0x3fff_fff0,
            ..me()
        };
        assert!(is_dead_here(&dead, &here));
        let alive = Holder {
            pid: std::process::id(),
            ..me()
        };
        assert!(!is_dead_here(&alive, &here));
        let elsewhere = Holder {
            host: "another-host".into(),
            ..dead
        };
        assert!(!is_dead_here(&elsewhere, &here));
    }
}
