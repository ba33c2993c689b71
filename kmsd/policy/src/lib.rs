//! Authorization for kmsd: principals, key policies, the service policy,
//! grants, and their evaluation as AWS KMS does it. Pure logic, apart from
//! [`SystemDirectory`] (user and group lookups). See `docs/AUTHZ.md` for the
//! model and the defaults.
//!
//! # How the server uses it
//!
//! Once per connection, from SO_PEERCRED:
//! ```
//! # use kmsd_policy::*;
//! # let (uid, gid, pid) = (0, 0, Some(1));
//! let caller = Caller::resolve(uid, gid, pid, &SystemDirectory);
//! ```
//!
//! At start: load the service policy, or create it with
//! [`default_service_policy`]`(admin_uid)` where `admin_uid` is kmsd's own
//! uid. Parse stored policies with [`Policy::parse`] (cache the result).
//!
//! Per request:
//! 1. The operation declares its checks ([`Requirement`]s, built with
//!    [`on_service`], [`on_key`], [`granted`]): an action and a [`Target`]
//!    (no key, the key, or ReEncrypt's / UpdateAlias's destination key).
//!    All must allow.
//! 2. For each, build a [`RequestContext`]
//!    ([`RequestContext::with_encryption_context`] for crypto operations,
//!    [`RequestContext::for_create_grant`] with the validated new grant,
//!    [`RequestContext::for_retire_grant`], or `default()`), and call
//!    [`evaluate`] with a [`Query`]. A [`KeyScope`] carries the key's id,
//!    ARN, parsed policy and grants.
//! 3. If the [`Decision`] is not `Allow`, answer `AccessDeniedException`
//!    with [`Query::denied_message`]. (`Requirement::grant_operation` is
//!    informational: `evaluate` finds the grant operation from the action.)
//!
//! Putting policies (CreateKey with `Policy`, PutKeyPolicy): [`Policy::parse`]
//! then [`Policy::check_principals`]`(&SystemDirectory)`, then, unless
//! `BypassPolicyLockoutSafetyCheck`, [`lockout_check`]. CreateKey without a
//! policy stores [`default_key_policy`]`(admin_uid, caller.uid)`.
//! PutServicePolicy: [`Policy::parse`] and [`Policy::check_principals`].
//! Every [`Error`] converts into a `KmsError` with the right exception.
//!
//! Grants: [`Grant::from_request`] validates CreateGrant (with
//! [`new_grant_id`]); [`mint_grant_token`] makes its token and
//! [`parse_grant_token`] reads `GrantTokens` (kmsd grants take effect at
//! once, so tokens need only parse). [`Grant::to_list_entry`] for ListGrants.
//! RetireGrant: evaluate `kms:RetireGrant` on the grant's key with
//! [`RequestContext::for_retire_grant`] and the key's grants; the retiring
//! principal and a grantee holding RetireGrant are allowed there.
//!
//! Evaluation takes about a microsecond with the default policies, so
//! parse each policy once (when stored or loaded) and keep the [`Policy`];
//! a [`PolicyInterner`] shares one parse among keys with the same text.
//!
//! ```
//! use kmsd_policy::*;
//! let dir = FakeDirectory::new().user("alice", 1000, 100).group("users", 100, &[]);
//! let alice = Caller::resolve(1000, 100, None, &dir);
//! let key_policy = Policy::parse(&default_key_policy(0, 1000)).unwrap();
//! let service = Policy::parse(&default_service_policy(0)).unwrap();
//! let ctx = RequestContext::default();
//! let checks = [granted("kms:GenerateDataKey", Target::Key, GrantOperation::GenerateDataKey)];
//! for req in &checks {
//!     let q = Query {
//!         caller: &alice,
//!         admin_uid: 0,
//!         action: req.action,
//!         key: Some(KeyScope { key_id: "k", arn: "arn:aws:kms:local:0:key/k",
//!                              policy: &key_policy, grants: &[] }),
//!         service_policy: &service,
//!         context: &ctx,
//!     };
//!     assert!(evaluate(&q).is_allowed());
//! }
//! ```

mod actions;
mod condition;
mod defaults;
mod directory;
mod document;
mod error;
mod evaluate;
mod glob;
mod grants;
mod intern;
mod json;
mod principal;
mod system;

pub use actions::{ACTIONS, ActionPattern, Requirement, Target, granted, on_key, on_service};
pub use condition::{BaseOperator, Condition, ConditionKey, Operator, RequestContext, SetOperator};
pub use defaults::{
    DEFAULT_KEY_POLICY_ID, DEFAULT_SERVICE_POLICY_ID, default_key_policy, default_service_policy,
};
pub use directory::{Directory, FakeDirectory};
pub use document::{Actions, Effect, MAX_POLICY_BYTES, Policy, Statement};
pub use error::Error;
pub use evaluate::{Decision, KeyScope, PolicyKind, Query, Source, evaluate, lockout_check};
pub use grants::{
    Grant, GrantOperation, MAX_GRANT_NAME_LEN, MAX_GRANT_TOKEN_LEN, check_pass_on, constraints_met,
    grant_token, is_grant_id, mint_grant_token, new_grant_id, parse_grant_token,
};
pub use intern::PolicyInterner;
pub use principal::{Caller, MAX_NAME_LEN, Principal};
pub use system::SystemDirectory;
