//! The pure format layer: sizes and offsets, ids, key derivation, the file
//! header, the content-block codec and the volume config codec. No I/O, no
//! kmsd, no FUSE. The byte layout is documented in `docs/FORMAT.md`.

pub mod block;
pub mod config;
mod error;
pub mod header;
pub mod ids;
pub mod kdf;
pub mod offsets;
#[cfg(test)]
mod vectors;

pub use block::{BlockError, BlockErrorKind, FileCipher};
pub use config::{CONFIG_FILE_NAME, FORMAT_VERSION, VolumeConfig};
pub use error::FormatError;
pub use header::{HEADER_MAGIC, HEADER_VERSION, Header, WRAPPED_KEY_MAX};
pub use ids::{FileId, VolumeId};
pub use kdf::DataKey;
pub use offsets::*;
