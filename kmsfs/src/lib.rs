//! kmsfs: an encrypting FUSE filesystem with a KMS-wrapped data key per file.
//! The on-disk format is `docs/FORMAT.md`.
//!
//! Layering (nothing below imports anything above):
//! `format` (pure bytes) → `kms` (the key service: kmsd socket or AWS API) →
//! `keys` (cache, pool, volume) → `tools`, `fs`
//! → `cli`, `ctl`.
//!
//! API summary (owner of format/keys/tools: kmsfs-core):
//! - `format::offsets`: BLOCK_SIZE, CIPHER_BLOCK_SIZE, HEADER_SIZE, cipher_size,
//!   plain_size (strict: header-only and cut blocks are errors),
//!   apparent_size (for stat of a damaged file), block_index, block_start,
//!   block_offset_in_file, block_count, plain_block_len, cipher_len /
//!   plain_len (runs), blocks_for -> BlockRange, cipher_span(first, count,
//!   plain_size) -> (backing offset, length).
//! - `format::FileCipher::{new(&DataKey, FileId), encrypt_blocks(first, plain,
//!   out, ends_file), decrypt_blocks(first, cipher, out, ends_file)}` ->
//!   Result<(), BlockError{block, kind}>. `ends_file` = this run's last block
//!   is the file's last block (it is marked final). FORMAT.md "Writer
//!   obligations": re-encrypt the old last block as non-final (padded to a
//!   full block) when extending, the new last block as final when shrinking;
//!   a hole is never final; never leave a header without block 0.
//! - `format::{Header, VolumeConfig, FileId, VolumeId, DataKey}`.
//! - `keys::KeyService` (Send + Sync, share via Arc): `new(client, &config,
//!   KeyOptions)`, `new_file() -> NewFile{file_id, cipher, header}` (pooled
//!   key, normally no kmsd call), `open(&header_bytes) -> Arc<FileCipher>`
//!   (LRU cache keyed by the wrapped key, MAC checked on every open),
//!   `stats() -> KeyStats`, `clear()`. Errors: `KeyError::{Unavailable,
//!   Denied, Corrupt}` with `.errno()` (EIO, EACCES, EIO).
//! - `keys::{init_volume(client, dir, key_id), load_volume(client, dir,
//!   pinned_key), Volume::open(client, dir, pinned_key, KeyOptions)}`: the
//!   authenticated `kmsfs.conf`; pass `--key-id` as the pin.
//! - `tools::{cat(&Volume, path, &mut dyn Write), fsck(client, dir, pin,
//!   progress) -> Report, fsck_volume(&Volume, progress), put(&Volume, path,
//!   data)}`; `Report` prints one line per problem and a summary.

pub mod cli;
pub mod ctl;
pub mod format;
pub mod fs;
pub mod keys;
pub mod kms;
pub mod tools;
