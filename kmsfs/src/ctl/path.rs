//! Where a mount's control socket lives: `<runtime dir>/<hash>.sock`, the
//! hash taken over the canonical mountpoint, so `status` and `umount` find
//! it from the mountpoint alone.
//!
//! Runtime dir: `$KMSFS_RUNTIME_DIR` if set, else `/run/kmsfs` for root,
//! else `kmsfs` in the user's runtime directory (`$XDG_RUNTIME_DIR`,
//! `/run/user/<uid>` or `$HOME/.local/state`; see
//! [`kmsd_client::private_dir`]). Never a predictable name in a
//! world-writable directory: the runtime dir is created 0700 when missing
//! and verified (owned by this user, no group/other bits, not a symlink)
//! every time it is used, so nobody else can plant a socket or a log
//! symlink in it.

use kmsd_client::private_dir;
use sha2::{Digest, Sha256};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const ENV_RUNTIME_DIR: &str = "KMSFS_RUNTIME_DIR";

/// The runtime dir, created if missing and verified private.
pub fn runtime_dir() -> Result<PathBuf, String> {
    let dir = if let Some(p) = std::env::var_os(ENV_RUNTIME_DIR).filter(|p| !p.is_empty()) {
        PathBuf::from(p)
    } else if private_dir::euid() == 0 {
        PathBuf::from("/run/kmsfs")
    } else {
        private_dir::user_runtime_dir()
            .map_err(|e| format!("no runtime directory for kmsfs: {e}"))?
            .join("kmsfs")
    };
    private_dir::ensure(&dir).map_err(|e| format!("kmsfs runtime directory {e}"))?;
    Ok(dir)
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
pub fn socket_path(mountpoint: &Path) -> Result<PathBuf, String> {
    Ok(runtime_dir()?.join(format!("{}.sock", mount_tag(&canonical(mountpoint)))))
}

/// The log file of a background mount at `mountpoint`.
pub fn log_path(mountpoint: &Path) -> Result<PathBuf, String> {
    Ok(runtime_dir()?.join(format!("{}.log", mount_tag(&canonical(mountpoint)))))
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
        let rt = tmp.path().join("run");
        // SAFETY: this test is the only one in this crate reading the
        // variable, and it sets it before any lookup.
        unsafe { std::env::set_var(ENV_RUNTIME_DIR, &rt) };
        assert_eq!(socket_path(&d).unwrap(), socket_path(&other).unwrap());
        assert!(
            socket_path(&d)
                .unwrap()
                .to_string_lossy()
                .ends_with(".sock")
        );
    }
}
