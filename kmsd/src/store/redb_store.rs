//! The redb backend: one database file, four tables of JSON values. redb
//! commits are copy-on-write with a durable commit (fsync) by default, so a
//! `kill -9` at any instant leaves either the old or the new state.
//!
//! After an I/O error (a full disk) redb refuses every later transaction
//! until the database is closed and opened again, so a failed commit drops
//! the handle and the next call reopens it: service resumes once the disk
//! has room, without a restart.

use super::{
    AccessKeyRecord, AliasRecord, AuditRef, KeyRecord, Mutation, Snapshot, Store, StoreError,
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

pub struct RedbStore {
    path: PathBuf,
    /// `None` after a failed commit: reopened by the next call.
    db: Mutex<Option<Database>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
    let tx = db.begin_write().map_err(err)?;
    for t in [KEYS, ALIASES, GRANTS, META, ACCESS_KEYS] {
        tx.open_table(t).map_err(err)?;
    }
    tx.open_table(AUDITED).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(db)
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(RedbStore {
            path: path.to_path_buf(),
            db: Mutex::new(Some(open_db(path)?)),
        })
    }

    /// The open database, reopened first if the last commit failed.
    fn db(&self) -> Result<MutexGuard<'_, Option<Database>>, StoreError> {
        let mut g = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(open_db(&self.path)?);
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

fn read_all(
    tx: &redb::ReadTransaction,
    def: TableDefinition<&str, &str>,
) -> Result<Vec<(String, String)>, StoreError> {
    let table = tx.open_table(def).map_err(err)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(err)? {
        let (k, v) = row.map_err(err)?;
        out.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(out)
}

impl Store for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_db(load)
    }

    fn audited(&self) -> Result<Vec<AuditRef>, StoreError> {
        self.with_db(audited)
    }

    fn commit(&self, batch: &[Mutation]) -> Result<(), StoreError> {
        self.with_db(|db| commit(db, batch))
    }
}

fn load(db: &Database) -> Result<Snapshot, StoreError> {
    let tx = db.begin_read().map_err(err)?;
    let keys = read_all(&tx, KEYS)?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_str::<KeyRecord>(&v).map_err(|e| StoreError(format!("key {k}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let aliases = read_all(&tx, ALIASES)?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_str::<AliasRecord>(&v)
                .map_err(|e| StoreError(format!("alias {k}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Snapshot {
        keys,
        aliases,
        grants: read_all(&tx, GRANTS)?,
        meta: read_all(&tx, META)?,
        access_keys: read_all(&tx, ACCESS_KEYS)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str::<AccessKeyRecord>(&v)
                    .map_err(|e| StoreError(format!("access key {k}: {e}")))
            })
            .collect::<Result<_, _>>()?,
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
    use kmsd_client::{KeyState, Timestamp};
    use uuid::Uuid;

    fn key(id: Uuid) -> KeyRecord {
        KeyRecord {
            key_id: id,
            created: Timestamp(1),
            description: "d".into(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags: vec![],
            rotation: None,
            on_demand_rotations: 0,
            versions: vec![],
            policy: "{}".into(),
            creator_uid: 0,
        }
    }

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
}
