//! Every conversion between plaintext and ciphertext sizes and offsets.
//! Nothing else in kmsfs does this arithmetic (docs/FORMAT.md, "Sizes").

use super::FormatError;

/// Plaintext bytes per block.
pub const BLOCK_SIZE: usize = 4096;
/// Bytes of random nonce in front of every cipher block.
pub const NONCE_SIZE: usize = 12;
/// Bytes of GCM tag after every cipher block.
pub const TAG_SIZE: usize = 16;
/// Cipher bytes added to every block.
pub const BLOCK_OVERHEAD: usize = NONCE_SIZE + TAG_SIZE;
/// Bytes of a full cipher block.
pub const CIPHER_BLOCK_SIZE: usize = BLOCK_SIZE + BLOCK_OVERHEAD;
/// Bytes of the file header in front of block 0.
pub const HEADER_SIZE: usize = 512;

const BS: u64 = BLOCK_SIZE as u64;
const CBS: u64 = CIPHER_BLOCK_SIZE as u64;
const OVERHEAD: u64 = BLOCK_OVERHEAD as u64;
const HS: u64 = HEADER_SIZE as u64;

/// The backing-file size of a plaintext of `plain` bytes. 0 stays 0: an
/// empty file has no header.
pub fn cipher_size(plain: u64) -> u64 {
    if plain == 0 {
        return 0;
    }
    let full = plain / BS;
    let rest = plain % BS;
    HS + full * CBS + if rest > 0 { rest + OVERHEAD } else { 0 }
}

/// The plaintext size of a backing file of `cipher` bytes; sizes no valid
/// file can have (header only, or a piece too short to hold any plaintext)
/// are errors.
pub fn plain_size(cipher: u64) -> Result<u64, FormatError> {
    if cipher == 0 {
        return Ok(0);
    }
    if cipher <= HS {
        return Err(FormatError::BadSize {
            cipher_size: cipher,
        });
    }
    let body = cipher - HS;
    let rest = body % CBS;
    if rest > 0 && rest <= OVERHEAD {
        return Err(FormatError::BadSize {
            cipher_size: cipher,
        });
    }
    Ok(body / CBS * BS + rest.saturating_sub(OVERHEAD))
}

/// Version 2: the backing size of an empty file, its header and an empty
/// final block (docs/FORMAT.md, "Regular files").
pub const EMPTY_FILE_SIZE_V2: u64 = HS + OVERHEAD;

/// Version 2: the backing-file size of a plaintext of `plain` bytes. Every
/// file has a header; an empty one also has an empty final block.
pub fn cipher_size_v2(plain: u64) -> u64 {
    if plain == 0 {
        EMPTY_FILE_SIZE_V2
    } else {
        cipher_size(plain)
    }
}

/// Version 2: the plaintext size of a backing file of `cipher` bytes. A
/// file shorter than [`EMPTY_FILE_SIZE_V2`] (0 bytes, a header alone) is an
/// error, and a 28-byte last piece is valid only as an empty file's block.
pub fn plain_size_v2(cipher: u64) -> Result<u64, FormatError> {
    if cipher < EMPTY_FILE_SIZE_V2 {
        return Err(FormatError::BadSize {
            cipher_size: cipher,
        });
    }
    if cipher == EMPTY_FILE_SIZE_V2 {
        return Ok(0);
    }
    plain_size(cipher)
}

/// A best-effort size for `stat` of a possibly damaged file: the plaintext
/// size when `cipher` is valid, else the plaintext bytes of its whole
/// blocks. Never used for reading; reads of a damaged file fail.
pub fn apparent_size(cipher: u64) -> u64 {
    plain_size(cipher).unwrap_or_else(|_| cipher.saturating_sub(HS) / CBS * BS)
}

/// The block holding plaintext offset `plain_off`.
pub fn block_index(plain_off: u64) -> u64 {
    plain_off / BS
}

/// The plaintext offset where block `block` starts.
pub fn block_start(block: u64) -> u64 {
    block * BS
}

/// The backing-file offset where block `block` starts.
pub fn block_offset_in_file(block: u64) -> u64 {
    HS + block * CBS
}

/// How many blocks a file of `plain_size` bytes has.
pub fn block_count(plain_size: u64) -> u64 {
    plain_size.div_ceil(BS)
}

/// Plaintext bytes of block `block` in a file of `plain_size` bytes (0 for
/// a block past the end).
pub fn plain_block_len(block: u64, plain_size: u64) -> usize {
    let start = block_start(block);
    // At most BLOCK_SIZE, so the cast cannot truncate.
    plain_size.saturating_sub(start).min(BS) as usize
}

/// The cipher length of `plain_len` consecutive plaintext bytes that start
/// at a block boundary (every block full except possibly the last).
pub fn cipher_len(plain_len: usize) -> usize {
    plain_len + plain_len.div_ceil(BLOCK_SIZE) * BLOCK_OVERHEAD
}

/// The plaintext length of `cipher_len` consecutive cipher bytes that start
/// at a block boundary; `None` when the last piece cannot hold plaintext.
pub fn plain_len(cipher_len: usize) -> Option<usize> {
    let rest = cipher_len % CIPHER_BLOCK_SIZE;
    if rest > 0 && rest <= BLOCK_OVERHEAD {
        return None;
    }
    Some(cipher_len / CIPHER_BLOCK_SIZE * BLOCK_SIZE + rest.saturating_sub(BLOCK_OVERHEAD))
}

/// The blocks a plaintext byte range touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    /// First block touched.
    pub first: u64,
    /// Number of blocks touched (0 for an empty range).
    pub count: u64,
    /// Bytes into the first block where the range starts.
    pub skip: usize,
    /// The range leaves part of its first block untouched.
    pub partial_first: bool,
    /// The range leaves part of its last block untouched.
    pub partial_last: bool,
}

impl BlockRange {
    /// One past the last block touched.
    pub fn end(&self) -> u64 {
        self.first + self.count
    }

    /// The plaintext offset of the first block's start.
    pub fn plain_start(&self) -> u64 {
        block_start(self.first)
    }
}

/// The blocks that plaintext bytes `plain_off .. plain_off + len` touch.
pub fn blocks_for(plain_off: u64, len: u64) -> BlockRange {
    let first = block_index(plain_off);
    // Less than BLOCK_SIZE.
    let skip = (plain_off % BS) as usize;
    if len == 0 {
        return BlockRange {
            first,
            count: 0,
            skip,
            partial_first: false,
            partial_last: false,
        };
    }
    let end = plain_off.saturating_add(len);
    let count = end.div_ceil(BS) - first;
    let end_in_last = end % BS;
    let partial_last = end_in_last != 0 || (count == 1 && skip != 0);
    let partial_first = skip != 0 || (count == 1 && end_in_last != 0);
    BlockRange {
        first,
        count,
        skip,
        partial_first,
        partial_last,
    }
}

/// Where the cipher bytes of blocks `first .. first + count` of a file of
/// `plain_size` bytes lie in the backing file: `(offset, length)`. Blocks
/// past the end contribute nothing; the file's last block may be partial.
pub fn cipher_span(first: u64, count: u64, plain_size: u64) -> (u64, u64) {
    let start = block_offset_in_file(first);
    let end_block = first.saturating_add(count).min(block_count(plain_size));
    if end_block <= first {
        return (start, 0);
    }
    let end_plain = block_start(end_block).min(plain_size);
    (start, cipher_size(end_plain) - start)
}

/// How zeroing plaintext `off .. off + len` of a file of `plain_size`
/// bytes without changing its size (`fallocate` `PUNCH_HOLE`) is done:
/// whole blocks that are not the file's last become holes (their cipher
/// bytes are punched out: `holes`, a block range); the bytes around them,
/// and a covered last block (a hole cannot be final), are written as
/// encrypted zeros (`zero`, plaintext ranges `(start, end)`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PunchPlan {
    pub holes: Option<(u64, u64)>,
    pub zero: Vec<(u64, u64)>,
}

pub fn punch_plan(off: u64, len: u64, plain_size: u64) -> PunchPlan {
    let end = off.saturating_add(len).min(plain_size);
    if off >= end {
        return PunchPlan::default();
    }
    // Whole blocks inside the range, never the file's last.
    let first = off.div_ceil(BS);
    let last_block = block_count(plain_size) - 1;
    let past = (end / BS).min(last_block);
    if first >= past {
        return PunchPlan {
            holes: None,
            zero: vec![(off, end)],
        };
    }
    let mut zero = Vec::new();
    if off < block_start(first) {
        zero.push((off, block_start(first)));
    }
    if block_start(past) < end {
        zero.push((block_start(past), end));
    }
    PunchPlan {
        holes: Some((first, past)),
        zero,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_sizes_round_trip_and_reject_a_lone_header() {
        assert_eq!(cipher_size_v2(0), 540);
        assert_eq!(plain_size_v2(540), Ok(0));
        for c in [0, 1, 511, 512, 513, 539] {
            assert!(plain_size_v2(c).is_err(), "{c}");
        }
        // A full block followed by an empty piece is not a file.
        assert!(plain_size_v2(512 + 4124 + 28).is_err());
        let mut prev = None;
        for p in (0..3 * 4096 + 10).chain([1 << 20, (1 << 20) + 1]) {
            let c = cipher_size_v2(p);
            assert_eq!(plain_size_v2(c), Ok(p), "{p}");
            if p > 0 {
                assert_eq!(c, cipher_size(p));
            }
            if let Some(q) = prev {
                assert!(c > q, "monotonic at {p}");
            }
            prev = Some(c);
        }
    }

    #[test]
    fn punch_plans_cover_the_range_exactly_and_never_hole_the_last_block() {
        for &size in &[1u64, 4095, 4096, 4097, 8192, 3 * 4096 + 5, 10 * 4096] {
            for &off in &[0u64, 1, 4095, 4096, 4097, 8191, 8192, 20000] {
                for &len in &[0u64, 1, 4095, 4096, 4097, 8192, 12289, 1 << 20] {
                    let p = punch_plan(off, len, size);
                    let end = (off + len).min(size);
                    // The bytes zeroed, from both parts, in order.
                    let mut covered: Vec<(u64, u64)> = p.zero.clone();
                    if let Some((a, b)) = p.holes {
                        assert!(a < b, "{off} {len} {size}: empty hole range");
                        assert!(
                            b < block_count(size),
                            "{off} {len} {size}: last block holed"
                        );
                        covered.push((block_start(a), block_start(b)));
                    }
                    covered.sort();
                    let mut at = off;
                    for (a, b) in &covered {
                        assert_eq!(*a, at, "{off} {len} {size}: gap or overlap");
                        assert!(a < b);
                        at = *b;
                    }
                    if off < end {
                        assert_eq!(at, end, "{off} {len} {size}: range not covered");
                    } else {
                        assert!(covered.is_empty());
                    }
                    // Zeroed pieces are small: at most the edges.
                    assert!(p.zero.len() <= 2);
                    if p.holes.is_some() {
                        for (a, b) in &p.zero {
                            assert!(b - a <= BS, "{off} {len} {size}: zero piece too big");
                        }
                    }
                }
            }
        }
        assert_eq!(
            punch_plan(100, 3 * 4096, 10 * 4096),
            PunchPlan {
                holes: Some((1, 3)),
                zero: vec![(100, 4096), (3 * 4096, 3 * 4096 + 100)],
            }
        );
        assert_eq!(
            punch_plan(0, 1 << 20, 2 * 4096 + 1),
            PunchPlan {
                holes: Some((0, 2)),
                zero: vec![(2 * 4096, 2 * 4096 + 1)],
            }
        );
    }

    const EDGES: &[u64] = &[
        0,
        1,
        4095,
        4096,
        4097,
        8191,
        8192,
        8193,
        1 << 20,
        (1 << 20) + 1,
    ];

    #[test]
    fn constants_match_the_format_document() {
        assert_eq!(CIPHER_BLOCK_SIZE, 4124);
        assert_eq!(BLOCK_OVERHEAD, 28);
        assert_eq!(HEADER_SIZE, 512);
    }

    #[test]
    fn known_sizes() {
        assert_eq!(cipher_size(0), 0);
        assert_eq!(cipher_size(1), 512 + 1 + 28);
        assert_eq!(cipher_size(4095), 512 + 4095 + 28);
        assert_eq!(cipher_size(4096), 512 + 4124);
        assert_eq!(cipher_size(4097), 512 + 4124 + 1 + 28);
        assert_eq!(cipher_size(10 * 4096), 512 + 10 * 4124);
    }

    #[test]
    fn round_trips_at_edges_and_over_a_range() {
        for &p in EDGES {
            assert_eq!(plain_size(cipher_size(p)), Ok(p), "plain {p}");
        }
        for p in 0..3 * 4096 + 5 {
            assert_eq!(plain_size(cipher_size(p)), Ok(p), "plain {p}");
        }
        let big = u64::MAX / 2;
        assert_eq!(plain_size(cipher_size(big)), Ok(big));
    }

    #[test]
    fn cipher_size_is_strictly_monotonic() {
        let mut last = cipher_size(0);
        for p in 1..5 * 4096 {
            let c = cipher_size(p);
            assert!(c > last, "cipher_size({p}) = {c} not above {last}");
            last = c;
        }
    }

    #[test]
    fn every_cipher_size_is_either_valid_or_an_error() {
        // Over a range of backing sizes: valid ones map back exactly and
        // are strictly increasing; the rest are exactly the impossible ones.
        let mut last_plain = None;
        for c in 0..(512 + 3 * 4124 + 100) as u64 {
            match plain_size(c) {
                Ok(p) => {
                    assert_eq!(cipher_size(p), c, "cipher {c}");
                    if let Some(l) = last_plain {
                        assert!(p > l, "not monotonic at {c}");
                    }
                    last_plain = Some(p);
                }
                Err(FormatError::BadSize { cipher_size }) => {
                    assert_eq!(cipher_size, c);
                    let body = c.saturating_sub(512);
                    let impossible =
                        (1..=512).contains(&c) || (body % 4124 > 0 && body % 4124 <= 28);
                    assert!(impossible, "{c} rejected but valid");
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    #[test]
    fn impossible_sizes_are_errors() {
        for c in [
            1,
            100,
            511,
            512,
            513,
            512 + 28,
            512 + 4124 + 1,
            512 + 4124 + 28,
        ] {
            assert!(plain_size(c).is_err(), "{c} accepted");
        }
        assert_eq!(plain_size(512 + 29), Ok(1));
    }

    #[test]
    fn apparent_size_never_fails() {
        assert_eq!(apparent_size(0), 0);
        assert_eq!(apparent_size(300), 0);
        assert_eq!(apparent_size(512), 0);
        assert_eq!(apparent_size(512 + 4124 + 5), 4096);
        assert_eq!(apparent_size(cipher_size(9000)), 9000);
    }

    #[test]
    fn block_positions() {
        assert_eq!(block_index(0), 0);
        assert_eq!(block_index(4095), 0);
        assert_eq!(block_index(4096), 1);
        assert_eq!(block_offset_in_file(0), 512);
        assert_eq!(block_offset_in_file(3), 512 + 3 * 4124);
        assert_eq!(block_count(0), 0);
        assert_eq!(block_count(1), 1);
        assert_eq!(block_count(4096), 1);
        assert_eq!(block_count(4097), 2);
        assert_eq!(plain_block_len(0, 5000), 4096);
        assert_eq!(plain_block_len(1, 5000), 904);
        assert_eq!(plain_block_len(2, 5000), 0);
        for p in [1u64, 4095, 4096, 4097, 12288] {
            // The backing file ends where the last block ends.
            let last = block_count(p) - 1;
            let end = block_offset_in_file(last) + cipher_len(plain_block_len(last, p)) as u64;
            assert_eq!(end, cipher_size(p));
        }
    }

    #[test]
    fn run_lengths_round_trip() {
        for p in [0usize, 1, 4095, 4096, 4097, 8192, 100_000] {
            assert_eq!(plain_len(cipher_len(p)), Some(p));
        }
        assert_eq!(plain_len(28), None);
        assert_eq!(plain_len(4124 + 3), None);
        assert_eq!(cipher_len(4096 * 3), 4124 * 3);
    }

    #[test]
    fn ranges() {
        assert_eq!(
            blocks_for(0, 0),
            BlockRange {
                first: 0,
                count: 0,
                skip: 0,
                partial_first: false,
                partial_last: false
            }
        );
        let r = blocks_for(0, 4096);
        assert_eq!((r.first, r.count, r.skip), (0, 1, 0));
        assert!(!r.partial_first && !r.partial_last);
        let r = blocks_for(0, 1);
        assert_eq!((r.first, r.count), (0, 1));
        assert!(r.partial_first && r.partial_last);
        let r = blocks_for(4095, 2);
        assert_eq!((r.first, r.count, r.skip), (0, 2, 4095));
        assert!(r.partial_first && r.partial_last);
        let r = blocks_for(4096, 8192);
        assert_eq!((r.first, r.count, r.skip, r.end()), (1, 2, 0, 3));
        assert!(!r.partial_first && !r.partial_last);
        let r = blocks_for(100, 3996);
        assert_eq!((r.first, r.count, r.skip), (0, 1, 100));
        assert!(r.partial_first && r.partial_last);
        let r = blocks_for(4096, 4097);
        assert_eq!((r.first, r.count), (1, 2));
        assert!(!r.partial_first && r.partial_last);
        assert_eq!(r.plain_start(), 4096);
    }

    #[test]
    fn ranges_cover_exactly_the_bytes_asked_for() {
        for off in [0u64, 1, 4095, 4096, 4097, 10_000] {
            for len in [1u64, 2, 4095, 4096, 4097, 9000] {
                let r = blocks_for(off, len);
                assert!(block_start(r.first) <= off);
                assert!(block_start(r.first) + BS > off);
                assert!(block_start(r.end()) >= off + len);
                assert!(block_start(r.end() - 1) < off + len);
                assert_eq!(r.skip as u64, off - block_start(r.first));
            }
        }
    }

    #[test]
    fn cipher_spans() {
        assert_eq!(cipher_span(0, 1, 0), (512, 0));
        assert_eq!(cipher_span(0, 1, 10), (512, 38));
        assert_eq!(cipher_span(0, 2, 4096 + 10), (512, 4124 + 38));
        assert_eq!(cipher_span(1, 5, 4096 + 10), (512 + 4124, 38));
        assert_eq!(cipher_span(0, 3, 3 * 4096), (512, 3 * 4124));
        assert_eq!(cipher_span(3, 1, 3 * 4096), (512 + 3 * 4124, 0));
        for p in [1u64, 4096, 5000, 40_000] {
            let (off, len) = cipher_span(0, block_count(p), p);
            assert_eq!(off + len, cipher_size(p));
        }
    }
}
