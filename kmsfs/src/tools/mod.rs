//! Offline tools over a backing directory, for the CLI: `cat` (decrypt one
//! file to a writer) and `fsck` (authenticate every header and block of a
//! volume and report each problem by path and block number).

pub mod cat;
pub mod fsck;
pub mod info;
mod put;
mod read;
pub mod rewrap;
pub(crate) mod walk;

pub use cat::{CatError, cat};
pub use fsck::{FsckError, Problem, Report, check_opened, fsck, fsck_volume};
pub use put::put;

/// The backing path, relative to the volume's directory, of `path`
/// (relative to the volume's root, or absolute inside its directory).
pub fn backing_path(
    volume: &crate::keys::Volume,
    path: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    let rel = path.strip_prefix(&volume.dir).unwrap_or(path);
    walk::resolve(&volume.dir, &volume.layout, rel)
}

#[cfg(test)]
mod tests;
