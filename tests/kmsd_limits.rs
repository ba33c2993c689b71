//! Bounded cost per caller (issue 9, item 5), against the real kmsd binary:
//! a per-uid connection cap, a reserve for root, idle connections closed,
//! per-uid rate limits with one aggregated audit record, and denied
//! requests with huge encryption contexts costing bounded audit bytes.
//!
//! Other users' connections are made by switching this thread's effective
//! uid and gid (raw `setresuid`/`setresgid`, which act on the calling
//! thread only) around `connect`: kmsd sees them in `SO_PEERCRED`. So the
//! tests must run as root; as anyone else they fail, never pass unrun.

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/raw.rs"]
mod raw;

use common::KmsdProcess;
use identity::{is_root, unused_id};
use kmsd_client::codec::{self, ServerFrame};
use kmsd_client::*;
use raw::{as_ids, audit_records, raw_hello, raw_hello_as};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn require_root() {
    assert!(
        is_root(),
        "these tests connect as other uids and must run as root"
    );
}

/// A kmsd in a directory other uids can reach, on a socket they may use.
struct Fixture {
    kmsd: KmsdProcess,
    _tmp: tempfile::TempDir,
    state: PathBuf,
}

fn start(args: &[&str]) -> Fixture {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = tmp.path().join("state");
    let socket = tmp.path().join("kmsd.sock");
    let mut all = vec!["--socket-mode", "666"];
    all.extend_from_slice(args);
    let kmsd = KmsdProcess::start_at(&state, &socket, &all);
    Fixture {
        kmsd,
        _tmp: tmp,
        state,
    }
}

fn audit_bytes(state: &Path) -> u64 {
    std::fs::read_dir(kmsd_audit::audit_dir(state))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn one_uid_at_its_cap_while_another_uid_is_served() {
    let f = start(&["--max-connections-per-uid", "4"]);
    let sock = &f.kmsd.socket;
    let (a, b) = (unused_id(61_000), unused_id(62_000));
    let held: Vec<UnixStream> = (0..4)
        .map(|i| raw_hello_as(sock, a).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    let refused = raw_hello_as(sock, a).expect_err("a 5th connection of uid a");
    assert!(
        refused.contains("LimitExceededException") && refused.contains(&format!("uid {a}")),
        "{refused}"
    );
    // Another uid and root are served meanwhile.
    let other = raw_hello_as(sock, b).expect("uid b is not limited by uid a");
    let root = f.kmsd.client();
    root.call(ListKeysRequest::default())
        .expect("root is served");
    drop(other);
    // A closed connection frees its place.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while raw_hello_as(sock, a).is_err() {
        assert!(Instant::now() < deadline, "uid a never got its places back");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_flood_from_one_uid_leaves_the_reserve_to_root() {
    let f = start(&[
        "--max-connections",
        "8",
        "--admin-reserved-connections",
        "2",
        "--max-connections-per-uid",
        "100",
    ]);
    let sock = &f.kmsd.socket;
    let a = unused_id(63_000);
    let mut held = Vec::new();
    let refusal = loop {
        match raw_hello_as(sock, a) {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() <= 8, "no limit on uid a");
    };
    assert_eq!(held.len(), 6, "8 connections, 2 reserved");
    assert!(refusal.contains("LimitExceededException"), "{refusal}");
    let r1 = raw_hello(sock).expect("root gets a reserved connection");
    let r2 = raw_hello(sock).expect("and a second one");
    assert!(
        raw_hello(sock).is_err(),
        "the global maximum holds for root too"
    );
    drop((r1, r2, held));
}

#[test]
fn idle_connections_are_closed_with_a_goodbye() {
    let f = start(&["--idle-timeout-secs", "1"]);
    let mut s = raw_hello(&f.kmsd.socket).expect("hello");
    let t = Instant::now();
    match codec::read_frame::<_, ServerFrame>(&mut s) {
        Ok(Some(ServerFrame::Goodbye(e))) => {
            assert!(e.message.contains("no request for 1 s"), "{e}")
        }
        other => panic!("expected a goodbye, got {:?}", other.map(|_| ())),
    }
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // A client whose connection kmsd closed while it was idle sends its
    // next request on a new connection, without an error.
    let c = f.kmsd.client();
    c.call(ListKeysRequest::default()).expect("first call");
    std::thread::sleep(Duration::from_millis(1800));
    c.call(ListKeysRequest::default())
        .expect("the call after an idle close is sent again");
    // A busy connection stays open across the timeout.
    let c = f.kmsd.client();
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        c.call(ListKeysRequest::default())
            .expect("busy connection served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn requests_over_a_uids_rate_are_throttled_and_audited_once_per_interval() {
    let f = start(&[
        "--requests-per-sec",
        "50",
        "--request-burst",
        "50",
        "--throttle-report-secs",
        "1",
    ]);
    let sock = f.kmsd.socket.clone();
    let a = unused_id(64_000);
    let before = audit_records(&f.state).len();
    let c = as_ids(a, a, || {
        let c = Client::connect(&sock).unwrap();
        let _ = c.call(ListKeysRequest::default());
        c
    });
    let (mut throttled, mut served) = (0u64, 1u64);
    for _ in 0..400 {
        match c.call(ListKeysRequest::default()) {
            Err(ClientError::Kms(e)) if e.kind == ErrorKind::ThrottlingException => {
                assert!(e.message.contains(&format!("uid {a}")), "{e}");
                throttled += 1
            }
            _ => served += 1,
        }
    }
    assert!(throttled >= 300, "throttled {throttled}, served {served}");
    // Root is exempt.
    let root = f.kmsd.client();
    for _ in 0..400 {
        root.call(ListKeysRequest::default())
            .expect("root is not throttled");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let recs = audit_records(&f.state);
    let new = &recs[before..];
    let reports: Vec<_> = new
        .iter()
        .filter(|r| r["eventName"] == "RequestsThrottled")
        .collect();
    assert!(
        !reports.is_empty() && reports.len() <= 3,
        "{} reports",
        reports.len()
    );
    let counted: u64 = reports
        .iter()
        .map(|r| {
            r["requestParameters"]["ThrottledRequests"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, throttled);
    assert!(reports.iter().all(|r| {
        r["principal"]["uid"] == a
            && r["errorCode"] == "ThrottlingException"
            && r["requestParameters"]["Operations"]["ListKeys"]
                .as_u64()
                .is_some()
    }));
    // Served requests have their own records; throttled ones only the count.
    let of_a = new
        .iter()
        .filter(|r| r["principal"]["uid"] == a && r["eventName"] == "ListKeys")
        .count() as u64;
    assert_eq!(of_a, served);
}

#[test]
fn denied_requests_with_huge_contexts_cost_bounded_audit_bytes() {
    let f = start(&[]);
    let key = f.kmsd.create_key("root's").key_id;
    let a = unused_id(65_000);
    let sock = f.kmsd.socket.clone();
    let before = audit_bytes(&f.state);
    let huge: EncryptionContext = [("a".to_string(), "x".repeat(240_000))].into();
    let c = as_ids(a, a, || {
        let c = Client::connect(&sock).unwrap();
        let _ = c.call(ListKeysRequest::default());
        c
    });
    let t = Instant::now();
    for _ in 0..40 {
        let e = c
            .call(EncryptRequest {
                key_id: key.clone(),
                plaintext: SecretBytes::from_slice(b"x"),
                encryption_context: huge.clone(),
                grant_tokens: vec![],
            })
            .expect_err("denied or invalid");
        assert!(
            matches!(
                e.kind(),
                Some(ErrorKind::AccessDeniedException | ErrorKind::ValidationException)
            ),
            "{e}"
        );
    }
    let took = t.elapsed();
    let grew = audit_bytes(&f.state) - before;
    eprintln!("40 denied Encrypts with a 240 KB context: {grew} audit bytes in {took:?}");
    assert!(grew < 40 * 2048, "{grew} audit bytes");
    let recs = audit_records(&f.state);
    let last = recs
        .iter()
        .rev()
        .find(|r| r["eventName"] == "Encrypt")
        .unwrap();
    assert_eq!(
        last["requestParameters"]["EncryptionContext"]["a"]["truncated"]["length"],
        240_000
    );

    // The root of the same request is refused by validation, not run.
    let e = f
        .kmsd
        .client()
        .call(EncryptRequest {
            key_id: key,
            plaintext: SecretBytes::from_slice(b"x"),
            encryption_context: huge,
            grant_tokens: vec![],
        })
        .expect_err("too large a context");
    assert_eq!(e.kind(), Some(ErrorKind::ValidationException), "{e}");
}
