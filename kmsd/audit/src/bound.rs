//! Bounded request parameters: a record costs a bounded number of bytes
//! whatever the caller sent.
//!
//! [`bound_parameters`] replaces every oversized value (a string longer
//! than [`BoundLimits::max_string`] bytes, an object or array with more
//! than [`BoundLimits::max_entries`] members or a key longer than
//! `max_string`, anything nested deeper than [`BoundLimits::max_depth`])
//! by a marker
//!
//! ```json
//! {"truncated": {"length": 240000, "sha256": "<hex>", "prefix": "xxxx…"}}
//! ```
//!
//! where `length` and `sha256` are those of the UTF-8 bytes of a string
//! or of the compact JSON of a container (`count` gives its members), and
//! `prefix` is the first [`PREFIX_BYTES`] bytes of a string. If the
//! parameters are still larger than [`BoundLimits::max_total`] bytes, the
//! largest top-level fields are replaced by markers until they fit, and
//! as a last resort the whole object. A caller's value is a string, number
//! or a map of strings, so a marker cannot be mistaken for one.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Bytes of a truncated string kept in its marker.
pub const PREFIX_BYTES: usize = 32;

/// Limits on recorded request parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoundLimits {
    /// Longest string (value or object key) kept, in bytes.
    pub max_string: usize,
    /// Most members of one object or array kept.
    pub max_entries: usize,
    /// Deepest nesting kept.
    pub max_depth: usize,
    /// Largest compact JSON of the whole parameters, in bytes.
    pub max_total: usize,
}

impl Default for BoundLimits {
    /// 4 KiB strings (a typical key policy fits), 64 members (kmsd's
    /// encryption-context limit), depth 8, 16 KiB in all (a maximal
    /// 8 KiB encryption context fits).
    fn default() -> Self {
        BoundLimits {
            max_string: 4096,
            max_entries: 64,
            max_depth: 8,
            max_total: 16 * 1024,
        }
    }
}

/// Longest `errorMessage` recorded, in bytes (longer ones are cut at a
/// character boundary and say so).
pub const MAX_ERROR_MESSAGE: usize = 1024;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character
/// boundary.
pub fn prefix(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn string_marker(s: &str) -> Value {
    json!({"truncated": {
        "length": s.len(),
        "sha256": sha256_hex(s.as_bytes()),
        "prefix": prefix(s, PREFIX_BYTES),
    }})
}

fn container_marker(v: &Value) -> Value {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let count = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 1,
    };
    json!({"truncated": {
        "length": bytes.len(),
        "sha256": sha256_hex(&bytes),
        "count": count,
    }})
}

fn marker(v: &Value) -> Value {
    match v {
        Value::String(s) => string_marker(s),
        other => container_marker(other),
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Replaces oversized parts of `v` by markers (see the module docs).
/// Returns how many values were replaced; 0 means `v` is unchanged.
pub fn bound_parameters(v: &mut Value, limits: &BoundLimits) -> usize {
    let mut n = bound_at(v, limits, 0);
    if json_len(v) <= limits.max_total {
        return n;
    }
    if let Value::Object(map) = v {
        let mut sizes: Vec<(usize, String)> =
            map.iter().map(|(k, x)| (json_len(x), k.clone())).collect();
        sizes.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (_, k) in sizes {
            if let Some(x) = map.get_mut(&k)
                && !is_marker(x)
            {
                *x = marker(x);
                n += 1;
            }
            if json_len(&Value::Object(map.clone())) <= limits.max_total {
                return n;
            }
        }
    }
    if json_len(v) > limits.max_total {
        *v = container_marker(v);
        n += 1;
    }
    n
}

fn is_marker(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.contains_key("truncated"))
}

fn bound_at(v: &mut Value, limits: &BoundLimits, depth: usize) -> usize {
    let oversized = match &*v {
        Value::String(s) => s.len() > limits.max_string,
        Value::Array(a) => a.len() > limits.max_entries || depth >= limits.max_depth,
        Value::Object(m) => {
            m.len() > limits.max_entries
                || depth >= limits.max_depth
                || m.keys().any(|k| k.len() > limits.max_string)
        }
        _ => false,
    };
    if oversized {
        *v = marker(v);
        return 1;
    }
    match v {
        Value::Array(a) => a.iter_mut().map(|x| bound_at(x, limits, depth + 1)).sum(),
        Value::Object(m) => m.values_mut().map(|x| bound_at(x, limits, depth + 1)).sum(),
        _ => 0,
    }
}

/// Whether [`bound_parameters`] would change `v` (lets callers skip a
/// clone): cheap checks first, the total size last.
pub fn needs_bound(v: &Value, limits: &BoundLimits) -> bool {
    fn walk(v: &Value, l: &BoundLimits, depth: usize) -> bool {
        match v {
            Value::String(s) => s.len() > l.max_string,
            Value::Array(a) => {
                a.len() > l.max_entries
                    || depth >= l.max_depth
                    || a.iter().any(|x| walk(x, l, depth + 1))
            }
            Value::Object(m) => {
                m.len() > l.max_entries
                    || depth >= l.max_depth
                    || m.iter()
                        .any(|(k, x)| k.len() > l.max_string || walk(x, l, depth + 1))
            }
            _ => false,
        }
    }
    walk(v, limits, 0) || json_len(v) > limits.max_total
}

/// An error message of at most [`MAX_ERROR_MESSAGE`] bytes.
pub fn bound_message(m: &str) -> std::borrow::Cow<'_, str> {
    if m.len() <= MAX_ERROR_MESSAGE {
        return m.into();
    }
    format!(
        "{}… [truncated: {} bytes, sha256 {}]",
        prefix(m, MAX_ERROR_MESSAGE),
        m.len(),
        sha256_hex(m.as_bytes())
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn small_parameters_are_untouched() {
        let l = BoundLimits::default();
        let mut v = json!({"KeyId": "alias/a", "EncryptionContext": {"k": "v"}, "GrantTokens": []});
        let before = v.clone();
        assert!(!needs_bound(&v, &l));
        assert_eq!(bound_parameters(&mut v, &l), 0);
        assert_eq!(v, before);
    }

    #[test]
    fn a_huge_value_becomes_its_length_hash_and_prefix() {
        let l = BoundLimits::default();
        let big = "x".repeat(240_000);
        let mut v = json!({"KeyId": "k", "EncryptionContext": {"a": big}});
        assert!(needs_bound(&v, &l));
        assert_eq!(bound_parameters(&mut v, &l), 1);
        let m = &v["EncryptionContext"]["a"]["truncated"];
        assert_eq!(m["length"], 240_000);
        assert_eq!(m["sha256"], sha256_hex(big.as_bytes()));
        assert_eq!(m["prefix"], "x".repeat(PREFIX_BYTES));
        assert_eq!(v["KeyId"], "k");
        assert!(json_len(&v) < 300, "{v}");
    }

    #[test]
    fn huge_keys_many_members_and_deep_nesting_are_replaced() {
        let l = BoundLimits::default();
        let mut v = json!({"EncryptionContext": {"k".repeat(5000): "v"}});
        bound_parameters(&mut v, &l);
        assert_eq!(v["EncryptionContext"]["truncated"]["count"], 1);

        let many: Map<String, Value> = (0..1000).map(|i| (format!("k{i}"), json!("v"))).collect();
        let mut v = json!({"EncryptionContext": many});
        bound_parameters(&mut v, &l);
        assert_eq!(v["EncryptionContext"]["truncated"]["count"], 1000);

        let mut deep = json!("leaf");
        for _ in 0..20 {
            deep = json!([deep]);
        }
        let mut v = json!({"X": deep});
        assert_eq!(bound_parameters(&mut v, &l), 1);
        assert!(json_len(&v) < 200, "{v}");
    }

    #[test]
    fn the_total_is_bounded_even_when_every_field_is_under_its_limit() {
        let l = BoundLimits::default();
        // 64 values of 4096 bytes: each under max_string, 256 KiB in all.
        let ctx: Map<String, Value> = (0..64)
            .map(|i| (format!("k{i:02}"), json!("v".repeat(4096))))
            .collect();
        let mut v = json!({"KeyId": "k", "EncryptionContext": ctx});
        assert!(bound_parameters(&mut v, &l) >= 1);
        assert!(json_len(&v) <= l.max_total, "{}", json_len(&v));
        assert_eq!(v["KeyId"], "k");
        assert!(
            v["EncryptionContext"]["truncated"]["length"]
                .as_u64()
                .unwrap()
                > 256 * 1024
        );

        // Many top-level fields with long names: the whole object goes.
        let top: Map<String, Value> = (0..64)
            .map(|i| (format!("{i:02}{}", "n".repeat(4000)), json!(1)))
            .collect();
        let mut v = Value::Object(top);
        bound_parameters(&mut v, &l);
        assert!(json_len(&v) <= l.max_total);
        assert!(is_marker(&v));
    }

    #[test]
    fn prefixes_end_on_character_boundaries() {
        assert_eq!(prefix("ééé", 3), "é");
        assert_eq!(prefix("abc", 10), "abc");
        let s = "é".repeat(5000);
        let mut v = json!({"D": s});
        bound_parameters(&mut v, &BoundLimits::default());
        assert_eq!(v["D"]["truncated"]["prefix"], "é".repeat(16));
    }

    #[test]
    fn long_error_messages_are_cut() {
        assert_eq!(bound_message("short"), "short");
        let m = format!(
            "alias name '{}' must begin with 'alias/'",
            "a".repeat(200_000)
        );
        let b = bound_message(&m);
        assert!(b.len() < MAX_ERROR_MESSAGE + 120, "{}", b.len());
        assert!(
            b.contains(&format!("[truncated: {} bytes, sha256 ", m.len())),
            "{b}"
        );
    }
}
