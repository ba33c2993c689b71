//! Starting and stopping the daemon: state dir, root key, store, socket,
//! process hardening, the sweeper, signal handling (SIGTERM and SIGINT
//! stop, SIGHUP reloads the TLS certificate) and systemd's readiness
//! notification (`READY=1` once the socket is bound, `STOPPING=1`).
//! `main.rs` only parses arguments and calls [`run`]; tests call
//! [`Daemon::start`].

use crate::clock::{Clock, SystemClock};
use crate::crypto::rootkey::RootKey;
use crate::regions::{self, Regions};
use crate::server::{ServerConfig, serve};
use crate::service::{KeyService, ServiceConfig};
use crate::store::{DEFAULT_CACHE_BYTES, RedbStore};
use anyhow::{Context, bail};
use kmsd_audit::{AuditLog, audit_key_from_root};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub socket_mode: u32,
    pub socket_group: Option<String>,
    pub root_key_file: Option<PathBuf>,
    pub service: ServiceConfig,
    pub server: ServerConfig,
    /// How often the sweeper destroys expired keys and rotates due ones.
    pub sweep_interval: Duration,
    /// Audit trail options (rotation size, checkpoint interval).
    pub audit: kmsd_audit::Options,
    /// TCP addresses of the AWS endpoint (none: the socket only).
    pub http_listen: Vec<std::net::SocketAddr>,
    /// Serve plain HTTP on addresses that are not loopback.
    pub insecure_http: bool,
    /// Serve HTTPS with these files on every `http_listen` address.
    pub tls: Option<crate::http::TlsFiles>,
    pub http: crate::http::HttpConfig,
    /// The state store's page cache, in bytes.
    pub store_cache_bytes: usize,
    /// Regions served besides `service.region`, each its own namespace
    /// (crate::regions).
    pub extra_regions: Vec<String>,
    /// Where to serve Prometheus metrics (`GET /metrics`); none: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve the metrics on an address that is not loopback.
    pub insecure_metrics: bool,
    pub metrics: crate::metrics::MetricsConfig,
    /// Keep the state in etcd (`--store etcd://...`) rather than redb.
    #[cfg(feature = "etcd")]
    pub etcd: Option<crate::store::etcd::EtcdConfig>,
    /// This instance's id (`--instance-id`); default: `STATE_DIR/instance-id`,
    /// made on first start.
    pub instance_id: Option<String>,
}

impl DaemonConfig {
    pub fn new(state_dir: impl Into<PathBuf>, socket: impl Into<PathBuf>) -> Self {
        DaemonConfig {
            state_dir: state_dir.into(),
            socket: socket.into(),
            socket_mode: 0o660,
            socket_group: None,
            root_key_file: None,
            // SAFETY: geteuid cannot fail.
            service: ServiceConfig {
                admin_uid: unsafe { libc::geteuid() },
                ..ServiceConfig::default()
            },
            server: ServerConfig::default(),
            sweep_interval: Duration::from_secs(60),
            audit: kmsd_audit::Options::default(),
            http_listen: Vec::new(),
            insecure_http: false,
            tls: None,
            http: crate::http::HttpConfig::default(),
            store_cache_bytes: DEFAULT_CACHE_BYTES,
            extra_regions: Vec::new(),
            metrics_listen: None,
            insecure_metrics: false,
            metrics: crate::metrics::MetricsConfig::default(),
            #[cfg(feature = "etcd")]
            etcd: None,
            instance_id: None,
        }
    }

    /// Every served region: `service.region` first.
    pub fn served_regions(&self) -> Vec<String> {
        let mut v = vec![self.service.region.clone()];
        v.extend(self.extra_regions.iter().cloned());
        v
    }
}

/// Opens every served region's state (crate::regions): the home region in
/// the state dir, the others below it, all under the one root key. With
/// etcd every region's records live there and only the audit trails in
/// the state dir; the home region is the deployment's (`P/home-region`).
pub fn open_regions(cfg: &DaemonConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Regions> {
    let served = cfg.served_regions();
    regions::check_list(&served)?;
    prepare_state_dir(&cfg.state_dir)?;
    let root_key_file = cfg
        .root_key_file
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("root.key"));
    let stores = StoreOpener::new(cfg, &root_key_file)?;
    let shared_home = stores.home_region(&served)?;
    let first = shared_home.clone().unwrap_or_else(|| served[0].clone());
    let home = regions::home_region(&cfg.state_dir, &served, &first)?;
    if let Some(shared) = shared_home.filter(|s| *s != home) {
        bail!(
            "{} is a state dir of home region '{home}', but the store's home region is '{shared}'",
            cfg.state_dir.display()
        );
    }
    let order = std::iter::once(home.clone()).chain(served.into_iter().filter(|r| *r != home));
    let mut services = Vec::new();
    for region in order {
        let mut c = cfg.clone();
        c.state_dir = regions::state_dir_of(&cfg.state_dir, &home, &region);
        c.root_key_file = Some(root_key_file.clone());
        c.service.region = region.clone();
        let svc = open_service_in(&c, clock.clone(), &stores)
            .with_context(|| format!("cannot open region '{region}'"))?;
        services.push((region, svc));
    }
    Regions::new(&home, services)
}

/// The instance's id: `--instance-id`, or the one in `STATE_DIR/instance-id`
/// (32 hex digits, made on first start).
pub fn instance_id(cfg: &DaemonConfig) -> anyhow::Result<String> {
    if let Some(id) = &cfg.instance_id {
        check_instance_id(id)?;
        return Ok(id.clone());
    }
    let path = cfg.state_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            let id = t.trim().to_string();
            check_instance_id(&id).with_context(|| format!("in {}", path.display()))?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut r = [0u8; 16];
            getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
            let id: String = r.iter().map(|b| format!("{b:02x}")).collect();
            regions::write_durably(&path, &format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `[a-z0-9-]{1,64}`: it becomes part of etcd keys and audit records.
pub fn check_instance_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        bail!(
            "invalid instance id '{}': 1 to 64 of a-z, 0-9 and '-'",
            kmsd_client::logsafe::escape(id)
        );
    }
    Ok(())
}

/// Where each region's records are kept: redb in its state dir, or etcd
/// (one connection for all regions).
pub struct StoreOpener {
    /// The instance id, when instances share the store: every audit
    /// record names it.
    instance: Option<String>,
    #[cfg(feature = "etcd")]
    etcd: Option<Arc<crate::store::etcd::EtcdBackend>>,
}

impl StoreOpener {
    pub fn new(cfg: &DaemonConfig, root_key_file: &Path) -> anyhow::Result<StoreOpener> {
        #[cfg(feature = "etcd")]
        if let Some(e) = &cfg.etcd {
            let instance = instance_id(cfg)?;
            let (root, _) = RootKey::load_or_create(root_key_file)
                .with_context(|| format!("cannot load root key {}", root_key_file.display()))?;
            let backend = crate::store::etcd::EtcdBackend::connect(e.clone(), &instance)?;
            backend.check_format(&root.store_check(&e.prefix), true)?;
            backend.claim_instance()?;
            tracing::info!(store = %e.describe(), prefix = %e.prefix, instance, "state in etcd");
            return Ok(StoreOpener {
                instance: Some(instance),
                etcd: Some(backend),
            });
        }
        let _ = (cfg, root_key_file);
        Ok(StoreOpener {
            instance: None,
            #[cfg(feature = "etcd")]
            etcd: None,
        })
    }

    /// The home region of a shared store (etcd: set by the first
    /// instance); `None` for a state dir's own store, whose `region` file
    /// decides.
    fn home_region(&self, served: &[String]) -> anyhow::Result<Option<String>> {
        #[cfg(feature = "etcd")]
        if let Some(b) = &self.etcd {
            let key = crate::store::etcd_layout::home_key(&b.config.prefix);
            let home = b.put_if_absent(&key, &served[0])?;
            if !served.contains(&home) {
                bail!(
                    "the deployment's home region is '{home}', which is not in --region ({}); \
                     add --region {home}",
                    served.join(", ")
                );
            }
            return Ok(Some(home));
        }
        let _ = served;
        Ok(None)
    }

    fn open(&self, cfg: &DaemonConfig) -> anyhow::Result<Box<dyn crate::store::Store>> {
        #[cfg(feature = "etcd")]
        if let Some(b) = &self.etcd {
            return Ok(Box::new(crate::store::etcd::EtcdStore::open(
                b.clone(),
                &cfg.service.region,
            )));
        }
        Ok(Box::new(RedbStore::open_with_cache(
            &cfg.state_dir.join("state.redb"),
            cfg.store_cache_bytes,
        )?))
    }
}

/// Opens the state (creating it on first start): the service and its audit
/// trail. The state dir is made private first ([`prepare_state_dir`]) and
/// every file in it 0600 once all are open ([`restrict_state_files`]).
pub fn open_service(cfg: &DaemonConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<KeyService>> {
    let root_path = cfg
        .root_key_file
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("root.key"));
    prepare_state_dir(&cfg.state_dir)?;
    let stores = StoreOpener::new(cfg, &root_path)?;
    open_service_in(cfg, clock, &stores)
}

fn open_service_in(
    cfg: &DaemonConfig,
    clock: Arc<dyn Clock>,
    stores: &StoreOpener,
) -> anyhow::Result<Arc<KeyService>> {
    prepare_state_dir(&cfg.state_dir)?;
    let root_path = cfg
        .root_key_file
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("root.key"));
    let (root, created) = RootKey::load_or_create(&root_path)
        .with_context(|| format!("cannot load root key {}", root_path.display()))?;
    if created {
        tracing::info!(path = %root_path.display(), "created a new root key");
    }
    let audit_dir = kmsd_audit::audit_dir(&cfg.state_dir);
    let t = std::time::Instant::now();
    let mut audit_options = cfg.audit.clone();
    if audit_options.observer.is_none() {
        audit_options.observer = Some(crate::metrics::audit_observer());
    }
    if audit_options.instance.is_none() {
        audit_options.instance = stores.instance.clone();
    }
    let log = AuditLog::open(
        &audit_dir,
        audit_key_from_root(root.expose()),
        audit_options,
    )
    .with_context(|| format!("cannot open the audit trail in {}", audit_dir.display()))?;
    let audit_ms = t.elapsed().as_millis() as u64;
    let t = std::time::Instant::now();
    let store = stores.open(cfg)?;
    let store_ms = t.elapsed().as_millis() as u64;
    restrict_state_files(&cfg.state_dir)?;
    let t = std::time::Instant::now();
    let svc = Arc::new(KeyService::new(
        cfg.service.clone(),
        store,
        clock,
        &root,
        Box::new(log),
    )?);
    svc.follow_store()?;
    let keys = svc.read().keys.len();
    let load_ms = t.elapsed().as_millis() as u64;
    tracing::info!(keys, audit_ms, store_ms, load_ms, "state opened");
    Ok(svc)
}

/// Makes the process non-dumpable (no core files, no ptrace by others) and
/// locks its memory where that cannot make later allocations fail: as root
/// (`CAP_IPC_LOCK`) or with an unlimited `RLIMIT_MEMLOCK`. With a finite
/// limit `MCL_FUTURE` would make every mapping past it fail, so kmsd warns
/// and runs unlocked instead (as kmsfs does).
///
/// Locking is `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`: every page
/// kmsd uses stays in RAM, the long-lived keys as well as the data keys and
/// plaintexts passing through request buffers, but a page is locked when
/// first touched rather than when mapped. Address space reserved and never
/// used (malloc arenas, thread stacks, redb's cache before it fills) so
/// costs no RAM, and locked RAM is resident RAM, bounded as docs/STORE.md
/// ("Memory") states. Kernels before 4.4 lack `MCL_ONFAULT`; there kmsd
/// locks as before, with every mapping populated. malloc is held to a few
/// arenas first ([`limit_malloc_arenas`]).
pub fn harden_process() {
    // SAFETY: prctl with PR_SET_DUMPABLE takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not make the process non-dumpable");
    }
    limit_malloc_arenas();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit.
    let unlimited = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0
        && lim.rlim_cur == libc::RLIM_INFINITY;
    if kmsd_client::private_dir::euid() != 0 && !unlimited {
        tracing::warn!(
            limit = lim.rlim_cur,
            "not locking memory (RLIMIT_MEMLOCK is finite); keys may be swapped out"
        );
        return;
    }
    let all = libc::MCL_CURRENT | libc::MCL_FUTURE;
    // SAFETY: mlockall takes flags only.
    let mut r = unsafe { libc::mlockall(all | libc::MCL_ONFAULT) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        r = unsafe { libc::mlockall(all) };
    }
    if r != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lock memory; keys may be swapped out");
    }
}

/// The most malloc arenas kmsd asks for. glibc's default is 8 per core,
/// each reserving 64 MiB of address space (counted as locked) and keeping
/// its own free memory; kmsd's work runs on about one thread per core, so
/// more arenas buy it fragmentation, not speed.
pub const MALLOC_ARENAS: usize = 4;

/// Caps glibc's malloc arenas at one per core, at least 2 and at most
/// [`MALLOC_ARENAS`], unless `MALLOC_ARENA_MAX` is set (glibc reads that
/// itself).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = cores.clamp(2, MALLOC_ARENAS) as libc::c_int;
        // SAFETY: mallopt takes two integers; M_ARENA_MAX only caps arenas
        // created from now on.
        if unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) } != 1 {
            tracing::warn!(arenas, "could not limit malloc arenas");
        }
    }
}

/// Creates the state dir (0700) or, when it exists, checks it: a symlink
/// or a directory owned by another user is refused; one of ours with group
/// or other bits is made 0700 (with a warning).
pub fn prepare_state_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create state dir {}", dir.display()))?;
    let md = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot inspect state dir {}", dir.display()))?;
    if !md.is_dir() {
        bail!(
            "state dir {} is a symlink or not a directory; refusing it",
            dir.display()
        );
    }
    let me = kmsd_client::private_dir::euid();
    if md.uid() != me {
        bail!(
            "state dir {} is owned by uid {}, not by kmsd's uid {me}; refusing it",
            dir.display(),
            md.uid()
        );
    }
    if md.mode() & 0o077 != 0 {
        tracing::warn!(path = %dir.display(), mode = format!("{:o}", md.mode() & 0o7777), "state dir was open to group or others; making it 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make state dir {} 0700", dir.display()))?;
    }
    kmsd_client::private_dir::verify(dir).map_err(|e| anyhow::anyhow!("state dir {e}"))?;
    Ok(())
}

/// Every file under the state dir 0600 and every directory 0700 (redb and
/// the audit trail create theirs under the umask; `run` also sets umask
/// 077 so files created later are private from the start). Symlinks are
/// not followed.
pub fn restrict_state_files(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("cannot list {}", d.display()))?;
            let p = e.path();
            let md = std::fs::symlink_metadata(&p)
                .with_context(|| format!("cannot inspect {}", p.display()))?;
            let want = if md.is_dir() {
                stack.push(p.clone());
                0o700
            } else if md.is_file() {
                0o600
            } else {
                continue;
            };
            if md.mode() & 0o7777 != want {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(want))
                    .with_context(|| format!("cannot make {} {want:o}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// Binds the socket, replacing a stale one nobody listens on.
///
/// The socket never exists at its final path with any other mode or group:
/// it is bound in a fresh directory only kmsd can enter (0700, next to the
/// final path), given its final mode and group there, and then renamed
/// into place; a stale socket is replaced by that same rename.
pub fn bind_socket(cfg: &DaemonConfig) -> anyhow::Result<std::os::unix::net::UnixListener> {
    let path = &cfg.socket;
    let parent = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            let existed = dir.is_dir();
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
            if !existed {
                // The umask (077, set in `run`) cut the mode: the directory
                // kmsd made must let other users reach the socket, whose
                // own mode and group then decide.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
            }
            dir.to_path_buf()
        }
        None => PathBuf::from("."),
    };
    if std::fs::symlink_metadata(path).is_ok()
        && std::os::unix::net::UnixStream::connect(path).is_ok()
    {
        bail!("another kmsd is already listening on {}", path.display());
    }
    let gid = match &cfg.socket_group {
        None => None,
        Some(group) => Some(match group.parse::<u32>() {
            Ok(g) => g,
            Err(_) => nix::unistd::Group::from_name(group)?
                .with_context(|| format!("no such group: {group}"))?
                .gid
                .as_raw(),
        }),
    };
    let staging = BindDir::create(&parent)?;
    let tmp = staging.0.join("s");
    let listener = std::os::unix::net::UnixListener::bind(&tmp)
        .with_context(|| format!("cannot bind {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(cfg.socket_mode))?;
    if let Some(gid) = gid {
        nix::unistd::chown(&tmp, None, Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move the socket into place at {}", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A private directory for binding, removed on drop.
struct BindDir(PathBuf);

impl BindDir {
    fn create(parent: &Path) -> anyhow::Result<BindDir> {
        let mut last = None;
        for _ in 0..8 {
            let mut r = [0u8; 4];
            getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
            let d = parent.join(format!(".kmsd-{:08x}", u32::from_ne_bytes(r)));
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => return Ok(BindDir(d)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a bind directory in {}", parent.display())
                    });
                }
            }
        }
        Err(anyhow::anyhow!(
            "cannot create a bind directory in {}: {last:?}",
            parent.display()
        ))
    }
}

impl Drop for BindDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join("s"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// A running daemon on its own runtime thread; stops on [`Daemon::stop`] or
/// drop. Used by `main` and by in-process tests (with a manual clock).
pub struct Daemon {
    /// The home region's service (the native socket's).
    pub service: Arc<KeyService>,
    pub regions: Arc<Regions>,
    /// The endpoint's certificate, when it serves TLS.
    tls: Option<Arc<crate::http::CertStore>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    socket: PathBuf,
}

impl Daemon {
    pub fn start(cfg: DaemonConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Daemon> {
        // The endpoint's configuration first: a mistake there touches
        // neither the state nor the socket.
        check_http_addresses(&cfg)?;
        check_metrics_address(&cfg)?;
        let tls = match &cfg.tls {
            Some(files) => Some(crate::http::CertStore::open(files.clone())?),
            None => None,
        };
        let tls_config = tls.as_ref().map(|t| t.server_config()).transpose()?;
        let regions = Arc::new(open_regions(&cfg, clock)?);
        let service = regions.home().clone();
        let std_listener = bind_socket(&cfg)?;
        let http_listeners = bind_http(&cfg)?;
        let metrics_listener = bind_metrics(&cfg)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("kmsd")
            .build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let svc = service.clone();
        let served = regions.clone();
        let limits = crate::server::limits::Limits::new(&cfg.server, service.config().admin_uid);
        let socket = cfg.socket.clone();
        let thread = std::thread::Builder::new()
            .name("kmsd-main".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::UnixListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot register the listener");
                            return;
                        }
                    };
                    let sweepers: Vec<_> = served
                        .iter()
                        .map(|s| tokio::spawn(sweep_loop(s.clone(), cfg.sweep_interval)))
                        .collect();
                    let mut http = Vec::new();
                    for l in http_listeners {
                        match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => http.push(tokio::spawn(crate::http::serve_http(
                                l,
                                served.clone(),
                                limits.clone(),
                                cfg.http.clone(),
                                tls_config.clone(),
                                std::future::pending(),
                            ))),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot register an http listener")
                            }
                        }
                    }
                    let metrics =
                        metrics_listener.and_then(|l| match tokio::net::TcpListener::from_std(l) {
                            Ok(l) => Some(tokio::spawn(crate::metrics::serve_metrics(
                                l,
                                served.clone(),
                                cfg.metrics.clone(),
                                std::future::pending(),
                            ))),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot register the metrics listener");
                                None
                            }
                        });
                    serve(listener, svc, limits, cfg.server.clone(), async {
                        let _ = stop_rx.await;
                    })
                    .await;
                    for h in http {
                        h.abort();
                    }
                    if let Some(m) = metrics {
                        m.abort();
                    }
                    for s in sweepers {
                        s.abort();
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(5));
            })?;
        Ok(Daemon {
            service,
            regions,
            tls,
            stop: Some(stop_tx),
            thread: Some(thread),
            socket,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops accepting, finishes in-flight requests, removes the socket.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Loads the TLS certificate and key files again (crate::http::tls):
    /// new connections get the new certificate; when the files are not
    /// usable the previous one stays. Returns whether it was replaced;
    /// false too without TLS.
    pub fn reload_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.reload())
    }

    /// Blocks until SIGTERM or SIGINT, then stops; each SIGHUP meanwhile
    /// reloads the TLS certificate. The three must be blocked in every
    /// thread ([`daemon_signals`]).
    pub fn wait_for_signal(mut self) -> anyhow::Result<()> {
        use nix::sys::signal::Signal;
        let set = daemon_signals();
        loop {
            let sig = set.wait()?;
            if sig == Signal::SIGHUP {
                if self.tls.is_none() {
                    tracing::info!("SIGHUP: no TLS certificate to reload");
                }
                self.reload_tls();
                continue;
            }
            tracing::info!(signal = %sig, "stopping");
            notify_systemd("STOPPING=1");
            self.stop();
            return Ok(());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the AWS endpoint's addresses: all of them HTTPS with `tls`;
/// without it, plain HTTP on loopback only, unless `insecure_http`.
fn bind_http(cfg: &DaemonConfig) -> anyhow::Result<Vec<std::net::TcpListener>> {
    let scheme = if cfg.tls.is_some() { "HTTPS" } else { "HTTP" };
    let mut out = Vec::new();
    for addr in &cfg.http_listen {
        let l = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr}"))?;
        l.set_nonblocking(true)?;
        tracing::info!(addr = %l.local_addr()?, "AWS endpoint listening ({scheme})");
        out.push(l);
    }
    Ok(out)
}

/// Binds the metrics address, when one is given.
fn bind_metrics(cfg: &DaemonConfig) -> anyhow::Result<Option<std::net::TcpListener>> {
    let Some(addr) = cfg.metrics_listen else {
        return Ok(None);
    };
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for metrics"))?;
    l.set_nonblocking(true)?;
    tracing::info!(addr = %l.local_addr()?, "metrics listening (GET /metrics)");
    Ok(Some(l))
}

/// The metrics address's rule, checked before anything is opened: plain
/// HTTP without authentication, so loopback only unless
/// `insecure_metrics`.
fn check_metrics_address(cfg: &DaemonConfig) -> anyhow::Result<()> {
    match cfg.metrics_listen {
        Some(addr) if !addr.ip().is_loopback() && !cfg.insecure_metrics => bail!(
            "--metrics-listen {addr}: metrics are plain HTTP without authentication and \
             are served only on loopback addresses; give --insecure-metrics to serve \
             them on {addr}"
        ),
        _ => Ok(()),
    }
}

/// The endpoint's address rules, checked before anything is opened.
fn check_http_addresses(cfg: &DaemonConfig) -> anyhow::Result<()> {
    if cfg.tls.is_some() && cfg.http_listen.is_empty() {
        bail!(
            "--tls-cert and --tls-key are for the AWS endpoint: give --http-listen ADDR:PORT too"
        );
    }
    if cfg.tls.is_some() || cfg.insecure_http {
        return Ok(());
    }
    match cfg.http_listen.iter().find(|a| !a.ip().is_loopback()) {
        Some(addr) => bail!(
            "--http-listen {addr}: plain HTTP is served only on loopback addresses; \
             give --tls-cert and --tls-key to serve HTTPS there, or --insecure-http \
             to serve {addr} in the clear"
        ),
        None => Ok(()),
    }
}

async fn sweep_loop(svc: Arc<KeyService>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if !svc.may_sweep() {
            continue;
        }
        let s = svc.clone();
        let _ = tokio::task::spawn_blocking(move || s.tick()).await;
    }
}

/// The signals [`Daemon::wait_for_signal`] waits for: SIGTERM and SIGINT
/// (stop), SIGHUP (reload the TLS certificate).
pub fn daemon_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set
}

/// The daemon's whole life, for `main`.
pub fn run(cfg: DaemonConfig) -> anyhow::Result<()> {
    // Block the signals before any thread starts, so every thread inherits
    // the mask and `sigwait` in this one receives them.
    daemon_signals().thread_block()?;
    // Files kmsd creates from here on (audit files, redb's) are private
    // from the start; `restrict_state_files` fixes older ones.
    // SAFETY: umask only sets the process's file creation mask.
    unsafe { libc::umask(0o077) };
    harden_process();
    let daemon = Daemon::start(cfg.clone(), Arc::new(SystemClock))?;
    let regions = daemon.regions.names().join(",");
    tracing::info!(socket = %cfg.socket.display(), state_dir = %cfg.state_dir.display(), regions, "kmsd ready");
    // The socket is bound and the state open: a `Type=notify` unit's
    // dependents may start now.
    notify_systemd("READY=1");
    daemon.wait_for_signal()
}

/// Tells systemd `state` when it started kmsd as `Type=notify`
/// (kmsd_client::sd_notify); a failure is logged, never fatal.
fn notify_systemd(state: &str) {
    if let Err(e) = kmsd_client::sd_notify::notify(state) {
        tracing::warn!(error = %e, state, "cannot notify systemd");
    }
}
