//! Reading, writing and truncating one regular file's content: plaintext
//! offsets turned into whole-block runs of the backing file
//! (docs/FORMAT.md, "Writer obligations").
//!
//! Callers hold the inode's content lock: shared for [`FileIo::read`],
//! exclusive for [`FileIo::write`] and [`FileIo::truncate`]. A request is
//! handled on the thread that serves it, over reusable per-thread buffers:
//! full blocks are encrypted straight from the request and written in
//! cache-sized pieces; reads decrypt the whole run in one call. Handing
//! part of a request to another thread (to encrypt, or to `pwrite`)
//! measured slower on the 2-CPU test VM: waking an idle CPU costs more than
//! it saves, and the kernel already sends concurrent reads to our other
//! threads.

use super::inode::Inode;
use super::layout::Sizes;
use super::sys;
use crate::format::offsets::{
    BLOCK_SIZE, CIPHER_BLOCK_SIZE, HEADER_SIZE, block_count, block_index, block_offset_in_file,
    block_start, cipher_len, cipher_size, cipher_span, plain_block_len, plain_len, punch_plan,
};
use crate::format::seek::{self, BlockMap, SeekError, Whence};
use crate::format::{BlockError, FileCipher, NONCE_SIZE};
use fuser::Errno;
use std::cell::RefCell;
use std::fs::File;
use std::sync::Arc;

/// Where a file's key comes from (the kmsd-backed key service in a mount; a
/// local key in unit tests).
pub trait KeySource: Send + Sync {
    /// A fresh key for a file that gets its first byte: the cipher and the
    /// header to write at offset 0.
    fn new_file(&self) -> Result<(Arc<FileCipher>, Vec<u8>), KeyFailure>;
    /// The cipher of an existing file, from its header bytes.
    fn open(&self, header: &[u8]) -> Result<Arc<FileCipher>, KeyFailure>;
    /// How long a cipher may be used before kmsd is asked again whether
    /// its key may still be used (revocation); `None`: forever.
    fn revalidate_after(&self) -> Option<std::time::Duration> {
        None
    }
    /// Asks kmsd again for the key of `header` (no cached answer).
    fn revalidate(&self, header: &[u8]) -> Result<Arc<FileCipher>, KeyFailure> {
        self.open(header)
    }
}

/// How long a refused key is refused without asking kmsd again.
pub const REFUSAL_HOLD: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks `inode`'s cipher with kmsd again (its header is `header`): on
/// a refusal (key disabled, pending deletion, grant revoked, policy
/// denies) the cipher is wiped and `Err` returned; when kmsd is
/// unreachable the cipher stays (kmsd down revokes nothing) and is
/// checked again a second later. Callers hold the content lock.
pub fn revalidate(
    inode: &Inode,
    keys: &dyn KeySource,
    header: &[u8],
    slot: &mut Option<super::inode::Checked>,
) -> Result<(), KeyFailure> {
    let now = std::time::Instant::now();
    match keys.revalidate(header) {
        Ok(c) => {
            *slot = Some(super::inode::Checked { cipher: c, at: now });
            *super::inode::lock(&inode.refused) = None;
            Ok(())
        }
        Err(k) if k.errno == Errno::EACCES || k.damaged => {
            *slot = None;
            *super::inode::lock(&inode.refused) = Some(now);
            Err(k)
        }
        Err(k) => {
            if let (Some(s), Some(ttl)) = (slot.as_mut(), keys.revalidate_after()) {
                s.at = now.checked_sub(ttl).unwrap_or(now) + REFUSAL_HOLD;
            }
            Err(k)
        }
    }
}

/// A key that could not be had: the errno for the caller (`EACCES` when
/// kmsd denied it, `EIO` otherwise) and a message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFailure {
    pub errno: Errno,
    /// The header or wrapped key is damaged (always logged), as opposed to
    /// kmsd being down or refusing (logged at most once a second).
    pub damaged: bool,
    pub message: String,
}

/// Something went wrong with a file: reported once per failing request to
/// the caller's `on_fault` (which logs it), before the errno is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The backing size no valid file has.
    Size(u64),
    /// A block failed to decrypt.
    Block(BlockError),
    /// The file's key could not be had.
    Key(KeyFailure),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Size(s) => write!(f, "backing size {s} is impossible (truncated or damaged)"),
            Fault::Block(b) => b.fmt(f),
            Fault::Key(k) => write!(f, "no key: {}", k.message),
        }
    }
}

#[derive(Default)]
struct Buffers {
    plain: Vec<u8>,
    cipher: Vec<u8>,
    scratch: Vec<u8>,
}

/// Blocks encrypted and written at a time (256 KiB: stays in the cache).
const PIECE_BLOCKS: u64 = 64;

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// A buffer of exactly `len` bytes, reusing the allocation.
fn sized(v: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if v.len() < len {
        v.resize(len, 0);
    }
    &mut v[..len]
}

/// The content operations on one open regular file.
pub struct FileIo<'a> {
    pub file: &'a File,
    pub inode: &'a Inode,
    pub keys: &'a dyn KeySource,
    /// Called once for a damaged file or block or a missing key, before
    /// the request fails.
    pub on_fault: &'a dyn Fn(&Fault),
    /// The volume format's size rules: in format 2 every file has a
    /// header and a final block, empty ones included.
    pub sizes: Sizes,
}

impl FileIo<'_> {
    fn fault(&self, d: Fault) -> Errno {
        let errno = match &d {
            Fault::Key(k) => k.errno,
            _ => Errno::EIO,
        };
        (self.on_fault)(&d);
        errno
    }

    fn key_failed(&self, k: KeyFailure) -> Errno {
        self.fault(Fault::Key(k))
    }

    /// The plaintext size, from the backing size.
    pub fn size(&self) -> Result<u64, Errno> {
        let st = sys::fstat(std::os::fd::AsFd::as_fd(self.file))?;
        let backing = u64::try_from(st.st_size).unwrap_or(0);
        self.sizes
            .plain_size(backing)
            .map_err(|_| self.fault(Fault::Size(backing)))
    }

    /// The file's cipher, reading and unwrapping its header on first use.
    /// After the key source's revalidation interval kmsd is asked again
    /// (see [`revalidate`]); a refused key gives `EACCES`.
    pub fn cipher(&self) -> Result<Arc<FileCipher>, Errno> {
        let mut slot = super::inode::lock(&self.inode.cipher);
        let ttl = self.keys.revalidate_after();
        if let Some(c) = slot.as_ref()
            && ttl.is_none_or(|t| c.at.elapsed() < t)
        {
            return Ok(c.cipher.clone());
        }
        if let Some(at) = *super::inode::lock(&self.inode.refused)
            && at.elapsed() < REFUSAL_HOLD
        {
            return Err(Errno::EACCES);
        }
        let mut header = [0u8; HEADER_SIZE];
        sys::pread_exact(self.file, &mut header, 0)?;
        if slot.is_some() {
            match revalidate(self.inode, self.keys, &header, &mut slot) {
                Ok(()) => {}
                // kmsd unreachable: the key it gave stays usable.
                Err(k) if slot.is_some() => (self.on_fault)(&Fault::Key(k)),
                Err(k) => return Err(self.key_failed(k)),
            }
            return slot.as_ref().map(|c| c.cipher.clone()).ok_or(Errno::EIO);
        }
        let c = self.keys.open(&header).map_err(|k| self.key_failed(k))?;
        *slot = Some(super::inode::Checked {
            cipher: c.clone(),
            at: std::time::Instant::now(),
        });
        *super::inode::lock(&self.inode.refused) = None;
        Ok(c)
    }

    /// Makes sure a later write finds its key without asking kmsd: the
    /// cipher of a file with content, or a fresh key set aside for an
    /// empty file's first byte. With the kernel's writeback cache, writes
    /// reach us after write(2) has returned, so a key that cannot be had
    /// must fail the open (EIO, EACCES) instead.
    pub fn prepare_write(&self) -> Result<(), Errno> {
        if self.size()? > 0 || self.sizes == Sizes::V2 {
            return self.cipher().map(|_| ());
        }
        let mut fresh = super::inode::lock(&self.inode.fresh);
        if fresh.is_none() {
            *fresh = Some(self.keys.new_file().map_err(|k| self.key_failed(k))?);
        }
        Ok(())
    }

    /// The key for an empty file's first byte: the one set aside at open,
    /// else a new one.
    fn fresh_key(&self) -> Result<(Arc<FileCipher>, Vec<u8>), Errno> {
        let set_aside = super::inode::lock(&self.inode.fresh).take();
        match set_aside {
            Some(k) => Ok(k),
            None => self.keys.new_file().map_err(|k| self.key_failed(k)),
        }
    }

    /// Calls `f` with the plaintext of `size` bytes at `off` (less at the
    /// end of the file, nothing past it).
    pub fn read<R>(&self, off: u64, size: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R, Errno> {
        let psize = self.size()?;
        if psize == 0 && self.sizes == Sizes::V2 {
            // An empty file's one block must be the empty final block, so
            // a file cut back to its first 540 bytes does not read as empty.
            self.check_empty()?;
        }
        if off >= psize || size == 0 {
            return Ok(f(&[]));
        }
        let end = psize.min(off.saturating_add(size as u64));
        let first = block_index(off);
        let last = block_index(end - 1);
        let cipher = self.cipher()?;
        let (coff, clen) = cipher_span(first, last - first + 1, psize);
        let clen = usize::try_from(clen).map_err(|_| Errno::EFBIG)?;
        let ends_file = last + 1 == block_count(psize);
        BUFFERS.with_borrow_mut(|b| {
            let cbuf = sized(&mut b.cipher, clen);
            sys::pread_exact(self.file, cbuf, coff)?;
            let plen = plain_len(clen).ok_or(Errno::EIO)?;
            let pbuf = sized(&mut b.plain, plen);
            cipher
                .decrypt_blocks(first, cbuf, pbuf, ends_file)
                .map_err(|e| self.fault(Fault::Block(e)))?;
            let skip = (off - block_start(first)) as usize;
            Ok(f(&pbuf[skip..skip + (end - off) as usize]))
        })
    }

    /// Writes `data` at plaintext offset `off`; a gap past the old end
    /// becomes a hole.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<(), Errno> {
        if data.is_empty() {
            return Ok(());
        }
        let end = off
            .checked_add(data.len() as u64)
            .filter(|e| cipher_size(*e) < i64::MAX as u64)
            .ok_or(Errno::EFBIG)?;
        let old = self.size()?;
        let new = old.max(end);
        let (cipher, header) = if old == 0 && self.sizes == Sizes::V1 {
            let (c, h) = self.fresh_key()?;
            (c, Some(h))
        } else {
            (self.cipher()?, None)
        };
        let first = block_index(off);
        let last = block_index(end - 1);
        let old_last = old.checked_sub(1).map(block_index);
        // When the file grows past its old final block, that block must be
        // re-encrypted as a full, non-final block: with this run when it
        // is adjacent, else on its own.
        let mut run_first = first;
        let mut pad_alone = None;
        if let Some(ol) = old_last.filter(|ol| *ol < first) {
            if ol + 1 == first {
                run_first = ol;
            } else {
                pad_alone = Some(ol);
            }
        }
        let run_len = (new.min(block_start(last + 1)) - block_start(run_first)) as usize;
        let ends_file = last == block_index(new - 1);
        // Blocks whose whole new content comes from `data` are encrypted
        // straight from it ([d0, d1)); the others, at most the run's first
        // two and its last, are assembled from old content, zeros and data.
        let direct = |b: u64| off <= block_start(b) && end >= new.min(block_start(b + 1));
        let mut d0 = run_first;
        while d0 <= last && !direct(d0) {
            d0 += 1;
        }
        let mut d1 = last + 1;
        while d1 > d0 && !direct(d1 - 1) {
            d1 -= 1;
        }
        // A write that grows the file rewrites the old final block: keep
        // its stored bytes, so a failure (a full disk) can put the file
        // back as it was.
        let saved = match old_last.filter(|_| new > old) {
            Some(ol) => {
                let at = block_offset_in_file(ol);
                let mut raw = vec![0u8; (cipher_size(old) - at) as usize];
                sys::pread_exact(self.file, &mut raw, at)?;
                Some((at, raw))
            }
            // Format 2: an empty file's empty final block is replaced.
            None if old == 0 && self.sizes == Sizes::V2 => {
                let at = HEADER_SIZE as u64;
                let mut raw = vec![0u8; crate::format::BLOCK_OVERHEAD];
                sys::pread_exact(self.file, &mut raw, at)?;
                Some((at, raw))
            }
            None => None,
        };
        // Space first: a full disk fails the write here, before a stored
        // byte changed, rather than half-way through a block. Only holes
        // need it, and holes lie below the old final block (a final block
        // is never a hole): bytes past the old end are new, and a failure
        // there is undone by `restore`, which truncates them. So an append
        // reserves nothing.
        let holes_end = old_last.map_or(0, block_offset_in_file);
        let run_end = block_offset_in_file(last) + cipher_len(plain_block_len(last, new)) as u64;
        self.reserve(block_offset_in_file(run_first), holes_end.min(run_end))?;
        let written = BUFFERS.with_borrow_mut(|b| {
            let Buffers {
                plain,
                cipher: cbuf,
                scratch,
            } = b;
            if let Some(ol) = pad_alone {
                self.pad_block(&cipher, ol, old, plain, cbuf, scratch)?;
            }
            if old == 0 && run_first > 0 && self.sizes == Sizes::V2 {
                // Format 2: the empty final block becomes part of a hole.
                sys::pwrite_all(
                    self.file,
                    &[0u8; crate::format::BLOCK_OVERHEAD],
                    HEADER_SIZE as u64,
                )?;
            }
            let head = if header.is_some() && run_first == 0 {
                HEADER_SIZE
            } else {
                0
            };
            let out = sized(cbuf, head + cipher_len(run_len));
            let body = &mut out[head..];
            let at = |blk: u64| ((blk - run_first) as usize) * CIPHER_BLOCK_SIZE;
            for blk in (run_first..d0).chain(d1..=last) {
                let pbuf = sized(plain, plain_block_len(blk, new));
                self.assemble(&cipher, blk, old, off, data, pbuf, scratch)?;
                let c = &mut body[at(blk)..at(blk) + cipher_len(pbuf.len())];
                cipher
                    .encrypt_blocks(blk, pbuf, c, ends_file && blk == last)
                    .map_err(|e| self.fault(Fault::Block(e)))?;
            }
            let direct_at = head + at(d0);
            let base = if head > 0 {
                0
            } else {
                block_offset_in_file(run_first)
            };
            if let (Some(h), true) = (&header, head > 0) {
                out[..HEADER_SIZE].copy_from_slice(h);
            }
            // The direct blocks in pieces: each piece is written (with
            // everything before it not yet written) right after it is
            // encrypted, while it is still in the CPU cache. The header
            // goes with the first block.
            let mut rest: &mut [u8] = out;
            let mut rest_off = base;
            let mut ready = direct_at;
            let mut blk = d0;
            while blk < d1 {
                let upto = d1.min(blk + PIECE_BLOCKS);
                let lo = (block_start(blk) - off) as usize;
                let hi = (new.min(block_start(upto)) - off) as usize;
                let clen = cipher_len(hi - lo);
                let (piece, tail) = rest.split_at_mut(ready + clen);
                cipher
                    .encrypt_blocks(
                        blk,
                        &data[lo..hi],
                        &mut piece[ready..],
                        ends_file && upto - 1 == last,
                    )
                    .map_err(|e| self.fault(Fault::Block(e)))?;
                sys::pwrite_all(self.file, piece, rest_off)?;
                rest_off += piece.len() as u64;
                rest = tail;
                ready = 0;
                blk = upto;
            }
            if !rest.is_empty() {
                sys::pwrite_all(self.file, rest, rest_off)?;
            }
            if let (Some(h), 0) = (&header, head) {
                // The header goes last, so a header never exists alone.
                sys::pwrite_all(self.file, h, 0)?;
            }
            Ok::<(), Errno>(())
        });
        if let Err(e) = written {
            if new > old {
                self.restore(old, saved.as_ref());
            }
            return Err(e);
        }
        if header.is_some() {
            self.inode.set_cipher(Some(cipher));
        }
        Ok(())
    }

    /// Zeroes plaintext `off .. off + len` (clipped to the file) without
    /// changing the size: whole blocks become holes, the rest is written
    /// as encrypted zeros (see [`punch_plan`]).
    pub fn punch_hole(&self, off: u64, len: u64) -> Result<(), Errno> {
        let plan = punch_plan(off, len, self.size()?);
        for (a, b) in plan.zero {
            let zeros = vec![0u8; (b - a) as usize];
            self.write(a, &zeros)?;
        }
        if let Some((first, past)) = plan.holes {
            let at = block_offset_in_file(first);
            let len = block_offset_in_file(past) - at;
            match sys::punch_hole(self.file, at, len) {
                Ok(()) => {}
                // No holes in the backing file system: encrypted zeros.
                Err(e) if e == Errno::EOPNOTSUPP => {
                    let zeros = vec![0u8; BLOCK_SIZE * PIECE_BLOCKS as usize];
                    let mut blk = first;
                    while blk < past {
                        let n = (past - blk).min(PIECE_BLOCKS);
                        self.write(block_start(blk), &zeros[..n as usize * BLOCK_SIZE])?;
                        blk += n;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Allocates the backing bytes `lo..hi` when some of them are not
    /// allocated yet (a hole, or past the end of the file), so that the
    /// writes that follow cannot run out of space half-way through a block
    /// and leave it torn. A backing file system without `fallocate`
    /// skips this (a failed growing write is still rolled back).
    pub fn reserve(&self, lo: u64, hi: u64) -> Result<(), Errno> {
        if lo >= hi {
            return Ok(());
        }
        let hole = match sys::seek_hole(self.file, lo) {
            Ok(h) => h,
            Err(e) if e == Errno::ENXIO => lo,
            Err(_) => return Ok(()),
        };
        if hole >= hi {
            return Ok(());
        }
        match sys::allocate_keep_size(self.file, hole, hi - hole) {
            Err(e) if e == Errno::EOPNOTSUPP || e == Errno::ENOSYS || e == Errno::EINVAL => Ok(()),
            r => r,
        }
    }

    /// Puts a file that a failed write was growing back to its `old`
    /// size and its old final block (`saved`: offset and stored bytes).
    /// Shrinking and rewriting allocated bytes need no new space, so this
    /// works on the full disk that made the write fail.
    fn restore(&self, old: u64, saved: Option<&(u64, Vec<u8>)>) {
        let back =
            sys::ftruncate(self.file, self.sizes.cipher_size(old)).and_then(|()| match saved {
                Some((at, raw)) => sys::pwrite_all(self.file, raw, *at),
                None => Ok(()),
            });
        if let Err(e) = back {
            tracing::error!(
                "a failed write left a file damaged: cannot restore its old size {old}: {e:?}"
            );
        }
    }

    /// The new plaintext of block `blk` (`dst`, its new length) when
    /// `data` is written at `off` into a file of `old` bytes: old content
    /// the data does not cover, zeros past the old end, the data on top.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        cipher: &FileCipher,
        blk: u64,
        old: u64,
        off: u64,
        data: &[u8],
        dst: &mut [u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        dst.fill(0);
        let start = block_start(blk);
        let end = off + data.len() as u64;
        if old > start && !covers(off, end, blk, old) {
            let olen = plain_block_len(blk, old);
            self.load_block(cipher, blk, old, &mut dst[..olen], scratch)?;
        }
        let lo = off.max(start);
        let hi = end.min(start + dst.len() as u64);
        if lo < hi {
            dst[(lo - start) as usize..(hi - start) as usize]
                .copy_from_slice(&data[(lo - off) as usize..(hi - off) as usize]);
        }
        Ok(())
    }

    /// Re-encrypts block `blk`, the final block of a file of `old` bytes,
    /// as a full non-final block (the file grows past it).
    fn pad_block(
        &self,
        cipher: &FileCipher,
        blk: u64,
        old: u64,
        plain: &mut Vec<u8>,
        cbuf: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        let pbuf = sized(plain, BLOCK_SIZE);
        pbuf.fill(0);
        let len = plain_block_len(blk, old);
        self.load_block(cipher, blk, old, &mut pbuf[..len], scratch)?;
        let out = sized(cbuf, cipher_len(BLOCK_SIZE));
        cipher
            .encrypt_blocks(blk, pbuf, out, false)
            .map_err(|e| self.fault(Fault::Block(e)))?;
        sys::pwrite_all(self.file, out, block_offset_in_file(blk))
    }

    /// Decrypts block `blk` of a file of `size` bytes into `dst` (exactly
    /// the block's plaintext length).
    fn load_block(
        &self,
        cipher: &FileCipher,
        blk: u64,
        size: u64,
        dst: &mut [u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), Errno> {
        let c = sized(scratch, cipher_len(dst.len()));
        sys::pread_exact(self.file, c, block_offset_in_file(blk))?;
        let ends_file = blk + 1 == block_count(size);
        cipher
            .decrypt_blocks(blk, c, dst, ends_file)
            .map_err(|e| self.fault(Fault::Block(e)))
    }

    /// Sets the plaintext size to `new`.
    pub fn truncate(&self, new: u64) -> Result<(), Errno> {
        if new == 0 && self.sizes == Sizes::V2 {
            // Format 2: the header stays, block 0 becomes the empty final
            // block (written before the cut, so the bytes at 512..540 are
            // never a piece of the old block 0).
            let cipher = self.cipher()?;
            let empty = cipher
                .seal_empty_final()
                .map_err(|e| self.fault(Fault::Block(e)))?;
            sys::pwrite_all(self.file, &empty, HEADER_SIZE as u64)?;
            return sys::ftruncate(self.file, self.sizes.cipher_size(0));
        }
        if new == 0 {
            sys::ftruncate(self.file, 0)?;
            // The next first byte gets a fresh key and file id.
            self.inode.set_cipher(None);
            return Ok(());
        }
        if cipher_size(new) >= i64::MAX as u64 {
            return Err(Errno::EFBIG);
        }
        let old = self.size()?;
        if new == old {
            return Ok(());
        }
        if new > old {
            // Writing the last byte pads the old final block, leaves a hole
            // between and makes a real final block.
            return self.write(new - 1, &[0]);
        }
        let cipher = self.cipher()?;
        let nl = block_index(new - 1);
        let len = plain_block_len(nl, new);
        BUFFERS.with_borrow_mut(|b| {
            let Buffers {
                plain,
                cipher: cbuf,
                scratch,
            } = b;
            let pbuf = sized(plain, plain_block_len(nl, old));
            self.load_block(&cipher, nl, old, pbuf, scratch)?;
            let out = sized(cbuf, cipher_len(len));
            cipher
                .encrypt_blocks(nl, &pbuf[..len], out, true)
                .map_err(|e| self.fault(Fault::Block(e)))?;
            sys::pwrite_all(self.file, out, block_offset_in_file(nl))?;
            sys::ftruncate(self.file, cipher_size(new))
        })
    }
}

impl FileIo<'_> {
    /// `SEEK_DATA` / `SEEK_HOLE` from plaintext offset `off`, at block
    /// granularity (docs/FORMAT.md "Seeking"); `ENXIO` at or past the end.
    pub fn seek(&self, whence: Whence, off: u64) -> Result<u64, Errno> {
        let size = self.size()?;
        seek::seek(whence, off, size, &mut StoredBlocks { file: self.file }).map_err(|e| match e {
            SeekError::PastEnd => Errno::ENXIO,
            SeekError::Io(e) => e,
        })
    }

    /// Format 2: checks that an empty file's block is the empty final
    /// block under the file's key.
    fn check_empty(&self) -> Result<(), Errno> {
        let cipher = self.cipher()?;
        let mut c = [0u8; crate::format::BLOCK_OVERHEAD];
        sys::pread_exact(self.file, &mut c, HEADER_SIZE as u64)?;
        cipher
            .open_empty_final(&c)
            .map_err(|e| self.fault(Fault::Block(e)))
    }

    /// Format 2: makes a newly created (0-byte) backing file an empty
    /// file: a fresh header and the empty final block, in one write. The
    /// key comes from the pool (no kmsd round trip when one is ready).
    pub fn initialize(&self) -> Result<(), Errno> {
        let (cipher, bytes) = empty_file(self.keys).map_err(|f| self.fault(f))?;
        sys::pwrite_all(self.file, &bytes, 0)?;
        self.inode.set_cipher(Some(cipher));
        Ok(())
    }
}

/// A file's blocks as stored: a non-final block is a hole when its stored
/// bytes are all zero, which a backing hole is too.
struct StoredBlocks<'a> {
    file: &'a File,
}

impl BlockMap for StoredBlocks<'_> {
    type Error = Errno;

    fn is_hole(&mut self, block: u64) -> Result<bool, Errno> {
        let at = block_offset_in_file(block);
        // A written block starts with its random nonce: twelve zero bytes
        // there are all but impossible, so one small read settles a data
        // block and only holes (and punched edges) are read whole.
        let mut nonce = [0u8; NONCE_SIZE];
        sys::pread_exact(self.file, &mut nonce, at)?;
        if nonce.iter().any(|b| *b != 0) {
            return Ok(false);
        }
        let mut stored = vec![0u8; CIPHER_BLOCK_SIZE];
        sys::pread_exact(self.file, &mut stored, at)?;
        Ok(stored.iter().all(|b| *b == 0))
    }

    fn skip_holes(&mut self, block: u64) -> Result<u64, Errno> {
        match sys::seek_data(self.file, block_offset_in_file(block)) {
            // Every block before the one holding the backing data lies in
            // the backing hole.
            Ok(d) => Ok(seek::block_at_backing(d).max(block)),
            // Only holes follow (the final block is stored, so this is a
            // file changing under us): the search ends at the last block.
            Err(e) if e == Errno::ENXIO => Ok(u64::MAX),
            // A backing file system that cannot tell: read every block.
            Err(_) => Ok(block),
        }
    }
}

/// Format 2: a new empty file's key and its 540 bytes (header and empty
/// final block).
pub fn empty_file(keys: &dyn KeySource) -> Result<(Arc<FileCipher>, Vec<u8>), Fault> {
    let (cipher, mut bytes) = keys.new_file().map_err(Fault::Key)?;
    let empty = cipher.seal_empty_final().map_err(Fault::Block)?;
    bytes.extend_from_slice(&empty);
    Ok((cipher, bytes))
}

/// Whether a write of `off..end` covers all old content of block `blk` in a
/// file of `old` bytes.
fn covers(off: u64, end: u64, blk: u64, old: u64) -> bool {
    let start = block_start(blk);
    off <= start && end >= start + plain_block_len(blk, old) as u64
}

#[cfg(test)]
mod tests;
