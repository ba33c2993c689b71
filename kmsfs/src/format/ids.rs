//! Random 16-byte ids: one per file, one per volume, and in format version
//! 2 one per directory and one per symlink. Public values (they appear in
//! headers, the config, `kmsfs.dirid` files, stored symlink targets and kmsd
//! encryption contexts), so they have `Debug` and hex forms.

use std::fmt;

macro_rules! id16 {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh random id from the operating system.
            pub fn random() -> Result<Self, getrandom::Error> {
                let mut b = [0u8; 16];
                loop {
                    getrandom::fill(&mut b)?;
                    if b != [0; 16] {
                        return Ok($name(b));
                    }
                }
            }

            /// Rejects the all-zero id, which no writer produces.
            pub fn from_bytes(b: [u8; 16]) -> Option<Self> {
                (b != [0; 16]).then_some($name(b))
            }

            /// 32 lowercase hex digits.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }

            /// Parses 32 hex digits; rejects the all-zero id.
            pub fn from_hex(s: &str) -> Option<Self> {
                let v = from_hex(s)?;
                Self::from_bytes(v.try_into().ok()?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "({})"), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

id16!(
    /// Identifies one file's content: in the header, the block AAD and the
    /// data key's encryption context.
    FileId,
    "FileId"
);
id16!(
    /// Identifies a volume: in the config, every encryption context and
    /// every header MAC.
    VolumeId,
    "VolumeId"
);

id16!(
    /// Version 2: identifies a directory: the associated data of its
    /// entries' names and the binding of its xattr values. Stored in the
    /// directory's `kmsfs.dirid`; the root's is the volume id.
    DirId,
    "DirId"
);
id16!(
    /// Version 2: identifies a symlink: the associated data of its target
    /// and the binding of its xattr values. Stored at the start of the
    /// encrypted target.
    LinkId,
    "LinkId"
);

impl DirId {
    /// The root directory's id: the volume id (authenticated by the
    /// config MAC; the root has no `kmsfs.dirid`).
    pub fn root(volume: &VolumeId) -> DirId {
        DirId(volume.0)
    }
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses hex (either case); `None` on odd length or a non-hex digit.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let id = FileId([0xab; 16]);
        assert_eq!(id.to_hex(), "ab".repeat(16));
        assert_eq!(FileId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(FileId::from_hex(&"AB".repeat(16)), Some(id));
        assert_eq!(format!("{id:?}"), format!("FileId({})", "ab".repeat(16)));
        assert_eq!(to_hex(&[0, 1, 0xfe]), "0001fe");
        assert_eq!(from_hex("0001fe"), Some(vec![0, 1, 0xfe]));
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert_eq!(VolumeId::from_hex(&"00".repeat(16)), None);
        assert_eq!(VolumeId::from_hex(&"ab".repeat(15)), None);
        assert_eq!(VolumeId::from_hex(&"zz".repeat(16)), None);
        assert_eq!(VolumeId::from_hex("abc"), None);
        assert_eq!(FileId::from_bytes([0; 16]), None);
    }

    #[test]
    fn random_ids_differ() {
        let a = FileId::random().unwrap();
        let b = FileId::random().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.0, [0; 16]);
    }
}
