//! The one error type of this crate. Each variant maps onto the AWS
//! exception the server answers with ([`Error::kind`]).

use kmsd_client::{ErrorKind, KmsError};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A key policy or the service policy is not a valid document: the
    /// message names the statement and the problem.
    /// `MalformedPolicyDocumentException`.
    MalformedPolicy(String),
    /// The policy is valid but would stop the caller from ever changing it
    /// again (the PutKeyPolicy lockout safety check).
    /// `MalformedPolicyDocumentException`, as in AWS.
    Lockout(String),
    /// CreateGrant input that cannot make a grant (operation, principal,
    /// name, constraints). `ValidationException`.
    InvalidGrant(String),
    /// A grant token that is not one kmsd minted. `InvalidGrantTokenException`.
    InvalidGrantToken(String),
    /// A principal string in a request (grantee, retiring principal) that
    /// does not parse. `ValidationException`.
    InvalidPrincipal(String),
    /// The system random source failed. `KMSInternalException`.
    Internal(String),
}

impl Error {
    /// The AWS exception this error is reported as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::MalformedPolicy(_) | Error::Lockout(_) => {
                ErrorKind::MalformedPolicyDocumentException
            }
            Error::InvalidGrant(_) | Error::InvalidPrincipal(_) => ErrorKind::ValidationException,
            Error::InvalidGrantToken(_) => ErrorKind::InvalidGrantTokenException,
            Error::Internal(_) => ErrorKind::KMSInternalException,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::MalformedPolicy(m)
            | Error::Lockout(m)
            | Error::InvalidGrant(m)
            | Error::InvalidGrantToken(m)
            | Error::InvalidPrincipal(m)
            | Error::Internal(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for KmsError {
    fn from(e: Error) -> KmsError {
        KmsError::new(e.kind(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_aws_exceptions() {
        let cases = [
            (
                Error::MalformedPolicy("x".into()),
                "MalformedPolicyDocumentException",
            ),
            (
                Error::Lockout("x".into()),
                "MalformedPolicyDocumentException",
            ),
            (Error::InvalidGrant("x".into()), "ValidationException"),
            (Error::InvalidPrincipal("x".into()), "ValidationException"),
            (
                Error::InvalidGrantToken("x".into()),
                "InvalidGrantTokenException",
            ),
            (Error::Internal("x".into()), "KMSInternalException"),
        ];
        for (e, name) in cases {
            assert_eq!(e.kind().name(), name);
            let k: KmsError = e.into();
            assert_eq!(k.message, "x");
        }
    }

    #[test]
    fn display_names_kind_and_message() {
        let e = Error::MalformedPolicy("Statement 1: missing Effect".into());
        assert_eq!(
            e.to_string(),
            "MalformedPolicyDocumentException: Statement 1: missing Effect"
        );
    }
}
