use super::*;
use kmsd_client::*;

const ARN: &str = "arn:aws:kms:local:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

fn metadata() -> KeyMetadataResponse {
    KeyMetadataResponse {
        key_metadata: KeyMetadata {
            aws_account_id: "111122223333".into(),
            key_id: ID.into(),
            arn: ARN.into(),
            creation_date: Timestamp(1_700_000_000),
            enabled: true,
            description: "lab key".into(),
            key_usage: KeyUsage::EncryptDecrypt,
            key_state: KeyState::Enabled,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            key_spec: KeySpec::SymmetricDefault,
            encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
            multi_region: false,
            current_key_version: 1,
        },
    }
}

fn json(r: &impl Serialize) -> String {
    Reply::of(r).unwrap().render(OutputFormat::Json).to_string()
}

fn text(r: &impl Serialize) -> String {
    Reply::of(r).unwrap().render(OutputFormat::Text).to_string()
}

#[test]
fn describe_key_json_is_aws_shaped() {
    let expected = format!(
        r#"{{
    "KeyMetadata": {{
        "AWSAccountId": "111122223333",
        "KeyId": "{ID}",
        "Arn": "{ARN}",
        "CreationDate": "2023-11-14T22:13:20+00:00",
        "Enabled": true,
        "Description": "lab key",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": [
            "SYMMETRIC_DEFAULT"
        ],
        "MultiRegion": false,
        "CurrentKeyVersion": 1
    }}
}}
"#
    );
    assert_eq!(json(&metadata()), expected);
}

#[test]
fn describe_key_text_sorts_scalars_and_nests_lists() {
    let expected = format!(
        "KEYMETADATA\t111122223333\t{ARN}\t2023-11-14T22:13:20+00:00\t1\tlab key\tTrue\t\
         {ID}\tCUSTOMER\tSYMMETRIC_DEFAULT\tEnabled\tENCRYPT_DECRYPT\tFalse\tAWS_KMS\n\
         ENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT\n"
    );
    assert_eq!(text(&metadata()), expected);
}

#[test]
fn pending_deletion_fields_appear_when_present() {
    let mut m = metadata();
    m.key_metadata.key_state = KeyState::PendingDeletion;
    m.key_metadata.deletion_date = Some(Timestamp(1_700_000_000).plus_days(7));
    m.key_metadata.pending_deletion_window_in_days = Some(7);
    let out = json(&m);
    assert!(
        out.contains(r#""DeletionDate": "2023-11-21T22:13:20+00:00","#),
        "{out}"
    );
    assert!(
        out.contains(r#""PendingDeletionWindowInDays": 7,"#),
        "{out}"
    );
}

#[test]
fn list_keys_text_is_one_line_per_item() {
    let r = ListKeysResponse {
        keys: vec![
            KeyListEntry {
                key_id: "a".into(),
                key_arn: "arn:a".into(),
            },
            KeyListEntry {
                key_id: "b".into(),
                key_arn: "arn:b".into(),
            },
        ],
        next_marker: None,
        truncated: false,
    };
    assert_eq!(text(&r), "False\nKEYS\tarn:a\ta\nKEYS\tarn:b\tb\n");
    let mut doc = Json::of(&r).unwrap();
    doc.strip_nulls();
    doc.remove("Truncated");
    assert_eq!(
        render_text(&doc).as_str(),
        "KEYS\tarn:a\ta\nKEYS\tarn:b\tb\n"
    );
    assert_eq!(
        render_json(&doc).as_str(),
        "{\n    \"Keys\": [\n        {\n            \"KeyId\": \"a\",\n            \"KeyArn\": \"arn:a\"\n        },\n        {\n            \"KeyId\": \"b\",\n            \"KeyArn\": \"arn:b\"\n        }\n    ]\n}\n"
    );
}

#[test]
fn list_with_missing_fields_leaves_empty_columns() {
    let r = ListAliasesResponse {
        aliases: vec![
            AliasListEntry {
                alias_name: "alias/a".into(),
                alias_arn: "arn:alias/a".into(),
                target_key_id: Some("k".into()),
                creation_date: Timestamp(0),
                last_updated_date: Timestamp(0),
            },
            AliasListEntry {
                alias_name: "alias/aws/x".into(),
                alias_arn: "arn:alias/aws/x".into(),
                target_key_id: None,
                creation_date: Timestamp(0),
                last_updated_date: Timestamp(0),
            },
        ],
        next_marker: Some("m".into()),
        truncated: true,
    };
    let t0 = "1970-01-01T00:00:00+00:00";
    assert_eq!(
        text(&r),
        format!(
            "m\tTrue\n\
             ALIASES\tarn:alias/a\talias/a\t{t0}\t{t0}\tk\n\
             ALIASES\tarn:alias/aws/x\talias/aws/x\t{t0}\t{t0}\t\n"
        )
    );
    let j = json(&r);
    assert_eq!(j.matches("TargetKeyId").count(), 1, "{j}");
    assert!(j.contains("\"NextMarker\": \"m\""), "{j}");
}

#[test]
fn encrypt_and_decrypt_blobs_are_base64() {
    let e = EncryptResponse {
        ciphertext_blob: Blob(vec![1, 2, 3, 255]),
        key_id: ARN.into(),
        encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
    };
    assert_eq!(
        json(&e),
        format!(
            "{{\n    \"CiphertextBlob\": \"AQID/w==\",\n    \"KeyId\": \"{ARN}\",\n    \"EncryptionAlgorithm\": \"SYMMETRIC_DEFAULT\"\n}}\n"
        )
    );
    let d = DecryptResponse {
        key_id: ARN.into(),
        plaintext: SecretBytes::from_slice(b"hello\n"),
        encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
    };
    assert!(json(&d).contains("\"Plaintext\": \"aGVsbG8K\","));
    assert_eq!(text(&d), format!("SYMMETRIC_DEFAULT\t{ARN}\taGVsbG8K\n"));
}

#[test]
fn empty_responses_print_nothing() {
    assert_eq!(json(&Empty {}), "");
    assert_eq!(text(&Empty {}), "");
}

#[test]
fn scalar_lists_and_nested_objects_in_text() {
    let r = ListKeyPoliciesResponse {
        policy_names: vec!["default".into()],
        truncated: false,
    };
    assert_eq!(text(&r), "False\nPOLICYNAMES\tdefault\n");
    let g = ListGrantsResponse {
        grants: vec![GrantListEntry {
            key_id: "k".into(),
            grant_id: "g".into(),
            name: None,
            creation_date: Timestamp(0),
            grantee_principal: "p".into(),
            retiring_principal: None,
            issuing_account: "acct".into(),
            operations: vec!["Decrypt".into(), "Encrypt".into()],
            constraints: Some(GrantConstraints {
                encryption_context_subset: Some([("A".to_string(), "1".to_string())].into()),
                encryption_context_equals: None,
            }),
        }],
        next_marker: None,
        truncated: false,
    };
    assert_eq!(
        text(&g),
        "False\n\
         GRANTS\t1970-01-01T00:00:00+00:00\tg\tp\tacct\tk\n\
         ENCRYPTIONCONTEXTSUBSET\t1\n\
         OPERATIONS\tDecrypt\n\
         OPERATIONS\tEncrypt\n"
    );
}

#[test]
fn a_line_ignores_the_format() {
    let r = Reply::Line(Zeroizing::new("aGVsbG8=".to_string()));
    assert_eq!(r.render(OutputFormat::Json).as_str(), "aGVsbG8=\n");
    assert_eq!(r.render(OutputFormat::Text).as_str(), "aGVsbG8=\n");
}
