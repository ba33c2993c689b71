//! The kmsfs file header (kmsfs/src/format/header.rs). Asserts: a header
//! that parses re-encodes to the same bytes except the MAC, and the
//! re-encoded bytes parse to the same header and verify; the fuzzed bytes
//! themselves do not verify (their MAC is not ours) unless they are
//! exactly the encoding.
#![no_main]

use kmsfs::format::{DataKey, FormatError, HEADER_SIZE, Header, VolumeId};
use libfuzzer_sys::fuzz_target;

const MAC_OFF: usize = HEADER_SIZE - 32;

fn check(bytes: &[u8]) {
    let Ok(h) = Header::parse(bytes) else {
        return;
    };
    assert_eq!(bytes.len(), HEADER_SIZE);
    assert!(!h.wrapped_key.is_empty());
    let key = DataKey::from_slice(&[7; 32]).unwrap();
    let vol = VolumeId::from_bytes([9; 16]).unwrap();
    let enc = h.encode(&key, &vol).expect("a parsed header re-encodes");
    assert_eq!(enc[..MAC_OFF], bytes[..MAC_OFF], "encode changed a field");
    assert_eq!(Header::parse(&enc).as_ref(), Ok(&h));
    h.verify(&enc, &key, &vol).expect("own header verifies");
    if enc != bytes {
        assert!(matches!(
            h.verify(bytes, &key, &vol),
            Err(FormatError::HeaderAuth)
        ));
    }
    // The MAC binds the volume.
    let other = VolumeId::from_bytes([8; 16]).unwrap();
    assert!(h.verify(&enc, &key, &other).is_err());
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most inputs are not 512 bytes: also try them padded into a header
    // with the right magic and version.
    let mut b = vec![0u8; HEADER_SIZE];
    b[..4].copy_from_slice(b"KMFS");
    b[4..6].copy_from_slice(&1u16.to_be_bytes());
    let n = data.len().min(HEADER_SIZE - 6);
    b[6..6 + n].copy_from_slice(&data[..n]);
    check(&b);
});
