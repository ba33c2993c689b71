//! Deletion windows and automatic rotation with a controllable clock: the
//! daemon runs in-process (same server code as the binary) on a temp
//! socket with a manual clock.

mod common;

use kmsd::clock::ManualClock;
use kmsd::{Daemon, DaemonConfig};
use kmsd_client::*;
use std::sync::Arc;

fn start(dir: &std::path::Path, clock: Arc<ManualClock>) -> Daemon {
    let cfg = DaemonConfig::new(dir.join("state"), dir.join("kmsd.sock"));
    Daemon::start(cfg, clock).expect("start daemon")
}

/// The records of events kmsd made itself (`invokedBy: kmsd.sweeper`).
fn sweeper_records(dir: &std::path::Path) -> Vec<kmsd_audit::Record> {
    let audit = kmsd_audit::audit_dir(&dir.join("state"));
    kmsd_audit::query(&audit, kmsd_audit::Filter::default())
        .expect("query the trail")
        .map(|e| e.expect("a record").record)
        .filter(|r| {
            r.principal
                .as_ref()
                .is_some_and(|p| p.invoked_by.as_deref() == Some("kmsd.sweeper"))
        })
        .collect()
}

/// A daemon on a manual clock with one new key, and a client.
fn with_one_key() -> (tempfile::TempDir, Arc<ManualClock>, Daemon, Client, String) {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
    let d = start(tmp.path(), clock.clone());
    let c = Client::connect(d.socket()).unwrap();
    let id = c
        .call(CreateKeyRequest::default())
        .unwrap()
        .key_metadata
        .key_id;
    (tmp, clock, d, c, id)
}

#[test]
fn deletion_window_then_destruction_then_not_found() {
    let (tmp, clock, d, c, id) = with_one_key();
    c.call(CreateAliasRequest {
        alias_name: "alias/gone".into(),
        target_key_id: id.clone(),
    })
    .unwrap();
    let ct = c
        .call(EncryptRequest {
            key_id: id.clone(),
            plaintext: SecretBytes::from_slice(b"x"),
            encryption_context: Default::default(),
            grant_tokens: vec![],
        })
        .unwrap();
    let s = c
        .call(ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_in_days: None,
        })
        .unwrap();
    assert_eq!(s.deletion_date, Timestamp(1_800_000_000).plus_days(30));

    clock.advance_days(29);
    d.service.tick();
    let m = c
        .call(DescribeKeyRequest { key_id: id.clone() })
        .unwrap()
        .key_metadata;
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(m.deletion_date, Some(s.deletion_date));

    assert!(sweeper_records(tmp.path()).is_empty(), "nothing due yet");
    clock.advance_days(1);
    d.service.tick();
    d.service.tick();
    // The destruction is in the trail once, as CloudTrail logs it.
    let recs = sweeper_records(tmp.path());
    assert_eq!(recs.len(), 1, "one DeleteKey record");
    assert_eq!(recs[0].event_name, "DeleteKey");
    assert!(recs[0].error_code.is_none());
    assert_eq!(recs[0].resources, vec![s.key_id.clone()]);
    for r in [id.clone(), "alias/gone".to_string()] {
        match c.call(DescribeKeyRequest { key_id: r }) {
            Err(ClientError::Kms(e)) => assert_eq!(e.kind, ErrorKind::NotFoundException),
            _ => panic!("key must be gone"),
        }
    }
    let dec = c.call(DecryptRequest {
        ciphertext_blob: ct.ciphertext_blob,
        encryption_context: Default::default(),
        key_id: None,
        grant_tokens: vec![],
    });
    assert_eq!(
        dec.err().and_then(|e| e.kind()),
        Some(ErrorKind::InvalidCiphertextException)
    );
    assert!(c.call(ListKeysRequest::default()).unwrap().keys.is_empty());
}

#[test]
fn automatic_rotation_over_the_socket_keeps_old_ciphertexts() {
    let (tmp, clock, d, c, id) = with_one_key();
    c.call(EnableKeyRotationRequest {
        key_id: id.clone(),
        rotation_period_in_days: None,
    })
    .unwrap();
    let enc = |msg: &[u8]| {
        c.call(EncryptRequest {
            key_id: id.clone(),
            plaintext: SecretBytes::from_slice(msg),
            encryption_context: Default::default(),
            grant_tokens: vec![],
        })
        .unwrap()
        .ciphertext_blob
    };
    let mut blobs = vec![enc(b"year0")];
    for year in 1..=3 {
        clock.advance_days(365);
        d.service.tick();
        blobs.push(enc(format!("year{year}").as_bytes()));
    }
    let m = c
        .call(DescribeKeyRequest { key_id: id.clone() })
        .unwrap()
        .key_metadata;
    assert_eq!(m.current_key_version, 4);
    for (i, b) in blobs.into_iter().enumerate() {
        let p = c
            .call(DecryptRequest {
                ciphertext_blob: b,
                encryption_context: Default::default(),
                key_id: None,
                grant_tokens: vec![],
            })
            .unwrap();
        assert_eq!(p.plaintext.expose(), format!("year{i}").as_bytes());
    }
    let r = c
        .call(ListKeyRotationsRequest {
            key_id: id.clone(),
            limit: None,
            marker: None,
        })
        .unwrap();
    assert_eq!(r.rotations.len(), 3);
    let recs = sweeper_records(tmp.path());
    assert_eq!(recs.len(), 3, "one RotateKey record per rotation");
    for rec in &recs {
        assert_eq!(rec.event_name, "RotateKey");
        assert!(rec.error_code.is_none());
        assert_eq!(rec.resources.len(), 1);
        assert!(rec.resources[0].ends_with(&id));
    }
    assert!(
        r.rotations
            .iter()
            .all(|x| x.rotation_type == RotationType::Automatic)
    );
}
