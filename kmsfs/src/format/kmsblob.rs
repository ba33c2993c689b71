//! The plaintext prefix of a kmsd ciphertext blob: the KMS key and key
//! version it is under, read without any key or kmsd call (docs/WIRE.md
//! "Ciphertext blob"; docs/FORMAT.md "A blob's key and version, without a
//! key"). Not authenticated until kmsd decrypts the blob.

use uuid::Uuid;

/// The blob version kmsd writes.
pub const KMSD_BLOB_VERSION: u8 = 1;
/// version (1) ‖ key id (16) ‖ key version (4).
pub const KMSD_BLOB_PREFIX: usize = 21;
/// The shortest kmsd blob: prefix, nonce (12), at least one byte, tag (16).
pub const KMSD_BLOB_MIN: usize = KMSD_BLOB_PREFIX + 12 + 1 + 16;

/// The key a kmsd blob names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobKey {
    /// The KMS key's UUID (the last part of its ARN).
    pub key_id: Uuid,
    /// 1 = the key's first material; each rotation adds one.
    pub version: u32,
}

impl BlobKey {
    /// The key and version `blob` names, or `None` when it is not a kmsd
    /// blob (too short, another version: AWS KMS's blobs are opaque).
    pub fn of(blob: &[u8]) -> Option<BlobKey> {
        if blob.len() < KMSD_BLOB_MIN || blob[0] != KMSD_BLOB_VERSION {
            return None;
        }
        let id: [u8; 16] = blob[1..17].try_into().ok()?;
        let v: [u8; 4] = blob[17..21].try_into().ok()?;
        Some(BlobKey {
            key_id: Uuid::from_bytes(id),
            version: u32::from_be_bytes(v),
        })
    }

    /// Whether this blob is under the key of `arn` (`...:key/<uuid>`).
    pub fn is_under(&self, arn: &str) -> bool {
        key_uuid(arn) == Some(self.key_id)
    }
}

/// The UUID of a key ARN (`arn:aws:kms:<region>:<account>:key/<uuid>`).
pub fn key_uuid(arn: &str) -> Option<Uuid> {
    let (_, id) = arn.rsplit_once(":key/")?;
    Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_prefix_kmsd_writes() {
        // docs/WIRE.md: 0x01 ‖ key id ‖ u32 version ‖ nonce ‖ ct ‖ tag.
        let id = Uuid::parse_str("0b6b2a3e-1111-4222-8333-444455556666").unwrap();
        let mut blob = vec![1u8];
        blob.extend_from_slice(id.as_bytes());
        blob.extend_from_slice(&3u32.to_be_bytes());
        blob.extend_from_slice(&[7; 12 + 32 + 16]);
        let k = BlobKey::of(&blob).unwrap();
        assert_eq!(k.key_id, id);
        assert_eq!(k.version, 3);
        assert!(
            k.is_under("arn:aws:kms:local:000000000000:key/0b6b2a3e-1111-4222-8333-444455556666")
        );
        assert!(
            !k.is_under("arn:aws:kms:local:000000000000:key/0b6b2a3e-1111-4222-8333-444455556667")
        );
        assert!(!k.is_under("arn:aws:kms:local:000000000000:alias/x"));
        // Not kmsd's: another version, too short.
        blob[0] = 2;
        assert_eq!(BlobKey::of(&blob), None);
        blob[0] = 1;
        assert!(BlobKey::of(&blob[..KMSD_BLOB_MIN]).is_some());
        assert_eq!(BlobKey::of(&blob[..KMSD_BLOB_MIN - 1]), None);
        assert_eq!(BlobKey::of(&[]), None);
    }
}
