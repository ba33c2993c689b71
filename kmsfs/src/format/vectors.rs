//! Golden vectors: fixed inputs and the exact bytes they must produce. The
//! expected values come from `kmsfs/tests/vectors/golden.py`, an
//! independent implementation of docs/FORMAT.md (Python `cryptography`).
//! If one of these fails, the on-disk format changed.

use super::block::FileCipher;
use super::config::VolumeConfig;
use super::header::Header;
use super::ids::{from_hex, to_hex};
use super::kdf::DataKey;
use super::offsets::cipher_len;
use super::{FileId, VolumeId};
use sha2::{Digest, Sha256};

fn key() -> DataKey {
    let b: Vec<u8> = (0..32).collect();
    DataKey::from_slice(&b).unwrap()
}

fn file_id() -> FileId {
    FileId(core::array::from_fn(|i| 0xa0 + i as u8))
}

fn volume_id() -> VolumeId {
    VolumeId(core::array::from_fn(|i| 0xb0 + i as u8))
}

/// Deterministic nonces: byte j of each batch is j.
fn counting(buf: &mut [u8]) -> Result<(), ()> {
    for (j, b) in buf.iter_mut().enumerate() {
        *b = j as u8;
    }
    Ok(())
}

fn seal(first: u64, plain: &[u8], ends_file: bool) -> Vec<u8> {
    let c = FileCipher::new(&key(), file_id());
    let mut out = vec![0; cipher_len(plain.len())];
    c.encrypt_with_nonces(first, plain, &mut out, ends_file, counting)
        .unwrap();
    out
}

fn sha256_hex(b: &[u8]) -> String {
    to_hex(&Sha256::digest(b))
}

#[test]
fn one_short_final_block() {
    let ct = seal(0, b"hello, kmsfs\n", true);
    assert_eq!(
        to_hex(&ct),
        "000102030405060708090a0b1319520214add7275d74620c8545b125f9d7229043dbd4ab63f5cb93f6"
    );
    let mut out = [0u8; 13];
    FileCipher::new(&key(), file_id())
        .decrypt_blocks(0, &ct, &mut out, true)
        .unwrap();
    assert_eq!(&out, b"hello, kmsfs\n");
}

#[test]
fn two_blocks_from_block_seven() {
    let plain: Vec<u8> = (0..5000).map(|i| (i % 251) as u8).collect();
    let ct = seal(7, &plain, true);
    assert_eq!(
        sha256_hex(&ct),
        "20a3c200e979ea99bde3050d7945188d7544dfac837500c5d4cae82d97f846ad"
    );
    assert_eq!(
        to_hex(&ct[4124 - 16..4124]),
        "ea9731554c36ea24f90c9116756c62a4"
    );
    assert_eq!(
        to_hex(&ct[ct.len() - 16..]),
        "00b8a4f0b53e0d8f69e382dcc35a94e2"
    );
}

#[test]
fn header() {
    let h = Header {
        file_id: file_id(),
        wrapped_key: b"wrapped-key-blob-for-vectors".to_vec(),
    };
    let b = h.encode(&key(), &volume_id()).unwrap();
    assert_eq!(
        sha256_hex(&b),
        "145a0583c4d3beb7cd05174519e4e4b17432785f448dee7a1b8d759c86928410"
    );
    assert_eq!(
        to_hex(&b[480..]),
        "7a7b9ede754e131a1e7a44ab4ca82f86e9cb161d94f3483655cc223fb267acff"
    );
}

#[test]
fn config_mac() {
    let mut c = VolumeConfig::new(
        volume_id(),
        "arn:aws:kms:us-east-1:111122223333:key/vectors".into(),
        (0..40).collect(),
    );
    c.seal(&key()).unwrap();
    assert_eq!(
        Some(c.mac.to_vec()),
        from_hex("aced5a37fa18d169e23b20c2d9a978d62956c8b5a48a890ee9a1990e4088cc2f")
    );
}
