//! Tests of `grants.rs`.

use super::*;
use crate::condition::RequestContext;
use crate::directory::FakeDirectory;

fn dir() -> FakeDirectory {
    FakeDirectory::new()
        .user("alice", 1000, 100)
        .user("bob", 1001, 100)
        .group("users", 100, &[])
        .group("storage", 200, &["alice"])
}

fn caller(uid: u32) -> Caller {
    Caller::resolve(uid, 100, None, &dir())
}

fn ec(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn request(grantee: &str, ops: &[&str]) -> CreateGrantRequest {
    CreateGrantRequest {
        key_id: "k1".into(),
        grantee_principal: grantee.into(),
        retiring_principal: None,
        operations: ops.iter().map(|s| (*s).into()).collect(),
        constraints: None,
        name: None,
        grant_tokens: vec![],
    }
}

fn grant(grantee: &str, ops: &[&str], c: Option<GrantConstraints>) -> Grant {
    let mut req = request(grantee, ops);
    req.constraints = c;
    Grant::from_request(&req, "k1", "a".repeat(64), &caller(0), Timestamp(7)).unwrap()
}

fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        encryption_context_subset: Some(ec(pairs)),
        encryption_context_equals: None,
    })
}

fn equals(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        encryption_context_subset: None,
        encryption_context_equals: Some(ec(pairs)),
    })
}

fn with_ec(pairs: &[(&str, &str)]) -> RequestContext {
    RequestContext::with_encryption_context(&ec(pairs))
}

#[test]
fn operations_parse_and_map_to_actions() {
    for op in GrantOperation::ALL {
        assert_eq!(op.as_str().parse::<GrantOperation>(), Ok(op));
        assert_eq!(op.action(), format!("kms:{op}"));
        assert_eq!(GrantOperation::for_action(op.action()), Some(op));
    }
    assert_eq!(GrantOperation::for_action("kms:CreateKey"), None);
    let e = "decrypt".parse::<GrantOperation>().unwrap_err();
    assert!(e.contains("unknown grant operation \"decrypt\""), "{e}");
    assert!(e.contains("ReEncryptFrom"), "{e}");
}

#[test]
fn from_request_validates_everything() {
    let g = grant("user:alice", &["Decrypt", "Encrypt", "Decrypt"], None);
    assert_eq!(
        g.operations,
        [GrantOperation::Decrypt, GrantOperation::Encrypt]
    );
    assert_eq!(g.grantee_principal, Principal::User("alice".into()));
    assert_eq!(g.issuing_principal, Principal::Uid(0));
    assert_eq!(g.creation_date, Timestamp(7));

    let cases: &[(CreateGrantRequest, Error)] = &[
        (
            request("user:alice", &[]),
            Error::InvalidGrant("Operations: a grant needs at least one operation".into()),
        ),
        (
            request("*", &["Decrypt"]),
            Error::InvalidPrincipal(
                "GranteePrincipal: a grant must name one user or group (uid:N, gid:N, \
                 user:NAME, group:NAME), not \"*\""
                    .into(),
            ),
        ),
    ];
    for (req, want) in cases {
        let got = Grant::from_request(req, "k1", "g".into(), &caller(0), Timestamp(0));
        assert_eq!(got.as_ref(), Err(want));
    }

    let err = |req: CreateGrantRequest| {
        Grant::from_request(&req, "k1", "g".into(), &caller(0), Timestamp(0))
            .unwrap_err()
            .to_string()
    };
    assert!(err(request("account", &["Decrypt"])).contains("not \"account\""));
    assert!(err(request("bob", &["Decrypt"])).contains("GranteePrincipal: invalid principal"));
    assert!(err(request("uid:1", &["Sign"])).contains("asymmetric keys only"));
    assert!(err(request("uid:1", &["GenerateMac"])).contains("HMAC keys only"));
    assert!(err(request("uid:1", &["GenerateDataKeyPair"])).contains("data key pairs"));
    assert!(err(request("uid:1", &["Frob"])).contains("unknown grant operation"));
    let mut r = request("uid:1", &["Decrypt"]);
    r.retiring_principal = Some("*".into());
    assert!(err(r).contains("RetiringPrincipal"));
    let mut r = request("uid:1", &["Decrypt"]);
    r.name = Some("has space".into());
    assert!(err(r).contains("Name:"));
    let mut r = request("uid:1", &["Decrypt"]);
    r.name = Some("x".repeat(257));
    assert!(err(r).contains("Name:"));
    let mut r = request("uid:1", &["Decrypt"]);
    r.constraints = Some(GrantConstraints {
        encryption_context_subset: Some(ec(&[("a", "1")])),
        encryption_context_equals: Some(ec(&[("a", "1")])),
    });
    assert!(err(r).contains("not both"));
}

#[test]
fn empty_constraints_normalise_to_none_but_empty_equals_is_kept() {
    assert_eq!(grant("uid:1", &["Decrypt"], subset(&[])).constraints, None);
    assert_eq!(
        grant("uid:1", &["Decrypt"], Some(GrantConstraints::default())).constraints,
        None
    );
    assert_eq!(
        grant("uid:1", &["Decrypt"], equals(&[])).constraints,
        equals(&[])
    );
}

#[test]
fn constraints_subset_and_equals() {
    let req = ec(&[("app", "db"), ("env", "prod")]);
    assert!(constraints_met(None, &req));
    assert!(constraints_met(subset(&[]).as_ref(), &req));
    assert!(constraints_met(subset(&[("app", "db")]).as_ref(), &req));
    assert!(
        constraints_met(subset(&[("APP", "db")]).as_ref(), &req),
        "keys ignore case"
    );
    assert!(
        !constraints_met(subset(&[("app", "DB")]).as_ref(), &req),
        "values do not"
    );
    assert!(!constraints_met(subset(&[("app", "web")]).as_ref(), &req));
    assert!(!constraints_met(subset(&[("team", "x")]).as_ref(), &req));
    assert!(constraints_met(
        equals(&[("env", "prod"), ("app", "db")]).as_ref(),
        &req
    ));
    assert!(!constraints_met(equals(&[("app", "db")]).as_ref(), &req));
    assert!(!constraints_met(
        equals(&[("app", "db"), ("env", "prod"), ("x", "y")]).as_ref(),
        &req
    ));
    assert!(constraints_met(equals(&[]).as_ref(), &ec(&[])));
    assert!(!constraints_met(equals(&[]).as_ref(), &req));
}

#[test]
fn grant_allows_grantee_operation_and_constraints() {
    let g = grant(
        "group:storage",
        &["Decrypt", "DescribeKey"],
        subset(&[("app", "db")]),
    );
    let alice = caller(1000); // in storage
    let bob = caller(1001); // not
    let good = with_ec(&[("app", "db"), ("x", "y")]);
    assert!(g.allows(&alice, GrantOperation::Decrypt, &good));
    assert!(!g.allows(&bob, GrantOperation::Decrypt, &good));
    assert!(!g.allows(&alice, GrantOperation::Encrypt, &good));
    assert!(!g.allows(&alice, GrantOperation::Decrypt, &with_ec(&[("app", "web")])));
    assert!(!g.allows(&alice, GrantOperation::Decrypt, &RequestContext::default()));
    // Constraints do not apply to DescribeKey.
    assert!(g.allows(
        &alice,
        GrantOperation::DescribeKey,
        &RequestContext::default()
    ));
}

#[test]
fn retire_grant_operation_applies_only_to_the_grant_itself() {
    let g = grant("uid:1000", &["Decrypt", "RetireGrant"], None);
    let alice = caller(1000);
    let this = RequestContext::for_retire_grant(&g.grant_id);
    let other = RequestContext::for_retire_grant(&"b".repeat(64));
    assert!(g.allows(&alice, GrantOperation::RetireGrant, &this));
    assert!(!g.allows(&alice, GrantOperation::RetireGrant, &other));
    assert!(g.may_retire(&alice));
    assert!(!g.may_retire(&caller(1001)));

    let mut r = request("uid:1000", &["Decrypt"]);
    r.retiring_principal = Some("user:bob".into());
    let g = Grant::from_request(&r, "k1", "c".repeat(64), &caller(0), Timestamp(0)).unwrap();
    assert!(g.may_retire(&caller(1001)), "retiring principal");
    assert!(!g.may_retire(&caller(1000)), "grantee without RetireGrant");
}

#[test]
fn pass_on_only_held_operations() {
    let parent = grant("uid:1000", &["CreateGrant", "Decrypt", "Encrypt"], None);
    use GrantOperation::*;
    assert!(check_pass_on(&parent, &[Decrypt], None).is_ok());
    assert!(check_pass_on(&parent, &[Decrypt, Encrypt, CreateGrant], None).is_ok());
    let e = check_pass_on(&parent, &[Decrypt, ReEncryptFrom], None).unwrap_err();
    assert!(e.contains("does not include ReEncryptFrom"), "{e}");
    let no_cg = grant("uid:1000", &["Decrypt"], None);
    assert!(
        check_pass_on(&no_cg, &[Decrypt], None)
            .unwrap_err()
            .contains("CreateGrant")
    );
}

#[test]
fn pass_on_constraints_must_be_as_strict() {
    use GrantOperation::*;
    let ops = [Decrypt];
    let sub = grant(
        "uid:1000",
        &["CreateGrant", "Decrypt"],
        subset(&[("app", "db")]),
    );
    assert!(check_pass_on(&sub, &ops, subset(&[("app", "db")]).as_ref()).is_ok());
    assert!(check_pass_on(&sub, &ops, subset(&[("app", "db"), ("e", "p")]).as_ref()).is_ok());
    assert!(check_pass_on(&sub, &ops, equals(&[("app", "db")]).as_ref()).is_ok());
    assert!(check_pass_on(&sub, &ops, None).is_err());
    assert!(check_pass_on(&sub, &ops, subset(&[("e", "p")]).as_ref()).is_err());
    assert!(check_pass_on(&sub, &ops, subset(&[("app", "web")]).as_ref()).is_err());

    let eq = grant(
        "uid:1000",
        &["CreateGrant", "Decrypt"],
        equals(&[("app", "db")]),
    );
    assert!(check_pass_on(&eq, &ops, equals(&[("app", "db")]).as_ref()).is_ok());
    assert!(check_pass_on(&eq, &ops, equals(&[("app", "db"), ("e", "p")]).as_ref()).is_err());
    assert!(check_pass_on(&eq, &ops, subset(&[("app", "db")]).as_ref()).is_err());
    assert!(check_pass_on(&eq, &ops, None).is_err());
}

#[test]
fn create_grant_via_grant_uses_the_request_context() {
    let parent = grant("uid:1000", &["CreateGrant", "Decrypt"], None);
    let alice = caller(1000);
    let child_ok = grant("uid:1001", &["Decrypt"], None);
    let child_bad = grant("uid:1001", &["Decrypt", "Encrypt"], None);
    let ok = RequestContext::for_create_grant(&child_ok);
    let bad = RequestContext::for_create_grant(&child_bad);
    assert!(parent.allows(&alice, GrantOperation::CreateGrant, &ok));
    assert!(!parent.allows(&alice, GrantOperation::CreateGrant, &bad));
    // A context without the new grant's operations never passes.
    assert!(!parent.allows(
        &alice,
        GrantOperation::CreateGrant,
        &RequestContext::default()
    ));
}

#[test]
fn list_entry_uses_wire_names() {
    let g = grant("group:storage", &["Encrypt"], subset(&[("a", "b")]));
    let e = g.to_list_entry();
    assert_eq!(e.grantee_principal, "group:storage");
    assert_eq!(e.operations, ["Encrypt"]);
    assert_eq!(e.issuing_account, "uid:0");
    assert_eq!(e.constraints, subset(&[("a", "b")]));
    assert_eq!(e.creation_date, Timestamp(7));
}

#[test]
fn grant_serde_round_trip() {
    let g = grant("user:alice", &["Decrypt"], equals(&[("k", "v")]));
    let json = serde_json::to_string(&g).unwrap();
    assert!(
        json.contains("\"grantee_principal\":\"user:alice\""),
        "{json}"
    );
    assert!(json.contains("\"operations\":[\"Decrypt\"]"), "{json}");
    let cfg = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&g, cfg).unwrap();
    let (back, _): (Grant, usize) = bincode::serde::decode_from_slice(&bytes, cfg).unwrap();
    assert_eq!(back, g);
}

#[test]
fn grant_ids_and_tokens() {
    let id = new_grant_id().unwrap();
    assert!(is_grant_id(&id), "{id}");
    assert_ne!(id, new_grant_id().unwrap());
    let t1 = mint_grant_token(&id).unwrap();
    let t2 = mint_grant_token(&id).unwrap();
    assert_ne!(t1, t2, "fresh nonce per token");
    assert_eq!(parse_grant_token(&t1).unwrap(), id);
    assert_eq!(parse_grant_token(&t2).unwrap(), id);
    let fixed = grant_token(&"0".repeat(64), [7; 16]);
    assert_eq!(parse_grant_token(&fixed).unwrap(), "0".repeat(64));
    assert!(!is_grant_id(&"A".repeat(64)));
    assert!(!is_grant_id("abc"));
}

#[test]
fn bad_tokens_are_invalid_grant_token() {
    let id = "f".repeat(64);
    let cases = [
        String::new(),
        "x".repeat(MAX_GRANT_TOKEN_LEN + 1),
        "not base64!".into(),
        URL_SAFE_NO_PAD.encode(b"XXXX0123456789abcdef"),
        URL_SAFE_NO_PAD.encode(b"KGT1short"),
        grant_token("not-a-grant-id", [0; 16]),
        grant_token(&id[..63], [0; 16]),
        grant_token(&id, [0; 16])[..40].to_owned(),
    ];
    for t in cases {
        let e = parse_grant_token(&t).unwrap_err();
        assert_eq!(e.kind().name(), "InvalidGrantTokenException", "{t}");
    }
}
