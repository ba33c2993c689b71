//! The redb backend: one database file, four tables of JSON values. redb
//! commits are copy-on-write with a durable commit (fsync) by default, so a
//! `kill -9` at any instant leaves either the old or the new state.
//!
//! After an I/O error (a full disk) redb refuses every later transaction
//! until the database is closed and opened again, so a failed commit drops
//! the handle and the next call reopens it: service resumes once the disk
//! has room, without a restart.
//!
//! redb keeps a page cache in memory (1 GiB by default, all of it locked
//! under kmsd's `mlockall`); kmsd bounds it with `--store-cache-mib`
//! ([`DEFAULT_CACHE_BYTES`]). The service holds the whole state in memory
//! anyway, so the cache only speeds up commits and the start-up scan.

use super::{
    AccessKeyRecord, AliasRecord, AuditRef, KeyRecord, Mutation, Row, Snapshot, Store, StoreError,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

const KEYS: TableDefinition<&str, &str> = TableDefinition::new("keys");
const ALIASES: TableDefinition<&str, &str> = TableDefinition::new("aliases");
const GRANTS: TableDefinition<&str, &str> = TableDefinition::new("grants");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const ACCESS_KEYS: TableDefinition<&str, &str> = TableDefinition::new("access_keys");
/// Audit seq of each committed mutation's record → `<requestId> <eventName>`.
const AUDITED: TableDefinition<u64, &str> = TableDefinition::new("audited");

/// The store's page cache unless configured: 16 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 16 << 20;

pub struct RedbStore {
    path: PathBuf,
    /// redb's page cache, in bytes (also for every reopen).
    cache_bytes: usize,
    /// `None` after a failed commit: reopened by the next call.
    db: Mutex<Option<Database>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn open_db(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
    let tx = db.begin_write().map_err(err)?;
    for t in [KEYS, ALIASES, GRANTS, META, ACCESS_KEYS] {
        tx.open_table(t).map_err(err)?;
    }
    tx.open_table(AUDITED).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(db)
}

impl RedbStore {
    /// Opens (or creates) the store with the default page cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        Ok(RedbStore {
            path: path.to_path_buf(),
            cache_bytes,
            db: Mutex::new(Some(open_db(path, cache_bytes)?)),
        })
    }

    /// The open database, reopened first if the last commit failed.
    fn db(&self) -> Result<MutexGuard<'_, Option<Database>>, StoreError> {
        let mut g = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(open_db(&self.path, self.cache_bytes)?);
            tracing::warn!(path = %self.path.display(), "state store reopened after an I/O error");
        }
        Ok(g)
    }

    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut g = self.db()?;
        let db = g
            .as_ref()
            .ok_or_else(|| StoreError("database not open".into()))?;
        let r = f(db);
        if r.is_err() {
            // redb refuses everything after an I/O error until reopened.
            *g = None;
        }
        r
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        Snapshot::gather(|visit| self.scan(visit))
    }

    fn scan(&self, visit: &mut dyn FnMut(Row) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.with_db(|db| scan(db, visit))
    }

    fn audited(&self) -> Result<Vec<AuditRef>, StoreError> {
        self.with_db(audited)
    }

    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError> {
        self.with_db(|db| commit(db, batch))
    }
}

/// Calls `row` with each (key, value) of a table, straight from redb's
/// pages: no copy of the table is made.
fn each(
    tx: &redb::ReadTransaction,
    def: TableDefinition<&str, &str>,
    mut row: impl FnMut(&str, &str) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let table = tx.open_table(def).map_err(err)?;
    for r in table.iter().map_err(err)? {
        let (k, v) = r.map_err(err)?;
        row(k.value(), v.value())?;
    }
    Ok(())
}

fn scan(
    db: &Database,
    visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let tx = db.begin_read().map_err(err)?;
    scan_keys(&tx, visit)?;
    each(&tx, ALIASES, |k, v| {
        let a = serde_json::from_str::<AliasRecord>(v)
            .map_err(|e| StoreError(format!("alias {k}: {e}")))?;
        visit(Row::Alias(a))
    })?;
    each(&tx, GRANTS, |k, v| visit(Row::Grant(k.into(), v.into())))?;
    each(&tx, META, |k, v| visit(Row::Meta(k.into(), v.into())))?;
    each(&tx, ACCESS_KEYS, |k, v| {
        let a = serde_json::from_str::<AccessKeyRecord>(v)
            .map_err(|e| StoreError(format!("access key {k}: {e}")))?;
        visit(Row::AccessKey(a))
    })
}

/// Keys handed from the reading thread to the parsing one at a time.
const SCAN_BATCH: usize = 256;

/// The keys, the bulk of a large store. One thread walks redb's pages and
/// copies the rows out in batches while this one parses and visits them,
/// so on two cores the two halves of a start-up overlap. At most a few
/// batches are in flight.
fn scan_keys(
    tx: &redb::ReadTransaction,
    visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    type Batch = Result<Vec<(String, String)>, StoreError>;
    let (send, recv) = std::sync::mpsc::sync_channel::<Batch>(4);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("kmsd-scan".into())
            .spawn_scoped(s, move || {
                let mut batch = Vec::with_capacity(SCAN_BATCH);
                let read = each(tx, KEYS, |k, v| {
                    batch.push((k.to_owned(), v.to_owned()));
                    if batch.len() == SCAN_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(SCAN_BATCH));
                        // The parser stopped (an invalid row): so do we.
                        send.send(Ok(full))
                            .map_err(|_| StoreError("scan stopped".into()))?;
                    }
                    Ok(())
                });
                let _ = send.send(read.map(|()| batch));
            })
            .map_err(|e| StoreError(format!("cannot start the scan thread: {e}")))?;
        // Ends when the reader is done (and has dropped `send`); returning
        // early drops `recv`, which stops the reader.
        for batch in recv {
            for (k, v) in batch? {
                let r = serde_json::from_str::<KeyRecord>(&v)
                    .map_err(|e| StoreError(format!("key {k}: {e}")))?;
                visit(Row::Key(r))?;
            }
        }
        Ok(())
    })
}

fn audited(db: &Database) -> Result<Vec<AuditRef>, StoreError> {
    let tx = db.begin_read().map_err(err)?;
    let table = tx.open_table(AUDITED).map_err(err)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(err)? {
        let (k, v) = row.map_err(err)?;
        let (request_id, event_name) = v.value().split_once(' ').unwrap_or((v.value(), ""));
        out.push(AuditRef {
            seq: k.value(),
            request_id: request_id.to_string(),
            event_name: event_name.to_string(),
        });
    }
    Ok(out)
}

fn commit(db: &Database, batch: &[Mutation]) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(err)?;
    {
        let mut keys = tx.open_table(KEYS).map_err(err)?;
        let mut aliases = tx.open_table(ALIASES).map_err(err)?;
        let mut grants = tx.open_table(GRANTS).map_err(err)?;
        let mut meta = tx.open_table(META).map_err(err)?;
        let mut audited = tx.open_table(AUDITED).map_err(err)?;
        let mut access_keys = tx.open_table(ACCESS_KEYS).map_err(err)?;
        for m in batch {
            match m {
                Mutation::PutKey(r) => {
                    let json = serde_json::to_string(r).map_err(err)?;
                    keys.insert(r.key_id.to_string().as_str(), json.as_str())
                        .map_err(err)?;
                }
                Mutation::DeleteKey(id) => {
                    keys.remove(id.to_string().as_str()).map_err(err)?;
                }
                Mutation::PutAlias(a) => {
                    let json = serde_json::to_string(a).map_err(err)?;
                    aliases
                        .insert(a.name.as_str(), json.as_str())
                        .map_err(err)?;
                }
                Mutation::DeleteAlias(name) => {
                    aliases.remove(name.as_str()).map_err(err)?;
                }
                Mutation::PutGrant { grant_id, json } => {
                    grants
                        .insert(grant_id.as_str(), json.as_str())
                        .map_err(err)?;
                }
                Mutation::DeleteGrant(id) => {
                    grants.remove(id.as_str()).map_err(err)?;
                }
                Mutation::PutMeta { name, json } => {
                    meta.insert(name.as_str(), json.as_str()).map_err(err)?;
                }
                Mutation::PutAccessKey(r) => {
                    let json = serde_json::to_string(r).map_err(err)?;
                    access_keys
                        .insert(r.access_key_id.as_str(), json.as_str())
                        .map_err(err)?;
                }
                Mutation::DeleteAccessKey(id) => {
                    access_keys.remove(id.as_str()).map_err(err)?;
                }
                Mutation::Audited(r) => {
                    let v = format!("{} {}", r.request_id, r.event_name);
                    audited.insert(r.seq, v.as_str()).map_err(err)?;
                }
            }
        }
    }
    tx.commit().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsd_client::Timestamp;
    use uuid::Uuid;

    use crate::store::records::test_key as key;

    #[test]
    fn commits_survive_reopen_and_batches_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        {
            let s = RedbStore::open(&path).unwrap();
            s.commit(&[
                Mutation::PutKey(key(a)),
                Mutation::PutKey(key(b)),
                Mutation::PutAlias(AliasRecord {
                    name: "alias/x".into(),
                    target: a,
                    created: Timestamp(2),
                    updated: Timestamp(2),
                }),
                Mutation::PutMeta {
                    name: "service-policy".into(),
                    json: "{}".into(),
                },
            ])
            .unwrap();
            s.commit(&[Mutation::DeleteKey(b)]).unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.keys, vec![key(a)]);
        assert_eq!(snap.aliases.len(), 1);
        assert_eq!(snap.aliases[0].target, a);
        assert_eq!(
            snap.meta,
            vec![("service-policy".to_string(), "{}".to_string())]
        );
    }

    /// Commits about 8 MiB of keys and reads them back; returns the bytes
    /// in redb's cache then, and again after a reopen (as after an I/O
    /// error).
    fn cache_used(cache_bytes: usize) -> (usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open_with_cache(&dir.path().join("state.redb"), cache_bytes).unwrap();
        for _ in 0..8 {
            let batch: Vec<Mutation> = (0..256)
                .map(|_| {
                    let mut k = key(Uuid::new_v4());
                    k.description = "x".repeat(4096);
                    Mutation::PutKey(k)
                })
                .collect();
            s.commit(&batch).unwrap();
        }
        let used = |s: &RedbStore| {
            assert_eq!(s.load().unwrap().keys.len(), 2048);
            s.with_db(|db| Ok(db.cache_stats().used_bytes())).unwrap()
        };
        let before = used(&s);
        *s.db.lock().unwrap() = None;
        (before, used(&s))
    }

    #[test]
    fn cache_size_is_applied() {
        let (small, small_reopened) = cache_used(1 << 20);
        assert!(
            small > 0,
            "cache metrics are off (redb's cache_metrics feature)"
        );
        assert!(small <= 1 << 20, "{small} bytes cached with a 1 MiB cache");
        assert!(
            small_reopened <= 1 << 20,
            "{small_reopened} bytes cached after a reopen"
        );
        let (large, _) = cache_used(64 << 20);
        assert!(
            large > 4 << 20,
            "only {large} bytes cached with a 64 MiB cache"
        );
    }
}
