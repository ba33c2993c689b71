//! [`Operation`]: everything kmsd knows about one AWS KMS operation, in one
//! `impl` beside its handler: the keys it names, its grant tokens, whether
//! it mutates, the policy checks it needs, its condition keys and audit
//! parameters, and how it runs on the resolved ids. The pipeline
//! (`pipeline.rs`) is the only caller, and `dispatch.rs` is generated from
//! kmsd-client's list of operations, so an operation without an `impl`
//! does not compile.

use super::{Caller, KeyEntry, KeyService, Result, State};
use crate::store::{KeyRecord, Mutation};
use kmsd_client::{KmsError, RetireGrantRequest, Timestamp};
use kmsd_policy::{RequestContext, Requirement};
use serde_json::Value;
use uuid::Uuid;

/// One key reference of a request, resolved once by the pipeline.
#[derive(Clone, Copy)]
pub enum KeyRef<'a> {
    /// A KeyId parameter: key id, key ARN, alias name or alias ARN.
    Named(&'a str),
    /// A key id or key ARN only (an alias target): aliases are refused.
    Direct(&'a str),
    /// The key a ciphertext blob names.
    Blob(&'a [u8]),
    /// The key an alias points at now.
    AliasTarget(&'a str),
    /// The key of the grant a RetireGrant names.
    GrantOf(&'a RetireGrantRequest),
}

/// The key references of a request.
#[derive(Clone, Copy, Default)]
pub struct Refs<'a> {
    /// Authorized as `Target::Key`.
    pub key: Option<KeyRef<'a>>,
    /// Authorized as `Target::DestinationKey`.
    pub destination: Option<KeyRef<'a>>,
    /// Named but not authorized against: Decrypt's `KeyId`, ReEncrypt's
    /// `SourceKeyId` (checked against the blob), ListAliases' filter.
    pub other: Option<KeyRef<'a>>,
}

impl<'a> Refs<'a> {
    pub fn key(r: KeyRef<'a>) -> Self {
        Refs {
            key: Some(r),
            ..Refs::default()
        }
    }
}

/// The ids the references resolved to, under the guard the operation runs
/// under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub key: Option<Uuid>,
    pub destination: Option<Uuid>,
    pub other: Option<Uuid>,
}

impl Resolved {
    pub fn key(id: Uuid) -> Self {
        Resolved {
            key: Some(id),
            ..Resolved::default()
        }
    }
}

/// What an operation runs with: the state as of its resolution, the
/// resolved ids, the caller and the time.
pub struct Exec<'a> {
    pub svc: &'a KeyService,
    pub st: &'a State,
    pub ids: Resolved,
    pub caller: &'a Caller,
    pub now: Timestamp,
}

/// An operation's answer and the changes it makes (empty for reads).
pub type Planned<T> = Result<(T, Vec<Mutation>)>;

pub trait Operation: kmsd_client::messages::Operation + serde::Serialize + Clone {
    /// Whether it changes state: it then runs under the writer lock and
    /// its record is durable before its commit.
    const MUTATES: bool;
    /// The checks it needs; all must allow.
    const CHECKS: &'static [Requirement];

    /// Checks this request needs beyond [`Self::CHECKS`] (CreateKey with
    /// tags also needs `kms:TagResource`).
    fn extra_checks(&self) -> &'static [Requirement] {
        &[]
    }

    /// Checks on the request alone, before any lock is taken: bounds and
    /// formats (docs/LIMITS.md), and lookups that may be slow (the users
    /// and groups a policy names).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    fn refs(&self) -> Refs<'_> {
        Refs::default()
    }

    fn grant_tokens(&self) -> &[String] {
        &[]
    }

    /// Condition keys for the check against `target`.
    fn conditions(&self, _cx: &Exec<'_>, _target: kmsd_policy::Target) -> Result<RequestContext> {
        Ok(RequestContext::default())
    }

    /// `requestParameters` of its audit record: the request's own fields,
    /// as its serde implementation writes them. Never plaintext, ciphertext
    /// or key bytes: the audit crate scrubs secret-named fields
    /// (`Plaintext`, `CiphertextBlob`, ...) when it writes the record, and
    /// operations carrying plaintext override this to leave it out first.
    fn audit_parameters(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The ARN of a key the answer created (CreateKey), for the record.
    fn created_key(_out: &Self::Output) -> Option<String> {
        None
    }

    /// Runs on the resolved ids.
    fn execute(self, cx: &Exec<'_>) -> Planned<Self::Output>;
}

impl Exec<'_> {
    /// The resolved `Target::Key` id.
    pub fn key_id(&self) -> Result<Uuid> {
        self.ids
            .key
            .ok_or_else(|| KmsError::internal("operation has no resolved key"))
    }

    pub fn entry(&self) -> Result<&KeyEntry> {
        self.svc.entry(self.st, self.key_id()?)
    }

    /// Applies `f` to a copy of the resolved key's record; a changed record
    /// is the plan's one mutation.
    pub fn update_key<T>(
        &self,
        f: impl FnOnce(&KeyEntry, &mut KeyRecord) -> Result<T>,
    ) -> Planned<T> {
        let entry = self.entry()?;
        let mut rec = entry.record.clone();
        let out = f(entry, &mut rec)?;
        let batch = if rec == entry.record {
            vec![]
        } else {
            vec![Mutation::PutKey(rec)]
        };
        Ok((out, batch))
    }
}

/// A read's answer: no changes.
pub fn read<T>(out: T) -> Planned<T> {
    Ok((out, Vec::new()))
}
