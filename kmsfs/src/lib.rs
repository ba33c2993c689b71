//! kmsfs: an encrypting FUSE filesystem with a KMS-wrapped data key per file.
//! The on-disk format is `docs/FORMAT.md`.
//!
//! Layering (nothing below imports anything above):
//! `format` (pure bytes) → `keys` (kmsd, cache, pool) → `tools`, `fs` → `cli`.
//!
//! API summary for the FUSE side (owner: kmsfs-core):
//! - `format::offsets`: BLOCK_SIZE, CIPHER_BLOCK_SIZE, HEADER_SIZE, cipher_size,
//!   plain_size (strict), apparent_size (for stat of a damaged file),
//!   block_index, block_start, block_offset_in_file, block_count,
//!   plain_block_len, cipher_len / plain_len (runs), blocks_for -> BlockRange,
//!   cipher_span(first, count, plain_size) -> (backing offset, length).
//! - `format::FileCipher::{new(&DataKey, FileId), encrypt_blocks(first, plain,
//!   out, ends_file), decrypt_blocks(first, cipher, out, ends_file)}` ->
//!   Result<(), BlockError{block, kind}>. `ends_file` = this run's last block
//!   is the file's last block (it is marked final; see FORMAT.md "Writer
//!   obligations": re-encrypt the old last block as non-final when
//!   extending, the new last block as final when shrinking).
//! - `format::Header::{encode(&DataKey, &VolumeId), parse, verify}`,
//!   `format::VolumeConfig` (kmsfs.conf codec), `FileId`, `VolumeId`, `DataKey`.

pub mod ctl;
pub mod format;
pub mod fs;
pub mod keys;
pub mod tools;
pub mod cli;
