//! The service's side of the audit trail: every request and every event
//! kmsd makes itself (key destruction, automatic rotation) gets exactly one
//! record, built here from the ids the pipeline resolved.
//!
//! Reads and denied or failed requests submit their record and hand the
//! [`Ticket`] to the caller, who waits for it before answering (one group
//! commit covers a burst). A mutation's record is written and waited for
//! *before* the store commit, so no change is ever durable without its
//! record (docs/AUDIT.md, "Audit before commit").
//!
//! While the trail cannot be written (full disk, I/O error) every request
//! is refused; at most once a second a request probes the trail (tail
//! checked, `resume` checkpoint written), and service resumes by itself
//! when the probe succeeds.

use kmsd_audit::{AuditError, AuditEvent, AuditLog, Principal, Seq, Ticket};
use kmsd_client::KmsError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where records go: the real [`AuditLog`], or a fake in tests.
pub trait AuditSink: Send + Sync {
    /// Queues a record; the ticket resolves once it is durable.
    fn submit(&self, event: &AuditEvent) -> Ticket;
    /// After a failure: `Ok` once the trail is writable again.
    fn probe(&self) -> Result<Seq, AuditError>;
    /// Records submitted and not yet in a group commit (metrics).
    fn queued(&self) -> usize {
        0
    }
}

impl AuditSink for AuditLog {
    fn submit(&self, event: &AuditEvent) -> Ticket {
        AuditLog::submit(self, event)
    }

    fn probe(&self) -> Result<Seq, AuditError> {
        AuditLog::probe(self)
    }

    fn queued(&self) -> usize {
        AuditLog::queued(self)
    }
}

/// How long the trail stays refused before the next probe.
const PROBE_EVERY: Duration = if cfg!(test) {
    Duration::from_millis(10)
} else {
    Duration::from_secs(1)
};

pub struct Auditor {
    sink: Box<dyn AuditSink>,
    down: AtomicBool,
    last_probe: Mutex<Option<Instant>>,
    next_id: AtomicU64,
    /// Random per daemon start, so request ids are unique across restarts.
    boot: String,
}

impl Auditor {
    pub fn new(sink: Box<dyn AuditSink>) -> Self {
        let mut b = [0u8; 6];
        crate::crypto::aead::fill_random(&mut b);
        let boot = b.iter().map(|x| format!("{x:02x}")).collect();
        Auditor {
            sink,
            down: AtomicBool::new(false),
            last_probe: Mutex::new(None),
            next_id: AtomicU64::new(1),
            boot,
        }
    }

    /// A new request id (`x-amzn-RequestId`, the audit record's
    /// `requestId`).
    pub fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:08x}", self.boot)
    }

    /// `Ok` while the trail can be written. While it cannot, refuses, and
    /// at most once per [`PROBE_EVERY`] probes it first.
    pub fn check_healthy(&self) -> Result<(), KmsError> {
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Ok(mut last) = self.last_probe.try_lock()
            && last.is_none_or(|t| t.elapsed() >= PROBE_EVERY)
        {
            *last = Some(Instant::now());
            match self.sink.probe() {
                Ok(seq) => {
                    self.down.store(false, Ordering::Release);
                    tracing::warn!(seq, "audit trail writable again (tail checked); serving");
                    return Ok(());
                }
                Err(e) => tracing::debug!(error = %e, "audit trail still not writable"),
            }
        }
        Err(KmsError::internal(
            "the audit trail cannot be written; kmsd refuses requests until it can",
        ))
    }

    /// Records submitted and not yet in a group commit.
    pub fn queued(&self) -> usize {
        self.sink.queued()
    }

    /// Submits a record whose outcome is already known.
    pub fn submit(&self, event: &AuditEvent) -> Ticket {
        self.sink.submit(event)
    }

    /// Writes a record and waits until it is durable (for mutations, before
    /// their commit). An error marks the trail down.
    pub fn write(&self, event: &AuditEvent) -> Result<Seq, KmsError> {
        self.sink.submit(event).wait().map_err(|e| self.failed(e))
    }

    /// The answer to send once a submitted record's fate is known.
    pub fn settle<T>(
        &self,
        written: Result<Seq, AuditError>,
        result: Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        match written {
            Ok(_) => result,
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: AuditError) -> KmsError {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %e, "audit record not written; refusing requests until the trail can be written");
        }
        KmsError::internal("the request's audit record could not be written")
    }
}

/// The principal of events kmsd makes itself.
pub fn service_principal(invoked_by: &str) -> Principal {
    // SAFETY: geteuid/getegid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    Principal {
        uid,
        gid,
        pid: Some(std::process::id() as i32),
        user_name: None,
        group_name: None,
        executable: None,
        invoked_by: Some(invoked_by.to_string()),
        access_key_id: None,
        source_ip_address: None,
    }
}
