//! Durable state behind a small trait, so another backend can come later.
//!
//! The service keeps the whole state in memory and calls [`Store::commit`]
//! with every mutation before it acknowledges it; a commit is atomic and
//! durable (all of a batch or none, fsynced). [`Store::scan`] gives back
//! the last committed state one row at a time ([`Store::load`] all at
//! once). See `docs/STORE.md`.

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub mod etcd_layout;
#[cfg(feature = "etcd")]
pub mod migrate;
mod records;
mod redb_store;

pub use records::{
    AccessKeyRecord, AliasRecord, KeyRecord, PolicyText, RotationSchedule, VersionRecord,
};
pub use redb_store::{DEFAULT_CACHE_BYTES, RedbStore};

use std::sync::Weak;
use std::time::Duration;
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

impl Snapshot {
    /// Every row a scan hands out, gathered (`scan`: a store's
    /// [`Store::scan`]).
    pub fn gather(
        scan: impl FnOnce(&mut dyn FnMut(Row) -> Result<(), StoreError>) -> Result<(), StoreError>,
    ) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        scan(&mut |row| {
            match row {
                Row::Key(k) => snap.keys.push(k),
                Row::Alias(a) => snap.aliases.push(a),
                Row::Grant(k, v) => snap.grants.push((k, v)),
                Row::Meta(k, v) => snap.meta.push((k, v)),
                Row::AccessKey(a) => snap.access_keys.push(a),
            }
            Ok(())
        })?;
        Ok(snap)
    }
}

/// One stored row, as [`Store::scan`] hands them out.
#[derive(Debug, PartialEq)]
pub enum Row {
    Key(KeyRecord),
    Alias(AliasRecord),
    /// Store key (`<key id>/<grant id>`) and the grant as JSON.
    Grant(String, String),
    /// Name and JSON document.
    Meta(String, String),
    AccessKey(AccessKeyRecord),
}

/// One change; a batch of them commits atomically.
#[derive(Debug, PartialEq)]
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

/// Why a conditional commit ([`Store::commit_at`]) did not happen.
#[derive(Debug)]
pub enum CommitError {
    /// Another instance committed first: the store is at revision
    /// `current`. Nothing was written.
    Conflict { current: i64 },
    /// The store could not be reached; nothing was written.
    Unavailable(StoreError),
    /// The connection it went over failed, and it is now known that
    /// nothing was written (fenced): sending it again, over another
    /// connection, may work.
    Retryable(StoreError),
    /// The store could not be reached and the outcome is not known: the
    /// change may still commit (and then arrives through the watch).
    Ambiguous(StoreError),
    /// Refused for another reason (full, invalid); nothing was written.
    Failed(StoreError),
}

/// Told about changes other instances commit to a shared store.
pub trait ChangeSink: Send + Sync {
    /// The mutations one transaction committed, at `revision`; every
    /// revision arrives once, in order (duplicates of what this instance
    /// committed itself arrive too: skip what is not newer).
    fn changed(&self, revision: i64, batch: Vec<Mutation>);
    /// Events were lost (the store compacted its history): the whole state
    /// at `revision`, in [`Store::scan`]'s order.
    fn reload(&self, revision: i64, rows: Vec<Row>);
}

pub trait Store: Send + Sync {
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// The last committed state, one row at a time: every key, then every
    /// alias, grant and meta document, so the caller never holds the store
    /// twice in memory. A `visit` error stops the scan and is returned.
    /// The default goes through [`Store::load`].
    fn scan(&self, visit: &mut dyn FnMut(Row) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let snap = self.load()?;
        let rows = (snap.keys.into_iter().map(Row::Key))
            .chain(snap.aliases.into_iter().map(Row::Alias))
            .chain(snap.grants.into_iter().map(|(k, v)| Row::Grant(k, v)))
            .chain(snap.meta.into_iter().map(|(k, v)| Row::Meta(k, v)))
            .chain(snap.access_keys.into_iter().map(Row::AccessKey));
        for row in rows {
            visit(row)?;
        }
        Ok(())
    }
    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError>;
    /// The audit records named by committed mutations, by seq.
    fn audited(&self) -> Result<Vec<AuditRef>, StoreError>;

    /// Commits `batch` if nobody else has committed since revision
    /// `expect` (the one the plan read: [`Store::revision`], then each
    /// commit's or change's); returns the new revision. A store with one
    /// writer (redb) has no revisions: it commits and returns 0.
    fn commit_at(&self, batch: &[Mutation], expect: i64) -> Result<i64, CommitError> {
        let _ = expect;
        self.commit(batch).map(|()| 0).map_err(CommitError::Failed)
    }
    /// The revision of the state the last scan returned (0: none).
    fn revision(&self) -> i64 {
        0
    }
    /// Whether other processes commit to this store too (their changes
    /// then arrive through [`Store::subscribe`]).
    fn shared(&self) -> bool {
        false
    }
    /// Starts delivering other instances' changes, from just after the
    /// last scan.
    fn subscribe(&self, sink: Weak<dyn ChangeSink>) {
        let _ = sink;
    }
    /// How old the newest change known to be applied may be: `None` when
    /// the store has no other writers.
    fn staleness(&self) -> Option<Duration> {
        None
    }
    /// Whether this instance runs the deletion sweeper and automatic
    /// rotation (one instance of those sharing a store does).
    fn may_sweep(&self) -> bool {
        true
    }
}
