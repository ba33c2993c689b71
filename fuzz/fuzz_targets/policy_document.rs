//! The policy document parser and evaluator (kmsd_policy). Asserts:
//! parsing is deterministic and the text's JSON re-serialised parses to an
//! equal policy (parse→encode→parse); evaluating any parsed policy as a key
//! policy or a service policy never panics and is deterministic; and adding
//! a `Deny * kms:*` statement to it denies everything except what the
//! administrator override allows.
#![no_main]

use kmsd_policy::{
    Caller, Decision, FakeDirectory, KeyScope, Policy, Query, RequestContext, Source,
    default_service_policy,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::OnceLock;

const ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:CreateGrant",
    "kms:PutKeyPolicy",
    "kms:GetServicePolicy",
    "kms:CreateKey",
];

struct World {
    callers: Vec<Caller>,
    service: Policy,
    ctx: RequestContext,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = FakeDirectory::new()
            .user("root", 0, 0)
            .user("alice", 1000, 100)
            .group("users", 100, &[])
            .group("storage", 200, &["alice"]);
        let mut ctx = RequestContext::default();
        ctx.encryption_context.insert("app".into(), "db".into());
        World {
            callers: vec![
                Caller::resolve(0, 0, Some(1), &dir),
                Caller::resolve(1000, 100, Some(2), &dir),
                Caller::resolve(4242, 4242, None, &dir),
            ],
            service: Policy::parse(&default_service_policy(0)).unwrap(),
            ctx,
        }
    })
}

fn decide(
    w: &World,
    key_policy: &Policy,
    service: &Policy,
    caller: &Caller,
    action: &str,
) -> Decision {
    let q = Query {
        caller,
        admin_uid: 0,
        action,
        key: Some(KeyScope {
            key_id: "1234abcd-12ab-34cd-56ef-1234567890ab",
            arn: "arn:aws:kms:local:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            policy: key_policy,
            grants: &[],
        }),
        service_policy: service,
        context: &w.ctx,
    };
    kmsd_policy::evaluate(&q)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Policy::parse(text);
    assert_eq!(parsed, Policy::parse(text), "parsing is not deterministic");
    let Ok(policy) = parsed else {
        return;
    };
    // parse → encode → parse.
    let value: Value = serde_json::from_str(text).expect("a valid policy is JSON");
    let re = serde_json::to_string(&value).unwrap();
    assert_eq!(
        Policy::parse(&re).as_ref(),
        Ok(&policy),
        "re-serialised JSON parses differently"
    );

    let w = world();
    for caller in &w.callers {
        for action in ACTIONS {
            let d = decide(w, &policy, &w.service, caller, action);
            assert_eq!(d, decide(w, &policy, &w.service, caller, action));
            let _ = decide(w, &w.service, &policy, caller, action);
        }
    }

    // The same policy with a Deny-everything statement allows nothing but
    // the administrator's override.
    let mut denied = value;
    let Some(statements) = denied.get_mut("Statement") else {
        return;
    };
    let deny = json!({"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"});
    match statements {
        Value::Array(a) => a.push(deny),
        one => *one = json!([one.clone(), deny]),
    }
    let Ok(denied) = Policy::parse(&denied.to_string()) else {
        return; // e.g. one statement too many or too large
    };
    for caller in &w.callers {
        for action in ACTIONS {
            for d in [
                decide(w, &denied, &w.service, caller, action),
                decide(w, &w.service, &denied, caller, action),
            ] {
                assert!(
                    !d.is_allowed() || d == Decision::Allow(Source::Administrator),
                    "{action} by {caller} allowed despite Deny *: {d}"
                );
            }
        }
    }
});
