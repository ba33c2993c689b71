//! What a root mount process does to protect its keys and its users,
//! checked from outside through /proc and other users' eyes: its memory is
//! locked (`mlockall`), and POSIX ACLs are refused so that only the mode
//! bits decide who reads a file (an ACL that was stored would have to be
//! enforced, and kmsfs does not enforce ACLs). The same for a user's own
//! mount is in kmsfs_unprivileged.rs.

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use mount::{Volume, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

/// A field of /proc/<pid>/status in kB (`VmLck:    1234 kB`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

#[test]
fn a_root_mount_locks_its_memory() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let pid = m.pid.expect("the mount's pid");
    std::fs::write(vol.path("f"), b"data").unwrap();
    assert_eq!(std::fs::read(vol.path("f")).unwrap(), b"data");
    // MCL_CURRENT|MCL_FUTURE: what is mapped is locked, so VmLck is most
    // of the resident set, not just a few pages.
    let (locked, rss) = (status_kb(pid, "VmLck"), status_kb(pid, "VmRSS"));
    assert!(locked > 0, "VmLck {locked} kB: memory not locked");
    assert!(
        locked >= rss / 2,
        "VmLck {locked} kB of VmRSS {rss} kB: not everything is locked"
    );
    assert!(!vol.log().contains("not locking memory"), "{}", vol.log());
    m.unmount();
}

/// `script` run by `sh` as `uid` (gid the same) in `dir`.
fn sh_as(uid: u32, dir: &std::path::Path, script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .uid(uid)
        .gid(uid)
        .env("LC_ALL", "C")
        .output()
        .expect("run sh as another user")
}

#[test]
fn posix_acls_are_refused_and_mode_bits_decide() {
    require_fuse!();
    assert!(
        Command::new("setfacl").arg("--version").output().is_ok(),
        "setfacl is missing: install the acl package (.ci/run does)"
    );
    let owner = identity::unused_id(3_300_000);
    let other = identity::unused_id(owner + 1);
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    // Open to other users, so the kernel checks the mode bits kmsfs reports.
    let m = vol.mount(&["-o", "allow_other"]);
    std::fs::set_permissions(vol.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(vol.path("home")).unwrap();
    std::os::unix::fs::chown(vol.path("home"), Some(owner), Some(owner)).unwrap();
    let home = vol.path("home");

    // The owner makes a private file and a public one, then tries to let
    // the other user read the private one with an ACL.
    let out = sh_as(
        owner,
        &home,
        "umask 077 && echo secret > private && echo hello > public && chmod 644 public",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(vol.path("home/private")).unwrap().uid(),
        owner
    );
    let out = sh_as(owner, &home, &format!("setfacl -m u:{other}:r private"));
    assert!(!out.status.success(), "setfacl succeeded: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not supported"),
        "{}",
        text(&out)
    );
    // A default ACL on a directory is refused the same way.
    let out = sh_as(owner, &home, &format!("setfacl -d -m u:{other}:r ."));
    assert!(
        !out.status.success(),
        "setfacl -d succeeded: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not supported"),
        "{}",
        text(&out)
    );
    // Nothing was stored: the mode bits are all there is...
    let out = sh_as(owner, &home, "getfacl -c private");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["user::rw-", "group::---", "other::---"]
    );
    assert!(
        std::fs::read_dir(vol.backing("home"))
            .unwrap()
            .flatten()
            .all(|e| xattr_names(&e.path()).iter().all(|n| !n.contains("acl"))),
        "an ACL reached the backing files"
    );
    // ...and they decide: the other user reads the public file, not the
    // private one.
    let out = sh_as(other, &home, "cat public");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(out.stdout, b"hello\n");
    let out = sh_as(other, &home, "cat private");
    assert!(
        !out.status.success(),
        "the other user read it: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out)
    );
    m.unmount();
}

/// The extended attribute names of `p` (not following a symlink).
fn xattr_names(p: &std::path::Path) -> Vec<String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: a valid C string and a buffer of the length passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "llistxattr {}", p.display());
    buf[..n as usize]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
