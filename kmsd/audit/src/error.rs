//! The crate's one error type.

use std::fmt;
use std::io;
use std::sync::Arc;

/// What can go wrong in the audit trail. Any error from an append means the
/// record is NOT durable: the server must fail the request
/// (`KMSInternalException`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuditError {
    /// An I/O operation failed; `context` says which.
    Io {
        context: String,
        source: Arc<io::Error>,
    },
    /// The existing log cannot be resumed safely (records acknowledged
    /// earlier are missing, `HEAD` is forged or damaged, ...). Run
    /// `kmsctl audit verify` to see where; the log is left untouched.
    Damaged(String),
    /// Another process holds the log open.
    Locked(String),
    /// The directory's `INSTANCE` names another instance than the one
    /// opening it (see [`crate::Options::instance`]); the log is left
    /// untouched.
    WrongInstance(String),
    /// The log was closed (or its writer stopped) before the record was
    /// written.
    Closed,
    /// Writing a batch failed; the record was not acknowledged. If the
    /// writer could not roll the log back to its last durable state it
    /// refuses all further appends (`poisoned`).
    WriteFailed { message: Arc<str>, poisoned: bool },
    /// Invalid input: a bad root key file, an unserializable event, ...
    BadInput(String),
}

impl AuditError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> AuditError {
        AuditError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::Io { context, source } => write!(f, "audit log: {context}: {source}"),
            AuditError::Damaged(m) => write!(f, "audit log damaged: {m}"),
            AuditError::Locked(m) => write!(f, "audit log locked: {m}"),
            AuditError::WrongInstance(m) => write!(f, "audit log of another instance: {m}"),
            AuditError::Closed => f.write_str("audit log closed"),
            AuditError::WriteFailed { message, poisoned } => {
                write!(f, "audit record not written: {message}")?;
                if *poisoned {
                    f.write_str(" (audit log disabled until restart)")?;
                }
                Ok(())
            }
            AuditError::BadInput(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for AuditError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuditError::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
