//! The in-memory state: a pure function of the committed mutations. Keys
//! carry their unwrapped ciphers (one per version) so cryptographic calls
//! never touch the store.

use crate::crypto::aead::KeyCipher;
use crate::crypto::material;
use crate::store::{AccessKeyRecord, AliasRecord, KeyRecord, Mutation, Snapshot};
use kmsd_client::KmsError;
use kmsd_policy::{Grant, Policy};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

pub struct KeyEntry {
    pub record: KeyRecord,
    /// `ciphers[i]` is version `i + 1`.
    pub ciphers: Vec<Arc<KeyCipher>>,
    /// `record.policy`, parsed once.
    pub policy: Arc<Policy>,
    /// The key's grants, oldest first.
    pub grants: Vec<Grant>,
}

/// The name of the service policy in the store's `meta` table.
pub const SERVICE_POLICY: &str = "service-policy";

impl KeyEntry {
    pub fn current(&self) -> Option<(u32, Arc<KeyCipher>)> {
        let c = self.ciphers.last()?;
        Some((self.ciphers.len() as u32, c.clone()))
    }

    pub fn version(&self, v: u32) -> Option<Arc<KeyCipher>> {
        self.ciphers.get((v as usize).checked_sub(1)?).cloned()
    }
}

/// An access key with its secret unwrapped (to verify signatures).
pub struct AccessKey {
    pub record: AccessKeyRecord,
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

pub struct State {
    pub keys: HashMap<Uuid, KeyEntry>,
    pub access_keys: BTreeMap<String, AccessKey>,
    pub aliases: BTreeMap<String, AliasRecord>,
    pub meta: BTreeMap<String, String>,
    /// `meta[SERVICE_POLICY]`, parsed; the default until one is stored.
    pub service_policy: Arc<Policy>,
}

fn corrupt(what: String) -> KmsError {
    KmsError::internal(format!("stored state is invalid: {what}"))
}

/// `<key id>/<grant id>`: the store key of a grant.
pub fn grant_store_key(key_id: Uuid, grant_id: &str) -> String {
    format!("{key_id}/{grant_id}")
}

impl State {
    pub fn from_snapshot(
        snap: Snapshot,
        wrap_key: &KeyCipher,
        default_service_policy: Policy,
    ) -> Result<State, KmsError> {
        let mut st = State {
            keys: HashMap::new(),
            access_keys: BTreeMap::new(),
            aliases: BTreeMap::new(),
            meta: BTreeMap::new(),
            service_policy: Arc::new(default_service_policy),
        };
        for r in snap.keys {
            st.put_key(r, wrap_key)?;
        }
        st.aliases = snap
            .aliases
            .into_iter()
            .map(|a| (a.name.clone(), a))
            .collect();
        for (_, json) in snap.grants {
            st.put_grant(&json)?;
        }
        for (name, json) in snap.meta {
            st.put_meta(name, json)?;
        }
        for r in snap.access_keys {
            st.put_access_key(r, wrap_key)?;
        }
        Ok(st)
    }

    fn put_grant(&mut self, json: &str) -> Result<(), KmsError> {
        let g: Grant = serde_json::from_str(json).map_err(|e| corrupt(format!("grant: {e}")))?;
        let id = Uuid::parse_str(&g.key_id).map_err(|e| corrupt(format!("grant key id: {e}")))?;
        if let Some(e) = self.keys.get_mut(&id) {
            e.grants.retain(|x| x.grant_id != g.grant_id);
            e.grants.push(g);
        }
        Ok(())
    }

    fn put_meta(&mut self, name: String, json: String) -> Result<(), KmsError> {
        if name == SERVICE_POLICY {
            let p = Policy::parse(&json).map_err(|e| corrupt(format!("service policy: {e}")))?;
            self.service_policy = Arc::new(p);
        }
        self.meta.insert(name, json);
        Ok(())
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
                Mutation::PutGrant { json, .. } => self.put_grant(&json)?,
                Mutation::DeleteGrant(store_key) => {
                    let (key, grant) = store_key.split_once('/').unwrap_or(("", ""));
                    if let Some(e) = Uuid::parse_str(key)
                        .ok()
                        .and_then(|k| self.keys.get_mut(&k))
                    {
                        e.grants.retain(|g| g.grant_id != grant);
                    }
                }
                Mutation::PutMeta { name, json } => self.put_meta(name, json)?,
                Mutation::PutAccessKey(r) => self.put_access_key(r, wrap_key)?,
                Mutation::DeleteAccessKey(id) => {
                    self.access_keys.remove(&id);
                }
                Mutation::Audited(_) => {}
            }
        }
        Ok(())
    }

    fn put_access_key(&mut self, r: AccessKeyRecord, wrap_key: &KeyCipher) -> Result<(), KmsError> {
        let secret = crate::crypto::secret::unwrap(wrap_key, &r.access_key_id, &r.wrapped_secret)
            .map_err(|_| {
            KmsError::internal(format!(
                "the secret of access key {} does not authenticate under the root key",
                r.access_key_id
            ))
        })?;
        self.access_keys
            .insert(r.access_key_id.clone(), AccessKey { record: r, secret });
        Ok(())
    }

    /// Inserts or replaces a key, unwrapping only versions it lacks.
    fn put_key(&mut self, record: KeyRecord, wrap_key: &KeyCipher) -> Result<(), KmsError> {
        let (mut ciphers, grants) = match self.keys.remove(&record.key_id) {
            Some(e) => (e.ciphers, e.grants),
            None => (Vec::new(), Vec::new()),
        };
        let policy = Arc::new(
            Policy::parse(&record.policy)
                .map_err(|e| corrupt(format!("policy of key {}: {e}", record.key_id)))?,
        );
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
        self.keys.insert(
            record.key_id,
            KeyEntry {
                record,
                ciphers,
                policy,
                grants,
            },
        );
        Ok(())
    }
}
