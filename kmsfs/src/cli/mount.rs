//! `kmsfs mount CIPHERDIR MOUNTPOINT`: check everything that can fail
//! (kmsd reachable, the config authentic, the key usable, the mountpoint
//! sane) before mounting, then serve until unmounted or signalled.

use super::MountArgs;
use super::daemon::{self, ReadyPipe};
use crate::ctl::{self, CtlServer, Status};
use crate::fs::Layout;
use crate::fs::mount::{mount, parse_options, session_config};
use crate::fs::{FsOptions, KmsFs};
use crate::keys::{KeyError, KeyOptions, KeyService, VolumeError, load_volume_keys};
use nix::sys::signal::{SigSet, Signal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long one kmsd call may take before the file operation fails.
const KMSD_CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(a: MountArgs) -> Result<ExitCode, String> {
    if a.ready_fd.is_none() && !a.foreground {
        // Fail fast on what needs no kmsd; the child checks all again.
        check_dirs(&a.cipherdir, &a.mountpoint)?;
        let log = match &a.log {
            Some(l) => l.clone(),
            None => ctl::path::log_path(&a.mountpoint)?,
        };
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        return daemon::spawn_and_wait(&args, &log);
    }
    serve(a)
}

/// The mount process holds unwrapped data keys: no core dumps, no ptrace
/// or /proc/<pid>/mem by other processes of the user (`PR_SET_DUMPABLE 0`),
/// and memory locked (`mlockall`) where that cannot make later allocations
/// fail: for root (`CAP_IPC_LOCK`) or with an unlimited `RLIMIT_MEMLOCK`.
/// With a finite limit (8 MiB for most users) `MCL_FUTURE` would make
/// allocations past it fail, so the mount warns and runs unlocked instead.
fn harden_process() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::warn!(
            "could not make the process non-dumpable: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    let unlimited = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0
        && lim.rlim_cur == libc::RLIM_INFINITY;
    if kmsd_client::private_dir::euid() != 0 && !unlimited {
        tracing::warn!(
            "not locking memory (RLIMIT_MEMLOCK is {} bytes); data keys may be swapped out",
            lim.rlim_cur
        );
        return;
    }
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        tracing::warn!(
            "could not lock memory ({}); data keys may be swapped out",
            std::io::Error::last_os_error()
        );
    }
}

/// Signals that unmount: handled by one thread, blocked everywhere else.
fn signals() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGINT);
    s.add(Signal::SIGTERM);
    s.add(Signal::SIGHUP);
    s
}

/// Sets the read-ahead of the mount's backing device info. The device
/// number comes from mountinfo: a `stat` of the mountpoint would wait for
/// this very process to serve it.
fn set_read_ahead(mountpoint: &Path, kb: u32) -> Result<(), String> {
    if kb == 0 {
        return Ok(());
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let dev = mountinfo_device(&info, mountpoint)
        .ok_or_else(|| "not found in /proc/self/mountinfo".to_string())?;
    let path = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    std::fs::write(&path, kb.to_string()).map_err(|e| format!("{path}: {e}"))
}

/// The `major:minor` of the last mount at `mountpoint` in mountinfo text.
fn mountinfo_device(info: &str, mountpoint: &Path) -> Option<String> {
    let want = mountpoint.to_string_lossy().replace(' ', "\\040");
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && f[4] == want).then(|| f[2].to_string())
    })
}

fn serve(a: MountArgs) -> Result<ExitCode, String> {
    let ready = a.ready_fd.and_then(ReadyPipe::from_fd);
    // Before any thread exists, so every thread inherits the mask.
    signals()
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    super::logging::init();
    // Root: before any key is unwrapped. A user's mount goes through
    // fusermount3, which cannot reach a non-dumpable caller (its /proc
    // entries become root's), so it is hardened as soon as the mount is up:
    // only the volume's config key has been unwrapped by then, and only
    // the user and root could have read it.
    let root = kmsd_client::private_dir::euid() == 0;
    if root {
        harden_process();
    }
    let m = match prepare(&a) {
        Ok(m) => m,
        Err(msg) => {
            return match ready {
                Some(r) => {
                    tracing::error!("{}", kmsd_client::logsafe::escape(&msg));
                    r.fail(&msg);
                    Ok(ExitCode::FAILURE)
                }
                None => Err(msg),
            };
        }
    };
    if !root {
        harden_process();
    }
    let Mounted {
        mut session,
        ctl,
        keys,
        mountpoint,
        cipherdir,
        sweeper,
    } = m;
    let mut unmounter = session.unmount_callable();
    let mp = mountpoint.clone();
    let started = std::thread::Builder::new()
        .name("kmsfs-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals().wait() {
                tracing::info!("{sig}: unmounting {}", mp.display());
                if let Err(e) = unmounter.unmount() {
                    tracing::warn!("unmount failed ({e}); detaching lazily");
                    let _ = crate::fs::sys::umount(&mp, true);
                }
            }
        });
    if let Err(e) = started {
        return Err(format!("cannot start the signal thread: {e}"));
    }
    if let Err(e) = set_read_ahead(&mountpoint, a.read_ahead_kb) {
        tracing::warn!("cannot set the read-ahead of {}: {e}", mountpoint.display());
    }
    tracing::info!(
        "mounted {} on {} (pid {})",
        cipherdir.display(),
        mountpoint.display(),
        std::process::id()
    );
    if let Some(r) = ready {
        r.ok();
    } else if a.foreground {
        // Under systemd (`Type=notify`, deploy/systemd/kmsfs@.service):
        // the mount is up, units ordered after this one may start.
        if let Err(e) = kmsd_client::sd_notify::notify("READY=1") {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }
    let sweeping = start_sweeper(sweeper, session.notifier());
    let result = session.run();
    sweeping.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(ctl);
    keys.clear();
    tracing::info!("unmounted {}", mountpoint.display());
    result.map_err(|e| format!("serving {} failed: {e}", mountpoint.display()))?;
    Ok(ExitCode::SUCCESS)
}

struct Mounted {
    session: fuser::Session<KmsFs>,
    ctl: CtlServer,
    keys: Arc<KeyService>,
    mountpoint: PathBuf,
    cipherdir: PathBuf,
    sweeper: Option<crate::fs::revoke::Sweeper>,
}

/// Both directories exist; the mountpoint is not inside the backing
/// directory (the mount would read through itself).
fn check_dirs(cipherdir: &Path, mountpoint: &Path) -> Result<(PathBuf, PathBuf), String> {
    let dir = |p: &Path, what: &str| -> Result<PathBuf, String> {
        let c = std::fs::canonicalize(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
        if !c.is_dir() {
            return Err(format!("{what} {} is not a directory", p.display()));
        }
        Ok(c)
    };
    let c = dir(cipherdir, "cipher directory")?;
    let m = dir(mountpoint, "mountpoint")?;
    if m.starts_with(&c) {
        return Err(format!(
            "the mountpoint {} must not be inside the cipher directory {}",
            m.display(),
            c.display()
        ));
    }
    Ok((c, m))
}

fn prepare(a: &MountArgs) -> Result<Mounted, String> {
    let (cipherdir, mountpoint) = check_dirs(&a.cipherdir, &a.mountpoint)?;
    let ctl_path = ctl::socket_path(&mountpoint)?;
    if ctl::client::query_socket(&ctl_path).is_ok() {
        return Err(format!("{} is already a kmsfs mount", mountpoint.display()));
    }
    let opts = parse_options(&a.options)?;
    let kms = a.kms.open(
        &format!(
            "kmsfs {} {}",
            env!("CARGO_PKG_VERSION"),
            mountpoint.display()
        ),
        Some(KMSD_CALL_TIMEOUT),
    )?;
    // Reads and authenticates the config: unwraps the config key, so a
    // denied, disabled or wrong key fails here, before mounting.
    let (config, volume_keys) = load_volume_keys(kms.clone(), &cipherdir, a.key_id.as_deref())
        .map_err(|e| {
            match e {
                // The key service could not be reached at all: say where we
                // looked.
                VolumeError::Key(KeyError::Unavailable(m)) => {
                    format!("cannot reach {}: {m}", kms.describe())
                }
                e => format!("cannot open the volume {}: {e}", cipherdir.display()),
            }
        })?;
    let layout = Layout::of(&config, &volume_keys)?;
    if layout.encrypted_names() {
        // Long names need 255-byte backing names (docs/FORMAT.md "Names").
        let st = nix::sys::statvfs::statvfs(&cipherdir)
            .map_err(|e| format!("cannot statfs {}: {e}", cipherdir.display()))?;
        if st.name_max() < crate::format::names::NAME_MAX_BACKING as u64 {
            return Err(format!(
                "{}: the backing file system allows names of {} bytes; encrypted names need {}",
                cipherdir.display(),
                st.name_max(),
                crate::format::names::NAME_MAX_BACKING
            ));
        }
    }
    // The mount follows a `kmsfs rewrap --to-key` (docs/FORMAT.md "A mount
    // follows a rewrap"): it keeps the config key to check a changed config.
    let keys = Arc::new(KeyService::following(
        kms.clone(),
        &cipherdir,
        &config,
        &volume_keys.config_key,
        KeyOptions {
            cache_capacity: a.cache_capacity,
            cache_ttl: Duration::from_secs(a.cache_ttl),
            pool_size: a.pool_size,
            ..KeyOptions::default()
        },
    ));
    drop(volume_keys);
    let fs = KmsFs::new(
        &cipherdir,
        keys.clone(),
        layout,
        FsOptions {
            writeback_cache: !opts.no_writeback_cache,
            ..FsOptions::default()
        },
    )
    .map_err(|e| format!("cannot open {}: {e}", cipherdir.display()))?;
    let k = keys.clone();
    fs.on_destroy(move || k.clear());
    let sweeper = fs.sweeper();
    let fs_stats = fs.stats();
    let kernel = fs.kernel_link();
    let cfg = session_config(&cipherdir, &opts, a.threads);
    let session = mount(fs, &mountpoint, &cfg).map_err(|e| {
        format!(
            "cannot mount {} at {}: {e}{}",
            cipherdir.display(),
            mountpoint.display(),
            device_hint(&e)
        )
    })?;
    // Before `run`: no request is served yet, so none misses it.
    kernel.connect(session.notifier(), a.threads);
    let info = Status {
        pid: std::process::id(),
        mountpoint: mountpoint.display().to_string(),
        cipherdir: cipherdir.display().to_string(),
        key_arn: config.key_arn.clone(),
        volume_id: config.volume_id.to_hex(),
        kms: kms.describe(),
        log_file: match (a.ready_fd, &a.log) {
            (None, _) => None,
            (Some(_), Some(l)) => Some(l.display().to_string()),
            (Some(_), None) => Some(ctl::path::log_path(&mountpoint)?.display().to_string()),
        },
        ..Status::default()
    };
    let capacity = a.cache_capacity as u64;
    let k = keys.clone();
    let ctl = CtlServer::start(&ctl_path, move || {
        let ks = k.stats();
        let fsf = fs_stats.figures();
        let mut s = info.clone();
        s.cache = ctl::protocol::CacheFigures {
            entries: ks.entries as u64,
            capacity,
            hits: ks.hits,
            misses: ks.misses,
            evictions: ks.evictions,
        };
        s.kmsd = ctl::protocol::KmsdFigures {
            calls: ks.kmsd_calls,
            errors: ks.kmsd_errors,
            pool_ready: ks.pool_available as u64,
            pool_taken: ks.pool_taken,
            pool_empty: ks.pool_empty,
        };
        s.fs = ctl::protocol::FsFigures {
            inodes: fsf.inodes,
            open_files: fsf.open_files,
            damaged_reads: fsf.damaged_reads,
            key_errors: fsf.key_errors,
        };
        s
    })
    .map_err(|e| {
        format!(
            "cannot start the control socket {}: {e}",
            ctl_path.display()
        )
    })?;
    Ok(Mounted {
        session,
        ctl,
        keys,
        mountpoint,
        cipherdir,
        sweeper,
    })
}

/// Runs the revocation sweep (docs: README "Revocation") until the flag
/// it returns is set; a revoked file's cached pages are dropped.
fn start_sweeper(
    sweeper: Option<crate::fs::revoke::Sweeper>,
    notifier: fuser::Notifier,
) -> Arc<std::sync::atomic::AtomicBool> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let Some(s) = sweeper else { return stop };
    let flag = stop.clone();
    let started = std::thread::Builder::new()
        .name("kmsfs-revoke".into())
        .spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(s.interval());
                s.sweep(&|ino| {
                    if let Err(e) = notifier.inval_inode(ino, 0, 0) {
                        tracing::debug!("cannot drop the cached pages of inode {}: {e}", ino.0);
                    }
                });
            }
        });
    if let Err(e) = started {
        tracing::error!(
            "cannot start the revocation sweep: {e}; keys are checked per request only"
        );
    }
    stop
}

/// Why an unprivileged mount was refused, when the reason is that the user
/// may not open /dev/fuse (fusermount3 opens it with the user's rights).
fn device_hint(e: &std::io::Error) -> String {
    let open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(DEV_FUSE);
    match open {
        Err(d) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
            " ({DEV_FUSE}: {d}; unprivileged mounts need read-write access to it: \
             mode 0666, the udev default, or a group of the user)"
        ),
        _ => String::new(),
    }
}

const DEV_FUSE: &str = "/dev/fuse";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_of_a_mount_comes_from_mountinfo() {
        let info = "22 1 0:21 / / rw - ext4 /dev/vda rw\n\
                    90 22 0:57 / /tmp/a\\040b rw - fuse.kmsfs /c rw\n\
                    91 22 0:58 / /tmp/m rw - fuse.kmsfs /c rw\n";
        assert_eq!(
            mountinfo_device(info, Path::new("/tmp/m")).as_deref(),
            Some("0:58")
        );
        assert_eq!(
            mountinfo_device(info, Path::new("/tmp/a b")).as_deref(),
            Some("0:57")
        );
        assert_eq!(mountinfo_device(info, Path::new("/nope")), None);
    }

    #[test]
    fn a_mountpoint_inside_the_cipher_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let c = t.path().join("c");
        std::fs::create_dir_all(c.join("m")).unwrap();
        let e = check_dirs(&c, &c.join("m")).unwrap_err();
        assert!(e.contains("must not be inside"), "{e}");
        let e = check_dirs(&c, &c).unwrap_err();
        assert!(e.contains("must not be inside"), "{e}");
        let e = check_dirs(&c, &t.path().join("nope")).unwrap_err();
        assert!(e.contains("mountpoint"), "{e}");
        std::fs::create_dir(t.path().join("m")).unwrap();
        assert!(check_dirs(&c, &t.path().join("m")).is_ok());
    }
}
