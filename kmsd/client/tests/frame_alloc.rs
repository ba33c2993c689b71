//! The frame decoder allocates in proportion to the frame, however large
//! the lengths inside it claim to be. Measured with a counting allocator
//! (per thread, so tests running in parallel do not disturb each other).

use kmsd_client::codec::{self, ClientFrame, FrameError, LEN_PREFIX, MAX_FRAME};
use kmsd_client::{EncryptRequest, Request, SecretBytes};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counters are const-initialised thread-locals (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            l.set(l.get() + layout.size());
            let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
        });
        // SAFETY: the caller's layout, unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(layout.size())));
        // SAFETY: the caller's pointer and layout, unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most bytes live at once on this thread during `f`, above what was
/// live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

/// What decoding may allocate for a frame of `n` bytes: a small multiple
/// of it (the decoded message's own fields included) plus a constant.
fn bound(n: usize) -> usize {
    64 * n + 4096
}

/// The payload of an Encrypt request with every variable field empty; it
/// ends with the four zero lengths of key id, plaintext, encryption
/// context and grant tokens.
fn empty_encrypt() -> Vec<u8> {
    let frame = ClientFrame::Request {
        id: 0,
        request: Request::Encrypt(EncryptRequest {
            key_id: String::new(),
            plaintext: SecretBytes::from_slice(b""),
            encryption_context: Default::default(),
            grant_tokens: vec![],
        }),
    };
    let mut buf = Vec::new();
    codec::encode(&frame, &mut buf).unwrap();
    let payload = buf.split_off(LEN_PREFIX);
    assert!(payload.ends_with(&[0, 0, 0, 0]), "{payload:?}");
    payload
}

/// A frame like [`empty_encrypt`] whose field `from_end` (4: key id, 3:
/// plaintext, 2: context, 1: grant tokens) claims `claim` entries instead
/// of 0 (bincode's varint: 252, then a big-endian u32).
fn claiming(from_end: usize, claim: u32) -> Vec<u8> {
    let mut payload = empty_encrypt();
    let at = payload.len() - from_end;
    let mut tail = vec![252];
    tail.extend_from_slice(&claim.to_be_bytes());
    payload.splice(at..=at, tail);
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

#[test]
fn small_frames_claiming_huge_lengths_are_refused_without_large_allocations() {
    for (field, from_end, claim) in [
        ("grant tokens (a Vec<String>)", 1, 1_000_000),
        ("grant tokens (a Vec<String>)", 1, u32::MAX),
        ("encryption context (a map)", 2, 1_000_000),
        ("plaintext (bytes)", 3, (MAX_FRAME - 16) as u32),
        ("key id (a string)", 4, 1000),
        ("key id (a string)", 4, (MAX_FRAME - 16) as u32),
        ("key id (a string)", 4, u32::MAX),
    ] {
        let frame = claiming(from_end, claim);
        assert!(frame.len() <= 16, "{} bytes", frame.len());
        let (result, peak) = peak_during(|| codec::decode::<ClientFrame>(&frame).map(|_| ()));
        let err = result.unwrap_err();
        let FrameError::Malformed(m) = &err else {
            panic!("{field} claiming {claim}: {err:?}");
        };
        assert!(
            m.contains("short of the lengths it claims") || m.contains("byte frame limit"),
            "{field} claiming {claim}: {err}"
        );
        assert!(err.to_string().starts_with("malformed frame: "), "{err}");
        assert!(
            peak <= bound(frame.len()),
            "{field} claiming {claim}: a {}-byte frame allocated {peak} bytes",
            frame.len()
        );
    }
}

#[test]
fn a_frame_that_does_hold_its_lengths_still_decodes_in_proportion() {
    let tokens: Vec<String> = (0..2000).map(|i| format!("t{i}")).collect();
    let frame = ClientFrame::Request {
        id: 9,
        request: Request::Encrypt(EncryptRequest {
            key_id: "k".repeat(1000),
            plaintext: SecretBytes::from_slice(&vec![7u8; 100_000]),
            encryption_context: (0..64).map(|i| (format!("k{i}"), "v".into())).collect(),
            grant_tokens: tokens.clone(),
        }),
    };
    let mut buf = Vec::new();
    codec::encode(&frame, &mut buf).unwrap();
    let (decoded, peak) = peak_during(|| codec::decode::<ClientFrame>(&buf).unwrap().unwrap());
    let (msg, used) = decoded;
    assert_eq!(used, buf.len());
    let ClientFrame::Request {
        id: 9,
        request: Request::Encrypt(e),
    } = msg
    else {
        panic!("wrong frame");
    };
    assert_eq!(e.key_id.len(), 1000);
    assert_eq!(e.plaintext.expose(), &vec![7u8; 100_000][..]);
    assert_eq!(e.encryption_context.len(), 64);
    assert_eq!(e.grant_tokens, tokens);
    assert!(
        peak <= bound(buf.len()),
        "{} bytes allocated {peak}",
        buf.len()
    );
}
