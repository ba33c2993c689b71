//! Key material at rest: each version's 32 bytes sealed under the
//! material-wrap key derived from the root key.
//!
//! | offset | size | field                          |
//! |--------|------|--------------------------------|
//! | 0      | 12   | nonce                          |
//! | 12     | 32   | AES-256-GCM ciphertext of key  |
//! | 44     | 16   | tag                            |
//!
//! AAD: `"kmsd-material-v1"` ‖ key id (16 bytes) ‖ version (u32 BE), so a
//! wrapped key cannot be moved to another key or version.

use super::aead::{KEY_SIZE, KeyBytes, KeyCipher, NONCE_SIZE, TAG_SIZE, Unauthentic, random_nonce};
use uuid::Uuid;
use zeroize::Zeroizing;

pub const WRAPPED_SIZE: usize = NONCE_SIZE + KEY_SIZE + TAG_SIZE;
const AAD_LABEL: &[u8] = b"kmsd-material-v1";

fn aad(key_id: Uuid, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 20);
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

pub fn wrap(wrap_key: &KeyCipher, key_id: Uuid, version: u32, material: &KeyBytes) -> Vec<u8> {
    let nonce = random_nonce();
    let mut out = Vec::with_capacity(WRAPPED_SIZE);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(material.expose());
    let tag = wrap_key.seal(&nonce, &aad(key_id, version), &mut out[NONCE_SIZE..]);
    out.extend_from_slice(&tag);
    out
}

pub fn unwrap(
    wrap_key: &KeyCipher,
    key_id: Uuid,
    version: u32,
    wrapped: &[u8],
) -> Result<KeyBytes, Unauthentic> {
    if wrapped.len() != WRAPPED_SIZE {
        return Err(Unauthentic);
    }
    let mut nonce = [0u8; NONCE_SIZE];
    nonce.copy_from_slice(&wrapped[..NONCE_SIZE]);
    let mut tag = [0u8; TAG_SIZE];
    tag.copy_from_slice(&wrapped[NONCE_SIZE + KEY_SIZE..]);
    let mut key = Zeroizing::new([0u8; KEY_SIZE]);
    key.copy_from_slice(&wrapped[NONCE_SIZE..NONCE_SIZE + KEY_SIZE]);
    wrap_key.open(&nonce, &aad(key_id, version), &mut key[..], &tag)?;
    KeyBytes::from_slice(&key[..]).ok_or(Unauthentic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_bound_to_key_and_version() {
        let wk = KeyCipher::new(&KeyBytes::random());
        let id = Uuid::new_v4();
        let m = KeyBytes::random();
        let w = wrap(&wk, id, 1, &m);
        assert_eq!(w.len(), WRAPPED_SIZE);
        assert!(
            !w.windows(KEY_SIZE).any(|win| win == m.expose()),
            "material appears in clear"
        );
        assert_eq!(unwrap(&wk, id, 1, &w).unwrap().expose(), m.expose());
        assert!(unwrap(&wk, id, 2, &w).is_err());
        assert!(unwrap(&wk, Uuid::new_v4(), 1, &w).is_err());
        assert!(unwrap(&KeyCipher::new(&KeyBytes::random()), id, 1, &w).is_err());
    }
}
