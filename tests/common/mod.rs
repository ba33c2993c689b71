//! Shared test harness: find the workspace binaries, run a real kmsd on a
//! temporary state dir and socket, stop it by pid.
#![allow(dead_code)]

use kmsd_client::{Client, CreateKeyRequest, KeyMetadata};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A workspace binary next to the test executable (`target/<profile>/`).
/// The test command builds them first (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace binaries first (cargo build --release --workspace --bins)",
        p.display()
    );
    p
}

/// A kmsd child process on its own state dir and socket; killed (by pid)
/// and reaped on drop.
pub struct KmsdProcess {
    pub child: Option<Child>,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub extra_args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl KmsdProcess {
    /// Starts kmsd in a fresh temporary directory.
    pub fn start() -> KmsdProcess {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = tmp.path().join("state");
        let socket = tmp.path().join("kmsd.sock");
        let mut k = KmsdProcess {
            child: None,
            state_dir: state,
            socket,
            extra_args: vec![],
            _tmp: Some(tmp),
        };
        k.spawn();
        k
    }

    /// Starts kmsd on given paths (the caller owns the directory).
    pub fn start_at(state_dir: &Path, socket: &Path, extra_args: &[&str]) -> KmsdProcess {
        let mut k = KmsdProcess {
            child: None,
            state_dir: state_dir.to_path_buf(),
            socket: socket.to_path_buf(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            _tmp: None,
        };
        k.spawn();
        k
    }

    /// (Re)starts the process and waits until the socket answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "kmsd already running");
        let child = Command::new(bin("kmsd"))
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--socket")
            .arg(&self.socket)
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("KMSD_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kmsd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if Client::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kmsd exited during start-up: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("kmsd did not come up on {}", self.socket.display());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connect to kmsd")
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("kmsd did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn create_key(&self, description: &str) -> KeyMetadata {
        self.client()
            .call(CreateKeyRequest {
                description: Some(description.into()),
                ..Default::default()
            })
            .expect("create key")
            .key_metadata
    }
}

impl Drop for KmsdProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
