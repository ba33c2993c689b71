//! The ciphertext blob that Encrypt and GenerateDataKey return
//! (`docs/WIRE.md`, "Ciphertext blob"):
//!
//! | offset | size | field                                   |
//! |--------|------|-----------------------------------------|
//! | 0      | 1    | blob version = 1                        |
//! | 1      | 16   | key id (UUID bytes)                     |
//! | 17     | 4    | key version, u32 big-endian (1 = first) |
//! | 21     | 12   | nonce, random per call                  |
//! | 33     | n    | AES-256-GCM ciphertext (n = plaintext)  |
//! | 33+n   | 16   | GCM tag                                 |
//!
//! Associated data: bytes 0..21 of the blob, then the canonical encryption
//! context. So every byte is authenticated: the header through the AAD, the
//! nonce through GCM itself.

use super::aead::{KeyCipher, NONCE_SIZE, TAG_SIZE, Unauthentic, random_nonce};
use super::context::canonical_into;
use kmsd_client::{EncryptionContext, SecretBytes};
use uuid::Uuid;

pub const BLOB_VERSION: u8 = 1;
pub const HEADER_SIZE: usize = 1 + 16 + 4;
pub const OVERHEAD: usize = HEADER_SIZE + NONCE_SIZE + TAG_SIZE;

/// What a blob names, parsed without any key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    pub key_id: Uuid,
    pub key_version: u32,
}

/// A blob that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobError {
    TooShort,
    UnknownVersion(u8),
}

pub fn parse_header(blob: &[u8]) -> Result<BlobHeader, BlobError> {
    if blob.len() < OVERHEAD + 1 {
        return Err(BlobError::TooShort);
    }
    if blob[0] != BLOB_VERSION {
        return Err(BlobError::UnknownVersion(blob[0]));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&blob[1..17]);
    let key_version = u32::from_be_bytes([blob[17], blob[18], blob[19], blob[20]]);
    Ok(BlobHeader {
        key_id: Uuid::from_bytes(id),
        key_version,
    })
}

fn aad(header: &[u8], ctx: &EncryptionContext) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_SIZE + 64);
    aad.extend_from_slice(header);
    canonical_into(ctx, &mut aad);
    aad
}

/// Encrypts `plaintext` under `cipher` (key `header.key_id`, version
/// `header.key_version`) with a fresh nonce.
pub fn seal(
    cipher: &KeyCipher,
    header: BlobHeader,
    ctx: &EncryptionContext,
    plaintext: &[u8],
) -> Vec<u8> {
    seal_with_nonce(cipher, header, ctx, plaintext, random_nonce())
}

fn seal_with_nonce(
    cipher: &KeyCipher,
    header: BlobHeader,
    ctx: &EncryptionContext,
    plaintext: &[u8],
    nonce: [u8; NONCE_SIZE],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(BLOB_VERSION);
    out.extend_from_slice(header.key_id.as_bytes());
    out.extend_from_slice(&header.key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let aad = aad(&out[..HEADER_SIZE], ctx);
    let body = HEADER_SIZE + NONCE_SIZE;
    let tag = cipher.seal(&nonce, &aad, &mut out[body..]);
    out.extend_from_slice(&tag);
    out
}

/// Decrypts a blob whose header was parsed with [`parse_header`], using the
/// cipher of the key version it names.
pub fn open(
    cipher: &KeyCipher,
    blob: &[u8],
    ctx: &EncryptionContext,
) -> Result<SecretBytes, Unauthentic> {
    if blob.len() < OVERHEAD + 1 {
        return Err(Unauthentic);
    }
    let mut nonce = [0u8; NONCE_SIZE];
    nonce.copy_from_slice(&blob[HEADER_SIZE..HEADER_SIZE + NONCE_SIZE]);
    let mut tag = [0u8; TAG_SIZE];
    tag.copy_from_slice(&blob[blob.len() - TAG_SIZE..]);
    let mut plain = SecretBytes::from_slice(&blob[HEADER_SIZE + NONCE_SIZE..blob.len() - TAG_SIZE]);
    cipher.open(
        &nonce,
        &aad(&blob[..HEADER_SIZE], ctx),
        plain.expose_mut(),
        &tag,
    )?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::aead::KeyBytes;

    fn header() -> BlobHeader {
        BlobHeader {
            key_id: Uuid::from_u128(0x1234),
            key_version: 3,
        }
    }

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_names_key_and_version() {
        let c = KeyCipher::new(&KeyBytes::random());
        let ec = ctx(&[("Purpose", "Lab")]);
        let blob = seal(&c, header(), &ec, b"secret");
        assert_eq!(blob.len(), OVERHEAD + 6);
        assert_eq!(parse_header(&blob), Ok(header()));
        assert_eq!(open(&c, &blob, &ec).unwrap().expose(), b"secret");
    }

    #[test]
    fn fresh_nonce_per_call() {
        let c = KeyCipher::new(&KeyBytes::random());
        let a = seal(&c, header(), &ctx(&[]), b"same");
        let b = seal(&c, header(), &ctx(&[]), b"same");
        assert_ne!(a, b);
    }

    #[test]
    fn every_changed_byte_fails() {
        let c = KeyCipher::new(&KeyBytes::random());
        let ec = ctx(&[("a", "b")]);
        let blob = seal(&c, header(), &ec, b"0123456789");
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = blob.clone();
                t[i] ^= bit;
                // A changed header may fail to parse (version) or name
                // another key; with the right cipher it never opens.
                assert!(open(&c, &t, &ec).is_err(), "byte {i} bit {bit:#x}");
            }
        }
        assert!(open(&c, &blob[..blob.len() - 1], &ec).is_err());
    }

    #[test]
    fn context_must_match_exactly() {
        let c = KeyCipher::new(&KeyBytes::random());
        let blob = seal(&c, header(), &ctx(&[("ab", "c")]), b"x");
        assert!(open(&c, &blob, &ctx(&[("a", "bc")])).is_err());
        assert!(open(&c, &blob, &ctx(&[])).is_err());
        assert!(open(&c, &blob, &ctx(&[("ab", "c"), ("x", "y")])).is_err());
        assert!(open(&c, &blob, &ctx(&[("ab", "c")])).is_ok());
    }

    #[test]
    fn short_or_unknown_blobs_do_not_parse() {
        assert_eq!(parse_header(&[1; OVERHEAD]), Err(BlobError::TooShort));
        let mut b = vec![0u8; OVERHEAD + 1];
        b[0] = 9;
        assert_eq!(parse_header(&b), Err(BlobError::UnknownVersion(9)));
    }

    /// A golden vector: the layout may not change without a new version.
    #[test]
    fn golden_layout() {
        let key = KeyBytes::from_slice(&[7u8; 32]).unwrap();
        let c = KeyCipher::new(&key);
        let blob = seal_with_nonce(&c, header(), &ctx(&[("k", "v")]), b"hi", [9u8; 12]);
        let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
        // version | key id | key version | nonce | ciphertext "hi" | tag
        assert_eq!(
            hex,
            concat!(
                "01",
                "00000000000000000000000000001234",
                "00000003",
                "090909090909090909090909",
                "4fec",
                "01f996f9fc4bc96e49116200720437bb"
            )
        );
        assert_eq!(blob.len(), OVERHEAD + 2);
        assert_eq!(
            open(&c, &blob, &ctx(&[("k", "v")])).unwrap().expose(),
            b"hi"
        );
    }
}
