//! The hash chain: every record names the SHA-256 of the exact bytes of the
//! line before it (without its newline). The first record ever names
//! [`LineHash::GENESIS`] (32 zero bytes).

use sha2::{Digest, Sha256};
use std::fmt;

/// SHA-256 of one log line, newline excluded. Public data: shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineHash(pub [u8; 32]);

impl LineHash {
    /// What the first record of a log chains to.
    pub const GENESIS: LineHash = LineHash([0; 32]);

    /// Hashes `line`, which must not include the trailing `\n`.
    pub fn of_line(line: &[u8]) -> LineHash {
        LineHash(Sha256::digest(line).into())
    }

    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// Parses 64 lowercase or uppercase hex digits.
    pub fn from_hex(s: &str) -> Option<LineHash> {
        hex_decode_32(s).map(LineHash)
    }
}

impl fmt::Debug for LineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LineHash({})", self.to_hex())
    }
}

impl fmt::Display for LineHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

pub(crate) fn hex_decode_32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_abc() {
        assert_eq!(
            LineHash::of_line(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            LineHash::of_line(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = LineHash::of_line(b"x");
        assert_eq!(LineHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(
            LineHash::from_hex(&h.to_hex().to_uppercase()),
            Some(h),
            "uppercase accepted"
        );
        assert_eq!(LineHash::from_hex(""), None);
        assert_eq!(LineHash::from_hex(&"0".repeat(63)), None);
        assert_eq!(LineHash::from_hex(&"g".repeat(64)), None);
        assert_eq!(LineHash::from_hex(&"0".repeat(64)), Some(LineHash::GENESIS));
    }
}
