//! Where a mount's control socket lives: `<runtime dir>/<hash>.sock`, the
//! hash taken over the canonical mountpoint, so `status` and `umount` find
//! it from the mountpoint alone.
//!
//! Runtime dir: `$KMSFS_RUNTIME_DIR` if set, else `/run/kmsfs` for root,
//! `$XDG_RUNTIME_DIR/kmsfs` or `/tmp/kmsfs-<uid>` for other users.

use sha2::{Digest, Sha256};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const ENV_RUNTIME_DIR: &str = "KMSFS_RUNTIME_DIR";

pub fn runtime_dir() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_RUNTIME_DIR).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/kmsfs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(d) => PathBuf::from(d).join("kmsfs"),
        None => PathBuf::from(format!("/tmp/kmsfs-{uid}")),
    }
}

/// The mountpoint as the kernel names it (absolute, symlinks resolved);
/// the path itself when it cannot be resolved (e.g. a dead mount).
pub fn canonical(mountpoint: &Path) -> PathBuf {
    std::fs::canonicalize(mountpoint).unwrap_or_else(|_| absolute(mountpoint))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
}

/// 16 hex digits naming a mountpoint.
pub fn mount_tag(canonical_mountpoint: &Path) -> String {
    let digest = Sha256::digest(canonical_mountpoint.as_os_str().as_bytes());
    crate::format::ids::to_hex(&digest[..8])
}

/// The control socket of the mount at `mountpoint`.
pub fn socket_path(mountpoint: &Path) -> PathBuf {
    runtime_dir().join(format!("{}.sock", mount_tag(&canonical(mountpoint))))
}

/// The log file of a background mount at `mountpoint`.
pub fn log_path(mountpoint: &Path) -> PathBuf {
    runtime_dir().join(format!("{}.log", mount_tag(&canonical(mountpoint))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_stable_and_distinct() {
        let a = mount_tag(Path::new("/mnt/a"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, mount_tag(Path::new("/mnt/a")));
        assert_ne!(a, mount_tag(Path::new("/mnt/b")));
    }

    #[test]
    fn the_same_directory_named_two_ways_has_one_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("m");
        std::fs::create_dir(&d).unwrap();
        let other = tmp.path().join("m/../m/.");
        assert_eq!(socket_path(&d), socket_path(&other));
        assert!(socket_path(&d).to_string_lossy().ends_with(".sock"));
    }
}
