//! Requests: `X-Amz-Target` and a JSON body to a kmsd [`Request`].
//!
//! In AWS's order: the target names an operation (else
//! `UnknownOperationException`, or `UnsupportedOperationException` for an
//! AWS operation kmsd lacks); the body is a JSON object whose members have
//! the model's JSON types (else `SerializationException`, naming the
//! member); required members are present and enum values in the model's
//! set (else one `ValidationException` listing every violation, worded as
//! AWS words it); members for features kmsd lacks carry their default
//! (else `UnsupportedOperationException`). Sizes and ranges are kmsd's own
//! checks, the same on both wires.

use crate::error::AwsError;
use crate::inputs::{self, Accept, Member, Need, Role, Ty};
use crate::operations::{self, AWS_OPERATIONS, KMSD_OPERATIONS};
use crate::{Decoded, TARGET_PREFIX};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

/// Reads one AWS JSON 1.1 request. `target` is the `X-Amz-Target` header
/// (`TrentService.Encrypt`); `body` the request body, `{}` or empty for
/// no input. Members the model does not have are ignored; `null` reads as
/// absent.
pub fn decode_request(target: &str, body: &[u8]) -> Result<Decoded, AwsError> {
    let op = operation(target)?;
    let mut body = Body::parse(body)?;
    let members = inputs::members(op).unwrap_or(&[]);
    let mut check = Check::new(op);
    check.structure(members, body.object(), &Path::default())?;
    let dry_run = check.finish()?;
    let request = operations::deserialize(op, &body.0)
        .expect("a served operation is a kmsd operation")
        .map_err(|e| serde_error(op, &e))?;
    Ok(Decoded::Kms { request, dry_run })
}

/// The served operation `target` names.
fn operation(target: &str) -> Result<&'static str, AwsError> {
    let name = target.strip_prefix(TARGET_PREFIX);
    let Some(op) = name.and_then(|n| AWS_OPERATIONS.into_iter().find(|op| *op == n)) else {
        let shown = clip(target);
        return Err(AwsError::unknown_operation(match name {
            Some(n) if KMSD_OPERATIONS.contains(&n) => format!(
                "{n} is kmsd's own operation, not part of the AWS KMS API: it is served on \
                 kmsd's socket (kmsctl), not on the AWS endpoint"
            ),
            Some(_) => format!("TrentService has no operation '{shown}'"),
            None => format!(
                "X-Amz-Target '{shown}' is not an operation of this service; AWS KMS \
                 operations are TrentService.<Operation>"
            ),
        }));
    };
    if !operations::is_served(op) {
        return Err(AwsError::unsupported(format!(
            "kmsd does not support the {op} operation: {}",
            operations::unsupported_reason(op)
        )));
    }
    Ok(op)
}

/// At most 128 characters of a caller's string, for a message.
fn clip(s: &str) -> String {
    match s.char_indices().nth(128) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

/// The parsed body, an object. Its strings are wiped when it is dropped:
/// a base64 `Plaintext` is one of them.
struct Body(Value);

impl Body {
    fn parse(bytes: &[u8]) -> Result<Body, AwsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Value::Object(Map::new())));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            AwsError::serialization(format!("The request body is not valid JSON: {e}"))
        })?;
        let body = Body(v);
        if !body.0.is_object() {
            return Err(AwsError::serialization(format!(
                "The request body must be a JSON object, not {}",
                kind(&body.0)
            )));
        }
        Ok(body)
    }

    fn object(&mut self) -> &mut Map<String, Value> {
        self.0.as_object_mut().expect("checked in parse")
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(members) => members.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// Where a value sits, in the body's terms (`Tags[0].TagKey`) and in
/// AWS's validation messages (`tags.1.member.tagKey`).
#[derive(Clone, Default)]
struct Path {
    wire: String,
    aws: String,
}

impl Path {
    fn member(&self, name: &str) -> Path {
        let mut camel = name.to_string();
        if let Some(first) = camel.get_mut(..1) {
            first.make_ascii_lowercase();
        }
        let join = |base: &str, m: &str| {
            if base.is_empty() {
                m.to_string()
            } else {
                format!("{base}.{m}")
            }
        };
        Path {
            wire: join(&self.wire, name),
            aws: join(&self.aws, &camel),
        }
    }

    fn index(&self, i: usize) -> Path {
        Path {
            wire: format!("{}[{i}]", self.wire),
            aws: format!("{}.{}.member", self.aws, i + 1),
        }
    }

    fn key(&self, k: &str) -> Path {
        Path {
            wire: format!("{}.{}", self.wire, clip(k)),
            aws: format!("{}.{}", self.aws, clip(k)),
        }
    }
}

/// What one body breaks, gathered in one walk.
struct Check {
    op: &'static str,
    validation: Vec<String>,
    unsupported: Option<String>,
    dry_run: bool,
}

impl Check {
    fn new(op: &'static str) -> Self {
        Check {
            op,
            validation: Vec::new(),
            unsupported: None,
            dry_run: false,
        }
    }

    /// Validation errors first, all of them, as AWS lists them; then the
    /// first unsupported member. `Ok(dry_run)` when neither.
    fn finish(self) -> Result<bool, AwsError> {
        match self.validation.len() {
            0 => {}
            n => {
                let s = if n == 1 { "" } else { "s" };
                return Err(AwsError::validation(format!(
                    "{n} validation error{s} detected: {}",
                    self.validation.join("; ")
                )));
            }
        }
        match self.unsupported {
            Some(m) => Err(AwsError::unsupported(m)),
            None => Ok(self.dry_run),
        }
    }

    fn structure(
        &mut self,
        members: &[Member],
        obj: &mut Map<String, Value>,
        path: &Path,
    ) -> Result<(), AwsError> {
        obj.retain(|_, v| !v.is_null());
        for m in members {
            let p = path.member(m.name);
            match obj.get(m.name) {
                None if m.need != Need::Optional => self.validation.push(format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    p.aws
                )),
                None => {}
                Some(_) => {
                    let v = obj.get_mut(m.name).expect("just seen");
                    self.value(&m.ty, v, &p)?;
                    self.role(m, v, &p);
                }
            }
        }
        Ok(())
    }

    /// Type-checks `v` against `ty`: a mismatch is a SerializationException
    /// at once; a value outside an enum or u32 is a validation error.
    fn value(&mut self, ty: &Ty, v: &mut Value, p: &Path) -> Result<(), AwsError> {
        let mismatch = |expected: &str, v: &Value| {
            AwsError::serialization(format!(
                "Member '{}' must be {expected}, not {}",
                p.wire,
                kind(v)
            ))
        };
        match ty {
            Ty::Str => v
                .is_string()
                .then_some(())
                .ok_or_else(|| mismatch("a string", v)),
            Ty::Bool => v
                .is_boolean()
                .then_some(())
                .ok_or_else(|| mismatch("a boolean", v)),
            Ty::Int => {
                let n = match (v.as_i64(), v.as_u64()) {
                    (Some(n), _) => i128::from(n),
                    (None, Some(n)) => i128::from(n),
                    (None, None) => return Err(mismatch("an integer", v)),
                };
                self.int_range(n, p);
                Ok(())
            }
            Ty::Blob => {
                let s = v.as_str().ok_or_else(|| mismatch("a base64 string", v))?;
                let decoded = B64.decode(s).map(Zeroizing::new);
                decoded.map(drop).map_err(|e| {
                    AwsError::serialization(format!(
                        "Member '{}' is not valid base64 (standard alphabet, padded): {e}",
                        p.wire
                    ))
                })
            }
            Ty::Enum(values) => {
                let s = v.as_str().ok_or_else(|| mismatch("a string", v))?;
                if !values.contains(&s) {
                    self.validation.push(format!(
                        "Value '{}' at '{}' failed to satisfy constraint: Member must satisfy \
                         enum value set: [{}]",
                        clip(s),
                        p.aws,
                        values.join(", ")
                    ));
                }
                Ok(())
            }
            Ty::List(item) => {
                let Value::Array(items) = v else {
                    return Err(mismatch("a list", v));
                };
                for (i, it) in items.iter_mut().enumerate() {
                    self.value(item, it, &p.index(i))?;
                }
                Ok(())
            }
            Ty::Map => {
                let Value::Object(entries) = v else {
                    return Err(mismatch("a map of strings", v));
                };
                for (k, it) in entries.iter_mut() {
                    self.value(&Ty::Str, it, &p.key(k))?;
                }
                Ok(())
            }
            Ty::Struct(members) => {
                let Value::Object(obj) = v else {
                    return Err(mismatch("a structure", v));
                };
                self.structure(members, obj, p)
            }
        }
    }

    fn int_range(&mut self, n: i128, p: &Path) {
        let bound = if n < 0 {
            "greater than or equal to 0"
        } else if n > i128::from(u32::MAX) {
            "less than or equal to 4294967295"
        } else {
            return;
        };
        self.validation.push(format!(
            "Value '{n}' at '{}' failed to satisfy constraint: Member must have value {bound}",
            p.aws
        ));
    }

    /// What kmsd does with a well-typed member.
    fn role(&mut self, m: &Member, v: &Value, p: &Path) {
        let refuse = match (&m.role, v) {
            (Role::Pass | Role::Drop(_), _) => None,
            (Role::DryRun, v) => {
                self.dry_run = v.as_bool() == Some(true);
                None
            }
            (Role::PassOnly(ok), Value::String(s)) => {
                (!ok.contains(&s.as_str()) && enum_allows(&m.ty, s)).then(|| {
                    format!(
                        "kmsd supports {} {} only, not {}",
                        p.wire,
                        ok.join(", "),
                        clip(s)
                    )
                })
            }
            (Role::Only(Accept::Value(ok)), Value::String(s)) => (s != ok && enum_allows(&m.ty, s))
                .then(|| format!("kmsd supports {} {ok} only, not {}", p.wire, clip(s))),
            (Role::Only(Accept::False), Value::Bool(true)) => Some(format!(
                "kmsd does not support {} true in {}",
                p.wire, self.op
            )),
            (Role::Only(Accept::Absent), _) => Some(format!(
                "kmsd does not support the {} member of {}",
                p.wire, self.op
            )),
            _ => None,
        };
        if self.unsupported.is_none() {
            self.unsupported = refuse;
        }
    }
}

/// Whether `s` is in the member's enum (values outside it are validation
/// errors already).
fn enum_allows(ty: &Ty, s: &str) -> bool {
    match ty {
        Ty::Enum(values) => values.contains(&s),
        _ => true,
    }
}

/// The JSON kind of a value, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A body the table passed that kmsd's type still refuses (an operation the
/// table lacks, or a gap in it). "missing field `X`" is a missing member.
fn serde_error(op: &str, e: &serde_json::Error) -> AwsError {
    let text = e.to_string();
    if let Some(field) = text
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let p = Path::default().member(field);
        return AwsError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: \
             Member must not be null",
            p.aws
        ));
    }
    AwsError::serialization(format!(
        "The request body does not fit {op}'s input: {text}"
    ))
}

#[cfg(test)]
mod tests;
