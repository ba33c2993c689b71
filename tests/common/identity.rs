//! Other identities for tests that run as root: real users and groups in
//! the system's databases (made with `groupadd`/`useradd`, removed on drop),
//! ids that no database knows, and child processes that drop to such an
//! identity (supplementary groups, gid, uid) before they run.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this process runs as root (the only way to switch identities).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Users and groups this test created; `userdel`/`groupdel` on drop (also
/// on panic), users first.
#[derive(Default)]
pub struct TestAccounts {
    users: Vec<String>,
    groups: Vec<String>,
}

/// Serializes changes to the user and group databases: `useradd` and
/// friends fail, rather than wait, when another holds /etc/passwd's lock,
/// and the tests of one binary run in parallel threads.
static ACCOUNTS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the user and group databases for this process's tests.
pub fn accounts_lock() -> std::sync::MutexGuard<'static, ()> {
    ACCOUNTS_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(cmd: &str, args: &[&str]) {
    let _db = accounts_lock();
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestAccounts {
    pub fn new() -> TestAccounts {
        TestAccounts::default()
    }

    /// Creates a group; returns its gid.
    pub fn add_group(&mut self, name: &str) -> u32 {
        run("groupadd", &[name]);
        self.groups.push(name.to_owned());
        group_gid(name).unwrap_or_else(|| panic!("group {name} was not created"))
    }

    /// Creates a user (no home directory, no login shell) with primary
    /// group `primary` and the supplementary groups `extra`; returns its uid.
    pub fn add_user(&mut self, name: &str, primary: &str, extra: &[&str]) -> u32 {
        let mut args = vec!["-M", "-s", "/usr/sbin/nologin", "-g", primary];
        let joined = extra.join(",");
        if !extra.is_empty() {
            args.extend(["-G", &joined]);
        }
        args.push(name);
        run("useradd", &args);
        self.users.push(name.to_owned());
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("user {name} was not created"))
            .uid
            .as_raw()
    }
}

impl Drop for TestAccounts {
    fn drop(&mut self) {
        let _db = accounts_lock();
        for u in self.users.drain(..).rev() {
            let _ = Command::new("userdel")
                .arg(&u)
                .stdin(Stdio::null())
                .output();
        }
        for g in self.groups.drain(..).rev() {
            let _ = Command::new("groupdel")
                .arg(&g)
                .stdin(Stdio::null())
                .output();
        }
    }
}

pub fn group_gid(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// An id at or above `from` that neither the user nor the group database
/// knows (so a process with it has no name and no supplementary groups).
pub fn unused_id(from: u32) -> u32 {
    use nix::unistd::{Gid, Group, Uid, User};
    (from..from + 10_000)
        .find(|&id| {
            matches!(User::from_uid(Uid::from_raw(id)), Ok(None))
                && matches!(Group::from_gid(Gid::from_raw(id)), Ok(None))
        })
        .expect("a free id")
}

/// Who a child process runs as: uid, primary gid and the supplementary
/// groups the process itself carries (set with setgroups; kmsd may or may
/// not count them, which is what tests check).
#[derive(Clone, Debug)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub process_groups: Vec<u32>,
}

/// What a child printed, or why it failed.
pub struct ChildOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs this test binary again, as `who`, running only the test
/// `test_name` with `env` set; kills it (by pid) after `timeout`.
pub fn rerun_test_as(
    who: &RunAs,
    test_name: &str,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<ChildOutput, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Drop privileges in the child between fork and exec, in the only
    // order that works: groups and gid while still root, then uid.
    let (uid, gid, groups) = (who.uid, who.gid, who.process_groups.clone());
    // SAFETY: the closure only makes async-signal-safe system calls on
    // memory allocated before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "spawn as uid {uid}: {e} (the test binary and the directories above it \
                 must be readable and searchable by other users)"
        )
    })?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "child as uid {uid} did not finish in {timeout:?}; killed"
                ));
            }
            Err(e) => return Err(format!("waiting for child: {e}")),
        }
    };
    Ok(ChildOutput {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
