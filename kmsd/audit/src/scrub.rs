//! Defensive removal of secret-bearing fields from request parameters.
//!
//! The server is meant to pass only key ids, aliases, encryption contexts,
//! key specs and grant fields. [`scrub`] is applied to every event anyway,
//! so a handler that hands over a whole request (with `Plaintext` or
//! `CiphertextBlob`) still leaves no secret bytes in the log.

use serde_json::Value;

/// Field names (compared case-insensitively, ignoring `_` and `-`) that are
/// always removed, wherever they appear in the parameters.
pub const SECRET_FIELDS: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "CiphertextForRecipient",
    "KeyMaterial",
    "EncryptedKeyMaterial",
    "ImportToken",
    "PrivateKeyPlaintext",
    "PrivateKeyCiphertextBlob",
    "Message",
    "Signature",
    "Mac",
    "RootKey",
    "DataKey",
    "Password",
    "Secret",
];

/// Substrings that mark a field as secret too (`SourcePlaintext`,
/// `ciphertext_blob`, `wrappedKeyMaterial`, ...).
const SECRET_SUBSTRINGS: &[&str] = &[
    "plaintext",
    "ciphertext",
    "keymaterial",
    "secret",
    "password",
];

/// Whether a field of this name is removed by [`scrub`].
pub fn is_secret_field(name: &str) -> bool {
    let norm: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(&norm))
        || SECRET_SUBSTRINGS.iter().any(|s| norm.contains(s))
}

/// Removes every secret field (see [`is_secret_field`]) from `value`, at any
/// depth, inside objects and arrays. Returns how many fields were removed.
pub fn scrub(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, _| !is_secret_field(k));
            let mut removed = before - map.len();
            for v in map.values_mut() {
                removed += scrub(v);
            }
            removed
        }
        Value::Array(items) => items.iter_mut().map(scrub).sum(),
        _ => 0,
    }
}

/// Whether [`scrub`] would remove anything (lets callers skip a clone).
pub fn needs_scrub(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| is_secret_field(k) || needs_scrub(v)),
        Value::Array(items) => items.iter().any(needs_scrub),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_secrets_at_any_depth_and_keeps_the_rest() {
        let mut v = json!({
            "KeyId": "alias/app",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"purpose": "test", "ciphertext_blob": "AAAA"},
            "GrantTokens": ["t1"],
            "Nested": [{"CiphertextBlob": "x", "KeySpec": "AES_256"}, {"keyMaterial": "y"}],
            "SourceCiphertextBlob": "z",
            "NumberOfBytes": 32,
        });
        assert!(needs_scrub(&v));
        assert_eq!(scrub(&mut v), 5);
        assert_eq!(
            v,
            json!({
                "KeyId": "alias/app",
                "EncryptionContext": {"purpose": "test"},
                "GrantTokens": ["t1"],
                "Nested": [{"KeySpec": "AES_256"}, {}],
                "NumberOfBytes": 32,
            })
        );
        assert!(!needs_scrub(&v));
        assert_eq!(scrub(&mut v), 0);
    }

    #[test]
    fn names_are_matched_loosely_but_not_key_ids() {
        for secret in [
            "Plaintext",
            "plaintext",
            "PLAINTEXT",
            "plain_text",
            "Ciphertext-Blob",
            "Mac",
            "signature",
        ] {
            assert!(is_secret_field(secret), "{secret}");
        }
        for fine in [
            "KeyId",
            "KeyArn",
            "AliasName",
            "GrantTokens",
            "EncryptionContext",
            "KeySpec",
            "MacAlgorithm",
        ] {
            assert!(!is_secret_field(fine), "{fine}");
        }
    }

    #[test]
    fn scalars_are_untouched() {
        let mut v = json!("Plaintext");
        assert_eq!(scrub(&mut v), 0);
        assert_eq!(v, json!("Plaintext"));
    }
}
