//! The audit trail of a real kmsd: every request (successful or failed)
//! appears exactly once, with the caller and the key; no plaintext,
//! ciphertext or key bytes ever reach it; and the log verifies intact until
//! someone edits it.

mod common;
#[path = "common/mount.rs"]
mod mount;

use base64::Engine;
use common::{KmsdProcess, bin};
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

/// Writes `path` until the filesystem is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0xa5u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

/// A full disk under the state dir (a 16 MiB tmpfs): kmsd refuses while
/// the trail cannot be written, logs it, resumes by itself once space is
/// freed (no restart), and afterwards every committed mutation has its
/// record (`kmsd --check-audit`) and the trail verifies intact.
#[test]
fn a_full_disk_refuses_then_resumes_without_a_restart() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "mounting a tmpfs needs root"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let _disk = mount::TmpfsGuard::mount(&state, 16 << 10);
    let log = tmp.path().join("kmsd.log");
    let mut k = KmsdProcess::start_logged(&state, &tmp.path().join("kmsd.sock"), &[], Some(&log));
    let c = k.client();
    let key = c
        .call(CreateKeyRequest::default())
        .expect("create a key")
        .key_metadata;
    let alias = |i: usize| format!("alias/full-{i}");
    let create_alias = |i: usize| {
        c.call(CreateAliasRequest {
            alias_name: alias(i),
            target_key_id: key.key_id.clone(),
        })
    };

    let filler = state.join("filler");
    let filled = std::time::Instant::now();
    fill(&filler);
    // Mutations and reads until the trail itself cannot be written (a
    // store commit may fail first: that request fails, the trail is fine).
    let mut ok_aliases = Vec::new();
    let mut store_failures = 0;
    let mut trail_down = false;
    for i in 0..20_000 {
        match create_alias(i) {
            Ok(_) => ok_aliases.push(i),
            Err(ClientError::Kms(e)) if e.message.contains("audit") => {
                trail_down = true;
                break;
            }
            Err(ClientError::Kms(e)) => {
                assert_eq!(e.kind, ErrorKind::KMSInternalException, "{e}");
                store_failures += 1;
            }
            Err(e) => panic!("CreateAlias {i}: {e}"),
        }
        match c.call(DescribeKeyRequest {
            key_id: key.key_id.clone(),
        }) {
            Ok(_) => {}
            Err(ClientError::Kms(e)) if e.message.contains("audit") => {
                trail_down = true;
                break;
            }
            Err(e) => panic!("DescribeKey: {e}"),
        }
    }
    assert!(trail_down, "the trail never filled up");
    eprintln!(
        "full disk: {} aliases made and {store_failures} store commits failed in {} ms before the trail filled",
        ok_aliases.len(),
        filled.elapsed().as_millis()
    );
    // While the trail cannot be written, everything is refused.
    for _ in 0..3 {
        let e = c
            .call(ListKeysRequest::default())
            .expect_err("refused while the disk is full");
        assert!(
            e.to_string().contains("audit trail cannot be written"),
            "{e}"
        );
    }

    std::fs::remove_file(&filler).expect("free the disk");
    let freed = std::time::Instant::now();
    loop {
        match c.call(ListKeysRequest::default()) {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    freed.elapsed() < std::time::Duration::from_secs(5),
                    "kmsd did not resume within 5 s of freeing the disk: {e}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    eprintln!(
        "full disk: served again {} ms after the disk was freed",
        freed.elapsed().as_millis()
    );
    // Exactly the acknowledged aliases exist; a failed one can be retried.
    let mut listed = Vec::new();
    let mut marker = None;
    loop {
        let page = c
            .call(ListAliasesRequest {
                marker: marker.take(),
                ..Default::default()
            })
            .expect("list aliases");
        listed.extend(page.aliases.into_iter().map(|a| a.alias_name));
        match page.next_marker {
            Some(m) if page.truncated => marker = Some(m),
            _ => break,
        }
    }
    listed.sort();
    let mut want: Vec<String> = ok_aliases.iter().map(|&i| alias(i)).collect();
    want.sort();
    assert_eq!(listed, want);
    create_alias(100_000).expect("a mutation after resuming");
    drop(c);
    assert!(k.terminate().success());

    let text = std::fs::read_to_string(&log).expect("kmsd log");
    assert!(
        text.contains("refusing requests until the trail can be written"),
        "{text}"
    );
    assert!(text.contains("audit trail writable again"), "{text}");

    let check = std::process::Command::new(bin("kmsd"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--check-audit")
        .output()
        .expect("run kmsd --check-audit");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && out.starts_with("OK: all"),
        "{out}"
    );
    let r = verify(
        &audit_dir(&state),
        audit_key_from_root_file(&state.join("root.key"))
            .ok()
            .as_ref(),
    )
    .expect("verify");
    assert!(r.is_intact(), "{r}");
}
