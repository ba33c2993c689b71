//! Directories that only their user can write: where kmsd, kmsctl and
//! kmsfs put and look for sockets and logs.
//!
//! A private directory is owned by the effective uid, has no group or
//! other permission bits and is not a symlink. [`ensure`] creates one
//! (mode 0700) when it is missing and verifies it every time, on the
//! opened directory itself (`open(O_DIRECTORY|O_NOFOLLOW)` then `fstat`),
//! so a directory another user planted, or a symlink to one, is refused
//! with an error naming what is wrong.
//!
//! [`user_runtime_dir`] picks the per-user base directory without any
//! predictable fallback in a world-writable place: `$XDG_RUNTIME_DIR`
//! (which must verify), else `/run/user/<uid>` when it exists and verifies,
//! else `$HOME/.local/state` (created, verified), else an error.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn err(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{}: {what}; refusing to use it",
            crate::logsafe::EscapedPath(path)
        ),
    )
}

/// Opens `path` as a directory without following a symlink in its last
/// component.
fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: a valid C string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Checks an existing directory: a real directory (not a symlink), owned
/// by the effective uid, no group or other bits.
pub fn verify(path: &Path) -> io::Result<()> {
    let fd = open_dir_nofollow(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => err(path, "is a symlink or not a directory"),
        _ => io::Error::new(
            e.kind(),
            format!("{}: {e}", crate::logsafe::EscapedPath(path)),
        ),
    })?;
    let md = std::fs::File::from(fd).metadata()?;
    let uid = euid();
    if !md.is_dir() {
        return Err(err(path, "is not a directory"));
    }
    if md.uid() != uid {
        return Err(err(
            path,
            format!("is owned by uid {}, not by uid {uid}", md.uid()),
        ));
    }
    if md.mode() & 0o077 != 0 {
        return Err(err(
            path,
            format!(
                "has mode {:04o}; it must have no group or other permissions (chmod 700)",
                md.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Creates `path` (mode 0700, parents too, also 0700 when created) if it
/// is missing, then [`verify`]s it.
pub fn ensure(path: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => {}
        // A dangling symlink or a file in the way: verify names it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", crate::logsafe::EscapedPath(path)),
            ));
        }
    }
    verify(path)
}

/// The per-user base directory for runtime files (sockets, logs) of a
/// user other than root; see the module text for the order. The
/// directory exists and verified when this returns.
pub fn user_runtime_dir() -> io::Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        let d = PathBuf::from(d);
        verify(&d).map_err(|e| io::Error::new(e.kind(), format!("XDG_RUNTIME_DIR {e}")))?;
        return Ok(d);
    }
    let run = PathBuf::from(format!("/run/user/{}", euid()));
    if verify(&run).is_ok() {
        return Ok(run);
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(home) if Path::new(&home).is_absolute() => {
            let d = Path::new(&home).join(".local/state");
            ensure(&d)?;
            Ok(d)
        }
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no safe per-user runtime directory: XDG_RUNTIME_DIR is unset, \
             /run/user/<uid> is missing or not private, and HOME is unset; \
             set XDG_RUNTIME_DIR or HOME, or name a socket explicitly",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_directory_is_private_and_verifies() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        ensure(&d).unwrap();
        let md = std::fs::metadata(&d).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700);
        ensure(&d).unwrap();
    }

    #[test]
    fn group_or_other_bits_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = ensure(&d).unwrap_err().to_string();
        assert!(e.contains("mode 1777"), "{e}");
    }

    #[test]
    fn a_symlink_is_refused_even_to_a_private_directory() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        ensure(&real).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = ensure(&link).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        let dangling = t.path().join("dangling");
        std::os::unix::fs::symlink(t.path().join("nowhere"), &dangling).unwrap();
        assert!(ensure(&dangling).is_err());
        assert!(!t.path().join("nowhere").exists());
    }

    #[test]
    fn a_file_in_the_way_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(ensure(&f).is_err());
    }
}
