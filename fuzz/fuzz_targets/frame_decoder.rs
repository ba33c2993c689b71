//! The frame decoder (kmsd_client::codec), both directions' frame types.
//! Asserts: a frame that decodes used exactly its announced length;
//! re-encoding the decoded message and decoding that gives the same bytes
//! again (encode∘decode is idempotent); no single allocation exceeds the
//! frame cap however large the lengths inside the payload claim to be.
#![no_main]

use kms_fuzz::{peak, reset_peak};
use kmsd_client::codec::{self, ClientFrame, LEN_PREFIX, MAX_FRAME, ServerFrame};
use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};

/// bincode pre-sizes a container from its claimed length, checked against
/// the byte limit one byte per element, so a 12-byte frame claiming a
/// 30,987-entry `Vec<String>` allocates 30,987 × 24 bytes up front (found
/// by this target). The bound that holds is the frame cap times the
/// largest element size on the wire types (24: `String`, `Vec<u8>`), plus
/// doubling slack. Tightening it means a decoder that does not trust
/// claimed lengths (open: see the issue note).
const ALLOC_CAP: usize = 2 * 24 * MAX_FRAME + 4096;

fn check<T: Serialize + DeserializeOwned>(data: &[u8]) {
    reset_peak();
    let decoded = codec::decode::<T>(data);
    let p = peak();
    assert!(
        p <= ALLOC_CAP.max(2 * data.len()),
        "decode allocated {p} bytes for {} input bytes",
        data.len()
    );
    let Ok(Some((msg, used))) = decoded else {
        return;
    };
    let announced = codec::peek_len(data).unwrap().unwrap();
    assert_eq!(used, LEN_PREFIX + announced);
    let mut once = Vec::new();
    codec::encode(&msg, &mut once).expect("a decoded message re-encodes");
    let (again, used2) = codec::decode::<T>(&once)
        .expect("a re-encoded frame decodes")
        .expect("a re-encoded frame is complete");
    assert_eq!(used2, once.len());
    let mut twice = Vec::new();
    codec::encode(&again, &mut twice).expect("re-encodes");
    assert_eq!(once, twice, "encode(decode(encode(m))) != encode(m)");
}

fuzz_target!(|data: &[u8]| {
    // Fuzz inputs are mostly payloads: give them a correct prefix too.
    check::<ClientFrame>(data);
    check::<ServerFrame>(data);
    let mut framed = Vec::with_capacity(data.len() + LEN_PREFIX);
    framed.extend_from_slice(&(data.len() as u32).to_be_bytes());
    framed.extend_from_slice(data);
    check::<ClientFrame>(&framed);
    check::<ServerFrame>(&framed);
});
