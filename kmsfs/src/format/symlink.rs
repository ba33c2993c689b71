//! Version 2 symlink targets (docs/FORMAT.md, "Symlinks"): the backing
//! target is B64(link id ‖ AES-SIV(target)), the associated data the link's
//! own random id, under a key derived from the volume's name key.

use super::ids::LinkId;
use super::kdf::{DataKey, SYMLINK_SIV_LABEL, SivKey};
use super::names::{SIV_TAG_SIZE, encoded_len};
use aes_siv::siv::Aes256Siv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::fmt;

/// Domain separation in front of the link id in a target's associated data.
pub const SYMLINK_AAD_DOMAIN: &[u8] = b"kmsfs symlink v2\0";
/// Longest stored target Linux file systems keep (`PATH_MAX` − 1).
pub const STORED_TARGET_MAX: usize = 4095;
/// Longest plaintext target: its stored form is at most 4095 bytes.
pub const SYMLINK_TARGET_MAX: usize = 3039;
/// Bytes in front of the SIV output: the link id.
const ID_SIZE: usize = 16;

/// Why a target is refused or does not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    /// An empty target or one with a NUL (`EINVAL`/`ENOENT` at the caller).
    Invalid,
    /// Longer than [`SYMLINK_TARGET_MAX`] (`ENAMETOOLONG`).
    TooLong { len: usize },
    /// The stored target is not canonical unpadded base64url of an id and
    /// a sealed target.
    Encoding,
    /// SIV authentication failed: edited, spliced from another link, or
    /// sealed under another key.
    Authentication,
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Invalid => f.write_str("not a valid symlink target"),
            TargetError::TooLong { len } => write!(
                f,
                "symlink target of {len} bytes is longer than {SYMLINK_TARGET_MAX}"
            ),
            TargetError::Encoding => f.write_str("stored symlink target is not a kmsfs encoding"),
            TargetError::Authentication => f.write_str("symlink target failed authentication"),
        }
    }
}

impl std::error::Error for TargetError {}

/// The plaintext target length of a stored target of `stored_len` bytes
/// (what `lstat` must report as the link's size, without decrypting);
/// `None` for a length no stored target has.
pub fn target_len(stored_len: u64) -> Option<u64> {
    if stored_len % 4 == 1 || stored_len > STORED_TARGET_MAX as u64 {
        return None;
    }
    let raw = stored_len * 3 / 4;
    raw.checked_sub((ID_SIZE + SIV_TAG_SIZE) as u64)
        .filter(|n| *n > 0)
}

/// The volume's symlink target cipher (key wiped on drop; no `Debug`).
pub struct SymlinkCipher {
    key: SivKey,
}

impl SymlinkCipher {
    pub fn new(name_key: &DataKey) -> Self {
        SymlinkCipher {
            key: SivKey::derive(name_key, SYMLINK_SIV_LABEL),
        }
    }

    fn siv(&self) -> Aes256Siv {
        self.key.cipher()
    }

    /// The associated data of the target of link `id`.
    pub fn aad(id: &LinkId) -> [u8; SYMLINK_AAD_DOMAIN.len() + ID_SIZE] {
        let mut a = [0u8; SYMLINK_AAD_DOMAIN.len() + ID_SIZE];
        a[..SYMLINK_AAD_DOMAIN.len()].copy_from_slice(SYMLINK_AAD_DOMAIN);
        a[SYMLINK_AAD_DOMAIN.len()..].copy_from_slice(&id.0);
        a
    }

    /// The stored target of a new link `id` pointing at `target`.
    pub fn encrypt_target(&self, id: &LinkId, target: &[u8]) -> Result<String, TargetError> {
        if target.is_empty() || target.contains(&0) {
            return Err(TargetError::Invalid);
        }
        if target.len() > SYMLINK_TARGET_MAX {
            return Err(TargetError::TooLong { len: target.len() });
        }
        let sealed = self
            .siv()
            .encrypt([&Self::aad(id)[..]], target)
            // Only more than 126 headers can fail; there is one.
            .map_err(|_| TargetError::Encoding)?;
        let mut raw = Vec::with_capacity(ID_SIZE + sealed.len());
        raw.extend_from_slice(&id.0);
        raw.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// The link id and plaintext target of a stored target.
    pub fn decrypt_target(&self, stored: &[u8]) -> Result<(LinkId, Vec<u8>), TargetError> {
        if stored.len() > STORED_TARGET_MAX
            || stored.len() < encoded_len(ID_SIZE + SIV_TAG_SIZE + 1)
        {
            return Err(TargetError::Encoding);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(stored)
            .map_err(|_| TargetError::Encoding)?;
        let (id, sealed) = raw.split_at(ID_SIZE);
        let mut a = [0u8; ID_SIZE];
        a.copy_from_slice(id);
        let id = LinkId::from_bytes(a).ok_or(TargetError::Encoding)?;
        let target = self
            .siv()
            .decrypt([&Self::aad(&id)[..]], sealed)
            .map_err(|_| TargetError::Authentication)?;
        if target.is_empty() || target.contains(&0) {
            return Err(TargetError::Authentication);
        }
        Ok((id, target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SymlinkCipher {
        SymlinkCipher::new(&DataKey::from_slice(&[0x42; 32]).unwrap())
    }

    const L: LinkId = LinkId([0x21; 16]);

    #[test]
    fn round_trip_and_limits() {
        let c = cipher();
        for t in [
            &b"x"[..],
            b"../a dir/with\nnewline",
            "\u{e9}t\u{e9}".as_bytes(),
        ] {
            let s = c.encrypt_target(&L, t).unwrap();
            assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), (L, t.to_vec()));
        }
        let max = vec![b'/'; SYMLINK_TARGET_MAX];
        let s = c.encrypt_target(&L, &max).unwrap();
        assert_eq!(s.len(), STORED_TARGET_MAX);
        assert_eq!(c.decrypt_target(s.as_bytes()).unwrap().1, max);
        assert_eq!(
            encoded_len(ID_SIZE + SIV_TAG_SIZE + SYMLINK_TARGET_MAX + 1),
            4096
        );
        assert_eq!(
            c.encrypt_target(&L, &[b'/'; SYMLINK_TARGET_MAX + 1]),
            Err(TargetError::TooLong { len: 3040 })
        );
        assert_eq!(c.encrypt_target(&L, b""), Err(TargetError::Invalid));
        assert_eq!(c.encrypt_target(&L, b"a\0b"), Err(TargetError::Invalid));
    }

    #[test]
    fn target_length_from_the_stored_length() {
        let c = cipher();
        for n in (1..=40).chain([1000, 3038, 3039]) {
            let s = c.encrypt_target(&L, &vec![b'a'; n]).unwrap();
            assert_eq!(target_len(s.len() as u64), Some(n as u64), "{n}");
        }
        for bad in [0, 1, 42, 43, 4096, 5000] {
            assert_eq!(target_len(bad), None, "{bad}");
        }
    }

    #[test]
    fn tampering_fails() {
        let c = cipher();
        let s = c.encrypt_target(&L, b"/etc/passwd").unwrap();
        let mut b = s.clone().into_bytes();
        for i in 0..b.len() {
            let orig = b[i];
            b[i] = if orig == b'A' { b'B' } else { b'A' };
            assert!(c.decrypt_target(&b).is_err(), "edit at {i}");
            b[i] = orig;
        }
        // The same target under another link id (splicing the id) fails.
        let other = c
            .encrypt_target(&LinkId([0x22; 16]), b"/etc/passwd")
            .unwrap();
        assert_ne!(other[22..], s[22..]);
        let raw_s = URL_SAFE_NO_PAD.decode(&s).unwrap();
        let raw_o = URL_SAFE_NO_PAD.decode(&other).unwrap();
        let spliced = [&raw_o[..16], &raw_s[16..]].concat();
        assert_eq!(
            c.decrypt_target(URL_SAFE_NO_PAD.encode(spliced).as_bytes()),
            Err(TargetError::Authentication)
        );
        let wrong_key = SymlinkCipher::new(&DataKey::from_slice(&[0x43; 32]).unwrap());
        assert_eq!(
            wrong_key.decrypt_target(s.as_bytes()),
            Err(TargetError::Authentication)
        );
        for bad in [
            &b""[..],
            b"short",
            b"/plain/target/of/some/length/here/x",
            &[b'A'; 4096],
        ] {
            assert!(c.decrypt_target(bad).is_err());
        }
        // An all-zero id is never written.
        let zero = URL_SAFE_NO_PAD.encode([0u8; 40]);
        assert_eq!(
            c.decrypt_target(zero.as_bytes()),
            Err(TargetError::Encoding)
        );
    }
}
