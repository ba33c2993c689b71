//! Real signed requests (captured from boto3 and the aws CLI, and signed by
//! botocore's SigV4Auth) verify; every change to what they sign fails with
//! the right error; changes to what they do not sign pass.

mod common;

use common::{Vector, all_vectors, captured};
use kmsd_sigv4::{
    INCOMPLETE_SIGNATURE, INVALID_SIGNATURE, MISSING_AUTHENTICATION_TOKEN, MSG_SIGNATURE_MISMATCH,
    SigV4Error,
};

#[test]
fn every_vector_verifies_with_its_secret() {
    let vectors = all_vectors();
    assert_eq!(vectors.len(), 7);
    for v in &vectors {
        let parsed = v
            .request
            .check(&v.secret, v.now())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(parsed.access_key_id(), "AKIDEXAMPLE", "{}", v.name);
        assert_eq!(parsed.service(), "kms");
        assert_eq!(parsed.amz_date(), v.request.header_str("x-amz-date"));
        assert_eq!(parsed.date(), &parsed.amz_date()[..8]);
    }
    let regions: Vec<String> = captured()
        .iter()
        .map(|v| v.request.parse().unwrap().region().to_owned())
        .collect();
    assert_eq!(regions, ["eu-west-1", "us-east-1", "ap-northeast-1"]);
    let with_token = &captured().remove(1).request;
    let parsed = with_token.parse().unwrap();
    assert_eq!(parsed.security_token(), Some("FQoGZXIvYXdzEXAMPLETOKEN"));
    assert_eq!(
        parsed.signed_headers(),
        [
            "content-type",
            "host",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-target"
        ]
    );
    assert!(!format!("{parsed:?}").contains("EXAMPLETOKEN"));
}

#[test]
fn wrong_secret_is_a_mismatch() {
    for v in all_vectors() {
        let mut secret = v.secret.clone();
        secret[0] ^= 1;
        let err = v.request.check(&secret, v.now()).unwrap_err();
        assert_eq!(err, SigV4Error::SignatureMismatch);
        assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
        assert_eq!(err.to_string(), MSG_SIGNATURE_MISMATCH);
        assert_eq!(
            v.request.check(b"", v.now()),
            Err(SigV4Error::SignatureMismatch)
        );
    }
}

/// The error a change to the body gives: the body hash is in the canonical
/// request, or (when the request carries `x-amz-content-sha256`) that header
/// no longer matches.
fn body_error(v: &Vector) -> SigV4Error {
    if v.request.header("x-amz-content-sha256").is_some() {
        SigV4Error::ContentSha256Mismatch
    } else {
        SigV4Error::SignatureMismatch
    }
}

#[test]
fn every_single_byte_change_to_the_body_fails() {
    for v in all_vectors() {
        let (now, want) = (v.now(), body_error(&v));
        let mut changed = 0;
        for i in 0..v.request.body.len() {
            for b in 0..=255u8 {
                if b == v.request.body[i] {
                    continue;
                }
                let mut r = v.request.clone();
                r.body[i] = b;
                assert_eq!(
                    r.check(&v.secret, now),
                    Err(want.clone()),
                    "{} [{i}]={b}",
                    v.name
                );
                changed += 1;
            }
        }
        // One byte more, one byte less.
        let mut r = v.request.clone();
        r.body.push(b' ');
        assert_eq!(r.check(&v.secret, now), Err(want.clone()), "{}", v.name);
        if !v.request.body.is_empty() {
            let mut r = v.request.clone();
            r.body.pop();
            assert_eq!(r.check(&v.secret, now), Err(want.clone()), "{}", v.name);
        }
        assert_eq!(changed, v.request.body.len() * 255);
    }
}

#[test]
fn every_single_byte_change_to_a_signed_header_value_fails() {
    // Printable non-blank bytes: a change between two blanks would be the
    // same canonical value (runs of blanks are one space), by design.
    let replacements: Vec<u8> = (0x21..0x7f).collect();
    for v in all_vectors() {
        let parsed = v.request.parse().unwrap();
        let now = v.now();
        for name in parsed.signed_headers() {
            if name == "x-amz-date" {
                continue; // its own test below
            }
            let positions: Vec<usize> = v
                .request
                .headers
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| n.eq_ignore_ascii_case(name))
                .map(|(i, _)| i)
                .collect();
            for &h in &positions {
                let value = v.request.headers[h].1.clone();
                for (i, &old) in value.iter().enumerate() {
                    for &b in &replacements {
                        if b == old {
                            continue;
                        }
                        let mut r = v.request.clone();
                        r.headers[h].1[i] = b;
                        let want = if name == "x-amz-content-sha256" {
                            SigV4Error::ContentSha256Mismatch
                        } else {
                            SigV4Error::SignatureMismatch
                        };
                        assert_eq!(
                            r.check(&v.secret, now),
                            Err(want),
                            "{} {name}[{i}]={}",
                            v.name,
                            b as char
                        );
                    }
                }
                // A value given to an empty header, or one byte more.
                let mut r = v.request.clone();
                r.headers[h].1.push(b'x');
                assert!(r.check(&v.secret, now).is_err(), "{} {name}+x", v.name);
            }
        }
    }
}

#[test]
fn every_single_character_change_to_the_signature_fails() {
    for v in all_vectors() {
        let auth = v.request.header_str("authorization");
        let start = auth.find("Signature=").unwrap() + "Signature=".len();
        for i in start..auth.len() {
            for c in "0123456789abcdefABCDEFgz+ ".chars() {
                if auth.as_bytes()[i] == c as u8 {
                    continue;
                }
                let mut changed = auth.clone();
                changed.replace_range(i..=i, &c.to_string());
                let mut r = v.request.clone();
                r.set_header("authorization", changed.as_bytes());
                let err = r.check(&v.secret, v.now()).unwrap_err();
                let want = if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
                    SigV4Error::SignatureMismatch
                } else {
                    SigV4Error::SignatureFormat
                };
                assert_eq!(err, want, "{} {changed}", v.name);
            }
        }
    }
}

/// X-Amz-Date changed alone, at a `now` equal to the original date.
fn date_changed(v: &Vector, new: &str) -> Result<(), SigV4Error> {
    let mut r = v.request.clone();
    r.set_header("x-amz-date", new.as_bytes());
    r.check(&v.secret, v.now()).map(|_| ())
}

#[test]
fn changes_to_the_date_fail() {
    let v = &captured().remove(0);
    assert_eq!(v.request.header_str("x-amz-date"), "20261202T023524Z");
    let mismatch = |scope: &str, amz: &str| SigV4Error::ScopeDateMismatch {
        scope_date: scope.into(),
        amz_date: amz.into(),
    };
    let cases = [
        // Seconds or minutes within 15 minutes: the date is signed.
        ("20261202T023525Z", SigV4Error::SignatureMismatch),
        ("20261202T023523Z", SigV4Error::SignatureMismatch),
        ("20261202T024524Z", SigV4Error::SignatureMismatch),
        ("20261202T022524Z", SigV4Error::SignatureMismatch),
        // Further off: the clock check comes first.
        (
            "20261202T025524Z",
            SigV4Error::NotYetCurrent {
                amz_date: "20261202T025524Z".into(),
                latest: "20261202T025024Z".into(),
                now: "20261202T023524Z".into(),
            },
        ),
        (
            "20261202T013524Z",
            SigV4Error::Expired {
                amz_date: "20261202T013524Z".into(),
                earliest: "20261202T022024Z".into(),
                now: "20261202T023524Z".into(),
            },
        ),
        // Another day than the credential's.
        ("20261203T023524Z", mismatch("20261202", "20261203T023524Z")),
        ("20251202T023524Z", mismatch("20261202", "20251202T023524Z")),
        // Not a date.
        (
            "20261302T023524Z",
            SigV4Error::MalformedDate {
                value: "20261302T023524Z".into(),
            },
        ),
        (
            "20261202T023524",
            SigV4Error::MalformedDate {
                value: "20261202T023524".into(),
            },
        ),
        (
            "Wed, 02 Dec 2026 02:35:24 GMT",
            SigV4Error::MalformedDate {
                value: "Wed, 02 Dec 2026 02:35:24 GMT".into(),
            },
        ),
    ];
    for (new, want) in cases {
        assert_eq!(date_changed(v, new), Err(want), "{new}");
    }
    // Every single-character change fails, with one of these errors.
    let date = v.request.header_str("x-amz-date");
    for i in 0..date.len() {
        for c in "0123456789TZ ".chars() {
            if date.as_bytes()[i] == c as u8 {
                continue;
            }
            let mut new = date.clone();
            new.replace_range(i..=i, &c.to_string());
            let err = date_changed(v, &new).unwrap_err();
            assert!(
                matches!(
                    err,
                    SigV4Error::SignatureMismatch
                        | SigV4Error::Expired { .. }
                        | SigV4Error::NotYetCurrent { .. }
                        | SigV4Error::ScopeDateMismatch { .. }
                        | SigV4Error::MalformedDate { .. }
                ),
                "{new}: {err:?}"
            );
        }
    }
    // Date and credential date moved together, and `now` with them: the
    // scope's date is in the key and the string to sign.
    let mut r = v.request.clone();
    r.set_header("x-amz-date", b"20261203T023524Z");
    let auth = r
        .header_str("authorization")
        .replace("/20261202/", "/20261203/");
    r.set_header("authorization", auth.as_bytes());
    assert_eq!(
        r.check(&v.secret, v.now() + 86_400),
        Err(SigV4Error::SignatureMismatch)
    );
    // Missing.
    let mut r = v.request.clone();
    r.remove_header("x-amz-date");
    let err = r.check(&v.secret, v.now()).unwrap_err();
    assert_eq!(err, SigV4Error::MissingDate);
    assert_eq!(err.aws_exception_name(), INCOMPLETE_SIGNATURE);
}

#[test]
fn changes_to_the_region_fail() {
    for v in all_vectors() {
        let parsed = v.request.parse().unwrap();
        let auth = v.request.header_str("authorization");
        let region = parsed.region();
        let at = auth.find(&format!("/{region}/")).unwrap() + 1;
        for i in 0..region.len() {
            for c in "abcdefghijklmnopqrstuvwxyz0123456789-".chars() {
                if region.as_bytes()[i] == c as u8 {
                    continue;
                }
                let mut changed = auth.clone();
                changed.replace_range(at + i..=at + i, &c.to_string());
                let mut r = v.request.clone();
                r.set_header("authorization", changed.as_bytes());
                assert_eq!(
                    r.check(&v.secret, v.now()),
                    Err(SigV4Error::SignatureMismatch),
                    "{changed}"
                );
            }
            let mut changed = auth.clone();
            changed.replace_range(at + i..=at + i, "X");
            let mut r = v.request.clone();
            r.set_header("authorization", changed.as_bytes());
            let err = r.check(&v.secret, v.now()).unwrap_err();
            assert!(matches!(err, SigV4Error::ScopeRegion { .. }), "{err:?}");
            assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
        }
    }
}

#[test]
fn other_scope_changes_fail() {
    let v = &captured().remove(0);
    let auth = v.request.header_str("authorization");
    let with = |from: &str, to: &str| {
        let mut r = v.request.clone();
        r.set_header("authorization", auth.replace(from, to).as_bytes());
        r.check(&v.secret, v.now()).unwrap_err()
    };
    // The access key id is not signed: it only selects the secret, which
    // the caller looks up between parse and verify.
    let mut r = v.request.clone();
    r.set_header(
        "authorization",
        auth.replace("AKIDEXAMPLE", "AKIDEXAMPLF").as_bytes(),
    );
    assert_eq!(
        r.check(&v.secret, v.now()).unwrap().access_key_id(),
        "AKIDEXAMPLF"
    );
    let err = with("/kms/", "/kmt/");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to correct service: 'kms'."
    );
    assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
    let err = with("aws4_request", "aws4_requesT");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requesT'."
    );
    let err = with("/20261202/", "/20261201/");
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20261201' != '20261202', from '20261202T023524Z'."
    );
    assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
    let err = with("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    assert_eq!(err.aws_exception_name(), INCOMPLETE_SIGNATURE);
}

#[test]
fn sign_if_present_headers_must_be_signed() {
    for v in captured() {
        let auth = v.request.header_str("authorization");
        // Drop a name from SignedHeaders (the signature no longer matters:
        // the check comes before it).
        for name in ["x-amz-target", "content-type", "x-amz-security-token"] {
            if !auth.contains(&format!(";{name}")) && !auth.contains(&format!("={name};")) {
                continue;
            }
            let changed = auth
                .replace(&format!(";{name}"), "")
                .replace(&format!("={name};"), "=");
            let mut r = v.request.clone();
            r.set_header("authorization", changed.as_bytes());
            let err = r.check(&v.secret, v.now()).unwrap_err();
            assert_eq!(
                err,
                SigV4Error::HeaderNotSigned { name: name.into() },
                "{changed}"
            );
            assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
            assert_eq!(
                err.to_string(),
                format!("'{name}' must be a 'SignedHeader' in the AWS Authorization.")
            );
        }
        // An unsigned copy added under another case is a second copy.
        let mut r = v.request.clone();
        r.add_header("x-amz-target", b"TrentService.ScheduleKeyDeletion");
        assert_eq!(
            r.check(&v.secret, v.now()),
            Err(SigV4Error::DuplicateHeader {
                name: "x-amz-target".into()
            })
        );
    }
    // An x-amz-target that was not there when the request was signed.
    let v = &all_vectors().remove(4); // botocore.jsonl:2, signed host;x-amz-date only
    assert_eq!(
        v.request.parse().unwrap().signed_headers(),
        ["host", "x-amz-date"]
    );
    let mut r = v.request.clone();
    r.add_header("X-Amz-Target", b"TrentService.DisableKey");
    assert_eq!(
        r.check(&v.secret, v.now()),
        Err(SigV4Error::HeaderNotSigned {
            name: "x-amz-target".into()
        })
    );
    let mut r = v.request.clone();
    r.add_header("X-Amz-Security-Token", b"token");
    assert_eq!(
        r.check(&v.secret, v.now()),
        Err(SigV4Error::HeaderNotSigned {
            name: "x-amz-security-token".into()
        })
    );
}

#[test]
fn host_and_date_must_be_signed() {
    let v = &captured().remove(0);
    let auth = v.request.header_str("authorization");
    for (from, to, name, msg) in [
        (
            ";host;",
            ";",
            "host",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            ";x-amz-date;",
            ";",
            "x-amz-date",
            "'x-amz-date' must be a 'SignedHeader' in the AWS Authorization.",
        ),
    ] {
        let mut r = v.request.clone();
        r.set_header("authorization", auth.replace(from, to).as_bytes());
        let err = r.check(&v.secret, v.now()).unwrap_err();
        assert_eq!(err, SigV4Error::HeaderNotSigned { name: name.into() });
        assert_eq!(err.to_string(), msg);
    }
}

#[test]
fn a_signed_header_must_be_present() {
    let v = &captured().remove(0);
    for name in ["content-type", "x-amz-target", "Host"] {
        let mut r = v.request.clone();
        r.remove_header(name);
        assert_eq!(
            r.check(&v.secret, v.now()),
            Err(SigV4Error::SignedHeaderAbsent {
                name: name.to_ascii_lowercase()
            })
        );
    }
}

#[test]
fn unsigned_headers_order_and_name_case_do_not_matter() {
    let mut rng = common::Rng::new(7);
    for v in all_vectors() {
        let now = v.now();
        let signed = v.request.parse().unwrap().signed_headers().to_vec();
        for round in 0..50 {
            let mut r = v.request.clone();
            // Change, drop or add unsigned headers.
            for (name, value) in &mut r.headers {
                let lower = name.to_ascii_lowercase();
                if lower != "authorization" && !signed.contains(&lower) && rng.chance(2) {
                    let len = rng.below(20);
                    *value = rng.bytes_from(b"abc XYZ/;=,", len);
                }
            }
            if rng.chance(3) {
                r.headers.retain(|(n, _)| {
                    let lower = n.to_ascii_lowercase();
                    lower == "authorization" || signed.contains(&lower)
                });
            }
            for i in 0..rng.below(4) {
                r.add_header(&format!("X-Unsigned-{round}-{i}"), b"  anything  ");
            }
            // Any order (repeated names keep their relative order: their
            // values are joined in order).
            let mut keyed: Vec<(usize, (String, Vec<u8>))> = Vec::new();
            for h in r.headers.drain(..) {
                let first = keyed
                    .iter()
                    .position(|(_, (n, _))| n.eq_ignore_ascii_case(&h.0));
                let key = match first {
                    Some(i) => keyed[i].0,
                    None => rng.below(1000),
                };
                keyed.push((key, h));
            }
            keyed.sort_by_key(|(k, _)| *k);
            r.headers = keyed.into_iter().map(|(_, h)| h).collect();
            // Any case, signed or not.
            for (name, _) in &mut r.headers {
                *name = name
                    .chars()
                    .map(|c| {
                        if rng.chance(2) {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect();
            }
            r.check(&v.secret, now)
                .unwrap_or_else(|e| panic!("{} {:?}: {e}", v.name, r.headers));
        }
    }
}

#[test]
fn clock_skew_of_fifteen_minutes_either_way() {
    for v in captured() {
        let t = v.now();
        let check = |now: u64| v.request.check(&v.secret, now).map(|_| ());
        assert_eq!(check(t + 14 * 60 + 59), Ok(()));
        assert_eq!(check(t - (14 * 60 + 59)), Ok(()));
        assert_eq!(check(t + 15 * 60), Ok(()));
        assert_eq!(check(t - 15 * 60), Ok(()));
        let late = check(t + 15 * 60 + 1).unwrap_err();
        let early = check(t - (15 * 60 + 1)).unwrap_err();
        assert!(matches!(late, SigV4Error::Expired { .. }));
        assert!(matches!(early, SigV4Error::NotYetCurrent { .. }));
        assert_eq!(late.aws_exception_name(), INVALID_SIGNATURE);
        assert_eq!(early.aws_exception_name(), INVALID_SIGNATURE);
    }
    // AWS's wording, with AWS's date format.
    let v = &captured().remove(0); // 20261202T023524Z
    let t = v.now();
    assert_eq!(
        v.request
            .check(&v.secret, t + 15 * 60 + 1)
            .unwrap_err()
            .to_string(),
        "Signature expired: 20261202T023524Z is now earlier than 20261202T023525Z \
         (20261202T025025Z - 15 min.)"
    );
    assert_eq!(
        v.request
            .check(&v.secret, t - (15 * 60 + 1))
            .unwrap_err()
            .to_string(),
        "Signature not yet current: 20261202T023524Z is still later than 20261202T023523Z \
         (20261202T022023Z + 15 min.)"
    );
    // Far off either way, including a clock at the epoch and at u64::MAX.
    for now in [0, 1, 899, u64::MAX] {
        assert!(v.request.check(&v.secret, now).is_err());
    }
}

#[test]
fn missing_or_non_sigv4_authorization() {
    let v = &captured().remove(0);
    let mut r = v.request.clone();
    r.remove_header("authorization");
    let err = r.check(&v.secret, v.now()).unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthorization);
    assert_eq!(err.aws_exception_name(), MISSING_AUTHENTICATION_TOKEN);
    assert_eq!(err.to_string(), "Request is missing Authentication Token");
    for other in [
        "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "Bearer x",
        "",
    ] {
        let mut r = v.request.clone();
        r.set_header("authorization", other.as_bytes());
        let err = r.check(&v.secret, v.now()).unwrap_err();
        assert_eq!(err, SigV4Error::NotSigV4);
        assert_eq!(err.aws_exception_name(), MISSING_AUTHENTICATION_TOKEN);
    }
}

#[test]
fn repeated_headers_are_refused() {
    let v = &captured().remove(0);
    for name in [
        "Authorization",
        "X-Amz-Date",
        "Host",
        "X-Amz-Target",
        "Content-Type",
    ] {
        let mut r = v.request.clone();
        let value = r.header(name).unwrap().to_vec();
        r.add_header(&name.to_ascii_lowercase(), &value);
        let err = r.check(&v.secret, v.now()).unwrap_err();
        assert_eq!(
            err,
            SigV4Error::DuplicateHeader {
                name: name.to_ascii_lowercase()
            }
        );
        assert_eq!(err.aws_exception_name(), INCOMPLETE_SIGNATURE);
    }
    // The session token, signed or not, whatever the rules.
    let v = &captured().remove(1);
    let mut r = v.request.clone();
    r.add_header("x-amz-security-token", b"another");
    assert_eq!(
        r.check(&v.secret, v.now()),
        Err(SigV4Error::DuplicateHeader {
            name: "x-amz-security-token".into()
        })
    );
}

#[test]
fn content_sha256_must_be_the_body_hash() {
    let v = &captured().remove(0);
    let body_hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"; // "{}"
    // Unsigned and right: fine. Unsigned and wrong, or not lowercase: refused.
    let mut r = v.request.clone();
    r.add_header("X-Amz-Content-SHA256", body_hash.as_bytes());
    assert!(r.check(&v.secret, v.now()).is_ok());
    for wrong in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
        body_hash.to_uppercase(),
        "UNSIGNED-PAYLOAD".to_owned(),
    ] {
        let mut r = v.request.clone();
        r.add_header("X-Amz-Content-SHA256", wrong.as_bytes());
        let err = r.check(&v.secret, v.now()).unwrap_err();
        assert_eq!(err, SigV4Error::ContentSha256Mismatch);
        assert_eq!(err.aws_exception_name(), INVALID_SIGNATURE);
    }
}

#[test]
fn every_error_has_a_message_and_a_known_exception() {
    let v = &captured().remove(0);
    let auth = v.request.header_str("authorization");
    for i in 0..auth.len() {
        let mut r = v.request.clone();
        let mut changed = auth.clone().into_bytes();
        changed.remove(i);
        r.set_header("authorization", &changed);
        if let Err(e) = r.check(&v.secret, v.now()) {
            assert!(!e.to_string().is_empty());
            assert!(
                [
                    MISSING_AUTHENTICATION_TOKEN,
                    INCOMPLETE_SIGNATURE,
                    INVALID_SIGNATURE
                ]
                .contains(&e.aws_exception_name())
            );
        }
    }
}
