//! The root key: 32 random bytes in a file of mode 0600 (`DIR/root.key` or
//! `--root-key-file`). kmsd never uses it directly; it derives one key per
//! purpose with HKDF-SHA256 and a named label.

use super::aead::{KEY_SIZE, KeyBytes};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Label of the key that wraps KMS key material at rest.
pub const MATERIAL_WRAP_LABEL: &[u8] = b"kmsd/key-material-wrap/v1";
/// The root key check of a shared store (`P/format` in etcd).
pub const STORE_CHECK_LABEL: &[u8] = b"kmsd/store-check/v1";
/// Label of the key that signs audit checkpoints (kmsd-audit derives it the
/// same way from the root key file).
pub const AUDIT_CHECKPOINT_LABEL: &[u8] = b"kmsd/audit-checkpoint/v1";

pub struct RootKey(KeyBytes);

impl RootKey {
    /// Reads the root key, or creates it (exclusively, mode 0600) when the
    /// file does not exist. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> std::io::Result<(RootKey, bool)> {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut f) => {
                let key = KeyBytes::random();
                f.write_all(key.expose())?;
                f.sync_all()?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok((RootKey(key), true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((RootKey::load(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    pub fn load(path: &Path) -> std::io::Result<RootKey> {
        let f = std::fs::File::open(path)?;
        let mode = f.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "root key file is readable by group or others");
        }
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(KEY_SIZE + 1));
        f.take(KEY_SIZE as u64 + 1).read_to_end(&mut buf)?;
        KeyBytes::from_slice(&buf).map(RootKey).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "root key file {} must hold exactly {KEY_SIZE} bytes",
                    path.display()
                ),
            )
        })
    }

    #[cfg(test)]
    pub fn from_bytes(bytes: [u8; KEY_SIZE]) -> RootKey {
        RootKey(KeyBytes::from_slice(&bytes).unwrap_or_else(KeyBytes::random))
    }

    /// The raw root key, for a component that derives its own key from it
    /// (the audit trail, with [`AUDIT_CHECKPOINT_LABEL`]).
    pub fn expose(&self) -> &[u8; KEY_SIZE] {
        self.0.expose()
    }

    /// `HMAC-SHA256(derive(STORE_CHECK_LABEL), "kmsd store " ‖ name)` in
    /// hex: shows whether two processes sharing a store (`name`: its etcd
    /// prefix) have the same root key, without revealing it.
    pub fn store_check(&self, name: &str) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let k = self.derive(STORE_CHECK_LABEL);
        let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(k.expose()) {
            Ok(m) => m,
            // HMAC takes keys of any length.
            Err(_) => return String::new(),
        };
        m.update(b"kmsd store ");
        m.update(name.as_bytes());
        m.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The key for one purpose.
    pub fn derive(&self, label: &[u8]) -> KeyBytes {
        let hk = Hkdf::<Sha256>::new(None, self.0.expose());
        let mut out = zeroize::Zeroizing::new([0u8; KEY_SIZE]);
        // 32 bytes is far below HKDF's 255 * 32 limit, so this cannot fail.
        let _ = hk.expand(label, &mut out[..]);
        KeyBytes::from_slice(&out[..]).unwrap_or_else(KeyBytes::random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_same_key_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        let (a, created) = RootKey::load_or_create(&p).unwrap();
        assert!(created);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = RootKey::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(a.0.expose(), b.0.expose());
    }

    #[test]
    fn wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        std::fs::write(&p, [1u8; 33]).unwrap();
        assert!(RootKey::load(&p).is_err());
    }

    #[test]
    fn labels_give_distinct_keys() {
        let r = RootKey::from_bytes([3; 32]);
        let a = r.derive(MATERIAL_WRAP_LABEL);
        let b = r.derive(AUDIT_CHECKPOINT_LABEL);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose(), r.derive(MATERIAL_WRAP_LABEL).expose());
    }
}
