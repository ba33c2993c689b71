//! The in-memory state: a pure function of the committed mutations. Keys
//! carry their unwrapped ciphers (one per version) so cryptographic calls
//! never touch the store.

use crate::crypto::aead::KeyCipher;
use crate::crypto::material;
use crate::store::{AliasRecord, KeyRecord, Mutation, Snapshot};
use kmsd_client::KmsError;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

pub struct KeyEntry {
    pub record: KeyRecord,
    /// `ciphers[i]` is version `i + 1`.
    pub ciphers: Vec<Arc<KeyCipher>>,
}

impl KeyEntry {
    pub fn current(&self) -> Option<(u32, Arc<KeyCipher>)> {
        let c = self.ciphers.last()?;
        Some((self.ciphers.len() as u32, c.clone()))
    }

    pub fn version(&self, v: u32) -> Option<Arc<KeyCipher>> {
        self.ciphers.get((v as usize).checked_sub(1)?).cloned()
    }
}

#[derive(Default)]
pub struct State {
    pub keys: HashMap<Uuid, KeyEntry>,
    pub aliases: BTreeMap<String, AliasRecord>,
    pub grants: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
}

impl State {
    pub fn from_snapshot(snap: Snapshot, wrap_key: &KeyCipher) -> Result<State, KmsError> {
        let mut st = State::default();
        for r in snap.keys {
            st.put_key(r, wrap_key)?;
        }
        st.aliases = snap
            .aliases
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        st.grants = snap.grants.into_iter().collect();
        st.meta = snap.meta.into_iter().collect();
        Ok(st)
    }

    /// Applies committed mutations.
    pub fn apply(&mut self, batch: Vec<Mutation>, wrap_key: &KeyCipher) -> Result<(), KmsError> {
        for m in batch {
            match m {
                Mutation::PutKey(r) => self.put_key(r, wrap_key)?,
                Mutation::DeleteKey(id) => {
                    self.keys.remove(&id);
                }
                Mutation::PutAlias(a) => {
                    self.aliases.insert(a.name.clone(), a);
                }
                Mutation::DeleteAlias(n) => {
                    self.aliases.remove(&n);
                }
                Mutation::PutGrant { grant_id, json } => {
                    self.grants.insert(grant_id, json);
                }
                Mutation::DeleteGrant(id) => {
                    self.grants.remove(&id);
                }
                Mutation::PutMeta { name, json } => {
                    self.meta.insert(name, json);
                }
            }
        }
        Ok(())
    }

    /// Inserts or replaces a key, unwrapping only versions it lacks.
    fn put_key(&mut self, record: KeyRecord, wrap_key: &KeyCipher) -> Result<(), KmsError> {
        let mut ciphers = self
            .keys
            .remove(&record.key_id)
            .map(|e| e.ciphers)
            .unwrap_or_default();
        ciphers.truncate(record.versions.len());
        for v in &record.versions[ciphers.len()..] {
            let m = material::unwrap(wrap_key, record.key_id, v.version, &v.wrapped_material)
                .map_err(|_| {
                    KmsError::internal(format!(
                        "key material of {} version {} does not authenticate under the root key",
                        record.key_id, v.version
                    ))
                })?;
            ciphers.push(Arc::new(KeyCipher::new(&m)));
        }
        self.keys
            .insert(record.key_id, KeyEntry { record, ciphers });
        Ok(())
    }
}
