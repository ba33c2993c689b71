//! What getting a data key can fail with, and the errno each failure gives.

use kmsd_client::{ClientError, ErrorKind};
use std::fmt;

/// Why a key could not be had. Messages never hold key material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// kmsd is unreachable or failed internally → `EIO`.
    Unavailable(String),
    /// kmsd refused: access denied, key disabled, pending deletion or gone
    /// → `EACCES`.
    Denied(String),
    /// The header or the wrapped key is damaged or not from this volume
    /// (kmsd `InvalidCiphertextException`, a failed header MAC) → `EIO`.
    Corrupt(String),
}

impl KeyError {
    /// The errno a filesystem call reports for this failure.
    pub fn errno(&self) -> i32 {
        match self {
            KeyError::Denied(_) => libc::EACCES,
            KeyError::Unavailable(_) | KeyError::Corrupt(_) => libc::EIO,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            KeyError::Unavailable(m) | KeyError::Denied(m) | KeyError::Corrupt(m) => m,
        }
    }
}

impl From<ClientError> for KeyError {
    fn from(e: ClientError) -> Self {
        use ErrorKind::*;
        let msg = e.to_string();
        match e.kind() {
            None => KeyError::Unavailable(msg),
            Some(
                AccessDeniedException
                | DisabledException
                | KMSInvalidStateException
                | NotFoundException,
            ) => KeyError::Denied(msg),
            Some(InvalidCiphertextException | IncorrectKeyException) => KeyError::Corrupt(msg),
            Some(_) => KeyError::Unavailable(msg),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Unavailable(m) => write!(f, "kmsd unavailable: {m}"),
            KeyError::Denied(m) => write!(f, "key access denied: {m}"),
            KeyError::Corrupt(m) => write!(f, "damaged or foreign key: {m}"),
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsd_client::KmsError;

    fn kms(kind: ErrorKind) -> KeyError {
        KeyError::from(ClientError::Kms(KmsError::new(kind, "m")))
    }

    #[test]
    fn exceptions_map_to_errnos() {
        for k in [
            ErrorKind::AccessDeniedException,
            ErrorKind::DisabledException,
            ErrorKind::KMSInvalidStateException,
            ErrorKind::NotFoundException,
        ] {
            assert!(matches!(kms(k), KeyError::Denied(_)), "{k}");
            assert_eq!(kms(k).errno(), libc::EACCES);
        }
        for k in [
            ErrorKind::InvalidCiphertextException,
            ErrorKind::IncorrectKeyException,
        ] {
            assert!(matches!(kms(k), KeyError::Corrupt(_)), "{k}");
            assert_eq!(kms(k).errno(), libc::EIO);
        }
        assert!(matches!(
            kms(ErrorKind::KMSInternalException),
            KeyError::Unavailable(_)
        ));
        let io = KeyError::from(ClientError::Io(
            std::io::ErrorKind::ConnectionRefused.into(),
        ));
        assert!(matches!(io, KeyError::Unavailable(_)));
        assert_eq!(io.errno(), libc::EIO);
        let p = KeyError::from(ClientError::Protocol("x".into()));
        assert_eq!(p.errno(), libc::EIO);
    }

    #[test]
    fn messages_keep_the_aws_name() {
        let e = kms(ErrorKind::DisabledException);
        assert!(e.to_string().contains("DisabledException"), "{e}");
        assert_eq!(e.message(), "DisabledException: m");
    }
}
