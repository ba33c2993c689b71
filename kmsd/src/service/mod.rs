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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
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
    /// With a shared store: requests are refused once the state may be
    /// older than this (`--etcd-max-stale-secs`).
    pub max_stale: std::time::Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            region: "local".into(),
            account: "000000000000".into(),
            admin_uid: 0,
            key_cache_versions: cipher_cache::DEFAULT_CAPACITY,
            max_stale: std::time::Duration::from_secs(300),
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
    /// Signalled whenever `state.rev` moves (a conflict's loser waits for
    /// the winner's change).
    applied: (Mutex<()>, Condvar),
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
        let svc = KeyService {
            config,
            store,
            clock,
            wrap_key,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            auditor: Auditor::new(audit),
            applied: (Mutex::new(()), Condvar::new()),
        };
        // A shared store's instance does this once it follows the store
        // (another instance may be storing one at the same time).
        if !svc.store.shared() {
            svc.ensure_service_policy()?;
        }
        Ok(svc)
    }

    /// Stores the default service policy unless one is stored.
    fn ensure_service_policy(&self) -> Result<()> {
        if self.read().meta.contains_key(state::SERVICE_POLICY) {
            return Ok(());
        }
        let json = kmsd_policy::default_service_policy(self.config.admin_uid);
        let params = serde_json::json!({ "Policy": json });
        self.service_event("PutServicePolicy", "kmsd.init", params, |st, _| {
            if st.meta.contains_key(state::SERVICE_POLICY) {
                return Ok(((), vec![], operation::Resolved::default()));
            }
            let m = Mutation::PutMeta {
                name: state::SERVICE_POLICY.into(),
                json: json.clone(),
            };
            Ok(((), vec![m], operation::Resolved::default()))
        })
    }

    /// With a shared store: starts applying the changes other instances
    /// commit (crate::store::ChangeSink).
    pub fn follow_store(self: &Arc<Self>) -> Result<()> {
        if !self.store.shared() {
            return Ok(());
        }
        let me: std::sync::Weak<dyn crate::store::ChangeSink> = Arc::downgrade(self) as _;
        self.store.subscribe(me);
        self.ensure_service_policy()
    }

    /// Whether this instance runs the sweeper (with a shared store, one
    /// instance does).
    pub fn may_sweep(&self) -> bool {
        self.store.may_sweep()
    }

    /// How old the state may be (`None`: the store has no other writers).
    pub fn staleness(&self) -> Option<std::time::Duration> {
        self.store.staleness()
    }

    /// Refuses requests while a shared store has not been heard from for
    /// longer than `max_stale`.
    fn fresh_enough(&self) -> Result<()> {
        match self.store.staleness() {
            Some(s) if s > self.config.max_stale => Err(KmsError::dependency_timeout(format!(
                "kmsd has not heard from its store for {} s (more than {} s); retry later",
                s.as_secs(),
                self.config.max_stale.as_secs()
            ))),
            _ => Ok(()),
        }
    }

    /// Waits (at most `limit`) until the state is at revision `rev`.
    fn wait_applied(&self, rev: i64, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let (m, cv) = &self.applied;
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.read().rev >= rev {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            g = cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Swaps in a reloaded state; keys it no longer has are forgotten by
    /// the cipher cache (their material wiped).
    fn replace_state(&self, new: State) {
        let mut st = self.write_state();
        for (id, e) in st.keys.iter() {
            if !new.keys.contains_key(id) {
                new.ciphers().forget(*id, e.record.versions.len() as u32);
            }
        }
        *st = new;
        drop(st);
        let _g = self.applied.0.lock().unwrap_or_else(|p| p.into_inner());
        self.applied.1.notify_all();
    }

    /// Applies a committed batch at `rev` unless the state is already
    /// there (a change seen twice: committed here, then watched).
    fn apply_at(&self, rev: i64, batch: Vec<Mutation>) -> Result<()> {
        let mut st = self.write_state();
        if rev != 0 && rev <= st.rev {
            return Ok(());
        }
        let mut result = Ok(());
        for m in batch {
            if let Err(e) = st.apply(vec![m], &self.wrap_key) {
                tracing::error!(error = %e, "a committed change could not be applied");
                result = Err(e);
            }
        }
        if rev != 0 {
            st.rev = rev;
        }
        drop(st);
        let _g = self.applied.0.lock().unwrap_or_else(|p| p.into_inner());
        self.applied.1.notify_all();
        result
    }

    pub fn auditor(&self) -> &Auditor {
        &self.auditor
    }

    /// An event kmsd makes itself (`invoked_by`: `kmsd.sweeper`, ...): planned
    /// under the writer lock, recorded and committed as a request would be
    /// (and planned again on the newer state when another instance of a
    /// shared store committed first).
    pub(crate) fn service_event<T>(
        &self,
        name: &'static str,
        invoked_by: &str,
        parameters: serde_json::Value,
        mut plan: impl FnMut(&State, Timestamp) -> Result<(T, Vec<Mutation>, operation::Resolved)>,
    ) -> Result<T> {
        let base = pipeline::EventBase {
            name,
            request_id: self.auditor.request_id(),
            principal: audit::service_principal(invoked_by),
            parameters,
        };
        self.auditor.check_healthy()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let committed = {
                let _w = self.writer();
                let st = self.read();
                let mut ids = operation::Resolved::default();
                let planned = match plan(&st, self.clock.now()) {
                    // Nothing to do after all (another event got there
                    // first): no record.
                    Ok((out, batch, _)) if batch.is_empty() => return Ok(out),
                    Ok((out, batch, resolved)) => {
                        ids = resolved;
                        Ok((out, batch))
                    }
                    Err(e) => Err(e),
                };
                self.commit_audited(st, base.clone(), ids, planned, |_| None)
            };
            match committed {
                pipeline::Committed::Done(result, record) => return self.settle(record, result),
                pipeline::Committed::Retry(rev) => self.before_retry(attempt, rev)?,
            }
        }
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
