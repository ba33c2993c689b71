//! AWS error codes → [`ClientError`], so a failure through the AWS API
//! maps to the errno the native socket's would (`KeyError`).
//!
//! KMS exceptions keep their kind. The endpoint's own authentication
//! failures (a bad or inactive access key, a bad signature, no
//! credentials) are refusals: `AccessDeniedException`, whose message
//! keeps the original name. Other service-side failures
//! (`KeyUnavailableException`, names this client does not know) count as
//! `KMSInternalException`; `DependencyTimeoutException` keeps its name.
//! All of them are EIO. Messages come
//! from the network, so they are escaped before they can reach a log.

use kmsd_client::{ClientError, ErrorKind, KmsError};

/// Authentication failures of an AWS endpoint (STS, SigV4, IAM).
const AUTH_FAILURES: [&str; 8] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "AccessDenied",
    "SignatureDoesNotMatch",
];

/// The error of a service answer with AWS error `code` and `message`.
pub fn service_error(code: Option<&str>, message: Option<&str>) -> ClientError {
    let message = kmsd_client::logsafe::escape(message.unwrap_or("")).into_owned();
    let code = code.unwrap_or("");
    let (kind, message) = match ErrorKind::from_name(code) {
        Some(kind) => (kind, message),
        None if AUTH_FAILURES.contains(&code) => (
            ErrorKind::AccessDeniedException,
            format!("{code}: {message}"),
        ),
        None if code.starts_with("Throttl") => (ErrorKind::ThrottlingException, message),
        None if code.is_empty() => (
            ErrorKind::KMSInternalException,
            format!("an error without a code: {message}"),
        ),
        None => (
            ErrorKind::KMSInternalException,
            format!("{}: {message}", kmsd_client::logsafe::escape(code)),
        ),
    };
    ClientError::Kms(KmsError::new(kind, message))
}

/// The error of a call that got no usable answer: `kind` of the I/O
/// failure (unreachable, timed out) and what the SDK said.
pub fn transport_error(kind: std::io::ErrorKind, what: &str) -> ClientError {
    ClientError::Io(std::io::Error::new(
        kind,
        kmsd_client::logsafe::escape(what).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyError;

    fn errno(e: ClientError) -> i32 {
        KeyError::from(e).errno()
    }

    #[test]
    fn kms_exceptions_keep_their_kind() {
        let e = service_error(Some("DisabledException"), Some("key is disabled"));
        assert_eq!(e.kind(), Some(ErrorKind::DisabledException));
        assert_eq!(errno(e), libc::EACCES);
        let e = service_error(Some("IncorrectKeyException"), None);
        assert_eq!(e.kind(), Some(ErrorKind::IncorrectKeyException));
        assert_eq!(errno(e), libc::EIO);
    }

    #[test]
    fn a_refused_access_key_is_a_refusal_that_keeps_its_name() {
        for code in ["UnrecognizedClientException", "InvalidSignatureException"] {
            let e = service_error(Some(code), Some("The security token is invalid."));
            assert_eq!(e.kind(), Some(ErrorKind::AccessDeniedException));
            assert!(e.to_string().contains(code), "{e}");
            assert_eq!(errno(e), libc::EACCES);
        }
    }

    #[test]
    fn other_service_failures_are_internal_and_give_eio() {
        for code in ["KeyUnavailableException", ""] {
            let e = service_error(Some(code), Some("m"));
            assert_eq!(e.kind(), Some(ErrorKind::KMSInternalException), "{code}");
            assert_eq!(errno(e), libc::EIO);
        }
        // kmsd's own name for a store that did not answer keeps its kind,
        // and is EIO all the same.
        let e = service_error(Some("DependencyTimeoutException"), Some("m"));
        assert_eq!(e.kind(), Some(ErrorKind::DependencyTimeoutException));
        assert_eq!(errno(e), libc::EIO);
        let e = service_error(Some("ThrottlingException"), None);
        assert_eq!(e.kind(), Some(ErrorKind::ThrottlingException));
    }

    #[test]
    fn messages_from_the_network_are_escaped() {
        let e = service_error(Some("Bad\nCode"), Some("line\nrm -rf /\u{1b}[2J"));
        let s = e.to_string();
        assert!(!s.contains('\n') && !s.contains('\u{1b}'), "{s:?}");
        let t = transport_error(std::io::ErrorKind::TimedOut, "a\nb");
        assert!(!t.to_string().contains('\n'));
        assert_eq!(errno(t), libc::EIO);
    }
}
