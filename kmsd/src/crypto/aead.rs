//! AES-256-GCM over caller buffers, with the nonce and tag sizes spelled
//! out. Every key kmsd holds in memory lives in a [`KeyCipher`]: the
//! expanded key schedule, wiped on drop (aes-gcm's `zeroize` feature).

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use zeroize::Zeroizing;

pub const KEY_SIZE: usize = 32;
pub const NONCE_SIZE: usize = 12;
pub const TAG_SIZE: usize = 16;

/// A 256-bit key, wiped on drop, never printed.
pub struct KeyBytes(Zeroizing<[u8; KEY_SIZE]>);

impl KeyBytes {
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_SIZE]);
        fill_random(&mut k[..]);
        KeyBytes(k)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_SIZE] = bytes.try_into().ok()?;
        Some(KeyBytes(Zeroizing::new(arr)))
    }

    pub fn expose(&self) -> &[u8; KEY_SIZE] {
        &self.0
    }
}

/// An expanded AES-256-GCM key.
pub struct KeyCipher(Aes256Gcm);

/// Authentication failed: wrong key, wrong associated data or changed bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Unauthentic;

impl KeyCipher {
    pub fn new(key: &KeyBytes) -> Self {
        KeyCipher(Aes256Gcm::new(key.expose().into()))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_SIZE], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_SIZE] {
        let tag = self
            .0
            .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
            // Only fails for messages beyond 64 GiB; ours are at most a few KiB.
            .unwrap_or_default();
        tag.into()
    }

    /// Decrypts `buf` in place after checking `tag`.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_SIZE],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), Unauthentic> {
        self.0
            .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
            .map_err(|_| Unauthentic)
    }
}

pub use super::random::fill_random;

pub fn random_nonce() -> [u8; NONCE_SIZE] {
    let mut n = [0u8; NONCE_SIZE];
    fill_random(&mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let c = KeyCipher::new(&KeyBytes::random());
        let nonce = random_nonce();
        let mut buf = b"attack at dawn".to_vec();
        let tag = c.seal(&nonce, b"ad", &mut buf);
        assert_ne!(&buf[..], b"attack at dawn");
        let mut copy = buf.clone();
        c.open(&nonce, b"ad", &mut copy, &tag).unwrap();
        assert_eq!(&copy[..], b"attack at dawn");
        let mut copy = buf.clone();
        assert_eq!(c.open(&nonce, b"ae", &mut copy, &tag), Err(Unauthentic));
        let mut copy = buf.clone();
        copy[0] ^= 1;
        assert_eq!(c.open(&nonce, b"ad", &mut copy, &tag), Err(Unauthentic));
    }

    #[test]
    fn key_bytes_length_checked() {
        assert!(KeyBytes::from_slice(&[0; 31]).is_none());
        assert!(KeyBytes::from_slice(&[0; 32]).is_some());
    }
}
