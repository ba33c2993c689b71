//! Errors: the AWS KMS exception names kmsd answers with, and the client's
//! own transport errors.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The AWS KMS exception names. The string form is the name exactly as AWS
/// spells it, so scripts that match on `aws kms` errors match on ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFoundException,
    DisabledException,
    KMSInvalidStateException,
    InvalidCiphertextException,
    IncorrectKeyException,
    ValidationException,
    AlreadyExistsException,
    LimitExceededException,
    AccessDeniedException,
    KMSInternalException,
    InvalidMarkerException,
    InvalidAliasNameException,
    InvalidArnException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    MalformedPolicyDocumentException,
    InvalidGrantTokenException,
    InvalidGrantIdException,
    TagException,
    /// The caller is over its request rate (kmsd: per uid); retry later.
    ThrottlingException,
    /// `DryRun`: the request would have succeeded; nothing was done.
    DryRunOperationException,
    /// A service kmsd depends on (its etcd store) did not answer in time;
    /// retry later.
    DependencyTimeoutException,
}

impl ErrorKind {
    /// Every kind, in declaration order: `ALL[k.index()] == k`.
    pub const ALL: &'static [ErrorKind] = {
        use ErrorKind::*;
        &[
            NotFoundException,
            DisabledException,
            KMSInvalidStateException,
            InvalidCiphertextException,
            IncorrectKeyException,
            ValidationException,
            AlreadyExistsException,
            LimitExceededException,
            AccessDeniedException,
            KMSInternalException,
            InvalidMarkerException,
            InvalidAliasNameException,
            InvalidArnException,
            InvalidKeyUsageException,
            UnsupportedOperationException,
            MalformedPolicyDocumentException,
            InvalidGrantTokenException,
            InvalidGrantIdException,
            TagException,
            ThrottlingException,
            DryRunOperationException,
            DependencyTimeoutException,
        ]
    };

    /// The kind an AWS exception name stands for (as an AWS endpoint puts
    /// it in `__type`); `None` for names outside this list.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The kind's place in [`ErrorKind::ALL`] (for tables indexed by kind,
    /// such as kmsd's metrics).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            NotFoundException => "NotFoundException",
            DisabledException => "DisabledException",
            KMSInvalidStateException => "KMSInvalidStateException",
            InvalidCiphertextException => "InvalidCiphertextException",
            IncorrectKeyException => "IncorrectKeyException",
            ValidationException => "ValidationException",
            AlreadyExistsException => "AlreadyExistsException",
            LimitExceededException => "LimitExceededException",
            AccessDeniedException => "AccessDeniedException",
            KMSInternalException => "KMSInternalException",
            InvalidMarkerException => "InvalidMarkerException",
            InvalidAliasNameException => "InvalidAliasNameException",
            InvalidArnException => "InvalidArnException",
            InvalidKeyUsageException => "InvalidKeyUsageException",
            UnsupportedOperationException => "UnsupportedOperationException",
            MalformedPolicyDocumentException => "MalformedPolicyDocumentException",
            InvalidGrantTokenException => "InvalidGrantTokenException",
            InvalidGrantIdException => "InvalidGrantIdException",
            TagException => "TagException",
            ThrottlingException => "ThrottlingException",
            DryRunOperationException => "DryRunOperationException",
            DependencyTimeoutException => "DependencyTimeoutException",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error kmsd returned for one request: the exception name and a message
/// a person understands. Messages never contain key material or plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsError {
    pub kind: ErrorKind,
    pub message: String,
}

impl KmsError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        KmsError {
            kind,
            message: message.into(),
        }
    }
}

macro_rules! constructors {
    ($($fn:ident => $kind:ident),* $(,)?) => {
        impl KmsError {
            $(pub fn $fn(message: impl Into<String>) -> Self {
                KmsError::new(ErrorKind::$kind, message)
            })*
        }
    };
}

constructors! {
    not_found => NotFoundException,
    disabled => DisabledException,
    invalid_state => KMSInvalidStateException,
    invalid_ciphertext => InvalidCiphertextException,
    incorrect_key => IncorrectKeyException,
    validation => ValidationException,
    already_exists => AlreadyExistsException,
    limit_exceeded => LimitExceededException,
    access_denied => AccessDeniedException,
    internal => KMSInternalException,
    invalid_marker => InvalidMarkerException,
    invalid_alias_name => InvalidAliasNameException,
    malformed_policy => MalformedPolicyDocumentException,
    invalid_grant_token => InvalidGrantTokenException,
    invalid_grant_id => InvalidGrantIdException,
    unsupported => UnsupportedOperationException,
    throttling => ThrottlingException,
    dry_run => DryRunOperationException,
    dependency_timeout => DependencyTimeoutException,
}

impl fmt::Display for KmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message comes from the server: escaped, so it cannot forge
        // a log line or drive a terminal.
        write!(
            f,
            "{}: {}",
            self.kind,
            crate::logsafe::escape(&self.message)
        )
    }
}

impl std::error::Error for KmsError {}

/// What a client call can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// kmsd answered with an exception.
    Kms(KmsError),
    /// The socket could not be reached or broke.
    Io(std::io::Error),
    /// The peer broke the protocol (bad frame, wrong version, wrong reply).
    Protocol(String),
}

impl ClientError {
    /// The AWS exception name, when kmsd gave one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Kms(e) => Some(e.kind),
            _ => None,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Kms(e) => e.fmt(f),
            ClientError::Io(e) => write!(f, "cannot reach kmsd: {e}"),
            ClientError::Protocol(m) => write!(
                f,
                "protocol error talking to kmsd: {}",
                crate::logsafe::escape(m)
            ),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<KmsError> for ClientError {
    fn from(e: KmsError) -> Self {
        ClientError::Kms(e)
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_back_to_its_kind() {
        for &k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ErrorKind::from_name("UnrecognizedClientException"), None);
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn all_lists_every_kind_at_its_index() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
        }
        // A kind added after the last one must be listed too.
        assert_eq!(
            ErrorKind::ALL.len(),
            ErrorKind::DependencyTimeoutException.index() + 1
        );
    }

    #[test]
    fn display_leads_with_the_aws_name() {
        let e = KmsError::disabled("key abc is disabled");
        assert_eq!(e.to_string(), "DisabledException: key abc is disabled");
        assert_eq!(
            ErrorKind::KMSInvalidStateException.name(),
            "KMSInvalidStateException"
        );
        let c = ClientError::from(e);
        assert_eq!(c.kind(), Some(ErrorKind::DisabledException));
    }
}
