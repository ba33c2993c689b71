//! Key policies (PutKeyPolicy, GetKeyPolicy, ListKeyPolicies, the policy of
//! CreateKey) and the service policy (kmsd's stand-in for IAM).

use super::state::SERVICE_POLICY;
use super::{Caller, KeyService, Result};
use crate::store::Mutation;
use kmsd_client::*;
use kmsd_policy::{Policy, SystemDirectory, default_key_policy, lockout_check};
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

impl KeyService {
    /// Parses a policy document and checks that the users and groups it
    /// names exist.
    fn checked_policy(&self, text: &str) -> Result<Policy> {
        let p = Policy::parse(text)?;
        p.check_principals(&SystemDirectory)?;
        Ok(p)
    }

    fn check_lockout(&self, p: &Policy, caller: &Caller, key_id: Uuid) -> Result<()> {
        let st = self.read();
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
    pub(crate) fn new_key_policy(&self, caller: &Caller, req: &CreateKeyRequest) -> Result<String> {
        match &req.policy {
            None => Ok(default_key_policy(self.config().admin_uid, caller.uid)),
            Some(text) => {
                let p = self.checked_policy(text)?;
                if !req.bypass_policy_lockout_safety_check {
                    // The key id does not exist yet; policies name keys by
                    // `Resource: "*"` only, so any id checks the same.
                    self.check_lockout(&p, caller, Uuid::nil())?;
                }
                Ok(text.clone())
            }
        }
    }

    pub fn put_key_policy(&self, caller: &Caller, req: PutKeyPolicyRequest) -> Result<Empty> {
        policy_name(req.policy_name.as_deref())?;
        let p = self.checked_policy(&req.policy)?;
        let id = self.resolve(&self.read(), &req.key_id)?;
        if !req.bypass_policy_lockout_safety_check {
            self.check_lockout(&p, caller, id)?;
        }
        self.update_key(&id.to_string(), |e, rec, _| {
            self.require_not_pending_deletion(e)?;
            rec.policy = req.policy;
            Ok(Empty {})
        })
    }

    pub fn get_key_policy(&self, req: GetKeyPolicyRequest) -> Result<GetKeyPolicyResponse> {
        policy_name(req.policy_name.as_deref())?;
        let st = self.read();
        let id = self.resolve(&st, &req.key_id)?;
        Ok(GetKeyPolicyResponse {
            policy: self.entry(&st, id)?.record.policy.clone(),
            policy_name: POLICY_NAME.into(),
        })
    }

    pub fn list_key_policies(
        &self,
        req: ListKeyPoliciesRequest,
    ) -> Result<ListKeyPoliciesResponse> {
        let st = self.read();
        self.resolve(&st, &req.key_id)?;
        Ok(ListKeyPoliciesResponse {
            policy_names: vec![POLICY_NAME.into()],
            truncated: false,
        })
    }

    pub fn get_service_policy(&self) -> GetKeyPolicyResponse {
        let st = self.read();
        let policy = st.meta.get(SERVICE_POLICY).cloned().unwrap_or_default();
        GetKeyPolicyResponse {
            policy,
            policy_name: "service".into(),
        }
    }

    pub fn put_service_policy(&self, req: PutServicePolicyRequest) -> Result<Empty> {
        self.checked_policy(&req.policy)?;
        self.mutate(|_, _| {
            Ok((
                Empty {},
                vec![Mutation::PutMeta {
                    name: SERVICE_POLICY.into(),
                    json: req.policy,
                }],
            ))
        })
    }
}
