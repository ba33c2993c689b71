//! A service over a temporary store and a manual clock, for unit tests.

use super::operation::Operation;
use super::{Caller, KeyService, ServiceConfig};
use crate::clock::{Clock, ManualClock};
use crate::crypto::rootkey::RootKey;
use crate::store::RedbStore;
use kmsd_audit::{AuditKey, AuditLog, Options, Principal};
use kmsd_client::*;
use std::path::Path;
use std::sync::Arc;

pub struct TestService {
    pub svc: KeyService,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub fn root() -> Caller {
    Caller::resolve(0, 0, Some(1), &kmsd_policy::FakeDirectory::new())
}

/// The audit principal of `caller`, without system lookups.
pub fn principal_of(caller: &Caller) -> Principal {
    Principal {
        uid: caller.uid,
        gid: caller.gid,
        pid: caller.pid,
        user_name: caller.user_name.clone(),
        group_name: None,
        executable: None,
        invoked_by: None,
        access_key_id: None,
        source_ip_address: None,
    }
}

impl KeyService {
    /// Runs `req` through the pipeline as root and waits for its record.
    pub fn run<O: Operation>(&self, req: O) -> Result<O::Output, KmsError> {
        self.run_as(&root(), req)
    }

    /// Runs `req` through the pipeline as `caller`.
    pub fn run_as<O: Operation>(&self, caller: &Caller, req: O) -> Result<O::Output, KmsError> {
        let o = self.call(caller, &principal_of(caller), req);
        self.settle(o.record, o.result)
    }
}

/// The audit trail of a test service's directory.
pub fn audit_log(dir: &Path) -> AuditLog {
    AuditLog::open(
        dir.join("audit"),
        AuditKey::from_bytes(&mut [7; 32]),
        Options::default(),
    )
    .expect("audit log")
}

impl TestService {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000)));
        let svc = Self::open(&dir, clock.clone());
        TestService { svc, clock, dir }
    }

    pub fn open(dir: &tempfile::TempDir, clock: Arc<ManualClock>) -> KeyService {
        let store = RedbStore::open(&dir.path().join("state.redb")).expect("store");
        let (rk, _) = RootKey::load_or_create(&dir.path().join("root.key")).expect("root key");
        KeyService::new(
            ServiceConfig::default(),
            Box::new(store),
            clock as Arc<dyn Clock>,
            &rk,
            Box::new(audit_log(dir.path())),
        )
        .expect("service")
    }

    pub fn create_req(&self, req: CreateKeyRequest) -> Result<KeyMetadata, KmsError> {
        self.svc.run(req).map(|r| r.key_metadata)
    }

    pub fn create(&self, description: &str) -> KeyMetadata {
        self.create_req(CreateKeyRequest {
            description: Some(description.into()),
            ..Default::default()
        })
        .expect("create")
    }

    pub fn state_of(&self, key_id: &str) -> KeyState {
        self.svc
            .run(DescribeKeyRequest {
                key_id: key_id.into(),
            })
            .expect("describe")
            .key_metadata
            .key_state
    }
}
