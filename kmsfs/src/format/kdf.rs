//! Data keys and what is derived from them. Every derivation has a named
//! label (docs/FORMAT.md, "Primitives"); a data key itself is never used as
//! a cipher or MAC key.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// HKDF info for the AES-256-GCM key of a file's content blocks.
pub const CONTENT_KEY_LABEL: &[u8] = b"kmsfs v1 content key AES-256-GCM";
/// HKDF info for the key of a file header's MAC.
pub const HEADER_MAC_LABEL: &[u8] = b"kmsfs v1 header mac HMAC-SHA256";
/// HKDF info for the key of the volume config's MAC (both versions).
pub const CONFIG_MAC_LABEL: &[u8] = b"kmsfs v1 config mac HMAC-SHA256";
/// Version 1: HKDF info for the volume's `user.*` xattr value key, from the
/// config data key (`fs/xattr.rs`).
pub const XATTR_KEY_LABEL: &[u8] = b"kmsfs v1 xattr value AES-256-GCM";
/// Version 2: the 64-byte AES-SIV key of names, from the name data key.
pub const NAME_SIV_LABEL: &[u8] = b"kmsfs v2 name AES-SIV-CMAC-512";
/// Version 2: the 64-byte AES-SIV key of symlink targets, from the name data key.
pub const SYMLINK_SIV_LABEL: &[u8] = b"kmsfs v2 symlink target AES-SIV-CMAC-512";
/// Version 2: the AES-256-GCM key of directories' and symlinks' xattr
/// values, from the name data key.
pub const NODE_XATTR_LABEL: &[u8] = b"kmsfs v2 dir and symlink xattr AES-256-GCM";
/// Version 2: the AES-256-GCM key of a regular file's xattr values, from
/// the file's data key.
pub const FILE_XATTR_LABEL: &[u8] = b"kmsfs v2 file xattr AES-256-GCM";

/// Every label of both versions, for the distinctness test.
/// An AES-SIV key (AES-256-SIV-CMAC, 64 bytes) derived from a data key
/// with one label; wiped on drop, no `Debug`.
pub struct SivKey(Zeroizing<[u8; SIV_KEY_SIZE]>);

impl SivKey {
    pub fn derive(key: &DataKey, label: &[u8]) -> SivKey {
        SivKey(key.derive64(label))
    }

    /// A fresh SIV state (its `encrypt` takes `&mut self`).
    pub fn cipher(&self) -> aes_siv::siv::Aes256Siv {
        use aes_siv::KeyInit as _;
        // A 64-byte key, as AES-256-SIV wants: cannot fail.
        match aes_siv::siv::Aes256Siv::new_from_slice(self.0.as_ref()) {
            Ok(s) => s,
            Err(_) => unreachable!("AES-256-SIV key is 64 bytes"),
        }
    }
}

#[cfg(test)]
pub(crate) const ALL_LABELS: &[&[u8]] = &[
    CONTENT_KEY_LABEL,
    HEADER_MAC_LABEL,
    CONFIG_MAC_LABEL,
    NAME_SIV_LABEL,
    SYMLINK_SIV_LABEL,
    NODE_XATTR_LABEL,
    FILE_XATTR_LABEL,
    XATTR_KEY_LABEL,
];

/// Bytes of a data key (kmsd `AES_256`).
pub const DATA_KEY_SIZE: usize = 32;
/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_SIZE: usize = 32;
/// Bytes of an AES-SIV key with AES-256 (S2V key ‖ CTR key).
pub const SIV_KEY_SIZE: usize = 64;

/// A 32-byte plaintext data key from kmsd. No `Debug`, no `Clone`; wiped
/// when dropped; the bytes are reachable only through [`DataKey::expose`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DATA_KEY_SIZE]);

impl DataKey {
    /// Takes ownership of key bytes and wipes the caller's array.
    pub fn new(bytes: &mut [u8; DATA_KEY_SIZE]) -> Self {
        let key = DataKey(*bytes);
        bytes.zeroize();
        key
    }

    /// Copies a key of exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut a: [u8; DATA_KEY_SIZE] = bytes.try_into().ok()?;
        Some(DataKey::new(&mut a))
    }

    /// A random key from the operating system (tests and tools; kmsfs gets
    /// its keys from kmsd).
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut a = [0u8; DATA_KEY_SIZE];
        getrandom::fill(&mut a)?;
        Ok(DataKey::new(&mut a))
    }

    pub fn expose(&self) -> &[u8; DATA_KEY_SIZE] {
        &self.0
    }

    /// HKDF-SHA256(salt empty, ikm = this key, info = `label`), 32 bytes.
    pub fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: cannot fail.
        let _ = Hkdf::<Sha256>::new(None, &self.0).expand(label, out.as_mut());
        out
    }

    /// HKDF-SHA256(salt empty, ikm = this key, info = `label`), 64 bytes
    /// (an AES-SIV key).
    pub fn derive64(&self, label: &[u8]) -> Zeroizing<[u8; SIV_KEY_SIZE]> {
        let mut out = Zeroizing::new([0u8; SIV_KEY_SIZE]);
        // 64 bytes is far below HKDF-SHA256's 8160-byte limit: cannot fail.
        let _ = Hkdf::<Sha256>::new(None, &self.0).expand(label, out.as_mut());
        out
    }

    /// HMAC-SHA256 under the key derived with `label`, over `parts` in order.
    pub fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; MAC_SIZE] {
        let mut m = self.mac_state(label);
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Checks `tag` against [`DataKey::mac`] in constant time.
    pub fn verify_mac(&self, label: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = self.mac_state(label);
        for p in parts {
            m.update(p);
        }
        m.verify_slice(tag).is_ok()
    }

    fn mac_state(&self, label: &[u8]) -> Hmac<Sha256> {
        let k = self.derive(label);
        // HMAC takes keys of any length: cannot fail.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(k.as_ref()) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_derivations_differ() {
        let k = DataKey::from_slice(&[7; 32]).unwrap();
        let labels = ALL_LABELS;
        for l in labels {
            assert!(l.is_ascii() && !l.is_empty());
        }
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(*k.derive(a), *k.derive(b));
            }
            assert_ne!(&*k.derive(a), k.expose());
        }
    }

    #[test]
    fn derive64_is_hkdf_with_64_bytes() {
        let k = DataKey::from_slice(&[7; 32]).unwrap();
        let long = k.derive64(NAME_SIV_LABEL);
        // HKDF-Expand's first block does not depend on L.
        assert_eq!(long[..32], *k.derive(NAME_SIV_LABEL));
        assert_ne!(long[..32], long[32..]);
        assert_ne!(*long, *k.derive64(SYMLINK_SIV_LABEL));
    }

    #[test]
    fn mac_verifies_and_rejects() {
        let k = DataKey::random().unwrap();
        let t = k.mac(HEADER_MAC_LABEL, &[b"ab", b"c"]);
        assert!(k.verify_mac(HEADER_MAC_LABEL, &[b"a", b"bc"], &t));
        assert!(!k.verify_mac(HEADER_MAC_LABEL, &[b"abd"], &t));
        assert!(!k.verify_mac(CONFIG_MAC_LABEL, &[b"abc"], &t));
        assert!(!k.verify_mac(HEADER_MAC_LABEL, &[b"abc"], &t[..31]));
        let other = DataKey::random().unwrap();
        assert!(!other.verify_mac(HEADER_MAC_LABEL, &[b"abc"], &t));
    }

    #[test]
    fn construction_wipes_the_source_and_checks_length() {
        let mut raw = [9u8; 32];
        let k = DataKey::new(&mut raw);
        assert_eq!(raw, [0; 32]);
        assert_eq!(k.expose(), &[9; 32]);
        assert!(DataKey::from_slice(&[1; 16]).is_none());
        assert!(DataKey::from_slice(&[1; 33]).is_none());
    }
}
