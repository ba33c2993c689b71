//! Audit before commit (issue 9, item 2), with faults injected at each step
//! of a mutation: the record, the store commit, and the follow-up record
//! written when the commit fails. After every fault, every mutation in the
//! store has its durable record (the offline cross-check agrees), the
//! change the failed request asked for is absent, and service resumes by
//! itself once the trail can be written again.

use crate::audit_check::cross_check;
use crate::clock::{Clock, ManualClock};
use crate::crypto::rootkey::RootKey;
use crate::service::testkit::{audit_log, principal_of, root};
use crate::service::{AuditSink, KeyService, ServiceConfig};
use crate::store::{AuditRef, Mutation, RedbStore, Snapshot, Store, StoreError};
use kmsd_audit::{AuditError, AuditEvent, AuditLog, Filter, Record, Seq, Ticket};
use kmsd_client::*;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Which steps fail. `audit_ok` is how many more records are written before
/// writes fail (negative: never fail).
#[derive(Default)]
struct Faults {
    audit_ok: AtomicI64,
    commit_fails: AtomicBool,
}

impl Faults {
    fn healthy(&self) {
        self.audit_ok.store(-1, Ordering::SeqCst);
        self.commit_fails.store(false, Ordering::SeqCst);
    }

    /// One more record may be written; the next fails.
    fn take_record(&self) -> bool {
        let n = self.audit_ok.load(Ordering::SeqCst);
        if n < 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        self.audit_ok.fetch_sub(1, Ordering::SeqCst);
        true
    }
}

struct FaultSink {
    log: AuditLog,
    faults: Arc<Faults>,
}

fn disk_full() -> AuditError {
    AuditError::WriteFailed {
        message: "No space left on device (injected)".into(),
        poisoned: false,
    }
}

impl AuditSink for FaultSink {
    fn submit(&self, event: &AuditEvent) -> Ticket {
        if self.faults.take_record() {
            self.log.submit(event)
        } else {
            Ticket::ready(Err(disk_full()))
        }
    }

    fn probe(&self) -> Result<Seq, AuditError> {
        if self.faults.audit_ok.load(Ordering::SeqCst) == 0 {
            return Err(disk_full());
        }
        self.log.probe()
    }
}

struct FaultStore {
    inner: Arc<RedbStore>,
    faults: Arc<Faults>,
}

impl Store for FaultStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }

    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError> {
        if self.faults.commit_fails.load(Ordering::SeqCst) {
            return Err(StoreError("No space left on device (injected)".into()));
        }
        self.inner.commit(batch)
    }

    fn audited(&self) -> Result<Vec<AuditRef>, StoreError> {
        self.inner.audited()
    }
}

struct Rig {
    svc: KeyService,
    store: Arc<RedbStore>,
    faults: Arc<Faults>,
    dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Arc::new(Faults::default());
    faults.healthy();
    let store = Arc::new(RedbStore::open(&dir.path().join("state.redb")).expect("store"));
    let (rk, _) = RootKey::load_or_create(&dir.path().join("root.key")).expect("root key");
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000)));
    let svc = KeyService::new(
        ServiceConfig::default(),
        Box::new(FaultStore {
            inner: store.clone(),
            faults: faults.clone(),
        }),
        clock as Arc<dyn Clock>,
        &rk,
        Box::new(FaultSink {
            log: audit_log(dir.path()),
            faults: faults.clone(),
        }),
    )
    .expect("service");
    Rig {
        svc,
        store,
        faults,
        dir,
    }
}

fn records(dir: &Path) -> Vec<Record> {
    kmsd_audit::query(&dir.join("audit"), Filter::default())
        .expect("query")
        .map(|e| e.expect("entry").record)
        .collect()
}

/// CreateAlias records saying the change could not be persisted.
fn persist_failures(dir: &Path) -> usize {
    records(dir)
        .iter()
        .filter(|x| {
            x.event_name == "CreateAlias"
                && x.error_message
                    .as_deref()
                    .is_some_and(|m| m.contains("could not persist"))
        })
        .count()
}

/// Where the fault is injected.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The mutation's record cannot be written.
    Record,
    /// The record is written; the store commit fails.
    Commit,
    /// The commit fails and so does the follow-up record.
    CommitAndFollowUp,
}

impl Rig {
    fn arm(&self, step: Step) {
        match step {
            Step::Record => self.faults.audit_ok.store(0, Ordering::SeqCst),
            Step::Commit => self.faults.commit_fails.store(true, Ordering::SeqCst),
            Step::CommitAndFollowUp => {
                self.faults.audit_ok.store(1, Ordering::SeqCst);
                self.faults.commit_fails.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Heals the faults and waits (≤ 2 s) for service to resume by itself.
    fn heal(&self) {
        self.faults.healthy();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while let Err(e) = self.svc.run(ListKeysRequest::default()) {
            assert!(
                std::time::Instant::now() < deadline,
                "service did not resume: {e}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn assert_every_commit_audited(&self) -> usize {
        let refs = self.store.audited().expect("audited");
        let c = cross_check(&refs, records(self.dir.path()));
        assert!(c.is_ok(), "unaudited commits: {:?}", c.unaudited);
        assert_eq!(c.matched, refs.len());
        refs.len()
    }
}

#[test]
fn a_fault_at_any_step_leaves_no_commit_without_its_record() {
    let r = rig();
    let key = r
        .svc
        .run(CreateKeyRequest::default())
        .expect("create")
        .key_metadata
        .key_id;
    let alias = |n: usize| format!("alias/fault-{n}");
    let mut n = 0;
    for step in [Step::Record, Step::Commit, Step::CommitAndFollowUp] {
        let before = r.assert_every_commit_audited();
        let follow_ups_before = persist_failures(r.dir.path());
        n += 1;
        r.arm(step);
        let e = r
            .svc
            .run(CreateAliasRequest {
                alias_name: alias(n),
                target_key_id: key.clone(),
            })
            .expect_err("a failed step fails the request");
        assert_eq!(e.kind, ErrorKind::KMSInternalException, "{step:?}: {e}");
        let e = r
            .svc
            .run(DisableKeyRequest {
                key_id: key.clone(),
            })
            .expect_err("still failing");
        assert_eq!(e.kind, ErrorKind::KMSInternalException, "{step:?}: {e}");
        r.heal();
        // The changes asked for are not there, in memory or in the store.
        let aliases = r.svc.run(ListAliasesRequest::default()).expect("list");
        assert!(aliases.aliases.is_empty(), "{step:?}");
        assert_eq!(
            r.svc
                .run(DescribeKeyRequest {
                    key_id: key.clone()
                })
                .expect("describe")
                .key_metadata
                .key_state,
            KeyState::Enabled,
            "{step:?}"
        );
        assert!(r.store.load().expect("load").aliases.is_empty());
        assert_eq!(r.assert_every_commit_audited(), before, "{step:?}");
        // A failed commit has a second record saying so, unless that one
        // could not be written either.
        let want = match step {
            Step::Record | Step::CommitAndFollowUp => 0,
            Step::Commit => 1,
        };
        assert_eq!(
            persist_failures(r.dir.path()) - follow_ups_before,
            want,
            "{step:?}"
        );
    }
    // Healthy again: mutations commit with their records.
    r.svc
        .run(CreateAliasRequest {
            alias_name: alias(99),
            target_key_id: key.clone(),
        })
        .expect("alias after healing");
    r.svc
        .run(DisableKeyRequest { key_id: key })
        .expect("disable after healing");
    let committed = r.assert_every_commit_audited();
    assert!(committed >= 4, "{committed}");
}

#[test]
fn a_failed_commit_is_recorded_twice_under_one_request_id() {
    let r = rig();
    let key = r
        .svc
        .run(CreateKeyRequest::default())
        .expect("create")
        .key_metadata
        .key_id;
    r.arm(Step::Commit);
    let o = r.svc.call(
        &root(),
        &principal_of(&root()),
        TagResourceRequest {
            key_id: key.clone(),
            tags: vec![Tag {
                tag_key: "k".into(),
                tag_value: "v".into(),
            }],
        },
    );
    let id = o.request_id.clone();
    assert!(r.svc.settle(o.record, o.result).is_err());
    r.heal();
    let mine: Vec<Record> = records(r.dir.path())
        .into_iter()
        .filter(|x| x.request_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(mine.len(), 2, "the record, then the one saying it failed");
    assert!(mine[0].error_code.is_none());
    assert_eq!(mine[1].error_code.as_deref(), Some("KMSInternalException"));
    assert!(mine[0].seq < mine[1].seq);
    let tags = r
        .svc
        .run(ListResourceTagsRequest {
            key_id: key,
            limit: None,
            marker: None,
        })
        .expect("tags");
    assert!(tags.tags.is_empty());
    r.assert_every_commit_audited();
}

#[test]
fn refuses_while_the_trail_is_down_and_resumes_without_a_restart() {
    let r = rig();
    r.arm(Step::Record);
    for _ in 0..3 {
        let e = r
            .svc
            .run(ListKeysRequest::default())
            .expect_err("refused while the trail cannot be written");
        assert_eq!(e.kind, ErrorKind::KMSInternalException);
    }
    r.heal();
    r.svc.run(ListKeysRequest::default()).expect("served again");
    let recs = records(r.dir.path());
    assert!(
        recs.iter()
            .any(|x| x.checkpoint.as_ref().is_some_and(|c| c.reason == "resume")),
        "a resume checkpoint marks the gap"
    );
}

#[test]
fn dry_run_checks_without_running_and_is_audited() {
    let r = rig();
    let key = r
        .svc
        .run(CreateKeyRequest::default())
        .expect("create")
        .key_metadata
        .key_id;
    let dry = |caller: &crate::service::Caller| {
        let o = r.svc.dry_run(
            caller,
            &principal_of(caller),
            DisableKeyRequest {
                key_id: key.clone(),
            },
        );
        r.svc
            .settle(o.record, o.result)
            .expect_err("a dry run never succeeds")
    };
    let e = dry(&root());
    assert_eq!(e.kind, ErrorKind::DryRunOperationException, "{e}");
    let stranger =
        crate::service::Caller::resolve(4321, 4321, None, &kmsd_policy::FakeDirectory::new());
    assert_eq!(dry(&stranger).kind, ErrorKind::AccessDeniedException);
    let state = r
        .svc
        .run(DescribeKeyRequest {
            key_id: key.clone(),
        })
        .expect("describe")
        .key_metadata
        .key_state;
    assert_eq!(state, KeyState::Enabled, "nothing ran");
    let codes: Vec<Option<String>> = records(r.dir.path())
        .into_iter()
        .filter(|x| x.event_name == "DisableKey")
        .map(|x| x.error_code)
        .collect();
    assert_eq!(
        codes,
        [
            Some("DryRunOperationException".to_string()),
            Some("AccessDeniedException".to_string())
        ]
    );
}
