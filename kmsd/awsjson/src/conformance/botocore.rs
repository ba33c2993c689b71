//! Against botocore itself (the code under the aws CLI and boto3), run
//! through `python3`: it parses every sample answer and some errors as a
//! client does, and serializes the requests of the model's examples
//! (`examples-1.json`) as a client sends them, which are then decoded here.

use super::samples::samples;
use crate::inputs::{self, Role};
use crate::{Decoded, decode_request, encode_error, encode_response, is_served};
use kmsd_client::{ErrorKind, Response};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const SCRIPT: &str = r#"
import base64, datetime, json, os, sys
import botocore, botocore.session
from botocore import parsers, serialize

model = botocore.session.get_session().get_service_model("kms")
parser = parsers.create_parser("json")
given = json.load(sys.stdin)

def plain(v):
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items() if k != "ResponseMetadata"}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, datetime.datetime):
        return {"datetime": v.timestamp()}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": base64.b64encode(v).decode()}
    return v

out = {"responses": [], "errors": [], "requests": []}
for r in given["responses"]:
    shape = model.operation_model(r["op"]).output_shape
    http = {"body": r["body"].encode(), "headers": {"x-amzn-requestid": "r"}, "status_code": 200}
    out["responses"].append({"op": r["op"], "parsed": plain(parser.parse(http, shape))})
for e in given["errors"]:
    http = {"body": e["body"].encode(), "headers": {}, "status_code": e["status"]}
    out["errors"].append(parser.parse(http, None)["Error"])
path = os.path.join(os.path.dirname(botocore.__file__), "data/kms/2014-11-01/examples-1.json")
serializer = serialize.create_serializer("json")
for op, examples in json.load(open(path))["examples"].items():
    for ex in examples:
        req = serializer.serialize_to_request(ex.get("input") or {}, model.operation_model(op))
        body = req["body"]
        out["requests"].append({
            "op": op,
            "target": req["headers"]["X-Amz-Target"],
            "body": body.decode() if isinstance(body, bytes) else body,
        })
json.dump(out, sys.stdout)
"#;

fn botocore(input: &Value) -> Value {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the conformance tests need botocore: pip install boto3)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "botocore failed (pip install boto3?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python3 prints JSON")
}

/// Our JSON against botocore's parse of it: timestamps as the same
/// instant, blobs as the same bytes, everything else equal. botocore
/// keeps only modeled members, so a member it does not know shows here.
fn same(ours: &Value, parsed: &Value, path: &str, errors: &mut Vec<String>) {
    match (ours, parsed) {
        (Value::Object(a), Value::Object(b))
            if !b.contains_key("datetime") && !b.contains_key("bytes") =>
        {
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => same(x, y, &format!("{path}.{k}"), errors),
                    _ => errors.push(format!(
                        "{path}.{k}: ours {:?}, botocore's {:?}",
                        a.get(k),
                        b.get(k)
                    )),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same(x, y, &format!("{path}[{i}]"), errors);
            }
        }
        (Value::Number(n), Value::Object(b)) if b.contains_key("datetime") => {
            if n.as_f64() != b["datetime"].as_f64() {
                errors.push(format!("{path}: {n} parsed as {}", b["datetime"]));
            }
        }
        (Value::String(s), Value::Object(b)) if b.contains_key("bytes") => {
            if b["bytes"] != *s {
                errors.push(format!("{path}: blob {s} parsed as {}", b["bytes"]));
            }
        }
        (a, b) if a == b => {}
        (a, b) => errors.push(format!("{path}: ours {a}, botocore's {b}")),
    }
}

#[test]
fn botocore_parses_our_answers_and_errors_and_its_requests_decode() {
    let responses: Vec<(Response, Value)> = samples()
        .into_iter()
        .map(|r| {
            let body = encode_response(&r);
            let v: Value = serde_json::from_slice(&body).expect("JSON");
            (r, v)
        })
        .collect();
    let errors = [
        (
            ErrorKind::NotFoundException,
            "Key 'arn:aws:kms:eu-west-1:111122223333:key/x' does not exist",
        ),
        (ErrorKind::KMSInternalException, "internal"),
        (ErrorKind::ThrottlingException, "slow down"),
    ];
    let mut error_bodies: Vec<(u16, String)> = errors
        .iter()
        .map(|(k, m)| {
            let (status, body) = encode_error(*k, m);
            (status, String::from_utf8(body).expect("UTF-8"))
        })
        .collect();
    let (status, body) = crate::AwsError::dry_run().encode();
    error_bodies.push((status, String::from_utf8(body).expect("UTF-8")));
    let out = botocore(&json!({
        "responses": responses
            .iter()
            .map(|(r, v)| json!({"op": r.name(), "body": v.to_string()}))
            .collect::<Vec<_>>(),
        "errors": error_bodies
            .iter()
            .map(|(s, b)| json!({"status": s, "body": b}))
            .collect::<Vec<_>>(),
    }));

    // Answers: botocore reads back exactly what we wrote.
    let mut errs = Vec::new();
    for ((r, ours), parsed) in responses
        .iter()
        .zip(out["responses"].as_array().expect("list"))
    {
        assert_eq!(parsed["op"], r.name());
        same(ours, &parsed["parsed"], r.name(), &mut errs);
    }
    assert!(
        errs.is_empty(),
        "botocore reads our answers otherwise:\n{}",
        errs.join("\n")
    );

    // Errors: the code and the message as a client sees them.
    let parsed = out["errors"].as_array().expect("list");
    for ((kind, message), p) in errors.iter().zip(parsed) {
        assert_eq!(p["Code"], kind.name());
        assert_eq!(p["Message"], *message);
    }
    assert_eq!(parsed[3]["Code"], "DryRunOperationException");

    // Requests as botocore sends the model's examples.
    let mut decoded = 0;
    let mut refused = Vec::new();
    for r in out["requests"].as_array().expect("list") {
        let op = r["op"].as_str().expect("op");
        let body = r["body"].as_str().expect("body");
        let target = r["target"].as_str().expect("target");
        assert_eq!(target, format!("TrentService.{op}"));
        match decode_request(target, body.as_bytes()) {
            Ok(d) => {
                assert!(is_served(op));
                kept(op, body, &d);
                decoded += 1;
            }
            Err(e) if !is_served(op) => assert_eq!(e.name, "UnsupportedOperationException"),
            Err(e) => {
                assert_eq!(e.name, "UnsupportedOperationException", "{op} {body}: {e}");
                refused.push(format!("{op} {body}"));
            }
        }
    }
    // The CreateKey examples for asymmetric, HMAC, multi-Region, imported
    // and CloudHSM keys; everything else decodes.
    assert_eq!(refused.len(), 6, "{refused:#?}");
    assert!(
        refused.iter().all(|r| r.starts_with("CreateKey ")),
        "{refused:#?}"
    );
    assert_eq!(decoded, 34);
}

/// Every member kmsd takes is in the decoded request with the same value.
fn kept(op: &str, body: &str, d: &Decoded) {
    let Decoded::Kms { request, .. } = d;
    let sent: Value = serde_json::from_str(body).expect("botocore sends JSON");
    let k = serde_json::to_value(request).expect("serializes");
    let k = &k[op];
    for mm in inputs::members(op).expect("served") {
        if let (Role::Pass | Role::PassOnly(_), Some(v)) = (&mm.role, sent.get(mm.name)) {
            assert_eq!(&k[mm.name], v, "{op}.{}", mm.name);
        }
    }
}
