//! The kmsfs block codec (kmsfs/src/format/block.rs). Asserts: decrypting
//! arbitrary cipher bytes never panics and fails or yields zeros only for
//! holes; encrypting any plaintext run and decrypting it round-trips; one
//! flipped bit, another block number, another file, or the final mark
//! changed makes decryption fail.
#![no_main]

use kms_fuzz::Input;
use kmsfs::format::{
    BLOCK_SIZE, BlockErrorKind, CIPHER_BLOCK_SIZE, DataKey, FileCipher, FileId, cipher_len,
    plain_len,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ciphers() -> &'static (FileCipher, FileCipher) {
    static C: OnceLock<(FileCipher, FileCipher)> = OnceLock::new();
    C.get_or_init(|| {
        let key = DataKey::from_slice(&[3; 32]).unwrap();
        (
            FileCipher::new(&key, FileId::from_bytes([1; 16]).unwrap()),
            FileCipher::new(&key, FileId::from_bytes([2; 16]).unwrap()),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (fc, other) = ciphers();
    let mut input = Input(data);
    let flags = input.u8();
    let ends_file = flags & 1 != 0;
    // Block numbers of files up to 2^63 bytes.
    let first = input.u64() >> 12;
    let flip = input.u64() as usize;
    let body = input.rest();

    // Arbitrary bytes as cipher text.
    if let Some(n) = plain_len(body.len()) {
        let mut out = vec![0xAAu8; n];
        match fc.decrypt_blocks(first, body, &mut out, ends_file) {
            Ok(()) => assert!(
                body.chunks(CIPHER_BLOCK_SIZE)
                    .all(|c| c.iter().all(|b| *b == 0)),
                "random bytes authenticated"
            ),
            Err(e) => assert_ne!(e.kind, BlockErrorKind::Length),
        }
    } else {
        let mut out = vec![0u8; body.len()];
        assert!(fc.decrypt_blocks(first, body, &mut out, ends_file).is_err());
    }

    // Round trip.
    let plain = if ends_file {
        body
    } else {
        &body[..body.len() / BLOCK_SIZE * BLOCK_SIZE]
    };
    let mut sealed = vec![0u8; cipher_len(plain.len())];
    fc.encrypt_blocks(first, plain, &mut sealed, ends_file)
        .expect("encrypts");
    let mut back = vec![0u8; plain.len()];
    fc.decrypt_blocks(first, &sealed, &mut back, ends_file)
        .expect("own blocks decrypt");
    assert_eq!(back, plain);
    if plain.is_empty() {
        return;
    }
    // A wrong length is refused.
    let mut short = vec![0u8; plain.len() - 1];
    assert!(
        fc.decrypt_blocks(first, &sealed, &mut short, ends_file)
            .is_err()
    );
    // Tampering of every kind is caught.
    let mut bad = sealed.clone();
    let n = bad.len();
    bad[flip % n] ^= 1 << (flip / n % 8);
    assert!(
        fc.decrypt_blocks(first, &bad, &mut back, ends_file)
            .is_err(),
        "bit flip"
    );
    assert!(
        fc.decrypt_blocks(first + 1, &sealed, &mut back, ends_file)
            .is_err(),
        "block moved"
    );
    assert!(
        other
            .decrypt_blocks(first, &sealed, &mut back, ends_file)
            .is_err(),
        "file swapped"
    );
    if plain.len() % BLOCK_SIZE == 0 {
        assert!(
            fc.decrypt_blocks(first, &sealed, &mut back, !ends_file)
                .is_err(),
            "final mark ignored"
        );
    }
});
