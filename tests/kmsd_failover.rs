//! Clients with several kmsd endpoints (`--socket` repeated,
//! `KMSD_ENDPOINTS`): a dead endpoint is skipped, a request that changes
//! nothing is sent once more on the next endpoint when the connection
//! breaks under it, and a mutation never is (it may have committed).

mod common;

use common::{KmsdProcess, bin};
use kmsd_client::codec::{self, ClientFrame, PROTOCOL_VERSION, ServerFrame, ServerHello};
use kmsd_client::{
    Client, ClientConfig, ClientError, CreateKeyRequest, GenerateRandomRequest, ListKeysRequest,
};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn client(sockets: &[&Path]) -> Client {
    Client::new(ClientConfig::with_sockets(
        sockets.iter().map(|p| p.to_path_buf()).collect(),
    ))
}

fn random(c: &Client) -> Result<usize, ClientError> {
    c.call(GenerateRandomRequest {
        number_of_bytes: 16,
    })
    .map(|r| r.plaintext.len())
}

fn key_count(kmsd: &KmsdProcess) -> usize {
    kmsd.client()
        .call(ListKeysRequest {
            limit: Some(1000),
            ..Default::default()
        })
        .expect("list keys")
        .keys
        .len()
}

/// A fake kmsd on `socket` that answers the hello, then reads one request
/// and drops the connection without an answer (a kmsd killed mid-call).
/// Counts the requests it swallowed.
fn black_hole(socket: &Path) -> Arc<AtomicUsize> {
    let listener = UnixListener::bind(socket).expect("bind the fake kmsd");
    let swallowed = Arc::new(AtomicUsize::new(0));
    let count = swallowed.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let Ok(Some(ClientFrame::Hello(_))) = codec::read_frame::<_, ClientFrame>(&mut conn)
            else {
                continue;
            };
            let mut buf = Vec::new();
            let hello = ServerFrame::Hello(ServerHello {
                protocol_version: PROTOCOL_VERSION,
                server: "black hole".into(),
                max_frame: codec::MAX_FRAME as u32,
            });
            codec::encode(&hello, &mut buf).expect("encode hello");
            if std::io::Write::write_all(&mut conn, &buf).is_err() {
                continue;
            }
            if let Ok(Some(ClientFrame::Request { .. })) =
                codec::read_frame::<_, ClientFrame>(&mut conn)
            {
                count.fetch_add(1, Ordering::SeqCst);
            }
            drop(conn);
        }
    });
    swallowed
}

#[test]
fn a_dead_endpoint_is_skipped_and_a_killed_one_fails_over() {
    let mut a = KmsdProcess::start();
    let b = KmsdProcess::start();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nobody-here.sock");

    // The first endpoint does not exist: the second serves.
    let c = client(&[&missing, &a.socket, &b.socket]);
    assert_eq!(random(&c).expect("served by a live endpoint"), 16);
    assert_eq!(c.endpoint(), a.socket);

    // The endpoint in use dies: the next call goes to the one after it.
    a.kill9();
    assert_eq!(random(&c).expect("failed over"), 16);
    assert_eq!(c.endpoint(), b.socket);
    let before = key_count(&b);
    c.call(CreateKeyRequest::default())
        .expect("a mutation on the endpoint failed over to");
    assert_eq!(key_count(&b), before + 1);

    // Every endpoint down: one error naming each.
    let c2 = client(&[&missing, &a.socket]);
    let e = random(&c2).expect_err("nobody answers").to_string();
    assert!(
        e.contains("nobody-here.sock") && e.contains(&a.socket.display().to_string()),
        "{e}"
    );
}

#[test]
fn a_request_lost_in_flight_is_repeated_only_when_it_changes_nothing() {
    let b = KmsdProcess::start();
    let tmp = tempfile::tempdir().unwrap();
    let hole: PathBuf = tmp.path().join("black-hole.sock");
    let swallowed = black_hole(&hole);

    // Read-only: lost on the first endpoint, answered by the second.
    let c = client(&[&hole, &b.socket]);
    assert_eq!(random(&c).expect("repeated on the next endpoint"), 16);
    assert_eq!(swallowed.load(Ordering::SeqCst), 1);
    assert_eq!(c.endpoint(), b.socket);

    // A mutation lost in flight fails: it is not sent again, so nothing
    // is created twice (or behind the caller's back).
    let c = client(&[&hole, &b.socket]);
    let before = key_count(&b);
    let e = c
        .call(CreateKeyRequest::default())
        .expect_err("a lost mutation is not repeated");
    assert!(matches!(e, ClientError::Io(_)), "{e}");
    assert_eq!(swallowed.load(Ordering::SeqCst), 2);
    assert_eq!(key_count(&b), before, "CreateKey must not be sent again");

    // With one endpoint nothing is repeated either (no second place).
    let c = client(&[&hole]);
    assert!(random(&c).is_err());
    assert_eq!(swallowed.load(Ordering::SeqCst), 3);
}

#[test]
fn kmsctl_takes_several_sockets_and_kmsd_endpoints() {
    let b = KmsdProcess::start();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("gone.sock");
    let run = |cmd: &mut Command| {
        let out = cmd
            .args(["generate-random", "--number-of-bytes", "8"])
            .env_remove("KMSD_SOCKET")
            .output()
            .expect("run kmsctl");
        assert!(
            out.status.success(),
            "kmsctl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(
            v["Plaintext"].as_str().is_some_and(|s| !s.is_empty()),
            "{v}"
        );
    };
    run(Command::new(bin("kmsctl"))
        .arg("--socket")
        .arg(&missing)
        .arg("--socket")
        .arg(&b.socket));
    let list = format!("{},{}", missing.display(), b.socket.display());
    run(Command::new(bin("kmsctl")).env("KMSD_ENDPOINTS", &list));

    // All gone: the connection exit status (255) and every socket named.
    let out = Command::new(bin("kmsctl"))
        .env(
            "KMSD_ENDPOINTS",
            format!("{},{}", missing.display(), missing.display()),
        )
        .args(["generate-random", "--number-of-bytes", "8"])
        .output()
        .expect("run kmsctl");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gone.sock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
