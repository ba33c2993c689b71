//! Input limits, as AWS KMS documents them. Pure functions; each returns a
//! `ValidationException` (or the exception AWS uses) naming the field.

use kmsd_client::{DataKeySpec, KmsError, Tag};

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
