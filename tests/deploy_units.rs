//! The systemd units of deploy/systemd/: `systemd-analyze verify` passes
//! on them (and fails on a broken copy), kmsd.service stays hardened, kmsd
//! started with the unit's own command line and directory modes reports
//! READY=1 to $NOTIFY_SOCKET once it serves, a kmsfs@ instance mounts from
//! its settings file and stops with its ExecStop=, and the documented
//! fstab line becomes a mount unit ordered after kmsd with no cycle.
//! systemd is not PID 1 here; all of this works offline.

mod common;
#[path = "common/mount.rs"]
mod mount;
#[path = "common/units.rs"]
mod units;

use common::{KmsdProcess, bin};
use mount::{MountGuard, Volume, is_mounted, text, tree_contains, wait_exit};
use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use units::{Unit, expand_exec, installed, require_systemd_analyze, stage_units, verify};

#[test]
fn the_units_pass_systemd_analyze_verify() {
    require_systemd_analyze();
    let t = tempfile::tempdir().unwrap();
    let staged = stage_units(t.path());
    assert_eq!(staged, ["kmsd.service", "kmsfs@.service"]);
    // An instance (its dependency kmsd.service is found beside it), and
    // the template itself.
    verify(t.path(), &["kmsd.service", "kmsfs@srv-data.service"]).unwrap();
    verify(t.path(), &["kmsfs@.service"]).unwrap();
}

#[test]
fn a_broken_unit_fails_the_check() {
    require_systemd_analyze();
    let t = tempfile::tempdir().unwrap();
    stage_units(t.path());
    let unit = t.path().join("kmsd.service");
    let good = std::fs::read_to_string(&unit).unwrap();
    // A misspelt directive: systemd-analyze warns and exits 0; the check
    // must still fail.
    std::fs::write(&unit, good.replace("ProtectHome=", "ProtectHomes=")).unwrap();
    let e = verify(t.path(), &["kmsd.service"]).unwrap_err();
    assert!(e.contains("ProtectHomes"), "{e}");
    // A binary that is not there: a non-zero exit.
    std::fs::write(
        &unit,
        good.replace(&bin("kmsd").display().to_string(), "/nonexistent/kmsd"),
    )
    .unwrap();
    let e = verify(t.path(), &["kmsd.service"]).unwrap_err();
    assert!(e.contains("/nonexistent/kmsd"), "{e}");
}

#[test]
fn kmsd_service_keeps_its_hardening() {
    require_systemd_analyze();
    let u = Unit::read("kmsd.service");
    for (key, want) in [
        ("Type", "notify"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/kmsd"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("LimitCORE", "0"),
        ("CapabilityBoundingSet", "CAP_IPC_LOCK"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RuntimeDirectory", "kmsd"),
        ("StateDirectory", "kmsd"),
    ] {
        assert_eq!(u.get("Service", key), Some(want), "kmsd.service {key}=");
    }
    // systemd's own rating, in tenths: 25 is an exposure of 2.5 ("OK").
    let t = tempfile::tempdir().unwrap();
    stage_units(t.path());
    let out = units::systemd_analyze(
        t.path(),
        &[
            "security",
            "--offline=yes",
            "--man=no",
            "--threshold=25",
            "kmsd.service",
        ],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("(no overall line)");
    assert!(
        out.status.success(),
        "kmsd.service is exposed beyond 2.5: {overall}\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(overall.contains("kmsd.service"), "{report}");
}

/// A child process stopped by pid (SIGKILL) and reaped on drop.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map(Child::id).expect("running")
    }

    /// Waits for the exit (SIGKILL after `timeout`).
    fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.0.take().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait().expect("try_wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("process {} did not exit in {timeout:?}", c.id());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A bound $NOTIFY_SOCKET and the messages systemd would receive.
struct NotifySocket {
    path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { path, sock }
    }

    /// The next message, or a panic naming `what` after `timeout`;
    /// `alive` is polled meanwhile, so a process that died is reported.
    fn recv(&self, timeout: Duration, what: &str, mut alive: impl FnMut() -> bool) -> String {
        self.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("notify socket: {e}"),
            }
            assert!(alive(), "the process exited before sending {what}");
            assert!(Instant::now() < deadline, "no {what} within {timeout:?}");
        }
    }
}

/// Replaces the unit's system paths by paths under `root`, longest first.
fn remap(args: &[String], map: &[(String, PathBuf)]) -> Vec<String> {
    args.iter()
        .map(|a| {
            for (from, to) in map {
                if let Some(rest) = a.strip_prefix(from.as_str())
                    && (rest.is_empty() || rest.starts_with('/'))
                {
                    return format!("{}{rest}", to.display());
                }
            }
            a.clone()
        })
        .collect()
}

fn mode_of(unit: &Unit, key: &str) -> u32 {
    u32::from_str_radix(unit.service(key), 8).unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn kmsd_runs_from_its_units_command_line_and_notifies_when_ready() {
    let u = Unit::read("kmsd.service");
    assert_eq!(u.service("Type"), "notify");
    let t = tempfile::tempdir().unwrap();
    // What systemd sets up before ExecStart: the state and runtime
    // directories, with the unit's modes.
    let state = t.path().join("var/lib").join(u.service("StateDirectory"));
    let runtime = t.path().join("run").join(u.service("RuntimeDirectory"));
    for (dir, key) in [
        (&state, "StateDirectoryMode"),
        (&runtime, "RuntimeDirectoryMode"),
    ] {
        let mode = mode_of(&u, key);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let words = expand_exec(u.service("ExecStart"), &HashMap::new(), &[]);
    let args = remap(
        &words,
        &[
            (installed("kmsd"), bin("kmsd")),
            ("/var/lib/kmsd".into(), state.clone()),
            ("/run/kmsd".into(), runtime.clone()),
        ],
    );
    let socket = runtime.join("kmsd.sock");
    // The unit names exactly the directories systemd makes for it.
    let flag = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    assert_eq!(flag("--state-dir"), Some(state.clone()), "{words:?}");
    assert_eq!(flag("--socket"), Some(socket.clone()), "{words:?}");

    let notify = NotifySocket::bind(t.path());
    let mut kmsd = ChildGuard(Some(
        Command::new(&args[0])
            .args(&args[1..])
            .env("NOTIFY_SOCKET", &notify.path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kmsd"),
    ));
    let pid = kmsd.pid();
    let alive = || !wait_exit(pid, Duration::ZERO);
    let msg = notify.recv(Duration::from_secs(30), "READY=1", alive);
    assert_eq!(msg, "READY=1");
    // Ready means serving: the first connection needs no retry.
    let client = kmsd_client::Client::connect(&socket).expect("kmsd answers once READY=1");
    let key = client
        .call(kmsd_client::CreateKeyRequest::default())
        .expect("create a key")
        .key_metadata;
    assert!(!key.key_id.is_empty());
    drop(client);
    // kmsd accepted the directories as systemd made them, unchanged.
    assert_eq!(
        std::fs::metadata(&state).unwrap().mode() & 0o7777,
        mode_of(&u, "StateDirectoryMode")
    );
    assert_eq!(
        std::fs::metadata(&runtime).unwrap().mode() & 0o7777,
        mode_of(&u, "RuntimeDirectoryMode")
    );
    assert_eq!(
        std::fs::symlink_metadata(&socket).unwrap().mode() & 0o777,
        0o660
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let msg = notify.recv(Duration::from_secs(20), "STOPPING=1", || true);
    assert_eq!(msg, "STOPPING=1");
    let status = kmsd.wait(Duration::from_secs(20));
    assert!(status.success(), "kmsd exited with {status}");
    assert!(!socket.exists(), "kmsd left its socket behind");
}

#[test]
fn a_kmsfs_instance_mounts_from_its_settings_and_stops_with_exec_stop() {
    require_fuse!();
    let u = Unit::read("kmsfs@.service");
    assert_eq!(u.service("Type"), "notify");
    assert_eq!(u.get("Unit", "Requires"), Some("kmsd.service"));
    assert_eq!(u.get("Unit", "After"), Some("kmsd.service"));
    assert_eq!(u.service("EnvironmentFile"), "/etc/kmsfs/%i.conf");

    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    kmsd.client()
        .call(kmsd_client::CreateAliasRequest {
            alias_name: "alias/instance-test".into(),
            target_key_id: vol.key_arn.clone(),
        })
        .expect("create alias");
    // The instance name is the escaped mountpoint; %f gives it back.
    let mp = vol.mountpoint.display().to_string();
    let instance = units::systemd_escape(&["--path", &mp]);
    let unescaped = units::systemd_escape(&["--unescape", "--path", &instance]);
    assert_eq!(unescaped, mp);
    // The settings file: the required variables only, so the unit's
    // defaults (empty OPTIONS and MOUNT_ARGS) are used for the rest.
    let conf = format!(
        "# test instance\nCIPHERDIR={}\nKEY=alias/instance-test\nSOCKET={}\n",
        vol.cipherdir.display(),
        kmsd.socket.display()
    );
    let mut env = u.environment();
    env.extend(units::read_env_file(&conf));
    let spec = [('f', unescaped.clone()), ('i', instance.clone())];
    let exe = |line: &str| {
        remap(
            &expand_exec(line, &env, &spec),
            &[(installed("kmsfs"), bin("kmsfs"))],
        )
    };
    let start = exe(u.service("ExecStart"));
    let stop = exe(u.service("ExecStop"));

    let t = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(t.path());
    let mut server = ChildGuard(Some(
        Command::new(&start[0])
            .args(&start[1..])
            .env("NOTIFY_SOCKET", &notify.path)
            .env("KMSFS_RUNTIME_DIR", &vol.runtime)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ExecStart"),
    ));
    let pid = server.pid();
    let msg = notify.recv(Duration::from_secs(30), "READY=1", || {
        !wait_exit(pid, Duration::ZERO)
    });
    assert_eq!(msg, "READY=1");
    // Ready means mounted.
    assert!(is_mounted(&vol.mountpoint), "READY=1 before the mount");
    let guard = MountGuard::adopt(&vol);
    assert_eq!(guard.pid, Some(pid), "the mount is ExecStart's own process");

    let secret = b"through the kmsfs@ unit, plaintext 5f1c";
    std::fs::write(vol.path("a.txt"), secret).unwrap();
    assert_eq!(std::fs::read(vol.path("a.txt")).unwrap(), secret);
    assert_eq!(tree_contains(&vol.cipherdir, secret), None);

    let out = Command::new(&stop[0])
        .args(&stop[1..])
        .env("KMSFS_RUNTIME_DIR", &vol.runtime)
        .stdin(Stdio::null())
        .output()
        .expect("run ExecStop");
    assert!(out.status.success(), "ExecStop: {}", text(&out));
    assert!(!is_mounted(&vol.mountpoint), "still mounted after ExecStop");
    let status = server.wait(Duration::from_secs(10));
    assert!(status.success(), "the mount process exited with {status}");
    drop(guard);
    // The file is in the backing directory, encrypted.
    let stored = vol.backing("a.txt");
    let raw = std::fs::read(&stored).unwrap();
    assert!(
        raw.len() > secret.len(),
        "{} holds no ciphertext",
        stored.display()
    );
    assert!(!raw.windows(secret.len()).any(|w| w == secret));
}

/// The fstab line of deploy/systemd/README.md, with its two paths.
fn documented_fstab_line() -> (String, String, String) {
    let readme = std::fs::read_to_string(units::deploy_dir().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some("fuse.kmsfs"))
        .expect("an fstab line in deploy/systemd/README.md")
        .to_string();
    let (source, target) = {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[0].to_string(), f[1].to_string())
    };
    (line, source, target)
}

/// Runs systemd-fstab-generator on `fstab`; the generated mount unit of
/// `where_` and the directory holding it (with kmsd.service staged).
fn generate(t: &Path, fstab: &str, where_: &Path) -> (PathBuf, String) {
    let out_dir = t.join(format!("gen-{}", next_id()));
    std::fs::create_dir(&out_dir).unwrap();
    let tab = out_dir.join("fstab");
    std::fs::write(&tab, fstab).unwrap();
    let out = Command::new(units::fstab_generator())
        .args([&out_dir, &out_dir, &out_dir])
        .env("SYSTEMD_FSTAB", &tab)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("run systemd-fstab-generator");
    assert!(out.status.success(), "fstab generator: {}", text(&out));
    stage_units(&out_dir);
    let unit = units::systemd_escape(&["--path", "--suffix=mount", &where_.display().to_string()]);
    assert!(
        out_dir.join(&unit).exists(),
        "the generator made no {unit}: {}",
        text(&out)
    );
    (out_dir, unit)
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn the_documented_fstab_line_mounts_after_kmsd_at_boot_without_a_cycle() {
    require_systemd_analyze();
    let (line, source, target) = documented_fstab_line();
    assert!(line.contains("x-systemd.requires=kmsd.service"), "{line}");
    let t = tempfile::tempdir().unwrap();
    let cipher = t.path().join("cipher");
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&cipher).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let ours = line
        .replacen(&source, &cipher.display().to_string(), 1)
        .replacen(&target, &mnt.display().to_string(), 1);

    let (dir, unit) = generate(t.path(), &format!("{ours}\n"), &mnt);
    let m = Unit::parse(&std::fs::read_to_string(dir.join(&unit)).unwrap());
    assert_eq!(m.get("Mount", "Type"), Some("fuse.kmsfs"));
    assert!(m.all("Unit", "Requires").contains(&"kmsd.service"));
    assert!(m.all("Unit", "After").contains(&"kmsd.service"));
    assert!(m.all("Unit", "Before").contains(&"remote-fs.target"));
    verify(&dir, &[&unit]).unwrap();

    // Why the line has _netdev: without it the mount is local, needed
    // before sysinit.target, which kmsd.service starts after.
    let local = ours.replace(",_netdev", "");
    assert_ne!(local, ours);
    let (dir, unit) = generate(t.path(), &format!("{local}\n"), &mnt);
    let e = verify(&dir, &[&unit]).unwrap_err();
    assert!(e.contains("ordering cycle"), "{e}");
}
