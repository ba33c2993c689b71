//! `SEEK_DATA` / `SEEK_HOLE` at plaintext block granularity
//! (docs/FORMAT.md "Holes", "Seeking"): which block answers a seek, given
//! which blocks are holes. Finding out whether a block is a hole takes
//! reads of the backing file; that is the caller's [`BlockMap`], so the
//! search itself is pure and tested against a byte-level model here.

use super::offsets::{CIPHER_BLOCK_SIZE, HEADER_SIZE, block_count, block_index, block_start};

/// What `lseek` looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whence {
    /// `SEEK_DATA`: the first data byte at or after the offset.
    Data,
    /// `SEEK_HOLE`: the first hole byte at or after the offset; the end of
    /// the file counts as one.
    Hole,
}

/// Why a seek has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeekError<E> {
    /// The offset is at or past the end of the file (`ENXIO`).
    PastEnd,
    /// The block map could not be read.
    Io(E),
}

/// What the search asks about a file's blocks. Only non-final blocks are
/// ever asked about: the last block is data whatever it holds (a hole is
/// never final, docs/FORMAT.md "Holes").
pub trait BlockMap {
    type Error;

    /// Whether non-final block `block` is a hole: its stored bytes are all
    /// zero (a backing hole reads as zeros).
    fn is_hole(&mut self, block: u64) -> Result<bool, Self::Error>;

    /// A block at or after `block` such that every block from `block` up
    /// to it is known to be a hole (it lies wholly in a backing hole).
    /// Returning `block` itself is always correct; a larger answer only
    /// lets the search skip a long hole without reading it.
    fn skip_holes(&mut self, block: u64) -> Result<u64, Self::Error>;
}

/// The answer to `lseek(off, whence)` on a file of `size` plaintext bytes
/// whose blocks `map` describes.
pub fn seek<M: BlockMap>(
    whence: Whence,
    off: u64,
    size: u64,
    map: &mut M,
) -> Result<u64, SeekError<M::Error>> {
    if off >= size {
        return Err(SeekError::PastEnd);
    }
    let last = block_count(size) - 1;
    let mut b = block_index(off);
    // Mid-block offsets answer with themselves when their own block is
    // what is sought; later blocks answer with their start.
    let at = |b: u64| off.max(block_start(b));
    loop {
        if b >= last {
            return Ok(match whence {
                Whence::Data => at(last),
                Whence::Hole => size,
            });
        }
        if whence == Whence::Data {
            let next = map.skip_holes(b).map_err(SeekError::Io)?;
            if next > b {
                b = next;
                continue;
            }
        }
        let hole = map.is_hole(b).map_err(SeekError::Io)?;
        if hole == (whence == Whence::Hole) {
            return Ok(at(b));
        }
        b += 1;
    }
}

/// The block whose stored bytes hold backing offset `backing_off` (block 0
/// for offsets in the header): every block before it ends at or before
/// `backing_off`.
pub fn block_at_backing(backing_off: u64) -> u64 {
    backing_off.saturating_sub(HEADER_SIZE as u64) / CIPHER_BLOCK_SIZE as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::offsets::{BLOCK_SIZE, block_offset_in_file};

    /// A file whose blocks are holes where `holes` says (the last one is
    /// data whatever it says), answering `skip_holes` perfectly or not at
    /// all, and counting the blocks it was asked about.
    struct Model {
        holes: Vec<bool>,
        skips: bool,
        asked: u64,
    }

    impl BlockMap for Model {
        type Error = ();
        fn is_hole(&mut self, b: u64) -> Result<bool, ()> {
            assert!(
                (b as usize) + 1 < self.holes.len(),
                "asked about the last block"
            );
            self.asked += 1;
            Ok(self.holes[b as usize])
        }
        fn skip_holes(&mut self, b: u64) -> Result<u64, ()> {
            if !self.skips {
                return Ok(b);
            }
            let mut n = b;
            while (n as usize) + 1 < self.holes.len() && self.holes[n as usize] {
                n += 1;
            }
            Ok(n)
        }
    }

    /// The byte-level answer: a byte is a hole byte when its block is a
    /// hole and not the last block.
    fn reference(whence: Whence, off: u64, size: u64, holes: &[bool]) -> Result<u64, ()> {
        if off >= size {
            return Err(());
        }
        let last = block_count(size) - 1;
        let hole_at = |o: u64| {
            let b = block_index(o);
            b < last && holes[b as usize]
        };
        // Whole blocks at a time from the next boundary on; the answer is
        // the same as byte by byte.
        let mut o = off;
        while o < size {
            if hole_at(o) == (whence == Whence::Hole) {
                return Ok(o);
            }
            o = block_start(block_index(o) + 1).min(size);
        }
        match whence {
            Whence::Hole => Ok(size),
            Whence::Data => unreachable!("the last block is data"),
        }
    }

    #[test]
    fn every_hole_pattern_matches_the_byte_model_at_every_edge() {
        let bs = BLOCK_SIZE as u64;
        for blocks in 1..=6u64 {
            for pattern in 0..(1u32 << blocks) {
                let holes: Vec<bool> = (0..blocks).map(|i| pattern & (1 << i) != 0).collect();
                for tail in [1, bs / 2, bs - 1, bs] {
                    let size = (blocks - 1) * bs + tail;
                    let mut offs = vec![size, size + 1, size + bs];
                    for b in 0..blocks {
                        let s = b * bs;
                        offs.extend([s, s + 1, s + bs / 2, s + bs - 1]);
                    }
                    for off in offs {
                        for whence in [Whence::Data, Whence::Hole] {
                            let want = reference(whence, off, size, &holes);
                            for skips in [false, true] {
                                let mut m = Model {
                                    holes: holes.clone(),
                                    skips,
                                    asked: 0,
                                };
                                let got = seek(whence, off, size, &mut m)
                                    .map_err(|e| {
                                        assert_eq!(e, SeekError::PastEnd);
                                    })
                                    .map_err(|_| ());
                                assert_eq!(
                                    got, want,
                                    "{whence:?} at {off}, size {size}, holes {holes:?}, skips {skips}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_last_block_is_data_and_the_end_is_a_hole() {
        let bs = BLOCK_SIZE as u64;
        // Every block "a hole", including the last: only the non-final
        // ones count.
        let mut m = Model {
            holes: vec![true; 4],
            skips: false,
            asked: 0,
        };
        assert_eq!(seek(Whence::Data, 0, 4 * bs, &mut m), Ok(3 * bs));
        assert_eq!(seek(Whence::Hole, 0, 4 * bs, &mut m), Ok(0));
        assert_eq!(seek(Whence::Hole, 3 * bs + 5, 4 * bs, &mut m), Ok(4 * bs));
        assert_eq!(
            seek(Whence::Data, 3 * bs + 5, 4 * bs, &mut m),
            Ok(3 * bs + 5)
        );
        assert_eq!(
            seek(Whence::Data, 4 * bs, 4 * bs, &mut m),
            Err(SeekError::PastEnd)
        );
        assert_eq!(
            seek(Whence::Hole, 4 * bs, 4 * bs, &mut m),
            Err(SeekError::PastEnd)
        );
        // An empty file has no data and no hole.
        let mut empty = Model {
            holes: vec![],
            skips: false,
            asked: 0,
        };
        assert_eq!(
            seek(Whence::Data, 0, 0, &mut empty),
            Err(SeekError::PastEnd)
        );
        assert_eq!(
            seek(Whence::Hole, 0, 0, &mut empty),
            Err(SeekError::PastEnd)
        );
        // xfstests' probe: two blocks written, truncated up to four.
        let mut probe = Model {
            holes: vec![false, false, true, false],
            skips: false,
            asked: 0,
        };
        assert_eq!(seek(Whence::Hole, 0, 4 * bs, &mut probe), Ok(2 * bs));
    }

    #[test]
    fn a_long_hole_is_skipped_without_reading_it() {
        let blocks = 1 << 20;
        let mut holes = vec![true; blocks];
        holes[blocks / 2] = false;
        let size = blocks as u64 * BLOCK_SIZE as u64;
        let mut m = Model {
            holes,
            skips: true,
            asked: 0,
        };
        let want = (blocks / 2) as u64 * BLOCK_SIZE as u64;
        assert_eq!(seek(Whence::Data, 1, size, &mut m), Ok(want));
        assert_eq!(m.asked, 1, "read blocks in the skipped hole");
        assert_eq!(seek(Whence::Data, want + 1, size, &mut m), Ok(want + 1));
    }

    #[test]
    fn backing_offsets_map_to_the_block_holding_them() {
        assert_eq!(block_at_backing(0), 0);
        assert_eq!(block_at_backing(511), 0);
        for b in [0u64, 1, 2, 1000] {
            let s = block_offset_in_file(b);
            assert_eq!(block_at_backing(s), b);
            assert_eq!(block_at_backing(s + CIPHER_BLOCK_SIZE as u64 - 1), b);
            assert_eq!(block_at_backing(s + CIPHER_BLOCK_SIZE as u64), b + 1);
        }
    }
}
