//! The file header: 512 bytes in front of block 0 (docs/FORMAT.md,
//! "Header"). Parsing checks structure; [`Header::verify`] checks the MAC
//! once the data key is unwrapped.

use super::kdf::{DataKey, HEADER_MAC_LABEL, MAC_SIZE};
use super::{FileId, FormatError, HEADER_SIZE, VolumeId};

/// The first four bytes of every header.
pub const HEADER_MAGIC: [u8; 4] = *b"KMFS";
/// The header version of format version 1 volumes.
pub const HEADER_VERSION: u16 = 1;
/// The header version of format version 2 volumes: the same layout; the
/// volume's format decides which one every header must have.
pub const HEADER_VERSION_2: u16 = 2;
/// Room for the kmsd ciphertext blob of the data key.
pub const WRAPPED_KEY_MAX: usize = HEADER_SIZE - WRAPPED_OFF - MAC_SIZE;

const VERSION_OFF: usize = 4;
const WRAPPED_LEN_OFF: usize = 6;
const FILE_ID_OFF: usize = 8;
const WRAPPED_OFF: usize = 24;
const MAC_OFF: usize = HEADER_SIZE - MAC_SIZE;

/// A parsed header: the file id and the wrapped data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub file_id: FileId,
    /// The kmsd ciphertext blob of the file's data key.
    pub wrapped_key: Vec<u8>,
}

impl Header {
    /// The header's exact bytes, with its MAC under `key` binding every
    /// field and `volume_id`. Fails only if the wrapped key does not fit.
    pub fn encode(&self, key: &DataKey, volume_id: &VolumeId) -> Result<Vec<u8>, FormatError> {
        self.encode_version(HEADER_VERSION, key, volume_id)
    }

    /// [`Header::encode`] with header version `version` (a volume's).
    pub fn encode_version(
        &self,
        version: u16,
        key: &DataKey,
        volume_id: &VolumeId,
    ) -> Result<Vec<u8>, FormatError> {
        let len = self.wrapped_key.len();
        if len == 0 || len > WRAPPED_KEY_MAX {
            return Err(FormatError::WrappedKeyTooLong { len });
        }
        let mut b = vec![0u8; HEADER_SIZE];
        b[..4].copy_from_slice(&HEADER_MAGIC);
        b[VERSION_OFF..VERSION_OFF + 2].copy_from_slice(&version.to_be_bytes());
        // len <= WRAPPED_KEY_MAX < 65536.
        b[WRAPPED_LEN_OFF..WRAPPED_LEN_OFF + 2].copy_from_slice(&(len as u16).to_be_bytes());
        b[FILE_ID_OFF..FILE_ID_OFF + 16].copy_from_slice(&self.file_id.0);
        b[WRAPPED_OFF..WRAPPED_OFF + len].copy_from_slice(&self.wrapped_key);
        let mac = key.mac(HEADER_MAC_LABEL, &mac_parts(version, &b, volume_id));
        b[MAC_OFF..].copy_from_slice(&mac);
        Ok(b)
    }

    /// Checks structure only: length, magic, version, lengths, a non-zero
    /// file id and zero padding.
    pub fn parse(bytes: &[u8]) -> Result<Header, FormatError> {
        Header::parse_version(bytes, HEADER_VERSION)
    }

    /// [`Header::parse`] of a header that must have version `expected`.
    pub fn parse_version(bytes: &[u8], expected: u16) -> Result<Header, FormatError> {
        let bad = |m: String| Err(FormatError::BadHeader(m));
        if bytes.len() != HEADER_SIZE {
            return bad(format!("{} bytes, expected {HEADER_SIZE}", bytes.len()));
        }
        if bytes[..4] != HEADER_MAGIC {
            return bad("wrong magic (not a kmsfs file)".into());
        }
        let version = u16::from_be_bytes([bytes[VERSION_OFF], bytes[VERSION_OFF + 1]]);
        if version != expected {
            return bad(format!(
                "version {version}, this volume's headers are version {expected}"
            ));
        }
        let len = usize::from(u16::from_be_bytes([
            bytes[WRAPPED_LEN_OFF],
            bytes[WRAPPED_LEN_OFF + 1],
        ]));
        if len == 0 || len > WRAPPED_KEY_MAX {
            return bad(format!("wrapped key length {len} out of range"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[FILE_ID_OFF..FILE_ID_OFF + 16]);
        let Some(file_id) = FileId::from_bytes(id) else {
            return bad("all-zero file id".into());
        };
        let wrapped = &bytes[WRAPPED_OFF..WRAPPED_OFF + len];
        if bytes[WRAPPED_OFF + len..MAC_OFF].iter().any(|b| *b != 0) {
            return bad("non-zero padding after the wrapped key".into());
        }
        Ok(Header {
            file_id,
            wrapped_key: wrapped.to_vec(),
        })
    }

    /// Checks the MAC of `bytes` (the header this was parsed from) under
    /// `key` and `volume_id`, and that `bytes` really is this header.
    pub fn verify(
        &self,
        bytes: &[u8],
        key: &DataKey,
        volume_id: &VolumeId,
    ) -> Result<(), FormatError> {
        self.verify_version(HEADER_VERSION, bytes, key, volume_id)
    }

    /// [`Header::verify`] of a header that must have version `expected`.
    pub fn verify_version(
        &self,
        expected: u16,
        bytes: &[u8],
        key: &DataKey,
        volume_id: &VolumeId,
    ) -> Result<(), FormatError> {
        if Header::parse_version(bytes, expected).as_ref() != Ok(self) {
            return Err(FormatError::BadHeader(
                "header bytes do not match the parsed header".into(),
            ));
        }
        if key.verify_mac(
            HEADER_MAC_LABEL,
            &mac_parts(expected, bytes, volume_id),
            &bytes[MAC_OFF..],
        ) {
            Ok(())
        } else {
            Err(FormatError::HeaderAuth)
        }
    }
}

/// A version 2 header with its wrapped key replaced by `wrapped` (what
/// `kmsfs rewrap` writes): everything else, the MAC included, stays; the
/// MAC does not cover the blob, so no data key is needed.
pub fn rewrapped(bytes: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, FormatError> {
    Header::parse_version(bytes, HEADER_VERSION_2)?;
    let len = wrapped.len();
    if len == 0 || len > WRAPPED_KEY_MAX {
        return Err(FormatError::WrappedKeyTooLong { len });
    }
    let mut b = bytes.to_vec();
    b[WRAPPED_LEN_OFF..WRAPPED_LEN_OFF + 2].copy_from_slice(&(len as u16).to_be_bytes());
    b[WRAPPED_OFF..MAC_OFF].fill(0);
    b[WRAPPED_OFF..WRAPPED_OFF + len].copy_from_slice(wrapped);
    Ok(b)
}

/// What the header MAC covers. Version 1: the whole header before the MAC
/// and the volume id. Version 2: magic and version, the file id and the
/// volume id, not the wrapped key: kmsd authenticates that blob itself
/// (its encryption context names the volume and the file), and `kmsfs
/// rewrap` replaces it through kmsd's ReEncrypt, which never hands out the
/// data key a MAC over the blob would need.
fn mac_parts<'a>(version: u16, b: &'a [u8], volume_id: &'a VolumeId) -> [&'a [u8]; 3] {
    if version == HEADER_VERSION {
        [&b[..MAC_OFF], &volume_id.0, &[]]
    } else {
        [
            &b[..VERSION_OFF + 2],
            &b[FILE_ID_OFF..FILE_ID_OFF + 16],
            &volume_id.0,
        ]
    }
}

/// Byte ranges of the header fields, for tests that flip bits in each.
#[cfg(test)]
pub(crate) const FIELDS: &[(&str, std::ops::Range<usize>)] = &[
    ("magic", 0..4),
    ("version", VERSION_OFF..VERSION_OFF + 2),
    ("wrapped_len", WRAPPED_LEN_OFF..WRAPPED_LEN_OFF + 2),
    ("file_id", FILE_ID_OFF..FILE_ID_OFF + 16),
    ("wrapped_key", WRAPPED_OFF..WRAPPED_OFF + 8),
    (
        "padding",
        HEADER_SIZE - MAC_SIZE - 8..HEADER_SIZE - MAC_SIZE,
    ),
    ("mac", MAC_OFF..HEADER_SIZE),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, DataKey, VolumeId) {
        let h = Header {
            file_id: FileId([0x11; 16]),
            wrapped_key: (1..=100).collect(),
        };
        (
            h,
            DataKey::from_slice(&[5; 32]).unwrap(),
            VolumeId([0x22; 16]),
        )
    }

    #[test]
    fn layout_constants() {
        assert_eq!(WRAPPED_KEY_MAX, 456);
        assert_eq!(MAC_OFF, 480);
    }

    #[test]
    fn round_trip_and_verify() {
        let (h, k, v) = sample();
        let b = h.encode(&k, &v).unwrap();
        assert_eq!(b.len(), HEADER_SIZE);
        assert_eq!(&b[..4], b"KMFS");
        let p = Header::parse(&b).unwrap();
        assert_eq!(p, h);
        p.verify(&b, &k, &v).unwrap();
    }

    #[test]
    fn wrong_key_or_volume_fails_verification() {
        let (h, k, v) = sample();
        let b = h.encode(&k, &v).unwrap();
        let other = DataKey::from_slice(&[6; 32]).unwrap();
        assert_eq!(h.verify(&b, &other, &v), Err(FormatError::HeaderAuth));
        assert_eq!(
            h.verify(&b, &k, &VolumeId([0x23; 16])),
            Err(FormatError::HeaderAuth)
        );
    }

    #[test]
    fn every_field_is_protected() {
        let (h, k, v) = sample();
        let good = h.encode(&k, &v).unwrap();
        for (name, range) in FIELDS {
            for i in range.clone() {
                for bit in [0x01u8, 0x80] {
                    let mut b = good.clone();
                    b[i] ^= bit;
                    let ok = Header::parse(&b).and_then(|p| p.verify(&b, &k, &v));
                    assert!(ok.is_err(), "flip in {name} byte {i} not detected");
                }
            }
        }
    }

    #[test]
    fn v2_mac_binds_magic_version_file_and_volume_not_the_blob() {
        let (h, k, v) = sample();
        let good = h.encode_version(HEADER_VERSION_2, &k, &v).unwrap();
        let check = |b: &[u8]| {
            Header::parse_version(b, HEADER_VERSION_2)
                .and_then(|p| p.verify_version(HEADER_VERSION_2, b, &k, &v))
        };
        check(&good).unwrap();
        for (name, range) in FIELDS {
            if matches!(*name, "wrapped_len" | "wrapped_key") {
                continue;
            }
            for i in range.clone() {
                let mut b = good.clone();
                b[i] ^= 1;
                assert!(check(&b).is_err(), "flip in {name} byte {i} not detected");
            }
        }
        assert!(
            Header::parse_version(&good, HEADER_VERSION_2)
                .unwrap()
                .verify_version(HEADER_VERSION_2, &good, &k, &VolumeId([0x23; 16]))
                .is_err()
        );
        // Another blob (of another length) under the same MAC: what rewrap
        // writes. kmsd, not the MAC, decides whether the blob is this
        // file's key.
        let rewrapped = Header {
            wrapped_key: (1..=120).collect(),
            ..h.clone()
        };
        let mut b = rewrapped.encode_version(HEADER_VERSION_2, &k, &v).unwrap();
        assert_eq!(b[MAC_OFF..], good[MAC_OFF..]);
        check(&b).unwrap();
        let again = super::rewrapped(&good, &(1..=120).collect::<Vec<u8>>()).unwrap();
        assert_eq!(again, b);
        assert!(super::rewrapped(&h.encode(&k, &v).unwrap(), &[1]).is_err());
        // A version 1 MAC never verifies as version 2.
        let v1 = h.encode(&k, &v).unwrap();
        b.copy_from_slice(&v1);
        b[VERSION_OFF..VERSION_OFF + 2].copy_from_slice(&HEADER_VERSION_2.to_be_bytes());
        assert!(check(&b).is_err());
    }

    #[test]
    fn parse_rejects_bad_structure() {
        let (h, k, v) = sample();
        let good = h.encode(&k, &v).unwrap();
        assert!(Header::parse(&good[..511]).is_err());
        let mut longer = good.clone();
        longer.push(0);
        assert!(Header::parse(&longer).is_err());
        assert!(Header::parse(&[0u8; HEADER_SIZE]).is_err());

        let mut b = good.clone();
        b[FILE_ID_OFF..FILE_ID_OFF + 16].fill(0);
        let e = Header::parse(&b).unwrap_err();
        assert!(e.to_string().contains("all-zero file id"), "{e}");

        let mut b = good.clone();
        b[VERSION_OFF + 1] = 2;
        assert!(
            Header::parse(&b)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );

        let mut b = good.clone();
        b[WRAPPED_LEN_OFF..WRAPPED_LEN_OFF + 2].copy_from_slice(&0u16.to_be_bytes());
        assert!(Header::parse(&b).is_err());
        b[WRAPPED_LEN_OFF..WRAPPED_LEN_OFF + 2].copy_from_slice(&457u16.to_be_bytes());
        assert!(Header::parse(&b).is_err());

        let mut b = good;
        b[0] = b'X';
        assert!(Header::parse(&b).unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn wrapped_key_length_limits() {
        let k = DataKey::from_slice(&[5; 32]).unwrap();
        let v = VolumeId([1; 16]);
        let mut h = Header {
            file_id: FileId([1; 16]),
            wrapped_key: vec![7; WRAPPED_KEY_MAX],
        };
        let b = h.encode(&k, &v).unwrap();
        assert_eq!(Header::parse(&b).unwrap(), h);
        h.wrapped_key.push(7);
        assert_eq!(
            h.encode(&k, &v),
            Err(FormatError::WrappedKeyTooLong { len: 457 })
        );
        h.wrapped_key.clear();
        assert!(h.encode(&k, &v).is_err());
    }

    #[test]
    fn version_2_headers() {
        let (h, k, v) = sample();
        let b2 = h.encode_version(HEADER_VERSION_2, &k, &v).unwrap();
        assert_eq!(&b2[4..6], &[0, 2]);
        assert_eq!(Header::parse_version(&b2, HEADER_VERSION_2).unwrap(), h);
        h.verify_version(HEADER_VERSION_2, &b2, &k, &v).unwrap();
        // Neither version passes for the other.
        let b1 = h.encode(&k, &v).unwrap();
        assert!(Header::parse(&b2).is_err());
        assert!(Header::parse_version(&b1, HEADER_VERSION_2).is_err());
        assert!(h.verify_version(HEADER_VERSION_2, &b1, &k, &v).is_err());
        // The MAC covers the version: a v1 header relabelled as v2 fails.
        let mut relabelled = b1;
        relabelled[5] = 2;
        let p = Header::parse_version(&relabelled, HEADER_VERSION_2).unwrap();
        assert_eq!(
            p.verify_version(HEADER_VERSION_2, &relabelled, &k, &v),
            Err(FormatError::HeaderAuth)
        );
    }

    #[test]
    fn verify_refuses_bytes_of_another_header() {
        let (h, k, v) = sample();
        let b = h.encode(&k, &v).unwrap();
        let other = Header {
            file_id: FileId([0x12; 16]),
            ..h.clone()
        };
        assert!(other.verify(&b, &k, &v).is_err());
    }
}
