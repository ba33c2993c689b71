//! Tests of `evaluate.rs`.

use super::*;
use crate::directory::FakeDirectory;
use kmsd_client::{CreateGrantRequest, EncryptionContext, GrantConstraints, Timestamp};

const ADMIN: u32 = 0;
const KEY: &str = "1234abcd-0000-0000-0000-000000000001";
const ARN: &str = "arn:aws:kms:local:000000000000:key/1234abcd-0000-0000-0000-000000000001";

fn dir() -> FakeDirectory {
    FakeDirectory::new()
        .user("root", 0, 0)
        .user("alice", 1000, 100)
        .user("bob", 1001, 100)
        .user("carol", 1002, 1002)
        .group("root", 0, &[])
        .group("users", 100, &[])
        .group("storage", 200, &["alice"])
        .group("carol", 1002, &[])
}

fn who(uid: u32) -> Caller {
    let gid = match uid {
        0 => 0,
        1002 => 1002,
        _ => 100,
    };
    Caller::resolve(uid, gid, Some(1), &dir())
}

fn root() -> Caller {
    who(0)
}
fn alice() -> Caller {
    who(1000)
}
fn bob() -> Caller {
    who(1001)
}
fn carol() -> Caller {
    who(1002)
}

/// A policy from statements written as JSON objects.
fn policy(statements: &[&str]) -> Policy {
    let text = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        statements.join(",")
    );
    Policy::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn allow(sid: &str, principal: &str, action: &str) -> String {
    stmt("Allow", sid, principal, action, "")
}

fn deny(sid: &str, principal: &str, action: &str) -> String {
    stmt("Deny", sid, principal, action, "")
}

fn stmt(effect: &str, sid: &str, principal: &str, action: &str, condition: &str) -> String {
    let principal = if principal == "*" {
        "\"*\"".to_owned()
    } else {
        format!(r#"{{"Unix": "{principal}"}}"#)
    };
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(r#", "Condition": {condition}"#)
    };
    format!(
        r#"{{"Sid": "{sid}", "Effect": "{effect}", "Principal": {principal},
            "Action": "{action}", "Resource": "*"{condition}}}"#
    )
}

fn empty_service() -> Policy {
    policy(&[&allow("AdminOnly", "uid:0", "kms:CreateKey")])
}

struct Case<'a> {
    caller: Caller,
    action: &'a str,
    key_policy: Option<&'a Policy>,
    service: &'a Policy,
    grants: &'a [Grant],
    ctx: RequestContext,
}

impl<'a> Case<'a> {
    fn new(caller: Caller, action: &'a str, key_policy: &'a Policy, service: &'a Policy) -> Self {
        Case {
            caller,
            action,
            key_policy: Some(key_policy),
            service,
            grants: &[],
            ctx: RequestContext::default(),
        }
    }

    fn decide(&self) -> Decision {
        evaluate(&Query {
            caller: &self.caller,
            admin_uid: ADMIN,
            action: self.action,
            key: self.key_policy.map(|policy| KeyScope {
                key_id: KEY,
                arn: ARN,
                policy,
                grants: self.grants,
            }),
            service_policy: self.service,
            context: &self.ctx,
        })
    }
}

fn key_allow(sid: &str) -> Decision {
    Decision::Allow(Source::KeyPolicy {
        sid: Some(sid.into()),
    })
}

fn service_allow(sid: &str) -> Decision {
    Decision::Allow(Source::ServicePolicy {
        sid: Some(sid.into()),
    })
}

fn ec(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn grant(grantee: &str, ops: &[&str], constraints: Option<GrantConstraints>) -> Grant {
    let req = CreateGrantRequest {
        key_id: KEY.into(),
        grantee_principal: grantee.into(),
        retiring_principal: None,
        operations: ops.iter().map(|s| (*s).into()).collect(),
        constraints,
        name: None,
        grant_tokens: vec![],
    };
    let id = format!("{:064x}", ops.len() * 7 + grantee.len());
    Grant::from_request(&req, KEY, id, &root(), Timestamp(0)).unwrap()
}

#[test]
fn default_deny() {
    let kp = policy(&[&allow("Bob", "user:bob", "kms:*")]);
    let svc = empty_service();
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &kp, &svc).decide(),
        Decision::ImplicitDeny
    );
    // The administrator gets nothing a key policy does not give it.
    assert_eq!(
        Case::new(root(), "kms:Decrypt", &kp, &svc).decide(),
        Decision::ImplicitDeny
    );
}

#[test]
fn every_principal_form_in_a_key_policy() {
    let svc = empty_service();
    // alice: uid 1000, primary users(100), supplementary storage(200).
    let table = [
        ("uid:1000", [true, false, false]),
        ("user:alice", [true, false, false]),
        ("gid:100", [true, true, false]),
        ("group:users", [true, true, false]),
        ("gid:200", [true, false, false]),
        ("group:storage", [true, false, false]),
        ("group:carol", [false, false, true]),
        ("*", [true, true, true]),
        ("account", [false, false, false]),
    ];
    for (principal, expect) in table {
        let kp = policy(&[&allow("S", principal, "kms:Encrypt")]);
        let got = [alice(), bob(), carol()]
            .map(|c| Case::new(c, "kms:Encrypt", &kp, &svc).decide().is_allowed());
        assert_eq!(got, expect, "{principal}");
    }
    let kp = policy(&[&allow("S", "account", "kms:Encrypt")]);
    assert!(
        Case::new(root(), "kms:Encrypt", &kp, &svc)
            .decide()
            .is_allowed()
    );
}

#[test]
fn principal_lists_are_alternatives() {
    let kp = policy(&[r#"{"Sid": "Two", "Effect": "Allow",
        "Principal": {"Unix": ["user:bob", "group:storage"]},
        "Action": "kms:Decrypt", "Resource": "*"}"#]);
    let svc = empty_service();
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &kp, &svc).decide(),
        key_allow("Two")
    );
    assert_eq!(
        Case::new(bob(), "kms:Decrypt", &kp, &svc).decide(),
        key_allow("Two")
    );
    assert!(
        !Case::new(carol(), "kms:Decrypt", &kp, &svc)
            .decide()
            .is_allowed()
    );
}

#[test]
fn wildcard_actions_and_not_action() {
    let svc = empty_service();
    let kp = policy(&[&allow("Gen", "user:alice", "kms:Generate*")]);
    let decide = |action| Case::new(alice(), action, &kp, &svc).decide().is_allowed();
    assert!(decide("kms:GenerateDataKey"));
    assert!(decide("kms:GenerateDataKeyWithoutPlaintext"));
    assert!(!decide("kms:Decrypt"));
    assert!(!decide("kms:Encrypt"));

    let all = policy(&[&allow("All", "user:alice", "kms:*")]);
    for action in ["kms:Decrypt", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"] {
        assert!(
            Case::new(alice(), action, &all, &svc).decide().is_allowed(),
            "{action}"
        );
    }
    let star = policy(&[&allow("Star", "user:alice", "*")]);
    assert!(
        Case::new(alice(), "kms:Decrypt", &star, &svc)
            .decide()
            .is_allowed()
    );

    let not = policy(&[r#"{"Sid": "AllButDelete", "Effect": "Allow",
        "Principal": {"Unix": "user:alice"}, "NotAction": ["kms:ScheduleKeyDeletion",
        "kms:PutKeyPolicy"], "Resource": "*"}"#]);
    assert!(
        Case::new(alice(), "kms:Decrypt", &not, &svc)
            .decide()
            .is_allowed()
    );
    assert!(
        !Case::new(alice(), "kms:ScheduleKeyDeletion", &not, &svc)
            .decide()
            .is_allowed()
    );
}

#[test]
fn explicit_deny_in_key_policy_beats_every_allow() {
    let svc = policy(&[&allow("SvcAll", "*", "kms:*")]);
    let kp = policy(&[
        &allow("Account", "account", "kms:*"),
        &allow("AliceAll", "user:alice", "kms:*"),
        &deny("NoDecrypt", "group:storage", "kms:Decrypt"),
    ]);
    let g = [grant("user:alice", &["Decrypt"], None)];
    let mut case = Case::new(alice(), "kms:Decrypt", &kp, &svc);
    case.grants = &g;
    assert_eq!(
        case.decide(),
        Decision::ExplicitDeny {
            policy: PolicyKind::Key,
            sid: Some("NoDecrypt".into())
        }
    );
    // Bob is not in storage: the deny does not apply to him.
    assert_eq!(
        Case::new(bob(), "kms:Decrypt", &kp, &svc).decide(),
        service_allow("SvcAll")
    );
    // Other actions are still allowed to alice.
    assert_eq!(
        Case::new(alice(), "kms:Encrypt", &kp, &svc).decide(),
        key_allow("AliceAll")
    );
}

#[test]
fn explicit_deny_in_service_policy_beats_key_policy_allow() {
    let svc = policy(&[&deny(
        "NoRandomOrDelete",
        "user:alice",
        "kms:ScheduleKeyDeletion",
    )]);
    let kp = policy(&[&allow("AliceAll", "user:alice", "kms:*")]);
    assert_eq!(
        Case::new(alice(), "kms:ScheduleKeyDeletion", &kp, &svc).decide(),
        Decision::ExplicitDeny {
            policy: PolicyKind::Service,
            sid: Some("NoRandomOrDelete".into())
        }
    );
    // Service-policy denies apply even where the key policy does not
    // let the service policy's allows count.
    assert!(
        !kp.statements
            .iter()
            .any(|s| s.principals.contains(&Principal::Account))
    );
}

#[test]
fn deny_naming_account_denies_everyone() {
    let svc = empty_service();
    let kp = policy(&[
        &allow("All", "*", "kms:*"),
        &deny("Freeze", "account", "kms:Encrypt"),
    ]);
    for c in [root(), alice(), bob()] {
        assert!(!Case::new(c, "kms:Encrypt", &kp, &svc).decide().is_allowed());
    }
    assert!(
        Case::new(alice(), "kms:Decrypt", &kp, &svc)
            .decide()
            .is_allowed()
    );
}

#[test]
fn service_policy_counts_only_where_the_key_policy_allows_account() {
    let svc = policy(&[&allow("AliceUses", "user:alice", "kms:Decrypt")]);
    let with = policy(&[&allow("EnableService", "account", "kms:*")]);
    let without = policy(&[&allow("BobOnly", "user:bob", "kms:*")]);
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &with, &svc).decide(),
        service_allow("AliceUses")
    );
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &without, &svc).decide(),
        Decision::ImplicitDeny
    );
    // The delegation is per action: only Describe* here.
    let partial = policy(&[&allow("DescribeOnly", "account", "kms:Describe*")]);
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &partial, &svc).decide(),
        Decision::ImplicitDeny
    );
    let svc2 = policy(&[&allow("AliceDescribes", "user:alice", "kms:DescribeKey")]);
    assert_eq!(
        Case::new(alice(), "kms:DescribeKey", &partial, &svc2).decide(),
        service_allow("AliceDescribes")
    );
    // And it is subject to the account statement's conditions.
    let cond = policy(&[&stmt(
        "Allow",
        "AppOnly",
        "account",
        "kms:*",
        r#"{"StringEquals": {"kms:EncryptionContext:app": "db"}}"#,
    )]);
    let mut case = Case::new(alice(), "kms:Decrypt", &cond, &svc);
    assert_eq!(case.decide(), Decision::ImplicitDeny);
    case.ctx = RequestContext::with_encryption_context(&ec(&[("app", "db")]));
    assert_eq!(case.decide(), service_allow("AliceUses"));
}

#[test]
fn keyless_operations_use_the_service_policy_alone() {
    let svc = policy(&[
        &allow("AdminCreates", "uid:0", "kms:CreateKey"),
        &allow("AllList", "*", "kms:List*"),
    ]);
    let keyless = |c: Caller, action| {
        Case {
            caller: c,
            action,
            key_policy: None,
            service: &svc,
            grants: &[],
            ctx: RequestContext::default(),
        }
        .decide()
    };
    assert_eq!(
        keyless(root(), "kms:CreateKey"),
        service_allow("AdminCreates")
    );
    assert_eq!(keyless(alice(), "kms:CreateKey"), Decision::ImplicitDeny);
    assert_eq!(keyless(alice(), "kms:ListKeys"), service_allow("AllList"));
    assert_eq!(
        keyless(alice(), "kms:GenerateRandom"),
        Decision::ImplicitDeny
    );
}

#[test]
fn service_policy_resource_patterns_select_keys() {
    let svc = policy(&[&format!(
        r#"{{"Sid": "ThisKey", "Effect": "Allow", "Principal": {{"Unix": "user:alice"}},
            "Action": "kms:Decrypt", "Resource": "{ARN}"}}"#
    )]);
    let other = policy(&[
        r#"{"Sid": "OtherKey", "Effect": "Allow", "Principal": {"Unix": "user:alice"},
        "Action": "kms:Decrypt", "Resource": "arn:aws:kms:local:000000000000:key/ffff*"}"#,
    ]);
    let kp = policy(&[&allow("Enable", "account", "kms:*")]);
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &kp, &svc).decide(),
        service_allow("ThisKey")
    );
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &kp, &other).decide(),
        Decision::ImplicitDeny
    );
    // A key ARN pattern never matches an operation that names no key.
    let keyless = Case {
        caller: alice(),
        action: "kms:Decrypt",
        key_policy: None,
        service: &svc,
        grants: &[],
        ctx: RequestContext::default(),
    };
    assert_eq!(keyless.decide(), Decision::ImplicitDeny);
}

#[test]
fn key_policy_conditions_on_encryption_context() {
    let svc = empty_service();
    let kp = policy(&[&stmt(
        "Allow",
        "DbOnly",
        "user:alice",
        "kms:Decrypt",
        r#"{"StringEquals": {"kms:EncryptionContext:app": "db"},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "file"]}}"#,
    )]);
    let mut case = Case::new(alice(), "kms:Decrypt", &kp, &svc);
    for (pairs, allowed) in [
        (&[("app", "db")][..], true),
        (&[("app", "db"), ("file", "x")][..], true),
        (&[("app", "web")][..], false),
        (&[("app", "db"), ("extra", "x")][..], false),
        (&[][..], false),
    ] {
        case.ctx = RequestContext::with_encryption_context(&ec(pairs));
        assert_eq!(case.decide().is_allowed(), allowed, "{pairs:?}");
    }
}

#[test]
fn deny_with_condition_applies_only_when_it_holds() {
    let svc = empty_service();
    let kp = policy(&[
        &allow("All", "user:alice", "kms:*"),
        &stmt(
            "Deny",
            "NoSecret",
            "*",
            "kms:Decrypt",
            r#"{"StringLike": {"kms:EncryptionContext:class": "secret*"}}"#,
        ),
    ]);
    let mut case = Case::new(alice(), "kms:Decrypt", &kp, &svc);
    case.ctx = RequestContext::with_encryption_context(&ec(&[("class", "secret-2")]));
    assert!(matches!(case.decide(), Decision::ExplicitDeny { .. }));
    case.ctx = RequestContext::with_encryption_context(&ec(&[("class", "public")]));
    assert_eq!(case.decide(), key_allow("All"));
}

#[test]
fn caller_uid_conditions() {
    let svc = empty_service();
    let kp = policy(&[&stmt(
        "Allow",
        "Humans",
        "*",
        "kms:Encrypt",
        r#"{"NumericGreaterThanEquals": {"kms:CallerUid": 1000}}"#,
    )]);
    assert!(
        Case::new(alice(), "kms:Encrypt", &kp, &svc)
            .decide()
            .is_allowed()
    );
    assert!(
        !Case::new(root(), "kms:Encrypt", &kp, &svc)
            .decide()
            .is_allowed()
    );
}

#[test]
fn grants_allow_when_constraints_are_met() {
    let svc = empty_service();
    let kp = policy(&[&allow("Admin", "uid:0", "kms:*")]);
    let subset = Some(GrantConstraints {
        encryption_context_subset: Some(ec(&[("app", "db")])),
        encryption_context_equals: None,
    });
    let grants = [grant(
        "group:storage",
        &["Decrypt", "GenerateDataKey"],
        subset,
    )];
    let id = grants[0].grant_id.clone();
    let mut case = Case::new(alice(), "kms:Decrypt", &kp, &svc);
    case.grants = &grants;
    case.ctx = RequestContext::with_encryption_context(&ec(&[("app", "db"), ("f", "1")]));
    assert_eq!(
        case.decide(),
        Decision::Allow(Source::Grant { grant_id: id })
    );
    case.ctx = RequestContext::with_encryption_context(&ec(&[("app", "web")]));
    assert_eq!(case.decide(), Decision::ImplicitDeny, "constraint not met");
    case.ctx = RequestContext::with_encryption_context(&ec(&[("app", "db")]));
    case.action = "kms:Encrypt";
    assert_eq!(
        case.decide(),
        Decision::ImplicitDeny,
        "operation not granted"
    );
    case.action = "kms:ScheduleKeyDeletion";
    assert_eq!(
        case.decide(),
        Decision::ImplicitDeny,
        "grants never allow management"
    );
    case.action = "kms:Decrypt";
    case.caller = bob();
    assert_eq!(
        case.decide(),
        Decision::ImplicitDeny,
        "bob is not in storage"
    );
}

#[test]
fn grants_on_other_keys_are_ignored() {
    let svc = empty_service();
    let kp = policy(&[&allow("Admin", "uid:0", "kms:*")]);
    let mut g = grant("user:alice", &["Decrypt"], None);
    g.key_id = "other".into();
    let grants = [g];
    let mut case = Case::new(alice(), "kms:Decrypt", &kp, &svc);
    case.grants = &grants;
    assert_eq!(case.decide(), Decision::ImplicitDeny);
}

#[test]
fn retire_grant_by_retiring_principal_or_grantee() {
    let svc = empty_service();
    let kp = policy(&[&allow("Admin", "uid:0", "kms:*")]);
    let req = CreateGrantRequest {
        key_id: KEY.into(),
        grantee_principal: "user:alice".into(),
        retiring_principal: Some("user:bob".into()),
        operations: vec!["Decrypt".into()],
        constraints: None,
        name: None,
        grant_tokens: vec![],
    };
    let plain = Grant::from_request(&req, KEY, "1".repeat(64), &root(), Timestamp(0)).unwrap();
    let self_retiring = grant("user:carol", &["Encrypt", "RetireGrant"], None);
    let grants = [plain.clone(), self_retiring.clone()];
    let retire = |c: Caller, id: &str| {
        let mut case = Case::new(c, "kms:RetireGrant", &kp, &svc);
        case.grants = &grants;
        case.ctx = RequestContext::for_retire_grant(id);
        case.decide()
    };
    assert_eq!(
        retire(bob(), &plain.grant_id),
        Decision::Allow(Source::RetiringPrincipal {
            grant_id: plain.grant_id.clone()
        })
    );
    assert_eq!(retire(alice(), &plain.grant_id), Decision::ImplicitDeny);
    assert_eq!(
        retire(carol(), &self_retiring.grant_id),
        Decision::Allow(Source::Grant {
            grant_id: self_retiring.grant_id.clone()
        })
    );
    assert_eq!(
        retire(carol(), &plain.grant_id),
        Decision::ImplicitDeny,
        "only its own grant"
    );
    assert_eq!(retire(root(), &plain.grant_id), key_allow("Admin"));
}

#[test]
fn create_grant_through_a_grant_passes_on_only_what_it_holds() {
    let svc = empty_service();
    let kp = policy(&[&allow("Admin", "uid:0", "kms:*")]);
    let grants = [grant("user:alice", &["CreateGrant", "Decrypt"], None)];
    let mut case = Case::new(alice(), "kms:CreateGrant", &kp, &svc);
    case.grants = &grants;
    case.ctx = RequestContext::for_create_grant(&grant("user:bob", &["Decrypt"], None));
    assert!(case.decide().is_allowed());
    case.ctx = RequestContext::for_create_grant(&grant("user:bob", &["Encrypt"], None));
    assert_eq!(case.decide(), Decision::ImplicitDeny);
}

#[test]
fn create_grant_conditions_on_grant_keys() {
    let svc = empty_service();
    let kp = policy(&[&stmt(
        "Allow",
        "DelegateDecryptOnly",
        "user:alice",
        "kms:CreateGrant",
        r#"{"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "DescribeKey"]},
            "StringLike": {"kms:GranteePrincipal": "user:*"}}"#,
    )]);
    let mut case = Case::new(alice(), "kms:CreateGrant", &kp, &svc);
    case.ctx = RequestContext::for_create_grant(&grant("user:bob", &["Decrypt"], None));
    assert!(case.decide().is_allowed());
    case.ctx = RequestContext::for_create_grant(&grant("user:bob", &["Decrypt", "Encrypt"], None));
    assert!(!case.decide().is_allowed());
    case.ctx = RequestContext::for_create_grant(&grant("uid:1001", &["Decrypt"], None));
    assert!(!case.decide().is_allowed());
}

#[test]
fn administrator_always_manages_the_service_policy() {
    let locked = policy(&[&deny("Nobody", "*", "kms:*")]);
    for action in SERVICE_POLICY_ACTIONS {
        let case = Case {
            caller: root(),
            action,
            key_policy: None,
            service: &locked,
            grants: &[],
            ctx: RequestContext::default(),
        };
        assert_eq!(case.decide(), Decision::Allow(Source::Administrator));
        let case = Case {
            caller: alice(),
            ..case
        };
        assert!(matches!(case.decide(), Decision::ExplicitDeny { .. }));
    }
}

#[test]
fn first_matching_statement_is_reported() {
    let svc = empty_service();
    let kp = policy(&[
        &allow("First", "*", "kms:*"),
        &allow("Second", "user:alice", "kms:*"),
    ]);
    assert_eq!(
        Case::new(alice(), "kms:Decrypt", &kp, &svc).decide(),
        key_allow("First")
    );
}

#[test]
fn messages_say_who_what_where_and_why() {
    let svc = empty_service();
    let kp = policy(&[&deny("NoDecrypt", "user:alice", "kms:Decrypt")]);
    let ctx = RequestContext::default();
    let alice = alice();
    let q = Query {
        caller: &alice,
        admin_uid: ADMIN,
        action: "kms:Decrypt",
        key: Some(KeyScope {
            key_id: KEY,
            arn: ARN,
            policy: &kp,
            grants: &[],
        }),
        service_policy: &svc,
        context: &ctx,
    };
    let d = evaluate(&q);
    assert_eq!(
        q.denied_message(&d),
        format!(
            "uid:1000 (user:alice) is not authorized to perform kms:Decrypt on {ARN}: \
             explicitly denied by the key policy statement \"NoDecrypt\""
        )
    );
    let q2 = Query {
        action: "kms:Encrypt",
        ..q
    };
    assert!(
        q2.denied_message(&evaluate(&q2))
            .ends_with(": no key policy, service policy or grant allows it")
    );
    let q3 = Query {
        key: None,
        action: "kms:CreateKey",
        ..q
    };
    assert!(
        q3.denied_message(&evaluate(&q3))
            .contains("kms:CreateKey on *: ")
    );
    assert_eq!(
        Decision::Allow(Source::Grant {
            grant_id: "g".into()
        })
        .to_string(),
        "allowed by grant g"
    );
    assert_eq!(
        Decision::Allow(Source::ServicePolicy { sid: None }).to_string(),
        "allowed by the service policy"
    );
}

#[test]
fn lockout_check_requires_future_put_key_policy() {
    let svc = policy(&[&allow("AdminAll", "uid:0", "kms:*")]);
    let keeps = policy(&[&allow("AliceAdmin", "user:alice", "kms:*")]);
    assert!(lockout_check(&keeps, &alice(), ADMIN, KEY, ARN, &svc).is_ok());

    let drops = policy(&[&allow("AliceUses", "user:alice", "kms:Encrypt")]);
    let e = lockout_check(&drops, &alice(), ADMIN, KEY, ARN, &svc).unwrap_err();
    assert_eq!(e.kind().name(), "MalformedPolicyDocumentException");
    assert!(matches!(e, Error::Lockout(_)));
    assert!(
        e.message()
            .starts_with("The new key policy will not allow you"),
        "{e}"
    );

    // Through the service policy, when the key policy allows account.
    let delegating = policy(&[&allow("Enable", "account", "kms:*")]);
    assert!(lockout_check(&delegating, &root(), ADMIN, KEY, ARN, &svc).is_ok());
    let svc_alice = policy(&[&allow("AlicePuts", "user:alice", "kms:PutKeyPolicy")]);
    assert!(lockout_check(&delegating, &alice(), ADMIN, KEY, ARN, &svc_alice).is_ok());
    assert!(lockout_check(&delegating, &alice(), ADMIN, KEY, ARN, &svc).is_err());

    // A policy that denies PutKeyPolicy to the caller fails the check.
    let denies = policy(&[
        &allow("All", "user:alice", "kms:*"),
        &deny("NoPut", "user:alice", "kms:PutKeyPolicy"),
    ]);
    assert!(lockout_check(&denies, &alice(), ADMIN, KEY, ARN, &svc).is_err());
}
