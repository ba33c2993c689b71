//! How a command fails: the message on stderr and the exit status, both as
//! the AWS CLI v2 gives them.

use crate::shorthand::ParseError;
use kmsd_client::{ClientError, KmsError};
use std::fmt;
use std::path::Path;

/// The command line was wrong: bad syntax, a missing or malformed parameter.
pub const EXIT_USAGE: u8 = 252;
/// kmsd received the request and answered with an exception.
pub const EXIT_SERVICE: u8 = 254;
/// Anything else: kmsd unreachable, the protocol broken, stdout closed.
pub const EXIT_OTHER: u8 = 255;

#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Service {
        operation: &'static str,
        error: KmsError,
    },
    Connection(String),
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Service { .. } => EXIT_SERVICE,
            Failure::Connection(_) | Failure::Other(_) => EXIT_OTHER,
        }
    }

    /// A parameter that could not be parsed or loaded.
    pub fn param(flag: &str, e: impl fmt::Display) -> Failure {
        Failure::Usage(format!("Error parsing parameter '{flag}': {e}"))
    }

    /// A failed call of `operation` on the kmsd at `socket`.
    pub fn client(operation: &'static str, socket: &Path, e: ClientError) -> Failure {
        match e {
            ClientError::Kms(error) => Failure::Service { operation, error },
            ClientError::Io(io) => Failure::Connection(format!(
                "Could not connect to the endpoint URL: \"unix://{}\": {io}\n\
                 Is kmsd running? Choose its socket with --socket or $KMSD_SOCKET.",
                socket.display()
            )),
            ClientError::Protocol(m) => Failure::Other(format!(
                "Protocol error when calling the {operation} operation: {m}"
            )),
            other => Failure::Other(format!(
                "Error when calling the {operation} operation: {other}"
            )),
        }
    }
}

impl From<ParseError> for Failure {
    fn from(e: ParseError) -> Self {
        Failure::Usage(e.0)
    }
}

/// The stderr text. A service error reads exactly as the AWS CLI v2 prints
/// it, blank line first.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Service { operation, error } => write!(
                f,
                "\nAn error occurred ({}) when calling the {operation} operation: {}",
                error.kind, error.message
            ),
            Failure::Usage(m) | Failure::Connection(m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_read_like_the_aws_cli() {
        let f = Failure::client(
            "DescribeKey",
            Path::new("/s"),
            ClientError::Kms(KmsError::not_found("Key 'x' does not exist")),
        );
        assert_eq!(
            f.to_string(),
            "\nAn error occurred (NotFoundException) when calling the DescribeKey operation: Key 'x' does not exist"
        );
        assert_eq!(f.exit_code(), 254);
    }

    #[test]
    fn exit_codes_by_kind() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let f = Failure::client(
            "Encrypt",
            Path::new("/run/kmsd/kmsd.sock"),
            ClientError::Io(io),
        );
        assert_eq!(f.exit_code(), 255);
        assert!(f.to_string().contains("unix:///run/kmsd/kmsd.sock"), "{f}");
        let f = Failure::client(
            "Encrypt",
            Path::new("/s"),
            ClientError::Protocol("bad frame".into()),
        );
        assert_eq!(f.exit_code(), 255);
        assert!(
            f.to_string().contains("Encrypt operation: bad frame"),
            "{f}"
        );
        let f = Failure::param("--plaintext", "Invalid base64");
        assert_eq!(f.exit_code(), 252);
        assert_eq!(
            f.to_string(),
            "Error parsing parameter '--plaintext': Invalid base64"
        );
    }
}
