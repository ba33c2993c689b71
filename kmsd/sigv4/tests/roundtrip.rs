//! `sign` reproduces real clients' Authorization headers byte for byte, and
//! sign → verify round-trips over random requests (a small property test
//! with a fixed-seed PRNG: no extra dependency, reproducible failures).

mod common;

use common::{Request, Rng, all_vectors};
use kmsd_sigv4::{
    KMS_RULES, RequestParts, Rules, SigV4Error, SignError, SigningParams, format_amz_date, parse,
    sign, verify,
};

#[test]
fn sign_reproduces_the_vectors() {
    for v in all_vectors() {
        let parsed = v.request.parse().unwrap();
        let names: Vec<&str> = parsed.signed_headers().iter().map(String::as_str).collect();
        let params = SigningParams {
            access_key_id: parsed.access_key_id(),
            region: parsed.region(),
            service: parsed.service(),
            signed_headers: Some(&names),
        };
        let auth = v
            .request
            .with_parts(|r| sign(r, &params, &v.secret))
            .unwrap();
        assert_eq!(auth, v.request.header_str("authorization"), "{}", v.name);
    }
}

/// AWS's SigV4 test suite, `get-vanilla`.
#[test]
fn sign_reproduces_aws_get_vanilla() {
    let headers: [(&str, &[u8]); 2] = [
        ("Host", b"example.amazonaws.com"),
        ("X-Amz-Date", b"20150830T123600Z"),
    ];
    let req = RequestParts {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let params = SigningParams {
        access_key_id: "AKIDEXAMPLE",
        region: "us-east-1",
        service: "service",
        signed_headers: None,
    };
    assert_eq!(
        sign(&req, &params, b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap(),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn sign_refuses_what_parse_would_refuse() {
    let mut headers: Vec<(&str, &[u8])> = vec![("Host", b"h"), ("X-Amz-Date", b"20261202T023524Z")];
    let req = |headers: &[(&str, &[u8])]| {
        let params = SigningParams {
            access_key_id: "AKID",
            region: "eu-west-1",
            service: "kms",
            signed_headers: None,
        };
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers,
            body: b"{}",
        };
        sign(&parts, &params, b"secret")
    };
    assert!(req(&headers).is_ok());
    headers[1].1 = b"2026-12-02";
    assert!(matches!(
        req(&headers),
        Err(SignError(SigV4Error::MalformedDate { .. }))
    ));
    headers.pop();
    assert_eq!(req(&headers), Err(SignError(SigV4Error::MissingDate)));
    let headers: Vec<(&str, &[u8])> = vec![("X-Amz-Date", b"20261202T023524Z")];
    assert_eq!(
        req(&headers),
        Err(SignError(SigV4Error::HeaderNotSigned {
            name: "host".into()
        }))
    );
    // A bad scope part.
    let headers: Vec<(&str, &[u8])> = vec![("Host", b"h"), ("X-Amz-Date", b"20261202T023524Z")];
    let parts = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    for (akid, region) in [
        ("AK/ID", "eu-west-1"),
        ("AKID", "eu west"),
        ("", "eu-west-1"),
    ] {
        let params = SigningParams {
            access_key_id: akid,
            region,
            service: "kms",
            signed_headers: None,
        };
        assert!(sign(&parts, &params, b"s").is_err(), "{akid} {region}");
    }
}

const NAMES: [&str; 12] = [
    "Content-Type",
    "X-Amz-Target",
    "User-Agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "X-Amz-Security-Token",
    "x-amz-user-agent",
    "Accept-Encoding",
    "Content-Length",
    "X-Multi",
    "X-Custom",
    "x-amz-meta-A_b.c~d!e#f$g%h&i'j*k+l^m`n|o",
];

fn random_request(rng: &mut Rng) -> (Request, Vec<&'static str>) {
    let t = 946_684_800 + rng.next() % 4_000_000_000; // 2000 .. 2126
    let mut headers = vec![
        ("Host".to_owned(), b"127.0.0.1:5599".to_vec()),
        ("X-Amz-Date".to_owned(), format_amz_date(t).into_bytes()),
    ];
    let value_bytes: Vec<u8> = (0x20..0x7f).chain([b'\t']).chain(0x80..=0xff).collect();
    let mut extra = Vec::new();
    for _ in 0..rng.below(8) {
        let name = *rng.pick(&NAMES);
        if name == "X-Amz-Security-Token" && extra.contains(&name) {
            continue; // always refused when repeated (tested in vectors.rs)
        }
        let len = rng.below(40);
        headers.push((name.to_owned(), rng.bytes_from(&value_bytes, len)));
        extra.push(name);
    }
    rng.shuffle(&mut headers);
    let seg = "abcXYZ019-_.~%20:@!$&'()*+,;=";
    let path = (0..rng.below(4))
        .map(|_| {
            let len = rng.below(6);
            format!("/{}", rng.string_from(seg, len))
        })
        .collect::<String>();
    let query = (0..rng.below(4))
        .map(|_| {
            let nl = rng.below(4);
            let vl = rng.below(5);
            format!(
                "{}={}",
                rng.string_from("abcXY09-_.~%2F", nl),
                rng.string_from("abcXY09-_.~%20%2B", vl)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let body_len = rng.below(300);
    let body = rng.bytes_from(&(0..=255).collect::<Vec<u8>>(), body_len);
    let method = rng.pick(&["POST", "GET", "PUT"]).to_string();
    (
        Request {
            method,
            path,
            query,
            headers,
            body,
        },
        extra,
    )
}

#[test]
fn sign_then_verify_round_trips() {
    let mut rng = Rng::new(0x5167_0004);
    let regions = ["us-east-1", "eu-west-1", "ap-northeast-1", "local", "x-1-2"];
    for case in 0..1500 {
        let (mut req, extra) = random_request(&mut rng);
        let region = *rng.pick(&regions);
        let akid_len = 1 + rng.below(30);
        let akid = rng.string_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567_", akid_len);
        let secret_len = rng.below(60);
        let secret = rng.bytes_from(&(0..=255).collect::<Vec<u8>>(), secret_len);
        // Sign everything, or host, x-amz-date and a random subset.
        let mut subset: Vec<&str> = vec!["host", "X-AMZ-DATE"];
        subset.extend(extra.iter().filter(|_| rng.chance(2)));
        let sign_all = rng.chance(2);
        let params = SigningParams {
            access_key_id: &akid,
            region,
            service: "kms",
            signed_headers: if sign_all { None } else { Some(&subset) },
        };
        let auth = req
            .with_parts(|r| sign(r, &params, &secret))
            .unwrap_or_else(|e| panic!("case {case}: {e} {req:?}"));
        req.add_header("Authorization", auth.as_bytes());

        let rules = Rules {
            service: "kms",
            sign_if_present: &[],
        };
        let parsed = req
            .with_parts(|r| parse(r, &rules))
            .unwrap_or_else(|e| panic!("case {case}: {e} {auth}"));
        assert_eq!(parsed.access_key_id(), akid);
        assert_eq!(parsed.region(), region);
        let now = u64::try_from(parsed.amz_time()).unwrap();
        let verified = |r: &Request, secret: &[u8]| {
            r.with_parts(|p| parse(p, &rules).and_then(|parsed| verify(&parsed, p, secret, now)))
        };
        assert_eq!(verified(&req, &secret), Ok(()), "case {case}: {auth}");
        if sign_all {
            // With every header signed, the KMS rules hold too, unless one
            // of their headers is repeated.
            let repeated = KMS_RULES.sign_if_present.iter().find(|name| {
                req.headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .count()
                    > 1
            });
            let kms = req.with_parts(|p| parse(p, &KMS_RULES).map(|_| ()));
            match repeated {
                None => assert_eq!(kms, Ok(()), "case {case}"),
                Some(name) => assert!(
                    matches!(&kms, Err(SigV4Error::DuplicateHeader { name: n }) if n == name),
                    "case {case}: {kms:?}"
                ),
            }
        }

        // One change to a signed part fails.
        let mut bad = req.clone();
        let wrong_secret = [secret.as_slice(), b"x"].concat();
        match rng.below(4) {
            0 => {
                bad.body.push(0);
            }
            1 => {
                let signed: Vec<&String> = parsed
                    .signed_headers()
                    .iter()
                    .filter(|n| n.as_str() != "x-amz-date")
                    .collect();
                let name = rng.pick(&signed).to_string();
                let (_, v) = bad
                    .headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                    .unwrap();
                v.push(b'!');
            }
            2 => {
                bad.method.push('X');
            }
            _ => {
                assert_eq!(
                    verified(&bad, &wrong_secret),
                    Err(SigV4Error::SignatureMismatch)
                );
                continue;
            }
        }
        assert_eq!(
            verified(&bad, &secret),
            Err(SigV4Error::SignatureMismatch),
            "case {case}"
        );
    }
}
