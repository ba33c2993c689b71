//! Authorization as AWS KMS decides it:
//!
//! 1. An explicit Deny in the key policy or the service policy wins.
//! 2. Otherwise an Allow in the key policy allows;
//! 3. or an Allow in the service policy, for an operation that names no
//!    key, or for a key whose policy allows the `account` principal this
//!    action (AWS: "IAM policies take effect only if the key policy allows
//!    the account");
//! 4. or a grant on the key (grantee, operation and constraints match);
//! 5. otherwise the request is denied (implicit deny).
//!
//! One exception, the analogue of the AWS root user managing IAM: the
//! administrator may always GetServicePolicy and PutServicePolicy, so the
//! service cannot be locked out of its own configuration.

use crate::condition::RequestContext;
use crate::document::{Effect, Policy, Statement};
use crate::error::Error;
use crate::grants::{Grant, GrantOperation};
use crate::principal::{Caller, Principal};
use std::fmt;

/// One authorization question: may `caller` perform `action` (on `key`)?
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub caller: &'a Caller,
    /// The uid kmsd runs as.
    pub admin_uid: u32,
    /// As policies name it: `kms:Decrypt` (see [`crate::Requirement`]).
    pub action: &'a str,
    /// The key the action is on; `None` for operations that name no key.
    pub key: Option<KeyScope<'a>>,
    pub service_policy: &'a Policy,
    pub context: &'a RequestContext,
}

/// The key an action is on, with its policy and grants.
#[derive(Clone, Copy, Debug)]
pub struct KeyScope<'a> {
    pub key_id: &'a str,
    /// Matched against statements' `Resource`.
    pub arn: &'a str,
    pub policy: &'a Policy,
    /// The key's grants (others are ignored).
    pub grants: &'a [Grant],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Key,
    Service,
}

/// What allowed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    KeyPolicy {
        sid: Option<String>,
    },
    ServicePolicy {
        sid: Option<String>,
    },
    Grant {
        grant_id: String,
    },
    /// RetireGrant by the grant's retiring principal.
    RetiringPrincipal {
        grant_id: String,
    },
    /// The administrator's standing right to Get/PutServicePolicy.
    Administrator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Source),
    ExplicitDeny {
        policy: PolicyKind,
        sid: Option<String>,
    },
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

fn sid_text(sid: &Option<String>) -> String {
    match sid {
        Some(s) => format!(" statement \"{s}\""),
        None => String::new(),
    }
}

impl fmt::Display for Decision {
    /// Why: `allowed by key policy statement "Admin"`, `explicitly denied by
    /// service policy statement "NoRandom"`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(Source::KeyPolicy { sid }) => {
                write!(f, "allowed by the key policy{}", sid_text(sid))
            }
            Decision::Allow(Source::ServicePolicy { sid }) => {
                write!(f, "allowed by the service policy{}", sid_text(sid))
            }
            Decision::Allow(Source::Grant { grant_id }) => {
                write!(f, "allowed by grant {grant_id}")
            }
            Decision::Allow(Source::RetiringPrincipal { grant_id }) => {
                write!(f, "allowed as retiring principal of grant {grant_id}")
            }
            Decision::Allow(Source::Administrator) => f.write_str("allowed to the administrator"),
            Decision::ExplicitDeny { policy, sid } => {
                let which = match policy {
                    PolicyKind::Key => "key policy",
                    PolicyKind::Service => "service policy",
                };
                write!(f, "explicitly denied by the {which}{}", sid_text(sid))
            }
            Decision::ImplicitDeny => {
                f.write_str("no key policy, service policy or grant allows it")
            }
        }
    }
}

const SERVICE_POLICY_ACTIONS: [&str; 2] = ["kms:GetServicePolicy", "kms:PutServicePolicy"];

/// Decides one [`Query`].
pub fn evaluate(q: &Query) -> Decision {
    if q.caller.uid == q.admin_uid && SERVICE_POLICY_ACTIONS.contains(&q.action) {
        return Decision::Allow(Source::Administrator);
    }
    let resource = q.key.map_or("*", |k| k.arn);
    let applies = |st: &&Statement, effect: Effect| {
        st.effect == effect && principal_matches(st, q) && statement_matches(st, q, resource)
    };

    if let Some(key) = q.key
        && let Some(st) = key
            .policy
            .statements
            .iter()
            .find(|st| applies(st, Effect::Deny))
    {
        return Decision::ExplicitDeny {
            policy: PolicyKind::Key,
            sid: st.sid.clone(),
        };
    }
    if let Some(st) = q
        .service_policy
        .statements
        .iter()
        .find(|st| applies(st, Effect::Deny))
    {
        return Decision::ExplicitDeny {
            policy: PolicyKind::Service,
            sid: st.sid.clone(),
        };
    }

    if let Some(key) = q.key
        && let Some(st) = key
            .policy
            .statements
            .iter()
            .find(|st| applies(st, Effect::Allow))
    {
        return Decision::Allow(Source::KeyPolicy {
            sid: st.sid.clone(),
        });
    }
    let service_counts = match q.key {
        None => true,
        Some(key) => key.policy.statements.iter().any(|st| {
            st.effect == Effect::Allow
                && st.principals.contains(&Principal::Account)
                && statement_matches(st, q, resource)
        }),
    };
    if service_counts
        && let Some(st) = q
            .service_policy
            .statements
            .iter()
            .find(|st| applies(st, Effect::Allow))
    {
        return Decision::Allow(Source::ServicePolicy {
            sid: st.sid.clone(),
        });
    }

    if let Some(key) = q.key {
        let grants = key.grants.iter().filter(|g| g.key_id == key.key_id);
        if let Some(op) = GrantOperation::for_action(q.action) {
            for g in grants.clone() {
                if g.allows(q.caller, op, q.context) {
                    return Decision::Allow(Source::Grant {
                        grant_id: g.grant_id.clone(),
                    });
                }
            }
        }
        if q.action == "kms:RetireGrant"
            && let Some(target) = &q.context.target_grant_id
            && let Some(g) = grants.clone().find(|g| g.grant_id == *target)
            && g.may_retire(q.caller)
        {
            return Decision::Allow(Source::RetiringPrincipal {
                grant_id: g.grant_id.clone(),
            });
        }
    }
    Decision::ImplicitDeny
}

/// Whether a statement names the caller. `account` names the administrator
/// in an Allow and every caller in a Deny.
fn principal_matches(st: &Statement, q: &Query) -> bool {
    st.principals.iter().any(|p| match (p, st.effect) {
        (Principal::Account, Effect::Deny) => true,
        _ => p.matches(q.caller, q.admin_uid),
    })
}

/// Action, resource and conditions (everything but the principal).
fn statement_matches(st: &Statement, q: &Query, resource: &str) -> bool {
    st.actions.matches(q.action)
        && st.matches_resource(resource)
        && st.conditions.iter().all(|c| c.holds(q.caller, q.context))
}

impl Query<'_> {
    /// The AccessDeniedException message for a denial:
    /// `uid:1000 (user:alice) is not authorized to perform kms:Decrypt on
    /// arn:...: no key policy, service policy or grant allows it`.
    pub fn denied_message(&self, decision: &Decision) -> String {
        let on = self.key.map_or("*", |k| k.arn);
        format!(
            "{} is not authorized to perform {} on {on}: {decision}",
            self.caller, self.action
        )
    }
}

/// The PutKeyPolicy lockout safety check (also for CreateKey with a
/// policy): whether, under `new_key_policy` and the current service policy,
/// `caller` could still call PutKeyPolicy on the key. `Err` is
/// [`Error::Lockout`]; the server skips this check when the request sets
/// `BypassPolicyLockoutSafetyCheck`.
pub fn lockout_check(
    new_key_policy: &Policy,
    caller: &Caller,
    admin_uid: u32,
    key_id: &str,
    key_arn: &str,
    service_policy: &Policy,
) -> Result<(), Error> {
    let context = RequestContext {
        bypass_policy_lockout_safety_check: Some(false),
        ..RequestContext::default()
    };
    let q = Query {
        caller,
        admin_uid,
        action: "kms:PutKeyPolicy",
        key: Some(KeyScope {
            key_id,
            arn: key_arn,
            policy: new_key_policy,
            grants: &[],
        }),
        service_policy,
        context: &context,
    };
    match evaluate(&q) {
        Decision::Allow(_) => Ok(()),
        denied => Err(Error::Lockout(format!(
            "The new key policy will not allow you to update the key policy in the future \
             ({caller}: kms:PutKeyPolicy would be {denied})"
        ))),
    }
}

#[cfg(test)]
mod tests;
