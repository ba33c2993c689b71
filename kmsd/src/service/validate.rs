//! Input limits, as AWS KMS documents them. Pure functions; each returns a
//! `ValidationException` (or the exception AWS uses) naming the field.

use kmsd_client::{DataKeySpec, EncryptionContext, GrantConstraints, KmsError, Tag};

pub const MAX_DESCRIPTION: usize = 8192;
pub const MAX_TAG_KEY: usize = 128;
pub const MAX_TAG_VALUE: usize = 256;
pub const MAX_TAGS_PER_KEY: usize = 50;
pub const MAX_PLAINTEXT: usize = 4096;
pub const MAX_RANDOM_BYTES: u32 = 1024;
pub const MAX_DATA_KEY_BYTES: u32 = 1024;
pub const MAX_CIPHERTEXT_BLOB: usize = 6144;
pub const PENDING_WINDOW_DAYS: (u32, u32) = (7, 30);
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;
pub const ROTATION_PERIOD_DAYS: (u32, u32) = (90, 2560);
pub const DEFAULT_ROTATION_PERIOD_DAYS: u32 = 365;
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
pub const LIST_LIMIT: (u32, u32) = (1, 1000);
pub const DEFAULT_LIST_LIMIT: u32 = 100;
pub const MAX_ALIAS_NAME: usize = 256;
pub const MAX_KEY_ID: usize = 2048;
/// Encryption context: at most this many pairs...
pub const MAX_CONTEXT_PAIRS: usize = 64;
/// ...and at most this many bytes of keys and values together (UTF-8).
pub const MAX_CONTEXT_BYTES: usize = 8192;
/// Grant tokens per request and characters per token (AWS: 10 and 8192).
pub const MAX_GRANT_TOKENS: usize = 10;
pub const MAX_GRANT_TOKEN: usize = 8192;

fn in_range(field: &str, v: u32, (lo, hi): (u32, u32)) -> Result<u32, KmsError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(KmsError::validation(format!(
            "{field} must be between {lo} and {hi}; got {v}"
        )))
    }
}

pub fn description(d: &str) -> Result<(), KmsError> {
    let n = d.chars().count();
    if n > MAX_DESCRIPTION {
        return Err(KmsError::validation(format!(
            "Description must be at most {MAX_DESCRIPTION} characters; got {n}"
        )));
    }
    Ok(())
}

pub fn tags(tags: &[Tag]) -> Result<(), KmsError> {
    for t in tags {
        let (k, v) = (t.tag_key.chars().count(), t.tag_value.chars().count());
        if !(1..=MAX_TAG_KEY).contains(&k) {
            return Err(KmsError::new(
                kmsd_client::ErrorKind::TagException,
                format!("TagKey must be 1 to {MAX_TAG_KEY} characters; got {k}"),
            ));
        }
        if v > MAX_TAG_VALUE {
            return Err(KmsError::new(
                kmsd_client::ErrorKind::TagException,
                format!(
                    "TagValue of '{}' must be at most {MAX_TAG_VALUE} characters; got {v}",
                    t.tag_key
                ),
            ));
        }
        if t.tag_key.starts_with("aws:") {
            return Err(KmsError::new(
                kmsd_client::ErrorKind::TagException,
                format!("TagKey '{}' uses the reserved prefix aws:", t.tag_key),
            ));
        }
    }
    Ok(())
}

pub fn plaintext(len: usize) -> Result<(), KmsError> {
    if !(1..=MAX_PLAINTEXT).contains(&len) {
        return Err(KmsError::validation(format!(
            "Plaintext must be 1 to {MAX_PLAINTEXT} bytes; got {len}"
        )));
    }
    Ok(())
}

pub fn ciphertext_blob(len: usize) -> Result<(), KmsError> {
    if !(1..=MAX_CIPHERTEXT_BLOB).contains(&len) {
        return Err(KmsError::validation(format!(
            "CiphertextBlob must be 1 to {MAX_CIPHERTEXT_BLOB} bytes; got {len}"
        )));
    }
    Ok(())
}

pub fn random_bytes(n: u32) -> Result<usize, KmsError> {
    in_range("NumberOfBytes", n, (1, MAX_RANDOM_BYTES)).map(|n| n as usize)
}

/// GenerateDataKey: exactly one of KeySpec and NumberOfBytes.
pub fn data_key_len(spec: Option<DataKeySpec>, bytes: Option<u32>) -> Result<usize, KmsError> {
    match (spec, bytes) {
        (Some(s), None) => Ok(s.key_len()),
        (None, Some(n)) => {
            in_range("NumberOfBytes", n, (1, MAX_DATA_KEY_BYTES)).map(|n| n as usize)
        }
        (Some(_), Some(_)) => Err(KmsError::validation(
            "specify either KeySpec or NumberOfBytes, not both",
        )),
        (None, None) => Err(KmsError::validation(
            "specify either KeySpec or NumberOfBytes",
        )),
    }
}

pub fn pending_window(days: Option<u32>) -> Result<u32, KmsError> {
    in_range(
        "PendingWindowInDays",
        days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS),
        PENDING_WINDOW_DAYS,
    )
}

pub fn rotation_period(days: Option<u32>) -> Result<u32, KmsError> {
    in_range(
        "RotationPeriodInDays",
        days.unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS),
        ROTATION_PERIOD_DAYS,
    )
}

pub fn list_limit(limit: Option<u32>) -> Result<usize, KmsError> {
    in_range("Limit", limit.unwrap_or(DEFAULT_LIST_LIMIT), LIST_LIMIT).map(|n| n as usize)
}

/// `^alias/[a-zA-Z0-9/_-]+$`, 1–256 characters, `alias/aws/` reserved.
pub fn alias_name(name: &str) -> Result<(), KmsError> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::validation(format!(
            "alias name '{name}' must begin with 'alias/'"
        )));
    };
    if name.len() > MAX_ALIAS_NAME {
        return Err(KmsError::validation(format!(
            "alias name must be at most {MAX_ALIAS_NAME} characters; got {}",
            name.len()
        )));
    }
    if rest.is_empty()
        || !rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
    {
        return Err(KmsError::validation(format!(
            "alias name '{name}' must match ^alias/[a-zA-Z0-9/_-]+$"
        )));
    }
    if name.starts_with("alias/aws/") {
        return Err(KmsError::validation(format!(
            "alias name '{name}' is reserved: the prefix alias/aws/ is for AWS managed keys"
        )));
    }
    Ok(())
}

pub fn key_ref(key_id: &str) -> Result<(), KmsError> {
    if key_id.is_empty() || key_id.len() > MAX_KEY_ID {
        return Err(KmsError::validation(format!(
            "KeyId must be 1 to {MAX_KEY_ID} characters"
        )));
    }
    Ok(())
}

/// An encryption context (`field` names it in the message): at most
/// [`MAX_CONTEXT_PAIRS`] pairs and [`MAX_CONTEXT_BYTES`] bytes of keys and
/// values, no empty key.
pub fn encryption_context(field: &str, ctx: &EncryptionContext) -> Result<(), KmsError> {
    if ctx.len() > MAX_CONTEXT_PAIRS {
        return Err(KmsError::validation(format!(
            "{field} must have at most {MAX_CONTEXT_PAIRS} pairs; got {}",
            ctx.len()
        )));
    }
    let bytes: usize = ctx.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_CONTEXT_BYTES {
        return Err(KmsError::validation(format!(
            "{field} must be at most {MAX_CONTEXT_BYTES} bytes of keys and values; got {bytes}"
        )));
    }
    if ctx.keys().any(|k| k.is_empty()) {
        return Err(KmsError::validation(format!(
            "{field} keys must not be empty"
        )));
    }
    Ok(())
}

/// CreateGrant's constraints: each context as [`encryption_context`].
pub fn grant_constraints(c: Option<&GrantConstraints>) -> Result<(), KmsError> {
    let Some(c) = c else { return Ok(()) };
    if let Some(x) = &c.encryption_context_subset {
        encryption_context("EncryptionContextSubset", x)?;
    }
    if let Some(x) = &c.encryption_context_equals {
        encryption_context("EncryptionContextEquals", x)?;
    }
    Ok(())
}

/// At most [`MAX_GRANT_TOKENS`] tokens of 1 to [`MAX_GRANT_TOKEN`] bytes.
pub fn grant_tokens(tokens: &[String]) -> Result<(), KmsError> {
    if tokens.len() > MAX_GRANT_TOKENS {
        return Err(KmsError::validation(format!(
            "GrantTokens must have at most {MAX_GRANT_TOKENS} members; got {}",
            tokens.len()
        )));
    }
    if let Some(t) = tokens
        .iter()
        .find(|t| t.is_empty() || t.len() > MAX_GRANT_TOKEN)
    {
        return Err(KmsError::validation(format!(
            "each grant token must be 1 to {MAX_GRANT_TOKEN} bytes; got {}",
            t.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsd_client::ErrorKind;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            tag_key: k.into(),
            tag_value: v.into(),
        }
    }

    #[test]
    fn alias_names() {
        for ok in [
            "alias/a",
            "alias/My_Key-1/sub",
            &format!("alias/{}", "x".repeat(250)),
        ] {
            assert!(alias_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "alias/",
            "alias/a b",
            "alias/é",
            "alias/aws/x",
            "ALIAS/x",
            &format!("alias/{}", "x".repeat(251)),
        ] {
            assert_eq!(
                alias_name(bad).unwrap_err().kind,
                ErrorKind::ValidationException,
                "{bad}"
            );
        }
    }

    #[test]
    fn tag_limits() {
        assert!(tags(&[tag("k", "")]).is_ok());
        assert!(tags(&[tag(&"k".repeat(128), &"v".repeat(256))]).is_ok());
        for bad in [
            tag("", "v"),
            tag(&"k".repeat(129), ""),
            tag("k", &"v".repeat(257)),
            tag("aws:x", ""),
        ] {
            assert_eq!(tags(&[bad]).unwrap_err().kind, ErrorKind::TagException);
        }
    }

    #[test]
    fn numeric_ranges() {
        assert!(
            plaintext(0).is_err()
                && plaintext(1).is_ok()
                && plaintext(4096).is_ok()
                && plaintext(4097).is_err()
        );
        assert!(
            random_bytes(0).is_err() && random_bytes(1024).is_ok() && random_bytes(1025).is_err()
        );
        assert_eq!(pending_window(None), Ok(30));
        assert!(
            pending_window(Some(6)).is_err()
                && pending_window(Some(7)).is_ok()
                && pending_window(Some(31)).is_err()
        );
        assert_eq!(rotation_period(None), Ok(365));
        assert!(
            rotation_period(Some(89)).is_err()
                && rotation_period(Some(2560)).is_ok()
                && rotation_period(Some(2561)).is_err()
        );
        assert_eq!(list_limit(None), Ok(100));
        assert!(
            list_limit(Some(0)).is_err()
                && list_limit(Some(1000)).is_ok()
                && list_limit(Some(1001)).is_err()
        );
        assert!(description(&"d".repeat(8192)).is_ok() && description(&"d".repeat(8193)).is_err());
    }

    fn context(pairs: usize, value_len: usize) -> EncryptionContext {
        (0..pairs)
            .map(|i| (format!("k{i:03}"), "v".repeat(value_len)))
            .collect()
    }

    #[test]
    fn encryption_context_limits() {
        let f = "EncryptionContext";
        assert!(encryption_context(f, &EncryptionContext::new()).is_ok());
        // 64 pairs of 4 + 124 bytes = 8192 bytes: at both limits.
        let full = context(MAX_CONTEXT_PAIRS, 124);
        assert_eq!(
            full.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
            MAX_CONTEXT_BYTES
        );
        assert!(encryption_context(f, &full).is_ok());
        let e = encryption_context(f, &context(MAX_CONTEXT_PAIRS + 1, 1)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::ValidationException);
        assert!(e.message.contains("at most 64 pairs"), "{}", e.message);
        let e = encryption_context(f, &context(MAX_CONTEXT_PAIRS, 125)).unwrap_err();
        assert!(e.message.contains("at most 8192 bytes"), "{}", e.message);
        // One huge value (the 240 KB context of issue 9).
        let huge: EncryptionContext = [("a".to_string(), "x".repeat(240_000))].into();
        let e = encryption_context("SourceEncryptionContext", &huge).unwrap_err();
        assert!(
            e.message.starts_with("SourceEncryptionContext"),
            "{}",
            e.message
        );
        let empty_key: EncryptionContext = [(String::new(), "v".to_string())].into();
        assert!(encryption_context(f, &empty_key).is_err());
    }

    #[test]
    fn grant_constraint_and_token_limits() {
        assert!(grant_constraints(None).is_ok());
        let ok = GrantConstraints {
            encryption_context_subset: Some(context(2, 3)),
            encryption_context_equals: None,
        };
        assert!(grant_constraints(Some(&ok)).is_ok());
        let bad = GrantConstraints {
            encryption_context_subset: None,
            encryption_context_equals: Some(context(65, 1)),
        };
        let e = grant_constraints(Some(&bad)).unwrap_err();
        assert!(
            e.message.starts_with("EncryptionContextEquals"),
            "{}",
            e.message
        );

        assert!(grant_tokens(&[]).is_ok());
        assert!(grant_tokens(&vec!["t".repeat(MAX_GRANT_TOKEN); 10]).is_ok());
        assert!(grant_tokens(&vec!["t".to_string(); 11]).is_err());
        assert!(grant_tokens(&["t".repeat(MAX_GRANT_TOKEN + 1)]).is_err());
        assert!(grant_tokens(&[String::new()]).is_err());
    }

    #[test]
    fn data_key_spec_xor_bytes() {
        assert_eq!(data_key_len(Some(DataKeySpec::Aes256), None), Ok(32));
        assert_eq!(data_key_len(Some(DataKeySpec::Aes128), None), Ok(16));
        assert_eq!(data_key_len(None, Some(1)), Ok(1));
        assert!(data_key_len(None, Some(1025)).is_err());
        assert!(data_key_len(None, None).is_err());
        assert!(data_key_len(Some(DataKeySpec::Aes256), Some(32)).is_err());
    }
}
