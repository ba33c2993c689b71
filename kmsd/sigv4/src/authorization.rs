//! The `Authorization` header's value:
//!
//! ```text
//! AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request, SignedHeaders=a;b;c, Signature=<64 hex>
//! ```
//!
//! Parameters are separated by `,` with optional spaces or tabs around it,
//! may come in any order, and each must appear once. Parsing is total: any
//! string gives a value or an error, never a panic.

use crate::canonical::{ALGORITHM, TERMINATOR};
use crate::error::{Param, SigV4Error, SignedHeadersError};

/// Longest access key id accepted (AWS's limit).
pub const MAX_ACCESS_KEY_ID_LEN: usize = 128;

/// Longest piece of the caller's input echoed into an error message.
const MAX_ECHO: usize = 64;

/// The parts of a well-formed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lowercase, sorted, no duplicates.
    pub signed_headers: Vec<String>,
    pub signature: [u8; 32],
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// At most [`MAX_ECHO`] characters of `s` (which is ASCII here).
fn echo(s: &str) -> String {
    s.chars().take(MAX_ECHO).collect()
}

/// Parses the value of `Authorization`. `service` is the service the
/// credential must be scoped to.
pub fn parse_authorization(value: &[u8], service: &str) -> Result<Authorization, SigV4Error> {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    if !value[start..].starts_with(b"AWS4-") {
        return Err(SigV4Error::NotSigV4);
    }
    if !value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        return Err(SigV4Error::AuthorizationNotAscii);
    }
    // All printable ASCII, so this cannot fail.
    let value = std::str::from_utf8(value).map_err(|_| SigV4Error::AuthorizationNotAscii)?;
    let value = value.trim_matches(is_ows);
    let (algorithm, rest) = value.split_once(is_ows).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: echo(algorithm),
        });
    }
    let [credential, signed_headers, signature] = split_params(rest.trim_matches(is_ows))?;
    let (access_key_id, scope_date, region, service_found) = parse_credential(credential)?;
    if !valid_region(region) {
        return Err(SigV4Error::ScopeRegion {
            region: echo(region),
        });
    }
    if service_found != service {
        return Err(SigV4Error::ScopeService {
            expected: service.to_owned(),
            found: echo(service_found),
        });
    }
    let signed_headers = parse_signed_headers(signed_headers)?;
    let signature = parse_signature(signature)?;
    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        scope_date: scope_date.to_owned(),
        region: region.to_owned(),
        service: service_found.to_owned(),
        signed_headers,
        signature,
    })
}

/// Splits `Credential=..., SignedHeaders=..., Signature=...` into the three
/// values, in that order.
fn split_params(rest: &str) -> Result<[&str; 3], SigV4Error> {
    let mut found: [Option<&str>; 3] = [None; 3];
    if !rest.is_empty() {
        for part in rest.split(',') {
            let part = part.trim_matches(is_ows);
            if part.is_empty() {
                return Err(SigV4Error::EmptyParameter);
            }
            let Some((name, val)) = part.split_once('=') else {
                return Err(SigV4Error::NotKeyValue { part: echo(part) });
            };
            let (slot, param) = match name {
                "Credential" => (0, Param::Credential),
                "SignedHeaders" => (1, Param::SignedHeaders),
                "Signature" => (2, Param::Signature),
                _ => return Err(SigV4Error::UnknownParameter { name: echo(name) }),
            };
            if found[slot].is_some() {
                return Err(SigV4Error::DuplicateParameter(param));
            }
            found[slot] = Some(val);
        }
    }
    let take = |slot: usize, param| match found[slot] {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(SigV4Error::MissingParameter(param)),
    };
    Ok([
        take(0, Param::Credential)?,
        take(1, Param::SignedHeaders)?,
        take(2, Param::Signature)?,
    ])
}

/// `AKID/yyyymmdd/region/service/aws4_request` into (AKID, date, region,
/// service). The date is checked later, against X-Amz-Date.
fn parse_credential(credential: &str) -> Result<(&str, &str, &str, &str), SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(SigV4Error::CredentialParts {
            credential: echo(credential),
        });
    };
    if akid.is_empty()
        || akid.len() > MAX_ACCESS_KEY_ID_LEN
        || !akid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(SigV4Error::InvalidAccessKeyId);
    }
    if terminator != TERMINATOR {
        return Err(SigV4Error::ScopeTerminator {
            found: echo(terminator),
        });
    }
    Ok((akid, date, region, service))
}

/// A region is lowercase letters, digits and `-`, at most 64 of them.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// RFC 9110 `tchar`: the characters of a header name.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_signed_headers(list: &str) -> Result<Vec<String>, SigV4Error> {
    let err = SigV4Error::SignedHeaders;
    if list.is_empty() {
        return Err(err(SignedHeadersError::Empty));
    }
    let mut names: Vec<String> = Vec::new();
    for name in list.split(';') {
        if name.is_empty() {
            return Err(err(SignedHeadersError::EmptyName));
        }
        if !name.bytes().all(is_tchar) {
            return Err(err(SignedHeadersError::InvalidName { name: echo(name) }));
        }
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(SignedHeadersError::Uppercase { name: echo(name) }));
        }
        if let Some(before) = names.last() {
            if before.as_str() == name {
                return Err(err(SignedHeadersError::Duplicate { name: echo(name) }));
            }
            if before.as_str() > name {
                return Err(err(SignedHeadersError::Unsorted {
                    before: echo(before),
                    after: echo(name),
                }));
            }
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

fn parse_signature(sig: &str) -> Result<[u8; 32], SigV4Error> {
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let b = sig.as_bytes();
    if b.len() != 64 {
        return Err(SigV4Error::SignatureFormat);
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => *o = hi << 4 | lo,
            _ => return Err(SigV4Error::SignatureFormat),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "48bc4bf6452a7a8c13c9f036ec7e9a64332a61b811452e48a605573c1a76e180";

    fn good() -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/eu-west-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={SIG}"
        )
    }

    fn parse(s: &str) -> Result<Authorization, SigV4Error> {
        parse_authorization(s.as_bytes(), "kms")
    }

    #[test]
    fn parses_botocore_form() {
        let a = parse(&good()).unwrap();
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.scope_date, "20261202");
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.service, "kms");
        assert_eq!(
            a.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-target"]
        );
        assert_eq!(crate::canonical::hex(&a.signature), SIG);
    }

    #[test]
    fn accepts_other_spacing_and_order() {
        let base = parse(&good()).unwrap();
        for s in [
            good().replace(", ", ","),
            good().replace(", ", " ,\t"),
            format!("  {}  ", good()),
            good().replacen(' ', "   ", 1),
            format!(
                "AWS4-HMAC-SHA256 Signature={SIG}, SignedHeaders=content-type;host;x-amz-date;\
                 x-amz-target, Credential=AKIDEXAMPLE/20261202/eu-west-1/kms/aws4_request"
            ),
        ] {
            assert_eq!(parse(&s), Ok(base.clone()), "{s}");
        }
    }

    #[test]
    fn each_malformation_has_its_error() {
        use SigV4Error as E;
        use SignedHeadersError as H;
        let g = good();
        let cases: Vec<(String, SigV4Error)> = vec![
            ("".into(), E::NotSigV4),
            ("AWS AKIDEXAMPLE:abc".into(), E::NotSigV4),
            ("Bearer abc".into(), E::NotSigV4),
            ("aws4-hmac-sha256 Credential=x".into(), E::NotSigV4),
            (
                g.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
                E::UnsupportedAlgorithm {
                    algorithm: "AWS4-ECDSA-P256-SHA256".into(),
                },
            ),
            (
                g.replacen(' ', "", 1),
                E::UnsupportedAlgorithm {
                    algorithm: "AWS4-HMAC-SHA256Credential=AKIDEXAMPLE/20261202/eu-west-1/kms/aw"
                        .into(),
                },
            ),
            (
                g.replace("eu-west-1", "eu-wést-1"),
                E::AuthorizationNotAscii,
            ),
            (
                "AWS4-HMAC-SHA256".into(),
                E::MissingParameter(Param::Credential),
            ),
            (
                "AWS4-HMAC-SHA256 ".into(),
                E::MissingParameter(Param::Credential),
            ),
            (format!("{g},"), E::EmptyParameter),
            (g.replace(", ", ",,"), E::EmptyParameter),
            (
                g.replace("Signature=", "Signature"),
                E::NotKeyValue {
                    part: format!("Signature{}", &SIG[..55]),
                },
            ),
            (
                format!("{g}, Foo=bar"),
                E::UnknownParameter { name: "Foo".into() },
            ),
            (
                g.replace("Credential=", "credential="),
                E::UnknownParameter {
                    name: "credential".into(),
                },
            ),
            (
                g.replace("Credential=", "Credential ="),
                E::UnknownParameter {
                    name: "Credential ".into(),
                },
            ),
            (
                g.replace(&format!(", Signature={SIG}"), ""),
                E::MissingParameter(Param::Signature),
            ),
            (
                g.replace(&format!("Signature={SIG}"), "Signature="),
                E::MissingParameter(Param::Signature),
            ),
            (
                g.replace(
                    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, ",
                    "",
                ),
                E::MissingParameter(Param::SignedHeaders),
            ),
            (
                format!("{g}, Signature={SIG}"),
                E::DuplicateParameter(Param::Signature),
            ),
            (
                g.replace("/aws4_request", ""),
                E::CredentialParts {
                    credential: "AKIDEXAMPLE/20261202/eu-west-1/kms".into(),
                },
            ),
            (
                g.replace("aws4_request", "aws4_request/"),
                E::CredentialParts {
                    credential: "AKIDEXAMPLE/20261202/eu-west-1/kms/aws4_request/".into(),
                },
            ),
            (g.replace("AKIDEXAMPLE/", "/"), E::InvalidAccessKeyId),
            (
                g.replace("AKIDEXAMPLE/", "AKID-EXAMPLE/"),
                E::InvalidAccessKeyId,
            ),
            (
                g.replace("AKIDEXAMPLE/", &format!("{}/", "A".repeat(129))),
                E::InvalidAccessKeyId,
            ),
            (
                g.replace("eu-west-1", "EU-west-1"),
                E::ScopeRegion {
                    region: "EU-west-1".into(),
                },
            ),
            (
                g.replace("/eu-west-1/", "//"),
                E::ScopeRegion { region: "".into() },
            ),
            (
                g.replace("/kms/", "/s3/"),
                E::ScopeService {
                    expected: "kms".into(),
                    found: "s3".into(),
                },
            ),
            (
                g.replace("aws4_request", "aws5_request"),
                E::ScopeTerminator {
                    found: "aws5_request".into(),
                },
            ),
            (
                g.replace("SignedHeaders=content-type;", "SignedHeaders=;"),
                E::SignedHeaders(H::EmptyName),
            ),
            (
                g.replace(";x-amz-target", ";x-amz-target;"),
                E::SignedHeaders(H::EmptyName),
            ),
            (
                g.replace(";host;", ";;host;"),
                E::SignedHeaders(H::EmptyName),
            ),
            (
                g.replace(";host;", ";Host;"),
                E::SignedHeaders(H::Uppercase {
                    name: "Host".into(),
                }),
            ),
            (
                g.replace(";host;", ";ho st;"),
                E::SignedHeaders(H::InvalidName {
                    name: "ho st".into(),
                }),
            ),
            (
                g.replace(";host;", ";ho:st;"),
                E::SignedHeaders(H::InvalidName {
                    name: "ho:st".into(),
                }),
            ),
            (
                g.replace("content-type;host", "host;content-type"),
                E::SignedHeaders(H::Unsorted {
                    before: "host".into(),
                    after: "content-type".into(),
                }),
            ),
            (
                g.replace(";host;", ";host;host;"),
                E::SignedHeaders(H::Duplicate {
                    name: "host".into(),
                }),
            ),
            (g.replace(SIG, &SIG[1..]), E::SignatureFormat),
            (g.replace(SIG, &format!("{SIG}0")), E::SignatureFormat),
            (g.replace(SIG, &SIG.to_uppercase()), E::SignatureFormat),
            (g.replace(SIG, &SIG.replace('4', "g")), E::SignatureFormat),
            (
                g.replace(SIG, &SIG.replacen('4', "+", 1)),
                E::SignatureFormat,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(parse(&s), Err(want), "{s:?}");
        }
        // A long input is echoed, shortened.
        let long = format!("AWS4-{}", "x".repeat(10_000));
        let Err(E::UnsupportedAlgorithm { algorithm }) = parse(&long) else {
            panic!()
        };
        assert_eq!(algorithm.len(), MAX_ECHO);
    }
}
