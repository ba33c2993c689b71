//! SigV4 signing keys derived once per access key, day, region and
//! service rather than once per request (four HMAC-SHA256 steps each).
//!
//! An entry is found by a SHA-256 fingerprint of the access key id, the
//! scope and the access key's current secret, so a changed secret never
//! finds the old key; a deleted or inactive access key is refused before
//! the cache is asked (`handler::authenticate`). Keys are
//! [`SigningKey`]s (wiped on drop, no `Debug`), shared by `Arc` with the
//! requests using them. At most [`MAX_SIGNING_KEYS`] are held: a full
//! cache is emptied and refills (one derivation per caller and day).

use kmsd_sigv4::SigningKey;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most signing keys held.
pub const MAX_SIGNING_KEYS: usize = 1024;

/// Fingerprint of (access key id, date, region, service, secret) →
/// signing key.
#[derive(Default)]
pub struct SigningKeys {
    keys: Mutex<HashMap<[u8; 32], Arc<SigningKey>>>,
}

fn fingerprint(
    access_key_id: &str,
    date: &str,
    region: &str,
    service: &str,
    secret: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kmsd sigv4 signing key\0");
    for part in [
        access_key_id.as_bytes(),
        date.as_bytes(),
        region.as_bytes(),
        service.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.update(secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(&h.finalize());
    out
}

impl SigningKeys {
    /// The signing key of `secret` (the access key's current secret) for
    /// `date`, `region` and `service`: from the cache, else derived and
    /// kept.
    pub fn get(
        &self,
        access_key_id: &str,
        date: &str,
        region: &str,
        service: &str,
        secret: &[u8],
    ) -> Arc<SigningKey> {
        let id = fingerprint(access_key_id, date, region, service, secret);
        if let Some(k) = self.lock().get(&id) {
            return k.clone();
        }
        let key = Arc::new(SigningKey::derive(secret, date, region, service));
        let mut keys = self.lock();
        if keys.len() >= MAX_SIGNING_KEYS {
            keys.clear();
        }
        keys.entry(id).or_insert(key).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<SigningKey>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"AWS4-HMAC-SHA256\n20261204T101010Z\n...";

    #[test]
    fn cached_per_scope_and_secret() {
        let c = SigningKeys::default();
        let a = c.get("AKIA1", "20261204", "local", "kms", b"secret-a");
        let again = c.get("AKIA1", "20261204", "local", "kms", b"secret-a");
        assert!(
            Arc::ptr_eq(&a, &again),
            "the second request uses the cached key"
        );
        assert_eq!(
            a.sign(MSG),
            SigningKey::derive(b"secret-a", "20261204", "local", "kms").sign(MSG)
        );
        for other in [
            c.get("AKIA2", "20261204", "local", "kms", b"secret-a"),
            c.get("AKIA1", "20261205", "local", "kms", b"secret-a"),
            c.get("AKIA1", "20261204", "eu-west-1", "kms", b"secret-a"),
            c.get("AKIA1", "20261204", "local", "sts", b"secret-a"),
        ] {
            assert!(!Arc::ptr_eq(&a, &other));
        }
    }

    #[test]
    fn not_used_after_the_secret_changes() {
        let c = SigningKeys::default();
        let old = c.get("AKIA1", "20261204", "local", "kms", b"old secret");
        let new = c.get("AKIA1", "20261204", "local", "kms", b"new secret");
        assert!(!Arc::ptr_eq(&old, &new));
        let want = SigningKey::derive(b"new secret", "20261204", "local", "kms");
        assert_eq!(new.sign(MSG), want.sign(MSG));
        assert_ne!(new.sign(MSG), old.sign(MSG));
        // A signature made with the old secret no longer verifies.
        assert!(!new.verify(MSG, &old.sign(MSG)));
    }

    #[test]
    fn bounded() {
        let c = SigningKeys::default();
        for i in 0..MAX_SIGNING_KEYS + 10 {
            c.get(&format!("AKIA{i}"), "20261204", "local", "kms", b"s");
        }
        assert!(c.len() <= MAX_SIGNING_KEYS);
    }
}
