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
    about = "A local key management service with AWS KMS semantics"
)]
struct Args {
    /// Directory of kmsd's state (created on first start).
    #[arg(long)]
    state_dir: PathBuf,
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
    if a.check_audit {
        std::process::exit(check_audit(&a.state_dir));
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
    let mut cfg = DaemonConfig::new(a.state_dir, socket);
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
    if let Err(e) = kmsd::daemon::run(cfg) {
        eprintln!("kmsd: {e:#}");
        std::process::exit(1);
    }
}
