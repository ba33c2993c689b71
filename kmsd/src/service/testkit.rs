//! A service over a temporary store and a manual clock, for unit tests.

use super::{Caller, KeyService, ServiceConfig};
use crate::clock::{Clock, ManualClock};
use crate::crypto::rootkey::RootKey;
use crate::store::RedbStore;
use kmsd_client::*;
use std::sync::Arc;

pub struct TestService {
    pub svc: KeyService,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub fn root() -> Caller {
    Caller::resolve(0, 0, Some(1), &kmsd_policy::FakeDirectory::new())
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
        )
        .expect("service")
    }

    pub fn create_req(&self, req: CreateKeyRequest) -> Result<KeyMetadata, KmsError> {
        self.svc
            .create_key(&root(), req, kmsd_policy::default_key_policy(0, 0))
            .map(|r| r.key_metadata)
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
            .describe_key(DescribeKeyRequest {
                key_id: key_id.into(),
            })
            .expect("describe")
            .key_metadata
            .key_state
    }
}
