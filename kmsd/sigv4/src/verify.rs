//! [`parse`] (everything that can be checked without the secret) and
//! [`verify`] (the clock and the signature).

use std::fmt;

use crate::authorization::parse_authorization;
use crate::canonical::{TERMINATOR, canonical_request, sha256_hex, string_to_sign};
use crate::error::SigV4Error;
use crate::key::SigningKey;
use crate::time::{MAX_SKEW_SECS, format_amz_date, parse_amz_date};
use crate::{RequestParts, Rules};

/// Headers that must appear at most once whatever the rules say.
const SINGLE_HEADERS: [&str; 5] = [
    "authorization",
    "host",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// A request's `Authorization` header, parsed and checked against the
/// request and the [`Rules`]; what remains is [`verify`].
///
/// Made only by [`parse`]. Holds no secret; `Debug` leaves out the session
/// token and the signature all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct Parsed {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    amz_date: String,
    amz_time: i64,
    security_token: Option<String>,
}

impl Parsed {
    /// The access key id (`Credential=AKID/...`).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The credential scope's date, `yyyymmdd` (equal to X-Amz-Date's date).
    pub fn date(&self) -> &str {
        &self.scope_date
    }

    /// The credential scope's region (any well-formed region: checking it
    /// against the server's is the caller's choice).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The credential scope's service (the rules' service).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The signed header names: lowercase, sorted, no duplicates.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The X-Amz-Date header, `yyyyMMdd'T'HHmmss'Z'`.
    pub fn amz_date(&self) -> &str {
        &self.amz_date
    }

    /// X-Amz-Date in seconds since the Unix epoch.
    pub fn amz_time(&self) -> i64 {
        self.amz_time
    }

    /// `x-amz-security-token`, if the request has one and it is signed.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// The credential scope, `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.scope_date, self.region, self.service
        )
    }
}

impl fmt::Debug for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope())
            .field("signed_headers", &self.signed_headers)
            .field("amz_date", &self.amz_date)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// The values of the headers named `name` (case-insensitively).
fn values<'r>(req: &'r RequestParts<'_>, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    req.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The one value of header `name`: `Ok(None)` if absent, an error if it
/// appears more than once.
fn single<'r>(req: &'r RequestParts<'_>, name: &'r str) -> Result<Option<&'r [u8]>, SigV4Error> {
    let mut it = values(req, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(SigV4Error::DuplicateHeader {
            name: name.to_owned(),
        });
    }
    Ok(first)
}

/// Parses and checks a request's `Authorization` header, without the
/// secret. Checks, in order:
///
/// 1. `Authorization` is present, once, and is `AWS4-...`
///    (else [`SigV4Error::MissingAuthorization`] / [`SigV4Error::NotSigV4`]);
/// 2. `authorization`, `host`, `x-amz-date`, `x-amz-content-sha256`,
///    `x-amz-security-token` and each of `rules.sign_if_present` appear at
///    most once;
/// 3. the header is well formed: algorithm `AWS4-HMAC-SHA256`, exactly one
///    Credential, SignedHeaders and Signature; the credential is
///    `AKID/yyyymmdd/region/<rules.service>/aws4_request`; SignedHeaders is
///    lowercase, sorted and without duplicates; Signature is 64 lowercase
///    hex digits;
/// 4. `X-Amz-Date` is present and well formed, and its date is the
///    credential's;
/// 5. `host` and `x-amz-date` are signed, every signed header is present,
///    and each header of `rules.sign_if_present` that is present is signed.
///
/// Never panics, whatever the input.
pub fn parse(req: &RequestParts<'_>, rules: &Rules<'_>) -> Result<Parsed, SigV4Error> {
    let auth = single(req, "authorization")?.ok_or(SigV4Error::MissingAuthorization)?;
    let auth = parse_authorization(auth, rules.service)?;
    for name in SINGLE_HEADERS.iter().chain(rules.sign_if_present) {
        single(req, name)?;
    }

    let raw_date = single(req, "x-amz-date")?.ok_or(SigV4Error::MissingDate)?;
    let (amz_date, amz_time) = std::str::from_utf8(raw_date)
        .ok()
        .and_then(|s| Some((s, parse_amz_date(s)?)))
        .ok_or_else(|| SigV4Error::MalformedDate {
            value: String::from_utf8_lossy(raw_date).chars().take(64).collect(),
        })?;
    if !amz_date.starts_with(&auth.scope_date) || auth.scope_date.len() != 8 {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: auth.scope_date.chars().take(64).collect(),
            amz_date: amz_date.to_owned(),
        });
    }

    let is_signed = |name: &str| {
        auth.signed_headers
            .binary_search_by(|s| s.as_str().cmp(name))
            .is_ok()
    };
    for name in ["host", "x-amz-date"] {
        if !is_signed(name) {
            return Err(SigV4Error::HeaderNotSigned {
                name: name.to_owned(),
            });
        }
    }
    for name in &auth.signed_headers {
        if values(req, name).next().is_none() {
            return Err(SigV4Error::SignedHeaderAbsent { name: name.clone() });
        }
    }
    for name in rules.sign_if_present {
        let name = name.to_ascii_lowercase();
        if values(req, &name).next().is_some() && !is_signed(&name) {
            return Err(SigV4Error::HeaderNotSigned { name });
        }
    }

    let security_token = match single(req, "x-amz-security-token")? {
        Some(v) if is_signed("x-amz-security-token") => {
            Some(String::from_utf8_lossy(v).into_owned())
        }
        _ => None,
    };
    Ok(Parsed {
        access_key_id: auth.access_key_id,
        scope_date: auth.scope_date,
        region: auth.region,
        service: auth.service,
        signed_headers: auth.signed_headers,
        signature: auth.signature,
        amz_date: amz_date.to_owned(),
        amz_time,
        security_token,
    })
}

/// The payload hash of the canonical request: hex SHA-256 of the body. A
/// `x-amz-content-sha256` header (signed or not) must be exactly that.
pub(crate) fn payload_hash(req: &RequestParts<'_>) -> Result<String, SigV4Error> {
    let hash = sha256_hex(req.body);
    match single(req, "x-amz-content-sha256")? {
        Some(claimed) if claimed != hash.as_bytes() => Err(SigV4Error::ContentSha256Mismatch),
        _ => Ok(hash),
    }
}

/// The string to sign of `req` as `parsed` describes it.
pub(crate) fn request_string_to_sign(
    parsed: &Parsed,
    req: &RequestParts<'_>,
) -> Result<String, SigV4Error> {
    let canonical = canonical_request(req, &parsed.signed_headers, &payload_hash(req)?);
    Ok(string_to_sign(
        &parsed.amz_date,
        &parsed.scope(),
        &canonical,
    ))
}

/// The signing key for `parsed`'s scope.
pub(crate) fn signing_key(parsed: &Parsed, secret: &[u8]) -> SigningKey {
    SigningKey::derive(secret, &parsed.scope_date, &parsed.region, &parsed.service)
}

/// Checks the clock, then the signature. `req` must be the request `parsed`
/// came from, `secret` the secret access key of
/// [`Parsed::access_key_id`], `now` the server's time in seconds since the
/// Unix epoch.
///
/// 1. X-Amz-Date is within 15 minutes of `now` either way, bounds included
///    ([`SigV4Error::Expired`], [`SigV4Error::NotYetCurrent`]);
/// 2. `x-amz-content-sha256`, if present, is the hex SHA-256 of the body
///    ([`SigV4Error::ContentSha256Mismatch`]);
/// 3. the signature over the canonical request matches, compared in
///    constant time ([`SigV4Error::SignatureMismatch`]).
pub fn verify(
    parsed: &Parsed,
    req: &RequestParts<'_>,
    secret: &[u8],
    now: u64,
) -> Result<(), SigV4Error> {
    check_clock(parsed, now)?;
    signature_matches(parsed, req, &signing_key(parsed, secret))
}

/// As [`verify`], with the signing key of `parsed`'s scope already derived
/// (a server's cache of [`SigningKey::derive`] for the caller's secret).
/// `key` must be the key of [`Parsed::access_key_id`]'s current secret for
/// [`Parsed::date`], [`Parsed::region`] and [`Parsed::service`].
pub fn verify_with_key(
    parsed: &Parsed,
    req: &RequestParts<'_>,
    key: &SigningKey,
    now: u64,
) -> Result<(), SigV4Error> {
    check_clock(parsed, now)?;
    signature_matches(parsed, req, key)
}

/// X-Amz-Date within [`MAX_SKEW_SECS`] of `now`.
fn check_clock(parsed: &Parsed, now: u64) -> Result<(), SigV4Error> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let earliest = now.saturating_sub(MAX_SKEW_SECS);
    let latest = now.saturating_add(MAX_SKEW_SECS);
    if parsed.amz_time < earliest {
        return Err(SigV4Error::Expired {
            amz_date: parsed.amz_date.clone(),
            earliest: format_amz_date(earliest),
            now: format_amz_date(now),
        });
    }
    if parsed.amz_time > latest {
        return Err(SigV4Error::NotYetCurrent {
            amz_date: parsed.amz_date.clone(),
            latest: format_amz_date(latest),
            now: format_amz_date(now),
        });
    }
    Ok(())
}

/// The payload hash, then the signature, under `key`.
fn signature_matches(
    parsed: &Parsed,
    req: &RequestParts<'_>,
    key: &SigningKey,
) -> Result<(), SigV4Error> {
    let string_to_sign = request_string_to_sign(parsed, req)?;
    if key.verify(string_to_sign.as_bytes(), &parsed.signature) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}
