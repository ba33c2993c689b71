//! Key policies (PutKeyPolicy, GetKeyPolicy, ListKeyPolicies, the policy of
//! CreateKey) and the service policy (kmsd's stand-in for IAM).

use super::operation::{Exec, KeyRef, Operation, Planned, Refs, read};
use super::state::SERVICE_POLICY;
use super::{Caller, KeyService, Result, State};
use crate::store::Mutation;
use kmsd_client::*;
use kmsd_policy::{
    Policy, RequestContext, Requirement, SystemDirectory, Target, default_key_policy,
    lockout_check, on_key, on_service,
};
use uuid::Uuid;

/// The only key policy name, as in AWS.
pub const POLICY_NAME: &str = "default";

fn policy_name(name: Option<&str>) -> Result<()> {
    match name {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::not_found(format!(
            "No such key policy: {other}; the only policy name is 'default'"
        ))),
    }
}

/// Parses a policy document and checks that the users and groups it names
/// exist (system lookups: run before any lock is taken).
fn checked_policy(text: &str) -> Result<Policy> {
    let p = Policy::parse(text)?;
    p.check_principals(&SystemDirectory)?;
    Ok(p)
}

fn bypass(flag: bool) -> RequestContext {
    RequestContext {
        bypass_policy_lockout_safety_check: Some(flag),
        ..RequestContext::default()
    }
}

impl KeyService {
    fn check_lockout(&self, st: &State, p: &Policy, caller: &Caller, key_id: Uuid) -> Result<()> {
        lockout_check(
            p,
            caller,
            self.config().admin_uid,
            &key_id.to_string(),
            &self.key_arn(key_id),
            &st.service_policy,
        )?;
        Ok(())
    }

    /// The policy a new key gets: the request's (validated, lockout-checked)
    /// or the default (administrator and creator get `kms:*`).
    pub(crate) fn new_key_policy(
        &self,
        st: &State,
        caller: &Caller,
        req: &CreateKeyRequest,
    ) -> Result<String> {
        match &req.policy {
            None => Ok(default_key_policy(self.config().admin_uid, caller.uid)),
            Some(text) => {
                let p = Policy::parse(text)?;
                p.check_account(&self.config().account)?;
                if !req.bypass_policy_lockout_safety_check {
                    // The key id does not exist yet; policies name keys by
                    // `Resource: "*"` only, so any id checks the same.
                    self.check_lockout(st, &p, caller, Uuid::nil())?;
                }
                Ok(text.clone())
            }
        }
    }
}

/// CreateKey's `Policy` is checked with the request (keys.rs calls this
/// from its `validate`).
pub(crate) fn validate_new_key_policy(req: &CreateKeyRequest) -> Result<()> {
    req.policy
        .as_deref()
        .map_or(Ok(()), |t| checked_policy(t).map(drop))
}

impl Operation for PutKeyPolicyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_key("kms:PutKeyPolicy")];

    fn validate(&self) -> Result<()> {
        policy_name(self.policy_name.as_deref())?;
        checked_policy(&self.policy).map(drop)
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn conditions(&self, _cx: &Exec<'_>, _target: Target) -> Result<RequestContext> {
        Ok(bypass(self.bypass_policy_lockout_safety_check))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        let p = Policy::parse(&self.policy)?;
        p.check_account(&cx.svc.config().account)?;
        if !self.bypass_policy_lockout_safety_check {
            cx.svc.check_lockout(cx.st, &p, cx.caller, cx.key_id()?)?;
        }
        cx.update_key(|e, rec| {
            cx.svc.require_not_pending_deletion(e)?;
            rec.policy = self.policy.into();
            Ok(Empty {})
        })
    }
}

impl Operation for GetKeyPolicyRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:GetKeyPolicy")];

    fn validate(&self) -> Result<()> {
        policy_name(self.policy_name.as_deref())
    }

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<GetKeyPolicyResponse> {
        read(GetKeyPolicyResponse {
            policy: cx.entry()?.record.policy.to_string(),
            policy_name: POLICY_NAME.into(),
        })
    }
}

impl Operation for ListKeyPoliciesRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_key("kms:ListKeyPolicies")];

    fn refs(&self) -> Refs<'_> {
        Refs::key(KeyRef::Named(&self.key_id))
    }

    fn execute(self, _cx: &Exec<'_>) -> Planned<ListKeyPoliciesResponse> {
        read(ListKeyPoliciesResponse {
            policy_names: vec![POLICY_NAME.into()],
            truncated: false,
        })
    }
}

impl Operation for GetServicePolicyRequest {
    const MUTATES: bool = false;
    const CHECKS: &'static [Requirement] = &[on_service("kms:GetServicePolicy")];

    fn execute(self, cx: &Exec<'_>) -> Planned<GetKeyPolicyResponse> {
        read(GetKeyPolicyResponse {
            policy: cx.st.meta.get(SERVICE_POLICY).cloned().unwrap_or_default(),
            policy_name: "service".into(),
        })
    }
}

impl Operation for PutServicePolicyRequest {
    const MUTATES: bool = true;
    const CHECKS: &'static [Requirement] = &[on_service("kms:PutServicePolicy")];

    fn validate(&self) -> Result<()> {
        checked_policy(&self.policy).map(drop)
    }

    fn execute(self, cx: &Exec<'_>) -> Planned<Empty> {
        Policy::parse(&self.policy)?.check_account(&cx.svc.config().account)?;
        let m = Mutation::PutMeta {
            name: SERVICE_POLICY.into(),
            json: self.policy,
        };
        Ok((Empty {}, vec![m]))
    }
}
