//! Version 2 names (docs/FORMAT.md, "Names"): a plaintext name is sealed
//! with AES-SIV under the volume's name key, the parent directory's id as
//! associated data, and encoded as unpadded base64url. An encoding longer
//! than 255 bytes is stored under a fixed-length hash (`kmsfs.long.<hash>`)
//! with the full encoding in a sidecar file beside it.
//!
//! Pure functions over bytes: no I/O. The caller reads sidecars and
//! `kmsfs.dirid` files and hands their bytes in.

use super::ids::DirId;
use super::kdf::{DataKey, NAME_SIV_LABEL, SivKey};
use aes_siv::siv::Aes256Siv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::fmt;

/// Longest plaintext name (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Longest backing name kmsfs writes in the short form.
pub const NAME_MAX_BACKING: usize = 255;
/// Longest plaintext name whose encoding fits [`NAME_MAX_BACKING`]:
/// ⌈4 (175 + 16) / 3⌉ = 255, ⌈4 (176 + 16) / 3⌉ = 256.
pub const SHORT_NAME_MAX: usize = 175;
/// Bytes of the SIV tag in front of every sealed name.
pub const SIV_TAG_SIZE: usize = 16;
/// Domain separation in front of the parent id in a name's associated data.
pub const NAME_AAD_DOMAIN: &[u8] = b"kmsfs name v2\0";
/// Prefix of a long-name entry.
pub const LONG_PREFIX: &str = "kmsfs.long.";
/// Suffix of a long-name entry's sidecar.
pub const SIDECAR_SUFFIX: &str = ".name";
/// Characters of B64(SHA-256).
const HASH_B64_LEN: usize = 43;
/// Bytes of a long-name entry's name.
pub const LONG_NAME_LEN: usize = LONG_PREFIX.len() + HASH_B64_LEN;
/// Bytes of a sidecar's name.
pub const SIDECAR_NAME_LEN: usize = LONG_NAME_LEN + SIDECAR_SUFFIX.len();
/// Sidecar content: the encoding of a name of 176..=255 bytes.
pub const SIDECAR_MIN: usize = NAME_MAX_BACKING + 1;
pub const SIDECAR_MAX: usize = encoded_len(NAME_MAX + SIV_TAG_SIZE);

/// Characters of the unpadded base64 of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (4 * n).div_ceil(3)
}

/// Why a name is refused or does not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// A plaintext name that no file can have: empty, `.`, `..`, or with a
    /// `/` or NUL (`EINVAL`).
    Invalid,
    /// A plaintext name longer than [`NAME_MAX`] (`ENAMETOOLONG`).
    TooLong { len: usize },
    /// A backing name or sidecar that is not canonical unpadded base64url
    /// of a possible sealed name.
    Encoding,
    /// SIV authentication failed: the name was edited, moved from another
    /// directory, or sealed under another key.
    Authentication,
    /// A long-name entry whose sidecar does not hash to the entry's name.
    SidecarMismatch,
    /// A long-name entry with no sidecar given.
    MissingSidecar,
    /// A long form of a name that fits the short form (or the reverse):
    /// each name has exactly one backing form.
    NotCanonical,
    /// A reserved or unknown backing name, not an entry's name.
    NotAName,
}

impl NameError {
    /// Whether the error means damaged or tampered backing data (as
    /// opposed to a plaintext name the caller may not use).
    pub fn is_damage(&self) -> bool {
        !matches!(self, NameError::Invalid | NameError::TooLong { .. })
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Invalid => f.write_str("not a valid file name"),
            NameError::TooLong { len } => {
                write!(f, "name of {len} bytes is longer than {NAME_MAX}")
            }
            NameError::Encoding => f.write_str("backing name is not a kmsfs encoding"),
            NameError::Authentication => f.write_str(
                "name failed authentication (edited, moved from another directory or another volume)",
            ),
            NameError::SidecarMismatch => {
                f.write_str("long-name sidecar does not belong to its entry")
            }
            NameError::MissingSidecar => f.write_str("long-name entry without its sidecar"),
            NameError::NotCanonical => f.write_str("name stored in the wrong form (short/long)"),
            NameError::NotAName => f.write_str("reserved backing name, not an entry"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a plaintext name: 1..=255 bytes, no `/` or NUL, not `.` or `..`.
pub fn validate_name(name: &[u8]) -> Result<(), NameError> {
    if name.len() > NAME_MAX {
        return Err(NameError::TooLong { len: name.len() });
    }
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name.iter().any(|b| *b == b'/' || *b == 0)
    {
        return Err(NameError::Invalid);
    }
    Ok(())
}

/// The backing form of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackingName {
    /// The encoding itself is the backing name (≤ 255 bytes).
    Short(String),
    /// `entry` (`kmsfs.long.<hash>`) names the file; a sidecar named
    /// [`sidecar_name`]`(entry)` holds `encoded`.
    Long { entry: String, encoded: String },
}

impl BackingName {
    /// The name of the backing entry (what lookup opens).
    pub fn entry(&self) -> &str {
        match self {
            BackingName::Short(s) => s,
            BackingName::Long { entry, .. } => entry,
        }
    }

    /// The sidecar's name and content for a long name.
    pub fn sidecar(&self) -> Option<(String, &str)> {
        match self {
            BackingName::Short(_) => None,
            BackingName::Long { entry, encoded } => Some((sidecar_name(entry), encoded)),
        }
    }
}

/// `kmsfs.long.` ‖ B64(SHA-256(encoded)).
pub fn long_entry_name(encoded: &str) -> String {
    let mut s = String::with_capacity(LONG_NAME_LEN);
    s.push_str(LONG_PREFIX);
    URL_SAFE_NO_PAD.encode_string(Sha256::digest(encoded.as_bytes()), &mut s);
    s
}

/// The sidecar of a long-name entry: `<entry>.name`.
pub fn sidecar_name(entry: &str) -> String {
    format!("{entry}{SIDECAR_SUFFIX}")
}

/// Checks that `sidecar` (a sidecar file's bytes) belongs to the long-name
/// entry `entry` and is a long encoding; returns the encoding. Says nothing
/// about authenticity, which [`NameCipher::decrypt_name`] checks.
pub fn verify_sidecar<'a>(entry: &[u8], sidecar: &'a [u8]) -> Result<&'a str, NameError> {
    if !is_long_entry(entry) {
        return Err(NameError::NotAName);
    }
    if sidecar.len() < SIDECAR_MIN {
        return Err(NameError::NotCanonical);
    }
    if sidecar.len() > SIDECAR_MAX {
        return Err(NameError::Encoding);
    }
    let encoded = std::str::from_utf8(sidecar).map_err(|_| NameError::Encoding)?;
    if long_entry_name(encoded).as_bytes() != entry {
        return Err(NameError::SidecarMismatch);
    }
    Ok(encoded)
}

fn is_b64(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
}

fn is_long_entry(name: &[u8]) -> bool {
    name.len() == LONG_NAME_LEN
        && name.starts_with(LONG_PREFIX.as_bytes())
        && is_b64(&name[LONG_PREFIX.len()..])
}

/// What a backing directory entry is (encrypted-names volumes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackingKind<'a> {
    /// `.` or `..`.
    Dot,
    /// A short encoded name: decrypt it.
    Short,
    /// A long-name entry: read its sidecar, then decrypt.
    Long,
    /// The sidecar of the long-name entry `entry`.
    Sidecar { entry: &'a [u8] },
    /// `kmsfs.dirid`.
    DirId,
    /// `kmsfs.conf` (in the root; elsewhere it is `Unknown`).
    Config,
    /// `kmsfs.tmp.*`: an operation in progress, or a crash's leftover.
    Temp,
    /// Anything else: not written by kmsfs (fsck reports it).
    Unknown,
}

/// Classifies a backing name of an encrypted-names directory. No encoded
/// name contains `.`, so every name with a `.` is kmsfs's own or unknown.
pub fn classify(name: &[u8], in_root: bool) -> BackingKind<'_> {
    use super::dirid::{DIRID_FILE_NAME, is_temp_name};
    if name == b"." || name == b".." {
        return BackingKind::Dot;
    }
    if !name.contains(&b'.') {
        return if !name.is_empty()
            && name.len() <= NAME_MAX_BACKING
            && name.len() >= encoded_len(1 + SIV_TAG_SIZE)
            && is_b64(name)
        {
            BackingKind::Short
        } else {
            BackingKind::Unknown
        };
    }
    if is_long_entry(name) {
        return BackingKind::Long;
    }
    if let Some(entry) = name
        .strip_suffix(SIDECAR_SUFFIX.as_bytes())
        .filter(|e| is_long_entry(e))
    {
        return BackingKind::Sidecar { entry };
    }
    if name == DIRID_FILE_NAME.as_bytes() {
        return BackingKind::DirId;
    }
    if in_root && name == super::CONFIG_FILE_NAME.as_bytes() {
        return BackingKind::Config;
    }
    if is_temp_name(name) {
        return BackingKind::Temp;
    }
    BackingKind::Unknown
}

/// Whether a plaintext name is reserved on a plaintext-names volume
/// (`EPERM` to users, never listed): `kmsfs.conf` in the root,
/// `kmsfs.dirid` anywhere, and names beginning `kmsfs.tmp.`.
pub fn is_reserved_plaintext(name: &[u8], in_root: bool) -> bool {
    use super::dirid::{DIRID_FILE_NAME, TEMP_PREFIX};
    name == DIRID_FILE_NAME.as_bytes()
        || name.starts_with(TEMP_PREFIX.as_bytes())
        || (in_root && name == super::CONFIG_FILE_NAME.as_bytes())
}

/// The volume's name cipher: the AES-SIV key derived from the name data key
/// (wiped on drop; no `Debug`). Cheap to share: every call builds its own
/// short-lived SIV state.
pub struct NameCipher {
    key: SivKey,
}

impl NameCipher {
    pub fn new(name_key: &DataKey) -> Self {
        NameCipher {
            key: SivKey::derive(name_key, NAME_SIV_LABEL),
        }
    }

    fn siv(&self) -> Aes256Siv {
        self.key.cipher()
    }

    /// The associated data of names in the directory `parent`.
    pub fn aad(parent: &DirId) -> [u8; NAME_AAD_DOMAIN.len() + 16] {
        let mut a = [0u8; NAME_AAD_DOMAIN.len() + 16];
        a[..NAME_AAD_DOMAIN.len()].copy_from_slice(NAME_AAD_DOMAIN);
        a[NAME_AAD_DOMAIN.len()..].copy_from_slice(&parent.0);
        a
    }

    /// The encoding of `name` in `parent`: B64(SIV(AD, name)).
    pub fn encode(&self, parent: &DirId, name: &[u8]) -> Result<String, NameError> {
        validate_name(name)?;
        let sealed = self
            .siv()
            .encrypt([&Self::aad(parent)[..]], name)
            // Only more than 126 headers can fail; there is one.
            .map_err(|_| NameError::Encoding)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The backing name of `name` in `parent`: the encoding, or its long
    /// form when the encoding is longer than 255 bytes.
    pub fn encrypt_name(&self, parent: &DirId, name: &[u8]) -> Result<BackingName, NameError> {
        let encoded = self.encode(parent, name)?;
        if encoded.len() <= NAME_MAX_BACKING {
            Ok(BackingName::Short(encoded))
        } else {
            Ok(BackingName::Long {
                entry: long_entry_name(&encoded),
                encoded,
            })
        }
    }

    /// Decodes and authenticates an encoding (a short backing name or a
    /// sidecar's content) under `parent`.
    fn decrypt_encoded(&self, parent: &DirId, encoded: &[u8]) -> Result<Vec<u8>, NameError> {
        if encoded.len() > SIDECAR_MAX || !is_b64(encoded) {
            return Err(NameError::Encoding);
        }
        let sealed = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| NameError::Encoding)?;
        if sealed.len() <= SIV_TAG_SIZE {
            return Err(NameError::Encoding);
        }
        let name = self
            .siv()
            .decrypt([&Self::aad(parent)[..]], &sealed)
            .map_err(|_| NameError::Authentication)?;
        // Authentic means kmsfs sealed it, and kmsfs seals only valid
        // names; checked anyway.
        validate_name(&name).map_err(|_| NameError::Authentication)?;
        Ok(name)
    }

    /// The plaintext name of backing entry `backing` in `parent`. A long
    /// entry needs its sidecar's bytes; a short one must have none.
    pub fn decrypt_name(
        &self,
        parent: &DirId,
        backing: &[u8],
        sidecar: Option<&[u8]>,
    ) -> Result<Vec<u8>, NameError> {
        match (classify(backing, false), sidecar) {
            (BackingKind::Short, None) => self.decrypt_encoded(parent, backing),
            (BackingKind::Short, Some(_)) => Err(NameError::NotCanonical),
            (BackingKind::Long, None) => Err(NameError::MissingSidecar),
            (BackingKind::Long, Some(s)) => {
                let encoded = verify_sidecar(backing, s)?;
                self.decrypt_encoded(parent, encoded.as_bytes())
            }
            _ => Err(NameError::NotAName),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> NameCipher {
        NameCipher::new(&DataKey::from_slice(&[0x42; 32]).unwrap())
    }

    const P: DirId = DirId([0x11; 16]);
    const Q: DirId = DirId([0x12; 16]);

    fn decrypt(c: &NameCipher, dir: &DirId, b: &BackingName) -> Result<Vec<u8>, NameError> {
        let side = b.sidecar().map(|(_, s)| s.as_bytes().to_vec());
        c.decrypt_name(dir, b.entry().as_bytes(), side.as_deref())
    }

    #[test]
    fn constants() {
        assert_eq!(encoded_len(SHORT_NAME_MAX + SIV_TAG_SIZE), 255);
        assert_eq!(encoded_len(SHORT_NAME_MAX + 1 + SIV_TAG_SIZE), 256);
        assert_eq!(SIDECAR_MAX, 362);
        assert_eq!(LONG_NAME_LEN, 54);
        assert_eq!(SIDECAR_NAME_LEN, 59);
        assert_eq!(NAME_AAD_DOMAIN.len(), 14);
    }

    #[test]
    fn round_trips_at_every_length_and_switches_form_at_176() {
        let c = cipher();
        for len in 1..=NAME_MAX {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let b = c.encrypt_name(&P, &name).unwrap();
            assert!(b.entry().len() <= NAME_MAX_BACKING);
            match &b {
                BackingName::Short(s) => {
                    assert!(len <= SHORT_NAME_MAX, "{len}");
                    assert_eq!(s.len(), encoded_len(len + SIV_TAG_SIZE));
                }
                BackingName::Long { entry, encoded } => {
                    assert!(len > SHORT_NAME_MAX, "{len}");
                    assert_eq!(entry.len(), LONG_NAME_LEN);
                    assert!((SIDECAR_MIN..=SIDECAR_MAX).contains(&encoded.len()));
                }
            }
            assert!(!b.entry().contains('/'));
            assert_eq!(decrypt(&c, &P, &b).unwrap(), name, "{len}");
        }
    }

    #[test]
    fn any_bytes_but_slash_and_nul() {
        let c = cipher();
        for name in [
            &b"with space"[..],
            b"new\nline",
            "caf\u{e9} \u{1f600}".as_bytes(),
            b"\xff\xfe not utf-8",
            b".hidden",
            b"...",
            b"-",
        ] {
            let b = c.encrypt_name(&P, name).unwrap();
            assert!(!b.entry().contains('.'), "an encoded name has no dot");
            assert_eq!(decrypt(&c, &P, &b).unwrap(), name);
        }
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b", b"/"] {
            assert_eq!(c.encrypt_name(&P, bad), Err(NameError::Invalid));
        }
        assert_eq!(
            c.encrypt_name(&P, &[b'x'; 256]),
            Err(NameError::TooLong { len: 256 })
        );
        assert!(!NameError::Invalid.is_damage());
        assert!(NameError::Authentication.is_damage());
    }

    #[test]
    fn deterministic_per_directory() {
        let c = cipher();
        let a = c.encrypt_name(&P, b"report.pdf").unwrap();
        assert_eq!(a, c.encrypt_name(&P, b"report.pdf").unwrap());
        let b = c.encrypt_name(&Q, b"report.pdf").unwrap();
        assert_ne!(a, b, "the same name in two directories differs");
        let long = [b'L'; 200];
        assert_ne!(
            c.encrypt_name(&P, &long).unwrap().entry(),
            c.encrypt_name(&Q, &long).unwrap().entry()
        );
    }

    #[test]
    fn a_name_moved_to_another_directory_fails() {
        let c = cipher();
        for len in [1, 175, 176, 255] {
            let b = c.encrypt_name(&P, &vec![b'm'; len]).unwrap();
            assert_eq!(decrypt(&c, &Q, &b), Err(NameError::Authentication));
        }
        let other = NameCipher::new(&DataKey::from_slice(&[0x43; 32]).unwrap());
        let b = c.encrypt_name(&P, b"x").unwrap();
        assert_eq!(decrypt(&other, &P, &b), Err(NameError::Authentication));
    }

    #[test]
    fn an_edited_name_fails() {
        let c = cipher();
        let BackingName::Short(s) = c.encrypt_name(&P, b"budget.xlsx").unwrap() else {
            panic!("short");
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..s.len() {
            for &ch in alphabet {
                let mut e = s.clone().into_bytes();
                if e[i] == ch {
                    continue;
                }
                e[i] = ch;
                let r = c.decrypt_name(&P, &e, None);
                assert!(
                    matches!(r, Err(NameError::Authentication | NameError::Encoding)),
                    "edit at {i} to {} accepted: {r:?}",
                    ch as char
                );
            }
        }
        // Shortened, lengthened, with padding.
        for e in [
            &s[1..],
            &s[..s.len() - 1],
            &format!("{s}A"),
            &format!("{s}="),
        ] {
            assert!(c.decrypt_name(&P, e.as_bytes(), None).is_err(), "{e}");
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let c = cipher();
        let BackingName::Short(s) = c.encrypt_name(&P, b"abc").unwrap() else {
            panic!("short");
        };
        // 19 bytes sealed: 26 characters, the last carries 2 unused bits.
        assert_eq!(s.len(), 26);
        let last = s.as_bytes()[25];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let v = alphabet.iter().position(|c| *c == last).unwrap();
        let mut e = s.into_bytes();
        e[25] = alphabet[v ^ 1];
        assert_eq!(c.decrypt_name(&P, &e, None), Err(NameError::Encoding));
    }

    #[test]
    fn long_name_sidecars_are_checked() {
        let c = cipher();
        let name = [b'z'; 200];
        let b = c.encrypt_name(&P, &name).unwrap();
        let BackingName::Long { entry, encoded } = &b else {
            panic!("long");
        };
        let (side_name, content) = b.sidecar().unwrap();
        assert_eq!(side_name, format!("{entry}.name"));
        assert_eq!(content, encoded);
        let e = entry.as_bytes();
        assert_eq!(verify_sidecar(e, encoded.as_bytes()), Ok(encoded.as_str()));

        // Without the sidecar; with another name's sidecar; edited.
        assert_eq!(c.decrypt_name(&P, e, None), Err(NameError::MissingSidecar));
        let other = c.encrypt_name(&P, &[b'y'; 200]).unwrap();
        let (_, oc) = other.sidecar().unwrap();
        assert_eq!(
            c.decrypt_name(&P, e, Some(oc.as_bytes())),
            Err(NameError::SidecarMismatch)
        );
        let mut edited = encoded.clone().into_bytes();
        edited[40] = if edited[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            c.decrypt_name(&P, e, Some(&edited)),
            Err(NameError::SidecarMismatch)
        );
        // An edited sidecar renamed to match its own hash: SIV fails.
        let forged = long_entry_name(std::str::from_utf8(&edited).unwrap());
        assert_eq!(
            c.decrypt_name(&P, forged.as_bytes(), Some(&edited)),
            Err(NameError::Authentication)
        );
        // The pair moved to another directory.
        assert_eq!(
            c.decrypt_name(&Q, e, Some(encoded.as_bytes())),
            Err(NameError::Authentication)
        );
        // A short encoding in the long form is refused: one form per name.
        let BackingName::Short(short) = c.encrypt_name(&P, b"short").unwrap() else {
            panic!("short");
        };
        let as_long = long_entry_name(&short);
        assert_eq!(
            c.decrypt_name(&P, as_long.as_bytes(), Some(short.as_bytes())),
            Err(NameError::NotCanonical)
        );
        assert_eq!(
            c.decrypt_name(&P, short.as_bytes(), Some(short.as_bytes())),
            Err(NameError::NotCanonical)
        );
        // Oversized and non-UTF-8 sidecars.
        assert_eq!(
            verify_sidecar(e, &[b'A'; SIDECAR_MAX + 1]),
            Err(NameError::Encoding)
        );
        assert_eq!(verify_sidecar(e, &[0xff; 300]), Err(NameError::Encoding));
    }

    #[test]
    fn classification_of_backing_names() {
        let c = cipher();
        let short = c.encrypt_name(&P, b"a").unwrap();
        let long = c.encrypt_name(&P, &[b'a'; 255]).unwrap();
        let (side, _) = long.sidecar().unwrap();
        assert_eq!(
            classify(short.entry().as_bytes(), false),
            BackingKind::Short
        );
        assert_eq!(classify(long.entry().as_bytes(), false), BackingKind::Long);
        assert_eq!(
            classify(side.as_bytes(), false),
            BackingKind::Sidecar {
                entry: long.entry().as_bytes()
            }
        );
        assert_eq!(classify(b".", false), BackingKind::Dot);
        assert_eq!(classify(b"..", true), BackingKind::Dot);
        assert_eq!(classify(b"kmsfs.dirid", false), BackingKind::DirId);
        assert_eq!(classify(b"kmsfs.conf", true), BackingKind::Config);
        assert_eq!(classify(b"kmsfs.conf", false), BackingKind::Unknown);
        let t = super::super::dirid::temp_name().unwrap();
        assert_eq!(classify(t.as_bytes(), false), BackingKind::Temp);
        for unknown in [
            &b"plain.txt"[..],
            b"short",
            b"kmsfs.long.abc",
            b"kmsfs.tmp.xyz",
            &[b'A'; 256],
            b"",
        ] {
            assert_eq!(classify(unknown, false), BackingKind::Unknown);
        }
        for r in [&b"kmsfs.conf"[..], b"kmsfs.dirid"] {
            assert_eq!(c.decrypt_name(&P, r, None), Err(NameError::NotAName));
        }
    }

    #[test]
    fn reserved_plaintext_names() {
        assert!(is_reserved_plaintext(b"kmsfs.conf", true));
        assert!(!is_reserved_plaintext(b"kmsfs.conf", false));
        assert!(is_reserved_plaintext(b"kmsfs.dirid", false));
        assert!(is_reserved_plaintext(b"kmsfs.dirid", true));
        assert!(is_reserved_plaintext(b"kmsfs.tmp.anything", false));
        assert!(!is_reserved_plaintext(b"kmsfs.txt", true));
        assert!(!is_reserved_plaintext(b"kmsfs.long.x", false));
    }
}
