//! The request pipeline against the real kmsd binary (issue 9, item 1):
//! kmsd acts on the key it authorized, and its audit record names that key.
//!
//! The attack from the review: a user with `kms:*` on key A and only
//! `kms:UpdateAlias` + `kms:DescribeKey` on key B points `alias/m` at A,
//! then pipelines on one connection `UpdateAlias(alias/m -> B)` with
//! `CreateGrant(alias/m, grantee = self, [Decrypt])` (or with
//! `DisableKey(alias/m)`). kmsd runs a connection's mutations concurrently,
//! so both orders happen; in neither may the grant land on B (or B be
//! disabled), and every record must name the key the operation used.
//!
//! The attacker's connections are made by switching this thread's
//! effective uid around `connect` (see `common/raw.rs`), so the tests must
//! run as root; as anyone else they fail, never pass unrun.

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/raw.rs"]
mod raw;

use common::KmsdProcess;
use identity::{is_root, unused_id};
use kmsd_client::*;
use raw::{audit_records, pipelined, raw_hello_as};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const ATTEMPTS: usize = 1000;

struct World {
    kmsd: KmsdProcess,
    state: PathBuf,
    _tmp: tempfile::TempDir,
    admin: Client,
    attacker: u32,
    a: KeyMetadata,
    b: KeyMetadata,
    alias: String,
}

/// A kmsd (state on tmpfs where there is one: the loop makes thousands of
/// durable commits), key A owned by the attacker, key B that only lets the
/// attacker describe it and point aliases at it, and `alias/m -> A`.
fn world(alias: &str) -> World {
    assert!(
        is_root(),
        "these tests connect as another uid and must run as root"
    );
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = base.path().join("state");
    let socket = base.path().join("kmsd.sock");
    let kmsd = KmsdProcess::start_at(&state, &socket, &["--socket-mode", "666"]);
    let admin = kmsd.client();
    let attacker = unused_id(66_000);
    let me = format!("uid:{attacker}");
    let key_policy = |actions: Value| {
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "admin", "Effect": "Allow", "Principal": {"Unix": ["uid:0"]},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "user", "Effect": "Allow", "Principal": {"Unix": [me]},
             "Action": actions, "Resource": "*"}]})
        .to_string()
    };
    let create = |description: &str, policy: String| {
        admin
            .call(CreateKeyRequest {
                description: Some(description.into()),
                policy: Some(policy),
                ..Default::default()
            })
            .expect("create a key")
            .key_metadata
    };
    let a = create("attacker's key", key_policy(json!("kms:*")));
    let b = create(
        "victim's key",
        key_policy(json!(["kms:UpdateAlias", "kms:DescribeKey"])),
    );
    admin
        .call(CreateAliasRequest {
            alias_name: alias.into(),
            target_key_id: a.key_id.clone(),
        })
        .expect("alias -> A");
    World {
        kmsd,
        state,
        _tmp: base,
        admin,
        attacker,
        a,
        b,
        alias: alias.into(),
    }
}

impl World {
    fn point_alias_at(&self, key: &KeyMetadata) -> Request {
        Request::UpdateAlias(UpdateAliasRequest {
            alias_name: self.alias.clone(),
            target_key_id: key.key_id.clone(),
        })
    }

    fn grants_on(&self, key: &KeyMetadata) -> usize {
        let mut n = 0;
        let mut marker = None;
        loop {
            let page = self
                .admin
                .call(ListGrantsRequest {
                    key_id: key.key_id.clone(),
                    grant_id: None,
                    grantee_principal: None,
                    limit: Some(1000),
                    marker: marker.take(),
                })
                .expect("list grants");
            n += page.grants.len();
            match page.next_marker {
                Some(m) if page.truncated => marker = Some(m),
                _ => return n,
            }
        }
    }

    /// The attacker's records of `event`, as (succeeded, resources).
    fn records_of(&self, event: &str) -> Vec<(bool, Vec<String>)> {
        audit_records(&self.state)
            .into_iter()
            .filter(|r| r["eventName"] == event && r["principal"]["uid"] == self.attacker)
            .map(|r| {
                let resources = r["resources"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (r["errorCode"].is_null(), resources)
            })
            .collect()
    }
}

/// A result for messages (`Response` has no `Debug`: it may hold keys).
fn show(r: &Result<Response, KmsError>) -> String {
    match r {
        Ok(resp) => format!("ok ({})", resp.name()),
        Err(e) => e.to_string(),
    }
}

/// Pipelines `update` and `victim` on one connection, in alternating
/// order (kmsd runs them concurrently either way); returns their answers.
fn race(
    conn: &mut std::os::unix::net::UnixStream,
    update: Request,
    victim: Request,
    attempt: usize,
) -> (Result<Response, KmsError>, Result<Response, KmsError>) {
    if attempt.is_multiple_of(2) {
        let mut a = pipelined(conn, vec![update, victim]).into_iter();
        (a.next().unwrap(), a.next().unwrap())
    } else {
        let mut a = pipelined(conn, vec![victim, update]).into_iter();
        let v = a.next().unwrap();
        (a.next().unwrap(), v)
    }
}

fn denied(r: &Result<Response, KmsError>) -> bool {
    matches!(r, Err(e) if e.kind == ErrorKind::AccessDeniedException)
}

#[test]
fn pipelined_update_alias_never_moves_a_grant_onto_a_key_it_was_not_authorized_on() {
    let w = world("alias/m-grant");
    let mut conn = raw_hello_as(&w.kmsd.socket, w.attacker).expect("attacker connects");
    let (mut on_a, mut refused_on_b) = (0, 0);
    for i in 0..ATTEMPTS {
        let grant = Request::CreateGrant(CreateGrantRequest {
            key_id: w.alias.clone(),
            grantee_principal: format!("uid:{}", w.attacker),
            retiring_principal: None,
            operations: vec!["Decrypt".into()],
            constraints: None,
            name: None,
            grant_tokens: vec![],
        });
        let (update, grant) = race(&mut conn, w.point_alias_at(&w.b), grant, i);
        assert!(
            update.is_ok(),
            "attempt {i}: UpdateAlias: {}",
            show(&update)
        );
        match &grant {
            Ok(_) => on_a += 1,
            r if denied(r) => {
                let e = r.as_ref().err().unwrap();
                assert!(e.message.contains(&w.b.arn), "attempt {i}: {e}");
                refused_on_b += 1;
            }
            other => panic!("attempt {i}: CreateGrant: {}", show(other)),
        }
        let back = pipelined(&mut conn, vec![w.point_alias_at(&w.a)]);
        assert!(
            back[0].is_ok(),
            "attempt {i}: alias back to A: {}",
            show(&back[0])
        );
    }
    eprintln!(
        "{ATTEMPTS} attempts: CreateGrant ran first {on_a} times (grant on A), \
         after UpdateAlias {refused_on_b} times (denied on B)"
    );
    assert_eq!(on_a + refused_on_b, ATTEMPTS);
    assert_eq!(w.grants_on(&w.b), 0, "a grant landed on B");
    assert_eq!(w.grants_on(&w.a), on_a, "every granted CreateGrant is on A");

    drop(conn);
    let records = w.records_of("CreateGrant");
    assert_eq!(records.len(), ATTEMPTS, "one record per CreateGrant");
    for (ok, resources) in &records {
        let used = if *ok { &w.a.arn } else { &w.b.arn };
        assert_eq!(resources, &vec![used.clone()], "record names the key used");
    }
    assert_eq!(records.iter().filter(|(ok, _)| *ok).count(), on_a);
}

#[test]
fn pipelined_update_alias_never_disables_a_key_it_was_not_authorized_on() {
    let w = world("alias/m-disable");
    let mut conn = raw_hello_as(&w.kmsd.socket, w.attacker).expect("attacker connects");
    let (mut on_a, mut refused_on_b) = (0, 0);
    for i in 0..ATTEMPTS {
        let disable = Request::DisableKey(DisableKeyRequest {
            key_id: w.alias.clone(),
        });
        let (update, disable) = race(&mut conn, w.point_alias_at(&w.b), disable, i);
        assert!(
            update.is_ok(),
            "attempt {i}: UpdateAlias: {}",
            show(&update)
        );
        match &disable {
            Ok(_) => on_a += 1,
            r if denied(r) => refused_on_b += 1,
            other => panic!("attempt {i}: DisableKey: {}", show(other)),
        }
        let enable = Request::EnableKey(EnableKeyRequest {
            key_id: w.a.key_id.clone(),
        });
        let back = pipelined(&mut conn, vec![w.point_alias_at(&w.a), enable]);
        for r in &back {
            assert!(r.is_ok(), "attempt {i}: reset: {}", show(r));
        }
        let b = w
            .admin
            .call(DescribeKeyRequest {
                key_id: w.b.key_id.clone(),
            })
            .expect("describe B");
        assert_eq!(b.key_metadata.key_state, KeyState::Enabled, "attempt {i}");
    }
    eprintln!(
        "{ATTEMPTS} attempts: DisableKey ran first {on_a} times (on A), \
         after UpdateAlias {refused_on_b} times (denied on B)"
    );
    assert_eq!(on_a + refused_on_b, ATTEMPTS);

    drop(conn);
    let records = w.records_of("DisableKey");
    assert_eq!(records.len(), ATTEMPTS, "one record per DisableKey");
    for (ok, resources) in &records {
        let used = if *ok { &w.a.arn } else { &w.b.arn };
        assert_eq!(resources, &vec![used.clone()], "record names the key used");
    }
    // UpdateAlias records name both keys it was authorized on.
    for (ok, resources) in w.records_of("UpdateAlias") {
        assert!(ok);
        assert_eq!(resources.len(), 2, "{resources:?}");
        assert!(resources.contains(&w.a.arn) && resources.contains(&w.b.arn));
    }
}
