//! POSIX ACLs and the mode bits kmsfs changes on its own, through a real
//! mount with `-o allow_other` (the kernel checks permissions, issue 11):
//! an ACL is stored on the backing inode and enforced for other users; the
//! ACL mask and the group bits follow each other at once; a default ACL is
//! inherited and replaces the umask; set-id bits are cleared by an
//! unprivileged write, fallocate or punch hole, and `stat` shows it at
//! once. Both formats (format 2 with encrypted names, format 1).

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use mount::{Volume, text};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

/// `script` run by `sh` as `uid` (gid the same; std drops root's
/// supplementary groups) in `dir`.
fn sh_as(uid: u32, dir: &Path, script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .uid(uid)
        .gid(uid)
        .env("LC_ALL", "C")
        .output()
        .expect("run sh as another user")
}

/// Runs `script` as `uid` and asserts it succeeded; its stdout.
fn ok_as(uid: u32, dir: &Path, script: &str) -> String {
    let out = sh_as(uid, dir, script);
    assert!(out.status.success(), "{script}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` as `uid` and asserts it failed for lack of permission.
fn denied_as(uid: u32, dir: &Path, script: &str) {
    let out = sh_as(uid, dir, script);
    assert!(!out.status.success(), "{script} succeeded: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{script}: {}",
        text(&out)
    );
}

/// The permission bits `stat` shows on the mount (no sleep before: what
/// the kernel has cached is what a program sees).
fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").mode() & 0o7777
}

/// `getfacl` output as entries, without comments (`-c`) and without the
/// "#effective" remarks (`-E`); `args` selects e.g. the default ACL.
fn acl(uid: u32, dir: &Path, args: &str, file: &str) -> Vec<String> {
    ok_as(uid, dir, &format!("getfacl -cE {args} {file}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The extended attribute names of `p` (not following a symlink).
fn xattr_names(p: &Path) -> Vec<String> {
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

/// A format 2 volume (encrypted names) and a format 1 volume.
fn volumes(kmsd: &KmsdProcess) -> [(&'static str, Volume); 2] {
    [
        ("format 2", Volume::create(kmsd)),
        ("format 1", Volume::create_init(kmsd, &["--format", "1"])),
    ]
}

/// A directory `home` on the mount owned by `owner`, reachable by others.
fn home_of(vol: &Volume, owner: u32) -> std::path::PathBuf {
    std::fs::set_permissions(vol.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&vol.mountpoint, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = vol.path("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&home, Some(owner), Some(owner)).unwrap();
    home
}

#[test]
fn an_acl_for_a_named_user_is_enforced_and_follows_the_mode() {
    require_fuse!();
    let owner = identity::unused_id(3_310_000);
    let other = identity::unused_id(owner + 1);
    let kmsd = KmsdProcess::start();
    for (format, vol) in volumes(&kmsd) {
        let m = vol.mount(&["-o", "allow_other"]);
        let home = home_of(&vol, owner);
        ok_as(owner, &home, "umask 077 && echo secret > private");
        assert_eq!(mode(&home.join("private")), 0o600, "{format}");
        denied_as(other, &home, "cat private");

        // Granted: the kernel enforces the stored ACL for that user.
        ok_as(owner, &home, &format!("setfacl -m u:{other}:r private"));
        assert_eq!(ok_as(other, &home, "cat private"), "secret\n", "{format}");
        let u = format!("user:{other}:r--");
        assert_eq!(
            acl(owner, &home, "", "private"),
            [
                "user::rw-",
                u.as_str(),
                "group::---",
                "mask::r--",
                "other::---"
            ],
            "{format}"
        );
        // The mask shows as the group bits, at once.
        assert_eq!(mode(&home.join("private")), 0o640, "{format}");
        // Stored as the backing inode's own ACL, listed on the mount.
        let backing = vol.backing("home/private");
        assert!(
            xattr_names(&backing).contains(&"system.posix_acl_access".to_owned()),
            "{format}: {:?}",
            xattr_names(&backing)
        );
        assert!(
            xattr_names(&home.join("private")).contains(&"system.posix_acl_access".to_owned()),
            "{format}"
        );

        // chmod sets the mask: the named entry loses its effect at once.
        ok_as(owner, &home, "chmod 600 private");
        assert!(
            acl(owner, &home, "", "private").contains(&"mask::---".to_owned()),
            "{format}"
        );
        denied_as(other, &home, "cat private");
        // And a new mask sets the group bits.
        ok_as(owner, &home, "setfacl -m m::r private");
        assert_eq!(mode(&home.join("private")), 0o640, "{format}");
        assert_eq!(ok_as(other, &home, "cat private"), "secret\n", "{format}");

        // Removed: denied again, and the mode bits are all there is.
        ok_as(owner, &home, &format!("setfacl -x u:{other} private"));
        denied_as(other, &home, "cat private");
        ok_as(owner, &home, "setfacl -b private");
        assert_eq!(
            acl(owner, &home, "", "private"),
            ["user::rw-", "group::---", "other::---"],
            "{format}"
        );
        assert_eq!(mode(&home.join("private")), 0o600, "{format}");
        // Only the owner may set an ACL.
        let out = sh_as(other, &home, &format!("setfacl -m u:{other}:rw private"));
        assert!(!out.status.success(), "{format}: {}", text(&out));
        denied_as(other, &home, "cat private");
        m.unmount();
    }
}

#[test]
fn a_default_acl_is_inherited_and_replaces_the_umask() {
    require_fuse!();
    let owner = identity::unused_id(3_320_000);
    let other = identity::unused_id(owner + 1);
    let kmsd = KmsdProcess::start();
    for (format, vol) in volumes(&kmsd) {
        let m = vol.mount(&["-o", "allow_other"]);
        let home = home_of(&vol, owner);
        ok_as(
            owner,
            &home,
            &format!("mkdir shared && setfacl -d -m u::rwx,g::rwx,o::---,u:{other}:r-x shared"),
        );
        // umask 077 is ignored under the default ACL (create, mkdir and
        // mknod), and applies without one.
        ok_as(
            owner,
            &home,
            "umask 077 && echo hi > shared/f && mkdir shared/sub && mkfifo shared/p \
             && echo no > plain && mkdir plaindir && mkfifo plainp",
        );
        // Requested 0666 / 0777 / 0666, masked by the default ACL: the
        // group bits are the inherited mask (rwx & requested).
        assert_eq!(mode(&home.join("shared/f")), 0o660, "{format}");
        assert_eq!(mode(&home.join("shared/sub")), 0o770, "{format}");
        assert_eq!(mode(&home.join("shared/p")), 0o660, "{format}");
        assert_eq!(mode(&home.join("plain")), 0o600, "{format}");
        assert_eq!(mode(&home.join("plaindir")), 0o700, "{format}");
        assert_eq!(mode(&home.join("plainp")), 0o600, "{format}");
        let u = format!("user:{other}:r-x");
        assert_eq!(
            acl(owner, &home, "", "shared/f"),
            [
                "user::rw-",
                u.as_str(),
                "group::rwx",
                "mask::rw-",
                "other::---"
            ],
            "{format}"
        );
        // A subdirectory inherits the default ACL as its own default too.
        let default = [
            "user::rwx",
            u.as_str(),
            "group::rwx",
            "mask::rwx",
            "other::---",
        ];
        assert_eq!(acl(owner, &home, "-d", "shared/sub"), default, "{format}");
        assert_eq!(acl(owner, &home, "-a", "shared/sub"), default, "{format}");
        assert!(acl(owner, &home, "-d", "plaindir").is_empty(), "{format}");
        // The inherited ACL is enforced: the named user reads and lists
        // what the directory's owner made; nothing else.
        assert_eq!(ok_as(other, &home, "cat shared/f"), "hi\n", "{format}");
        ok_as(other, &home, "ls shared/sub");
        denied_as(other, &home, "echo x > shared/f");
        denied_as(other, &home, "cat plain");
        assert!(
            xattr_names(&vol.backing("home/shared/f"))
                .contains(&"system.posix_acl_access".to_owned()),
            "{format}"
        );
        m.unmount();
    }
}

/// Runs fallocate(1) with `args` on `file` as `uid`.
fn fallocate_as(uid: u32, dir: &Path, args: &str, file: &str) {
    ok_as(uid, dir, &format!("fallocate {args} {file}"));
}

#[test]
fn an_unprivileged_fallocate_or_punch_hole_clears_set_id_bits_at_once() {
    require_fuse!();
    let other = identity::unused_id(3_330_000);
    let kmsd = KmsdProcess::start();
    for (format, vol) in volumes(&kmsd) {
        let m = vol.mount(&["-o", "allow_other"]);
        let home = home_of(&vol, 0);
        let f = home.join("f");
        std::fs::write(&f, vec![7u8; 20_000]).unwrap();
        // The writer is in the file's group: Linux (since 6.2) also clears
        // a set-group-id without group execute for writers outside it.
        std::os::unix::fs::chown(&f, None, Some(other)).unwrap();
        let setid = |bits: u32| {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(bits)).unwrap();
            // Cached by the kernel now, for the attribute timeout.
            assert_eq!(mode(&f), bits, "{format}");
        };
        for args in ["-l 40000", "-p -o 0 -l 4096", "-n -o 0 -l 80000"] {
            setid(0o6777);
            fallocate_as(other, &home, args, "f");
            assert_eq!(mode(&f), 0o777, "{format}: fallocate {args}");
            // Without group execute, set-group-id means mandatory locking
            // and stays.
            setid(0o6766);
            fallocate_as(other, &home, args, "f");
            assert_eq!(mode(&f), 0o2766, "{format}: fallocate {args}");
            // Root has CAP_FSETID: nothing is cleared.
            setid(0o6777);
            fallocate_as(0, &home, args, "f");
            assert_eq!(mode(&f), 0o6777, "{format}: root's fallocate {args}");
        }
        let data = std::fs::read(&f).unwrap();
        assert_eq!(data.len(), 40_000, "{format}");
        assert!(data[..4096].iter().all(|b| *b == 0), "{format}: the hole");
        assert!(data[4096..20_000].iter().all(|b| *b == 7), "{format}");
        m.unmount();
    }
}

#[test]
fn an_unprivileged_direct_or_buffered_write_clears_setuid_at_once() {
    require_fuse!();
    let other = identity::unused_id(3_340_000);
    let kmsd = KmsdProcess::start();
    for (format, vol) in volumes(&kmsd) {
        let m = vol.mount(&["-o", "allow_other"]);
        let home = home_of(&vol, 0);
        let f = home.join("f");
        std::fs::write(&f, vec![7u8; 8192]).unwrap();
        let writes = [
            "dd if=/dev/zero of=f bs=4096 count=1 oflag=direct conv=notrunc status=none",
            "printf x | dd of=f bs=1 seek=5000 conv=notrunc status=none",
        ];
        for w in writes {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4777)).unwrap();
            assert_eq!(mode(&f), 0o4777, "{format}");
            ok_as(other, &home, w);
            assert_eq!(mode(&f), 0o777, "{format}: {w}");
        }
        let data = std::fs::read(&f).unwrap();
        assert!(data[..4096].iter().all(|b| *b == 0), "{format}");
        assert_eq!(data[5000], b'x', "{format}");
        m.unmount();
    }
}
