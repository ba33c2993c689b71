use super::*;
use clap::CommandFactory;

#[test]
fn clap_definitions_are_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_aws_verb_is_a_subcommand() {
    let cmd = Cli::command();
    let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
    for verb in [
        "create-key",
        "describe-key",
        "list-keys",
        "enable-key",
        "disable-key",
        "schedule-key-deletion",
        "cancel-key-deletion",
        "enable-key-rotation",
        "disable-key-rotation",
        "get-key-rotation-status",
        "rotate-key-on-demand",
        "list-key-rotations",
        "create-alias",
        "update-alias",
        "delete-alias",
        "list-aliases",
        "tag-resource",
        "untag-resource",
        "list-resource-tags",
        "encrypt",
        "decrypt",
        "re-encrypt",
        "generate-data-key",
        "generate-data-key-without-plaintext",
        "generate-random",
        "put-key-policy",
        "get-key-policy",
        "list-key-policies",
        "create-grant",
        "list-grants",
        "list-retirable-grants",
        "retire-grant",
        "revoke-grant",
        "get-service-policy",
        "put-service-policy",
        "create-access-key",
        "list-access-keys",
        "update-access-key",
        "delete-access-key",
    ] {
        assert!(names.contains(&verb), "missing {verb}");
    }
    assert!(names.contains(&"audit"));
    assert_eq!(names.len(), 40);
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("kmsctl").chain(args.iter().copied()))
}

#[test]
fn audit_goes_to_kmsd_audit() {
    let cli = parse(&["audit", "verify", "--state-dir", "/var/lib/kmsd"]).unwrap();
    assert!(matches!(cli.command, TopLevel::Audit(_)));
    assert!(parse(&["audit", "frobnicate"]).is_err());
}

#[test]
fn global_flags_go_anywhere() {
    let cli = parse(&[
        "describe-key",
        "--key-id",
        "alias/lab",
        "--output",
        "text",
        "--socket",
        "/s",
    ])
    .unwrap();
    assert_eq!(cli.output, OutputFormat::Text);
    assert_eq!(cli.socket, [PathBuf::from("/s")]);
    let Command::DescribeKey(a) = cli.kms() else {
        panic!("wrong command")
    };
    assert_eq!(a.key_id, "alias/lab");
}

#[test]
fn several_tags_and_operations() {
    let cli = parse(&[
        "create-key",
        "--tags",
        "TagKey=a,TagValue=1",
        "TagKey=b,TagValue=2",
        "--description",
        "d",
    ])
    .unwrap();
    let Command::CreateKey(a) = cli.kms() else {
        panic!("wrong command")
    };
    assert_eq!(a.tags.len(), 2);
    assert_eq!(a.description.as_deref(), Some("d"));

    let cli = parse(&[
        "create-grant",
        "--key-id",
        "k",
        "--grantee-principal",
        "p",
        "--operations",
        "Decrypt",
        "Encrypt",
    ])
    .unwrap();
    let Command::CreateGrant(a) = cli.kms() else {
        panic!("wrong command")
    };
    assert_eq!(a.operations, ["Decrypt", "Encrypt"]);
}

#[test]
fn enums_parse_their_aws_names() {
    let cli = parse(&[
        "generate-data-key",
        "--key-id",
        "k",
        "--key-spec",
        "AES_128",
    ])
    .unwrap();
    let Command::GenerateDataKey(a) = cli.kms() else {
        panic!("wrong command")
    };
    assert_eq!(a.key.key_spec, Some(DataKeySpec::Aes128));
    assert!(
        parse(&[
            "generate-data-key",
            "--key-id",
            "k",
            "--key-spec",
            "AES_512"
        ])
        .is_err()
    );
    assert!(parse(&["create-key", "--key-spec", "RSA_2048"]).is_err());
}

#[test]
fn bypass_flag_pair_last_wins() {
    let cli = parse(&[
        "put-key-policy",
        "--key-id",
        "k",
        "--policy",
        "{}",
        "--bypass-policy-lockout-safety-check",
        "--no-bypass-policy-lockout-safety-check",
    ])
    .unwrap();
    let Command::PutKeyPolicy(a) = cli.kms() else {
        panic!("wrong command")
    };
    assert!(!a.bypass.bypass_policy_lockout_safety_check);
}

#[test]
fn missing_required_flags_are_errors() {
    assert!(parse(&["describe-key"]).is_err());
    assert!(parse(&["encrypt", "--key-id", "k"]).is_err());
    assert!(parse(&["tag-resource", "--key-id", "k"]).is_err());
    assert!(parse(&["list-keys", "--limit", "-1"]).is_err());
    assert!(
        parse(&[
            "encrypt",
            "--key-id",
            "k",
            "--plaintext",
            "AA==",
            "--encryption-algorithm",
            "RSAES_OAEP_SHA_1"
        ])
        .is_err()
    );
    assert!(parse(&[]).is_err());
}

#[test]
fn access_key_verbs_parse_their_flags() {
    let cli = parse(&[
        "create-access-key",
        "--principal",
        "user:alice",
        "--description",
        "ci",
    ])
    .unwrap();
    assert!(matches!(
        cli.kms(),
        Command::CreateAccessKey(CreateAccessKeyArgs { ref principal, .. }) if principal == "user:alice"
    ));
    let cli = parse(&[
        "update-access-key",
        "--access-key-id",
        "AKIAX",
        "--status",
        "Inactive",
    ])
    .unwrap();
    assert!(matches!(
        cli.kms(),
        Command::UpdateAccessKey(UpdateAccessKeyArgs {
            status: kmsd_client::AccessKeyStatus::Inactive,
            ..
        })
    ));
    assert!(
        parse(&[
            "update-access-key",
            "--access-key-id",
            "AKIAX",
            "--status",
            "Off"
        ])
        .is_err()
    );
    assert!(
        parse(&["delete-access-key"]).is_err(),
        "--access-key-id is required"
    );
}
