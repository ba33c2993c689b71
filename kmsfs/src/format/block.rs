//! The content-block codec (docs/FORMAT.md, "Content blocks"): runs of
//! consecutive blocks encrypted or decrypted in one pass over caller-owned
//! buffers, with no allocation per block.

use super::FileId;
use super::kdf::{CONTENT_KEY_LABEL, DataKey};
use super::offsets::{self, BLOCK_OVERHEAD, BLOCK_SIZE, CIPHER_BLOCK_SIZE, NONCE_SIZE, TAG_SIZE};
use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{Aes256Gcm, KeyInit};
use std::fmt;

/// Bytes of a block's associated data: block number, file id, final flag.
pub const AAD_SIZE: usize = 8 + 16 + 1;

/// Nonces fetched from the OS per `getrandom` call.
const NONCE_BATCH: usize = 64;

/// What went wrong with one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockErrorKind {
    /// The tag does not match: the block was altered, moved, taken from
    /// another file, or its final flag is wrong (truncation, extension).
    Authentication,
    /// An all-zero block where the file ends; a hole can never be final.
    FinalHole,
    /// A piece too short to be a block, or a partial block not at the end.
    Truncated,
    /// The caller's buffers do not have matching lengths (a bug).
    Length,
    /// The operating system's random generator failed.
    Random,
}

/// A block that failed, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockError {
    pub block: u64,
    pub kind: BlockErrorKind,
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            BlockErrorKind::Authentication => "failed authentication",
            BlockErrorKind::FinalHole => "is an all-zero hole at the end of the file",
            BlockErrorKind::Truncated => "is truncated",
            BlockErrorKind::Length => "buffer lengths do not match (internal error)",
            BlockErrorKind::Random => "no random nonce available from the OS",
        };
        write!(f, "block {} {what}", self.block)
    }
}

impl std::error::Error for BlockError {}

/// One file's content cipher: the expanded AES-256-GCM key (wiped on drop)
/// and the file id. Built once per open file; shared read-only.
pub struct FileCipher {
    aead: Aes256Gcm,
    file_id: FileId,
    /// Format 2: the cipher of the file's xattr values (from the same data
    /// key, docs/FORMAT.md "Extended attributes").
    xattr: Option<super::xattr::XattrCipherV2>,
}

impl FileCipher {
    pub fn new(key: &DataKey, file_id: FileId) -> Self {
        let content_key = key.derive(CONTENT_KEY_LABEL);
        // From a 32-byte array, as AES-256 wants: cannot fail.
        let aead = match Aes256Gcm::new_from_slice(content_key.as_ref()) {
            Ok(a) => a,
            Err(_) => unreachable!("AES-256 key is 32 bytes"),
        };
        FileCipher {
            aead,
            file_id,
            xattr: None,
        }
    }

    /// A format 2 file's cipher: content and xattr values.
    pub fn new_v2(key: &DataKey, file_id: FileId) -> Self {
        FileCipher {
            xattr: Some(super::xattr::XattrCipherV2::for_file(key)),
            ..FileCipher::new(key, file_id)
        }
    }

    pub fn file_id(&self) -> FileId {
        self.file_id
    }

    /// The file's xattr value cipher (format 2 only).
    pub fn xattr(&self) -> Option<&super::xattr::XattrCipherV2> {
        self.xattr.as_ref()
    }

    /// Encrypts `plain`, consecutive blocks starting at block `first` (each
    /// full except possibly the last), into `out`, which must be exactly
    /// [`offsets::cipher_len`]`(plain.len())` bytes. Each block gets a fresh
    /// random nonce. `ends_file`: the run's last block is the file's last
    /// block and is marked final; a partial last block requires it.
    pub fn encrypt_blocks(
        &self,
        first: u64,
        plain: &[u8],
        out: &mut [u8],
        ends_file: bool,
    ) -> Result<(), BlockError> {
        self.encrypt_with_nonces(first, plain, out, ends_file, |n| {
            getrandom::fill(n).map_err(|_| ())
        })
    }

    /// [`FileCipher::encrypt_blocks`] with the nonces from `fill` (golden
    /// test vectors use fixed ones).
    pub(crate) fn encrypt_with_nonces(
        &self,
        first: u64,
        plain: &[u8],
        out: &mut [u8],
        ends_file: bool,
        mut fill: impl FnMut(&mut [u8]) -> Result<(), ()>,
    ) -> Result<(), BlockError> {
        let length = BlockError {
            block: first,
            kind: BlockErrorKind::Length,
        };
        if out.len() != offsets::cipher_len(plain.len()) {
            return Err(length);
        }
        let blocks = plain.len().div_ceil(BLOCK_SIZE);
        if !ends_file && !plain.len().is_multiple_of(BLOCK_SIZE) {
            return Err(BlockError {
                block: first + blocks as u64 - 1,
                kind: BlockErrorKind::Truncated,
            });
        }
        let mut nonces = [0u8; NONCE_SIZE * NONCE_BATCH];
        for (i, (p, c)) in plain
            .chunks(BLOCK_SIZE)
            .zip(out.chunks_mut(CIPHER_BLOCK_SIZE))
            .enumerate()
        {
            let block = first + i as u64;
            let slot = i % NONCE_BATCH;
            if slot == 0 {
                let n = (blocks - i).min(NONCE_BATCH) * NONCE_SIZE;
                fill(&mut nonces[..n]).map_err(|()| BlockError {
                    block,
                    kind: BlockErrorKind::Random,
                })?;
            }
            let nonce = &nonces[slot * NONCE_SIZE..(slot + 1) * NONCE_SIZE];
            let is_final = ends_file && i + 1 == blocks;
            self.seal_block(block, nonce, p, c, is_final)?;
        }
        Ok(())
    }

    fn seal_block(
        &self,
        block: u64,
        nonce: &[u8],
        plain: &[u8],
        out: &mut [u8],
        is_final: bool,
    ) -> Result<(), BlockError> {
        let (n, rest) = out.split_at_mut(NONCE_SIZE);
        let (body, tag_out) = rest.split_at_mut(plain.len());
        n.copy_from_slice(nonce);
        let length = BlockError {
            block,
            kind: BlockErrorKind::Length,
        };
        let buf = InOutBuf::new(plain, body).map_err(|_| length)?;
        let aad = self.aad(block, is_final);
        let tag = self
            .aead
            .encrypt_inout_detached(&nonce_array(n), &aad, buf)
            .map_err(|_| length)?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Decrypts `cipher`, consecutive cipher blocks starting at block
    /// `first`, into `out`, which must be exactly the plaintext length.
    /// `ends_file`: the run reaches the end of the backing file, so its last
    /// block must be the final one. A full all-zero block that is not final
    /// is a hole and reads as zeros. On failure names the first bad block;
    /// that block's bytes in `out` are zeroed, later ones are untouched.
    pub fn decrypt_blocks(
        &self,
        first: u64,
        cipher: &[u8],
        out: &mut [u8],
        ends_file: bool,
    ) -> Result<(), BlockError> {
        let blocks = cipher.len().div_ceil(CIPHER_BLOCK_SIZE);
        let Some(plain_len) = offsets::plain_len(cipher.len()) else {
            return Err(BlockError {
                block: first + blocks as u64 - 1,
                kind: BlockErrorKind::Truncated,
            });
        };
        if out.len() != plain_len {
            return Err(BlockError {
                block: first,
                kind: BlockErrorKind::Length,
            });
        }
        for (i, (c, p)) in cipher
            .chunks(CIPHER_BLOCK_SIZE)
            .zip(out.chunks_mut(BLOCK_SIZE))
            .enumerate()
        {
            let block = first + i as u64;
            let last = i + 1 == blocks;
            let fail = |kind| BlockError { block, kind };
            if c.len() < CIPHER_BLOCK_SIZE && !(last && ends_file) {
                return Err(fail(BlockErrorKind::Truncated));
            }
            if c.len() == CIPHER_BLOCK_SIZE && is_hole(c) {
                if last && ends_file {
                    return Err(fail(BlockErrorKind::FinalHole));
                }
                p.fill(0);
                continue;
            }
            let (n, rest) = c.split_at(NONCE_SIZE);
            let (body, tag) = rest.split_at(rest.len() - TAG_SIZE);
            let aad = self.aad(block, last && ends_file);
            let tag = aes_gcm::Tag::from(tag_array(tag));
            if self
                .aead
                .decrypt_inout_detached(
                    &nonce_array(n),
                    &aad,
                    InOutBuf::new(body, p).map_err(|_| fail(BlockErrorKind::Length))?,
                    &tag,
                )
                .is_err()
            {
                p.fill(0);
                return Err(fail(BlockErrorKind::Authentication));
            }
        }
        Ok(())
    }

    /// Version 2: the empty final block of an empty file (block 0, final,
    /// no plaintext): a fresh nonce and the tag, 28 bytes written after the
    /// header.
    pub fn seal_empty_final(&self) -> Result<[u8; BLOCK_OVERHEAD], BlockError> {
        let mut nonce = [0u8; NONCE_SIZE];
        getrandom::fill(&mut nonce).map_err(|_| BlockError {
            block: 0,
            kind: BlockErrorKind::Random,
        })?;
        self.seal_empty_final_with_nonce(&nonce)
    }

    /// [`FileCipher::seal_empty_final`] with a given nonce (golden vectors).
    pub(crate) fn seal_empty_final_with_nonce(
        &self,
        nonce: &[u8; NONCE_SIZE],
    ) -> Result<[u8; BLOCK_OVERHEAD], BlockError> {
        let mut out = [0u8; BLOCK_OVERHEAD];
        self.seal_block(0, nonce, &[], &mut out, true)?;
        Ok(out)
    }

    /// Version 2: checks the 28 bytes after the header of an empty file.
    pub fn open_empty_final(&self, c: &[u8]) -> Result<(), BlockError> {
        let fail = |kind| BlockError { block: 0, kind };
        if c.len() != BLOCK_OVERHEAD {
            return Err(fail(BlockErrorKind::Truncated));
        }
        let (n, tag) = c.split_at(NONCE_SIZE);
        let tag = aes_gcm::Tag::from(tag_array(tag));
        let mut none: [u8; 0] = [];
        self.aead
            .decrypt_inout_detached(
                &nonce_array(n),
                &self.aad(0, true),
                InOutBuf::new(&[], &mut none).map_err(|_| fail(BlockErrorKind::Length))?,
                &tag,
            )
            .map_err(|_| fail(BlockErrorKind::Authentication))
    }

    fn aad(&self, block: u64, is_final: bool) -> [u8; AAD_SIZE] {
        let mut a = [0u8; AAD_SIZE];
        a[..8].copy_from_slice(&block.to_be_bytes());
        a[8..24].copy_from_slice(&self.file_id.0);
        a[24] = u8::from(is_final);
        a
    }
}

/// A full cipher block of zeros (a hole, if not final). The nonce is
/// checked first, so a normal block is rejected after 12 bytes.
pub fn is_hole(c: &[u8]) -> bool {
    c.len() == CIPHER_BLOCK_SIZE
        && c[..NONCE_SIZE].iter().all(|b| *b == 0)
        && c.iter().all(|b| *b == 0)
}

fn nonce_array(n: &[u8]) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
    let mut a = [0u8; NONCE_SIZE];
    a.copy_from_slice(n);
    a.into()
}

fn tag_array(t: &[u8]) -> [u8; TAG_SIZE] {
    let mut a = [0u8; TAG_SIZE];
    a.copy_from_slice(t);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::offsets::cipher_len;

    fn cipher(id: u8) -> FileCipher {
        FileCipher::new(&DataKey::from_slice(&[id; 32]).unwrap(), FileId([id; 16]))
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    fn seal(c: &FileCipher, first: u64, plain: &[u8], ends_file: bool) -> Vec<u8> {
        let mut out = vec![0; cipher_len(plain.len())];
        c.encrypt_blocks(first, plain, &mut out, ends_file).unwrap();
        out
    }

    fn open(c: &FileCipher, first: u64, ct: &[u8], ends_file: bool) -> Result<Vec<u8>, BlockError> {
        let mut out = vec![0; offsets::plain_len(ct.len()).unwrap_or(0)];
        c.decrypt_blocks(first, ct, &mut out, ends_file)
            .map(|()| out)
    }

    #[test]
    fn v2_empty_final_block() {
        let c = cipher(1);
        let e = c.seal_empty_final().unwrap();
        c.open_empty_final(&e).unwrap();
        assert_ne!(e, c.seal_empty_final().unwrap(), "fresh nonce");
        for i in 0..e.len() {
            let mut t = e;
            t[i] ^= 1;
            assert!(c.open_empty_final(&t).is_err(), "flip at {i}");
        }
        assert!(cipher(2).open_empty_final(&e).is_err(), "another file's");
        assert!(c.open_empty_final(&e[..27]).is_err());
        assert!(c.open_empty_final(&[0; 28]).is_err(), "no zero hole");
        // A real file cut to 28 bytes after its header is not an empty file.
        let ct = seal(&c, 0, b"some content", true);
        assert!(c.open_empty_final(&ct[..28]).is_err());
    }

    #[test]
    fn round_trips_at_every_edge() {
        let c = cipher(1);
        for len in [0usize, 1, 4095, 4096, 4097, 8192, 3 * 4096 + 17, 100 * 4096] {
            let p = pattern(len);
            for first in [0u64, 5, u64::MAX - 200] {
                let ct = seal(&c, first, &p, true);
                assert_eq!(ct.len(), cipher_len(len));
                assert_eq!(open(&c, first, &ct, true).unwrap(), p, "len {len}");
            }
        }
        let p = pattern(8192);
        let ct = seal(&c, 3, &p, false);
        assert_eq!(open(&c, 3, &ct, false).unwrap(), p);
    }

    #[test]
    fn nonces_are_fresh() {
        let c = cipher(1);
        let p = pattern(4096);
        let a = seal(&c, 0, &p, true);
        let b = seal(&c, 0, &p, true);
        assert_ne!(a[..12], b[..12]);
        assert_ne!(a, b);
    }

    #[test]
    fn tampering_names_the_block() {
        let c = cipher(1);
        let p = pattern(3 * 4096 + 100);
        let ct = seal(&c, 0, &p, true);
        for (pos, block) in [
            (0, 0),
            (12, 0),
            (4123, 0),
            (4124 + 500, 1),
            (ct.len() - 1, 3),
        ] {
            let mut bad = ct.clone();
            bad[pos] ^= 1;
            let e = open(&c, 0, &bad, true).unwrap_err();
            assert_eq!(
                e,
                BlockError {
                    block,
                    kind: BlockErrorKind::Authentication
                }
            );
        }
    }

    #[test]
    fn failed_block_is_zeroed_in_the_output() {
        let c = cipher(1);
        let p = pattern(2 * 4096);
        let mut ct = seal(&c, 0, &p, true);
        ct[4124 + 20] ^= 1;
        let mut out = vec![0xee; 8192];
        let e = c.decrypt_blocks(0, &ct, &mut out, true).unwrap_err();
        assert_eq!(e.block, 1);
        assert_eq!(&out[..4096], &p[..4096]);
        assert!(out[4096..].iter().all(|b| *b == 0));
    }

    #[test]
    fn blocks_are_bound_to_their_number_and_file() {
        let c = cipher(1);
        let p = pattern(2 * 4096);
        let ct = seal(&c, 0, &p, false);
        // Swapped blocks.
        let mut swapped = ct[4124..].to_vec();
        swapped.extend_from_slice(&ct[..4124]);
        assert_eq!(open(&c, 0, &swapped, false).unwrap_err().block, 0);
        // Right bytes, wrong position.
        assert!(open(&c, 1, &ct[..4124], false).is_err());
        // Another file's block at the same index, same key bytes but other id.
        let other = FileCipher::new(&DataKey::from_slice(&[1; 32]).unwrap(), FileId([2; 16]));
        assert!(open(&other, 0, &ct[..4124], false).is_err());
        // Another key.
        assert!(open(&cipher(2), 0, &ct[..4124], false).is_err());
    }

    #[test]
    fn final_flag_detects_truncation_and_extension() {
        let c = cipher(1);
        let p = pattern(3 * 4096);
        let ct = seal(&c, 0, &p, true);
        // Drop the last whole block: block 1 was not final.
        let e = open(&c, 0, &ct[..2 * 4124], true).unwrap_err();
        assert_eq!(
            e,
            BlockError {
                block: 1,
                kind: BlockErrorKind::Authentication
            }
        );
        // The final block read as if more followed.
        assert_eq!(open(&c, 0, &ct, false).unwrap_err().block, 2);
        // Reading a non-final run up to the end of the file succeeds when
        // told it is not the end.
        assert_eq!(open(&c, 0, &ct[..2 * 4124], false).unwrap(), p[..8192]);
    }

    #[test]
    fn holes_read_as_zeros_but_never_as_the_final_block() {
        let c = cipher(1);
        let p = pattern(3 * 4096);
        let mut ct = seal(&c, 0, &p, true);
        ct[4124..2 * 4124].fill(0);
        let out = open(&c, 0, &ct, true).unwrap();
        assert!(out[4096..8192].iter().all(|b| *b == 0));
        assert_eq!(out[..4096], p[..4096]);
        assert_eq!(out[8192..], p[8192..]);
        // A hole as the last block of the file.
        let mut ct = seal(&c, 0, &p, true);
        ct[2 * 4124..].fill(0);
        let e = open(&c, 0, &ct, true).unwrap_err();
        assert_eq!(
            e,
            BlockError {
                block: 2,
                kind: BlockErrorKind::FinalHole
            }
        );
        // A partial all-zero piece is not a hole.
        let zeros = vec![0u8; 100 + 28];
        assert_eq!(
            open(&c, 4, &zeros, true).unwrap_err().kind,
            BlockErrorKind::Authentication
        );
    }

    #[test]
    fn bad_lengths_are_errors_not_panics() {
        let c = cipher(1);
        let mut out = vec![0; 10];
        let e = c.encrypt_blocks(0, &[1; 100], &mut out, true).unwrap_err();
        assert_eq!(e.kind, BlockErrorKind::Length);
        // A partial block that does not end the file.
        let mut out = vec![0; 128];
        let e = c.encrypt_blocks(7, &[1; 100], &mut out, false).unwrap_err();
        assert_eq!(
            e,
            BlockError {
                block: 7,
                kind: BlockErrorKind::Truncated
            }
        );
        // A piece too short to hold plaintext.
        let e = open(&c, 0, &[0; 4124 + 28], true).unwrap_err();
        assert_eq!(
            e,
            BlockError {
                block: 1,
                kind: BlockErrorKind::Truncated
            }
        );
        // A partial block read as not the end.
        let ct = seal(&c, 0, &[5; 50], true);
        assert_eq!(
            open(&c, 0, &ct, false).unwrap_err().kind,
            BlockErrorKind::Truncated
        );
        // Output of the wrong size.
        let mut out = vec![0; 49];
        assert_eq!(
            c.decrypt_blocks(0, &ct, &mut out, true).unwrap_err().kind,
            BlockErrorKind::Length
        );
        // Empty runs are fine.
        c.encrypt_blocks(0, &[], &mut [], true).unwrap();
        c.decrypt_blocks(0, &[], &mut [], true).unwrap();
    }

    #[test]
    fn rng_failure_is_reported() {
        let c = cipher(1);
        let mut out = vec![0; 4124];
        let e = c
            .encrypt_with_nonces(9, &[0; 4096], &mut out, true, |_| Err(()))
            .unwrap_err();
        assert_eq!(
            e,
            BlockError {
                block: 9,
                kind: BlockErrorKind::Random
            }
        );
    }

    #[test]
    fn nonce_batches_span_many_blocks() {
        // More blocks than one getrandom batch: every nonce distinct.
        let c = cipher(3);
        let p = pattern(150 * 4096);
        let ct = seal(&c, 0, &p, true);
        let mut nonces: Vec<&[u8]> = ct.chunks(4124).map(|b| &b[..12]).collect();
        nonces.sort();
        nonces.dedup();
        assert_eq!(nonces.len(), 150);
        assert_eq!(open(&c, 0, &ct, true).unwrap(), p);
    }
}
