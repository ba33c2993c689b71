//! `kmsfs umount MOUNTPOINT`: `fusermount3 -u` (then `umount(2)` as a
//! fallback for root), then wait for the mount process to exit.

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

/// Unmounts `mp`: fusermount3 first, the syscall second.
pub fn unmount(mp: &Path, lazy: bool) -> Result<(), String> {
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg("--").arg(mp).output();
    let fusermount_err = match out {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
        Err(e) => format!("fusermount3: {e}"),
    };
    match crate::fs::sys::umount(mp, lazy) {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "cannot unmount {}: {} ({fusermount_err})",
            mp.display(),
            std::io::Error::from_raw_os_error(e.code()),
        )),
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
