//! Answers against the model's output shapes. One realistic answer per
//! served operation, every optional member set; its encoding is checked
//! member by member (name in the shape, JSON type, enum value, length and
//! range, required members), against the kmsd value it came from (nothing
//! lost, nothing kmsd-only leaked), and against the paginators. Every
//! output member of the model is either written by some answer or listed
//! in `NOT_WRITTEN` with the reason.

use super::samples::{T0, samples};
use super::{Model, model};
use crate::{encode_response, served_operations};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kmsd_client::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Output members of the model no answer writes, each with the reason.
/// `Shape.Member`.
const NOT_WRITTEN: &[(&str, &str)] = &[
    ("KeyMetadata.ValidTo", "no imported key material"),
    ("KeyMetadata.ExpirationModel", "no imported key material"),
    ("KeyMetadata.CustomKeyStoreId", "no custom key stores"),
    ("KeyMetadata.CloudHsmClusterId", "no custom key stores"),
    ("KeyMetadata.XksKeyConfiguration", "no custom key stores"),
    ("KeyMetadata.SigningAlgorithms", "no asymmetric keys"),
    ("KeyMetadata.KeyAgreementAlgorithms", "no asymmetric keys"),
    ("KeyMetadata.MacAlgorithms", "no HMAC keys"),
    (
        "KeyMetadata.MultiRegionConfiguration",
        "no multi-Region keys",
    ),
    (
        "KeyMetadata.CurrentKeyMaterialId",
        "kmsd numbers key versions and keeps no 64-hex key material id",
    ),
    (
        "RotationsListEntry.KeyMaterialId",
        "as CurrentKeyMaterialId",
    ),
    (
        "RotationsListEntry.KeyMaterialDescription",
        "no imported key material",
    ),
    ("RotationsListEntry.ImportState", "no imported key material"),
    (
        "RotationsListEntry.ExpirationModel",
        "no imported key material",
    ),
    ("RotationsListEntry.ValidTo", "no imported key material"),
    (
        "RotationsListEntry.KeyMaterialState",
        "kmsd's rotation entries do not say which one is current",
    ),
    (
        "DecryptResponse.CiphertextForRecipient",
        "no Nitro Enclaves recipients",
    ),
    ("DecryptResponse.KeyMaterialId", "as CurrentKeyMaterialId"),
    (
        "GenerateDataKeyResponse.CiphertextForRecipient",
        "no Nitro Enclaves recipients",
    ),
    (
        "GenerateDataKeyResponse.KeyMaterialId",
        "as CurrentKeyMaterialId",
    ),
    (
        "GenerateDataKeyWithoutPlaintextResponse.KeyMaterialId",
        "as CurrentKeyMaterialId",
    ),
    (
        "GenerateRandomResponse.CiphertextForRecipient",
        "no Nitro Enclaves recipients",
    ),
    (
        "ReEncryptResponse.SourceKeyMaterialId",
        "as CurrentKeyMaterialId",
    ),
    (
        "ReEncryptResponse.DestinationKeyMaterialId",
        "as CurrentKeyMaterialId",
    ),
    (
        "ListKeyPoliciesResponse.NextMarker",
        "a key has one policy: never a second page",
    ),
];

/// kmsd members the encoder must not write (`Shape.Member`, kmsd's names).
const KMSD_ONLY: &[&str] = &[
    "KeyMetadata.CurrentKeyVersion",
    "RotationsListEntry.KeyVersion",
];

/// Members the encoder writes that kmsd's value does not have as such.
const DERIVED: &[&str] = &["KeyMetadata.CustomerMasterKeySpec"];

fn encoded(r: &Response) -> Value {
    let body = encode_response(r);
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON: {e}: {}",
            r.name(),
            String::from_utf8_lossy(&body)
        )
    })
}

/// kmsd's own JSON of the value inside `r` (its serde form, as kmsctl
/// prints it before stripping nulls).
fn kmsd_json(r: &Response) -> Value {
    match serde_json::to_value(r).expect("responses serialize") {
        Value::Object(mut tagged) => tagged.remove(r.name()).expect("externally tagged"),
        other => panic!("{}: {other}", r.name()),
    }
}

#[test]
fn every_served_operation_has_a_sample() {
    let ours: BTreeSet<&str> = samples().iter().map(Response::name).collect();
    let served: BTreeSet<&str> = served_operations().collect();
    assert_eq!(ours, served, "add a sample for each served operation");
    assert_eq!(samples().len(), served.len(), "one sample per operation");
}

/// Checks an encoded value against a model shape, recording what it saw.
struct Checker<'m> {
    m: &'m Model,
    errors: Vec<String>,
    written: BTreeSet<String>,
    members_checked: usize,
}

impl Checker<'_> {
    fn err(&mut self, path: &str, what: String) {
        self.errors.push(format!("{path}: {what}"));
    }

    fn bounds(&mut self, shape: &str, n: usize, unit: &str, path: &str) {
        let s = self.m.shape(shape);
        if let Some(min) = s["min"].as_u64().filter(|min| (n as u64) < *min) {
            self.err(path, format!("{n} {unit}, the model's minimum is {min}"));
        }
        if let Some(max) = s["max"].as_u64().filter(|max| (n as u64) > *max) {
            self.err(path, format!("{n} {unit}, the model's maximum is {max}"));
        }
    }

    fn check(&mut self, shape: &str, v: &Value, path: &str) {
        let s = self.m.shape(shape);
        match (self.m.kind(shape), v) {
            ("structure", Value::Object(obj)) => {
                for (k, x) in obj {
                    let p = format!("{path}.{k}");
                    match self.m.member_shape(shape, k) {
                        Some(ms) => {
                            self.members_checked += 1;
                            self.written.insert(format!("{shape}.{k}"));
                            self.check(ms, x, &p);
                        }
                        None => self.err(&p, format!("{shape} has no member {k}")),
                    }
                }
                for r in self.m.required(shape) {
                    if !obj.contains_key(r) {
                        self.err(path, format!("required member {r} of {shape} missing"));
                    }
                }
            }
            ("list", Value::Array(items)) => {
                let item = s["member"]["shape"].as_str().expect("list member");
                for (i, x) in items.iter().enumerate() {
                    self.check(item, x, &format!("{path}[{i}]"));
                }
                self.bounds(shape, items.len(), "items", path);
            }
            ("map", Value::Object(obj)) => {
                let (ks, vs) = (
                    s["key"]["shape"].as_str().expect("map key"),
                    s["value"]["shape"].as_str().expect("map value"),
                );
                for (k, x) in obj {
                    self.check(ks, &Value::String(k.clone()), &format!("{path}.<key>"));
                    self.check(vs, x, &format!("{path}.{k}"));
                }
            }
            ("string", Value::String(text)) => {
                if let Some(values) = self.m.enum_values(shape)
                    && !values.contains(&text.as_str())
                {
                    self.err(
                        path,
                        format!("'{text}' is not in {shape}'s enum {values:?}"),
                    );
                }
                self.bounds(shape, text.chars().count(), "characters", path);
            }
            ("integer" | "long", Value::Number(n)) => match n.as_i64() {
                Some(i) => {
                    if let Some(min) = s["min"].as_i64().filter(|min| i < *min) {
                        self.err(path, format!("{i} is below the model's minimum {min}"));
                    }
                    if let Some(max) = s["max"].as_i64().filter(|max| i > *max) {
                        self.err(path, format!("{i} is above the model's maximum {max}"));
                    }
                }
                None => self.err(path, format!("{n} is not an integer")),
            },
            ("boolean", Value::Bool(_)) => {}
            // awsJson1_1: epoch seconds, a JSON number (never a string).
            ("timestamp", Value::Number(_)) => {}
            ("blob", Value::String(text)) => match B64.decode(text) {
                Ok(bytes) => self.bounds(shape, bytes.len(), "bytes", path),
                Err(e) => self.err(path, format!("not padded standard base64: {e}")),
            },
            (kind, v) => self.err(path, format!("{shape} is a {kind}, the answer has {v}")),
        }
    }
}

#[test]
fn answers_match_the_model_output_shapes() {
    let m = model();
    let mut c = Checker {
        m,
        errors: Vec::new(),
        written: BTreeSet::new(),
        members_checked: 0,
    };
    for r in samples() {
        let v = encoded(&r);
        match m.output(r.name()) {
            Some(shape) => c.check(shape, &v, r.name()),
            None => assert_eq!(v, serde_json::json!({}), "{} has no output", r.name()),
        }
    }
    assert!(
        c.errors.is_empty(),
        "answers break the model:\n{}",
        c.errors.join("\n")
    );

    let listed: BTreeSet<String> = NOT_WRITTEN.iter().map(|(p, _)| p.to_string()).collect();
    // Every output member of the served operations, recursively: written,
    // or listed with its reason.
    let mut all = BTreeSet::new();
    let mut stack: Vec<String> = served_operations()
        .filter_map(|op| m.output(op).map(str::to_string))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(shape) = stack.pop() {
        if !seen.insert(shape.clone()) {
            continue;
        }
        let s = m.shape(&shape);
        match m.kind(&shape) {
            "structure" => {
                for (k, mem) in s["members"].as_object().expect("members") {
                    let qualified = format!("{shape}.{k}");
                    // The members of a member not written are not either.
                    if !NOT_WRITTEN.iter().any(|(p, _)| *p == qualified) {
                        stack.push(mem["shape"].as_str().expect("shape").to_string());
                    }
                    all.insert(qualified);
                }
            }
            "list" => stack.push(s["member"]["shape"].as_str().expect("member").to_string()),
            _ => {}
        }
    }
    let missing: Vec<&String> = all
        .iter()
        .filter(|p| !c.written.contains(*p) && !listed.contains(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "model output members no answer writes and NOT_WRITTEN does not list: {missing:?}"
    );
    let stale: Vec<&String> = listed
        .iter()
        .filter(|p| !all.contains(*p) || c.written.contains(*p))
        .collect();
    assert!(
        stale.is_empty(),
        "NOT_WRITTEN lists members that are written or gone: {stale:?}"
    );
    eprintln!(
        "{} output members checked in {} answers; {} of {} model output members written, {} not (NOT_WRITTEN)",
        c.members_checked,
        samples().len(),
        c.written.len(),
        all.len(),
        listed.len()
    );
}

/// The AWS JSON against kmsd's own JSON of the same value: equal member
/// for member, timestamps as the same instant, nulls absent, kmsd-only
/// members dropped, derived members the only extra ones.
fn compare(
    m: &Model,
    shape: &str,
    kmsd: &Value,
    aws: &Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    match (m.kind(shape), kmsd, aws) {
        ("structure", Value::Object(k), Value::Object(a)) => {
            for (name, kv) in k {
                let p = format!("{path}.{name}");
                let qualified = format!("{shape}.{name}");
                if KMSD_ONLY.contains(&qualified.as_str()) || kv.is_null() {
                    if a.contains_key(name) {
                        errors.push(format!("{p}: written, should be left out"));
                    }
                    continue;
                }
                match (m.member_shape(shape, name), a.get(name)) {
                    (Some(ms), Some(av)) => compare(m, ms, kv, av, &p, errors),
                    (None, _) => errors.push(format!(
                        "{p}: kmsd member not in {shape}, and not in KMSD_ONLY"
                    )),
                    (_, None) => errors.push(format!("{p}: lost")),
                }
            }
            for name in a.keys().filter(|n| !k.contains_key(*n)) {
                if !DERIVED.contains(&format!("{shape}.{name}").as_str()) {
                    errors.push(format!(
                        "{path}.{name}: written, but kmsd's value has no such member"
                    ));
                }
            }
        }
        ("list", Value::Array(k), Value::Array(a)) if k.len() == a.len() => {
            let item = m.shape(shape)["member"]["shape"].as_str().expect("member");
            for (i, (kv, av)) in k.iter().zip(a).enumerate() {
                compare(m, item, kv, av, &format!("{path}[{i}]"), errors);
            }
        }
        ("timestamp", Value::String(iso), Value::Number(n)) => {
            let t = Timestamp::parse_iso8601(iso).map(|t| t.0);
            if t != n.as_u64() {
                errors.push(format!("{path}: {iso} written as {n}"));
            }
        }
        (_, k, a) if k == a => {}
        (_, k, a) => errors.push(format!("{path}: kmsd {k} written as {a}")),
    }
}

#[test]
fn answers_keep_kmsd_values_and_drop_kmsd_only_members() {
    let m = model();
    let mut errors = Vec::new();
    for r in samples() {
        let (k, a) = (kmsd_json(&r), encoded(&r));
        match m.output(r.name()) {
            Some(shape) => compare(m, shape, &k, &a, r.name(), &mut errors),
            None => assert_eq!(k, serde_json::json!({}), "{}", r.name()),
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    // The two kmsd-only members are really in the samples, and really gone.
    let d = encoded(
        &samples()
            .into_iter()
            .find(|r| r.name() == "DescribeKey")
            .unwrap(),
    );
    assert!(d["KeyMetadata"].get("CurrentKeyVersion").is_none());
    assert_eq!(d["KeyMetadata"]["CreationDate"], T0.0);
    assert_eq!(
        d["KeyMetadata"]["CustomerMasterKeySpec"],
        "SYMMETRIC_DEFAULT"
    );
}

#[test]
fn paginated_answers_carry_the_paginator_members() {
    let m = model();
    let pages = m.paginators["pagination"].as_object().expect("pagination");
    let samples: BTreeMap<&str, Value> = samples().iter().map(|r| (r.name(), encoded(r))).collect();
    let mut checked = 0;
    for (op, p) in pages {
        let Some(v) = samples.get(op.as_str()) else {
            assert!(
                !crate::is_served(op),
                "{op} is paginated and served: needs a sample"
            );
            continue;
        };
        let (result, token, more) = (
            p["result_key"].as_str().expect("result_key"),
            p["output_token"].as_str().expect("output_token"),
            p["more_results"].as_str().expect("more_results"),
        );
        assert!(v[result].is_array(), "{op}: {result}");
        let truncated = v[more]
            .as_bool()
            .unwrap_or_else(|| panic!("{op}: {more} always written"));
        assert_eq!(
            v.get(token).is_some(),
            truncated,
            "{op}: {token} exactly when {more}"
        );
        // The request side: the marker and limit members are read.
        let members = crate::inputs::members(op).expect("served");
        for k in [&p["input_token"], &p["limit_key"]] {
            let k = k.as_str().expect("key");
            assert!(members.iter().any(|mm| mm.name == k), "{op}: input {k}");
        }
        checked += 1;
    }
    assert_eq!(checked, 7, "the seven paginated operations kmsd serves");
}
