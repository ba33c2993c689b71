//! put-key-policy, get-key-policy, list-key-policies, and kmsd's own
//! get-service-policy and put-service-policy.

use super::{Ctx, reply};
use crate::args::{GetKeyPolicyArgs, KeyIdArgs, PutKeyPolicyArgs, PutServicePolicyArgs};
use crate::failure::Failure;
use crate::input;
use crate::output::Reply;
use kmsd_client::*;

fn put_key_policy_request(a: PutKeyPolicyArgs) -> Result<PutKeyPolicyRequest, Failure> {
    Ok(PutKeyPolicyRequest {
        policy: input::text("--policy", &a.policy)?.to_string(),
        key_id: a.key_id,
        policy_name: a.policy_name,
        bypass_policy_lockout_safety_check: a.bypass.bypass_policy_lockout_safety_check,
    })
}

pub fn put_key_policy(ctx: &Ctx, a: PutKeyPolicyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(put_key_policy_request(a)?)?)
}

pub fn get_key_policy(ctx: &Ctx, a: GetKeyPolicyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(GetKeyPolicyRequest {
        key_id: a.key_id,
        policy_name: a.policy_name,
    })?)
}

pub fn list_key_policies(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(ListKeyPoliciesRequest { key_id: a.key_id })?)
}

pub fn get_service_policy(ctx: &Ctx) -> Result<Reply, Failure> {
    reply(&ctx.call(GetServicePolicyRequest {})?)
}

pub fn put_service_policy(ctx: &Ctx, a: PutServicePolicyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(PutServicePolicyRequest {
        policy: input::text("--policy", &a.policy)?.to_string(),
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::BypassArgs;

    #[test]
    fn policy_inline_or_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.json");
        std::fs::write(&file, "{\"Statement\":[]}\n").unwrap();
        let args = |policy: String| PutKeyPolicyArgs {
            key_id: "k".into(),
            policy_name: None,
            policy,
            bypass: BypassArgs {
                bypass_policy_lockout_safety_check: false,
                no_bypass_policy_lockout_safety_check: false,
            },
        };
        let r = put_key_policy_request(args(format!("file://{}", file.display()))).unwrap();
        assert_eq!(r.policy, "{\"Statement\":[]}\n");
        let r = put_key_policy_request(args("{}".into())).unwrap();
        assert_eq!(r.policy, "{}");
        let e = put_key_policy_request(args("file://".into())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--policy'"),
            "{e}"
        );
    }
}
