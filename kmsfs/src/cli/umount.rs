//! `kmsfs umount MOUNTPOINT`: `fusermount3 -u` (then `umount(2)` as a
//! fallback for root), retried for a moment while the mount is busy, then
//! wait for the mount process to exit.

use super::UmountArgs;
use crate::ctl;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// How long to wait for the mount process after unmounting.
const EXIT_WAIT: Duration = Duration::from_secs(10);

pub fn run(a: &UmountArgs) -> Result<ExitCode, String> {
    let mp = ctl::path::canonical(&a.mountpoint);
    let pid = ctl::query(&mp).ok().map(|s| s.pid);
    unmount(&mp, a.lazy)?;
    // A lazily detached mount lives on until its last file closes.
    if let Some(pid) = pid.filter(|p| !a.lazy && !wait_gone(*p, EXIT_WAIT)) {
        return Err(format!(
            "{} is unmounted but its process {pid} is still running",
            mp.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// How long a busy mount is retried. The kernel sends FUSE's RELEASE
/// after close(2) has returned, so a mount whose last file was closed a
/// moment ago can still be busy for a moment.
const BUSY_RETRY: Duration = Duration::from_secs(2);
const BUSY_PAUSE: Duration = Duration::from_millis(100);

/// Why one unmount attempt failed.
struct Failure {
    busy: bool,
    message: String,
}

/// Unmounts `mp`: fusermount3 first, the syscall second; a busy mount is
/// tried again for up to [`BUSY_RETRY`] (a lazy unmount is never busy).
pub fn unmount(mp: &Path, lazy: bool) -> Result<(), String> {
    retry_busy(BUSY_RETRY, BUSY_PAUSE, || unmount_once(mp, lazy))
}

fn retry_busy(
    window: Duration,
    pause: Duration,
    mut attempt: impl FnMut() -> Result<(), Failure>,
) -> Result<(), String> {
    let deadline = Instant::now() + window;
    loop {
        match attempt() {
            Ok(()) => return Ok(()),
            Err(f) if f.busy && Instant::now() + pause <= deadline => std::thread::sleep(pause),
            Err(f) => return Err(f.message),
        }
    }
}

fn unmount_once(mp: &Path, lazy: bool) -> Result<(), Failure> {
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    // Its message is matched below (and quoted to the user) in English.
    let out = cmd.arg("--").arg(mp).env("LC_ALL", "C").output();
    let fusermount_err = match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("fusermount3: {e}"),
    };
    match crate::fs::sys::umount(mp, lazy) {
        Ok(()) => Ok(()),
        Err(e) => Err(Failure {
            // Root gets EBUSY from umount(2); a user's umount(2) gets EPERM,
            // and only fusermount3 says the mount is busy.
            busy: e == fuser::Errno::EBUSY || fusermount_err.contains("Device or resource busy"),
            message: format!(
                "cannot unmount {}: {} ({fusermount_err})",
                mp.display(),
                std::io::Error::from_raw_os_error(e.code()),
            ),
        }),
    }
}

/// Waits until process `pid` has exited (a zombie counts as exited).
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(n: usize) -> Failure {
        Failure {
            busy: true,
            message: format!("busy {n}"),
        }
    }

    #[test]
    fn a_busy_mount_is_retried_until_it_is_not() {
        let mut tries = 0;
        let r = retry_busy(Duration::from_secs(5), Duration::from_millis(1), || {
            tries += 1;
            if tries < 3 { Err(busy(tries)) } else { Ok(()) }
        });
        assert_eq!((r, tries), (Ok(()), 3));
    }

    #[test]
    fn a_mount_that_stays_busy_fails_after_the_window_with_the_last_message() {
        let mut tries = 0;
        let start = Instant::now();
        let r = retry_busy(
            Duration::from_millis(300),
            Duration::from_millis(50),
            || {
                tries += 1;
                Err(busy(tries))
            },
        );
        let took = start.elapsed();
        assert_eq!(r, Err(format!("busy {tries}")));
        assert!(tries >= 2, "{tries} tries");
        // Tried for most of the window, and gave up by its end (plus
        // whatever a loaded machine adds to a sleep).
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(1300), "{took:?}");
    }

    #[test]
    fn other_failures_are_not_retried() {
        let mut tries = 0;
        let r = retry_busy(Duration::from_secs(5), Duration::from_millis(1), || {
            tries += 1;
            Err(Failure {
                busy: false,
                message: "not mounted".into(),
            })
        });
        assert_eq!((r, tries), (Err("not mounted".to_string()), 1));
    }

    #[test]
    fn liveness_of_processes() {
        assert!(alive(std::process::id()));
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        // Exited but not yet reaped: a zombie, which counts as gone.
        assert!(wait_gone(pid, Duration::from_secs(5)));
        c.wait().unwrap();
        assert!(!alive(pid));
    }
}
