//! `parse` is total: garbled, random and hostile headers give an error (or,
//! rarely, a value), never a panic; `verify` on whatever parses is total
//! too. Every error names one of the three exceptions and has a message.

mod common;

use common::{Request, Rng, captured};
use kmsd_sigv4::{
    INCOMPLETE_SIGNATURE, INVALID_SIGNATURE, MISSING_AUTHENTICATION_TOKEN, SigV4Error,
};

const PIECES: [&str; 24] = [
    "AWS4-HMAC-SHA256",
    "AWS4-",
    " ",
    "\t",
    ",",
    ", ",
    "=",
    "/",
    ";",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "AKIDEXAMPLE",
    "20261202",
    "eu-west-1",
    "kms",
    "aws4_request",
    "host",
    "x-amz-date",
    "content-type;host;x-amz-date;x-amz-target",
    "48bc4bf6452a7a8c13c9f036ec7e9a64332a61b811452e48a605573c1a76e180",
    "é",
    "\u{0}",
    "\u{7f}",
];

fn check_total(base: &Request, auth: &[u8], date: Option<&[u8]>, seen: &mut [usize; 4]) {
    let mut r = base.clone();
    r.set_header("authorization", auth);
    if let Some(d) = date {
        r.set_header("x-amz-date", d);
    }
    match r.parse() {
        Ok(parsed) => {
            seen[3] += 1;
            // Whatever parses, verify answers too (a wrong or right secret,
            // any clock).
            for now in [0, 1_796_178_924, u64::MAX] {
                let _ = r.with_parts(|p| kmsd_sigv4::verify(&parsed, p, b"secret", now));
            }
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let slot = match e.aws_exception_name() {
                MISSING_AUTHENTICATION_TOKEN => 0,
                INCOMPLETE_SIGNATURE => 1,
                INVALID_SIGNATURE => 2,
                other => panic!("{other}"),
            };
            seen[slot] += 1;
            // Messages echo at most a short piece of the input.
            assert!(e.to_string().len() < 400, "{e}");
        }
    }
}

#[test]
fn parse_never_panics() {
    let v = captured().remove(0);
    let good = v.request.header("authorization").unwrap().to_vec();
    let mut rng = Rng::new(0xBAD_5167);
    let mut seen = [0usize; 4];
    let bytes: Vec<u8> = (0..=255).collect();
    let printable: Vec<u8> = (0x20..0x7f).collect();

    for _ in 0..300 {
        // Random bytes, and random printable ASCII after "AWS4-".
        let len = rng.below(200);
        check_total(&v.request, &rng.bytes_from(&bytes, len), None, &mut seen);
        let len = rng.below(200);
        let tail = rng.bytes_from(&printable, len);
        check_total(
            &v.request,
            &[b"AWS4-".as_slice(), &tail].concat(),
            None,
            &mut seen,
        );

        // Strings assembled from the header's own pieces.
        let n = rng.below(16);
        let assembled: String = (0..n).map(|_| *rng.pick(&PIECES)).collect();
        check_total(&v.request, assembled.as_bytes(), None, &mut seen);

        // The real header with 1..4 bytes replaced, inserted or deleted.
        let mut m = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(m.len() + 1);
            let b = *rng.pick(b"=,;/ \tAaZz09-_\x00\xff\xc3");
            match rng.below(3) {
                0 if at < m.len() => m[at] = b,
                1 => m.insert(at, b),
                _ if at < m.len() => {
                    m.remove(at);
                }
                _ => m.push(b),
            }
        }
        check_total(&v.request, &m, None, &mut seen);

        // Truncated anywhere.
        let cut = rng.below(good.len() + 1);
        check_total(&v.request, &good[..cut], None, &mut seen);

        // A garbled X-Amz-Date with the real header.
        let len = rng.below(24);
        let date = rng.bytes_from(b"0123456789TZ -:+\xff", len);
        check_total(&v.request, &good, Some(&date), &mut seen);
    }
    // Huge inputs.
    for huge in [
        vec![b'A'; 1 << 20],
        [
            b"AWS4-HMAC-SHA256 Credential=".as_slice(),
            &vec![b'/'; 1 << 20],
        ]
        .concat(),
        [
            b"AWS4-HMAC-SHA256 Credential=A/20261202/eu-west-1/kms/aws4_request, SignedHeaders="
                .as_slice(),
            &b"a;".repeat(1 << 18),
        ]
        .concat(),
        [b"AWS4-HMAC-SHA256 ".as_slice(), &b",".repeat(1 << 20)].concat(),
    ] {
        check_total(&v.request, &huge, None, &mut seen);
    }
    // Every kind of answer came up.
    assert!(seen.iter().take(3).all(|&n| n > 0), "{seen:?}");
}

#[test]
fn garbled_headers_elsewhere_do_not_panic() {
    let v = captured().remove(0);
    let mut rng = Rng::new(42);
    let bytes: Vec<u8> = (0..=255).collect();
    for _ in 0..300 {
        let mut r = v.request.clone();
        for (name, value) in &mut r.headers {
            if !name.eq_ignore_ascii_case("authorization") && rng.chance(3) {
                let len = rng.below(30);
                *value = rng.bytes_from(&bytes, len);
            }
        }
        if rng.chance(2) {
            let len = rng.below(10);
            let name = rng.string_from("abcXYZ-_.~!é", len);
            let len = rng.below(10);
            let value = rng.bytes_from(&bytes, len);
            r.headers.push((name, value));
        }
        let len = rng.below(20);
        r.path = rng.string_from("/%.a~é ?#", len);
        let len = rng.below(20);
        r.query = rng.string_from("&=%2a+é", len);
        match r.parse() {
            Ok(parsed) => {
                let _ = r.with_parts(|p| kmsd_sigv4::verify(&parsed, p, &v.secret, v.now()));
            }
            Err(e) => assert_ne!(e, SigV4Error::MissingAuthorization),
        }
    }
}
