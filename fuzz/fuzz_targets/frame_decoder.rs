//! The frame decoder (kmsd_client::codec), both directions' frame types.
//! Asserts: a frame that decodes used exactly its announced length;
//! re-encoding the decoded message and decoding that gives the same bytes
//! again (encode∘decode is idempotent); no single allocation is larger
//! than a fixed multiple of the input, however large the lengths inside
//! the payload claim to be.
#![no_main]

use kms_fuzz::{peak, reset_peak};
use kmsd_client::codec::{self, ClientFrame, LEN_PREFIX, ServerFrame};
use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};

/// The decoder never sizes a buffer by a claimed length
/// (`kmsd_client::no_prealloc`; this target once found a 12-byte frame
/// claiming a 30,987-entry `Vec<String>` that allocated 743,688 bytes up
/// front). So the largest single allocation is a string or byte buffer
/// copied from the input (at most its length) or a container grown to
/// hold what was actually decoded: under twice the elements, each taking
/// at least one input byte, in memory at most 32 bytes per input byte (the
/// widest wire element against its shortest encoding).
const PER_INPUT_BYTE: usize = 2 * 32;
/// Fixed costs (error messages, small first allocations).
const SLACK: usize = 4096;

fn check<T: Serialize + DeserializeOwned>(data: &[u8]) {
    reset_peak();
    let decoded = codec::decode::<T>(data);
    let p = peak();
    assert!(
        p <= PER_INPUT_BYTE * data.len() + SLACK,
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
