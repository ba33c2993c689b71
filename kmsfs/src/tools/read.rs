//! Reading one backing file block run by block run, shared by cat and fsck.

use crate::format::offsets::{self, BLOCK_SIZE, CIPHER_BLOCK_SIZE};
use crate::format::{BlockError, FileCipher, FormatError, HEADER_SIZE};
use crate::fs::layout::Sizes;
use crate::keys::{KeyError, KeyService};
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Blocks decrypted per read.
const RUN: u64 = 64;

/// What reading a file produced, in order.
pub enum Event<'a> {
    /// Authenticated plaintext of the next blocks, in order.
    Plain(&'a [u8]),
    /// An all-zero hole block (reads as zeros; also part of a `Plain`).
    Hole,
    /// A block that failed; reading resumes after it if the visitor goes on.
    Bad(BlockError),
}

/// Why a file could not be read at all.
pub enum FileError {
    Io(std::io::Error),
    Size(FormatError),
    Key(KeyError),
    /// Format 2: an empty file whose block is not the empty final block.
    Block(BlockError),
}

/// The plaintext size of the backing file, or why it has none.
pub fn plain_size(file: &File, sizes: Sizes) -> Result<(u64, u64), FileError> {
    let cipher = file.metadata().map_err(FileError::Io)?.len();
    let plain = sizes.plain_size(cipher).map_err(FileError::Size)?;
    Ok((cipher, plain))
}

/// Format 2: checks that an empty file's only block is the empty final
/// block under its key.
pub fn check_empty(cipher: &FileCipher, file: &File) -> Result<(), FileError> {
    let mut c = [0u8; crate::format::BLOCK_OVERHEAD];
    file.read_exact_at(&mut c, HEADER_SIZE as u64)
        .map_err(FileError::Io)?;
    cipher.open_empty_final(&c).map_err(FileError::Block)
}

/// Unwraps and verifies the header of a non-empty file.
pub fn open(keys: &KeyService, file: &File) -> Result<Arc<FileCipher>, FileError> {
    let mut h = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut h, 0).map_err(FileError::Io)?;
    keys.open(&h).map_err(FileError::Key)
}

/// Decrypts every block of a file of `plain_size` bytes, calling `visit`
/// with each event until it breaks.
pub fn blocks(
    cipher: &FileCipher,
    file: &File,
    plain_size: u64,
    mut visit: impl FnMut(Event<'_>) -> ControlFlow<()>,
) -> Result<(), std::io::Error> {
    let total = offsets::block_count(plain_size);
    let mut cbuf = Vec::new();
    let mut pbuf = Vec::new();
    let mut next = 0;
    while next < total {
        let count = RUN.min(total - next);
        let (off, len) = offsets::cipher_span(next, count, plain_size);
        // len <= RUN * CIPHER_BLOCK_SIZE.
        cbuf.resize(len as usize, 0);
        file.read_exact_at(&mut cbuf, off)?;
        let plain_len = (offsets::block_start(next + count).min(plain_size)
            - offsets::block_start(next)) as usize;
        pbuf.resize(plain_len, 0);
        let ends_file = next + count == total;
        for (i, c) in cbuf.chunks(CIPHER_BLOCK_SIZE).enumerate() {
            let block = next + i as u64;
            let last = ends_file && block + 1 == total;
            if !last && crate::format::block::is_hole(c) && visit(Event::Hole).is_break() {
                return Ok(());
            }
        }
        match cipher.decrypt_blocks(next, &cbuf, &mut pbuf, ends_file) {
            Ok(()) => {
                if visit(Event::Plain(&pbuf)).is_break() {
                    return Ok(());
                }
                next += count;
            }
            Err(e) => {
                let good = ((e.block - next) as usize) * BLOCK_SIZE;
                if good > 0 && visit(Event::Plain(&pbuf[..good])).is_break() {
                    return Ok(());
                }
                if visit(Event::Bad(e)).is_break() {
                    return Ok(());
                }
                next = e.block + 1;
            }
        }
    }
    Ok(())
}
