//! The key service: AWS KMS semantics over an in-memory state backed by a
//! durable [`Store`], with its audit trail. One handler file per request
//! family, each operation's facts in its [`operation::Operation`] impl;
//! [`dispatch`] routes a `Request` into the one [`pipeline`].
//!
//! Reads and cryptographic calls take a read lock only. Mutations are
//! serialized by one mutex held from resolution to commit: resolve,
//! authorize and plan on the current state, write the audit record
//! (durable), commit to the store (durable), then apply in memory: so
//! nothing is acknowledged that a restart would not find, and nothing is
//! committed without its record.

mod access_keys;
mod aliases;
pub mod audit;
mod crypto_ops;
pub mod dispatch;
mod grants;
mod keys;
mod lifecycle;
pub mod operation;
pub mod paginate;
pub mod pipeline;
mod policies;
mod rotation;
mod state;
mod tags;
pub mod validate;

pub use audit::{AuditSink, Auditor};
pub use pipeline::Outcome;
pub use state::{KeyEntry, State};

use crate::clock::Clock;
use crate::crypto::aead::KeyCipher;
use crate::crypto::cipher_cache::{self, CipherCache};
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
    /// Key versions kept unwrapped in memory, least recently used evicted.
    pub key_cache_versions: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            region: "local".into(),
            account: "000000000000".into(),
            admin_uid: 0,
            key_cache_versions: cipher_cache::DEFAULT_CAPACITY,
        }
    }
}

pub struct KeyService {
    config: ServiceConfig,
    store: Box<dyn Store>,
    clock: Arc<dyn Clock>,
    wrap_key: Arc<KeyCipher>,
    state: RwLock<State>,
    writer: Mutex<()>,
    auditor: Auditor,
}

pub(crate) fn internal_store(e: impl std::fmt::Display) -> KmsError {
    tracing::error!(error = %e, "state store failure");
    KmsError::internal(format!("kmsd could not persist the change: {e}"))
}

impl KeyService {
    pub fn new(
        config: ServiceConfig,
        store: Box<dyn Store>,
        clock: Arc<dyn Clock>,
        root: &RootKey,
        audit: Box<dyn AuditSink>,
    ) -> Result<Self> {
        let wrap_key = Arc::new(KeyCipher::new(&root.derive(MATERIAL_WRAP_LABEL)));
        let ciphers = CipherCache::new(wrap_key.clone(), config.key_cache_versions);
        let default_policy = kmsd_policy::default_service_policy(config.admin_uid);
        let parsed = kmsd_policy::Policy::parse(&default_policy)?;
        let state = State::load(&*store, &wrap_key, Arc::new(ciphers), parsed)?;
        let needs_policy = !state.meta.contains_key(state::SERVICE_POLICY);
        let svc = KeyService {
            config,
            store,
            clock,
            wrap_key,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            auditor: Auditor::new(audit),
        };
        if needs_policy {
            let json = default_policy;
            let params = serde_json::json!({ "Policy": json });
            svc.service_event("PutServicePolicy", "kmsd.init", params, |_, _| {
                let m = Mutation::PutMeta {
                    name: state::SERVICE_POLICY.into(),
                    json,
                };
                Ok(((), vec![m], operation::Resolved::default()))
            })?;
        }
        Ok(svc)
    }

    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// An event kmsd makes itself (`invoked_by`: `kmsd.sweeper`, ...): planned
    /// under the writer lock, recorded and committed as a request would be.
    pub(crate) fn service_event<T>(
        &self,
        name: &'static str,
        invoked_by: &str,
        parameters: serde_json::Value,
        plan: impl FnOnce(&State, Timestamp) -> Result<(T, Vec<Mutation>, operation::Resolved)>,
    ) -> Result<T> {
        let base = pipeline::EventBase {
            name,
            request_id: self.auditor.request_id(),
            principal: audit::service_principal(invoked_by),
            parameters,
        };
        self.auditor.check_healthy()?;
        let _w = self.writer();
        let st = self.read();
        let mut ids = operation::Resolved::default();
        let planned = match plan(&st, self.clock.now()) {
            // Nothing to do after all (another event got there first): no
            // record.
            Ok((out, batch, _)) if batch.is_empty() => return Ok(out),
            Ok((out, batch, resolved)) => {
                ids = resolved;
                Ok((out, batch))
            }
            Err(e) => Err(e),
        };
        let (result, record) = self.commit_audited(st, base, ids, planned, |_| None);
        self.settle(record, result)
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
                "'{arn}' names another region or account than this request's ({}:{})",
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
}

#[cfg(test)]
pub(crate) mod testkit;
