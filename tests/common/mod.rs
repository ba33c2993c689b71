//! Shared test harness: find the workspace binaries, run a real kmsd on a
//! temporary state dir and socket, stop it by pid.
#![allow(dead_code)]

pub mod aws_mode;
pub mod etcd;
pub mod net;
pub mod pki;
pub mod sys;

use kmsd_client::{Client, CreateKeyRequest, KeyMetadata};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A workspace binary, built for this test run: next to the test
/// executable (`target/<profile>/`).
///
/// The suite package (kms-suite) cannot see `CARGO_BIN_EXE_*` of the bin
/// crates, so the first call in each test process runs
/// `cargo build --bins --workspace --locked` (the same cargo, profile and
/// target dir as this test binary; a no-op when up to date), so cargo's own
/// fingerprints guarantee a stale binary in target/ can never pass a test.
/// Set `KMS_TEST_NO_BUILD=1` to skip the build; then each binary must be
/// newer than every source file of the workspace (a coarse check: a change
/// to a file the binary does not use also fails it). Child processes re-run
/// as another user skip both.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    if nix::unistd::geteuid().is_root() || !p.exists() {
        ensure_built(dir);
    }
    assert!(
        p.exists(),
        "{} is missing: build the workspace binaries first (cargo build --release --workspace --bins)",
        p.display()
    );
    if nix::unistd::geteuid().is_root() && std::env::var_os("KMS_TEST_NO_BUILD").is_some() {
        assert_fresh(&p);
    }
    p
}

/// The workspace root (the suite package's manifest dir).
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ensure_built(profile_dir: &Path) {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if std::env::var_os("KMS_TEST_NO_BUILD").is_some() {
            return;
        }
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("debug");
        let mut cmd = Command::new(env!("CARGO"));
        // Without the variables cargo set for this test process: build
        // scripts watch some of them (ring's `rerun-if-env-changed` lists
        // CARGO_PKG_NAME and CARGO_MANIFEST_DIR), so inheriting this
        // package's values would rebuild ring and all that depends on it
        // here, and again at the next plain `cargo build`.
        for (k, _) in std::env::vars_os() {
            if is_per_package_cargo_var(&k) {
                cmd.env_remove(k);
            }
        }
        cmd.args(["build", "--workspace", "--bins", "--locked", "--quiet"])
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let st = cmd.status().expect("run cargo build for the test binaries");
        assert!(
            st.success(),
            "cargo build --bins for the tests failed: {st}"
        );
    });
}

/// The variables cargo sets for one package's build or test run (not the
/// user's own settings such as CARGO_HOME or CARGO_TARGET_DIR).
fn is_per_package_cargo_var(k: &std::ffi::OsStr) -> bool {
    let k = k.to_string_lossy();
    const PREFIXES: [&str; 6] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "DEP_",
    ];
    const NAMES: [&str; 6] = [
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
        "CARGO",
    ];
    PREFIXES.iter().any(|p| k.starts_with(p)) || NAMES.contains(&k.as_ref())
}

/// Panics when `binary` is older than a source file it is built from.
fn assert_fresh(binary: &Path) {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .expect("binary mtime");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack: Vec<PathBuf> = ["kmsd", "kmsctl", "kmsfs"]
        .iter()
        .map(|d| workspace_root().join(d))
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if (path.extension().is_some_and(|x| x == "rs")
                || path.file_name().is_some_and(|n| n == "Cargo.toml"))
                && let Ok(t) = e.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(n, _)| t > *n)
            {
                newest = Some((t, path));
            }
        }
    }
    if let Some((t, src)) = newest {
        assert!(
            t <= built,
            "{} is older than {}: a stale binary would be tested (the build step did not run?)",
            binary.display(),
            src.display()
        );
    }
}

/// A kmsd child process on its own state dir and socket; killed (by pid)
/// and reaped on drop.
pub struct KmsdProcess {
    pub child: Option<Child>,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub extra_args: Vec<String>,
    /// Where kmsd's stderr goes (appended); inherited when `None`.
    pub log: Option<PathBuf>,
    /// Another kmsd binary to run (a benchmark's baseline); this run's
    /// build when `None`.
    pub program: Option<PathBuf>,
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
            log: None,
            program: None,
            _tmp: Some(tmp),
        };
        let aws = aws_mode::enabled().then(|| aws_mode::listen_args(&mut k.extra_args));
        k.spawn();
        if let Some(addr) = aws {
            aws_mode::register(&k, addr);
        }
        k
    }

    /// Starts kmsd on given paths (the caller owns the directory).
    pub fn start_at(state_dir: &Path, socket: &Path, extra_args: &[&str]) -> KmsdProcess {
        Self::start_logged(state_dir, socket, extra_args, None)
    }

    /// As [`KmsdProcess::start_at`], with kmsd's stderr appended to `log`.
    pub fn start_logged(
        state_dir: &Path,
        socket: &Path,
        extra_args: &[&str],
        log: Option<&Path>,
    ) -> KmsdProcess {
        Self::start_program(None, state_dir, socket, extra_args, log)
    }

    /// As [`KmsdProcess::start_logged`], running `program` (another kmsd
    /// build) instead of this run's when given.
    pub fn start_program(
        program: Option<&Path>,
        state_dir: &Path,
        socket: &Path,
        extra_args: &[&str],
        log: Option<&Path>,
    ) -> KmsdProcess {
        let mut k = KmsdProcess {
            child: None,
            state_dir: state_dir.to_path_buf(),
            socket: socket.to_path_buf(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log: log.map(Path::to_path_buf),
            program: program.map(Path::to_path_buf),
            _tmp: None,
        };
        k.spawn();
        k
    }

    /// (Re)starts the process and waits until the socket answers.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "kmsd already running");
        let stderr = match &self.log {
            Some(p) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .expect("open the kmsd log"),
            ),
            None => Stdio::inherit(),
        };
        let program = self.program.clone().unwrap_or_else(|| bin("kmsd"));
        let child = Command::new(program)
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
            .stderr(stderr)
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

    /// A new access key of `principal` (for the AWS endpoint): (id,
    /// secret).
    pub fn access_key(&self, principal: &str) -> (String, String) {
        let r = self
            .client()
            .call(kmsd_client::CreateAccessKeyRequest {
                principal: principal.into(),
                description: Some("test".into()),
            })
            .unwrap_or_else(|e| panic!("create an access key for {principal}: {e}"));
        (r.access_key_id, r.secret_access_key.expose().to_string())
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
