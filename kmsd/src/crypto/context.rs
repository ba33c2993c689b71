//! The canonical form of an encryption context, bound as associated data.
//!
//! ```text
//! u32 BE  number of pairs
//! per pair, sorted by key bytes:
//!   u32 BE  key length  | key bytes (UTF-8)
//!   u32 BE  value length | value bytes (UTF-8)
//! ```
//! Length prefixes make the encoding injective: `{"ab":"c"}` and
//! `{"a":"bc"}` differ. An empty context encodes as four zero bytes.

use kmsd_client::EncryptionContext;

pub fn canonical(ctx: &EncryptionContext) -> Vec<u8> {
    let size = 4 + ctx
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    canonical_into(ctx, &mut out);
    out
}

/// Appends the canonical form to `out`. `BTreeMap<String, _>` iterates in
/// byte order of the keys, which is the order the format requires.
pub fn canonical_into(ctx: &EncryptionContext, out: &mut Vec<u8>) {
    out.extend_from_slice(&(ctx.len() as u32).to_be_bytes());
    for (k, v) in ctx {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn known_encoding() {
        assert_eq!(canonical(&ctx(&[])), vec![0, 0, 0, 0]);
        assert_eq!(
            canonical(&ctx(&[("b", "2"), ("a", "1")])),
            vec![
                0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'1', 0, 0, 0, 1, b'b', 0, 0, 0, 1, b'2'
            ]
        );
    }

    #[test]
    fn no_collisions_between_splits() {
        assert_ne!(
            canonical(&ctx(&[("ab", "c")])),
            canonical(&ctx(&[("a", "bc")]))
        );
        assert_ne!(canonical(&ctx(&[("a", "")])), canonical(&ctx(&[])));
        assert_ne!(
            canonical(&ctx(&[("a", "b"), ("c", "d")])),
            canonical(&ctx(&[("a", "bcd")]))
        );
    }

    #[test]
    fn order_is_by_key_bytes() {
        // 'Z' (0x5a) sorts before 'a' (0x61).
        let c = canonical(&ctx(&[("a", ""), ("Z", "")]));
        assert_eq!(c[8], b'Z');
    }
}
