//! kmsd's Prometheus metrics (docs/METRICS.md): requests by operation,
//! outcome and transport, latency histograms, the audit trail's group
//! commits, the store's commits, connections and keys.
//!
//! - `histogram`, `registry`: the figures, on atomics, every series
//!   registered up front; recording costs a few relaxed atomic adds;
//! - `render`: the text exposition format (pure);
//! - `server`: `GET /metrics` on `--metrics-listen` (I/O).
//!
//! One registry per process, [`METRICS`]: the request pipeline, the
//! listeners, the store commit and the audit trail's observer record into
//! it; figures that are state (keys, queued records) are read at scrape
//! time instead.

pub mod histogram;
pub mod registry;
pub mod render;
mod server;

pub use registry::{Meter, Metrics, Transport, op_index};
pub use render::{RegionFigures, Scrape, render};
pub use server::{MetricsConfig, serve_metrics};

use crate::regions::Regions;
use kmsd_client::KeyState;
use std::sync::Arc;
use std::time::Duration;

/// The process's metrics.
pub static METRICS: Metrics = Metrics::new();

/// Records the audit trail's group commits into [`METRICS`].
#[derive(Debug)]
pub struct AuditMetrics;

impl kmsd_audit::CommitObserver for AuditMetrics {
    fn batch_appended(&self, records: usize, took: Duration) {
        METRICS.audit_batch_records.observe(records as u64);
        METRICS.audit_append_seconds.observe_duration(took);
    }
}

/// The observer to give the audit trail's options.
pub fn audit_observer() -> Arc<dyn kmsd_audit::CommitObserver> {
    Arc::new(AuditMetrics)
}

/// Reads the figures that are state: keys by state and queued audit
/// records, per region (each takes its state's read lock once).
pub fn scrape(regions: &Regions) -> Scrape {
    let names = regions.names();
    let regions = regions
        .iter()
        .zip(names)
        .map(|(svc, name)| {
            let mut counts = [0u64; 3];
            {
                let st = svc.read();
                for e in st.keys.values() {
                    counts[state_index(e.record.state)] += 1;
                }
            }
            RegionFigures {
                region: name.to_string(),
                keys: KeyState::ALL
                    .iter()
                    .map(|s| (*s, counts[state_index(*s)]))
                    .collect(),
                audit_queue: svc.auditor().queued() as u64,
                staleness_ms: svc.staleness().map(|d| d.as_millis() as u64),
            }
        })
        .collect();
    Scrape { regions }
}

fn state_index(s: KeyState) -> usize {
    match s {
        KeyState::Enabled => 0,
        KeyState::Disabled => 1,
        KeyState::PendingDeletion => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::service::testkit::{TestService, principal_of, root};
    use kmsd_client::*;

    #[test]
    fn finish_counts_each_answer_once_by_its_final_outcome() {
        let t = TestService::new();
        let key = t.create("metered").key_id;
        let op = op_index("GetKeyRotationStatus");
        let via = Transport::Http;
        let nf = ErrorKind::NotFoundException;
        let before = (
            METRICS.ok(op, via),
            METRICS.failed(op, via, nf),
            METRICS.duration(op).map(|h| h.read().count()),
        );
        let (caller, principal) = (root(), principal_of(&root()));
        let ask = |key_id: &str| {
            t.svc.call(
                &caller,
                &principal,
                GetKeyRotationStatusRequest {
                    key_id: key_id.into(),
                },
            )
        };
        for _ in 0..3 {
            assert!(t.svc.finish(ask(&key), via).is_ok());
        }
        for _ in 0..2 {
            let r = t.svc.finish(ask("alias/none"), via);
            assert_eq!(r.err().map(|e| e.kind), Some(nf));
        }
        // Settled without `finish`: not counted.
        let o = ask(&key);
        assert!(t.svc.settle(o.record, o.result).is_ok());
        assert_eq!(METRICS.ok(op, via) - before.0, 3);
        assert_eq!(METRICS.failed(op, via, nf) - before.1, 2);
        let after = METRICS.duration(op).map(|h| h.read().count());
        assert_eq!(after.zip(before.2).map(|(a, b)| a - b), Some(5));
    }

    #[test]
    fn a_scrape_counts_keys_by_state_per_region() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000)));
        let svc = Arc::new(TestService::open(&dir, clock));
        let a = svc
            .run(CreateKeyRequest::default())
            .expect("create")
            .key_metadata;
        svc.run(CreateKeyRequest::default()).expect("create");
        svc.run(DisableKeyRequest { key_id: a.key_id })
            .expect("disable");
        let regions = Regions::new("eu-west-1", vec![("eu-west-1".into(), svc)]).expect("regions");
        let s = scrape(&regions);
        assert_eq!(s.regions.len(), 1);
        let r = &s.regions[0];
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(
            r.keys,
            vec![
                (KeyState::Enabled, 1),
                (KeyState::Disabled, 1),
                (KeyState::PendingDeletion, 0)
            ]
        );
        assert_eq!(r.audit_queue, 0);
    }
}
