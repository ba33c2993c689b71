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
    let log_file =
        open_log(log).map_err(|e| format!("cannot open log file {}: {e}", log.display()))?;
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let wfd = w.as_raw_fd();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
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

/// Opens (creating, mode 0600) the log for appending without following a
/// symlink at its path, and accepts only a regular file of this user with
/// a single link: a planted symlink, FIFO or hard link to another file
/// (say `~/.bashrc`) is refused, never written to.
pub fn open_log(log: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(log)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "it is a symlink; refusing to follow it",
            ),
            _ => e,
        })?;
    let md = f.metadata()?;
    let refuse = |why: String| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            why,
        ))
    };
    if !md.file_type().is_file() {
        return refuse("it is not a regular file".into());
    }
    if md.uid() != kmsd_client::private_dir::euid() {
        return refuse(format!("it is owned by uid {}", md.uid()));
    }
    if md.nlink() > 1 {
        return refuse("it has other hard links".into());
    }
    // Back to blocking writes for the child.
    // SAFETY: plain fcntl on our own valid descriptor.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    Ok(f)
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
