//! The in-memory state: a pure function of the committed mutations. Key
//! material stays wrapped in the records; a version is unwrapped when first
//! used into the service's bounded [`CipherCache`], so cryptographic calls
//! never touch the store and the key material unwrapped in memory does not
//! grow with the number of keys. Key policies are parsed once per distinct
//! text ([`PolicyInterner`]).

use crate::crypto::aead::{KeyCipher, Unauthentic};
use crate::crypto::cipher_cache::CipherCache;
use crate::crypto::material;
use crate::store::{
    AccessKeyRecord, AliasRecord, KeyRecord, Mutation, PolicyText, Row, Store, StoreError,
    VersionRecord,
};
use kmsd_client::KmsError;
use kmsd_policy::{Grant, Policy, PolicyInterner};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

pub struct KeyEntry {
    pub record: KeyRecord,
    /// `record.policy`, parsed (shared by keys with the same text).
    pub policy: Arc<Policy>,
    /// The key's grants, oldest first.
    pub grants: Vec<Grant>,
    ciphers: Arc<CipherCache>,
}

/// The name of the service policy in the store's `meta` table.
pub const SERVICE_POLICY: &str = "service-policy";

impl KeyEntry {
    /// The current version and its cipher.
    pub fn current(&self) -> Option<(u32, Arc<KeyCipher>)> {
        let n = self.record.versions.len() as u32;
        Some((n, self.cipher(self.record.versions.last()?)?))
    }

    /// Version `v`'s cipher (versions count from 1).
    pub fn version(&self, v: u32) -> Option<Arc<KeyCipher>> {
        let i = (v as usize).checked_sub(1)?;
        self.cipher(self.record.versions.get(i)?)
    }

    fn cipher(&self, v: &VersionRecord) -> Option<Arc<KeyCipher>> {
        let id = self.record.key_id;
        match self.ciphers.cipher(id, v.version, &v.wrapped_material) {
            Ok(c) => Some(c),
            // Every version authenticated when it was loaded or applied.
            Err(Unauthentic) => {
                tracing::error!(key = %id, version = v.version, "key material no longer authenticates");
                None
            }
        }
    }
}

/// The keys by id. Entries are boxed: the table holds a pointer per slot
/// rather than a 216-byte entry, so its spare slots (up to half of them
/// right after it doubles) and the copy made while it grows stay small.
#[derive(Default)]
pub struct Keys(HashMap<Uuid, Box<KeyEntry>>);

impl Keys {
    pub fn get(&self, id: &Uuid) -> Option<&KeyEntry> {
        self.0.get(id).map(|e| &**e)
    }
}

impl std::ops::Deref for Keys {
    type Target = HashMap<Uuid, Box<KeyEntry>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// An access key with its secret unwrapped (to verify signatures).
pub struct AccessKey {
    pub record: AccessKeyRecord,
    pub secret: zeroize::Zeroizing<Vec<u8>>,
}

pub struct State {
    pub keys: Keys,
    pub access_keys: BTreeMap<String, AccessKey>,
    pub aliases: BTreeMap<String, AliasRecord>,
    pub meta: BTreeMap<String, String>,
    /// `meta[SERVICE_POLICY]`, parsed; the default until one is stored.
    pub service_policy: Arc<Policy>,
    /// The store's revision this state is at (0: a store without
    /// revisions). A shared store commits a plan only if it is still there.
    pub rev: i64,
    policies: PolicyInterner,
    ciphers: Arc<CipherCache>,
}

fn corrupt(what: String) -> KmsError {
    KmsError::internal(format!("stored state is invalid: {what}"))
}

/// `<key id>/<grant id>`: the store key of a grant.
pub fn grant_store_key(key_id: Uuid, grant_id: &str) -> String {
    format!("{key_id}/{grant_id}")
}

impl State {
    /// An empty state whose keys unwrap into `ciphers`.
    pub fn new(ciphers: Arc<CipherCache>, default_service_policy: Policy) -> State {
        State {
            keys: Keys::default(),
            access_keys: BTreeMap::new(),
            aliases: BTreeMap::new(),
            meta: BTreeMap::new(),
            service_policy: Arc::new(default_service_policy),
            rev: 0,
            policies: PolicyInterner::new(),
            ciphers,
        }
    }

    /// The committed state of `store`, read one row at a time. Every
    /// version's material is authenticated under `wrap_key` (so a wrong
    /// root key fails here, not at the first request), but none is kept
    /// unwrapped.
    pub fn load(
        store: &dyn Store,
        wrap_key: &KeyCipher,
        ciphers: Arc<CipherCache>,
        default_service_policy: Policy,
    ) -> Result<State, KmsError> {
        let mut st = State::new(ciphers, default_service_policy);
        let mut invalid = None;
        let scanned = store.scan(&mut |row| {
            st.put_row(row, wrap_key).map_err(|e| {
                invalid = Some(e);
                StoreError("stored state is invalid".into())
            })
        });
        if let Some(e) = invalid {
            return Err(e);
        }
        scanned.map_err(super::internal_store)?;
        st.rev = store.revision();
        Ok(st)
    }

    /// A state made of `rows` in [`Store::scan`]'s order (a shared store's
    /// reload), at revision `rev`.
    pub fn from_rows(
        rows: Vec<Row>,
        rev: i64,
        wrap_key: &KeyCipher,
        ciphers: Arc<CipherCache>,
        default_service_policy: Policy,
    ) -> Result<State, KmsError> {
        let mut st = State::new(ciphers, default_service_policy);
        for row in rows {
            st.put_row(row, wrap_key)?;
        }
        st.rev = rev;
        Ok(st)
    }

    /// The cache this state's keys unwrap into.
    pub fn ciphers(&self) -> &Arc<CipherCache> {
        &self.ciphers
    }

    fn put_row(&mut self, row: Row, wrap_key: &KeyCipher) -> Result<(), KmsError> {
        match row {
            Row::Key(r) => self.put_key(r, wrap_key, false),
            Row::Alias(a) => {
                self.aliases.insert(a.name.clone(), a);
                Ok(())
            }
            Row::Grant(_, json) => self.put_grant(&json),
            Row::Meta(name, json) => self.put_meta(name, json),
            Row::AccessKey(a) => self.put_access_key(a, wrap_key),
        }
    }

    /// Distinct key policies held parsed.
    pub fn distinct_policies(&self) -> usize {
        self.policies.len()
    }

    fn put_grant(&mut self, json: &str) -> Result<(), KmsError> {
        let g: Grant = serde_json::from_str(json).map_err(|e| corrupt(format!("grant: {e}")))?;
        let id = Uuid::parse_str(&g.key_id).map_err(|e| corrupt(format!("grant key id: {e}")))?;
        if let Some(e) = self.keys.0.get_mut(&id) {
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
                Mutation::PutKey(r) => self.put_key(r, wrap_key, true)?,
                Mutation::DeleteKey(id) => {
                    if let Some(e) = self.keys.0.remove(&id) {
                        self.drop_entry(*e);
                    }
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
                        .and_then(|k| self.keys.0.get_mut(&k))
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

    /// A deleted key: its unwrapped versions are dropped (and wiped) now,
    /// and its policy text forgotten if no other key has it.
    fn drop_entry(&mut self, e: KeyEntry) {
        self.ciphers
            .forget(e.record.key_id, e.record.versions.len() as u32);
        let KeyEntry { record, policy, .. } = e;
        drop(policy);
        self.policies.release(&record.policy);
    }

    /// Inserts or replaces a key. Versions it did not have are
    /// authenticated under `wrap_key`; with `warm` (a key or version just
    /// made), their ciphers go into the cache.
    fn put_key(
        &mut self,
        mut record: KeyRecord,
        wrap_key: &KeyCipher,
        warm: bool,
    ) -> Result<(), KmsError> {
        let id = record.key_id;
        let known = self.keys.get(&id).map_or(0, |e| e.record.versions.len());
        let mut fresh = Vec::new();
        for v in record.versions.iter().skip(known) {
            let m =
                material::unwrap(wrap_key, id, v.version, &v.wrapped_material).map_err(|_| {
                    KmsError::internal(format!(
                        "key material of {id} version {} does not authenticate under the root key",
                        v.version
                    ))
                })?;
            if warm {
                fresh.push((v.version, KeyCipher::new(&m)));
            }
        }
        let (text, policy) = self
            .policies
            .intern(&record.policy)
            .map_err(|e| corrupt(format!("policy of key {id}: {e}")))?;
        record.policy = PolicyText::from(text);
        let grants = match self.keys.0.remove(&id) {
            Some(old) => {
                let KeyEntry {
                    record: r,
                    policy: p,
                    grants,
                    ..
                } = *old;
                drop(p);
                self.policies.release(&r.policy);
                grants
            }
            None => Vec::new(),
        };
        for (v, c) in fresh {
            self.ciphers.insert(id, v, c);
        }
        self.keys.0.insert(
            id,
            Box::new(KeyEntry {
                record,
                policy,
                grants,
                ciphers: self.ciphers.clone(),
            }),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::{KeyBytes, random_nonce};
    use crate::store::{AuditRef, Snapshot};
    use kmsd_client::{KeyState, Timestamp};
    use kmsd_policy::default_key_policy;

    /// A store that holds a fixed set of keys.
    struct Fixed(Vec<KeyRecord>);

    impl Store for Fixed {
        fn load(&self) -> Result<Snapshot, StoreError> {
            Ok(Snapshot {
                keys: self.0.clone(),
                ..Snapshot::default()
            })
        }
        fn commit(&self, _: &[Mutation]) -> Result<(), StoreError> {
            Ok(())
        }
        fn audited(&self) -> Result<Vec<AuditRef>, StoreError> {
            Ok(vec![])
        }
    }

    fn record(wrap_key: &KeyCipher, policy: &str, versions: u32) -> KeyRecord {
        let key_id = Uuid::new_v4();
        KeyRecord {
            key_id,
            created: Timestamp(1),
            description: String::new(),
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            tags: vec![],
            rotation: None,
            on_demand_rotations: 0,
            versions: (1..=versions)
                .map(|version| VersionRecord {
                    version,
                    created: Timestamp(1),
                    rotation: None,
                    wrapped_material: material::wrap(
                        wrap_key,
                        key_id,
                        version,
                        &KeyBytes::random(),
                    ),
                })
                .collect(),
            policy: policy.into(),
            creator_uid: 0,
        }
    }

    fn service_policy() -> Policy {
        Policy::parse(&kmsd_policy::default_service_policy(0)).unwrap()
    }

    fn load(wk: &Arc<KeyCipher>, capacity: usize, keys: Vec<KeyRecord>) -> State {
        let cache = Arc::new(CipherCache::new(wk.clone(), capacity));
        State::load(&Fixed(keys), wk, cache, service_policy()).unwrap()
    }

    #[test]
    fn keys_with_one_policy_text_share_its_parse_and_its_text() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let (p1, p2) = (default_key_policy(0, 1000), default_key_policy(0, 1001));
        let recs = vec![
            record(&wk, &p1, 1),
            record(&wk, &p1, 1),
            record(&wk, &p2, 1),
        ];
        let ids: Vec<Uuid> = recs.iter().map(|r| r.key_id).collect();
        let mut st = load(&wk, 8, recs);
        let e = |st: &State, i: usize| -> (Arc<Policy>, PolicyText) {
            let e = st.keys.get(&ids[i]).unwrap();
            (e.policy.clone(), e.record.policy.clone())
        };
        let ((a, ta), (b, tb), (c, tc)) = (e(&st, 0), e(&st, 1), e(&st, 2));
        assert!(Arc::ptr_eq(&a, &b), "one parse for one text");
        assert!(ta.shares(&tb), "and one copy of the text");
        assert!(!Arc::ptr_eq(&a, &c) && !ta.shares(&tc));
        assert_eq!(&*ta, p1);
        assert_eq!(st.distinct_policies(), 2);
        drop((a, b, c, ta, tb, tc));

        // A new policy for key 2 (PutKeyPolicy) releases the old text.
        let mut r = st.keys.get(&ids[2]).unwrap().record.clone();
        r.policy = p1.clone().into();
        st.apply(vec![Mutation::PutKey(r)], &wk).unwrap();
        assert_eq!(st.distinct_policies(), 1);
        assert!(Arc::ptr_eq(
            &st.keys.get(&ids[2]).unwrap().policy,
            &st.keys.get(&ids[0]).unwrap().policy
        ));
        let deletes = ids.iter().map(|id| Mutation::DeleteKey(*id)).collect();
        st.apply(deletes, &wk).unwrap();
        assert_eq!(
            st.distinct_policies(),
            0,
            "deleted keys' policies are forgotten"
        );
    }

    #[test]
    fn load_unwraps_nothing_and_an_evicted_version_unwraps_to_the_same_key() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let p = default_key_policy(0, 0);
        let (ra, rb) = (record(&wk, &p, 2), record(&wk, &p, 1));
        let (a, b) = (ra.key_id, rb.key_id);
        let st = load(&wk, 1, vec![ra, rb]);
        assert!(st.ciphers.is_empty(), "no key material unwrapped at load");

        let (v, ca) = st.keys.get(&a).unwrap().current().unwrap();
        assert_eq!(v, 2);
        let nonce = random_nonce();
        let mut buf = b"data key".to_vec();
        let tag = ca.seal(&nonce, b"ctx", &mut buf);
        drop(ca);

        st.keys.get(&b).unwrap().current().unwrap();
        assert!(!st.ciphers.contains(a, 2), "capacity 1: evicted");
        let again = st.keys.get(&a).unwrap().version(2).unwrap();
        again.open(&nonce, b"ctx", &mut buf, &tag).unwrap();
        assert_eq!(&buf[..], b"data key");
        assert_eq!(st.ciphers.unwraps(), 3);

        let ea = st.keys.get(&a).unwrap();
        assert!(ea.version(1).is_some());
        assert!(ea.version(0).is_none() && ea.version(3).is_none());
    }

    #[test]
    fn load_refuses_material_wrapped_under_another_key() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let other = KeyCipher::new(&KeyBytes::random());
        let p = default_key_policy(0, 0);
        let cache = Arc::new(CipherCache::new(wk.clone(), 8));
        let keys = vec![record(&wk, &p, 1), record(&other, &p, 1)];
        let e = State::load(&Fixed(keys), &wk, cache, service_policy())
            .err()
            .expect("a key under another root key fails the start");
        assert!(e.to_string().contains("does not authenticate"), "{e}");
    }

    #[test]
    fn applied_versions_are_checked_and_kept_and_deletion_drops_them() {
        let wk = Arc::new(KeyCipher::new(&KeyBytes::random()));
        let p = default_key_policy(0, 0);
        let cache = Arc::new(CipherCache::new(wk.clone(), 8));
        let mut st = State::new(cache, service_policy());
        let r = record(&wk, &p, 2);
        let id = r.key_id;
        st.apply(vec![Mutation::PutKey(r)], &wk).unwrap();
        assert!(st.ciphers.contains(id, 1) && st.ciphers.contains(id, 2));
        st.keys.get(&id).unwrap().current().unwrap();
        assert_eq!(st.ciphers.unwraps(), 0, "a new key is served warm");

        let bad = record(&KeyCipher::new(&KeyBytes::random()), &p, 1);
        let bad_id = bad.key_id;
        assert!(st.apply(vec![Mutation::PutKey(bad)], &wk).is_err());
        assert!(st.keys.get(&bad_id).is_none());

        st.apply(vec![Mutation::DeleteKey(id)], &wk).unwrap();
        assert!(st.ciphers.is_empty(), "a deleted key's material is wiped");
    }
}
