//! The fstab mount helper: with `/sbin/mount.fuse.kmsfs` a symlink to
//! kmsfs, a line `CIPHERDIR MOUNTPOINT fuse.kmsfs key=...,socket=...,
//! allow_other` mounts with `mount -a -T FSTAB` and `mount -T FSTAB
//! MOUNTPOINT` (util-linux's mount running the helper), and `umount
//! MOUNTPOINT` unmounts; bad options fail with their name; the helper's
//! own argument errors are messages and exit status 1, not panics.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::{KmsdProcess, bin};
use mount::{MountGuard, Volume, is_mounted, text, tree_contains, wait_exit};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Where util-linux looks first for the helper of type `fuse.kmsfs`.
const HELPER: &str = "/sbin/mount.fuse.kmsfs";

/// `/sbin/mount.fuse.kmsfs` pointing at this build's kmsfs while the
/// guard lives. Test runs on this machine take turns (a lock file); a
/// symlink already there (an installed helper, or one a killed run left)
/// is put back on drop; a regular file there is never replaced.
struct HelperGuard {
    previous: Option<PathBuf>,
    _lock: std::fs::File,
}

impl HelperGuard {
    fn install() -> HelperGuard {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("kms-suite-mount.fuse.kmsfs.lock"))
            .expect("open the helper lock file");
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        let previous = match std::fs::symlink_metadata(HELPER) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot inspect {HELPER}: {e}"),
            Ok(m) if m.file_type().is_symlink() => {
                Some(std::fs::read_link(HELPER).expect("read the existing helper symlink"))
            }
            Ok(_) => panic!(
                "{HELPER} exists and is not a symlink (an installed copy?): this test \
                 will not overwrite it; move it away to run the test"
            ),
        };
        place_symlink(&bin("kmsfs"));
        HelperGuard {
            previous,
            _lock: lock,
        }
    }
}

/// Makes HELPER a symlink to `target`, replacing a symlink atomically.
fn place_symlink(target: &Path) {
    let tmp = format!("{HELPER}.kms-test-{}", std::process::id());
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).expect("create the helper symlink");
    std::fs::rename(&tmp, HELPER).expect("put the helper symlink in place");
}

impl Drop for HelperGuard {
    fn drop(&mut self) {
        match &self.previous {
            Some(p) => place_symlink(p),
            None => {
                let _ = std::fs::remove_file(HELPER);
            }
        }
    }
}

/// An fstab line for the volume, through its own kmsd socket.
fn fstab_line(vol: &Volume, options: &str) -> String {
    format!(
        "{} {} fuse.kmsfs {options} 0 0\n",
        vol.cipherdir.display(),
        vol.mountpoint.display()
    )
}

/// `mount`/`umount` with the volume's runtime directory (the helper's
/// kmsfs puts its control socket and log there).
fn util(vol: &Volume, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("KMSFS_RUNTIME_DIR", &vol.runtime)
        .env("KMSFS_LOG", "info")
        .stdin(Stdio::null());
    c
}

/// The mountinfo line of `mp`, split into fields.
fn mountinfo(mp: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = mp.display().to_string().replace(' ', "\\040");
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .unwrap_or_else(|| panic!("{} is not in mountinfo", mp.display()))
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// Writes and reads a file through the mount; its backing holds ciphertext.
fn check_encrypting(vol: &Volume, name: &str, secret: &[u8]) {
    std::fs::write(vol.path(name), secret).unwrap();
    assert_eq!(std::fs::read(vol.path(name)).unwrap(), secret);
    assert_eq!(
        tree_contains(&vol.cipherdir, secret),
        None,
        "the plaintext is in the backing directory"
    );
    let stored = std::fs::read(vol.backing(name)).unwrap();
    assert!(
        stored.len() > secret.len(),
        "no ciphertext stored for {name}"
    );
}

/// A mount made through mount(8), adopted by the shared guard. On a
/// failure `umount` runs first, so mount(8)'s own table (/run/mount/utab,
/// where it keeps `_netdev` and `x-*`) does not keep the entry; the
/// shared guard (`fusermount3 -u`, `umount -l`, the process stopped by
/// pid) then does the rest.
struct FstabMount<'a> {
    guard: Option<MountGuard<'a>>,
    vol: &'a Volume,
}

impl<'a> FstabMount<'a> {
    fn adopt(vol: &'a Volume) -> FstabMount<'a> {
        FstabMount {
            guard: Some(MountGuard::adopt(vol)),
            vol,
        }
    }
}

impl Drop for FstabMount<'_> {
    fn drop(&mut self) {
        if is_mounted(&self.vol.mountpoint) {
            let _ = util(self.vol, "umount")
                .arg(&self.vol.mountpoint)
                .stderr(Stdio::null())
                .status();
        }
        drop(self.guard.take());
    }
}

/// `umount MOUNTPOINT`: the mount goes and so does its process.
fn umount(vol: &Volume, m: FstabMount<'_>) {
    let pid = m
        .guard
        .as_ref()
        .and_then(|g| g.pid)
        .expect("the mount reports its pid");
    let out = util(vol, "umount")
        .arg(&vol.mountpoint)
        .output()
        .expect("run umount");
    assert!(out.status.success(), "umount: {}", text(&out));
    assert!(!is_mounted(&vol.mountpoint), "still mounted after umount");
    assert!(
        wait_exit(pid, Duration::from_secs(10)),
        "the mount process {pid} outlived umount"
    );
    drop(m);
}

#[test]
fn an_fstab_line_mounts_with_mount_and_goes_with_umount() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    kmsd.client()
        .call(kmsd_client::CreateAliasRequest {
            alias_name: "alias/fstab-test".into(),
            target_key_id: vol.key_arn.clone(),
        })
        .expect("create alias");
    let _helper = HelperGuard::install();
    let tab = vol.tmp.path().join("fstab");
    // The options of the README's line, plus ones mount(8) and systemd
    // read that the helper must drop.
    let options = format!(
        "key=alias/fstab-test,socket={},allow_other,_netdev,nofail,\
         x-systemd.requires=kmsd.service,noatime",
        kmsd.socket.display()
    );
    std::fs::write(&tab, fstab_line(&vol, &options)).unwrap();

    // At boot: mount -a.
    let out = util(&vol, "mount")
        .arg("-a")
        .arg("-T")
        .arg(&tab)
        .output()
        .expect("run mount -a");
    assert!(out.status.success(), "mount -a -T: {}", text(&out));
    assert!(
        is_mounted(&vol.mountpoint),
        "mount -a succeeded but nothing is mounted"
    );
    let guard = FstabMount::adopt(&vol);
    let status = vol.status();
    assert_eq!(status["key_arn"].as_str(), Some(vol.key_arn.as_str()));
    assert_eq!(
        status["kms"].as_str(),
        Some(format!("kmsd at {}", kmsd.socket.display()).as_str())
    );
    let fields = mountinfo(&vol.mountpoint);
    let sep = fields
        .iter()
        .position(|f| f == "-")
        .expect("mountinfo separator");
    // A root mount is made with mount(2) directly, where fuser leaves the
    // subtype out ("fuse"); through fusermount3 it is "fuse.kmsfs".
    assert!(
        ["fuse", "fuse.kmsfs"].contains(&fields[sep + 1].as_str()),
        "{fields:?}"
    );
    assert_eq!(
        fields[sep + 2],
        vol.cipherdir.display().to_string(),
        "{fields:?}"
    );
    assert!(fields[5].split(',').any(|o| o == "noatime"), "{fields:?}");
    assert!(
        fields[sep + 3].split(',').any(|o| o == "allow_other"),
        "{fields:?}"
    );
    let secret = b"mounted from fstab, plaintext 8d2e";
    check_encrypting(&vol, "a.txt", secret);
    // mount -a again: the line is mounted already, nothing happens.
    let out = util(&vol, "mount")
        .arg("-a")
        .arg("-T")
        .arg(&tab)
        .output()
        .expect("run mount -a");
    assert!(out.status.success(), "second mount -a -T: {}", text(&out));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mp = vol.mountpoint.display().to_string();
    assert_eq!(
        info.lines()
            .filter(|l| l.split(' ').nth(4) == Some(mp.as_str()))
            .count(),
        1,
        "mount -a mounted the line twice"
    );
    umount(&vol, guard);

    // By hand: mount MOUNTPOINT (looked up in the fstab given).
    let out = util(&vol, "mount")
        .arg("-T")
        .arg(&tab)
        .arg(&vol.mountpoint)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount -T FSTAB MOUNTPOINT: {}",
        text(&out)
    );
    let guard = FstabMount::adopt(&vol);
    assert_eq!(std::fs::read(vol.path("a.txt")).unwrap(), secret);
    check_encrypting(&vol, "b.txt", b"second mount, plaintext 41aa");
    umount(&vol, guard);
}

#[test]
fn a_bad_fstab_option_fails_the_mount_and_names_the_option() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _helper = HelperGuard::install();
    let tab = vol.tmp.path().join("fstab");
    std::fs::write(
        &tab,
        fstab_line(
            &vol,
            &format!(
                "key={},socket={},frobnicate=3",
                vol.key_arn,
                kmsd.socket.display()
            ),
        ),
    )
    .unwrap();
    let out = util(&vol, "mount")
        .arg("-T")
        .arg(&tab)
        .arg(&vol.mountpoint)
        .output()
        .expect("run mount");
    if out.status.success() {
        drop(MountGuard::adopt(&vol));
        panic!("a mount with an unknown option succeeded: {}", text(&out));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("frobnicate"), "{}", text(&out));
    assert!(!is_mounted(&vol.mountpoint));

    // A setting without its value: the helper refuses it itself.
    std::fs::write(
        &tab,
        fstab_line(&vol, &format!("key,socket={}", kmsd.socket.display())),
    )
    .unwrap();
    let out = util(&vol, "mount")
        .arg("-T")
        .arg(&tab)
        .arg(&vol.mountpoint)
        .output()
        .expect("run mount");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mount.fuse.kmsfs: option key needs a value"),
        "{}",
        text(&out)
    );
    assert!(!is_mounted(&vol.mountpoint));
}

/// The helper run directly, through a symlink of that name in a temp dir.
fn helper(dir: &Path, name: &str, args: &[&str]) -> Output {
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(bin("kmsfs"), &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the helper")
}

#[test]
fn the_helpers_own_errors_are_messages_with_exit_status_1() {
    let t = tempfile::tempdir().unwrap();
    for (args, want) in [
        (vec!["/c"], "the mountpoint (TARGET) is missing"),
        (vec![], "the cipher directory (SOURCE) is missing"),
        (vec!["/c", "/m", "-o", "key"], "option key needs a value"),
        (vec!["/c", "/m", "-o"], "option -o needs a value"),
        (vec!["/c", "/m", "-x"], "unknown option -x"),
        (vec!["/c", "/m", "/extra"], "unexpected argument /extra"),
    ] {
        let out = helper(t.path(), "mount.fuse.kmsfs", &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            err.starts_with("mount.fuse.kmsfs: ") && err.contains(want),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!err.contains("panicked"), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_fake_mount_prints_the_kmsfs_command_and_mounts_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (c, m) = (t.path().join("c"), t.path().join("m"));
    std::fs::create_dir(&c).unwrap();
    std::fs::create_dir(&m).unwrap();
    let (cs, ms) = (c.display().to_string(), m.display().to_string());
    for name in ["mount.fuse.kmsfs", "mount.kmsfs"] {
        let out = helper(
            t.path(),
            name,
            &[
                &cs,
                &ms,
                "-f",
                "-n",
                "-o",
                "key=alias/x,socket=/run/kmsd/kmsd.sock,allow_other,_netdev,x-systemd.automount,cache_ttl=30",
            ],
        );
        assert!(out.status.success(), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "kmsfs mount {cs} {ms} --key-id alias/x --socket /run/kmsd/kmsd.sock \
                 --cache-ttl 30 -o allow_other"
            )),
            "{name}: {}",
            text(&out)
        );
        assert!(!is_mounted(&m));
    }
    // Under another name the binary is kmsfs as usual.
    let out = helper(t.path(), "kmsfs", &["--version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("kmsfs "));
}
