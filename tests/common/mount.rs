//! kmsfs test harness: a volume in a temporary directory, bound to a key in
//! a real kmsd, and a mount of it that is ALWAYS unmounted by its guard
//! (`fusermount3 -u`, then `umount -l`), on drop and on panic, with the
//! mount process stopped by pid.
//!
//! Use from a test file with
//! `mod common; #[path = "common/mount.rs"] mod mount;`.
#![allow(dead_code)]

use crate::common::{KmsdProcess, bin};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when this process may mount FUSE filesystems (root and /dev/fuse).
pub fn fuse_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/dev/fuse").exists()
}

/// Fails the calling test without root and /dev/fuse: a test that cannot
/// run must not report a pass it did not earn (CI runs as root).
#[macro_export]
macro_rules! require_fuse {
    () => {
        assert!(
            $crate::mount::fuse_available(),
            "this test needs root and /dev/fuse and cannot run here: run the suite as root \
             (CI does); it fails rather than pass without running"
        );
    };
}

/// A kmsfs volume: `<tmp>/cipher` bound to a fresh kmsd key, and an empty
/// mountpoint `<tmp>/mnt`. Control sockets and logs go to `<tmp>/run`.
pub struct Volume {
    pub tmp: tempfile::TempDir,
    pub cipherdir: PathBuf,
    pub mountpoint: PathBuf,
    pub runtime: PathBuf,
    pub socket: PathBuf,
    pub key_arn: String,
}

impl Volume {
    /// Creates a key in `kmsd` and runs `kmsfs init` with it.
    pub fn create(kmsd: &KmsdProcess) -> Volume {
        let key = kmsd.create_key("kmsfs test volume");
        Volume::create_with_key(&kmsd.socket, &key.arn)
    }

    pub fn create_with_key(socket: &Path, key: &str) -> Volume {
        Volume::create_with(socket, key, &[], |_| {})
    }

    /// A volume made with extra `kmsfs init` arguments (`--format 1`,
    /// `--plaintext-names`).
    pub fn create_init(kmsd: &KmsdProcess, init_args: &[&str]) -> Volume {
        let key = kmsd.create_key("kmsfs test volume");
        Volume::create_with(&kmsd.socket, &key.arn, init_args, |_| {})
    }

    /// A volume whose cipher directory is a tmpfs of `kib` KiB (a disk
    /// that fills up); the guard unmounts it. Drop the guard last.
    pub fn create_on_tmpfs(kmsd: &KmsdProcess, kib: u64) -> (Volume, TmpfsGuard) {
        let key = kmsd.create_key("kmsfs test volume on a small disk");
        let mut guard = None;
        let vol = Volume::create_with(&kmsd.socket, &key.arn, &[], |cipher| {
            guard = Some(TmpfsGuard::mount(cipher, kib));
        });
        (vol, guard.expect("tmpfs mounted"))
    }

    /// A volume whose cipher directory is an ext4 file system of `mib` MiB
    /// in a loop-mounted image (`mkfs.ext4 mkfs_options`), or `None`
    /// when this machine cannot make or loop-mount one. The guard unmounts
    /// it; drop it last.
    pub fn create_on_ext4(
        kmsd: &KmsdProcess,
        mib: u64,
        mkfs_options: &[&str],
    ) -> Option<(Volume, LoopGuard)> {
        let key = kmsd.create_key("kmsfs test volume on ext4");
        let mut guard = None;
        let vol = Volume::create_with(&kmsd.socket, &key.arn, &[], |cipher| {
            guard = LoopGuard::ext4(cipher, mib, mkfs_options);
        });
        Some((vol, guard?))
    }

    /// Creates the volume; `prepare` runs on the empty cipher directory
    /// before `kmsfs init`.
    fn create_with(
        socket: &Path,
        key: &str,
        init_args: &[&str],
        prepare: impl FnOnce(&Path),
    ) -> Volume {
        let tmp = tempfile::Builder::new()
            .prefix("kmsfs-test-")
            .tempdir()
            .expect("tempdir");
        let v = Volume {
            cipherdir: tmp.path().join("cipher"),
            mountpoint: tmp.path().join("mnt"),
            runtime: tmp.path().join("run"),
            socket: socket.to_path_buf(),
            key_arn: key.to_string(),
            tmp,
        };
        std::fs::create_dir(&v.cipherdir).expect("mkdir cipher");
        std::fs::create_dir(&v.mountpoint).expect("mkdir mnt");
        prepare(&v.cipherdir);
        let out = v
            .kmsfs()
            .arg("init")
            .arg(&v.cipherdir)
            .arg("--key-id")
            .arg(key)
            .args(crate::common::aws_mode::kmsfs_args(socket))
            .args(init_args)
            .output()
            .expect("run kmsfs init");
        assert!(out.status.success(), "kmsfs init failed: {}", text(&out));
        v
    }

    /// The arguments that point a kmsfs command at this volume's kmsd: its
    /// socket, or in AWS mode (`KMSFS_TEST_KMS=aws`) its AWS endpoint.
    pub fn kms_args(&self) -> Vec<std::ffi::OsString> {
        crate::common::aws_mode::kmsfs_args(&self.socket)
    }

    /// A `kmsfs` command with this volume's runtime directory (and in AWS
    /// mode the access key in its environment).
    pub fn kmsfs(&self) -> Command {
        let mut c = Command::new(bin("kmsfs"));
        crate::common::aws_mode::kmsfs_env(&self.socket, &mut c);
        c.env("KMSFS_RUNTIME_DIR", &self.runtime)
            .env(
                "KMSFS_LOG",
                std::env::var("KMSFS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null());
        c
    }

    /// Runs `kmsfs mount` (background mode) with `args`; the output, for
    /// tests of failures. A mount that did succeed is unmounted again.
    pub fn try_mount(&self, args: &[&str]) -> Output {
        let out = self.mount_command(args).output().expect("run kmsfs mount");
        if out.status.success() {
            drop(MountGuard::adopt(self));
        }
        out
    }

    fn mount_command(&self, args: &[&str]) -> Command {
        let mut c = self.kmsfs();
        c.arg("mount")
            .arg(&self.cipherdir)
            .arg(&self.mountpoint)
            .args(self.kms_args())
            .args(args);
        c
    }

    /// Mounts; panics with kmsfs's message if that fails.
    pub fn mount(&self, args: &[&str]) -> MountGuard<'_> {
        let out = self.mount_command(args).output().expect("run kmsfs mount");
        assert!(out.status.success(), "kmsfs mount failed: {}", text(&out));
        MountGuard::adopt(self)
    }

    /// `kmsfs status --json` of the mount, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self
            .kmsfs()
            .arg("status")
            .arg("--json")
            .arg(&self.mountpoint)
            .output()
            .expect("run kmsfs status");
        assert!(out.status.success(), "kmsfs status failed: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// `kmsfs fsck` of the cipher directory (not mounted meanwhile).
    pub fn fsck(&self) -> Output {
        self.kmsfs()
            .arg("fsck")
            .arg(&self.cipherdir)
            .args(self.kms_args())
            .output()
            .expect("run kmsfs fsck")
    }

    /// The background mount's log so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(rd) = std::fs::read_dir(&self.runtime) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        s
    }

    /// The backing (cipher) path of a path inside the volume: `kmsfs
    /// backing-path` (names encrypted as the mount stores them; needs
    /// kmsd), else, when kmsd is down, the file the mount shows with the
    /// same inode number (kmsfs passes backing inode numbers through).
    pub fn backing(&self, rel: &str) -> PathBuf {
        let out = self
            .kmsfs()
            .arg("backing-path")
            .arg(&self.cipherdir)
            .arg(rel)
            .args(self.kms_args())
            .output()
            .expect("run kmsfs backing-path");
        if out.status.success() {
            let p = std::ffi::OsStr::from_bytes(out.stdout.trim_ascii_end());
            return self.cipherdir.join(p);
        }
        assert!(
            is_mounted(&self.mountpoint),
            "kmsfs backing-path failed and nothing is mounted: {}",
            text(&out)
        );
        let ino = std::os::unix::fs::MetadataExt::ino(
            &std::fs::symlink_metadata(self.path(rel)).expect("stat on the mount"),
        );
        find_ino(&self.cipherdir, ino)
            .unwrap_or_else(|| panic!("no backing file with inode {ino} for {rel}"))
    }

    /// The path inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel)
    }
}

/// The path under `dir` whose inode number is `ino` (kmsfs's own files
/// left out).
fn find_ino(dir: &Path, ino: u64) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name();
        if name.as_encoded_bytes().starts_with(b"kmsfs.")
            && !name.as_encoded_bytes().starts_with(b"kmsfs.long.")
        {
            continue;
        }
        if name.as_encoded_bytes().ends_with(b".name") {
            continue;
        }
        let m = e.path().symlink_metadata().ok()?;
        if std::os::unix::fs::MetadataExt::ino(&m) == ino {
            return Some(e.path());
        }
        if m.is_dir()
            && let Some(p) = find_ino(&e.path(), ino)
        {
            return Some(p);
        }
    }
    None
}

/// A tmpfs mounted by a test; unmounted (lazily if busy) on drop.
pub struct TmpfsGuard(PathBuf);

impl TmpfsGuard {
    /// Mounts a tmpfs of `kib` KiB on the existing directory `dir`.
    pub fn mount(dir: &Path, kib: u64) -> TmpfsGuard {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "kms-test"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount a tmpfs on {}", dir.display());
        TmpfsGuard(dir.to_path_buf())
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// An ext4 image loop-mounted by a test; unmounted (lazily if busy) and
/// its image removed on drop.
pub struct LoopGuard {
    dir: PathBuf,
    image: PathBuf,
}

impl LoopGuard {
    /// Makes an ext4 image of `mib` MiB beside `dir` and mounts it on
    /// `dir` (its `lost+found` removed, so the directory is empty); `None`
    /// when mkfs.ext4 or the loop mount is not available.
    pub fn ext4(dir: &Path, mib: u64, mkfs_options: &[&str]) -> Option<LoopGuard> {
        let image = dir.with_extension("ext4.img");
        let f = std::fs::File::create(&image).ok()?;
        f.set_len(mib << 20).ok()?;
        drop(f);
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .args(mkfs_options)
            .arg(&image)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mounted = made
            && Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_file(&image);
            return None;
        }
        let _ = std::fs::remove_dir(dir.join("lost+found"));
        Some(LoopGuard {
            dir: dir.to_path_buf(),
            image,
        })
    }
}

impl Drop for LoopGuard {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

/// A mounted volume. Dropping it unmounts (`fusermount3 -u`, falling back
/// to `umount -l`) and stops the mount process by pid.
pub struct MountGuard<'a> {
    vol: &'a Volume,
    pub pid: Option<u32>,
    done: bool,
}

impl<'a> MountGuard<'a> {
    /// Takes charge of the mount at the volume's mountpoint.
    pub fn adopt(vol: &'a Volume) -> MountGuard<'a> {
        let mut g = MountGuard {
            vol,
            pid: None,
            done: false,
        };
        g.pid = g.status_pid();
        g
    }

    fn status_pid(&self) -> Option<u32> {
        let out = self
            .vol
            .kmsfs()
            .arg("status")
            .arg("--json")
            .arg(&self.vol.mountpoint)
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["pid"].as_u64().map(|p| p as u32)
    }

    /// Unmounts through `kmsfs umount` and checks it worked; the guard then
    /// has nothing left to do.
    pub fn unmount(mut self) {
        // `kmsfs umount` itself retries a mount that is busy for a moment
        // right after the last close (FUSE sends RELEASE asynchronously).
        let out = self
            .vol
            .kmsfs()
            .arg("umount")
            .arg(&self.vol.mountpoint)
            .output()
            .expect("run kmsfs umount");
        assert!(out.status.success(), "kmsfs umount failed: {}", text(&out));
        assert!(
            !is_mounted(&self.vol.mountpoint),
            "still mounted after umount"
        );
        if let Some(pid) = self.pid {
            assert!(
                wait_exit(pid, Duration::from_secs(10)),
                "mount process {pid} did not exit"
            );
        }
        self.done = true;
    }

    fn cleanup(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let mp = &self.vol.mountpoint;
        if is_mounted(mp) {
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(mp)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(mp).status();
            }
        }
        let Some(pid) = self.pid else { return };
        if !wait_exit(pid, Duration::from_secs(5)) {
            signal(pid, libc::SIGTERM);
            if !wait_exit(pid, Duration::from_secs(5)) {
                signal(pid, libc::SIGKILL);
                wait_exit(pid, Duration::from_secs(5));
            }
        }
    }
}

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Whether `mp` is a mountpoint now (per /proc/self/mountinfo).
pub fn is_mounted(mp: &Path) -> bool {
    let mp = std::fs::canonicalize(mp).unwrap_or_else(|_| mp.to_path_buf());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mp.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|p| p == want))
}

/// Waits for process `pid` to exit (zombies count as exited).
pub fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
            .flatten()
            .is_some_and(|c| c != 'Z' && c != 'X');
        if !alive {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// stdout and stderr of a command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {}; stdout: {}; stderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout).trim(),
        String::from_utf8_lossy(&o.stderr).trim()
    )
}

/// Whether `needle` occurs anywhere in the files under `dir` (recursively).
pub fn tree_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                if data.windows(needle.len()).any(|w| w == needle) {
                    return Some(p);
                }
            }
        }
    }
    None
}
