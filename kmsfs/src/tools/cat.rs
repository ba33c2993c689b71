//! `kmsfs cat`: decrypt one backing file to a writer, failing on the first
//! block that does not authenticate. Output up to that block has been
//! written (each run is authenticated before it is written), so a caller
//! must treat an error as "the output is incomplete".

use super::read::{self, Event, FileError};
use crate::format::{BlockError, FormatError};
use crate::keys::{KeyError, Volume};
use std::fmt;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

#[derive(Debug)]
#[non_exhaustive]
pub enum CatError {
    /// The backing file could not be read.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The backing size is impossible (truncated or damaged).
    Size { path: PathBuf, error: FormatError },
    /// The header's key could not be had (damaged header, kmsd refused or
    /// unreachable).
    Key { path: PathBuf, error: KeyError },
    /// A block failed authentication.
    Block { path: PathBuf, error: BlockError },
    /// Writing the output failed.
    Output(std::io::Error),
}

impl fmt::Display for CatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CatError::Size { path, error } => write!(f, "{}: {error}", path.display()),
            CatError::Key { path, error } => write!(f, "{}: header: {error}", path.display()),
            CatError::Block { path, error } => write!(f, "{}: {error}", path.display()),
            CatError::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl std::error::Error for CatError {}

/// Decrypts `path` (relative to the volume's backing directory, or
/// absolute) into `out`; returns the plaintext bytes written.
pub fn cat(volume: &Volume, path: &Path, out: &mut dyn Write) -> Result<u64, CatError> {
    let shown = volume
        .dir
        .join(path.strip_prefix(&volume.dir).unwrap_or(path));
    let backing = super::backing_path(volume, path).map_err(|e| CatError::Io {
        path: shown.clone(),
        error: std::io::Error::new(std::io::ErrorKind::NotFound, e),
    })?;
    let full = volume.dir.join(backing);
    let io = |error| CatError::Io {
        path: shown.clone(),
        error,
    };
    let file = kmsd_client::nofollow::open_regular(&full).map_err(io)?;
    let file_error = |e: FileError| match e {
        FileError::Io(error) => CatError::Io {
            path: full.clone(),
            error,
        },
        FileError::Size(error) => CatError::Size {
            path: full.clone(),
            error,
        },
        FileError::Key(error) => CatError::Key {
            path: full.clone(),
            error,
        },
        FileError::Block(error) => CatError::Block {
            path: full.clone(),
            error,
        },
    };
    let sizes = volume.layout.sizes();
    let (_, plain_size) = read::plain_size(&file, sizes).map_err(file_error)?;
    if plain_size == 0 && sizes == crate::fs::layout::Sizes::V1 {
        return Ok(0);
    }
    let cipher = read::open(&volume.keys, &file).map_err(file_error)?;
    if plain_size == 0 {
        read::check_empty(&cipher, &file).map_err(file_error)?;
        return Ok(0);
    }
    let mut written = 0u64;
    let mut failure = None;
    read::blocks(&cipher, &file, plain_size, |ev| match ev {
        Event::Plain(data) => match out.write_all(data) {
            Ok(()) => {
                written += data.len() as u64;
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(CatError::Output(e));
                ControlFlow::Break(())
            }
        },
        Event::Hole => ControlFlow::Continue(()),
        Event::Bad(error) => {
            failure = Some(CatError::Block {
                path: full.clone(),
                error,
            });
            ControlFlow::Break(())
        }
    })
    .map_err(io)?;
    if let Some(f) = failure {
        return Err(f);
    }
    out.flush().map_err(CatError::Output)?;
    Ok(written)
}
