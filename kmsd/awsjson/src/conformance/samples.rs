//! One realistic answer per served operation, every optional member set
//! (kmsd's values as its service makes them, with AWS's account and ARNs).

use kmsd_client::*;

const ACCOUNT: &str = "111122223333";
const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_ARN: &str =
    "arn:aws:kms:eu-west-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";
const GRANT_ID: &str = "0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60";
pub(crate) const T0: Timestamp = Timestamp(1_700_000_000);

fn metadata(state: KeyState) -> KeyMetadata {
    KeyMetadata {
        aws_account_id: ACCOUNT.into(),
        key_id: KEY.into(),
        arn: KEY_ARN.into(),
        creation_date: T0,
        enabled: state == KeyState::Enabled,
        description: "the app's key".into(),
        key_usage: KeyUsage::EncryptDecrypt,
        key_state: state,
        deletion_date: Some(T0.plus_days(7)),
        pending_deletion_window_in_days: Some(7),
        origin: "AWS_KMS".into(),
        key_manager: "CUSTOMER".into(),
        key_spec: KeySpec::SymmetricDefault,
        encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
        multi_region: false,
        current_key_version: 3,
    }
}

fn grants() -> ListGrantsResponse {
    let ctx: EncryptionContext = [("purpose".to_string(), "backup".to_string())].into();
    ListGrantsResponse {
        grants: vec![GrantListEntry {
            key_id: KEY_ARN.into(),
            grant_id: GRANT_ID.into(),
            name: Some("backup-job".into()),
            creation_date: T0,
            grantee_principal: "uid:1000".into(),
            retiring_principal: Some("user:ops".into()),
            issuing_account: "uid:0".into(),
            operations: vec![
                "Decrypt".into(),
                "GenerateDataKey".into(),
                "RetireGrant".into(),
            ],
            constraints: Some(GrantConstraints {
                encryption_context_subset: Some(ctx.clone()),
                encryption_context_equals: Some(ctx),
            }),
        }],
        next_marker: Some("eyJuIjoxfQ".into()),
        truncated: true,
    }
}

fn blob(n: usize) -> Blob {
    Blob((0..n).map(|i| (i * 7 + 1) as u8).collect())
}

fn secret(n: usize) -> SecretBytes {
    SecretBytes::new((0..n).map(|i| (i * 13 + 5) as u8).collect())
}

/// One answer per served operation, every optional member set.
pub(crate) fn samples() -> Vec<Response> {
    let marker = || Some("eyJuIjoxfQ".to_string());
    let tags = vec![Tag {
        tag_key: "team".into(),
        tag_value: "storage".into(),
    }];
    vec![
        Response::CancelKeyDeletion(KeyIdResponse {
            key_id: KEY_ARN.into(),
        }),
        Response::CreateAlias(Empty {}),
        Response::CreateGrant(CreateGrantResponse {
            grant_id: GRANT_ID.into(),
            grant_token: "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFl"
                .into(),
        }),
        Response::CreateKey(KeyMetadataResponse {
            key_metadata: metadata(KeyState::Enabled),
        }),
        Response::Decrypt(DecryptResponse {
            key_id: KEY_ARN.into(),
            plaintext: secret(32),
            encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        }),
        Response::DeleteAlias(Empty {}),
        Response::DescribeKey(KeyMetadataResponse {
            key_metadata: metadata(KeyState::PendingDeletion),
        }),
        Response::DisableKey(Empty {}),
        Response::DisableKeyRotation(Empty {}),
        Response::EnableKey(Empty {}),
        Response::EnableKeyRotation(Empty {}),
        Response::Encrypt(EncryptResponse {
            ciphertext_blob: blob(90),
            key_id: KEY_ARN.into(),
            encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        }),
        Response::GenerateDataKey(GenerateDataKeyResponse {
            ciphertext_blob: blob(90),
            plaintext: secret(32),
            key_id: KEY_ARN.into(),
        }),
        Response::GenerateDataKeyWithoutPlaintext(GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: blob(74),
            key_id: KEY_ARN.into(),
        }),
        Response::GenerateRandom(GenerateRandomResponse {
            plaintext: secret(1024),
        }),
        Response::GetKeyPolicy(GetKeyPolicyResponse {
            policy: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
            policy_name: "default".into(),
        }),
        Response::GetKeyRotationStatus(GetKeyRotationStatusResponse {
            key_id: KEY_ARN.into(),
            key_rotation_enabled: true,
            rotation_period_in_days: Some(365),
            next_rotation_date: Some(T0.plus_days(365)),
            on_demand_rotation_start_date: Some(T0.plus_days(1)),
        }),
        Response::ListAliases(ListAliasesResponse {
            aliases: vec![AliasListEntry {
                alias_name: "alias/app".into(),
                alias_arn: "arn:aws:kms:eu-west-1:111122223333:alias/app".into(),
                target_key_id: Some(KEY.into()),
                creation_date: T0,
                last_updated_date: T0.plus_days(2),
            }],
            next_marker: marker(),
            truncated: true,
        }),
        Response::ListGrants(grants()),
        Response::ListKeyPolicies(ListKeyPoliciesResponse {
            policy_names: vec!["default".into()],
            truncated: false,
        }),
        Response::ListKeyRotations(ListKeyRotationsResponse {
            rotations: vec![
                RotationListEntry {
                    key_id: KEY_ARN.into(),
                    rotation_date: T0.plus_days(365),
                    rotation_type: RotationType::Automatic,
                    key_version: 2,
                },
                RotationListEntry {
                    key_id: KEY_ARN.into(),
                    rotation_date: T0.plus_days(400),
                    rotation_type: RotationType::OnDemand,
                    key_version: 3,
                },
            ],
            next_marker: marker(),
            truncated: true,
        }),
        Response::ListKeys(ListKeysResponse {
            keys: vec![
                KeyListEntry {
                    key_id: KEY.into(),
                    key_arn: KEY_ARN.into(),
                },
                KeyListEntry {
                    key_id: "0987dcba-09fe-87dc-65ba-ab0987654321".into(),
                    key_arn: OTHER_ARN.into(),
                },
            ],
            next_marker: marker(),
            truncated: true,
        }),
        Response::ListResourceTags(ListResourceTagsResponse {
            tags,
            next_marker: marker(),
            truncated: true,
        }),
        Response::ListRetirableGrants(grants()),
        Response::PutKeyPolicy(Empty {}),
        Response::ReEncrypt(ReEncryptResponse {
            ciphertext_blob: blob(90),
            source_key_id: OTHER_ARN.into(),
            key_id: KEY_ARN.into(),
            source_encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
            destination_encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
        }),
        Response::RetireGrant(Empty {}),
        Response::RevokeGrant(Empty {}),
        Response::RotateKeyOnDemand(KeyIdResponse {
            key_id: KEY_ARN.into(),
        }),
        Response::ScheduleKeyDeletion(ScheduleKeyDeletionResponse {
            key_id: KEY_ARN.into(),
            deletion_date: T0.plus_days(30),
            key_state: KeyState::PendingDeletion,
            pending_window_in_days: 30,
        }),
        Response::TagResource(Empty {}),
        Response::UntagResource(Empty {}),
        Response::UpdateAlias(Empty {}),
    ]
}
