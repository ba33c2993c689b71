//! The key service: AWS KMS semantics over an in-memory state backed by a
//! durable [`Store`]. One handler file per request family; [`dispatch`]
//! routes a [`Request`] to its handler.
//!
//! Reads and cryptographic calls take a read lock only. Mutations are
//! serialized by one mutex: compute the change from the current state,
//! commit it to the store (durable), then apply it in memory: so nothing
//! is acknowledged that a restart would not find.

mod aliases;
mod authorize;
mod crypto_ops;
pub mod dispatch;
mod grants;
mod keys;
mod lifecycle;
pub mod paginate;
mod policies;
mod rotation;
mod state;
mod tags;
pub mod validate;

pub use state::{KeyEntry, State};

use crate::clock::Clock;
use crate::crypto::aead::KeyCipher;
use crate::crypto::rootkey::{MATERIAL_WRAP_LABEL, RootKey};
use crate::store::{Mutation, Store};
use kmsd_client::{KeyState, KmsError, Timestamp};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

pub type Result<T> = std::result::Result<T, KmsError>;

/// Who is calling: uid, gid and pid from the kernel (SO_PEERCRED), with
/// supplementary groups and names from the system's databases.
pub use kmsd_policy::Caller;

/// Names used in ARNs and metadata.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub region: String,
    pub account: String,
    /// The uid kmsd runs as: the administrator.
    pub admin_uid: u32,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            region: "local".into(),
            account: "000000000000".into(),
            admin_uid: 0,
        }
    }
}

pub struct KeyService {
    config: ServiceConfig,
    store: Box<dyn Store>,
    clock: Arc<dyn Clock>,
    wrap_key: KeyCipher,
    state: RwLock<State>,
    writer: Mutex<()>,
}

fn internal_store(e: impl std::fmt::Display) -> KmsError {
    tracing::error!(error = %e, "state store failure");
    KmsError::internal(format!("kmsd could not persist the change: {e}"))
}

impl KeyService {
    pub fn new(
        config: ServiceConfig,
        store: Box<dyn Store>,
        clock: Arc<dyn Clock>,
        root: &RootKey,
    ) -> Result<Self> {
        let wrap_key = KeyCipher::new(&root.derive(MATERIAL_WRAP_LABEL));
        let snap = store.load().map_err(internal_store)?;
        let default_policy = kmsd_policy::default_service_policy(config.admin_uid);
        let parsed = kmsd_policy::Policy::parse(&default_policy)?;
        let state = State::from_snapshot(snap, &wrap_key, parsed)?;
        let needs_policy = !state.meta.contains_key(state::SERVICE_POLICY);
        let svc = KeyService {
            config,
            store,
            clock,
            wrap_key,
            state: RwLock::new(state),
            writer: Mutex::new(()),
        };
        if needs_policy {
            let json = default_policy;
            svc.mutate(|_, _| {
                Ok((
                    (),
                    vec![Mutation::PutMeta {
                        name: state::SERVICE_POLICY.into(),
                        json,
                    }],
                ))
            })?;
        }
        Ok(svc)
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn wrap_key(&self) -> &KeyCipher {
        &self.wrap_key
    }

    /// Runs one mutation: `plan` looks at the current state and returns its
    /// answer and the changes; the changes are committed durably, then
    /// applied in memory. Mutations never interleave.
    pub(crate) fn mutate<T>(
        &self,
        plan: impl FnOnce(&State, Timestamp) -> Result<(T, Vec<Mutation>)>,
    ) -> Result<T> {
        let _w = self.writer();
        let now = self.clock.now();
        let (out, batch) = plan(&self.read(), now)?;
        if !batch.is_empty() {
            self.store.commit(&batch).map_err(internal_store)?;
            self.write_state().apply(batch, &self.wrap_key)?;
        }
        Ok(out)
    }

    pub fn key_arn(&self, id: Uuid) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{id}",
            self.config.region, self.config.account
        )
    }

    pub fn alias_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:kms:{}:{}:{name}",
            self.config.region, self.config.account
        )
    }

    /// Resolves a key id, key ARN, alias name or alias ARN to a key id.
    pub fn resolve(&self, st: &State, key_ref: &str) -> Result<Uuid> {
        validate::key_ref(key_ref)?;
        let local = match key_ref.strip_prefix("arn:") {
            Some(_) => self.strip_arn(key_ref)?,
            None => key_ref,
        };
        if local.starts_with("alias/") {
            return st.aliases.get(local).map(|a| a.target).ok_or_else(|| {
                KmsError::not_found(format!("Alias {} is not found.", self.alias_arn(local)))
            });
        }
        let id = local.strip_prefix("key/").unwrap_or(local);
        let not_found =
            || KmsError::not_found(format!("Key '{}' does not exist", self.key_arn_or_raw(id)));
        let id = Uuid::parse_str(id).map_err(|_| not_found())?;
        if st.keys.contains_key(&id) {
            Ok(id)
        } else {
            Err(not_found())
        }
    }

    fn key_arn_or_raw(&self, id: &str) -> String {
        match Uuid::parse_str(id) {
            Ok(u) => self.key_arn(u),
            Err(_) => id.to_string(),
        }
    }

    /// `arn:aws:kms:<region>:<account>:<resource>` → `<resource>`, if region
    /// and account are ours.
    fn strip_arn<'a>(&self, arn: &'a str) -> Result<&'a str> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", "aws", "kms", region, account, resource]
                if *region == self.config.region && *account == self.config.account =>
            {
                Ok(resource)
            }
            ["arn", "aws", "kms", _, _, _] => Err(KmsError::not_found(format!(
                "'{arn}' names another region or account than this kmsd's ({}:{})",
                self.config.region, self.config.account
            ))),
            _ => Err(KmsError::new(
                kmsd_client::ErrorKind::InvalidArnException,
                format!("'{arn}' is not a valid KMS ARN"),
            )),
        }
    }

    /// The key entry for a resolved id (it exists: `resolve` said so under
    /// the same lock).
    pub fn entry<'s>(&self, st: &'s State, id: Uuid) -> Result<&'s KeyEntry> {
        st.keys.get(&id).ok_or_else(|| {
            KmsError::not_found(format!("Key '{}' does not exist", self.key_arn(id)))
        })
    }

    /// Key state rule of every cryptographic operation.
    pub fn require_usable(&self, e: &KeyEntry) -> Result<()> {
        match e.record.state {
            KeyState::Enabled => Ok(()),
            KeyState::Disabled => Err(KmsError::disabled(format!(
                "{} is disabled.",
                self.key_arn(e.record.key_id)
            ))),
            KeyState::PendingDeletion => Err(KmsError::invalid_state(format!(
                "{} is pending deletion.",
                self.key_arn(e.record.key_id)
            ))),
        }
    }

    /// Rejects changes to a key pending deletion.
    pub fn require_not_pending_deletion(&self, e: &KeyEntry) -> Result<()> {
        if e.record.state == KeyState::PendingDeletion {
            return Err(KmsError::invalid_state(format!(
                "{} is pending deletion.",
                self.key_arn(e.record.key_id)
            )));
        }
        Ok(())
    }

    /// Applies `f` to a copy of the key's record and commits it.
    pub(crate) fn update_key<T>(
        &self,
        key_ref: &str,
        f: impl FnOnce(&KeyEntry, &mut crate::store::KeyRecord, Timestamp) -> Result<T>,
    ) -> Result<T> {
        self.mutate(|st, now| {
            let id = self.resolve(st, key_ref)?;
            let entry = self.entry(st, id)?;
            let mut rec = entry.record.clone();
            let out = f(entry, &mut rec, now)?;
            let batch = if rec == entry.record {
                vec![]
            } else {
                vec![Mutation::PutKey(rec)]
            };
            Ok((out, batch))
        })
    }
}

#[cfg(test)]
pub(crate) mod testkit;
