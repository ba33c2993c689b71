//! kmsd's AWS endpoint with the official AWS SDK for Rust (`aws-sdk-kms`, a
//! Smithy-generated client): every answer it gets must parse into the SDK's
//! types (enums, blobs, timestamps, paginator tokens) and every refusal
//! into its typed errors or error codes. A real kmsd, an access key made
//! on its socket, static credentials, `endpoint_url` and kmsd's region.

mod common;
#[path = "common/http.rs"]
mod http;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_kms::Client;
use aws_sdk_kms::config::Region;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::operation::RequestId;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeySpec, EncryptionAlgorithmSpec, GrantConstraints, GrantOperation, KeyManagerType,
    KeySpec, KeyState, KeyUsageType, OriginType, Tag,
};
use aws_smithy_http_client::tls;
use http::{Endpoint, endpoint};
use std::collections::{BTreeMap, HashMap};

/// kmsd is started for this region and account, so the ARNs and the
/// signing scope are not kmsd's defaults.
const REGION: &str = "eu-west-3";
const ACCOUNT: &str = "111122223333";

fn start() -> Endpoint {
    endpoint(&["--region", REGION, "--account", ACCOUNT])
}

/// An SDK client for `url` signing with the static key `akid`/`secret`.
async fn sdk(url: &str, akid: &str, secret: &str) -> Client {
    // The SDK's default HTTPS client is rustls on aws-lc-rs; this one is
    // rustls on ring (and plain http:// here).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(akid, secret, None, None, "kmsd-test"))
        .http_client(http)
        .load()
        .await;
    Client::new(&conf)
}

/// The endpoint's client for a new access key of `principal`.
async fn sdk_as(e: &Endpoint, principal: &str) -> Client {
    let (akid, secret) = e.access_key(principal);
    sdk(&e.url(), &akid, &secret).await
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn key_arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().expect("tag")
}

async fn new_key(kms: &Client, description: &str) -> String {
    kms.create_key()
        .description(description)
        .send()
        .await
        .expect("CreateKey")
        .key_metadata()
        .expect("KeyMetadata")
        .key_id()
        .to_string()
}

/// The HTTP status of a service error.
fn status<E>(err: &aws_sdk_kms::error::SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn keys_and_cryptography_parse_into_sdk_types() {
    let e = start();
    let kms = sdk_as(&e, "user:root").await;
    let before = now_secs();

    let made = kms
        .create_key()
        .description("sdk test")
        .tags(tag("team", "storage"))
        .tags(tag("env", "ci"))
        .send()
        .await
        .expect("CreateKey");
    let id = made
        .key_metadata()
        .expect("KeyMetadata")
        .key_id()
        .to_string();
    let arn = key_arn(&id);
    // x-amzn-RequestId reaches the SDK and is the audit record's requestId.
    let request_id = made.request_id().expect("x-amzn-RequestId").to_string();
    let audited = e
        .records()
        .into_iter()
        .find(|r| r["eventName"] == "CreateKey")
        .expect("CreateKey is audited");
    assert_eq!(audited["requestId"], request_id.as_str());

    let described = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .expect("DescribeKey");
    let m = described.key_metadata().expect("KeyMetadata");
    assert_eq!(m.key_id(), id);
    assert_eq!(m.arn(), Some(arn.as_str()));
    assert_eq!(m.aws_account_id(), Some(ACCOUNT));
    assert_eq!(m.description(), Some("sdk test"));
    assert!(m.enabled());
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert_eq!(m.key_manager(), Some(&KeyManagerType::Customer));
    assert_eq!(m.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(m.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(m.origin(), Some(&OriginType::AwsKms));
    assert_eq!(
        m.encryption_algorithms(),
        &[EncryptionAlgorithmSpec::SymmetricDefault]
    );
    assert_eq!(m.multi_region(), Some(false));
    assert_eq!(m.deletion_date(), None);
    let created = m.creation_date().expect("CreationDate").secs();
    assert!(
        (before - 1..=now_secs() + 1).contains(&created),
        "CreationDate {created}, test started at {before}"
    );
    let tags = kms
        .list_resource_tags()
        .key_id(&arn)
        .send()
        .await
        .expect("ListResourceTags");
    let tags: BTreeMap<&str, &str> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(tags, BTreeMap::from([("env", "ci"), ("team", "storage")]));

    // Encrypt and Decrypt with an encryption context (bytes that are not
    // UTF-8, to be sure the blob is base64 both ways).
    let plaintext = b"\x00\x01kmsd \xff\xfe";
    let enc = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(plaintext.to_vec()))
        .encryption_context("purpose", "sdk")
        .encryption_context("volume", "v1")
        .send()
        .await
        .expect("Encrypt");
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    assert_eq!(
        enc.encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    let blob = enc.ciphertext_blob().expect("CiphertextBlob").clone();
    assert!(blob.as_ref().len() > plaintext.len());
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("volume", "v1")
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect("Decrypt");
    assert_eq!(dec.plaintext().expect("Plaintext").as_ref(), plaintext);
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    assert_eq!(
        dec.encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );

    // The wrong context: the SDK's typed InvalidCiphertextException.
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "other")
        .send()
        .await
        .expect_err("Decrypt with the wrong context");
    assert_eq!(status(&err), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("InvalidCiphertextException"));
    match &err {
        DecryptError::InvalidCiphertextException(x) => {
            assert!(x.message().is_some_and(|m| !m.is_empty()), "{x:?}")
        }
        other => panic!("not InvalidCiphertextException: {other:?}"),
    }

    // GenerateDataKey: 32 bytes that Decrypt gives back.
    let dk = kms
        .generate_data_key()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect("GenerateDataKey");
    assert_eq!(dk.key_id(), Some(arn.as_str()));
    let dk_plain = dk.plaintext().expect("Plaintext").as_ref().to_vec();
    assert_eq!(dk_plain.len(), 32);
    let again = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().expect("CiphertextBlob").clone())
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect("Decrypt the data key");
    assert_eq!(again.plaintext().expect("Plaintext").as_ref(), dk_plain);
    let sized = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(64)
        .send()
        .await
        .expect("GenerateDataKey NumberOfBytes");
    assert_eq!(sized.plaintext().expect("Plaintext").as_ref().len(), 64);

    // GenerateDataKeyWithoutPlaintext: only the blob, which decrypts to 32
    // bytes.
    let wp = kms
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("GenerateDataKeyWithoutPlaintext");
    assert_eq!(wp.key_id(), Some(arn.as_str()));
    let wp_plain = kms
        .decrypt()
        .ciphertext_blob(wp.ciphertext_blob().expect("CiphertextBlob").clone())
        .send()
        .await
        .expect("Decrypt the data key without plaintext");
    assert_eq!(wp_plain.plaintext().expect("Plaintext").as_ref().len(), 32);

    // ReEncrypt under a second key and another context.
    let id2 = new_key(&kms, "sdk destination").await;
    let re = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("purpose", "sdk")
        .source_encryption_context("volume", "v1")
        .destination_key_id(&id2)
        .destination_encryption_context("purpose", "moved")
        .send()
        .await
        .expect("ReEncrypt");
    assert_eq!(re.source_key_id(), Some(arn.as_str()));
    assert_eq!(re.key_id(), Some(key_arn(&id2).as_str()));
    assert_eq!(
        re.source_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    let moved = re.ciphertext_blob().expect("CiphertextBlob").clone();
    assert_ne!(moved, blob);
    let back = kms
        .decrypt()
        .ciphertext_blob(moved)
        .encryption_context("purpose", "moved")
        .send()
        .await
        .expect("Decrypt the re-encrypted blob");
    assert_eq!(back.plaintext().expect("Plaintext").as_ref(), plaintext);
    assert_eq!(back.key_id(), Some(key_arn(&id2).as_str()));
}

#[tokio::test]
async fn paginators_walk_every_page_once() {
    let e = start();
    let kms = sdk_as(&e, "user:root").await;
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(new_key(&kms, &format!("page {i}")).await);
    }

    // ListKeys, 3 a page: 4 pages, every key exactly once.
    let mut pages = kms.list_keys().limit(3).into_paginator().send();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut sizes = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListKeys page");
        sizes.push(page.keys().len());
        assert_eq!(page.truncated(), page.next_marker().is_some());
        for k in page.keys() {
            let id = k.key_id().expect("KeyId");
            assert_eq!(k.key_arn(), Some(key_arn(id).as_str()));
            *seen.entry(id.to_string()).or_default() += 1;
        }
    }
    assert_eq!(sizes, [3, 3, 3, 2]);
    for id in &ids {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "{id} listed {:?} times",
            seen.get(id)
        );
    }
    assert_eq!(seen.len(), ids.len(), "only the keys made here: {seen:?}");

    // The flattened paginator gives the same keys.
    let items: Vec<String> = kms
        .list_keys()
        .limit(4)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListKeys items")
        .iter()
        .map(|k| k.key_id().expect("KeyId").to_string())
        .collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_items = items.clone();
    sorted_items.sort();
    assert_eq!(sorted_items, sorted_ids);

    // ListAliases, 2 a page.
    let before = now_secs();
    let mut aliases = BTreeMap::new();
    for (i, id) in ids.iter().take(7).enumerate() {
        let name = format!("alias/sdk-{i}");
        kms.create_alias()
            .alias_name(&name)
            .target_key_id(id)
            .send()
            .await
            .expect("CreateAlias");
        aliases.insert(name, id.clone());
    }
    let mut pages = kms.list_aliases().limit(2).into_paginator().send();
    let mut listed: BTreeMap<String, String> = BTreeMap::new();
    let mut n_pages = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("ListAliases page");
        n_pages += 1;
        assert!(page.aliases().len() <= 2);
        for a in page.aliases() {
            let name = a.alias_name().expect("AliasName").to_string();
            assert_eq!(
                a.alias_arn(),
                Some(format!("arn:aws:kms:{REGION}:{ACCOUNT}:{name}").as_str())
            );
            let created = a.creation_date().expect("CreationDate").secs();
            assert!((before - 1..=now_secs() + 1).contains(&created));
            assert!(a.last_updated_date().is_some());
            let target = a.target_key_id().expect("TargetKeyId").to_string();
            assert!(listed.insert(name, target).is_none(), "listed twice");
        }
    }
    assert_eq!(n_pages, 4);
    assert_eq!(listed, aliases);

    // ListGrants, 2 a page.
    let key = &ids[0];
    let mut made = Vec::new();
    for uid in 5000..5005 {
        let g = kms
            .create_grant()
            .key_id(key)
            .grantee_principal(format!("uid:{uid}"))
            .operations(GrantOperation::Decrypt)
            .send()
            .await
            .expect("CreateGrant");
        made.push(g.grant_id().expect("GrantId").to_string());
    }
    let pages: Vec<_> = kms
        .list_grants()
        .key_id(key)
        .limit(2)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListGrants pages");
    assert_eq!(
        pages.iter().map(|p| p.grants().len()).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    let mut grant_ids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.grants())
        .map(|g| g.grant_id().expect("GrantId").to_string())
        .collect();
    grant_ids.sort();
    made.sort();
    assert_eq!(grant_ids, made);
}

#[tokio::test]
async fn grants_and_the_deletion_schedule() {
    let e = start();
    let kms = sdk_as(&e, "user:root").await;
    let id = new_key(&kms, "grants").await;
    let arn = key_arn(&id);

    let g = kms
        .create_grant()
        .key_id(&arn)
        .name("sdk-grant")
        .grantee_principal("uid:4242")
        .retiring_principal("user:root")
        .operations(GrantOperation::Decrypt)
        .operations(GrantOperation::GenerateDataKey)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("purpose", "sdk")
                .build(),
        )
        .send()
        .await
        .expect("CreateGrant");
    let grant_id = g.grant_id().expect("GrantId").to_string();
    assert!(!grant_id.is_empty());
    assert!(g.grant_token().is_some_and(|t| !t.is_empty()));

    let listed = kms
        .list_grants()
        .key_id(&id)
        .send()
        .await
        .expect("ListGrants");
    assert!(!listed.truncated());
    assert_eq!(listed.next_marker(), None);
    let [entry] = listed.grants() else {
        panic!("one grant expected: {:?}", listed.grants());
    };
    assert_eq!(entry.grant_id(), Some(grant_id.as_str()));
    assert_eq!(entry.name(), Some("sdk-grant"));
    assert_eq!(entry.grantee_principal(), Some("uid:4242"));
    assert_eq!(entry.retiring_principal(), Some("user:root"));
    // The key's ARN, as AWS names it in grant lists.
    assert_eq!(entry.key_id(), Some(arn.as_str()));
    let mut ops: Vec<&str> = entry.operations().iter().map(|o| o.as_str()).collect();
    ops.sort();
    assert_eq!(ops, ["Decrypt", "GenerateDataKey"]);
    assert_eq!(
        entry
            .constraints()
            .and_then(|c| c.encryption_context_subset()),
        Some(&HashMap::from([("purpose".to_string(), "sdk".to_string())]))
    );
    assert!(entry.creation_date().is_some_and(|d| d.secs() > 0));

    // The grantee may decrypt in the granted context, and nothing more.
    let blob = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"granted".to_vec()))
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect("Encrypt")
        .ciphertext_blob()
        .expect("CiphertextBlob")
        .clone();
    let grantee = sdk_as(&e, "uid:4242").await;
    let dec = grantee
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect("the grantee decrypts");
    assert_eq!(dec.plaintext().expect("Plaintext").as_ref(), b"granted");
    let denied = grantee
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_context("purpose", "sdk")
        .send()
        .await
        .expect_err("Encrypt is not granted");
    assert_eq!(status(&denied), Some(400));
    assert_eq!(denied.code(), Some("AccessDeniedException"));

    // ScheduleKeyDeletion: DeletionDate is a timestamp 7 days out.
    let before = now_secs();
    let s = kms
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("ScheduleKeyDeletion");
    assert_eq!(s.key_id(), Some(arn.as_str()));
    assert_eq!(s.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(s.pending_window_in_days(), Some(7));
    let when = s.deletion_date().expect("DeletionDate").secs();
    let week = 7 * 86_400;
    assert!(
        (before + week - 1..=now_secs() + week + 1).contains(&when),
        "DeletionDate {when}, scheduled at {before}"
    );
    let m = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .expect("DescribeKey");
    let m = m.key_metadata().expect("KeyMetadata");
    assert_eq!(m.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(m.deletion_date().map(|d| d.secs()), Some(when));
    assert_eq!(m.pending_deletion_window_in_days(), Some(7));
    assert!(!m.enabled());
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("Encrypt under a key pending deletion")
        .into_service_error();
    assert!(err.is_kms_invalid_state_exception(), "{err:?}");

    let c = kms
        .cancel_key_deletion()
        .key_id(&id)
        .send()
        .await
        .expect("CancelKeyDeletion");
    assert_eq!(c.key_id(), Some(arn.as_str()));
    let m = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .expect("DescribeKey");
    let m = m.key_metadata().expect("KeyMetadata");
    assert_eq!(m.key_state(), Some(&KeyState::Disabled));
    assert_eq!(m.deletion_date(), None);
    assert_eq!(m.pending_deletion_window_in_days(), None);
}

#[tokio::test]
async fn refusals_are_typed_errors_or_error_codes() {
    let e = start();
    let (akid, secret) = e.access_key("user:root");
    let kms = sdk(&e.url(), &akid, &secret).await;
    let id = new_key(&kms, "refusals").await;

    // NotFoundException is modeled for DescribeKey: a typed variant.
    let missing = "11111111-2222-3333-4444-555555555555";
    let err = kms
        .describe_key()
        .key_id(missing)
        .send()
        .await
        .expect_err("DescribeKey of a key that does not exist");
    assert_eq!(status(&err), Some(400));
    match err.into_service_error() {
        DescribeKeyError::NotFoundException(x) => {
            assert!(x.message().is_some_and(|m| m.contains(missing)), "{x:?}")
        }
        other => panic!("not NotFoundException: {other:?}"),
    }

    // AccessDeniedException is not in the KMS model: the SDK keeps its code
    // and message.
    let other = sdk_as(&e, "uid:3900000").await;
    let err = other
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .expect_err("another user describes root's key");
    assert_eq!(status(&err), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert!(err.message().is_some_and(|m| !m.is_empty()), "{err:?}");
    assert!(err.meta().code().is_some() && !err.is_not_found_exception());

    // A wrong secret: InvalidSignatureException, AWS's wording.
    let forged = sdk(&e.url(), &akid, "wrong-secret-wrong-secret-wrong-secret!!").await;
    let err = forged
        .list_keys()
        .send()
        .await
        .expect_err("a request signed with the wrong secret");
    assert_eq!(status(&err), Some(400));
    assert_eq!(err.code(), Some("InvalidSignatureException"));
    assert!(
        err.message()
            .is_some_and(|m| m.contains("signature we calculated does not match")),
        "{:?}",
        err.message()
    );

    // An access key kmsd never issued.
    let stranger = sdk(&e.url(), "AKIAZZZZZZZZZZZZZZZZ", &secret).await;
    let err = stranger
        .list_keys()
        .send()
        .await
        .expect_err("an unknown access key");
    assert_eq!(err.code(), Some("UnrecognizedClientException"));

    // The same client still works after its refusals.
    let ok = kms.list_keys().send().await.expect("ListKeys");
    assert_eq!(ok.keys().len(), 1);
    assert_eq!(ok.keys()[0].key_id(), Some(id.as_str()));
}
