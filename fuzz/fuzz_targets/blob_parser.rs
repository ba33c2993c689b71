//! The ciphertext blob parser (kmsd/src/crypto/blob.rs). Asserts: a parsed
//! header names exactly the bytes it came from; a random blob never opens
//! under a key; sealing then opening round-trips the plaintext for any
//! plaintext and context; any one flipped byte of a sealed blob, or a
//! different context, makes it fail to open.
#![no_main]

use kms_fuzz::Input;
use kmsd::crypto::aead::{KeyBytes, KeyCipher};
use kmsd::crypto::blob::{self, BlobError, BlobHeader, HEADER_SIZE, OVERHEAD};
use kmsd_client::EncryptionContext;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn cipher() -> &'static KeyCipher {
    static C: OnceLock<KeyCipher> = OnceLock::new();
    C.get_or_init(|| KeyCipher::new(&KeyBytes::from_slice(&[0x42; 32]).unwrap()))
}

fuzz_target!(|data: &[u8]| {
    match blob::parse_header(data) {
        Ok(h) => {
            assert!(data.len() > OVERHEAD);
            assert_eq!(data[0], blob::BLOB_VERSION);
            assert_eq!(h.key_id.as_bytes(), &data[1..17]);
            assert_eq!(h.key_version.to_be_bytes(), data[17..21]);
            // Not sealed by us: a forgery would need the key.
            assert!(blob::open(cipher(), data, &EncryptionContext::new()).is_err());
        }
        Err(BlobError::TooShort) => assert!(data.len() <= OVERHEAD),
        Err(BlobError::UnknownVersion(v)) => assert_eq!(v, data[0]),
    }
    // open must refuse, not panic, on anything.
    let _ = blob::open(cipher(), data, &EncryptionContext::new());

    let mut input = Input(data);
    let mut ctx = EncryptionContext::new();
    for _ in 0..(input.u8() % 4) {
        ctx.insert(input.string(16), input.string(16));
    }
    let flip = input.u64() as usize;
    let header = BlobHeader {
        key_id: uuid_from(input.bytes(16)),
        key_version: input.u64() as u32,
    };
    let plain = input.rest();
    let sealed = blob::seal(cipher(), header, &ctx, plain);
    assert_eq!(sealed.len(), OVERHEAD + plain.len());
    if plain.is_empty() {
        // Encrypt refuses empty plaintext, and the parser refuses the blob.
        assert_eq!(blob::parse_header(&sealed), Err(BlobError::TooShort));
        return;
    }
    assert_eq!(blob::parse_header(&sealed), Ok(header));
    let opened = blob::open(cipher(), &sealed, &ctx).expect("own blob opens");
    assert_eq!(opened.expose(), plain);
    let mut bad = sealed.clone();
    let n = sealed.len();
    bad[flip % n] ^= 1 << (flip / n % 8);
    assert!(
        blob::open(cipher(), &bad, &ctx).is_err(),
        "a flipped byte opened"
    );
    let mut other = ctx.clone();
    if other.insert("x-fuzz-extra".into(), "1".into()).as_deref() != Some("1") {
        assert!(
            blob::open(cipher(), &sealed, &other).is_err(),
            "another context opened"
        );
    }
    let _ = HEADER_SIZE;
});

fn uuid_from(b: &[u8]) -> uuid::Uuid {
    let mut id = [0u8; 16];
    id[..b.len()].copy_from_slice(b);
    uuid::Uuid::from_bytes(id)
}
