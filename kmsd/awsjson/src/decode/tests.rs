//! The decoder's cases: DryRun, empty bodies, malformed bodies, wrong
//! types, missing members, unknown members, refused features, targets.

use super::*;
use kmsd_client::{DataKeySpec, KeySpec, Request};

fn decode(target: &str, body: &str) -> Result<(Request, bool), AwsError> {
    decode_request(target, body.as_bytes()).map(|d| {
        let Decoded::Kms { request, dry_run } = d;
        (request, dry_run)
    })
}

fn err(target: &str, body: &str) -> AwsError {
    match decode(target, body) {
        Ok((r, _)) => panic!("{target} {body} decoded as {}", r.name()),
        Err(e) => e,
    }
}

const ENCRYPT: &str = "TrentService.Encrypt";

#[test]
fn an_encrypt_request_as_botocore_sends_it() {
    let (r, dry_run) = decode(
        ENCRYPT,
        r#"{"KeyId": "alias/app", "Plaintext": "AAFoZWxsb/8=", "EncryptionContext": {"purpose": "test"}}"#,
    )
    .unwrap();
    assert!(!dry_run);
    let Request::Encrypt(e) = r else { panic!() };
    assert_eq!(e.key_id, "alias/app");
    assert_eq!(e.plaintext.expose(), b"\0\x01hello\xff");
    assert_eq!(e.encryption_context["purpose"], "test");
    assert!(e.grant_tokens.is_empty());
}

#[test]
fn dry_run_is_taken_out() {
    let body = |d: &str| format!(r#"{{"KeyId": "k", "Plaintext": "aGk=", "DryRun": {d}}}"#);
    assert!(decode(ENCRYPT, &body("true")).unwrap().1);
    assert!(!decode(ENCRYPT, &body("false")).unwrap().1);
    assert!(!decode(ENCRYPT, &body("null")).unwrap().1);
    let e = err(ENCRYPT, &body("\"yes\""));
    assert_eq!(e.name, "SerializationException");
    assert_eq!(e.message, "Member 'DryRun' must be a boolean, not a string");
    let (_, d) = decode(
        "TrentService.RevokeGrant",
        r#"{"KeyId": "k", "GrantId": "g", "DryRun": true}"#,
    )
    .unwrap();
    assert!(d);
    // DescribeKey has no DryRun in the model: an unknown member, ignored.
    let (_, d) = decode(
        "TrentService.DescribeKey",
        r#"{"KeyId": "k", "DryRun": true}"#,
    )
    .unwrap();
    assert!(!d);
}

#[test]
fn no_input_is_an_empty_body_or_an_empty_object() {
    for body in ["", "{}", " \r\n", "{ }"] {
        let (r, _) = decode("TrentService.ListKeys", body).unwrap();
        let Request::ListKeys(l) = r else { panic!() };
        assert_eq!((l.limit, l.marker), (None, None));
        assert!(matches!(
            decode("TrentService.CreateKey", body).unwrap().0,
            Request::CreateKey(_)
        ));
    }
}

#[test]
fn a_body_that_is_not_a_json_object_is_a_serialization_error() {
    for (body, says) in [
        ("{", "not valid JSON"),
        (r#"{"KeyId": "k",}"#, "not valid JSON"),
        ("\u{0}", "not valid JSON"),
        ("[]", "must be a JSON object, not a list"),
        ("\"KeyId\"", "must be a JSON object, not a string"),
        ("null", "must be a JSON object, not null"),
        ("5", "must be a JSON object, not a number"),
        ("{} {}", "not valid JSON"),
    ] {
        let e = err("TrentService.ListKeys", body);
        assert_eq!(
            (e.name, e.status),
            ("SerializationException", 400),
            "{body}"
        );
        assert!(e.message.contains(says), "{body}: {e}");
    }
    let e = decode_request("TrentService.ListKeys", b"{\"Marker\": \"\xff\"}")
        .err()
        .unwrap();
    assert_eq!(e.name, "SerializationException");
}

#[test]
fn wrong_types_name_the_member() {
    for (target, body, msg) in [
        (
            ENCRYPT,
            r#"{"KeyId": 5, "Plaintext": "aGk="}"#,
            "Member 'KeyId' must be a string, not a number",
        ),
        (
            ENCRYPT,
            r#"{"KeyId": "k", "Plaintext": "aGk", "EncryptionContext": {}}"#,
            "Member 'Plaintext' is not valid base64",
        ),
        (
            ENCRYPT,
            r#"{"KeyId": "k", "Plaintext": "aGk=", "EncryptionContext": {"a": 1}}"#,
            "Member 'EncryptionContext.a' must be a string, not a number",
        ),
        (
            ENCRYPT,
            r#"{"KeyId": "k", "Plaintext": "aGk=", "GrantTokens": "t"}"#,
            "Member 'GrantTokens' must be a list, not a string",
        ),
        (
            ENCRYPT,
            r#"{"KeyId": "k", "Plaintext": "aGk=", "GrantTokens": ["t", null]}"#,
            "Member 'GrantTokens[1]' must be a string, not null",
        ),
        (
            "TrentService.GenerateRandom",
            r#"{"NumberOfBytes": "32"}"#,
            "Member 'NumberOfBytes' must be an integer, not a string",
        ),
        (
            "TrentService.GenerateRandom",
            r#"{"NumberOfBytes": 32.5}"#,
            "Member 'NumberOfBytes' must be an integer, not a number",
        ),
        (
            "TrentService.TagResource",
            r#"{"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": true}]}"#,
            "Member 'Tags[0].TagValue' must be a string, not a boolean",
        ),
        (
            "TrentService.CreateGrant",
            r#"{"KeyId": "k", "GranteePrincipal": "uid:1", "Operations": ["Decrypt"],
                "Constraints": {"EncryptionContextEquals": ["a"]}}"#,
            "Member 'Constraints.EncryptionContextEquals' must be a map of strings, not a list",
        ),
        (
            "TrentService.CreateKey",
            r#"{"BypassPolicyLockoutSafetyCheck": 1}"#,
            "Member 'BypassPolicyLockoutSafetyCheck' must be a boolean, not a number",
        ),
    ] {
        let e = err(target, body);
        assert_eq!(e.name, "SerializationException", "{body}");
        assert!(e.message.starts_with(msg), "{body}: {e}");
    }
}

#[test]
fn missing_required_members_are_validation_errors_as_aws_words_them() {
    let e = err(ENCRYPT, "{}");
    assert_eq!(e.name, "ValidationException");
    assert_eq!(
        e.message,
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null; Value null at 'plaintext' failed to satisfy constraint: \
         Member must not be null"
    );
    // null is absent.
    let e = err(ENCRYPT, r#"{"KeyId": null, "Plaintext": "aGk="}"#);
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: \
         Member must not be null"
    );
    // Nested, as AWS paths them.
    let e = err(
        "TrentService.TagResource",
        r#"{"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": "c"}]}"#,
    );
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'tags.2.member.tagValue' failed to \
         satisfy constraint: Member must not be null"
    );
    // Required by kmsd though optional in the model.
    let e = err("TrentService.GenerateRandom", "{}");
    assert!(e.message.contains("'numberOfBytes'"), "{e}");
    let e = err("TrentService.Decrypt", r#"{"KeyId": "k"}"#);
    assert!(e.message.contains("'ciphertextBlob'"), "{e}");
}

#[test]
fn out_of_range_integers_and_enum_values_are_validation_errors() {
    let e = err("TrentService.ListKeys", r#"{"Limit": -1}"#);
    assert_eq!(
        e.message,
        "1 validation error detected: Value '-1' at 'limit' failed to satisfy constraint: \
         Member must have value greater than or equal to 0"
    );
    let e = err("TrentService.ListKeys", r#"{"Limit": 4294967296}"#);
    assert!(
        e.message.contains("less than or equal to 4294967295"),
        "{e}"
    );
    let e = err(
        "TrentService.GenerateDataKey",
        r#"{"KeyId": "k", "KeySpec": "AES_512"}"#,
    );
    assert_eq!(
        e.message,
        "1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy \
         constraint: Member must satisfy enum value set: [AES_256, AES_128]"
    );
    let (r, _) = decode(
        "TrentService.GenerateDataKey",
        r#"{"KeyId": "k", "KeySpec": "AES_128"}"#,
    )
    .unwrap();
    let Request::GenerateDataKey(g) = r else {
        panic!()
    };
    assert_eq!(g.key_spec, Some(DataKeySpec::Aes128));
}

#[test]
fn what_kmsd_lacks_is_refused_and_defaults_are_taken() {
    let create = "TrentService.CreateKey";
    for (body, says) in [
        (
            r#"{"KeySpec": "RSA_2048"}"#,
            "kmsd supports KeySpec SYMMETRIC_DEFAULT only, not RSA_2048",
        ),
        (
            r#"{"KeyUsage": "SIGN_VERIFY"}"#,
            "KeyUsage ENCRYPT_DECRYPT only",
        ),
        (
            r#"{"CustomerMasterKeySpec": "HMAC_256"}"#,
            "CustomerMasterKeySpec",
        ),
        (
            r#"{"Origin": "EXTERNAL"}"#,
            "kmsd supports Origin AWS_KMS only, not EXTERNAL",
        ),
        (r#"{"MultiRegion": true}"#, "MultiRegion"),
        (r#"{"CustomKeyStoreId": "cks-1"}"#, "CustomKeyStoreId"),
        (r#"{"XksKeyId": "x"}"#, "XksKeyId"),
    ] {
        let e = err(create, body);
        assert_eq!((e.name, e.status), ("UnsupportedOperationException", 400));
        assert!(e.message.contains(says), "{body}: {e}");
    }
    let (r, _) = decode(
        create,
        r#"{"KeySpec": "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS", "MultiRegion": false,
            "Description": "d", "Tags": [{"TagKey": "a", "TagValue": ""}]}"#,
    )
    .unwrap();
    let Request::CreateKey(c) = r else { panic!() };
    assert_eq!(c.key_spec, Some(KeySpec::SymmetricDefault));
    assert_eq!(c.description.as_deref(), Some("d"));
    assert_eq!(c.tags[0].tag_value, "");

    let e = err(
        ENCRYPT,
        r#"{"KeyId": "k", "Plaintext": "aGk=", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}"#,
    );
    assert_eq!(e.name, "UnsupportedOperationException");
    assert!(
        decode(
            ENCRYPT,
            r#"{"KeyId": "k", "Plaintext": "aGk=", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}"#,
        )
        .is_ok()
    );
    let e = err(
        "TrentService.Decrypt",
        r#"{"CiphertextBlob": "AA==", "Recipient": {"AttestationDocument": "AA=="}}"#,
    );
    assert!(e.message.contains("Recipient"), "{e}");
    let e = err(
        "TrentService.ListKeyRotations",
        r#"{"KeyId": "k", "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}"#,
    );
    assert_eq!(e.name, "UnsupportedOperationException");
    // A validation error comes before an unsupported member.
    let e = err(create, r#"{"Origin": "EXTERNAL", "KeySpec": "NOPE"}"#);
    assert_eq!(e.name, "ValidationException");
}

#[test]
fn unknown_members_are_ignored() {
    let (r, _) = decode(
        ENCRYPT,
        r#"{"KeyId": "k", "Plaintext": "aGk=", "FutureMember": {"x": [1]}, "keyid": 5}"#,
    )
    .unwrap();
    let Request::Encrypt(e) = r else { panic!() };
    assert_eq!(e.key_id, "k");
    // Inside structures too.
    assert!(
        decode(
            "TrentService.TagResource",
            r#"{"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b", "Extra": 1}]}"#,
        )
        .is_ok()
    );
}

#[test]
fn targets() {
    for (target, name, says) in [
        (
            "TrentService.Frobnicate",
            "UnknownOperationException",
            "no operation 'TrentService.Frobnicate'",
        ),
        (
            "trentservice.Encrypt",
            "UnknownOperationException",
            "TrentService.<Operation>",
        ),
        (
            "TrentService.encrypt",
            "UnknownOperationException",
            "no operation",
        ),
        (
            "DynamoDB_20120810.GetItem",
            "UnknownOperationException",
            "TrentService.<Operation>",
        ),
        (
            "Encrypt",
            "UnknownOperationException",
            "TrentService.<Operation>",
        ),
        ("", "UnknownOperationException", "TrentService.<Operation>"),
        ("TrentService.", "UnknownOperationException", "no operation"),
        (
            "TrentService.GetServicePolicy",
            "UnknownOperationException",
            "kmsd's own operation",
        ),
        (
            "TrentService.Sign",
            "UnsupportedOperationException",
            "the Sign operation: kmsd has symmetric",
        ),
        (
            "TrentService.ImportKeyMaterial",
            "UnsupportedOperationException",
            "imports none",
        ),
        (
            "TrentService.UpdateKeyDescription",
            "UnsupportedOperationException",
            "UpdateKeyDescription",
        ),
    ] {
        let e = err(target, "{}");
        assert_eq!((e.name, e.status), (name, 400), "{target}");
        assert!(e.message.contains(says), "{target}: {e}");
    }
    // A long target is clipped in the message.
    let long = format!("TrentService.{}", "A".repeat(10_000));
    assert!(err(&long, "{}").message.len() < 300);
    // The operation is checked before the body.
    assert_eq!(
        err("TrentService.Sign", "not json").name,
        "UnsupportedOperationException"
    );
}
