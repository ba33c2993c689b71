//! Answers: a kmsd [`Response`] to the body of the AWS output shape.
//!
//! Written member by member in the model's terms: PascalCase names, blobs
//! as padded standard base64, timestamps as epoch seconds (JSON numbers,
//! as awsJson1_1 clients expect), absent optional members left out (no
//! `null`s). Members only kmsd has (`KeyMetadata.CurrentKeyVersion`,
//! a rotation's `KeyVersion`) are not written; members AWS answers with
//! that kmsd can derive are (`KeyMetadata.CustomerMasterKeySpec`).

use crate::json_out::{JsonBuf, Obj};
use kmsd_client::*;

/// The body of the answer to `resp` (HTTP 200, [`crate::CONTENT_TYPE`]).
/// Operations without output get `{}`. The responses of kmsd's own
/// operations, which the AWS wire does not serve, also encode as `{}`.
pub fn encode_response(resp: &Response) -> Vec<u8> {
    let mut out = JsonBuf::with_capacity(256);
    out.object(|o| members(o, resp));
    out.into_vec()
}

fn members(o: &mut Obj<'_>, resp: &Response) {
    match resp {
        Response::CreateKey(r) | Response::DescribeKey(r) => {
            o.obj("KeyMetadata", |o| key_metadata(o, &r.key_metadata))
        }
        Response::ListKeys(r) => {
            o.objs("Keys", &r.keys, |o, k| {
                o.str("KeyId", &k.key_id);
                o.str("KeyArn", &k.key_arn);
            });
            page(o, r.next_marker.as_deref(), r.truncated);
        }
        Response::ScheduleKeyDeletion(r) => {
            o.str("KeyId", &r.key_id);
            o.time("DeletionDate", r.deletion_date);
            o.str("KeyState", r.key_state.as_str());
            o.uint("PendingWindowInDays", r.pending_window_in_days.into());
        }
        Response::CancelKeyDeletion(r) | Response::RotateKeyOnDemand(r) => {
            o.str("KeyId", &r.key_id)
        }
        Response::GetKeyRotationStatus(r) => {
            o.bool("KeyRotationEnabled", r.key_rotation_enabled);
            o.str("KeyId", &r.key_id);
            o.opt_uint(
                "RotationPeriodInDays",
                r.rotation_period_in_days.map(u64::from),
            );
            o.opt_time("NextRotationDate", r.next_rotation_date);
            o.opt_time("OnDemandRotationStartDate", r.on_demand_rotation_start_date);
        }
        Response::ListKeyRotations(r) => {
            o.objs("Rotations", &r.rotations, |o, e| {
                o.str("KeyId", &e.key_id);
                o.time("RotationDate", e.rotation_date);
                o.str("RotationType", e.rotation_type.as_str());
            });
            page(o, r.next_marker.as_deref(), r.truncated);
        }
        Response::ListAliases(r) => {
            o.objs("Aliases", &r.aliases, |o, a| {
                o.str("AliasName", &a.alias_name);
                o.str("AliasArn", &a.alias_arn);
                o.opt_str("TargetKeyId", a.target_key_id.as_deref());
                o.time("CreationDate", a.creation_date);
                o.time("LastUpdatedDate", a.last_updated_date);
            });
            page(o, r.next_marker.as_deref(), r.truncated);
        }
        Response::ListResourceTags(r) => {
            o.objs("Tags", &r.tags, tag);
            page(o, r.next_marker.as_deref(), r.truncated);
        }
        Response::Encrypt(r) => {
            o.blob("CiphertextBlob", r.ciphertext_blob.as_bytes());
            o.str("KeyId", &r.key_id);
            o.str("EncryptionAlgorithm", &r.encryption_algorithm);
        }
        Response::Decrypt(r) => {
            o.str("KeyId", &r.key_id);
            o.blob("Plaintext", r.plaintext.expose());
            o.str("EncryptionAlgorithm", &r.encryption_algorithm);
        }
        Response::ReEncrypt(r) => {
            o.blob("CiphertextBlob", r.ciphertext_blob.as_bytes());
            o.str("SourceKeyId", &r.source_key_id);
            o.str("KeyId", &r.key_id);
            o.str("SourceEncryptionAlgorithm", &r.source_encryption_algorithm);
            o.str(
                "DestinationEncryptionAlgorithm",
                &r.destination_encryption_algorithm,
            );
        }
        Response::GenerateDataKey(r) => {
            o.blob("CiphertextBlob", r.ciphertext_blob.as_bytes());
            o.blob("Plaintext", r.plaintext.expose());
            o.str("KeyId", &r.key_id);
        }
        Response::GenerateDataKeyWithoutPlaintext(r) => {
            o.blob("CiphertextBlob", r.ciphertext_blob.as_bytes());
            o.str("KeyId", &r.key_id);
        }
        Response::GenerateRandom(r) => o.blob("Plaintext", r.plaintext.expose()),
        Response::GetKeyPolicy(r) => {
            o.str("Policy", &r.policy);
            o.str("PolicyName", &r.policy_name);
        }
        Response::ListKeyPolicies(r) => {
            o.strs("PolicyNames", r.policy_names.iter().map(String::as_str));
            o.bool("Truncated", r.truncated);
        }
        Response::CreateGrant(r) => {
            o.str("GrantToken", &r.grant_token);
            o.str("GrantId", &r.grant_id);
        }
        Response::ListGrants(r) | Response::ListRetirableGrants(r) => {
            o.objs("Grants", &r.grants, grant);
            page(o, r.next_marker.as_deref(), r.truncated);
        }
        // No output members.
        Response::EnableKey(_)
        | Response::DisableKey(_)
        | Response::EnableKeyRotation(_)
        | Response::DisableKeyRotation(_)
        | Response::CreateAlias(_)
        | Response::UpdateAlias(_)
        | Response::DeleteAlias(_)
        | Response::TagResource(_)
        | Response::UntagResource(_)
        | Response::PutKeyPolicy(_)
        | Response::RetireGrant(_)
        | Response::RevokeGrant(_) => {}
        // kmsd's own operations (GetServicePolicy, PutServicePolicy, and
        // any added later): not served on the AWS wire.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

fn key_metadata(o: &mut Obj<'_>, m: &KeyMetadata) {
    o.str("AWSAccountId", &m.aws_account_id);
    o.str("KeyId", &m.key_id);
    o.str("Arn", &m.arn);
    o.time("CreationDate", m.creation_date);
    o.bool("Enabled", m.enabled);
    o.str("Description", &m.description);
    o.str("KeyUsage", m.key_usage.as_str());
    o.str("KeyState", m.key_state.as_str());
    o.opt_time("DeletionDate", m.deletion_date);
    o.str("Origin", &m.origin);
    o.str("KeyManager", &m.key_manager);
    // Deprecated, and still in AWS's answers: KeySpec under its old name
    // (every kmsd KeySpec is also a CustomerMasterKeySpec).
    o.str("CustomerMasterKeySpec", m.key_spec.as_str());
    o.str("KeySpec", m.key_spec.as_str());
    o.strs(
        "EncryptionAlgorithms",
        m.encryption_algorithms.iter().map(String::as_str),
    );
    o.bool("MultiRegion", m.multi_region);
    o.opt_uint(
        "PendingDeletionWindowInDays",
        m.pending_deletion_window_in_days.map(u64::from),
    );
    // CurrentKeyVersion is kmsd's: AWS has CurrentKeyMaterialId, a 64-hex
    // id kmsd does not keep.
}

fn tag(o: &mut Obj<'_>, t: &Tag) {
    o.str("TagKey", &t.tag_key);
    o.str("TagValue", &t.tag_value);
}

fn grant(o: &mut Obj<'_>, g: &GrantListEntry) {
    o.str("KeyId", &g.key_id);
    o.str("GrantId", &g.grant_id);
    o.opt_str("Name", g.name.as_deref());
    o.time("CreationDate", g.creation_date);
    o.str("GranteePrincipal", &g.grantee_principal);
    o.opt_str("RetiringPrincipal", g.retiring_principal.as_deref());
    o.str("IssuingAccount", &g.issuing_account);
    o.strs("Operations", g.operations.iter().map(String::as_str));
    if let Some(c) = &g.constraints {
        o.obj("Constraints", |o| {
            if let Some(m) = &c.encryption_context_subset {
                o.map("EncryptionContextSubset", m);
            }
            if let Some(m) = &c.encryption_context_equals {
                o.map("EncryptionContextEquals", m);
            }
        });
    }
}

/// The pagination members: `Truncated` always, `NextMarker` when there is
/// a next page.
fn page(o: &mut Obj<'_>, next_marker: Option<&str>, truncated: bool) {
    o.opt_str("NextMarker", next_marker);
    o.bool("Truncated", truncated);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &Response) -> String {
        String::from_utf8(encode_response(r)).unwrap()
    }

    fn metadata() -> KeyMetadata {
        KeyMetadata {
            aws_account_id: "111122223333".into(),
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
            arn: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                .into(),
            creation_date: Timestamp(1_700_000_000),
            enabled: true,
            description: String::new(),
            key_usage: KeyUsage::EncryptDecrypt,
            key_state: KeyState::Enabled,
            deletion_date: None,
            pending_deletion_window_in_days: None,
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            key_spec: KeySpec::SymmetricDefault,
            encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
            multi_region: false,
            current_key_version: 2,
        }
    }

    /// The exact bytes: the model's member order, numbers for timestamps,
    /// no nulls, no CurrentKeyVersion.
    #[test]
    fn describe_key_golden() {
        let r = Response::DescribeKey(KeyMetadataResponse {
            key_metadata: metadata(),
        });
        assert_eq!(
            text(&r),
            concat!(
                r#"{"KeyMetadata":{"AWSAccountId":"111122223333","#,
                r#""KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","#,
                r#""Arn":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","#,
                r#""CreationDate":1700000000,"Enabled":true,"Description":"","#,
                r#""KeyUsage":"ENCRYPT_DECRYPT","KeyState":"Enabled","Origin":"AWS_KMS","#,
                r#""KeyManager":"CUSTOMER","CustomerMasterKeySpec":"SYMMETRIC_DEFAULT","#,
                r#""KeySpec":"SYMMETRIC_DEFAULT","EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],"#,
                r#""MultiRegion":false}}"#
            )
        );
        let mut pending = metadata();
        pending.key_state = KeyState::PendingDeletion;
        pending.deletion_date = Some(Timestamp(1_700_604_800));
        pending.pending_deletion_window_in_days = Some(7);
        let v: serde_json::Value = serde_json::from_slice(&encode_response(&Response::CreateKey(
            KeyMetadataResponse {
                key_metadata: pending,
            },
        )))
        .unwrap();
        assert_eq!(v["KeyMetadata"]["DeletionDate"], 1_700_604_800);
        assert_eq!(v["KeyMetadata"]["PendingDeletionWindowInDays"], 7);
    }

    #[test]
    fn blobs_are_base64_and_secrets_too() {
        let r = Response::GenerateDataKey(GenerateDataKeyResponse {
            ciphertext_blob: Blob(vec![1, 2, 3]),
            plaintext: SecretBytes::from_slice(&[0xff; 4]),
            key_id: "arn:k".into(),
        });
        assert_eq!(
            text(&r),
            r#"{"CiphertextBlob":"AQID","Plaintext":"/////w==","KeyId":"arn:k"}"#
        );
    }

    #[test]
    fn no_output_is_an_empty_object() {
        assert_eq!(text(&Response::EnableKey(Empty {})), "{}");
        assert_eq!(text(&Response::RetireGrant(Empty {})), "{}");
        // kmsd's own operations are not served here.
        assert_eq!(
            text(&Response::GetServicePolicy(GetKeyPolicyResponse {
                policy: "{}".into(),
                policy_name: "default".into(),
            })),
            "{}"
        );
        assert_eq!(text(&Response::PutServicePolicy(Empty {})), "{}");
    }

    #[test]
    fn pages_say_truncated_always_and_next_marker_when_there_is_one() {
        let page = |next: Option<&str>| {
            text(&Response::ListKeys(ListKeysResponse {
                keys: vec![],
                next_marker: next.map(str::to_string),
                truncated: next.is_some(),
            }))
        };
        assert_eq!(page(None), r#"{"Keys":[],"Truncated":false}"#);
        assert_eq!(
            page(Some("m1")),
            r#"{"Keys":[],"NextMarker":"m1","Truncated":true}"#
        );
    }

    #[test]
    fn grants_leave_out_what_they_lack() {
        let r = Response::ListGrants(ListGrantsResponse {
            grants: vec![GrantListEntry {
                key_id: "arn:k".into(),
                grant_id: "g".into(),
                name: None,
                creation_date: Timestamp(5),
                grantee_principal: "uid:1000".into(),
                retiring_principal: None,
                issuing_account: "uid:0".into(),
                operations: vec!["Decrypt".into(), "ReEncryptFrom".into()],
                constraints: Some(GrantConstraints {
                    encryption_context_subset: None,
                    encryption_context_equals: Some([("a".into(), "b".into())].into()),
                }),
            }],
            next_marker: None,
            truncated: false,
        });
        assert_eq!(
            text(&r),
            concat!(
                r#"{"Grants":[{"KeyId":"arn:k","GrantId":"g","CreationDate":5,"#,
                r#""GranteePrincipal":"uid:1000","IssuingAccount":"uid:0","#,
                r#""Operations":["Decrypt","ReEncryptFrom"],"#,
                r#""Constraints":{"EncryptionContextEquals":{"a":"b"}}}],"Truncated":false}"#
            )
        );
    }
}
