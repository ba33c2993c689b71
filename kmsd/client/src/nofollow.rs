//! Opening a file by a path where someone else may have planted something:
//! a symlink to a file of the victim's, a FIFO that never gets a writer, a
//! device, a hard link to `~/.bashrc`.
//!
//! Both openers pass `O_NOFOLLOW` (a symlink in the last component is
//! refused with an error saying so, never followed), `O_NONBLOCK` (opening
//! a FIFO or a device does not wait) and `O_NOCTTY`, and then check the
//! type on the opened descriptor (`fstat`), so only a regular file is
//! ever returned. Other errors (`NotFound`, `PermissionDenied`) pass
//! through with their kind, for callers that treat them specially.
//!
//! - [`open_regular`] opens for reading (backing files, a volume config).
//! - [`open_private_append`] opens or creates (mode 0600) for appending (a
//!   log), accepts only a file of the effective uid with a single link,
//!   and turns `O_NONBLOCK` off again before returning.
//! - [`open_secret`] opens for reading a secret someone else installed for
//!   us (a TLS private key): owned by root or the effective uid, and not
//!   writable by group or others, so nobody else can have swapped it.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Flags every open here carries.
const FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;

/// Opens `path` for reading; see the module text.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let f = open(OpenOptions::new().read(true), path)?;
    check_regular(&f)?;
    Ok(f)
}

/// Opens `path` for appending, creating it with mode 0600 when missing;
/// see the module text.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    let f = open(
        OpenOptions::new().create(true).append(true).mode(0o600),
        path,
    )?;
    let md = check_regular(&f)?;
    check_private(&md, crate::private_dir::euid())?;
    set_blocking(&f)?;
    Ok(f)
}

/// Opens the secret at `path` for reading; see the module text.
pub fn open_secret(path: &Path) -> io::Result<File> {
    let f = open(OpenOptions::new().read(true), path)?;
    let md = check_regular(&f)?;
    check_secret(&md, crate::private_dir::euid())?;
    set_blocking(&f)?;
    Ok(f)
}

/// Refuses a secret owned by neither root nor `uid`, or writable by group
/// or others.
fn check_secret(md: &Metadata, uid: u32) -> io::Result<()> {
    if md.uid() != 0 && md.uid() != uid {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "is owned by uid {}, not by root or uid {uid} (refused)",
                md.uid()
            ),
        ));
    }
    if md.mode() & 0o022 != 0 {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!(
                "is writable by group or others (mode {:o}; refused)",
                md.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

fn open(opts: &mut OpenOptions, path: &Path) -> io::Result<File> {
    opts.custom_flags(FLAGS)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refuse(io::ErrorKind::InvalidInput, "is a symlink (not followed)"),
            // Opening a FIFO without a reader for writing, or a socket.
            Some(libc::ENXIO) => refuse(
                io::ErrorKind::InvalidInput,
                "is a FIFO or a socket, not a regular file (refused)",
            ),
            _ => e,
        })
}

fn refuse(kind: io::ErrorKind, why: impl Into<String>) -> io::Error {
    io::Error::new(kind, why.into())
}

/// The descriptor's metadata when it is a regular file; an error naming
/// what it is otherwise.
fn check_regular(f: &File) -> io::Result<Metadata> {
    let md = f.metadata()?;
    let ft = md.file_type();
    if ft.is_file() {
        return Ok(md);
    }
    let what = if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "something else"
    };
    Err(refuse(
        io::ErrorKind::InvalidInput,
        format!("is {what}, not a regular file (refused)"),
    ))
}

/// Refuses a file not owned by `uid` or with other hard links.
fn check_private(md: &Metadata, uid: u32) -> io::Result<()> {
    if md.uid() != uid {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            format!("is owned by uid {}, not by uid {uid} (refused)", md.uid()),
        ));
    }
    if md.nlink() > 1 {
        return Err(refuse(
            io::ErrorKind::PermissionDenied,
            "has other hard links (refused)",
        ));
    }
    Ok(())
}

fn set_blocking(f: &File) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a descriptor we own.
    let fl = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    /// Runs `f` on another thread; panics when it does not finish in 10 s.
    fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("{what} hung"))
    }

    fn flags(f: &File) -> i32 {
        // SAFETY: F_GETFL on an open descriptor.
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) }
    }

    #[test]
    fn a_regular_file_is_read() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let mut s = String::new();
        open_regular(&p).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn a_missing_file_keeps_its_error_kind() {
        let t = tempfile::tempdir().unwrap();
        let e = open_regular(&t.path().join("none")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn symlinks_are_refused_and_their_targets_untouched() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_regular(&link).unwrap_err().to_string();
        assert_eq!(e, "is a symlink (not followed)");
        let e = open_private_append(&link).unwrap_err().to_string();
        assert_eq!(e, "is a symlink (not followed)");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A dangling one: its target is not created either.
        let dangling = t.path().join("dangling");
        let nowhere = t.path().join("nowhere");
        std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
        let e = open_private_append(&dangling).unwrap_err().to_string();
        assert!(e.contains("symlink"), "{e}");
        assert!(!nowhere.exists());
    }

    #[test]
    fn fifos_are_refused_without_waiting() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("fifo");
        mkfifo(&p);
        let p2 = p.clone();
        let e = within_10s("reading a FIFO", move || open_regular(&p2).map(drop));
        assert_eq!(
            e.unwrap_err().to_string(),
            "is a FIFO, not a regular file (refused)"
        );
        let e = within_10s("appending to a FIFO", move || {
            open_private_append(&p).map(drop)
        });
        assert!(e.unwrap_err().to_string().contains("FIFO"));
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = open_regular(t.path()).unwrap_err().to_string();
        assert_eq!(e, "is a directory, not a regular file (refused)");
        let e = open_regular(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "is a device, not a regular file (refused)");
        let e = open_private_append(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "is a device, not a regular file (refused)");
    }

    #[test]
    fn an_appended_file_is_created_private_and_blocking() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("log");
        let mut f = open_private_append(&p).unwrap();
        assert_eq!(flags(&f) & libc::O_NONBLOCK, 0);
        assert_ne!(flags(&f) & libc::O_APPEND, 0);
        f.write_all(b"one\n").unwrap();
        drop(f);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        open_private_append(&p)
            .unwrap()
            .write_all(b"two\n")
            .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn a_hard_linked_file_is_not_appended_to() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("bashrc");
        std::fs::write(&victim, b"keep").unwrap();
        let log = t.path().join("log");
        std::fs::hard_link(&victim, &log).unwrap();
        let e = open_private_append(&log).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(e.to_string(), "has other hard links (refused)");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn a_file_of_another_uid_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"").unwrap();
        let md = std::fs::metadata(&p).unwrap();
        check_private(&md, md.uid()).unwrap();
        let other = md.uid().wrapping_add(1);
        let e = check_private(&md, other).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("is owned by uid {}, not by uid {other} (refused)", md.uid())
        );
    }

    #[test]
    fn a_secret_is_read_when_private_and_refused_otherwise() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("key.pem");
        std::fs::write(&p, b"secret").unwrap();
        for mode in [0o600, 0o400, 0o640, 0o644] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut s = String::new();
            open_secret(&p).unwrap().read_to_string(&mut s).unwrap();
            assert_eq!(s, "secret", "mode {mode:o}");
        }
        for mode in [0o620, 0o602, 0o666] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = open_secret(&p).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
            assert_eq!(
                e.to_string(),
                format!("is writable by group or others (mode {mode:o}; refused)")
            );
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = t.path().join("link.pem");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = open_secret(&link).unwrap_err().to_string();
        assert_eq!(e, "is a symlink (not followed)");
        let e = open_secret(Path::new("/dev/null")).unwrap_err().to_string();
        assert_eq!(e, "is a device, not a regular file (refused)");
    }

    #[test]
    fn a_secret_of_another_user_is_refused_and_roots_accepted() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("key.pem");
        std::fs::write(&p, b"").unwrap();
        let me = crate::private_dir::euid();
        check_secret(&std::fs::metadata(&p).unwrap(), me).unwrap();
        let other = if me == 0 {
            // Root's file is accepted whoever kmsd runs as; then hand it
            // to someone else.
            check_secret(&std::fs::metadata(&p).unwrap(), 1000).unwrap();
            std::os::unix::fs::chown(&p, Some(3_900_000), None).unwrap();
            3_900_000
        } else {
            me
        };
        let md = std::fs::metadata(&p).unwrap();
        let kmsd_uid = if me == 0 { 0 } else { me.wrapping_add(1) };
        let e = check_secret(&md, kmsd_uid).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("is owned by uid {other}, not by root or uid {kmsd_uid} (refused)")
        );
    }
}
