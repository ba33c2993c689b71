//! The format layer's error: what is wrong with bytes read from disk.

use std::fmt;

/// A structural or authentication failure of on-disk bytes. Messages name
/// the field; they never contain key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// A backing-file size no valid file has.
    BadSize { cipher_size: u64 },
    /// A header of the wrong length, magic, version, id or padding.
    BadHeader(String),
    /// The header MAC does not match (edited header, or the wrong volume).
    HeaderAuth,
    /// The volume config is malformed or has an unsupported value.
    BadConfig(String),
    /// The volume config MAC does not match.
    ConfigAuth,
    /// A wrapped key longer than the header can hold.
    WrappedKeyTooLong { len: usize },
    /// Version 2: a `kmsfs.dirid` of the wrong length, magic, version or id.
    BadDirId(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::BadSize { cipher_size } => write!(
                f,
                "backing file size {cipher_size} is impossible (truncated or damaged)"
            ),
            FormatError::BadHeader(m) => write!(f, "bad file header: {m}"),
            FormatError::HeaderAuth => f.write_str("file header failed authentication"),
            FormatError::BadConfig(m) => write!(f, "bad volume config: {m}"),
            FormatError::ConfigAuth => f.write_str("volume config failed authentication"),
            FormatError::WrappedKeyTooLong { len } => write!(
                f,
                "wrapped data key of {len} bytes does not fit the header (max {})",
                super::WRAPPED_KEY_MAX
            ),
            FormatError::BadDirId(m) => write!(f, "bad directory id file: {m}"),
        }
    }
}

impl std::error::Error for FormatError {}
