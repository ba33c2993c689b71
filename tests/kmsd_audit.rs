//! The audit trail of a real kmsd: every request (successful or failed)
//! appears exactly once, with the caller and the key; no plaintext,
//! ciphertext or key bytes ever reach it; and the log verifies intact until
//! someone edits it.

mod common;

use base64::Engine;
use common::KmsdProcess;
use kmsd_audit::{Filter, ProblemKind, audit_dir, audit_key_from_root_file, query, verify};
use kmsd_client::*;
use std::collections::BTreeMap;

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_request_once_no_secrets_and_verifiable() {
    let mut k = KmsdProcess::start();
    let c = k.client();
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut count = |name: &'static str, ok: bool| {
        *expected.entry(name).or_default() += 1;
        if !ok {
            *failures.entry(name).or_default() += 1;
        }
    };

    let key = c
        .call(CreateKeyRequest {
            description: Some("audited".into()),
            ..Default::default()
        })
        .unwrap()
        .key_metadata;
    count("CreateKey", true);
    let plaintexts: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("PLAINTEXT-MARKER-{i:04}-do-not-log").into_bytes())
        .collect();
    let mut secrets: Vec<Vec<u8>> = plaintexts.clone();
    let ec = ctx(&[("Purpose", "audit-test")]);
    for p in &plaintexts {
        let ct = c
            .call(EncryptRequest {
                key_id: key.key_id.clone(),
                plaintext: SecretBytes::from_slice(p),
                encryption_context: ec.clone(),
                grant_tokens: vec![],
            })
            .unwrap();
        count("Encrypt", true);
        let back = c
            .call(DecryptRequest {
                ciphertext_blob: ct.ciphertext_blob.clone(),
                encryption_context: ec.clone(),
                key_id: None,
                grant_tokens: vec![],
            })
            .unwrap();
        count("Decrypt", true);
        assert_eq!(back.plaintext.expose(), &p[..]);
        secrets.push(ct.ciphertext_blob.0.clone());
    }
    for _ in 0..10 {
        let dk = c
            .call(GenerateDataKeyRequest {
                key_id: key.arn.clone(),
                encryption_context: ec.clone(),
                key_spec: Some(DataKeySpec::Aes256),
                number_of_bytes: None,
                grant_tokens: vec![],
            })
            .unwrap();
        count("GenerateDataKey", true);
        secrets.push(dk.plaintext.expose().to_vec());
        secrets.push(dk.ciphertext_blob.0.clone());
    }
    let r = c
        .call(GenerateRandomRequest {
            number_of_bytes: 32,
        })
        .unwrap();
    count("GenerateRandom", true);
    secrets.push(r.plaintext.expose().to_vec());
    // Failures are audited too.
    assert!(
        c.call(DescribeKeyRequest {
            key_id: "alias/none".into()
        })
        .is_err()
    );
    count("DescribeKey", false);
    assert!(
        c.call(DecryptRequest {
            ciphertext_blob: Blob(vec![1; 60]),
            encryption_context: ec.clone(),
            key_id: None,
            grant_tokens: vec![]
        })
        .is_err()
    );
    count("Decrypt", false);
    assert!(
        c.call(EncryptRequest {
            key_id: key.key_id.clone(),
            plaintext: SecretBytes::from_slice(&[0; 5000]),
            encryption_context: ec.clone(),
            grant_tokens: vec![]
        })
        .is_err()
    );
    count("Encrypt", false);
    c.call(CreateAliasRequest {
        alias_name: "alias/audited".into(),
        target_key_id: key.key_id.clone(),
    })
    .unwrap();
    count("CreateAlias", true);
    drop(c);
    assert!(k.terminate().success());

    let dir = audit_dir(&k.state_dir);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut init_events = 0;
    for e in query(&dir, Filter::default()).unwrap() {
        let e = e.unwrap();
        let r = e.record;
        if r.checkpoint.is_some() || r.event_name.starts_with("Audit") {
            continue;
        }
        let p = r.principal.as_ref().expect("principal");
        if p.invoked_by.is_some() {
            // kmsd's own event: the service policy written at first start.
            assert_eq!(p.invoked_by.as_deref(), Some("kmsd.init"));
            assert_eq!(r.event_name, "PutServicePolicy");
            init_events += 1;
            continue;
        }
        *seen.entry(r.event_name.clone()).or_default() += 1;
        if r.error_code.is_some() {
            *seen_failures.entry(r.event_name.clone()).or_default() += 1;
            assert!(r.error_message.as_deref().is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(p.uid, 0);
        assert_eq!(p.pid, Some(std::process::id() as i32));
        assert!(
            ids.insert(r.request_id.clone().expect("request id")),
            "request id repeated"
        );
        if matches!(r.event_name.as_str(), "Encrypt" | "GenerateDataKey") && r.error_code.is_none()
        {
            assert_eq!(r.resources, vec![key.arn.clone()]);
            assert_eq!(
                r.request_parameters.as_ref().unwrap()["EncryptionContext"]["Purpose"],
                "audit-test"
            );
        }
    }
    let expected: BTreeMap<String, usize> = expected
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let failures: BTreeMap<String, usize> = failures
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(seen, expected, "each request exactly once");
    assert_eq!(seen_failures, failures);
    assert_eq!(
        init_events, 1,
        "the first start writes the service policy once"
    );

    // No plaintext, ciphertext or key bytes, raw or base64, anywhere in it.
    let mut log = Vec::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        log.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    for s in &secrets {
        let enc = b64.encode(s);
        assert!(
            !log.windows(s.len()).any(|w| w == &s[..]),
            "secret bytes in the audit log"
        );
        assert!(
            !log.windows(enc.len()).any(|w| w == enc.as_bytes()),
            "base64 secret in the audit log"
        );
    }
    assert!(!String::from_utf8_lossy(&log).contains("PLAINTEXT-MARKER"));

    // Intact, with checkpoints verified under the root-derived key...
    let key_file = audit_key_from_root_file(&k.state_dir.join("root.key")).unwrap();
    let report = verify(&dir, Some(&key_file)).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(report.macs_verified);
    // ...until one field of one record is edited.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replacen(
        "\"eventName\":\"GenerateRandom\"",
        "\"eventName\":\"DescribeKey\"",
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&file, edited).unwrap();
    let report = verify(&dir, Some(&key_file)).unwrap();
    let problem = report.problem.expect("tampering detected");
    assert_eq!(problem.kind, ProblemKind::Altered, "{problem:?}");
}
