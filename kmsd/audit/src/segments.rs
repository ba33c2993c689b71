//! Log files in the audit directory: `audit-000001.jsonl`,
//! `audit-000002.jsonl`, ... (six digits, more once past 999999), plus the
//! `HEAD` and `LOCK` files.

use std::io;
use std::path::{Path, PathBuf};

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// Name of the `HEAD` file: the last durable record's seq, hash and file,
/// with a MAC.
pub const HEAD_FILE: &str = "HEAD";
pub(crate) const HEAD_TMP_FILE: &str = "HEAD.tmp";
pub(crate) const LOCK_FILE: &str = "LOCK";

/// The audit directory of a kmsd state directory: `<state-dir>/audit`.
pub fn audit_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("audit")
}

/// `audit-000042.jsonl`.
pub fn segment_name(index: u32) -> String {
    format!("{PREFIX}{index:06}{SUFFIX}")
}

/// The index in a segment file name; `None` for any other name.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    // Exactly the canonical spelling, so no two names map to one index.
    (segment_name(n) == name && n > 0).then_some(n)
}

/// One log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub index: u32,
    pub name: String,
    pub path: PathBuf,
}

/// The log files in `dir`, in index order. A missing directory has none.
pub fn list_segments(dir: &Path) -> io::Result<Vec<Segment>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(index) = parse_segment_name(name) {
            out.push(Segment {
                index,
                name: name.to_string(),
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|s| s.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        assert_eq!(segment_name(1), "audit-000001.jsonl");
        assert_eq!(segment_name(1_234_567), "audit-1234567.jsonl");
        for n in [1, 9, 10, 999_999, 1_000_000, u32::MAX] {
            assert_eq!(parse_segment_name(&segment_name(n)), Some(n));
        }
        for other in [
            "HEAD",
            "LOCK",
            "audit-1.jsonl",
            "audit-0000001.jsonl",
            "audit-000000.jsonl",
            "audit-00000a.jsonl",
            "audit-000001.json",
            "xaudit-000001.jsonl",
            "audit-000001.jsonl.tmp",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
    }

    #[test]
    fn listing_sorts_by_index_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "audit-000010.jsonl",
            "audit-000002.jsonl",
            "HEAD",
            "notes.txt",
            "audit-1000000.jsonl",
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let segs = list_segments(dir.path()).unwrap();
        let idx: Vec<u32> = segs.iter().map(|s| s.index).collect();
        assert_eq!(idx, [2, 10, 1_000_000]);
        assert!(list_segments(&dir.path().join("nope")).unwrap().is_empty());
    }
}
