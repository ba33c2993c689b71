//! AWS Signature Version 4, header form (`Authorization: AWS4-HMAC-SHA256
//! ...`), for kmsd's AWS-compatible endpoint: parse, verify and sign. Pure
//! logic over caller-owned data: no I/O, no clock, no HTTP types. See
//! `docs/HTTP.md`, "Request signing (SigV4)", for exactly what is checked.
//!
//! # How the server uses it
//!
//! ```
//! use kmsd_sigv4::{KMS_RULES, RequestParts, SigV4Error, parse, verify};
//! # fn lookup(_akid: &str) -> Option<Vec<u8>> { None }
//! # fn now() -> u64 { 0 }
//! # let headers: Vec<(&str, &[u8])> = vec![];
//! let req = RequestParts {
//!     method: "POST",
//!     path: "/",
//!     query: "",
//!     headers: &headers, // (name, value) as received, any case, in order
//!     body: b"{}",
//! };
//! let result = parse(&req, &KMS_RULES).and_then(|parsed| {
//!     // Look the key up between the two steps; an unknown key is the
//!     // caller's UnrecognizedClientException ("The security token included
//!     // in the request is invalid.").
//!     let Some(secret) = lookup(parsed.access_key_id()) else {
//!         return Ok(None);
//!     };
//!     verify(&parsed, &req, &secret, now())?;
//!     Ok(Some(parsed))
//! });
//! if let Err(e) = result {
//!     // 400 with {"__type": e.aws_exception_name(), "message": e.to_string()}
//!     # let _ = (e.aws_exception_name(), e.to_string());
//! }
//! ```
//!
//! # Errors and AWS exceptions
//!
//! [`SigV4Error::aws_exception_name`] gives the exception; `Display` gives
//! the message (AWS's wording where it is known). The split follows what
//! AWS's JSON services answer:
//!
//! | exception | errors |
//! | --- | --- |
//! | `MissingAuthenticationTokenException` | no `Authorization` ([`SigV4Error::MissingAuthorization`]); an `Authorization` that is not `AWS4-...` ([`SigV4Error::NotSigV4`]) |
//! | `IncompleteSignatureException` | a malformed `Authorization`: unsupported algorithm, not printable ASCII, empty / not `key=value` / unknown / missing / repeated parameter, a credential that is not 5 `/`-separated parts, a bad access key id, bad SignedHeaders (empty, uppercase, invalid name, unsorted, duplicate), a signature that is not 64 lowercase hex digits; a missing or malformed X-Amz-Date; a repeated `authorization`, `host`, `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` or sign-if-present header |
//! | `InvalidSignatureException` | a credential scoped to a bad region, another service, another terminator or another date than X-Amz-Date's; `host`, `x-amz-date` or a present sign-if-present header not signed; a signed header absent from the request; `x-amz-content-sha256` not the body's hash; X-Amz-Date more than 15 minutes off (`Signature expired: ...`, `Signature not yet current: ...`); the signature does not match |
//!
//! # Secrets
//!
//! The secret is only borrowed. `"AWS4" + secret`, every key of the HMAC
//! chain and the HMAC states live in buffers wiped on drop; none of them
//! can be formatted. [`Parsed`]'s `Debug` leaves out the session token.

mod authorization;
mod canonical;
mod error;
mod key;
mod sign;
mod time;
mod verify;

use std::fmt;

pub use error::{
    INCOMPLETE_SIGNATURE, INVALID_SIGNATURE, MISSING_AUTHENTICATION_TOKEN, MSG_SIGNATURE_MISMATCH,
    Param, SigV4Error, SignError, SignedHeadersError,
};
pub use key::SigningKey;
pub use sign::{SigningParams, sign};
pub use time::MAX_SKEW_SECS;
pub use verify::{Parsed, parse, verify, verify_with_key};

/// The parts of an HTTP request that SigV4 covers, as received.
#[derive(Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method as sent (`POST`).
    pub method: &'a str,
    /// The path as sent on the request line, still percent-encoded (`/`).
    pub path: &'a str,
    /// The query as sent, without `?` (`""` when there is none).
    pub query: &'a str,
    /// Every header as received: names in any case, repeated names once
    /// per occurrence, in the order received.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The whole body.
    pub body: &'a [u8],
}

impl fmt::Debug for RequestParts<'_> {
    /// Header names only: values may hold session tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestParts")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// What a service requires of a request's signature beyond SigV4 itself.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The service the credential must be scoped to (`kms`).
    pub service: &'a str,
    /// Headers that, when the request has them, must be signed (lowercase).
    /// `host` and `x-amz-date` must always be signed.
    pub sign_if_present: &'a [&'a str],
}

/// AWS KMS: service `kms`; `x-amz-target` (the operation),
/// `content-type` and `x-amz-security-token` signed when present (botocore
/// signs all three).
pub const KMS_RULES: Rules<'static> = Rules {
    service: "kms",
    sign_if_present: &["x-amz-target", "content-type", "x-amz-security-token"],
};

/// Seconds since the Unix epoch as X-Amz-Date (`20261202T023524Z`), for
/// signing requests.
pub fn format_amz_date(epoch_secs: u64) -> String {
    time::format_amz_date(i64::try_from(epoch_secs).unwrap_or(i64::MAX))
}
