//! Planted paths, end to end with the real binaries: what another user can
//! put where kmsctl, kmsfs and kmsd look, and that each refuses it.
//!
//! - A fake "kmsd" run by another user on a socket the client is pointed
//!   at: kmsctl reads the server's `SO_PEERCRED` and refuses it, naming
//!   its uid, before sending a byte; with that uid in `$KMSD_UID` it talks.
//! - A symlink or hard link planted at a background mount's log path: the
//!   mount fails with an error saying why and the target is untouched.
//! - kmsd's state dir and files are private (0700/0600, also when they
//!   existed with looser modes), a symlinked state dir is refused, the
//!   socket has exactly `--socket-mode` (0660 by default), and a symlink
//!   planted at the socket path is replaced, not followed.
//!
//! Needs root (to create users, switch to them, and mount).

mod common;
#[path = "common/identity.rs"]
mod identity;
#[path = "common/mount.rs"]
mod mount;

use common::{KmsdProcess, bin};
use identity::{RunAs, TestAccounts};
use mount::{Volume, is_mounted, text};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn require_root() {
    assert!(
        identity::is_root(),
        "this test needs root (to create users and switch to them) and cannot run here: \
         run the suite as root (CI does); it fails rather than pass without running"
    );
}

// ------------------------------------------------------------ fake kmsd

const FAKE_ENV: &str = "KMS_PLANTED_FAKE_KMSD_DIR";
const FAKE_TEST: &str = "fake_kmsd_child";
/// The fake server's socket inside its directory.
const FAKE_SOCKET: &str = "kmsd.sock";
/// Created by the parent when the fake server may stop.
const FAKE_STOP: &str = "stop";

/// The fake server: in a normal run it returns at once. Re-run as another
/// user with `KMS_PLANTED_FAKE_KMSD_DIR=<dir>`, it listens on
/// `<dir>/kmsd.sock` (mode 0666, moved into place only once listening),
/// prints its pid, and for each connection prints how many bytes the
/// client sent before closing or falling silent for a second. Never
/// answers. Stops when `<dir>/stop` appears (or after 60 s).
#[test]
fn fake_kmsd_child() {
    let Ok(dir) = std::env::var(FAKE_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let staging = dir.join("staging.sock");
    let listener = UnixListener::bind(&staging).expect("bind the fake socket");
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o666))
        .expect("chmod the fake socket");
    std::fs::rename(&staging, dir.join(FAKE_SOCKET)).expect("move the fake socket into place");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    println!("FAKE-PID {}", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join(FAKE_STOP).exists() && Instant::now() < deadline {
        let mut conn = match listener.accept() {
            Ok((c, _)) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        conn.set_nonblocking(false).expect("blocking connection");
        conn.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("read timeout");
        let mut got = 0usize;
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        println!("FAKE-CONN bytes={got}");
    }
}

/// Runs `kmsctl --socket <socket> list-keys` as `who` with `env`; the exit
/// status and stderr.
fn kmsctl_as(who: &RunAs, socket: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut c = Command::new(bin("kmsctl"));
    // As root, std drops the supplementary groups when it sets the uid.
    c.uid(who.uid)
        .gid(who.gid)
        .arg("--socket")
        .arg(socket)
        .arg("list-keys")
        .env_remove("KMSD_UID")
        .env_remove("KMSD_SOCKET")
        .current_dir("/")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run kmsctl as the client user");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kmsctl_refuses_a_fake_kmsd_run_by_another_user() {
    require_root();
    let prefix = format!("kpp{}", std::process::id());
    let mut accounts = TestAccounts::new();
    let gid = accounts.add_group(&prefix);
    let server = RunAs {
        uid: accounts.add_user(&format!("{prefix}s"), &prefix, &[]),
        gid,
        process_groups: vec![],
    };
    let client = RunAs {
        uid: accounts.add_user(&format!("{prefix}c"), &prefix, &[]),
        gid,
        process_groups: vec![],
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("fake");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(server.uid), Some(gid)).unwrap();
    let socket = dir.join(FAKE_SOCKET);
    let kmsctl = bin("kmsctl");
    assert!(kmsctl.exists());

    let fake = {
        let (server, dir) = (server.clone(), dir.to_string_lossy().into_owned());
        std::thread::spawn(move || {
            identity::rerun_test_as(
                &server,
                FAKE_TEST,
                &[(FAKE_ENV, &dir)],
                Duration::from_secs(90),
            )
        })
    };
    let stop = dir.join(FAKE_STOP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline && !fake.is_finished(),
            "the fake kmsd did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let md = std::fs::symlink_metadata(&socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.uid(), server.uid, "the fake socket's owner");

    // The client user's kmsctl refuses the other user's server...
    let refused = kmsctl_as(&client, &socket, &[]);
    // ...and talks to it once told that uid is kmsd's.
    let trusted = kmsctl_as(&client, &socket, &[("KMSD_UID", &server.uid.to_string())]);
    std::fs::write(&stop, b"").unwrap();
    let out = fake
        .join()
        .expect("fake kmsd thread")
        .expect("the fake kmsd ran");
    assert!(
        out.status.success(),
        "fake kmsd: {}\n{}",
        out.stdout,
        out.stderr
    );
    let pid: u32 = out
        .stdout
        .lines()
        .find_map(|l| l.split("FAKE-PID ").nth(1))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid from the fake kmsd: {}\n{}", out.stdout, out.stderr));
    let conns: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split("FAKE-CONN ").nth(1))
        .collect();

    let (ok, err) = refused;
    assert!(!ok, "kmsctl accepted another user's server");
    let expected = format!(
        "refusing the server at {}: it runs as uid {} (pid {pid}), which is neither root, \
         this user (uid {}) nor a uid in $KMSD_UID; another user may be impersonating kmsd",
        socket.display(),
        server.uid,
        client.uid
    );
    assert!(err.contains(&expected), "unclear refusal: {err}");
    let (ok, err) = trusted;
    assert!(!ok, "the fake kmsd never answers, yet kmsctl succeeded");
    assert!(!err.contains("refusing the server"), "{err}");
    // Refused before a single byte was sent; trusted, it sent its hello.
    assert_eq!(conns.len(), 2, "{}", out.stdout);
    assert_eq!(conns[0], "bytes=0", "kmsctl wrote to a refused server");
    assert_ne!(
        conns[1], "bytes=0",
        "kmsctl did not say hello to a trusted one"
    );
}

// ------------------------------------------------------------ kmsfs log

/// The one `.log` file in the volume's runtime directory.
fn the_log(vol: &Volume) -> PathBuf {
    let logs: Vec<PathBuf> = std::fs::read_dir(&vol.runtime)
        .expect("list the runtime dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    assert_eq!(logs.len(), 1, "logs: {logs:?}");
    logs[0].clone()
}

#[test]
fn a_link_planted_at_the_mount_log_is_not_followed() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    // A first mount creates the log (0600) at its default path.
    vol.mount(&[]).unmount();
    let log = the_log(&vol);
    let md = std::fs::symlink_metadata(&log).unwrap();
    assert!(md.is_file());
    assert_eq!(md.mode() & 0o777, 0o600);

    let victim = vol.tmp.path().join("bashrc");
    std::fs::write(&victim, b"keep me\n").unwrap();
    let refused = |why: &str, planted: &Path| {
        let out = vol.try_mount(&[]);
        assert!(!out.status.success(), "mounted with {why}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let expected = format!("cannot open log file {}: {why}", planted.display());
        assert!(err.contains(&expected), "unclear refusal: {}", text(&out));
        assert!(!is_mounted(&vol.mountpoint));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
    };

    // A symlink to another file at the default path.
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    refused("is a symlink (not followed)", &log);
    assert!(std::fs::symlink_metadata(&log).unwrap().is_symlink());
    // A dangling one: its target is not created.
    let nowhere = vol.tmp.path().join("created-by-kmsfs");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&nowhere, &log).unwrap();
    refused("is a symlink (not followed)", &log);
    assert!(!nowhere.exists(), "the dangling symlink was followed");
    // A hard link to another file, named with --log.
    let other = vol.tmp.path().join("mount.log");
    std::fs::hard_link(&victim, &other).unwrap();
    let out = vol.try_mount(&["--log", &other.to_string_lossy()]);
    assert!(!out.status.success(), "mounted with a hard-linked log");
    let expected = format!(
        "cannot open log file {}: has other hard links (refused)",
        other.display()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&expected),
        "unclear refusal: {}",
        text(&out)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
    assert!(!is_mounted(&vol.mountpoint));

    // A regular file of ours at the path again: the mount works.
    std::fs::remove_file(&log).unwrap();
    vol.mount(&[]).unmount();
    assert!(std::fs::symlink_metadata(&log).unwrap().is_file());
}

// ------------------------------------------------------------ kmsd files

/// Every directory under `dir` (itself included) and every file, with
/// its permission bits.
fn modes_under(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = vec![(dir.to_path_buf(), true, mode_of(dir))];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list").flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).expect("stat");
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, md.is_dir(), md.mode() & 0o7777));
        }
    }
    out
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o7777
}

fn assert_private(dir: &Path) {
    let all = modes_under(dir);
    assert!(all.len() > 3, "state dir nearly empty: {all:?}");
    for (p, is_dir, mode) in all {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} has mode {mode:04o}", p.display());
        assert_eq!(std::fs::symlink_metadata(&p).unwrap().uid(), 0);
    }
}

/// Runs kmsd with `args`, expecting it to exit (by itself, within 20 s);
/// its stderr.
fn kmsd_exits(args: &[&std::ffi::OsStr]) -> String {
    let mut child = Command::new(bin("kmsd"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kmsd");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for kmsd") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kmsd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(!status.success(), "kmsd {args:?} succeeded: {err}");
    err
}

#[test]
fn kmsd_state_is_private_and_its_socket_has_its_documented_mode() {
    require_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    // A fresh state dir, two levels of missing parents, and a socket in
    // a directory that does not exist yet.
    let top = tmp.path().join("a");
    let state = top.join("b/state");
    let sockdir = tmp.path().join("run");
    let socket = sockdir.join("kmsd.sock");
    let mut k = KmsdProcess::start_at(&state, &socket, &[]);
    k.create_key("a key, so the store and the audit trail hold something");
    assert_eq!(mode_of(&top), 0o700);
    assert_eq!(mode_of(&top.join("b")), 0o700);
    assert_private(&state);
    assert!(state.join("root.key").is_file());
    // The socket: 0660 (--socket-mode's default), kmsd's own group, in a
    // directory nobody else can write to, with nothing else left in it.
    // (bind_socket asks for 0755, but kmsd's umask 077 applies: 0700.)
    let md = std::fs::symlink_metadata(&socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.mode() & 0o7777, 0o660, "socket mode");
    assert_eq!((md.uid(), md.gid()), (0, nix::unistd::getegid().as_raw()));
    assert_eq!(mode_of(&sockdir) & 0o022, 0, "socket dir open to writers");
    let names: Vec<_> = std::fs::read_dir(&sockdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["kmsd.sock"], "left in the socket directory");
    k.terminate();

    // Loosened while kmsd was down, and a stray file: made private again.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        state.join("root.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(state.join("notes"), b"").unwrap();
    std::fs::set_permissions(state.join("notes"), std::fs::Permissions::from_mode(0o666)).unwrap();
    // --socket-mode 666 is the documented way to open the socket to all.
    let mut k = KmsdProcess::start_at(&state, &socket, &["--socket-mode", "666"]);
    assert_private(&state);
    assert_eq!(mode_of(&socket), 0o666);
    k.terminate();

    // A symlink planted at the socket path is replaced; its target stays.
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(&victim, &socket).unwrap();
    let k = KmsdProcess::start_at(&state, &socket, &[]);
    let md = std::fs::symlink_metadata(&socket).unwrap();
    assert!(md.file_type().is_socket(), "the symlink is still there");
    assert_eq!(md.mode() & 0o7777, 0o660);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    drop(k);

    // A state dir that is a symlink, even to a private directory of
    // kmsd's own, is refused.
    let link = tmp.path().join("state-link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    let err = kmsd_exits(&[
        "--state-dir".as_ref(),
        link.as_os_str(),
        "--socket".as_ref(),
        tmp.path().join("other.sock").as_os_str(),
    ]);
    let expected = format!(
        "state dir {} is a symlink or not a directory; refusing it",
        link.display()
    );
    assert!(err.contains(&expected), "unclear refusal: {err}");
    assert!(!tmp.path().join("other.sock").exists());
}
