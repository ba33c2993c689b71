//! Offline tools over a backing directory, for the CLI: `cat` (decrypt one
//! file to a writer) and `fsck` (authenticate every header and block of a
//! volume and report each problem by path and block number).

pub mod cat;
pub mod fsck;
mod put;
mod read;
mod walk;

pub use cat::{CatError, cat};
pub use fsck::{FsckError, Problem, Report, check_opened, fsck, fsck_volume};
pub use put::put;

#[cfg(test)]
mod tests;
