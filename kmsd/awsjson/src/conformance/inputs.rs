//! Requests against the model's input shapes. The decoder's member table
//! (`crate::inputs`) must have the model's members, types, required flags
//! and enum values; requests generated from it decode, keep every value
//! kmsd takes, and fail as AWS fails when a member is missing, of the
//! wrong type, or asks for what kmsd does not do.

use super::{Model, model};
use crate::inputs::{self, Accept, Member, Need, Role, Ty};
use crate::{AwsError, Decoded, decode_request, served_operations};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use kmsd_client::{DataKeySpec, KeySpec, KeyUsage};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

fn table(op: &str) -> &'static [Member] {
    inputs::members(op).unwrap_or_else(|| panic!("{op} is served and has no input table"))
}

fn input_shape(op: &str) -> &'static str {
    model()
        .input(op)
        .unwrap_or_else(|| panic!("{op} has no input in the model"))
}

fn decode(op: &str, body: &Value) -> Result<Decoded, AwsError> {
    decode_request(&format!("TrentService.{op}"), body.to_string().as_bytes())
}

/// kmsd's JSON of the decoded request (its serde form).
fn kmsd_json(d: &Decoded) -> Value {
    let Decoded::Kms { request, .. } = d;
    match serde_json::to_value(request).expect("requests serialize") {
        Value::Object(mut tagged) => tagged.remove(request.name()).expect("externally tagged"),
        other => panic!("{other}"),
    }
}

// ---- the table against the model ----

fn same_type(m: &Model, ty: &Ty, shape: &str, path: &str, errors: &mut Vec<String>) {
    let kind = m.kind(shape);
    let values = m.enum_values(shape);
    match (ty, kind) {
        (Ty::Str, "string") if values.is_none() => {}
        (Ty::Enum(ours), "string") => {
            let ours: BTreeSet<&str> = ours.iter().copied().collect();
            let theirs: BTreeSet<&str> = values.unwrap_or_default().into_iter().collect();
            if ours != theirs {
                errors.push(format!(
                    "{path}: enum {ours:?}, the model's {shape} is {theirs:?}"
                ));
            }
        }
        (Ty::Int, "integer" | "long") | (Ty::Bool, "boolean") | (Ty::Blob, "blob") => {}
        (Ty::Map, "map") => {
            let s = m.shape(shape);
            for part in ["key", "value"] {
                same_type(
                    m,
                    &Ty::Str,
                    s[part]["shape"].as_str().expect("map"),
                    path,
                    errors,
                );
            }
        }
        (Ty::List(item), "list") => {
            let s = m.shape(shape)["member"]["shape"].as_str().expect("list");
            same_type(m, item, s, &format!("{path}[]"), errors);
        }
        (Ty::Struct(members), "structure") => same_members(m, members, shape, path, errors),
        _ => errors.push(format!(
            "{path}: the table's type does not match {shape} ({kind})"
        )),
    }
}

fn same_members(m: &Model, members: &[Member], shape: &str, path: &str, errors: &mut Vec<String>) {
    let ours: BTreeSet<&str> = members.iter().map(|mm| mm.name).collect();
    let theirs: BTreeSet<&str> = m.shape(shape)["members"]
        .as_object()
        .expect("members")
        .keys()
        .map(String::as_str)
        .collect();
    if ours != theirs {
        errors.push(format!(
            "{path}: members differ from {shape}: only in the table {:?}, only in the model {:?}",
            ours.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&ours).collect::<Vec<_>>()
        ));
    }
    let required = m.required(shape);
    for mm in members {
        let p = format!("{path}.{}", mm.name);
        let Some(ms) = m.member_shape(shape, mm.name) else {
            continue;
        };
        same_type(m, &mm.ty, ms, &p, errors);
        let model_requires = required.contains(&mm.name);
        if model_requires != (mm.need == Need::Model) {
            errors.push(format!(
                "{p}: model required = {model_requires}, table {:?}",
                mm.need
            ));
        }
        let allowed = |v: &str| m.enum_values(ms).is_some_and(|e| e.contains(&v));
        match &mm.role {
            Role::PassOnly(ok) if !ok.iter().all(|v| allowed(v)) => {
                errors.push(format!("{p}: {ok:?} not all in the model's enum"))
            }
            Role::Only(Accept::Value(v)) if !allowed(v) => {
                errors.push(format!("{p}: default {v} not in the model's enum"))
            }
            Role::Only(Accept::False) if !matches!(mm.ty, Ty::Bool) => {
                errors.push(format!("{p}: false for a non-boolean"))
            }
            Role::DryRun if mm.name != "DryRun" || !matches!(mm.ty, Ty::Bool) => {
                errors.push(format!("{p}: DryRun role on another member"))
            }
            Role::Drop("") => errors.push(format!("{p}: dropped without a reason")),
            _ => {}
        }
    }
}

#[test]
fn the_input_table_matches_the_model() {
    let m = model();
    let mut errors = Vec::new();
    let mut members = 0;
    for op in served_operations() {
        let t = table(op);
        members += t.len();
        same_members(m, t, input_shape(op), op, &mut errors);
    }
    assert!(
        errors.is_empty(),
        "the input table differs from the model:\n{}",
        errors.join("\n")
    );
    eprintln!(
        "{members} input members of {} operations match the model",
        served_operations().count()
    );
}

#[test]
fn kmsd_takes_the_enum_values_the_table_passes_on() {
    let names = |all: &[&'static str]| all.iter().copied().collect::<BTreeSet<_>>();
    let only =
        |op: &str, name: &str| match &table(op).iter().find(|mm| mm.name == name).unwrap().role {
            Role::PassOnly(ok) => names(ok),
            _ => panic!("{op}.{name} is PassOnly"),
        };
    assert_eq!(
        only("CreateKey", "KeySpec"),
        KeySpec::ALL.iter().map(|k| k.as_str()).collect()
    );
    assert_eq!(
        only("CreateKey", "KeyUsage"),
        KeyUsage::ALL.iter().map(|k| k.as_str()).collect()
    );
    assert_eq!(
        names(inputs::DATA_KEY_SPEC),
        DataKeySpec::ALL.iter().map(|k| k.as_str()).collect()
    );
}

// ---- generated requests ----

/// A valid value of `ty` kmsd takes; `None` for a member to leave out.
fn sample(m: &Model, mm: &Member, shape: &str) -> Option<Value> {
    let ms = m
        .member_shape(shape, mm.name)
        .expect("checked by the table test");
    match &mm.role {
        Role::Only(Accept::Absent) => None,
        Role::Only(Accept::False) => Some(json!(false)),
        Role::Only(Accept::Value(v)) => Some(json!(v)),
        Role::PassOnly(ok) => Some(json!(ok[0])),
        Role::DryRun => Some(json!(true)),
        Role::Pass | Role::Drop(_) => Some(value(m, &mm.ty, ms, mm.name)),
    }
}

fn value(m: &Model, ty: &Ty, shape: &str, name: &str) -> Value {
    match ty {
        Ty::Str => json!(format!("{name}-sample")),
        // The model's minimum, or a small valid number.
        Ty::Int => json!(m.shape(shape)["min"].as_i64().unwrap_or(1).max(1) + 1),
        Ty::Bool => json!(true),
        Ty::Blob => json!(B64.encode((1..=24u8).collect::<Vec<_>>())),
        Ty::Enum(values) => json!(values[0]),
        Ty::Map => json!({"purpose": "test", "team": "storage"}),
        Ty::List(item) => {
            let ms = m.shape(shape)["member"]["shape"].as_str().expect("list");
            match item {
                Ty::Enum(values) => json!(values.iter().take(2).collect::<Vec<_>>()),
                _ => json!([
                    value(m, item, ms, name),
                    value(m, item, ms, &format!("{name}2"))
                ]),
            }
        }
        Ty::Struct(members) => Value::Object(
            members
                .iter()
                .filter_map(|mm| sample(m, mm, shape).map(|v| (mm.name.to_string(), v)))
                .collect(),
        ),
    }
}

/// A request with every member kmsd takes set (`required_only`: only
/// the required ones).
fn request(op: &str, required_only: bool) -> Map<String, Value> {
    let (m, shape) = (model(), input_shape(op));
    table(op)
        .iter()
        .filter(|mm| !required_only || mm.need != Need::Optional)
        .filter_map(|mm| sample(m, mm, shape).map(|v| (mm.name.to_string(), v)))
        .collect()
}

fn expect_err(op: &str, body: &Value, name: &str) -> AwsError {
    match decode(op, body) {
        Ok(_) => panic!("{op}: {body} decoded; expected {name}"),
        Err(e) => {
            assert_eq!(e.name, name, "{op}: {body}: {e}");
            assert_eq!(e.status, 400);
            e
        }
    }
}

#[test]
fn full_requests_decode_and_keep_every_value_kmsd_takes() {
    let mut kept = 0;
    for op in served_operations() {
        let body = request(op, false);
        let d = decode(op, &Value::Object(body.clone()))
            .unwrap_or_else(|e| panic!("{op}: {e}: {}", Value::Object(body.clone())));
        let Decoded::Kms { request, dry_run } = &d;
        assert_eq!(request.name(), op);
        let has_dry_run = table(op).iter().any(|mm| matches!(mm.role, Role::DryRun));
        assert_eq!(*dry_run, has_dry_run, "{op}: DryRun is true in the request");
        let k = kmsd_json(&d);
        let k = k.as_object().expect("a struct");
        let passed: BTreeSet<&str> = table(op)
            .iter()
            .filter(|mm| matches!(mm.role, Role::Pass | Role::PassOnly(_)))
            .map(|mm| mm.name)
            .collect();
        let fields: BTreeSet<&str> = k.keys().map(String::as_str).collect();
        assert_eq!(
            fields, passed,
            "{op}: kmsd's fields are the members passed on"
        );
        for name in passed {
            assert_eq!(k[name], body[name], "{op}.{name} kept");
            kept += 1;
        }
    }
    eprintln!("{kept} request members decoded and kept");
}

#[test]
fn requests_with_only_the_required_members_decode() {
    for op in served_operations() {
        let body = Value::Object(request(op, true));
        if let Err(e) = decode(op, &body) {
            panic!("{op}: {body}: {e}");
        }
    }
}

#[test]
fn each_missing_required_member_is_named_as_aws_names_it() {
    let mut checked = 0;
    for op in served_operations() {
        for mm in table(op).iter().filter(|mm| mm.need != Need::Optional) {
            let mut body = request(op, false);
            body.remove(mm.name);
            let e = expect_err(op, &Value::Object(body), "ValidationException");
            let mut camel = mm.name.to_string();
            camel[..1].make_ascii_lowercase();
            assert_eq!(
                e.message,
                format!(
                    "1 validation error detected: Value null at '{camel}' failed to satisfy \
                     constraint: Member must not be null"
                ),
                "{op}"
            );
            checked += 1;
        }
    }
    // 39 today: the count is here to notice a change.
    assert_eq!(checked, 39);
}

/// A JSON value of another type than `ty`.
fn wrong(ty: &Ty) -> Value {
    match ty {
        Ty::Str | Ty::Enum(_) | Ty::Blob => json!(12),
        Ty::Int => json!("12"),
        Ty::Bool => json!("true"),
        Ty::List(_) | Ty::Map | Ty::Struct(_) => json!("x"),
    }
}

#[test]
fn each_member_of_the_wrong_type_is_a_serialization_error_naming_it() {
    let mut checked = 0;
    for op in served_operations() {
        for mm in table(op) {
            let mut body = request(op, false);
            body.insert(mm.name.to_string(), wrong(&mm.ty));
            let e = expect_err(op, &Value::Object(body), "SerializationException");
            assert!(e.message.contains(&format!("'{}'", mm.name)), "{op}: {e}");
            checked += 1;
        }
    }
    assert!(checked >= 100, "{checked}");
}

#[test]
fn enum_members_take_what_kmsd_does_and_refuse_the_rest() {
    let m = model();
    let mut checked = 0;
    for op in served_operations() {
        for mm in table(op) {
            let Ty::Enum(values) = mm.ty else { continue };
            for v in values {
                let mut body = request(op, true);
                body.insert(mm.name.to_string(), json!(v));
                let body = Value::Object(body);
                let takes = match &mm.role {
                    Role::Pass | Role::Drop(_) => true,
                    Role::PassOnly(ok) => ok.contains(v),
                    Role::Only(Accept::Value(d)) => d == v,
                    _ => unreachable!("{op}.{}", mm.name),
                };
                match (takes, decode(op, &body)) {
                    (true, Ok(_)) => {}
                    (false, Err(e)) if e.name == "UnsupportedOperationException" => {
                        assert!(e.message.contains(mm.name) && e.message.contains(v), "{e}")
                    }
                    (_, Err(e)) => panic!("{op}.{} = {v}: {e}", mm.name),
                    (false, Ok(_)) => panic!("{op}.{} = {v} decoded; kmsd cannot do it", mm.name),
                }
                checked += 1;
            }
            let mut body = request(op, true);
            body.insert(mm.name.to_string(), json!("NOT_A_VALUE"));
            let e = expect_err(op, &Value::Object(body), "ValidationException");
            let shape = m.member_shape(input_shape(op), mm.name).unwrap();
            let mut camel = mm.name.to_string();
            camel[..1].make_ascii_lowercase();
            assert!(
                e.message.starts_with(&format!(
                    "1 validation error detected: Value 'NOT_A_VALUE' at '{camel}' failed to \
                     satisfy constraint: Member must satisfy enum value set: ["
                )),
                "{op} ({shape}): {e}"
            );
        }
    }
    assert!(checked >= 40, "{checked}");
}

#[test]
fn members_for_what_kmsd_lacks_are_refused_unless_default() {
    let m = model();
    let mut checked = 0;
    for op in served_operations() {
        let shape = input_shape(op);
        for mm in table(op) {
            let refused = match &mm.role {
                Role::Only(Accept::Absent) => {
                    value(m, &mm.ty, m.member_shape(shape, mm.name).unwrap(), mm.name)
                }
                Role::Only(Accept::False) => json!(true),
                _ => continue,
            };
            let mut body = request(op, true);
            body.insert(mm.name.to_string(), refused);
            let e = expect_err(op, &Value::Object(body), "UnsupportedOperationException");
            assert!(e.message.contains(mm.name), "{e}");
            checked += 1;
        }
    }
    // CreateKey: CustomKeyStoreId, XksKeyId, MultiRegion; Decrypt,
    // GenerateDataKey, GenerateRandom: Recipient; GenerateRandom:
    // CustomKeyStoreId.
    assert_eq!(checked, 7);
}
