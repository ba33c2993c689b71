//! Which kmsd instance a chain belongs to: the id rules and the `INSTANCE`
//! file.
//!
//! Several kmsd instances share one store, and each keeps its own chain
//! (docs/AUDIT.md, "One chain per instance"). With
//! [`crate::Options::instance`] set, every line names the instance
//! (`"instance":"<id>"`, right after `prevHash`), and the audit directory
//! holds `INSTANCE`: the id and a newline, written once, durably (temp file,
//! fsync, rename, fsync of the directory), before the first record that
//! names it. [`crate::AuditLog::open`] refuses a directory whose `INSTANCE`
//! names another id; [`crate::verify`] checks every record against it.

use crate::error::AuditError;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Name of the file that names a chain's instance.
pub const INSTANCE_FILE: &str = "INSTANCE";
const INSTANCE_TMP_FILE: &str = "INSTANCE.tmp";
/// Longest instance id, in bytes.
pub const MAX_INSTANCE_LEN: usize = 64;

/// Whether `id` is a valid instance id: 1 to [`MAX_INSTANCE_LEN`] of
/// `a-z`, `0-9` and `-`. Such an id needs no escaping in JSON.
pub fn is_instance_id(id: &str) -> bool {
    (1..=MAX_INSTANCE_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// [`is_instance_id`] as an error ([`AuditError::BadInput`]) naming the id.
pub fn check_instance_id(id: &str) -> Result<(), AuditError> {
    if is_instance_id(id) {
        return Ok(());
    }
    Err(AuditError::BadInput(format!(
        "invalid audit instance id {:?}: use 1 to {MAX_INSTANCE_LEN} characters of a-z, 0-9 and -",
        shorten(id)
    )))
}

/// Reads `<dir>/INSTANCE`: `Ok(None)` when there is none, the id when it
/// holds one (with or without the final newline), [`AuditError::Damaged`]
/// when it holds anything else.
pub fn read_instance(dir: &Path) -> Result<Option<String>, AuditError> {
    let path = dir.join(INSTANCE_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuditError::io(format!("opening {}", path.display()), e)),
    };
    // An id and a newline; more is not an INSTANCE file.
    let mut bytes = Vec::new();
    file.take(MAX_INSTANCE_LEN as u64 + 2)
        .read_to_end(&mut bytes)
        .map_err(|e| AuditError::io(format!("reading {}", path.display()), e))?;
    let id = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    match std::str::from_utf8(id) {
        Ok(id) if is_instance_id(id) => Ok(Some(id.to_string())),
        _ => Err(AuditError::Damaged(format!(
            "{} does not hold an instance id (1 to {MAX_INSTANCE_LEN} of a-z, 0-9 and -, then a newline): {:?}",
            path.display(),
            shorten(&String::from_utf8_lossy(&bytes))
        ))),
    }
}

/// Checks the `INSTANCE` of `dir` (locked by the caller) against the id the
/// writer was given. Returns whether `INSTANCE` still has to be written
/// ([`write_instance`], once the log is known to resume).
pub(crate) fn check_claim(dir: &Path, wanted: Option<&str>) -> Result<bool, AuditError> {
    let found = read_instance(dir)?;
    match (found.as_deref(), wanted) {
        (Some(found), Some(wanted)) if found != wanted => Err(AuditError::WrongInstance(format!(
            "{} is the audit log of instance {found}, not of instance {wanted} \
                 (a state or audit directory copied from another instance?)",
            dir.display()
        ))),
        (Some(found), None) => Err(AuditError::WrongInstance(format!(
            "{} is the audit log of instance {found}: open it as instance {found}, not without an instance",
            dir.display()
        ))),
        (None, Some(_)) => Ok(true),
        _ => Ok(false),
    }
}

/// Creates `<dir>/INSTANCE` holding `id` and a newline; durable on return
/// (the file and the directory entry are flushed). `dir_fd` is `dir`.
pub(crate) fn write_instance(dir: &Path, dir_fd: &File, id: &str) -> io::Result<()> {
    let tmp = dir.join(INSTANCE_TMP_FILE);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{id}\n").as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(INSTANCE_FILE))?;
    dir_fd.sync_all()
}

/// At most 80 characters of `s`, for error messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_digits_and_dashes_up_to_64() {
        for ok in ["a", "kmsd-1", "0", "-", &"x".repeat(64), "host-a-7f3e9c"] {
            assert!(is_instance_id(ok), "{ok}");
            assert!(check_instance_id(ok).is_ok());
        }
        for bad in [
            "",
            "A",
            "kmsd_1",
            "kmsd 1",
            "a/b",
            "é",
            "a\"b",
            "a\n",
            &"x".repeat(65),
        ] {
            assert!(!is_instance_id(bad), "{bad:?}");
            let err = check_instance_id(bad).unwrap_err().to_string();
            assert!(
                matches!(check_instance_id(bad), Err(AuditError::BadInput(_)))
                    && err.contains("invalid audit instance id")
                    && err.contains("a-z, 0-9 and -"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_file_is_written_durably_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let dfd = File::open(dir.path()).unwrap();
        assert_eq!(read_instance(dir.path()).unwrap(), None);
        write_instance(dir.path(), &dfd, "kmsd-a").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(INSTANCE_FILE)).unwrap(),
            b"kmsd-a\n"
        );
        assert!(!dir.path().join(INSTANCE_TMP_FILE).exists());
        assert_eq!(
            read_instance(dir.path()).unwrap().as_deref(),
            Some("kmsd-a")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(INSTANCE_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Written by hand without the newline: still the id.
        std::fs::write(dir.path().join(INSTANCE_FILE), b"kmsd-b").unwrap();
        assert_eq!(
            read_instance(dir.path()).unwrap().as_deref(),
            Some("kmsd-b")
        );
    }

    #[test]
    fn anything_else_in_the_file_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}\n", "x".repeat(65));
        for bad in [
            &b""[..],
            b"\n",
            b"kmsd-a\n\n",
            b" kmsd-a\n",
            b"KMSD\n",
            b"a\nb\n",
            long.as_bytes(),
            &[0xff, b'\n'],
        ] {
            std::fs::write(dir.path().join(INSTANCE_FILE), bad).unwrap();
            let err = read_instance(dir.path()).unwrap_err();
            assert!(
                matches!(&err, AuditError::Damaged(m) if m.contains("does not hold an instance id")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn a_claim_matches_the_file_or_is_refused_naming_both_ids() {
        let dir = tempfile::tempdir().unwrap();
        let dfd = File::open(dir.path()).unwrap();
        assert!(!check_claim(dir.path(), None).unwrap());
        assert!(check_claim(dir.path(), Some("a")).unwrap());
        write_instance(dir.path(), &dfd, "a").unwrap();
        assert!(!check_claim(dir.path(), Some("a")).unwrap());
        let err = check_claim(dir.path(), Some("b")).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, AuditError::WrongInstance(_))
                && msg.contains("instance a,")
                && msg.contains("not of instance b"),
            "{msg}"
        );
        let err = check_claim(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains("instance a") && err.contains("without an instance"),
            "{err}"
        );
    }
}
