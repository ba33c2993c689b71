//! The one error type of the crate, and its mapping onto AWS exceptions.

use std::fmt;

/// The AWS exception for a request without (AWS) authentication.
pub const MISSING_AUTHENTICATION_TOKEN: &str = "MissingAuthenticationTokenException";
/// The AWS exception for a malformed `Authorization` header or X-Amz-Date.
pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignatureException";
/// The AWS exception for a well-formed signature that does not hold.
pub const INVALID_SIGNATURE: &str = "InvalidSignatureException";

/// AWS's message when the signature does not match.
pub const MSG_SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// A parameter of the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Credential,
    SignedHeaders,
    Signature,
}

impl Param {
    /// The parameter's name as it is spelled in the header.
    pub fn name(self) -> &'static str {
        match self {
            Param::Credential => "Credential",
            Param::SignedHeaders => "SignedHeaders",
            Param::Signature => "Signature",
        }
    }
}

/// What is wrong with `SignedHeaders=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignedHeadersError {
    /// `SignedHeaders=` names no header.
    Empty,
    /// Two `;` in a row, or one at either end.
    EmptyName,
    /// A name with an uppercase letter (names must be lowercase).
    Uppercase { name: String },
    /// A name with a character that no HTTP header name has.
    InvalidName { name: String },
    /// `after` comes after `before` in the list but sorts before it.
    Unsorted { before: String, after: String },
    /// A name listed twice.
    Duplicate { name: String },
}

impl fmt::Display for SignedHeadersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignedHeadersError::Empty => f.write_str("SignedHeaders names no header."),
            SignedHeadersError::EmptyName => f.write_str("SignedHeaders has an empty header name."),
            SignedHeadersError::Uppercase { name } => {
                write!(f, "SignedHeaders must be lowercase, got '{name}'.")
            }
            SignedHeadersError::InvalidName { name } => {
                write!(f, "SignedHeaders has an invalid header name '{name}'.")
            }
            SignedHeadersError::Unsorted { before, after } => write!(
                f,
                "SignedHeaders must be sorted: '{after}' comes after '{before}'."
            ),
            SignedHeadersError::Duplicate { name } => {
                write!(f, "SignedHeaders lists '{name}' more than once.")
            }
        }
    }
}

/// Why a request's signature is refused (or why [`crate::sign`] refused to
/// sign). Each variant maps onto one AWS exception,
/// [`SigV4Error::aws_exception_name`]; `Display` is the message to send with
/// it (AWS's wording where AWS's is known).
///
/// None of the variants holds a secret: access key ids, dates, header names
/// and the request's own signature are not secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigV4Error {
    // --- MissingAuthenticationTokenException
    /// The request has no `Authorization` header.
    MissingAuthorization,
    /// `Authorization` is not AWS Signature Version 4 (it does not start
    /// with `AWS4-`: SigV2's `AWS AKID:sig`, `Bearer ...`, ...). AWS treats
    /// these as no authentication at all.
    NotSigV4,

    // --- IncompleteSignatureException
    /// `AWS4-...` with another algorithm than `AWS4-HMAC-SHA256` (e.g.
    /// SigV4a's `AWS4-ECDSA-P256-SHA256`).
    UnsupportedAlgorithm { algorithm: String },
    /// `Authorization` holds a byte that is not printable ASCII.
    AuthorizationNotAscii,
    /// More than one copy of a header that must appear once
    /// (`authorization`, `host`, `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token`, and the rules' sign-if-present headers).
    DuplicateHeader { name: String },
    /// A comma-separated part of `Authorization` is empty (`a=1,,b=2`, or a
    /// trailing comma).
    EmptyParameter,
    /// A part of `Authorization` is not `Key=Value`.
    NotKeyValue { part: String },
    /// A part of `Authorization` other than Credential, SignedHeaders and
    /// Signature.
    UnknownParameter { name: String },
    /// A parameter is missing (or its value is empty).
    MissingParameter(Param),
    /// A parameter is given twice.
    DuplicateParameter(Param),
    /// Credential is not `AKID/yyyymmdd/region/service/aws4_request`.
    CredentialParts { credential: String },
    /// The access key id is empty, longer than 128, or has characters
    /// outside `[A-Za-z0-9_]`.
    InvalidAccessKeyId,
    /// SignedHeaders is malformed.
    SignedHeaders(SignedHeadersError),
    /// Signature is not 64 lowercase hex digits.
    SignatureFormat,
    /// The request has no `X-Amz-Date` header.
    MissingDate,
    /// X-Amz-Date is not `yyyyMMdd'T'HHmmss'Z'` with a real date and time.
    MalformedDate { value: String },

    // --- InvalidSignatureException
    /// The credential's region is empty or has characters outside
    /// `[a-z0-9-]`.
    ScopeRegion { region: String },
    /// The credential's service is not the one the rules expect.
    ScopeService { expected: String, found: String },
    /// The credential's terminator is not `aws4_request`.
    ScopeTerminator { found: String },
    /// The credential's date is not X-Amz-Date's date.
    ScopeDateMismatch {
        scope_date: String,
        amz_date: String,
    },
    /// `host` or `x-amz-date` is not in SignedHeaders, or a header that must
    /// be signed when present (the rules' list) is present and unsigned.
    HeaderNotSigned { name: String },
    /// SignedHeaders names a header the request does not have.
    SignedHeaderAbsent { name: String },
    /// `x-amz-content-sha256` is not the hex SHA-256 of the body.
    ContentSha256Mismatch,
    /// X-Amz-Date is more than 15 minutes before `now`. The strings are
    /// in X-Amz-Date's format.
    Expired {
        amz_date: String,
        earliest: String,
        now: String,
    },
    /// X-Amz-Date is more than 15 minutes after `now`.
    NotYetCurrent {
        amz_date: String,
        latest: String,
        now: String,
    },
    /// The signature does not match.
    SignatureMismatch,
}

impl SigV4Error {
    /// The AWS exception name to send (`__type`) for this error.
    pub fn aws_exception_name(&self) -> &'static str {
        use SigV4Error::*;
        match self {
            MissingAuthorization | NotSigV4 => MISSING_AUTHENTICATION_TOKEN,
            UnsupportedAlgorithm { .. }
            | AuthorizationNotAscii
            | DuplicateHeader { .. }
            | EmptyParameter
            | NotKeyValue { .. }
            | UnknownParameter { .. }
            | MissingParameter(_)
            | DuplicateParameter(_)
            | CredentialParts { .. }
            | InvalidAccessKeyId
            | SignedHeaders(_)
            | SignatureFormat
            | MissingDate
            | MalformedDate { .. } => INCOMPLETE_SIGNATURE,
            ScopeRegion { .. }
            | ScopeService { .. }
            | ScopeTerminator { .. }
            | ScopeDateMismatch { .. }
            | HeaderNotSigned { .. }
            | SignedHeaderAbsent { .. }
            | ContentSha256Mismatch
            | Expired { .. }
            | NotYetCurrent { .. }
            | SignatureMismatch => INVALID_SIGNATURE,
        }
    }
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SigV4Error::*;
        match self {
            MissingAuthorization | NotSigV4 => {
                f.write_str("Request is missing Authentication Token")
            }
            UnsupportedAlgorithm { algorithm } => write!(
                f,
                "Unsupported AWS 'algorithm': '{algorithm}' (only AWS4-HMAC-SHA256 for now)."
            ),
            AuthorizationNotAscii => f.write_str("Authorization header must be printable ASCII."),
            DuplicateHeader { name } => {
                write!(f, "Header '{name}' must appear only once.")
            }
            EmptyParameter => f.write_str("Authorization header has an empty parameter."),
            NotKeyValue { part } => write!(
                f,
                "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header."
            ),
            UnknownParameter { name } => {
                write!(f, "Authorization header has an unknown parameter '{name}'.")
            }
            MissingParameter(p) => {
                write!(f, "Authorization header requires '{}' parameter.", p.name())
            }
            DuplicateParameter(p) => write!(
                f,
                "Authorization header has more than one '{}' parameter.",
                p.name()
            ),
            CredentialParts { credential } => write!(
                f,
                "Credential must have exactly 5 slash-delimited elements, e.g. \
                 keyid/date/region/service/term, got '{credential}'"
            ),
            InvalidAccessKeyId => f.write_str("Credential has an invalid access key id."),
            SignedHeaders(e) => e.fmt(f),
            SignatureFormat => f.write_str("Signature must be 64 lowercase hex digits."),
            MissingDate => {
                f.write_str("Authorization header requires existence of a 'X-Amz-Date' header.")
            }
            MalformedDate { value } => write!(
                f,
                "Date must be in ISO-8601 'basic format'. Got '{value}'. See \
                 http://en.wikipedia.org/wiki/ISO_8601"
            ),
            ScopeRegion { region } => write!(
                f,
                "Credential should be scoped to a valid region, not '{region}'."
            ),
            ScopeService { expected, .. } => write!(
                f,
                "Credential should be scoped to correct service: '{expected}'."
            ),
            ScopeTerminator { found } => write!(
                f,
                "Credential should be scoped with a valid terminator: 'aws4_request', not \
                 '{found}'."
            ),
            ScopeDateMismatch {
                scope_date,
                amz_date,
            } => write!(
                f,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                amz_date.get(..8).unwrap_or(amz_date)
            ),
            HeaderNotSigned { name } if name == "host" => f.write_str(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ),
            HeaderNotSigned { name } => write!(
                f,
                "'{name}' must be a 'SignedHeader' in the AWS Authorization."
            ),
            SignedHeaderAbsent { name } => write!(
                f,
                "'{name}' is a 'SignedHeader' in the AWS Authorization but is not in the request."
            ),
            ContentSha256Mismatch => f.write_str(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            Expired {
                amz_date,
                earliest,
                now,
            } => write!(
                f,
                "Signature expired: {amz_date} is now earlier than {earliest} ({now} - 15 min.)"
            ),
            NotYetCurrent {
                amz_date,
                latest,
                now,
            } => write!(
                f,
                "Signature not yet current: {amz_date} is still later than {latest} ({now} + 15 \
                 min.)"
            ),
            SignatureMismatch => f.write_str(MSG_SIGNATURE_MISMATCH),
        }
    }
}

impl std::error::Error for SigV4Error {}

/// [`crate::sign`] could not sign the request: as built, the request would
/// be refused by [`crate::parse`] for the reason inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignError(pub SigV4Error);

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot sign the request: {}", self.0)
    }
}

impl std::error::Error for SignError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
