//! Access key secrets at rest: AES-256-GCM under the root-derived wrap key,
//! bound to the access key id.
//!
//! | bytes | field |
//! |---|---|
//! | 12 | random nonce |
//! | n | the secret, encrypted |
//! | 16 | GCM tag |
//!
//! Associated data: `"kmsd access key v1\0" ‖ access key id`, so a wrapped
//! secret moved to another key id, or mistaken for key material (whose
//! associated data differs), does not authenticate.

use super::aead::{KeyCipher, NONCE_SIZE, TAG_SIZE, Unauthentic, random_nonce};
use zeroize::Zeroizing;

const AAD_PREFIX: &[u8] = b"kmsd access key v1\0";

fn aad(access_key_id: &str) -> Vec<u8> {
    [AAD_PREFIX, access_key_id.as_bytes()].concat()
}

pub fn wrap(wrap_key: &KeyCipher, access_key_id: &str, secret: &[u8]) -> Vec<u8> {
    let nonce = random_nonce();
    let mut buf = Zeroizing::new(secret.to_vec());
    let tag = wrap_key.seal(&nonce, &aad(access_key_id), &mut buf);
    [&nonce[..], &buf[..], &tag[..]].concat()
}

pub fn unwrap(
    wrap_key: &KeyCipher,
    access_key_id: &str,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Unauthentic> {
    if wrapped.len() < NONCE_SIZE + TAG_SIZE {
        return Err(Unauthentic);
    }
    let (nonce, rest) = wrapped.split_at(NONCE_SIZE);
    let (ct, tag) = rest.split_at(rest.len() - TAG_SIZE);
    let nonce: [u8; NONCE_SIZE] = nonce.try_into().map_err(|_| Unauthentic)?;
    let tag: [u8; TAG_SIZE] = tag.try_into().map_err(|_| Unauthentic)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    wrap_key.open(&nonce, &aad(access_key_id), &mut buf, &tag)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::KeyBytes;

    #[test]
    fn round_trip_bound_to_the_key_id() {
        let k = KeyCipher::new(&KeyBytes::random());
        let w = wrap(&k, "AKIAAAAAAAAAAAAAAAAA", b"secret-40-chars");
        assert!(!w.windows(6).any(|x| x == b"secret"), "not in the clear");
        assert_eq!(
            &unwrap(&k, "AKIAAAAAAAAAAAAAAAAA", &w).unwrap()[..],
            b"secret-40-chars"
        );
        assert!(unwrap(&k, "AKIABBBBBBBBBBBBBBBB", &w).is_err());
        let other = KeyCipher::new(&KeyBytes::random());
        assert!(unwrap(&other, "AKIAAAAAAAAAAAAAAAAA", &w).is_err());
        let mut bad = w.clone();
        bad[14] ^= 1;
        assert!(unwrap(&k, "AKIAAAAAAAAAAAAAAAAA", &bad).is_err());
        assert!(unwrap(&k, "AKIAAAAAAAAAAAAAAAAA", &w[..10]).is_err());
    }
}
