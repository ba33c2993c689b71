//! create-key, describe-key, list-keys, enable-key, disable-key,
//! schedule-key-deletion, cancel-key-deletion.

use super::paging;
use super::{Ctx, reply};
use crate::args::{CreateKeyArgs, KeyIdArgs, PagingArgs, ScheduleKeyDeletionArgs};
use crate::failure::Failure;
use crate::input;
use crate::output::Reply;
use kmsd_client::*;

fn create_key_request(a: CreateKeyArgs) -> Result<CreateKeyRequest, Failure> {
    let policy = a
        .policy
        .map(|p| input::text("--policy", &p).map(|t| t.to_string()))
        .transpose()?;
    Ok(CreateKeyRequest {
        description: a.description,
        key_usage: a.key_usage,
        key_spec: a.key_spec,
        tags: input::tags("--tags", &a.tags)?,
        policy,
        bypass_policy_lockout_safety_check: a.bypass.bypass_policy_lockout_safety_check,
    })
}

pub fn create_key(ctx: &Ctx, a: CreateKeyArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(create_key_request(a)?)?)
}

pub fn describe_key(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(DescribeKeyRequest { key_id: a.key_id })?)
}

pub fn list_keys(ctx: &Ctx, a: PagingArgs) -> Result<Reply, Failure> {
    let request = ListKeysRequest {
        limit: a.limit,
        marker: a.marker.clone(),
    };
    paging::list(ctx, request, &a)
}

pub fn enable_key(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(EnableKeyRequest { key_id: a.key_id })?)
}

pub fn disable_key(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(DisableKeyRequest { key_id: a.key_id })?)
}

pub fn schedule_key_deletion(ctx: &Ctx, a: ScheduleKeyDeletionArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(ScheduleKeyDeletionRequest {
        key_id: a.key_id,
        pending_window_in_days: a.pending_window_in_days,
    })?)
}

pub fn cancel_key_deletion(ctx: &Ctx, a: KeyIdArgs) -> Result<Reply, Failure> {
    reply(&ctx.call(CancelKeyDeletionRequest { key_id: a.key_id })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn create_args(args: &[&str]) -> CreateKeyArgs {
        let cli = Cli::try_parse_from(["kmsctl", "create-key"].iter().chain(args)).unwrap();
        match cli.kms() {
            Command::CreateKey(a) => a,
            _ => panic!("not create-key"),
        }
    }

    #[test]
    fn create_key_request_from_flags() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("p.json");
        std::fs::write(&policy, r#"{"Version":"2012-10-17","Statement":[]}"#).unwrap();
        let p = format!("file://{}", policy.display());
        let r = create_key_request(create_args(&[
            "--description",
            "lab",
            "--tags",
            "TagKey=Env,TagValue=lab",
            "--policy",
            &p,
            "--bypass-policy-lockout-safety-check",
            "--key-spec",
            "SYMMETRIC_DEFAULT",
        ]))
        .unwrap();
        assert_eq!(r.description.as_deref(), Some("lab"));
        assert_eq!(r.key_spec, Some(KeySpec::SymmetricDefault));
        assert_eq!(
            r.tags,
            vec![Tag {
                tag_key: "Env".into(),
                tag_value: "lab".into()
            }]
        );
        assert_eq!(
            r.policy.as_deref(),
            Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
        );
        assert!(r.bypass_policy_lockout_safety_check);
    }

    #[test]
    fn create_key_defaults_are_empty() {
        assert_eq!(
            create_key_request(create_args(&[])).unwrap(),
            CreateKeyRequest::default()
        );
    }

    #[test]
    fn create_key_bad_tags_are_usage_errors() {
        let e = create_key_request(create_args(&["--tags", "Owner=alice"])).unwrap_err();
        assert_eq!(e.exit_code(), 252);
        assert!(
            e.to_string()
                .starts_with("Error parsing parameter '--tags': "),
            "{e}"
        );
    }
}
