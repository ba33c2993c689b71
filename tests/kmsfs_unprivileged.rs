//! An unprivileged user initialises, mounts (through the setuid
//! `fusermount3`, as gocryptfs users do), uses, unmounts and remounts a
//! volume, holding only a grant on the key. The test runs as root: it makes
//! the user, lets the user's group open `/dev/fuse` (this machine's device
//! is 0600 root; desktops have 0666), and undoes both on drop, also on
//! panic, along with any mount the user left behind.

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/mount.rs"]
mod mount;

use common::{KmsdProcess, bin};
use identity::TestAccounts;
use kmsd_client::CreateGrantRequest;
use mount::{is_mounted, text, tree_contains, wait_exit};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const DEV_FUSE: &str = "/dev/fuse";

/// Held while one test has changed `/dev/fuse`: the tests of this file run
/// in parallel, and each lets its own group in.
static DEV_FUSE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Lets one group read and write `/dev/fuse`; restores owner group and mode
/// on drop. One at a time (`DEV_FUSE_LOCK`).
struct DevFuseAccess {
    gid: u32,
    mode: u32,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl DevFuseAccess {
    fn grant(gid: u32) -> DevFuseAccess {
        let lock = DEV_FUSE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let md = std::fs::metadata(DEV_FUSE).expect("stat /dev/fuse");
        let saved = DevFuseAccess {
            gid: md.gid(),
            mode: md.mode() & 0o7777,
            _one_at_a_time: lock,
        };
        std::os::unix::fs::chown(DEV_FUSE, None, Some(gid)).expect("chgrp /dev/fuse");
        std::fs::set_permissions(
            DEV_FUSE,
            std::fs::Permissions::from_mode(saved.mode | 0o060),
        )
        .expect("chmod /dev/fuse");
        saved
    }
}

impl Drop for DevFuseAccess {
    fn drop(&mut self) {
        let _ = std::os::unix::fs::chown(DEV_FUSE, None, Some(self.gid));
        let _ = std::fs::set_permissions(DEV_FUSE, std::fs::Permissions::from_mode(self.mode));
    }
}

/// The user and the places the user works in.
struct User {
    uid: u32,
    gid: u32,
    home: PathBuf,
    socket: PathBuf,
}

impl User {
    /// `program` run as the user (no supplementary groups) in its home.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid)
            .gid(self.gid)
            .current_dir(&self.home)
            .env("KMSFS_RUNTIME_DIR", self.home.join("run"))
            // root's PATH (/root/.cargo/bin, ...) is not the user's: fuser
            // finds fusermount3 through PATH, and an entry the user cannot
            // search ends the lookup with EACCES.
            .env(
                "PATH",
                "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            )
            .env("KMSFS_LOG", "info")
            .stdin(Stdio::null());
        c
    }

    fn kmsfs(&self, args: &[&str]) -> Output {
        self.cmd(bin("kmsfs"))
            .args(args)
            .output()
            .expect("run kmsfs as the user")
    }

    /// A shell script as the user; panics with its output if it fails.
    fn sh(&self, script: &str) -> String {
        let out = self
            .cmd("sh")
            .args(["-euc", script])
            .output()
            .expect("run sh as the user");
        assert!(out.status.success(), "script failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn mount(&self) -> u32 {
        self.mount_with(&[])
    }

    /// Mounts `c` at `m` with more `kmsfs mount` arguments; the mount's pid.
    fn mount_with(&self, args: &[&str]) -> u32 {
        let socket = self.socket.to_string_lossy();
        let mut all = vec!["mount", "c", "m", "--socket", &socket];
        all.extend_from_slice(args);
        let out = self.kmsfs(&all);
        assert!(out.status.success(), "mount as the user: {}", text(&out));
        let out = self.kmsfs(&["status", "--json", "m"]);
        assert!(out.status.success(), "status as the user: {}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
        v["pid"].as_u64().expect("status pid") as u32
    }
}

/// Whatever the user left mounted is unmounted (fusermount3 -u, then
/// umount -l) and its process stopped by pid, on drop and on panic.
struct Leftovers {
    mountpoint: PathBuf,
    pids: Vec<u32>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if is_mounted(&self.mountpoint) {
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mountpoint)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .status();
            }
        }
        for &pid in &self.pids {
            if !wait_exit(pid, Duration::from_secs(5)) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                wait_exit(pid, Duration::from_secs(5));
            }
        }
    }
}

/// Deterministic non-repeating bytes (a plaintext to look for later).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

const SIZES: [usize; 6] = [0, 1, 4095, 4096, 4097, (1 << 20) + 3];

/// A test user and group, a world-searchable temp dir, and a kmsd whose
/// socket other users may connect to. Fields drop in order: kmsd, the
/// directory, then the accounts.
struct Setup {
    kmsd: KmsdProcess,
    dir: tempfile::TempDir,
    uid: u32,
    gid: u32,
    _accounts: TestAccounts,
}

impl Setup {
    fn new(prefix: &str) -> Setup {
        let name = format!("{prefix}{}", std::process::id());
        let mut accounts = TestAccounts::new();
        let gid = accounts.add_group(&name);
        let uid = accounts.add_user(&name, &name, &[]);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let kmsd = KmsdProcess::start_at(
            &dir.path().join("state"),
            &dir.path().join("kmsd.sock"),
            &["--socket-mode", "666"],
        );
        Setup {
            kmsd,
            dir,
            uid,
            gid,
            _accounts: accounts,
        }
    }

    /// Grants the user `ops` on `key`; the grant's id.
    fn grant(&self, key: &str, ops: &[&str]) -> String {
        self.kmsd
            .client()
            .call(CreateGrantRequest {
                key_id: key.into(),
                grantee_principal: format!("uid:{}", self.uid),
                retiring_principal: None,
                operations: ops.iter().map(|s| s.to_string()).collect(),
                constraints: None,
                name: None,
                grant_tokens: vec![],
            })
            .expect("grant the user the key")
            .grant_id
    }

    /// The user's home with `subdirs`, all owned by the user.
    fn home(&self, subdirs: &[&str], prepare: impl FnOnce(&Path)) -> User {
        let home = self.dir.path().join("home");
        for sub in subdirs {
            std::fs::create_dir_all(home.join(sub)).unwrap();
        }
        prepare(&home);
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(&home)
            .status()
            .expect("chown");
        assert!(st.success());
        User {
            uid: self.uid,
            gid: self.gid,
            home,
            socket: self.kmsd.socket.clone(),
        }
    }
}

#[test]
fn an_unprivileged_user_mounts_through_fusermount3() {
    require_fuse!();
    let w = Setup::new("kfu");
    let _dev = DevFuseAccess::grant(w.gid);
    let kmsd = &w.kmsd;
    let uid = w.uid;
    let key = kmsd.create_key("the user's volume");
    // The user holds a grant for what kmsfs needs, nothing more.
    let _ = w.grant(&key.arn, &["DescribeKey", "GenerateDataKey", "Decrypt"]);
    let sources: Vec<(String, Vec<u8>)> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("f{n}"), pattern(n, i as u32 + 1)))
        .collect();
    let user = w.home(&["c", "m", "src"], |home| {
        for (name, data) in &sources {
            std::fs::write(home.join("src").join(name), data).unwrap();
        }
    });
    let home = user.home.clone();
    let mut left = Leftovers {
        mountpoint: home.join("m"),
        pids: vec![],
    };

    let out = user.kmsfs(&[
        "init",
        "c",
        "--key-id",
        &key.arn,
        "--socket",
        &kmsd.socket.to_string_lossy(),
    ]);
    assert!(out.status.success(), "init as the user: {}", text(&out));
    let mount_pid = user.mount();
    left.pids.push(mount_pid);
    assert!(is_mounted(&home.join("m")));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.contains(&*home.join("m").to_string_lossy()))
        .expect("the mount in mountinfo");
    assert!(
        line.contains(" fuse.kmsfs ") && line.contains(&format!("user_id={uid}")),
        "not a user mount made by fusermount3: {line}"
    );
    // The mount process runs as the user, not as root.
    let status = std::fs::read_to_string(format!("/proc/{mount_pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == uid.to_string()),
        "mount process ids: {uid_line}"
    );

    // The user works in the mount: copies at block edges, a partial
    // overwrite, a directory, a rename, a symlink; all read back equal.
    user.sh("cp src/* m/
         for f in src/*; do cmp \"$f\" \"m/${f#src/}\"; done
         mkdir m/d && mv m/f4097 m/d/moved && ln -s d/moved m/link
         cmp src/f4097 m/link
         printf 'XYZ' | dd of=m/f4096 bs=1 seek=4094 conv=notrunc status=none
         test \"$(stat -c %s m/f4096)\" = 4097
         test \"$(tail -c 3 m/f4096)\" = XYZ");
    // Without allow_other nobody else gets in, root included.
    let e = std::fs::metadata(home.join("m/f1")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "root saw the mount");
    // Backing files belong to the user and hold no plaintext.
    // (Names are encrypted: every backing entry, the config included.)
    let mut stack = vec![home.join("c")];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let m = e.path().symlink_metadata().unwrap();
            assert_eq!(m.uid(), uid, "{}", e.path().display());
            if m.is_dir() {
                stack.push(e.path());
            }
            seen += 1;
        }
    }
    assert!(seen > sources.len(), "{seen} backing entries");
    let big = &sources[5].1;
    assert_eq!(tree_contains(&home.join("c"), &big[1000..1064]), None);
    let out = user.kmsfs(&["status", "m"]);
    assert!(out.status.success(), "status: {}", text(&out));

    // Unmount as the user: fusermount3 -u, and the process exits.
    let out = user.kmsfs(&["umount", "m"]);
    assert!(out.status.success(), "umount as the user: {}", text(&out));
    assert!(!is_mounted(&home.join("m")));
    assert!(wait_exit(mount_pid, Duration::from_secs(10)));

    // Root decrypts the user's file offline (kmsd's admin may).
    let out = Command::new(bin("kmsfs"))
        .args(["cat", "--socket"])
        .arg(&kmsd.socket)
        .arg(home.join("c"))
        .arg("d/moved")
        .output()
        .unwrap();
    assert!(out.status.success(), "cat: {}", text(&out));
    assert_eq!(out.stdout, sources[4].1);

    // Remounted, everything is still there.
    let again = user.mount();
    left.pids.push(again);
    let listing = user.sh(
        "for f in src/f0 src/f1 src/f4095 src/f1048579; do cmp \"$f\" \"m/${f#src/}\"; done
         cmp src/f4097 m/d/moved
         head -c 4094 src/f4096 | cmp - m/f4096 -n 4094
         ls m",
    );
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["d", "f0", "f1", "f1048579", "f4095", "f4096", "link"]
    );
    let out = user.kmsfs(&["umount", "m"]);
    assert!(out.status.success(), "second umount: {}", text(&out));
    assert!(wait_exit(again, Duration::from_secs(10)));
    drop(left);
}

#[test]
fn a_user_without_dev_fuse_access_gets_a_clear_refusal() {
    require_fuse!();
    let mode = std::fs::metadata(DEV_FUSE).unwrap().mode() & 0o777;
    if mode & 0o006 == 0o006 {
        eprintln!("skipped: /dev/fuse is open to everyone here");
        return;
    }
    let w = Setup::new("kfn");
    let kmsd = &w.kmsd;
    let key = kmsd.create_key("a volume the user cannot mount");
    let user = w.home(&["c", "m"], |home| {
        // Root initialises; the user may use the key but not the device.
        let out = Command::new(bin("kmsfs"))
            .args(["init", "--key-id", &key.arn, "--socket"])
            .arg(&kmsd.socket)
            .arg(home.join("c"))
            .output()
            .unwrap();
        assert!(out.status.success(), "init: {}", text(&out));
    });
    let _ = w.grant(&key.arn, &["DescribeKey", "Decrypt"]);
    let home = user.home.clone();
    let _left = Leftovers {
        mountpoint: home.join("m"),
        pids: vec![],
    };
    let out = user.kmsfs(&[
        "mount",
        "c",
        "m",
        "--socket",
        &kmsd.socket.to_string_lossy(),
    ]);
    assert!(!out.status.success(), "mounted without /dev/fuse access");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/fuse") && err.contains("Permission denied"),
        "unclear refusal: {}",
        text(&out)
    );
    assert!(!is_mounted(&home.join("m")));
}

/// The value of `field` in /proc/<pid>/status, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

#[test]
fn a_users_mount_is_not_dumpable_so_no_user_reads_its_memory() {
    require_fuse!();
    let w = Setup::new("kfd");
    let _dev = DevFuseAccess::grant(w.gid);
    let key = w.kmsd.create_key("a volume whose process is hardened");
    let _ = w.grant(&key.arn, &["DescribeKey", "GenerateDataKey", "Decrypt"]);
    let user = w.home(&["c", "m"], |_| {});
    let mut left = Leftovers {
        mountpoint: user.home.join("m"),
        pids: vec![],
    };
    let out = user.kmsfs(&[
        "init",
        "c",
        "--key-id",
        &key.arn,
        "--socket",
        &w.kmsd.socket.to_string_lossy(),
    ]);
    assert!(out.status.success(), "init as the user: {}", text(&out));
    let pid = user.mount();
    left.pids.push(pid);
    // A data key in the process's memory: a file written and read back.
    user.sh("echo secret > m/f && test \"$(cat m/f)\" = secret");

    // The same user's ordinary processes have /proc entries of their own;
    // the non-dumpable mount's belong to root (all but the directory
    // itself, which the kernel leaves the process's, for ps).
    assert_eq!(
        user.sh("stat -c %u /proc/self/environ /proc/self/mem")
            .split_whitespace()
            .collect::<Vec<_>>(),
        [w.uid.to_string(), w.uid.to_string()]
    );
    for entry in ["environ", "mem", "maps", "fd"] {
        let p = format!("/proc/{pid}/{entry}");
        let md = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!((md.uid(), md.gid()), (0, 0), "{p} not root's");
    }
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        w.uid
    );
    // Neither the user nor another one may open its environment or memory
    // (the open fails; reading a readable mem at offset 0 would be EIO).
    let stranger = User {
        uid: identity::unused_id(3_400_000),
        gid: identity::unused_id(3_400_000),
        home: PathBuf::from("/"),
        socket: w.kmsd.socket.clone(),
    };
    for who in [&user, &stranger] {
        let own = who.cmd("cat").arg("/proc/self/environ").output().unwrap();
        assert!(own.status.success(), "uid {}: {}", who.uid, text(&own));
        for entry in ["environ", "mem"] {
            let out = who
                .cmd("cat")
                .arg(format!("/proc/{pid}/{entry}"))
                .env("LC_ALL", "C")
                .output()
                .unwrap();
            assert!(
                !out.status.success() && out.stdout.is_empty(),
                "uid {} read /proc/{pid}/{entry}",
                who.uid
            );
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
                "uid {}, {entry}: {}",
                who.uid,
                text(&out)
            );
        }
    }
    // Memory is locked only where that cannot make allocations fail: with
    // an unlimited RLIMIT_MEMLOCK; with a finite one the mount says so.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let memlock = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .and_then(|l| l.split_whitespace().nth(3))
        .expect("Max locked memory in limits");
    let locked = status_kb(pid, "VmLck");
    let log = std::fs::read_to_string(
        std::fs::read_dir(user.home.join("run"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .expect("the mount's log"),
    )
    .unwrap();
    if memlock == "unlimited" {
        assert!(locked > 0, "unlimited RLIMIT_MEMLOCK, yet VmLck is 0");
    } else {
        assert_eq!(locked, 0, "locked with a finite RLIMIT_MEMLOCK ({memlock})");
        assert!(
            log.contains(&format!(
                "not locking memory (RLIMIT_MEMLOCK is {memlock} bytes)"
            )),
            "{log}"
        );
    }
    let out = user.kmsfs(&["umount", "m"]);
    assert!(out.status.success(), "umount as the user: {}", text(&out));
    assert!(wait_exit(pid, Duration::from_secs(10)));
    drop(left);
}

/// The environment variable that makes [`grant_child`] do its work: the
/// directory it works in (the user's home).
const GRANT_CHILD_ENV: &str = "KMSFS_GRANT_CHILD";
const GRANT_CHILD_TEST: &str = "grant_child";
const GRANT_FILES: [&str; 3] = ["a", "b", "c"];

/// The child side of the revoked-grant test: in a normal run it returns
/// at once. Re-run as the mount's user with `KMSFS_GRANT_CHILD=<home>`, it
/// opens `m/a`, `m/b`, `m/c`, holds them open, and every 50 ms reads each
/// at offset 0 and opens `m/a` anew, appending one line to `<home>/seen`
/// whenever what it sees changes: `<ms since start> <errno of the open
/// files' reads> <errno of a new open>` (0: fine). It stops when `<home>/stop`
/// exists.
#[test]
fn grant_child() {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let Ok(home) = std::env::var(GRANT_CHILD_ENV) else {
        return;
    };
    let home = PathBuf::from(home);
    let open: Vec<std::fs::File> = GRANT_FILES
        .iter()
        .map(|f| std::fs::File::open(home.join("m").join(f)).expect("open as the user"))
        .collect();
    let mut seen = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("seen"))
        .expect("the log");
    let errno = |r: std::io::Result<()>| r.err().map_or(0, |e| e.raw_os_error().unwrap_or(-1));
    let t = std::time::Instant::now();
    let mut last = None;
    while !home.join("stop").exists() {
        let mut b = [0u8; 64];
        let reads = open
            .iter()
            .map(|f| errno(f.read_at(&mut b, 0).map(drop)))
            .max()
            .unwrap_or(0);
        let fresh = errno(std::fs::read(home.join("m/a")).map(drop));
        if last != Some((reads, fresh)) {
            writeln!(seen, "{} {reads} {fresh}", t.elapsed().as_millis()).expect("log");
            last = Some((reads, fresh));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last line of the child's log: (reads of open files, a new open).
fn child_sees(home: &Path) -> Option<(i32, i32)> {
    let log = std::fs::read_to_string(home.join("seen")).ok()?;
    let mut it = log.lines().last()?.split_whitespace().skip(1);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Polls until the child sees `want`; how long that took.
fn until_child_sees(home: &Path, want: (i32, i32), limit: Duration) -> Option<Duration> {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if child_sees(home) == Some(want) {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

#[test]
fn a_revoked_grant_stops_a_users_open_files_within_the_ttl_and_a_new_grant_restores_them() {
    require_fuse!();
    const TTL: u64 = 2;
    let w = Setup::new("kfg");
    let _dev = DevFuseAccess::grant(w.gid);
    let kmsd = &w.kmsd;
    let key = kmsd.create_key("a volume the user reaches through a grant only");
    let ops = ["DescribeKey", "GenerateDataKey", "Decrypt"];
    let grant = w.grant(&key.arn, &ops);
    let user = w.home(&["c", "m"], |_| {});
    let home = user.home.clone();
    let mut left = Leftovers {
        mountpoint: home.join("m"),
        pids: vec![],
    };
    // The user's only access to the key is the grant: without it, kmsd
    // refuses the user (the key policy names only the account's admin).
    let out = user.kmsfs(&[
        "init",
        "c",
        "--key-id",
        &key.arn,
        "--socket",
        &kmsd.socket.to_string_lossy(),
    ]);
    assert!(out.status.success(), "init as the user: {}", text(&out));
    let pid = user.mount_with(&["--cache-ttl", &TTL.to_string()]);
    left.pids.push(pid);
    user.sh("for f in a b c; do printf 'the content of %s' $f > m/$f; done");

    // The child holds the files open as the user (root cannot enter a
    // mount without allow_other).
    let who = identity::RunAs {
        uid: w.uid,
        gid: w.gid,
        process_groups: vec![],
    };
    let home_text = home.to_string_lossy().into_owned();
    let child = std::thread::spawn(move || {
        identity::rerun_test_as(
            &who,
            GRANT_CHILD_TEST,
            &[(GRANT_CHILD_ENV, &home_text)],
            Duration::from_secs(120),
        )
    });
    let stop = |home: &Path| std::fs::write(home.join("stop"), b"").unwrap();
    let ready = until_child_sees(&home, (0, 0), Duration::from_secs(30));
    if ready.is_none() {
        stop(&home);
        let o = child.join().unwrap();
        panic!(
            "the child never read its files: {}",
            o.map(|o| format!("{} {} {}", o.status, o.stdout, o.stderr))
                .unwrap_or_else(|e| e)
        );
    }

    kmsd.client()
        .call(kmsd_client::RevokeGrantRequest {
            key_id: key.arn.clone(),
            grant_id: grant,
        })
        .expect("revoke the grant");
    let limit = Duration::from_secs(TTL + 3);
    let refused = until_child_sees(&home, (libc::EACCES, libc::EACCES), limit);
    // A new grant: the mount serves again, no remount.
    let _ = w.grant(&key.arn, &ops);
    let back = until_child_sees(&home, (0, 0), Duration::from_secs(5));
    stop(&home);
    let o = child.join().unwrap().expect("the child ran");
    let log = std::fs::read_to_string(home.join("seen")).unwrap_or_default();
    assert!(o.status.success(), "child: {} {}", o.stdout, o.stderr);
    let refused = refused.unwrap_or_else(|| {
        panic!("open files still served {limit:?} after the revoke (TTL {TTL} s); seen:\n{log}")
    });
    eprintln!("revoked grant: open files and new opens refused after {refused:?} (TTL {TTL} s)");
    let back = back.unwrap_or_else(|| panic!("no service after a new grant; seen:\n{log}"));
    eprintln!("new grant: served again after {back:?}");
    // The same mount process throughout, and the content intact.
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the mount process went away"
    );
    assert_eq!(
        user.sh("cat m/a m/b m/c"),
        "the content of athe content of bthe content of c"
    );
    let out = user.kmsfs(&["umount", "m"]);
    assert!(out.status.success(), "umount as the user: {}", text(&out));
    assert!(wait_exit(pid, Duration::from_secs(10)));
    drop(left);
}
