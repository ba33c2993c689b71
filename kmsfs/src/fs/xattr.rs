//! Extended attributes. Names stay plaintext (like file names); values in
//! the `user.` namespace are encrypted with a volume-wide key, so a
//! directory or an empty file (which have no data key) can carry them too.
//! Other namespaces (`security.`, `trusted.`, `system.`) pass through as
//! they are: the kernel and tools interpret those values. POSIX ACLs pass
//! through on every format ([`is_posix_acl`]).
//!
//! Stored value: `XATTR_VERSION (1) ‖ nonce (12) ‖ AES-256-GCM(value) ‖ tag (16)`,
//! AAD = `XATTR_AAD_DOMAIN ‖ name`, so a value cannot be moved to another
//! attribute name undetected. The key is HKDF(config data key,
//! [`XATTR_KEY_LABEL`]).

use crate::format::DataKey;
pub use crate::format::kdf::XATTR_KEY_LABEL;
use crate::format::xattr::{open_value, seal_value};
use aes_gcm::{Aes256Gcm, KeyInit};
use fuser::Errno;

/// Leading byte of every stored value.
pub const XATTR_VERSION: u8 = 1;
const AAD_DOMAIN: &[u8] = b"kmsfs xattr v1\0";
const NONCE: usize = 12;
const TAG: usize = 16;
/// Bytes an encrypted value adds.
pub const XATTR_OVERHEAD: usize = 1 + NONCE + TAG;

/// The POSIX ACL attributes. Stored as they are on the backing inode, in
/// every format (docs/FORMAT.md "POSIX ACLs"): like the mode and owner
/// they sit beside, an ACL is access metadata the backing file system must
/// read to keep the ACL mask and the mode's group bits in agreement and to
/// hand a directory's default ACL to what is created in it. The kernel
/// enforces them (`FUSE_POSIX_ACL`).
pub const POSIX_ACL_NAMES: [&[u8]; 2] = [b"system.posix_acl_access", b"system.posix_acl_default"];

/// Whether `name` is a POSIX ACL attribute (passed through unencrypted).
pub fn is_posix_acl(name: &[u8]) -> bool {
    POSIX_ACL_NAMES.contains(&name)
}

/// Whether values of `name` are encrypted.
pub fn is_encrypted(name: &[u8]) -> bool {
    name.starts_with(b"user.")
}

/// The volume's xattr value cipher (expanded key wiped on drop).
pub struct XattrCipher {
    aead: Aes256Gcm,
}

impl XattrCipher {
    /// Derived from the volume's config data key.
    pub fn new(config_key: &DataKey) -> Self {
        let k = config_key.derive(XATTR_KEY_LABEL);
        let aead = match Aes256Gcm::new_from_slice(k.as_ref()) {
            Ok(a) => a,
            Err(_) => unreachable!("AES-256 key is 32 bytes"),
        };
        XattrCipher { aead }
    }

    fn aad(name: &[u8]) -> Vec<u8> {
        [AAD_DOMAIN, name].concat()
    }

    pub fn seal(&self, name: &[u8], value: &[u8]) -> Result<Vec<u8>, Errno> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|_| Errno::EIO)?;
        seal_value(&self.aead, XATTR_VERSION, &nonce, &Self::aad(name), value)
            .map_err(|_| Errno::EIO)
    }

    /// The plaintext value; `EIO` when it does not authenticate.
    pub fn open(&self, name: &[u8], stored: &[u8]) -> Result<Vec<u8>, Errno> {
        open_value(&self.aead, XATTR_VERSION, &Self::aad(name), stored).map_err(|_| Errno::EIO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_bound_to_their_name() {
        let c = XattrCipher::new(&DataKey::random().unwrap());
        for v in [&b""[..], b"x", &[7u8; 5000]] {
            let s = c.seal(b"user.a", v).unwrap();
            assert_eq!(s.len(), v.len() + XATTR_OVERHEAD);
            assert_eq!(c.open(b"user.a", &s).unwrap(), v);
            assert_eq!(c.open(b"user.b", &s), Err(Errno::EIO));
        }
        let s = c.seal(b"user.a", b"secret value").unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"));
        let mut t = s.clone();
        t[20] ^= 1;
        assert_eq!(c.open(b"user.a", &t), Err(Errno::EIO));
        assert_eq!(c.open(b"user.a", &s[..10]), Err(Errno::EIO));
        let other = XattrCipher::new(&DataKey::random().unwrap());
        assert_eq!(other.open(b"user.a", &s), Err(Errno::EIO));
    }

    #[test]
    fn acl_names_are_recognised_exactly() {
        assert!(is_posix_acl(b"system.posix_acl_access"));
        assert!(is_posix_acl(b"system.posix_acl_default"));
        assert!(!is_posix_acl(b"system.posix_acl_accessx"));
        assert!(!is_posix_acl(b"user.posix_acl_access"));
        assert!(!is_encrypted(b"system.posix_acl_access"));
    }

    #[test]
    fn only_user_namespace_is_encrypted() {
        assert!(is_encrypted(b"user.mime"));
        assert!(!is_encrypted(b"security.capability"));
        assert!(!is_encrypted(b"trusted.x"));
    }
}
