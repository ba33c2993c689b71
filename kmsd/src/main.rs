//! `kmsd --state-dir DIR [--socket PATH]`: runs the key service in the
//! foreground until SIGTERM or SIGINT (SIGHUP reloads the TLS certificate).
//! Under systemd (`Type=notify`, deploy/systemd/kmsd.service) it reports
//! `READY=1` once the socket is bound.

use clap::Parser;
use kmsd::DaemonConfig;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "A local key management service with AWS KMS semantics",
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory of kmsd's state (created on first start). With the etcd
    /// store it holds this instance's audit trail and id.
    #[arg(long, required = true)]
    state_dir: Option<PathBuf>,
    /// Where keys, aliases, grants and policies are kept: the state dir's
    /// redb file (default), or etcd://HOST:PORT[,HOST:PORT...] shared by
    /// several instances (docs/STORE.md, "etcd").
    #[arg(long, value_name = "etcd://...")]
    store: Option<String>,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// This instance's id in etcd keys and audit records [default: the one
    /// in STATE_DIR/instance-id, made on first start].
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Socket path [default: $KMSD_SOCKET, /run/kmsd/kmsd.sock for root, else
    /// kmsd.sock in $XDG_RUNTIME_DIR, /run/user/UID or ~/.local/state, verified private]
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Permission bits of the socket, in octal.
    #[arg(long, default_value = "660", value_parser = parse_mode)]
    socket_mode: u32,
    /// Group owning the socket (name or gid).
    #[arg(long)]
    socket_group: Option<String>,
    /// Root key file [default: STATE_DIR/root.key]; keep it on other storage
    /// so the state dir alone reveals no key.
    #[arg(long)]
    root_key_file: Option<PathBuf>,
    /// A region to serve, each its own namespace of keys and aliases (ARNs
    /// carry it); repeatable. The first is the native socket's on a new
    /// state dir (docs/HTTP.md, "Regions").
    #[arg(long, default_value = "local")]
    region: Vec<String>,
    /// Account id in key ARNs.
    #[arg(long, default_value = "000000000000")]
    account: String,
    /// Most connections served at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Most connections one uid may hold (root and the admin uid: no cap).
    #[arg(long, default_value_t = 64)]
    max_connections_per_uid: usize,
    /// Connections of --max-connections kept for root and the admin uid.
    #[arg(long, default_value_t = 16)]
    admin_reserved_connections: usize,
    /// Close a connection that sends no request for this many seconds; 0 = never.
    #[arg(long, default_value_t = 300)]
    idle_timeout_secs: u64,
    /// Requests per second per uid (root and the admin uid exempt); 0 = unlimited.
    #[arg(long, default_value_t = 5000)]
    requests_per_sec: u32,
    /// Requests a uid may send at once above its rate.
    #[arg(long, default_value_t = 10_000)]
    request_burst: u32,
    /// Audit bytes per second per uid, estimated from each request's frame
    /// length (root and the admin uid exempt); 0 = unlimited.
    #[arg(long, default_value_t = 8 << 20)]
    audit_bytes_per_sec: u64,
    /// Audit bytes a uid may use at once above its rate.
    #[arg(long, default_value_t = 32 << 20)]
    audit_burst_bytes: u64,
    /// Seconds between the audit records that count each uid's throttled requests.
    #[arg(long, default_value_t = 10)]
    throttle_report_secs: u64,
    /// Seconds between sweeps for expired deletion windows and due rotations.
    #[arg(long, default_value_t = 60)]
    sweep_interval_secs: u64,
    /// Start a new audit log file when the current one reaches this many
    /// MiB (the hash chain continues across files); 0 = never.
    #[arg(long, default_value_t = 64)]
    audit_rotate_mib: u64,
    /// Serve the AWS KMS API (JSON 1.1 over HTTP, SigV4 with kmsd's access
    /// keys) on ADDR:PORT; repeatable. HTTPS with --tls-cert and --tls-key;
    /// plain HTTP otherwise, on loopback only unless --insecure-http.
    #[arg(long, value_name = "ADDR:PORT")]
    http_listen: Vec<std::net::SocketAddr>,
    /// Allow plain HTTP on addresses other than loopback.
    #[arg(long)]
    insecure_http: bool,
    /// PEM certificate chain (server certificate first) served on every
    /// --http-listen address; reloaded with the key on SIGHUP.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1): owned by
    /// root or kmsd's user, not writable by group or others, not a symlink.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics (text format, `GET /metrics`) on
    /// ADDR:PORT, or on 127.0.0.1:PORT given a port alone; plain HTTP, on
    /// loopback only unless --insecure-metrics (docs/METRICS.md).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_metrics_addr)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Allow --metrics-listen on addresses other than loopback.
    #[arg(long)]
    insecure_metrics: bool,
    /// MiB of the state store's page cache (the service keeps the whole
    /// state in memory; the cache speeds up commits and start-up).
    #[arg(long, default_value_t = 16)]
    store_cache_mib: usize,
    /// Key versions kept unwrapped in memory; the least recently used are
    /// wiped and unwrapped again on their next use.
    #[arg(long, default_value_t = kmsd::crypto::cipher_cache::DEFAULT_CAPACITY)]
    key_cache_size: usize,
    /// Do not serve: check that every mutation committed in STATE_DIR has
    /// its durable audit record (run while kmsd is stopped), list any that
    /// has not, and exit 1 if one is found.
    #[arg(long)]
    check_audit: bool,
}

/// The etcd store's options (kmsd and `kmsd migrate-store`).
#[derive(clap::Args, Clone)]
struct EtcdArgs {
    /// Every etcd key kmsd writes starts with this.
    #[arg(long, default_value = "/kmsd")]
    etcd_prefix: String,
    /// TLS to etcd: ca=FILE[,cert=FILE,key=FILE].
    #[arg(long, value_name = "ca=FILE,...")]
    etcd_tls: Option<String>,
    /// Deadline of one etcd call; a mutation not committed by then fails
    /// with DependencyTimeoutException.
    #[arg(long, default_value_t = 3000)]
    etcd_timeout_ms: u64,
    /// TTL of the lease that holds the sweeper: how soon another instance
    /// takes over deletion and rotation when this one dies.
    #[arg(long, default_value_t = 10)]
    etcd_lease_ttl_secs: i64,
    /// How often this instance writes the heartbeat that measures how
    /// current its state is.
    #[arg(long, default_value_t = 200)]
    etcd_heartbeat_ms: u64,
    /// Refuse requests once etcd has not been heard from for this long
    /// (known state is served until then).
    #[arg(long, default_value_t = 300)]
    etcd_max_stale_secs: u64,
}

#[cfg(feature = "etcd")]
impl EtcdArgs {
    fn config(&self, url: &str) -> Result<kmsd::store::etcd::EtcdConfig, String> {
        use std::time::Duration;
        let mut c = kmsd::store::etcd::EtcdConfig::parse_url(url)?;
        c.prefix = self.etcd_prefix.clone();
        c.timeout = Duration::from_millis(self.etcd_timeout_ms.max(1));
        c.lease_ttl_secs = self.etcd_lease_ttl_secs.max(1);
        c.heartbeat = Duration::from_millis(self.etcd_heartbeat_ms.max(10));
        c.max_stale = Duration::from_secs(self.etcd_max_stale_secs.max(1));
        c.tls = self
            .etcd_tls
            .as_deref()
            .map(kmsd::store::etcd::EtcdTls::parse)
            .transpose()?;
        Ok(c)
    }
}

#[derive(clap::Subcommand)]
enum Command {
    /// Copy a stopped state between a state dir (redb) and etcd, either
    /// way; the copy is read back and compared before it is marked usable.
    MigrateStore {
        /// A state dir, or etcd://HOST:PORT[,...]
        #[arg(long)]
        from: String,
        /// A state dir, or etcd://HOST:PORT[,...]
        #[arg(long)]
        to: String,
        #[command(flatten)]
        etcd: EtcdArgs,
        /// The root key file [default: DIR/root.key of the state dir side].
        #[arg(long)]
        root_key_file: Option<PathBuf>,
        /// Instance id: the audited refs to copy into a dir, or to write
        /// into etcd [default: the dir's instance-id].
        #[arg(long)]
        instance: Option<String>,
        /// Clear an etcd prefix left by an interrupted migration first.
        #[arg(long)]
        overwrite_incomplete: bool,
    },
}

#[cfg(feature = "etcd")]
fn migrate(cmd: Command) -> i32 {
    let Command::MigrateStore {
        from,
        to,
        etcd,
        root_key_file,
        instance,
        overwrite_incomplete,
    } = cmd;
    use kmsd::store::migrate::{Migration, Place, run};
    let place = |t: &str| -> Result<Place, String> {
        match Place::parse(t)? {
            Place::Etcd(_) => etcd.config(t).map(Place::Etcd),
            d => Ok(d),
        }
    };
    let m = match (place(&from), place(&to)) {
        (Ok(from), Ok(to)) => Migration {
            from,
            to,
            root_key_file,
            instance,
            overwrite_incomplete,
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kmsd migrate-store: {e}");
            return 2;
        }
    };
    match run(&m) {
        Ok(copied) => {
            for c in copied {
                println!(
                    "region {}: {} records and {} audited refs copied, read back and equal (sha256 {})",
                    c.region, c.rows, c.audited, c.digest
                );
            }
            0
        }
        Err(e) => {
            eprintln!("kmsd migrate-store: {e:#}");
            1
        }
    }
}

#[cfg(not(feature = "etcd"))]
fn migrate(_: Command) -> i32 {
    eprintln!("kmsd migrate-store: this kmsd was built without the etcd store");
    2
}

/// `--check-audit`: the offline cross-check of state and trail, for the
/// state dir's own region and each one below it (`regions/NAME`).
fn check_audit(state_dir: &std::path::Path) -> i32 {
    let mut worst = check_audit_of(state_dir, "");
    for (name, dir) in kmsd::regions::stored_below(state_dir) {
        worst = worst.max(check_audit_of(&dir, &format!("region {name}: ")));
    }
    worst
}

fn check_audit_of(state_dir: &std::path::Path, label: &str) -> i32 {
    match kmsd::audit_check::check_state_dir(state_dir) {
        Ok(c) if c.is_ok() => {
            println!(
                "{label}OK: all {} committed mutations have their audit record",
                c.matched
            );
            0
        }
        Ok(c) => {
            println!(
                "{label}UNAUDITED: {} of {} committed mutations lack their audit record",
                c.unaudited.len(),
                c.matched + c.unaudited.len()
            );
            for (r, why) in &c.unaudited {
                println!(
                    "  seq {} requestId {} {}: {why}",
                    r.seq,
                    kmsd_client::logsafe::escape(&r.request_id),
                    kmsd_client::logsafe::escape(&r.event_name)
                );
            }
            1
        }
        Err(e) => {
            eprintln!("kmsd: {label}{e:#}");
            2
        }
    }
}

/// `ADDR:PORT`, or a port alone for `127.0.0.1:PORT`.
fn parse_metrics_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|e| format!("not ADDR:PORT or a port: {e}"))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8).map_err(|e| format!("not an octal mode: {e}"))
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    if let Some(cmd) = a.command {
        std::process::exit(migrate(cmd));
    }
    let Some(state_dir) = a.state_dir else {
        eprintln!("kmsd: give --state-dir DIR");
        std::process::exit(2);
    };
    if a.check_audit {
        std::process::exit(check_audit(&state_dir));
    }
    let socket = match a.socket {
        Some(s) => s,
        None => match kmsd_client::default_socket_path() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kmsd: {e}");
                std::process::exit(1);
            }
        },
    };
    let mut cfg = DaemonConfig::new(state_dir, socket);
    cfg.socket_mode = a.socket_mode;
    cfg.socket_group = a.socket_group;
    cfg.root_key_file = a.root_key_file;
    let mut regions = a.region.into_iter();
    cfg.service.region = regions.next().unwrap_or_else(|| "local".into());
    cfg.extra_regions = regions.collect();
    cfg.service.account = a.account;
    cfg.server.max_connections = a.max_connections;
    cfg.server.max_connections_per_uid = a.max_connections_per_uid;
    cfg.server.admin_reserved_connections = a.admin_reserved_connections;
    cfg.server.idle_timeout =
        (a.idle_timeout_secs > 0).then(|| std::time::Duration::from_secs(a.idle_timeout_secs));
    cfg.server.requests_per_sec = a.requests_per_sec;
    cfg.server.request_burst = a.request_burst;
    cfg.server.audit_bytes_per_sec = a.audit_bytes_per_sec;
    cfg.server.audit_burst_bytes = a.audit_burst_bytes;
    cfg.server.throttle_report_interval =
        std::time::Duration::from_secs(a.throttle_report_secs.max(1));
    cfg.sweep_interval = std::time::Duration::from_secs(a.sweep_interval_secs.max(1));
    cfg.store_cache_bytes = a.store_cache_mib << 20;
    cfg.service.key_cache_versions = a.key_cache_size;
    cfg.audit.rotate_bytes = (a.audit_rotate_mib > 0).then_some(a.audit_rotate_mib << 20);
    cfg.http_listen = a.http_listen;
    cfg.insecure_http = a.insecure_http;
    cfg.metrics_listen = a.metrics_listen;
    cfg.insecure_metrics = a.insecure_metrics;
    cfg.tls = match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => Some(kmsd::http::TlsFiles { cert, key }),
        _ => None,
    };
    cfg.instance_id = a.instance_id;
    cfg.service.max_stale = std::time::Duration::from_secs(a.etcd.etcd_max_stale_secs.max(1));
    if let Some(url) = a.store {
        #[cfg(feature = "etcd")]
        match a.etcd.config(&url) {
            Ok(c) => cfg.etcd = Some(c),
            Err(e) => {
                eprintln!("kmsd: --store: {e}");
                std::process::exit(2);
            }
        }
        #[cfg(not(feature = "etcd"))]
        {
            eprintln!("kmsd: --store {url}: this kmsd was built without the etcd store");
            std::process::exit(2);
        }
    }
    if let Err(e) = kmsd::daemon::run(cfg) {
        eprintln!("kmsd: {e:#}");
        std::process::exit(1);
    }
}
