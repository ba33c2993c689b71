//! kmsd over its real socket: every operation, the AWS error names, many
//! clients at once, and bad input that must not disturb anyone else.

mod common;

use common::KmsdProcess;
use kmsd_client::codec::{self, ClientFrame, ClientHello, PROTOCOL_VERSION, ServerFrame};
use kmsd_client::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn kind<T>(r: Result<T, ClientError>) -> ErrorKind {
    match r {
        Err(ClientError::Kms(e)) => {
            assert!(!e.message.is_empty());
            e.kind
        }
        Err(other) => panic!("expected a KMS exception, got {other}"),
        Ok(_) => panic!("expected a KMS exception, got success"),
    }
}

fn encrypt(
    c: &Client,
    key: &str,
    pt: &[u8],
    ec: &EncryptionContext,
) -> Result<EncryptResponse, ClientError> {
    c.call(EncryptRequest {
        key_id: key.into(),
        plaintext: SecretBytes::from_slice(pt),
        encryption_context: ec.clone(),
        grant_tokens: vec![],
    })
}

fn decrypt(
    c: &Client,
    blob: &Blob,
    ec: &EncryptionContext,
    key: Option<&str>,
) -> Result<DecryptResponse, ClientError> {
    c.call(DecryptRequest {
        ciphertext_blob: blob.clone(),
        encryption_context: ec.clone(),
        key_id: key.map(Into::into),
        grant_tokens: vec![],
    })
}

#[test]
fn every_operation_over_the_socket() {
    let k = KmsdProcess::start();
    let c = k.client();
    let meta = c
        .call(CreateKeyRequest {
            description: Some("lab key".into()),
            tags: vec![Tag {
                tag_key: "team".into(),
                tag_value: "storage".into(),
            }],
            ..Default::default()
        })
        .unwrap()
        .key_metadata;
    assert_eq!(meta.key_state, KeyState::Enabled);
    assert!(meta.arn.starts_with("arn:aws:kms:local:000000000000:key/"));
    let id = meta.key_id.clone();

    c.call(CreateAliasRequest {
        alias_name: "alias/lab".into(),
        target_key_id: id.clone(),
    })
    .unwrap();
    assert_eq!(
        kind(c.call(CreateAliasRequest {
            alias_name: "alias/lab".into(),
            target_key_id: id.clone()
        })),
        ErrorKind::AlreadyExistsException
    );
    assert_eq!(
        kind(c.call(CreateAliasRequest {
            alias_name: "alias/aws/lab".into(),
            target_key_id: id.clone()
        })),
        ErrorKind::ValidationException
    );
    for r in [
        id.clone(),
        meta.arn.clone(),
        "alias/lab".into(),
        "arn:aws:kms:local:000000000000:alias/lab".into(),
    ] {
        assert_eq!(
            c.call(DescribeKeyRequest { key_id: r })
                .unwrap()
                .key_metadata
                .key_id,
            id
        );
    }
    assert_eq!(
        kind(c.call(DescribeKeyRequest {
            key_id: "alias/missing".into()
        })),
        ErrorKind::NotFoundException
    );

    let keys = c
        .call(ListKeysRequest {
            limit: Some(10),
            marker: None,
        })
        .unwrap();
    assert_eq!(keys.keys.len(), 1);
    assert_eq!(keys.keys[0].key_arn, meta.arn);
    let aliases = c.call(ListAliasesRequest::default()).unwrap();
    assert_eq!(
        aliases.aliases[0].target_key_id.as_deref(),
        Some(id.as_str())
    );

    c.call(TagResourceRequest {
        key_id: id.clone(),
        tags: vec![Tag {
            tag_key: "env".into(),
            tag_value: "test".into(),
        }],
    })
    .unwrap();
    c.call(UntagResourceRequest {
        key_id: id.clone(),
        tag_keys: vec!["team".into()],
    })
    .unwrap();
    let tags = c
        .call(ListResourceTagsRequest {
            key_id: id.clone(),
            limit: None,
            marker: None,
        })
        .unwrap();
    assert_eq!(
        tags.tags,
        vec![Tag {
            tag_key: "env".into(),
            tag_value: "test".into()
        }]
    );

    // Crypto with an encryption context.
    let ec = ctx(&[("Purpose", "Lab"), ("App", "kms-demo")]);
    let ct = encrypt(&c, "alias/lab", b"attack at dawn", &ec).unwrap();
    assert_eq!(ct.key_id, meta.arn);
    let pt = decrypt(&c, &ct.ciphertext_blob, &ec, None).unwrap();
    assert_eq!(pt.plaintext.expose(), b"attack at dawn");
    assert_eq!(
        kind(decrypt(
            &c,
            &ct.ciphertext_blob,
            &ctx(&[("Purpose", "Prod")]),
            None
        )),
        ErrorKind::InvalidCiphertextException
    );
    let mut tampered = ct.ciphertext_blob.clone();
    let last = tampered.0.len() - 1;
    tampered.0[last] ^= 1;
    assert_eq!(
        kind(decrypt(&c, &tampered, &ec, None)),
        ErrorKind::InvalidCiphertextException
    );

    let other = k.create_key("other").key_id;
    assert_eq!(
        kind(decrypt(&c, &ct.ciphertext_blob, &ec, Some(&other))),
        ErrorKind::IncorrectKeyException
    );
    let re = c
        .call(ReEncryptRequest {
            ciphertext_blob: ct.ciphertext_blob.clone(),
            source_encryption_context: ec.clone(),
            source_key_id: Some("alias/lab".into()),
            destination_key_id: other.clone(),
            destination_encryption_context: ctx(&[("moved", "yes")]),
            grant_tokens: vec![],
        })
        .unwrap();
    assert_eq!(re.source_key_id, meta.arn);
    assert_eq!(
        decrypt(
            &c,
            &re.ciphertext_blob,
            &ctx(&[("moved", "yes")]),
            Some(&other)
        )
        .unwrap()
        .plaintext
        .expose(),
        b"attack at dawn"
    );

    let dk = c
        .call(GenerateDataKeyRequest {
            key_id: id.clone(),
            encryption_context: ec.clone(),
            key_spec: Some(DataKeySpec::Aes128),
            number_of_bytes: None,
            grant_tokens: vec![],
        })
        .unwrap();
    assert_eq!(dk.plaintext.len(), 16);
    assert_eq!(
        decrypt(&c, &dk.ciphertext_blob, &ec, None)
            .unwrap()
            .plaintext
            .expose(),
        dk.plaintext.expose()
    );
    let both = c.call(GenerateDataKeyRequest {
        key_id: id.clone(),
        encryption_context: ec.clone(),
        key_spec: Some(DataKeySpec::Aes256),
        number_of_bytes: Some(32),
        grant_tokens: vec![],
    });
    assert_eq!(kind(both), ErrorKind::ValidationException);
    let wp = c
        .call(GenerateDataKeyWithoutPlaintextRequest {
            key_id: id.clone(),
            encryption_context: ec.clone(),
            key_spec: None,
            number_of_bytes: Some(64),
            grant_tokens: vec![],
        })
        .unwrap();
    assert_eq!(
        decrypt(&c, &wp.ciphertext_blob, &ec, None)
            .unwrap()
            .plaintext
            .len(),
        64
    );
    assert_eq!(
        c.call(GenerateRandomRequest {
            number_of_bytes: 100
        })
        .unwrap()
        .plaintext
        .len(),
        100
    );
    assert_eq!(
        kind(c.call(GenerateRandomRequest {
            number_of_bytes: 1025
        })),
        ErrorKind::ValidationException
    );
    assert_eq!(
        kind(encrypt(&c, &id, &[0; 4097], &ec)),
        ErrorKind::ValidationException
    );

    // Rotation keeps old blobs decryptable.
    c.call(EnableKeyRotationRequest {
        key_id: id.clone(),
        rotation_period_in_days: Some(90),
    })
    .unwrap();
    let st = c
        .call(GetKeyRotationStatusRequest { key_id: id.clone() })
        .unwrap();
    assert!(st.key_rotation_enabled);
    c.call(RotateKeyOnDemandRequest { key_id: id.clone() })
        .unwrap();
    let rots = c
        .call(ListKeyRotationsRequest {
            key_id: id.clone(),
            limit: None,
            marker: None,
        })
        .unwrap();
    assert_eq!(rots.rotations.len(), 1);
    assert_eq!(
        decrypt(&c, &ct.ciphertext_blob, &ec, None)
            .unwrap()
            .plaintext
            .expose(),
        b"attack at dawn"
    );
    c.call(DisableKeyRotationRequest { key_id: id.clone() })
        .unwrap();

    // States.
    c.call(DisableKeyRequest { key_id: id.clone() }).unwrap();
    assert_eq!(
        kind(encrypt(&c, &id, b"x", &ec)),
        ErrorKind::DisabledException
    );
    assert_eq!(
        kind(decrypt(&c, &ct.ciphertext_blob, &ec, None)),
        ErrorKind::DisabledException
    );
    c.call(EnableKeyRequest { key_id: id.clone() }).unwrap();
    let sched = c
        .call(ScheduleKeyDeletionRequest {
            key_id: id.clone(),
            pending_window_in_days: Some(7),
        })
        .unwrap();
    assert_eq!(sched.key_state, KeyState::PendingDeletion);
    assert_eq!(sched.pending_window_in_days, 7);
    assert_eq!(
        kind(encrypt(&c, &id, b"x", &ec)),
        ErrorKind::KMSInvalidStateException
    );
    assert_eq!(
        c.call(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata
            .key_state,
        KeyState::PendingDeletion
    );
    c.call(CancelKeyDeletionRequest { key_id: id.clone() })
        .unwrap();
    assert_eq!(
        c.call(DescribeKeyRequest { key_id: id.clone() })
            .unwrap()
            .key_metadata
            .key_state,
        KeyState::Disabled
    );
    c.call(DeleteAliasRequest {
        alias_name: "alias/lab".into(),
    })
    .unwrap();
    assert_eq!(
        kind(c.call(DeleteAliasRequest {
            alias_name: "alias/lab".into()
        })),
        ErrorKind::NotFoundException
    );
}

#[test]
fn state_survives_sigterm_and_restart_and_socket_is_removed() {
    let mut k = KmsdProcess::start();
    let id = k.create_key("persist").key_id;
    let c = k.client();
    c.call(CreateAliasRequest {
        alias_name: "alias/persist".into(),
        target_key_id: id.clone(),
    })
    .unwrap();
    let ct = encrypt(&c, &id, b"kept", &ctx(&[])).unwrap();
    drop(c);
    let status = k.terminate();
    assert!(status.success(), "kmsd exit status {status}");
    assert!(!k.socket.exists(), "socket left behind after SIGTERM");
    k.spawn();
    let c = k.client();
    assert_eq!(
        decrypt(&c, &ct.ciphertext_blob, &ctx(&[]), Some("alias/persist"))
            .unwrap()
            .plaintext
            .expose(),
        b"kept"
    );
}

#[test]
fn state_dir_holds_no_plaintext_key_material() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let keyfile = tmp.path().join("elsewhere.key");
    let sock = tmp.path().join("s.sock");
    let mut k = KmsdProcess::start_at(
        &state,
        &sock,
        &["--root-key-file", keyfile.to_str().unwrap()],
    );
    let id = k.create_key("secret").key_id;
    let c = k.client();
    // Data keys are derived from the key material; the state must hold
    // neither them nor the root key.
    let dk = c
        .call(GenerateDataKeyRequest {
            key_id: id,
            encryption_context: ctx(&[]),
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: vec![],
        })
        .unwrap();
    drop(c);
    k.terminate();
    let root = std::fs::read(&keyfile).unwrap();
    assert_eq!(root.len(), 32);
    assert!(!state.join("root.key").exists());
    let mut dirs = vec![state.clone()];
    let mut files = 0;
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            files += 1;
            assert!(
                !bytes.windows(32).any(|w| w == &root[..]),
                "root key in {}",
                path.display()
            );
            assert!(
                !bytes.windows(32).any(|w| w == dk.plaintext.expose()),
                "data key in {}",
                path.display()
            );
        }
    }
    assert!(
        files >= 2,
        "expected the store and the audit log, found {files} files"
    );
}

#[test]
fn many_clients_at_once_and_many_requests_per_connection() {
    let k = KmsdProcess::start();
    let id = k.create_key("busy").key_id;
    let shared = Arc::new(k.client());
    let mut threads = Vec::new();
    for t in 0..16 {
        let own = t % 2 == 0;
        let c = if own {
            Arc::new(k.client())
        } else {
            shared.clone()
        };
        let id = id.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..150 {
                let ec = ctx(&[("thread", &t.to_string()), ("i", &i.to_string())]);
                let msg = format!("t{t} i{i}");
                let ct = encrypt(&c, &id, msg.as_bytes(), &ec).unwrap();
                let pt = decrypt(&c, &ct.ciphertext_blob, &ec, None).unwrap();
                assert_eq!(pt.plaintext.expose(), msg.as_bytes());
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

/// `call_many` writes a batch in one go; kmsd answers each request on its
/// own (one bad key id fails only its own), in order, and every key is
/// bound to its own context. Another thread's calls on the same
/// connection meanwhile get their own answers.
#[test]
fn a_batch_of_data_keys_answers_each_request_on_its_own() {
    let k = KmsdProcess::start();
    let id = k.create_key("batch").key_id;
    let c = Arc::new(k.client());
    let other = {
        let (c, id) = (c.clone(), id.clone());
        std::thread::spawn(move || {
            for i in 0..200 {
                let ec = ctx(&[("side", &i.to_string())]);
                let ct = encrypt(&c, &id, b"side", &ec).unwrap();
                assert_eq!(
                    decrypt(&c, &ct.ciphertext_blob, &ec, None)
                        .unwrap()
                        .plaintext
                        .expose(),
                    b"side"
                );
            }
        })
    };
    for round in 0..20 {
        let contexts: Vec<_> = (0..17)
            .map(|i| ctx(&[("file", &format!("{round}-{i}"))]))
            .collect();
        let ops = contexts
            .iter()
            .enumerate()
            .map(|(i, ec)| GenerateDataKeyRequest {
                key_id: if i == 5 {
                    "alias/none-such".into()
                } else {
                    id.clone()
                },
                encryption_context: ec.clone(),
                key_spec: Some(DataKeySpec::Aes256),
                number_of_bytes: None,
                grant_tokens: Vec::new(),
            })
            .collect();
        let answers = c.call_many(ops).expect("the batch");
        assert_eq!(answers.len(), 17);
        let mut seen = std::collections::HashSet::new();
        for (i, (a, ec)) in answers.into_iter().zip(&contexts).enumerate() {
            if i == 5 {
                assert_eq!(kind(a), ErrorKind::NotFoundException, "request {i}");
                continue;
            }
            let a = a.unwrap_or_else(|e| panic!("request {i}: {e}"));
            assert!(
                seen.insert(a.plaintext.expose().to_vec()),
                "keys are distinct"
            );
            // Bound to its own context: decrypts under it, not under the next one's.
            let back = decrypt(&c, &a.ciphertext_blob, ec, None).unwrap();
            assert_eq!(back.plaintext.expose(), a.plaintext.expose());
            let wrong = &contexts[(i + 1) % contexts.len()];
            assert_eq!(
                kind(decrypt(&c, &a.ciphertext_blob, wrong, None)),
                ErrorKind::InvalidCiphertextException
            );
        }
    }
    other.join().unwrap();
}

fn raw_connect(k: &KmsdProcess) -> UnixStream {
    let s = UnixStream::connect(&k.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn hello(s: &mut UnixStream, version: u32) -> ServerFrame {
    let mut buf = Vec::new();
    codec::encode(
        &ClientFrame::Hello(ClientHello {
            protocol_version: version,
            client: "test".into(),
        }),
        &mut buf,
    )
    .unwrap();
    s.write_all(&buf).unwrap();
    codec::read_frame::<_, ServerFrame>(s)
        .ok()
        .flatten()
        .expect("server frame")
}

/// Reads until the server closes; returns the goodbye message if any.
fn goodbye(s: &mut UnixStream) -> Option<KmsError> {
    let mut msg = None;
    loop {
        match codec::read_frame::<_, ServerFrame>(s) {
            Ok(Some(ServerFrame::Goodbye(e))) => msg = Some(e),
            Ok(Some(_)) => {}
            Ok(None) => return msg,
            Err(_) => return msg,
        }
    }
}

fn assert_serves(k: &KmsdProcess) {
    let r = k
        .client()
        .call(GenerateRandomRequest { number_of_bytes: 8 })
        .expect("kmsd still serving");
    assert_eq!(r.plaintext.len(), 8);
}

#[test]
fn bad_frames_close_only_their_connection() {
    let k = KmsdProcess::start();

    // Garbage after a good hello.
    let mut s = raw_connect(&k);
    assert!(matches!(
        hello(&mut s, PROTOCOL_VERSION),
        ServerFrame::Hello(_)
    ));
    s.write_all(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    let e = goodbye(&mut s).expect("error frame before close");
    assert_eq!(e.kind, ErrorKind::ValidationException);
    assert_serves(&k);

    // A 4 GiB length prefix: refused before any allocation.
    let mut s = raw_connect(&k);
    assert!(matches!(
        hello(&mut s, PROTOCOL_VERSION),
        ServerFrame::Hello(_)
    ));
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let e = goodbye(&mut s).expect("error frame");
    assert!(e.message.contains("exceeds"), "{}", e.message);
    assert_serves(&k);

    // Wrong protocol version.
    let mut s = raw_connect(&k);
    match hello(&mut s, PROTOCOL_VERSION + 7) {
        ServerFrame::Goodbye(e) => assert!(e.message.contains("not supported"), "{}", e.message),
        _ => panic!("expected goodbye"),
    }

    // A request before the hello.
    let mut s = raw_connect(&k);
    let mut buf = Vec::new();
    codec::encode(
        &ClientFrame::Request {
            id: 1,
            request: Request::GenerateRandom(GenerateRandomRequest { number_of_bytes: 1 }),
        },
        &mut buf,
    )
    .unwrap();
    s.write_all(&buf).unwrap();
    assert_eq!(
        goodbye(&mut s).expect("goodbye").kind,
        ErrorKind::ValidationException
    );

    // Pure garbage instead of a hello.
    let mut s = raw_connect(&k);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(goodbye(&mut s).is_some());
    assert_serves(&k);

    // A client that closes in the middle of a frame.
    let mut s = raw_connect(&k);
    assert!(matches!(
        hello(&mut s, PROTOCOL_VERSION),
        ServerFrame::Hello(_)
    ));
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    drop(s);
    assert_serves(&k);
}

#[test]
fn stalled_and_idle_connections_do_not_block_others() {
    let k = KmsdProcess::start();
    // Half a frame, then silence.
    let mut stalled = raw_connect(&k);
    assert!(matches!(
        hello(&mut stalled, PROTOCOL_VERSION),
        ServerFrame::Hello(_)
    ));
    stalled.write_all(&[0, 0, 0, 200, 1, 2, 3, 4]).unwrap();
    // Hundreds of idle connections, some without even a hello.
    let idle: Vec<UnixStream> = (0..300)
        .map(|i| {
            let mut s = raw_connect(&k);
            if i % 2 == 0 {
                assert!(matches!(
                    hello(&mut s, PROTOCOL_VERSION),
                    ServerFrame::Hello(_)
                ));
            }
            s
        })
        .collect();
    let id = k.create_key("still here").key_id;
    let c = k.client();
    for i in 0..50 {
        let ct = encrypt(&c, &id, format!("{i}").as_bytes(), &ctx(&[])).unwrap();
        assert_eq!(
            decrypt(&c, &ct.ciphertext_blob, &ctx(&[]), None)
                .unwrap()
                .plaintext
                .expose(),
            format!("{i}").as_bytes()
        );
    }
    drop(idle);
    // The stalled connection is still open (the frame timeout is 30 s) and
    // nothing it did reached anyone else.
    stalled
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 1];
    let r = stalled.read(&mut b);
    assert!(r.is_err(), "stalled connection got data: {r:?}");
}

#[test]
fn missing_kmsd_is_a_clear_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Client::connect(tmp.path().join("nobody.sock"))
        .err()
        .expect("must fail");
    assert!(matches!(err, ClientError::Io(_)));
    assert!(err.to_string().contains("cannot connect to kmsd"), "{err}");
}
