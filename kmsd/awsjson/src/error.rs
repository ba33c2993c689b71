//! Errors on the AWS wire: an HTTP status and the body
//! `{"__type": "<ExceptionName>", "message": "..."}`.
//!
//! botocore takes the code from `__type` (after any `#` prefix) and the
//! message from `message`; the model names the member `message`. AWS
//! answers 400 for every client error, NotFound, KMSInvalidState,
//! AlreadyExists and DryRunOperation included, whatever the Smithy model
//! says; 5xx only for the server faults below, which clients retry.

use crate::json_out::JsonBuf;
use kmsd_client::{ErrorKind, KmsError};
use std::fmt;

/// An error as the AWS protocol sends it. `decode_request` returns these
/// for protocol-level errors (unknown target, malformed body, ...); the
/// HTTP front end may build its own (authentication, dry run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    /// The exception name, as `__type` (`SerializationException`, ...).
    pub name: &'static str,
    /// For people; never holds key material or plaintext.
    pub message: String,
    /// The HTTP status: [`status_for`] the name.
    pub status: u16,
}

impl AwsError {
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            name,
            message: message.into(),
            status: status_for(name),
        }
    }

    /// A body that is not a JSON object, or a member of the wrong type.
    pub fn serialization(message: impl Into<String>) -> Self {
        AwsError::new("SerializationException", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        AwsError::new("ValidationException", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        AwsError::new("UnsupportedOperationException", message)
    }

    /// An `X-Amz-Target` that names no operation of this service.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        AwsError::new("UnknownOperationException", message)
    }

    /// The answer to a request with `DryRun: true` that would have
    /// succeeded (AWS words it so, as does kmsd's own dry run, which
    /// answers `ErrorKind::DryRunOperationException`).
    pub fn dry_run() -> Self {
        AwsError::new(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
        )
    }

    /// The HTTP status and body.
    pub fn encode(&self) -> (u16, Vec<u8>) {
        (self.status, error_body(self.name, &self.message))
    }
}

impl From<&KmsError> for AwsError {
    fn from(e: &KmsError) -> Self {
        AwsError::new(e.kind.name(), e.message.clone())
    }
}

impl From<KmsError> for AwsError {
    fn from(e: KmsError) -> Self {
        AwsError::new(e.kind.name(), e.message)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for AwsError {}

/// The HTTP status AWS answers an exception with: 500 for the faults a
/// client may retry (`KMSInternalException`, `KeyUnavailableException`,
/// `DependencyTimeoutException`), 400 for everything else. botocore
/// retries 5xx (and `ThrottlingException` at 400); a 5xx for a client
/// error would cost four retries.
pub fn status_for(name: &str) -> u16 {
    match name {
        "KMSInternalException" | "KeyUnavailableException" | "DependencyTimeoutException" => 500,
        _ => 400,
    }
}

/// The HTTP status and body for an error kmsd answered.
pub fn encode_error(kind: ErrorKind, message: &str) -> (u16, Vec<u8>) {
    (status_for(kind.name()), error_body(kind.name(), message))
}

fn error_body(name: &str, message: &str) -> Vec<u8> {
    let mut out = JsonBuf::with_capacity(32 + name.len() + message.len());
    out.object(|o| {
        o.str("__type", name);
        o.str("message", message);
    });
    out.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(b: &[u8]) -> serde_json::Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn client_errors_are_400_and_faults_500() {
        use ErrorKind::*;
        let faults = [KMSInternalException, DependencyTimeoutException];
        for &kind in ErrorKind::ALL.iter().filter(|k| !faults.contains(k)) {
            assert_eq!(encode_error(kind, "m").0, 400, "{kind}");
        }
        for kind in faults {
            assert_eq!(encode_error(kind, "m").0, 500, "{kind}");
        }
        for name in [
            "DryRunOperationException",
            "SerializationException",
            "UnknownOperationException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
        ] {
            assert_eq!(status_for(name), 400, "{name}");
        }
        assert_eq!(status_for("KeyUnavailableException"), 500);
        assert_eq!(status_for("DependencyTimeoutException"), 500);
    }

    #[test]
    fn body_has_type_and_message_escaped() {
        let (status, b) = encode_error(
            ErrorKind::NotFoundException,
            "Key 'arn:aws:kms:eu-west-1:111122223333:key/x' does not exist \"\\\n",
        );
        assert_eq!(status, 400);
        assert_eq!(
            body(&b),
            serde_json::json!({
                "__type": "NotFoundException",
                "message": "Key 'arn:aws:kms:eu-west-1:111122223333:key/x' does not exist \"\\\n",
            })
        );
    }

    #[test]
    fn aws_errors_from_kmsd_errors_and_dry_run() {
        let e = AwsError::from(KmsError::internal("disk"));
        assert_eq!((e.name, e.status), ("KMSInternalException", 500));
        let (status, b) = AwsError::dry_run().encode();
        assert_eq!(status, 400);
        assert_eq!(body(&b)["__type"], "DryRunOperationException");
        assert_eq!(
            AwsError::serialization("x").to_string(),
            "SerializationException: x"
        );
    }
}
