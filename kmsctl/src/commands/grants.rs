//! create-grant, list-grants, list-retirable-grants, retire-grant,
//! revoke-grant.

use super::paging;
use super::{Ctx, reply};
use crate::args::{
    CreateGrantArgs, KeyGrantArgs, ListGrantsArgs, ListRetirableGrantsArgs, RetireGrantArgs,
};
use crate::failure::Failure;
use crate::input;
use crate::output::Reply;
use kmsd_client::*;

fn create_request(a: CreateGrantArgs) -> Result<CreateGrantRequest, Failure> {
    Ok(CreateGrantRequest {
        operations: input::list("--operations", &a.operations)?,
        constraints: input::constraints("--constraints", a.constraints.as_deref())?,
        grant_tokens: input::list("--grant-tokens", &a.grant_tokens)?,
        key_id: a.key_id,
        grantee_principal: a.grantee_principal,
        retiring_principal: a.retiring_principal,
        name: a.name,
    })
}

pub fn create(ctx: &Ctx, a: CreateGrantArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(create_request(a)?)?)
}

pub fn list(ctx: &Ctx, a: ListGrantsArgs) -> Result<Reply, Failure> {
    let request = ListGrantsRequest {
        key_id: a.key_id,
        grant_id: a.grant_id,
        grantee_principal: a.grantee_principal,
        limit: a.paging.limit,
        marker: a.paging.marker.clone(),
    };
    paging::list(ctx, request, &a.paging)
}

pub fn list_retirable(ctx: &Ctx, a: ListRetirableGrantsArgs) -> Result<Reply, Failure> {
    let request = ListRetirableGrantsRequest {
        retiring_principal: a.retiring_principal,
        limit: a.paging.limit,
        marker: a.paging.marker.clone(),
    };
    paging::list(ctx, request, &a.paging)
}

pub fn retire(ctx: &Ctx, a: RetireGrantArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(RetireGrantRequest {
        grant_token: a.grant_token,
        key_id: a.key_id,
        grant_id: a.grant_id,
    })?)
}

pub fn revoke(ctx: &Ctx, a: KeyGrantArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(RevokeGrantRequest {
        key_id: a.key_id,
        grant_id: a.grant_id,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn create_args(extra: &[&str]) -> CreateGrantArgs {
        let base = [
            "kmsctl",
            "create-grant",
            "--key-id",
            "k",
            "--grantee-principal",
            "kmsfs",
        ];
        let cli = Cli::try_parse_from(base.iter().chain(extra)).unwrap();
        match cli.kms() {
            Command::CreateGrant(a) => a,
            _ => panic!("not create-grant"),
        }
    }

    #[test]
    fn create_grant_request_from_flags() {
        let r = create_request(create_args(&[
            "--operations",
            "Decrypt",
            "GenerateDataKey",
            "--name",
            "g1",
            "--constraints",
            "EncryptionContextSubset={Purpose=Lab}",
        ]))
        .unwrap();
        assert_eq!(r.operations, ["Decrypt", "GenerateDataKey"]);
        assert_eq!(r.name.as_deref(), Some("g1"));
        let c = r.constraints.unwrap();
        assert_eq!(c.encryption_context_subset.unwrap()["Purpose"], "Lab");
        assert_eq!(c.encryption_context_equals, None);
        assert_eq!(r.grantee_principal, "kmsfs");
    }

    #[test]
    fn bad_constraints_are_usage_errors() {
        let e = create_request(create_args(&[
            "--operations",
            "Decrypt",
            "--constraints",
            "Purpose=Lab",
        ]))
        .unwrap_err();
        assert_eq!(e.exit_code(), 252);
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--constraints'"),
            "{e}"
        );
    }
}
