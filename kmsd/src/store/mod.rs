//! Durable state behind a small trait, so another backend can come later.
//!
//! The service keeps the whole state in memory and calls [`Store::commit`]
//! with every mutation before it acknowledges it; a commit is atomic and
//! durable (all of a batch or none, fsynced). [`Store::load`] gives back
//! the last committed state. See `docs/STORE.md`.

mod records;
mod redb_store;

pub use records::{AccessKeyRecord, AliasRecord, KeyRecord, RotationSchedule, VersionRecord};
pub use redb_store::RedbStore;

use uuid::Uuid;

/// Everything a store holds.
#[derive(Default)]
pub struct Snapshot {
    pub keys: Vec<KeyRecord>,
    pub aliases: Vec<AliasRecord>,
    /// Grant id → grant as JSON (the authorization layer owns its shape).
    pub grants: Vec<(String, String)>,
    /// Named documents such as the service policy.
    pub meta: Vec<(String, String)>,
    pub access_keys: Vec<AccessKeyRecord>,
}

/// One change; a batch of them commits atomically.
pub enum Mutation {
    PutKey(KeyRecord),
    DeleteKey(Uuid),
    PutAlias(AliasRecord),
    DeleteAlias(String),
    PutGrant {
        grant_id: String,
        json: String,
    },
    DeleteGrant(String),
    PutMeta {
        name: String,
        json: String,
    },
    PutAccessKey(AccessKeyRecord),
    DeleteAccessKey(String),
    /// The audit record of the request this batch carries out (see
    /// docs/AUDIT.md, "Audit before commit"): every committed mutation
    /// names the durable record written before it.
    Audited(AuditRef),
}

/// A committed mutation's audit record: its seq in the trail, request id
/// and operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRef {
    pub seq: u64,
    pub request_id: String,
    pub event_name: String,
}

#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

pub trait Store: Send + Sync {
    fn load(&self) -> Result<Snapshot, StoreError>;
    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError>;
    /// The audit records named by committed mutations, by seq.
    fn audited(&self) -> Result<Vec<AuditRef>, StoreError>;
}
