//! Loading parameter values: resolves `file://` and `fileb://` (the only
//! I/O) and hands the text to the pure parsers in `shorthand.rs`. Every
//! error names the flag, as in `Error parsing parameter '--policy': ...`.

use crate::failure::Failure;
use crate::shorthand::{self, BinaryFormat, BinarySource, FILE_PREFIX, FILEB_PREFIX, TextSource};
use kmsd_client::{EncryptionContext, GrantConstraints, Tag};
use std::path::Path;
use zeroize::Zeroizing;

fn home() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| !h.is_empty())
}

fn unreadable(flag: &str, prefix: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::param(
        flag,
        format!("Unable to load paramfile {prefix}{}: {e}", path.display()),
    )
}

/// A text value, inline or from `file://PATH`.
pub fn text(flag: &str, raw: &str) -> Result<Zeroizing<String>, Failure> {
    match shorthand::text_source(raw, home().as_deref()).map_err(|e| Failure::param(flag, e))? {
        TextSource::Inline(s) => Ok(Zeroizing::new(s.to_string())),
        TextSource::File(path) => std::fs::read_to_string(&path)
            .map(Zeroizing::new)
            .map_err(|e| unreadable(flag, FILE_PREFIX, &path, e)),
    }
}

/// A binary value: `fileb://PATH` raw, `file://PATH` holding base64, or
/// inline (base64 unless `format` says raw).
pub fn binary(flag: &str, raw: &str, format: BinaryFormat) -> Result<Vec<u8>, Failure> {
    let source = shorthand::binary_source(raw, home().as_deref(), format)
        .map_err(|e| Failure::param(flag, e))?;
    match source {
        BinarySource::Inline(bytes) => Ok(bytes),
        BinarySource::RawFile(path) => {
            std::fs::read(&path).map_err(|e| unreadable(flag, FILEB_PREFIX, &path, e))
        }
        BinarySource::Base64File(path) => {
            let text = std::fs::read_to_string(&path)
                .map(Zeroizing::new)
                .map_err(|e| unreadable(flag, FILE_PREFIX, &path, e))?;
            shorthand::decode_base64(&text).map_err(|e| Failure::param(flag, e))
        }
    }
}

/// An encryption context; absent means empty.
pub fn context(flag: &str, raw: Option<&str>) -> Result<EncryptionContext, Failure> {
    let Some(raw) = raw else {
        return Ok(EncryptionContext::new());
    };
    shorthand::encryption_context(&text(flag, raw)?).map_err(|e| Failure::param(flag, e))
}

pub fn constraints(flag: &str, raw: Option<&str>) -> Result<Option<GrantConstraints>, Failure> {
    raw.map(|raw| shorthand::constraints(&text(flag, raw)?).map_err(|e| Failure::param(flag, e)))
        .transpose()
}

pub fn tags(flag: &str, values: &[String]) -> Result<Vec<Tag>, Failure> {
    shorthand::tags(values).map_err(|e| Failure::param(flag, e))
}

pub fn list(flag: &str, values: &[String]) -> Result<Vec<String>, Failure> {
    shorthand::string_list(values).map_err(|e| Failure::param(flag, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw.bin");
        std::fs::write(&raw, [0u8, 159, 146, 150]).unwrap();
        let b64 = dir.path().join("data.b64");
        std::fs::write(&b64, "AJ+Slg==\n").unwrap();
        let ctx = dir.path().join("ctx.json");
        std::fs::write(&ctx, r#"{"Purpose":"Lab"}"#).unwrap();

        let fileb = format!("fileb://{}", raw.display());
        assert_eq!(
            binary("--plaintext", &fileb, BinaryFormat::Base64).unwrap(),
            [0, 159, 146, 150]
        );
        let file = format!("file://{}", b64.display());
        assert_eq!(
            binary("--ciphertext-blob", &file, BinaryFormat::Base64).unwrap(),
            [0, 159, 146, 150]
        );
        let c = context(
            "--encryption-context",
            Some(&format!("file://{}", ctx.display())),
        )
        .unwrap();
        assert_eq!(c.get("Purpose").map(String::as_str), Some("Lab"));
        assert!(context("--encryption-context", None).unwrap().is_empty());
    }

    #[test]
    fn missing_files_and_bad_values_are_usage_errors() {
        let f = binary(
            "--plaintext",
            "fileb:///nonexistent/kmsctl-test",
            BinaryFormat::Base64,
        )
        .unwrap_err();
        assert_eq!(f.exit_code(), 252);
        assert!(
            f.to_string()
                .starts_with("Error parsing parameter '--plaintext': Unable to load paramfile fileb:///nonexistent/kmsctl-test: "),
            "{f}"
        );
        let f = text("--policy", "file:///nonexistent/p.json").unwrap_err();
        assert!(
            f.to_string()
                .contains("paramfile file:///nonexistent/p.json"),
            "{f}"
        );
        let f = context("--encryption-context", Some("Purpose")).unwrap_err();
        assert!(
            f.to_string()
                .starts_with("Error parsing parameter '--encryption-context': Expected: '='"),
            "{f}"
        );
        let f = constraints("--constraints", Some("X={A=1}")).unwrap_err();
        assert_eq!(f.exit_code(), 252);
    }
}
