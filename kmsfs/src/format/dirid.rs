//! Version 2 directory ids on disk (docs/FORMAT.md, "Directory ids"): the
//! 24-byte `kmsfs.dirid` file of every directory but the root, and the
//! reserved temporary names a directory is built under before it is
//! renamed into place.

use super::FormatError;
use super::ids::{DirId, to_hex};

/// The id file of every directory but the root.
pub const DIRID_FILE_NAME: &str = "kmsfs.dirid";
/// The first four bytes of an id file.
pub const DIRID_MAGIC: [u8; 4] = *b"KMDI";
/// The id file's version field.
pub const DIRID_VERSION: u16 = 2;
/// Bytes of an id file.
pub const DIRID_FILE_SIZE: usize = 24;
/// Mode of an id file: no secret in it; group-readable for shared backing
/// directories.
pub const DIRID_FILE_MODE: u32 = 0o440;
/// Prefix of a temporary backing name: `kmsfs.tmp.` ‖ 32 lowercase hex.
pub const TEMP_PREFIX: &str = "kmsfs.tmp.";
/// Bytes of a temporary name.
pub const TEMP_NAME_LEN: usize = TEMP_PREFIX.len() + 32;

/// The bytes of `kmsfs.dirid` for `id`.
pub fn encode_dirid(id: &DirId) -> [u8; DIRID_FILE_SIZE] {
    let mut b = [0u8; DIRID_FILE_SIZE];
    b[..4].copy_from_slice(&DIRID_MAGIC);
    b[4..6].copy_from_slice(&DIRID_VERSION.to_be_bytes());
    b[8..].copy_from_slice(&id.0);
    b
}

/// Parses `kmsfs.dirid`: exact length, magic, version, zero reserved
/// field, a non-zero id.
pub fn parse_dirid(bytes: &[u8]) -> Result<DirId, FormatError> {
    let bad = |m: String| Err(FormatError::BadDirId(m));
    if bytes.len() != DIRID_FILE_SIZE {
        return bad(format!("{} bytes, expected {DIRID_FILE_SIZE}", bytes.len()));
    }
    if bytes[..4] != DIRID_MAGIC {
        return bad("wrong magic".into());
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != DIRID_VERSION {
        return bad(format!("version {version}, expected {DIRID_VERSION}"));
    }
    if bytes[6..8] != [0, 0] {
        return bad("non-zero reserved field".into());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[8..]);
    match DirId::from_bytes(id) {
        Some(d) => Ok(d),
        None => bad("all-zero directory id".into()),
    }
}

/// A fresh temporary backing name.
pub fn temp_name() -> Result<String, getrandom::Error> {
    let mut r = [0u8; 16];
    getrandom::fill(&mut r)?;
    Ok(format!("{TEMP_PREFIX}{}", to_hex(&r)))
}

/// Whether `name` is a temporary name kmsfs writes.
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() == TEMP_NAME_LEN
        && name.starts_with(TEMP_PREFIX.as_bytes())
        && name[TEMP_PREFIX.len()..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::VolumeId;

    #[test]
    fn round_trip() {
        let id = DirId([0x5a; 16]);
        let b = encode_dirid(&id);
        assert_eq!(&b[..8], b"KMDI\0\x02\0\0");
        assert_eq!(parse_dirid(&b), Ok(id));
        assert_eq!(DirId::root(&VolumeId([3; 16])), DirId([3; 16]));
    }

    #[test]
    fn damaged_id_files_are_rejected() {
        let good = encode_dirid(&DirId([0x5a; 16]));
        // Every torn write (a prefix) and every single-byte edit of the
        // header fields is refused.
        for n in 0..DIRID_FILE_SIZE {
            assert!(parse_dirid(&good[..n]).is_err(), "prefix {n}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert!(parse_dirid(&longer).is_err());
        for i in 0..8 {
            let mut b = good;
            b[i] ^= 0x20;
            assert!(parse_dirid(&b).is_err(), "byte {i}");
        }
        let mut zero = good;
        zero[8..].fill(0);
        let e = parse_dirid(&zero).unwrap_err();
        assert!(e.to_string().contains("all-zero"), "{e}");
    }

    #[test]
    fn temp_names() {
        let a = temp_name().unwrap();
        let b = temp_name().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TEMP_NAME_LEN);
        assert!(is_temp_name(a.as_bytes()));
        assert!(!is_temp_name(b"kmsfs.tmp."));
        assert!(!is_temp_name(&a.as_bytes()[..TEMP_NAME_LEN - 1]));
        assert!(!is_temp_name(a.to_uppercase().as_bytes()));
    }
}
