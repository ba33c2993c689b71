//! The pure format layer: sizes and offsets, ids, key derivation, the file
//! header, the content-block codec, the volume config codec and the
//! search of `SEEK_DATA`/`SEEK_HOLE` over a file's blocks (`seek`); for format
//! version 2 also names (`names`), directory id files (`dirid`), symlink
//! targets (`symlink`) and xattr values (`xattr`). No I/O, no kmsd, no
//! FUSE. The byte layout is documented in `docs/FORMAT.md`.

pub mod block;
pub mod config;
pub mod dirid;
mod error;
pub mod header;
pub mod ids;
pub mod kdf;
pub mod kmsblob;
pub mod names;
pub mod offsets;
pub mod seek;
pub mod symlink;
#[cfg(test)]
mod vectors;
#[cfg(test)]
mod vectors_v2;
pub mod xattr;

pub use block::{BlockError, BlockErrorKind, FileCipher};
pub use config::{CONFIG_FILE_NAME, FORMAT_VERSION, FORMAT_VERSION_2, NameSettings, VolumeConfig};
pub use error::FormatError;
pub use header::{HEADER_MAGIC, HEADER_VERSION, HEADER_VERSION_2, Header, WRAPPED_KEY_MAX};
pub use ids::{DirId, FileId, LinkId, VolumeId};
pub use kdf::DataKey;
pub use names::{BackingName, NameCipher, NameError};
pub use offsets::*;
pub use symlink::{SymlinkCipher, TargetError};
