//! kmsctl against a real kmsd: the AWS KMS hands-on lab flow, output
//! shapes, pagination and the AWS CLI's exit codes and error wording.
//!
//! Needs the workspace binaries next to the test executable:
//! `cargo build --release --workspace --bins && cargo test --release --test kmsctl_cli`.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{KmsdProcess, bin};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Runs kmsctl against `kmsd` (never the environment's socket).
fn kmsctl(kmsd: &KmsdProcess, args: &[&str]) -> Output {
    Command::new(bin("kmsctl"))
        .arg("--socket")
        .arg(&kmsd.socket)
        .args(args)
        .env_remove("KMSD_SOCKET")
        .output()
        .expect("run kmsctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// Runs a command that must succeed and returns its JSON output.
fn ok_json(kmsd: &KmsdProcess, args: &[&str]) -> Value {
    let o = kmsctl(kmsd, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&o)))
}

/// Runs a command that must succeed and print nothing (as the AWS CLI
/// does for operations without a response).
fn ok_silent(kmsd: &KmsdProcess, args: &[&str]) {
    let o = kmsctl(kmsd, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "{args:?}");
}

fn fail(kmsd: &KmsdProcess, args: &[&str], code: i32) -> String {
    let o = kmsctl(kmsd, args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "{args:?}: nothing on stdout on failure");
    stderr(&o)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

fn fileb(p: &Path) -> String {
    format!("fileb://{}", p.display())
}

#[test]
fn aws_lab_flow() {
    let kmsd = KmsdProcess::start();
    let dir = tempfile::tempdir().unwrap();

    // create-key: AWS-shaped metadata, null fields left out.
    let created = ok_json(&kmsd, &["create-key", "--description", "kms lab key"]);
    let key_id = str_at(&created, &["KeyMetadata", "KeyId"]).to_string();
    let arn = str_at(&created, &["KeyMetadata", "Arn"]).to_string();
    assert_eq!(str_at(&created, &["KeyMetadata", "KeyState"]), "Enabled");
    assert_eq!(
        str_at(&created, &["KeyMetadata", "Description"]),
        "kms lab key"
    );
    assert_eq!(created["KeyMetadata"]["Enabled"], Value::Bool(true));
    assert!(arn.ends_with(&format!(":key/{key_id}")), "{arn}");
    assert!(
        created["KeyMetadata"].get("DeletionDate").is_none(),
        "{created}"
    );

    // create-alias prints nothing; describe-key resolves the alias.
    ok_silent(
        &kmsd,
        &[
            "create-alias",
            "--alias-name",
            "alias/kms-lab",
            "--target-key-id",
            &key_id,
        ],
    );
    let described = ok_json(&kmsd, &["describe-key", "--key-id", "alias/kms-lab"]);
    assert_eq!(str_at(&described, &["KeyMetadata", "KeyId"]), key_id);

    // encrypt a small file under an encryption context.
    let original: &[u8] = b"Top secret lab data\n\x00\xff";
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, original).unwrap();
    let enc = ok_json(
        &kmsd,
        &[
            "encrypt",
            "--key-id",
            "alias/kms-lab",
            "--plaintext",
            &fileb(&file),
            "--encryption-context",
            "Purpose=Lab,App=kms-demo",
        ],
    );
    assert_eq!(str_at(&enc, &["KeyId"]), arn);
    assert_eq!(str_at(&enc, &["EncryptionAlgorithm"]), "SYMMETRIC_DEFAULT");
    let blob = B64.decode(str_at(&enc, &["CiphertextBlob"])).unwrap();
    assert!(blob.len() > original.len());
    let blob_file = dir.path().join("secret.enc");
    std::fs::write(&blob_file, &blob).unwrap();

    // decrypt it back: base64-decoding Plaintext gives the original.
    let dec = ok_json(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            &fileb(&blob_file),
            "--encryption-context",
            "Purpose=Lab,App=kms-demo",
        ],
    );
    assert_eq!(B64.decode(str_at(&dec, &["Plaintext"])).unwrap(), original);
    assert_eq!(str_at(&dec, &["KeyId"]), arn);

    // The same context as JSON in another order, the blob inline in base64.
    let inline = B64.encode(&blob);
    let dec = ok_json(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            &inline,
            "--encryption-context",
            r#"{"App":"kms-demo","Purpose":"Lab"}"#,
        ],
    );
    assert_eq!(B64.decode(str_at(&dec, &["Plaintext"])).unwrap(), original);

    // The shell idiom: `kmsctl decrypt ... --plaintext-only | base64 --decode`.
    let script = format!(
        "{} --socket {} decrypt --ciphertext-blob {} --encryption-context Purpose=Lab,App=kms-demo \
         --plaintext-only | base64 --decode",
        bin("kmsctl").display(),
        kmsd.socket.display(),
        fileb(&blob_file)
    );
    let piped = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(piped.stdout, original);

    // A changed context: non-zero exit, the AWS CLI's error line.
    let err = fail(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            &fileb(&blob_file),
            "--encryption-context",
            "Purpose=Prod,App=kms-demo",
        ],
        254,
    );
    assert!(
        err.starts_with(
            "\nAn error occurred (InvalidCiphertextException) when calling the Decrypt operation: "
        ),
        "{err}"
    );
    // No context at all fails the same way.
    let err = fail(
        &kmsd,
        &["decrypt", "--ciphertext-blob", &fileb(&blob_file)],
        254,
    );
    assert!(err.contains("(InvalidCiphertextException)"), "{err}");

    // schedule-key-deletion with the shortest window.
    let sched = ok_json(
        &kmsd,
        &[
            "schedule-key-deletion",
            "--key-id",
            "alias/kms-lab",
            "--pending-window-in-days",
            "7",
        ],
    );
    assert_eq!(str_at(&sched, &["KeyState"]), "PendingDeletion");
    assert_eq!(sched["PendingWindowInDays"], Value::from(7));
    assert_eq!(str_at(&sched, &["KeyId"]), arn);
    let described = ok_json(&kmsd, &["describe-key", "--key-id", &key_id]);
    assert_eq!(
        str_at(&described, &["KeyMetadata", "KeyState"]),
        "PendingDeletion"
    );
    assert!(
        described["KeyMetadata"]["DeletionDate"].is_string(),
        "{described}"
    );
    let err = fail(
        &kmsd,
        &["encrypt", "--key-id", &key_id, "--plaintext", "aGk="],
        254,
    );
    assert!(
        err.contains("(KMSInvalidStateException) when calling the Encrypt operation"),
        "{err}"
    );

    // cancel-key-deletion brings it back, disabled (as in AWS).
    let cancelled = ok_json(&kmsd, &["cancel-key-deletion", "--key-id", &key_id]);
    assert_eq!(str_at(&cancelled, &["KeyId"]), arn);
    let described = ok_json(&kmsd, &["describe-key", "--key-id", &key_id]);
    assert_eq!(str_at(&described, &["KeyMetadata", "KeyState"]), "Disabled");
}

#[test]
fn exit_codes_and_error_wording() {
    let kmsd = KmsdProcess::start();

    let err = fail(&kmsd, &["describe-key", "--key-id", "alias/missing"], 254);
    assert!(
        err.starts_with(
            "\nAn error occurred (NotFoundException) when calling the DescribeKey operation: "
        ),
        "{err}"
    );

    // Usage errors: 252, before any request.
    let err = fail(
        &kmsd,
        &["encrypt", "--key-id", "k", "--plaintext", "not base64!"],
        252,
    );
    assert!(
        err.starts_with("Error parsing parameter '--plaintext': Invalid base64"),
        "{err}"
    );
    let err = fail(
        &kmsd,
        &[
            "encrypt",
            "--key-id",
            "k",
            "--plaintext",
            "aGk=",
            "--encryption-context",
            "Purpose",
        ],
        252,
    );
    assert!(
        err.starts_with("Error parsing parameter '--encryption-context': "),
        "{err}"
    );
    let err = fail(
        &kmsd,
        &[
            "encrypt",
            "--key-id",
            "k",
            "--plaintext",
            "fileb:///nonexistent/x",
        ],
        252,
    );
    assert!(
        err.contains("Unable to load paramfile fileb:///nonexistent/x"),
        "{err}"
    );
    fail(&kmsd, &["describe-key"], 252);
    fail(&kmsd, &["no-such-command"], 252);

    // kmsd unreachable: 255.
    let o = Command::new(bin("kmsctl"))
        .args(["--socket", "/nonexistent/kmsd.sock", "list-keys"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(255));
    assert!(
        stderr(&o).starts_with(
            "Could not connect to the endpoint URL: \"unix:///nonexistent/kmsd.sock\""
        ),
        "{}",
        stderr(&o)
    );

    // Help is not an error.
    let o = Command::new(bin("kmsctl")).arg("--help").output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("generate-data-key-without-plaintext"));
}

#[test]
fn text_output_tags_and_pagination() {
    let kmsd = KmsdProcess::start();
    let mut ids: Vec<String> = (0..3)
        .map(|i| {
            let d = format!("key {i}");
            let v = ok_json(
                &kmsd,
                &[
                    "create-key",
                    "--description",
                    &d,
                    "--tags",
                    "TagKey=Env,TagValue=lab",
                    "TagKey=Team,TagValue=core",
                ],
            );
            str_at(&v, &["KeyMetadata", "KeyId"]).to_string()
        })
        .collect();
    ids.sort();

    // Text: one KEYS line per key, fields sorted by name (KeyArn, KeyId).
    let o = kmsctl(&kmsd, &["list-keys", "--output", "text"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut listed: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "{l}");
            assert_eq!(cols[0], "KEYS");
            assert!(cols[1].ends_with(&format!(":key/{}", cols[2])), "{l}");
            cols[2].to_string()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, ids);

    // One page at a time with --limit/--marker; all pages without.
    let page = ok_json(&kmsd, &["list-keys", "--limit", "2"]);
    assert_eq!(page["Keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["Truncated"], Value::Bool(true));
    let marker = str_at(&page, &["NextMarker"]).to_string();
    let rest = ok_json(&kmsd, &["list-keys", "--limit", "2", "--marker", &marker]);
    assert_eq!(rest["Keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["Truncated"], Value::Bool(false));
    assert!(rest.get("NextMarker").is_none(), "{rest}");
    let all = ok_json(&kmsd, &["list-keys"]);
    assert_eq!(all["Keys"].as_array().map(Vec::len), Some(3));
    assert!(
        all.get("Truncated").is_none() && all.get("NextMarker").is_none(),
        "{all}"
    );

    // Tags.
    let key = &ids[0];
    ok_silent(
        &kmsd,
        &[
            "tag-resource",
            "--key-id",
            key,
            "--tags",
            "TagKey=Owner,TagValue=alice",
        ],
    );
    ok_silent(
        &kmsd,
        &["untag-resource", "--key-id", key, "--tag-keys", "Team"],
    );
    let o = kmsctl(
        &kmsd,
        &["list-resource-tags", "--key-id", key, "--output", "text"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["TAGS\tEnv\tlab", "TAGS\tOwner\talice"]);

    // Aliases, as text: AliasArn, AliasName, CreationDate, LastUpdatedDate, TargetKeyId.
    ok_silent(
        &kmsd,
        &[
            "create-alias",
            "--alias-name",
            "alias/t",
            "--target-key-id",
            key,
        ],
    );
    let o = kmsctl(
        &kmsd,
        &["list-aliases", "--key-id", key, "--output", "text"],
    );
    let line = stdout(&o);
    let cols: Vec<&str> = line.trim_end().split('\t').collect();
    assert_eq!(cols[0], "ALIASES", "{line}");
    assert_eq!(cols[2], "alias/t", "{line}");
    assert_eq!(cols[5], key.as_str(), "{line}");
}

#[test]
fn data_keys_and_re_encrypt() {
    let kmsd = KmsdProcess::start();
    let k1 = ok_json(&kmsd, &["create-key"]);
    let k1 = str_at(&k1, &["KeyMetadata", "KeyId"]).to_string();
    let k2 = ok_json(&kmsd, &["create-key"]);
    let k2 = str_at(&k2, &["KeyMetadata", "KeyId"]).to_string();

    let o = kmsctl(
        &kmsd,
        &[
            "generate-data-key",
            "--key-id",
            &k1,
            "--key-spec",
            "AES_256",
            "--plaintext-only",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(B64.decode(stdout(&o).trim_end()).unwrap().len(), 32);

    let dk = ok_json(
        &kmsd,
        &[
            "generate-data-key-without-plaintext",
            "--key-id",
            &k1,
            "--number-of-bytes",
            "24",
            "--encryption-context",
            "A=1",
        ],
    );
    assert!(dk.get("Plaintext").is_none(), "{dk}");
    let blob = str_at(&dk, &["CiphertextBlob"]).to_string();

    let re = ok_json(
        &kmsd,
        &[
            "re-encrypt",
            "--ciphertext-blob",
            &blob,
            "--source-encryption-context",
            "A=1",
            "--destination-key-id",
            &k2,
            "--destination-encryption-context",
            "B=2",
        ],
    );
    assert!(str_at(&re, &["SourceKeyId"]).ends_with(&k1));
    assert!(str_at(&re, &["KeyId"]).ends_with(&k2));
    let moved = str_at(&re, &["CiphertextBlob"]).to_string();

    let dec = ok_json(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            &moved,
            "--encryption-context",
            "B=2",
            "--key-id",
            &k2,
        ],
    );
    assert_eq!(B64.decode(str_at(&dec, &["Plaintext"])).unwrap().len(), 24);
    let err = fail(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            &moved,
            "--encryption-context",
            "B=2",
            "--key-id",
            &k1,
        ],
        254,
    );
    assert!(
        err.contains("(IncorrectKeyException) when calling the Decrypt operation"),
        "{err}"
    );

    // AWS CLI v2's `--cli-binary-format raw-in-base64-out`: inline text as is.
    let enc = ok_json(
        &kmsd,
        &[
            "--cli-binary-format",
            "raw-in-base64-out",
            "encrypt",
            "--key-id",
            &k1,
            "--plaintext",
            "hello lab",
        ],
    );
    let dec = ok_json(
        &kmsd,
        &[
            "decrypt",
            "--ciphertext-blob",
            str_at(&enc, &["CiphertextBlob"]),
        ],
    );
    assert_eq!(
        B64.decode(str_at(&dec, &["Plaintext"])).unwrap(),
        b"hello lab"
    );

    let rnd = ok_json(&kmsd, &["generate-random", "--number-of-bytes", "16"]);
    assert_eq!(B64.decode(str_at(&rnd, &["Plaintext"])).unwrap().len(), 16);
}

#[test]
fn policies_and_grants() {
    let kmsd = KmsdProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let key = ok_json(&kmsd, &["create-key"]);
    let key = str_at(&key, &["KeyMetadata", "KeyId"]).to_string();

    let names = ok_json(&kmsd, &["list-key-policies", "--key-id", &key]);
    assert_eq!(names["PolicyNames"], serde_json::json!(["default"]));
    let got = ok_json(&kmsd, &["get-key-policy", "--key-id", &key]);
    assert_eq!(str_at(&got, &["PolicyName"]), "default");
    let doc: Value = serde_json::from_str(str_at(&got, &["Policy"])).unwrap();
    assert!(doc["Statement"].is_array(), "{doc}");

    // put-key-policy from file://, read back.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "root", "Effect": "Allow", "Principal": {"Unix": "uid:0"},
            "Action": "kms:*", "Resource": "*"
        }]
    });
    let file = dir.path().join("policy.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let from_file = format!("file://{}", file.display());
    ok_silent(
        &kmsd,
        &["put-key-policy", "--key-id", &key, "--policy", &from_file],
    );
    let got = ok_json(
        &kmsd,
        &[
            "get-key-policy",
            "--key-id",
            &key,
            "--policy-name",
            "default",
        ],
    );
    let back: Value = serde_json::from_str(str_at(&got, &["Policy"])).unwrap();
    assert_eq!(back, policy);

    let svc = ok_json(&kmsd, &["get-service-policy"]);
    assert!(
        serde_json::from_str::<Value>(str_at(&svc, &["Policy"])).is_ok(),
        "{svc}"
    );

    // Grants: create (shorthand constraints), list as text, retire by token,
    // revoke by id.
    let g1 = ok_json(
        &kmsd,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            "uid:1000",
            "--retiring-principal",
            "uid:0",
            "--operations",
            "Decrypt",
            "Encrypt",
            "--constraints",
            "EncryptionContextSubset={Purpose=Lab}",
            "--name",
            "lab-grant",
        ],
    );
    let g1_id = str_at(&g1, &["GrantId"]).to_string();
    let g1_token = str_at(&g1, &["GrantToken"]).to_string();
    let g2 = ok_json(
        &kmsd,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            "uid:1001",
            "--operations",
            "GenerateDataKey",
        ],
    );
    let g2_id = str_at(&g2, &["GrantId"]).to_string();

    let listed = ok_json(
        &kmsd,
        &["list-grants", "--key-id", &key, "--grant-id", &g1_id],
    );
    let grants = listed["Grants"].as_array().expect("Grants");
    assert_eq!(grants.len(), 1, "{listed}");
    assert_eq!(
        grants[0]["Operations"],
        serde_json::json!(["Decrypt", "Encrypt"])
    );
    assert_eq!(
        grants[0]["Constraints"],
        serde_json::json!({"EncryptionContextSubset": {"Purpose": "Lab"}})
    );
    assert_eq!(str_at(&grants[0], &["Name"]), "lab-grant");
    assert!(grants[0].get("RetiringPrincipal").is_some());

    let o = kmsctl(
        &kmsd,
        &[
            "list-retirable-grants",
            "--retiring-principal",
            "uid:0",
            "--output",
            "text",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("GRANTS\t") && first.contains(&g1_id),
        "{text}"
    );
    assert!(text.contains("\nENCRYPTIONCONTEXTSUBSET\tLab\n"), "{text}");
    assert!(
        text.contains("\nOPERATIONS\tDecrypt\nOPERATIONS\tEncrypt\n"),
        "{text}"
    );

    ok_silent(&kmsd, &["retire-grant", "--grant-token", &g1_token]);
    ok_silent(
        &kmsd,
        &["revoke-grant", "--key-id", &key, "--grant-id", &g2_id],
    );
    let listed = ok_json(&kmsd, &["list-grants", "--key-id", &key]);
    assert_eq!(listed["Grants"], serde_json::json!([]));

    let err = fail(
        &kmsd,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            "nobody?",
            "--operations",
            "Decrypt",
        ],
        254,
    );
    assert!(
        err.contains("(ValidationException) when calling the CreateGrant operation"),
        "{err}"
    );
    let err = fail(
        &kmsd,
        &[
            "create-grant",
            "--key-id",
            &key,
            "--grantee-principal",
            "uid:1",
            "--operations",
            "Decrypt",
            "--constraints",
            "Purpose=Lab",
        ],
        252,
    );
    assert!(
        err.starts_with("Error parsing parameter '--constraints'"),
        "{err}"
    );
}
