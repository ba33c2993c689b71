//! The grant-constraint matcher (kmsd_policy grants). Inputs: a parent
//! grant's constraints, a child grant's constraints and a request context,
//! all drawn from the fuzz input. Asserts the matcher's laws: no
//! constraints always hold; a context meets Subset and Equals of itself,
//! also with its keys in another (ASCII) case; Equals met implies Subset of
//! the same pairs met; and the security property of passing grants on:
//! when `check_pass_on` accepts a child, every request the child's
//! constraints admit is admitted by the parent's too.
#![no_main]

use kms_fuzz::Input;
use kmsd_client::{EncryptionContext, GrantConstraints, Timestamp};
use kmsd_policy::{Grant, GrantOperation, Principal, check_pass_on, constraints_met};
use libfuzzer_sys::fuzz_target;

fn context(input: &mut Input) -> EncryptionContext {
    let mut c = EncryptionContext::new();
    for _ in 0..(input.u8() % 5) {
        c.insert(input.string(8), input.string(8));
    }
    c
}

fn constraints(input: &mut Input) -> Option<GrantConstraints> {
    let mode = input.u8();
    let mut g = GrantConstraints::default();
    if mode & 1 != 0 {
        g.encryption_context_subset = Some(context(input));
    }
    if mode & 2 != 0 {
        g.encryption_context_equals = Some(context(input));
    }
    (mode & 4 != 0).then_some(g)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let parent_c = constraints(&mut input);
    let child_c = constraints(&mut input);
    let request = context(&mut input);

    assert!(constraints_met(None, &request));
    let own_subset = GrantConstraints {
        encryption_context_subset: Some(request.clone()),
        ..Default::default()
    };
    let own_equals = GrantConstraints {
        encryption_context_equals: Some(request.clone()),
        ..Default::default()
    };
    assert!(constraints_met(Some(&own_subset), &request));
    assert!(constraints_met(Some(&own_equals), &request));
    // Keys compare without regard to case (when the case change keeps
    // them distinct).
    let upper: EncryptionContext = request
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect();
    if upper.len() == request.len() {
        let up = GrantConstraints {
            encryption_context_subset: Some(upper.clone()),
            ..Default::default()
        };
        assert!(constraints_met(Some(&up), &request), "key case mattered");
    }
    if let Some(c) = &parent_c
        && let Some(eq) = &c.encryption_context_equals
        && constraints_met(
            Some(&GrantConstraints {
                encryption_context_equals: Some(eq.clone()),
                ..Default::default()
            }),
            &request,
        )
    {
        let sub = GrantConstraints {
            encryption_context_subset: Some(eq.clone()),
            ..Default::default()
        };
        assert!(
            constraints_met(Some(&sub), &request),
            "Equals met but Subset not"
        );
    }

    let parent = Grant {
        grant_id: "0".repeat(64),
        key_id: "k".into(),
        name: None,
        grantee_principal: Principal::Uid(1000),
        retiring_principal: None,
        operations: vec![GrantOperation::CreateGrant, GrantOperation::Decrypt],
        constraints: parent_c.clone(),
        creation_date: Timestamp(0),
        issuing_principal: Principal::Uid(0),
    };
    if check_pass_on(&parent, &[GrantOperation::Decrypt], child_c.as_ref()).is_ok()
        && constraints_met(child_c.as_ref(), &request)
    {
        assert!(
            constraints_met(parent_c.as_ref(), &request),
            "a passed-on grant admits a request its parent refuses: parent {parent_c:?}, \
             child {child_c:?}, request {request:?}"
        );
    }
});
