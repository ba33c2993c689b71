//! Running a mount in the background: the command re-executes itself with
//! a hidden `--ready-fd`, and waits on that pipe until the child says the
//! mount is up (`ok`) or why it is not (`err <message>`). The child starts
//! its own session, so the terminal's signals do not reach it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// How long the parent waits for the mount to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The child's end: report once.
pub struct ReadyPipe(File);

impl ReadyPipe {
    /// Takes over `fd` (passed by the parent); `None` if it is not open.
    pub fn from_fd(fd: i32) -> Option<ReadyPipe> {
        // SAFETY: F_GETFD only inspects the descriptor table.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return None;
        }
        // SAFETY: the parent passed this fd for us alone; it is open.
        let file = unsafe { File::from_raw_fd(fd) };
        // SAFETY: valid fd; sets close-on-exec so children do not keep it.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Some(ReadyPipe(file))
    }

    pub fn ok(mut self) {
        let _ = self.0.write_all(b"ok\n");
    }

    pub fn fail(mut self, message: &str) {
        let line = message.replace('\n', " ");
        let _ = self.0.write_all(format!("err {line}\n").as_bytes());
    }
}

/// Starts `kmsfs <args> --ready-fd N` in the background with stderr to
/// `log`, and waits for it to report.
pub fn spawn_and_wait(args: &[std::ffi::OsString], log: &Path) -> Result<ExitCode, String> {
    // A symlink, FIFO or hard link planted at the log path (say to
    // `~/.bashrc`) is refused, never written to.
    let log_file = kmsd_client::nofollow::open_private_append(log)
        .map_err(|e| format!("cannot open log file {}: {e}", log.display()))?;
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let wfd = w.as_raw_fd();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut cmd = Command::new(exe);
    // argv[0] "kmsfs" whatever the binary is called: a copy installed as
    // the mount helper (mount.fuse.kmsfs) must not take its child for
    // another helper call (cli::mount_helper).
    cmd.arg0("kmsfs")
        .args(args)
        .arg("--ready-fd")
        .arg(wfd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log_file));
    // SAFETY: between fork and exec only async-signal-safe calls: setsid
    // and fcntl.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            // Keep the write end across exec.
            if libc::fcntl(wfd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the mount process: {e}"))?;
    drop(w);
    let answer = read_answer(r, READY_TIMEOUT);
    match answer {
        Some(line) if line.trim() == "ok" => Ok(ExitCode::SUCCESS),
        Some(line) => {
            let msg = line
                .trim()
                .strip_prefix("err ")
                .unwrap_or(line.trim())
                .to_string();
            let _ = child.wait();
            Err(msg)
        }
        None => {
            let status = match child.try_wait() {
                Ok(Some(s)) => s.to_string(),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    "no answer in time; stopped it".to_string()
                }
            };
            Err(format!(
                "the mount process ended before the mount was ready ({status}); see {}",
                log.display()
            ))
        }
    }
}

/// The child's one line, or `None` at EOF or timeout.
fn read_answer(r: OwnedFd, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    let mut f = File::from(r);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if n == 0 {
            return None;
        }
        match f.read(&mut chunk) {
            Ok(0) => return None,
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    return Some(String::from_utf8_lossy(&buf[..i]).into_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
