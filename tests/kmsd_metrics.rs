//! kmsd's Prometheus metrics (`--metrics-listen`), scraped from a real
//! kmsd: the request counters match the calls made over the socket and
//! over HTTP, allowed and denied; every family is declared; histograms
//! are cumulative; the connection figures follow connections; bad
//! requests to the metrics port get clean answers; a non-loopback address
//! is refused unless `--insecure-metrics`.

mod common;
#[path = "common/http.rs"]
mod http;

use common::KmsdProcess;
use http::{free_port, wait_listening};
use kmsd_client::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// One raw HTTP exchange on a fresh connection, read to the end (the
/// metrics port closes after one answer): status, headers, body. `Err`
/// if the server neither answered nor closed within 10 s.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<(u16, String, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    // The server may close before it has read all of a bad request.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("no answer and no close: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    exchange(addr, req.as_bytes()).expect("an answer")
}

/// One sample: name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A series' labels other than `le`, in order.
type Labels = Vec<(String, String)>;

/// The families declared (name → type) and the samples of an exposition.
struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

/// A label value up to its closing quote, unescaped; the rest after it.
fn unquote(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match it.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c)) => out.push(c),
                None => panic!("dangling escape: {s}"),
            },
            c => out.push(c),
        }
    }
    panic!("unterminated label value: {s}");
}

/// Parses text format 0.0.4. Every non-comment line is
/// `name{labels} value`; a family has `# HELP` and then `# TYPE` before
/// its samples; a histogram's samples are its `_bucket`, `_sum` and
/// `_count`.
fn parse(text: &str) -> Exposition {
    let mut helped = HashSet::new();
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("# HELP ") {
            let (name, help) = r.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "empty help: {line}");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(r) = line.strip_prefix("# TYPE ") {
            let (name, kind) = r.split_once(' ').expect("TYPE name kind");
            assert!(helped.contains(name), "TYPE without HELP first: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "declared twice: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        assert!(!line.is_empty(), "empty line");
        let end = line.find(['{', ' ']).expect("a name");
        let name = &line[..end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        let mut rest = &line[end..];
        let mut labels = BTreeMap::new();
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                if let Some(r) = l.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let l2 = l.strip_prefix(',').unwrap_or(l);
                let (k, v) = l2.split_once("=\"").expect("label=\"value\"");
                let (v, after) = unquote(v);
                assert!(labels.insert(k.to_string(), v).is_none(), "{line}");
                l = after;
            }
        }
        let value: f64 = rest
            .strip_prefix(' ')
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad value: {line}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
        if kind == "counter" {
            assert!(value >= 0.0, "negative counter: {line}");
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    let e = Exposition { types, samples };
    e.check_histograms();
    e
}

impl Exposition {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }

    /// Encrypt's requests with `outcome` over `transport` (0 when the
    /// series is absent: exception series appear once they occur).
    fn requests(&self, op: &str, outcome: &str, transport: &str) -> f64 {
        self.find(
            "kmsd_requests_total",
            &[
                ("operation", op),
                ("outcome", outcome),
                ("transport", transport),
            ],
        )
        .unwrap_or(0.0)
    }

    fn sum_of(&self, name: &str, pred: impl Fn(&Sample) -> bool) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && pred(s))
            .map(|s| s.value)
            .sum()
    }

    /// Each histogram series: buckets in ascending `le`, counts never
    /// falling, the last `+Inf` and equal to `_count`.
    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let bucket = format!("{family}_bucket");
            let mut series: BTreeMap<Labels, Vec<(String, f64)>> = BTreeMap::new();
            for s in self.samples.iter().filter(|s| s.name == bucket) {
                let le = s.labels.get("le").expect("le").clone();
                let key: Vec<_> = s
                    .labels
                    .iter()
                    .filter(|(k, _)| *k != "le")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                series.entry(key).or_default().push((le, s.value));
            }
            for (labels, buckets) in series {
                let les: Vec<f64> = buckets
                    .iter()
                    .map(|(le, _)| {
                        if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().expect("le")
                        }
                    })
                    .collect();
                assert!(les.windows(2).all(|w| w[0] < w[1]), "{family} {labels:?}");
                assert_eq!(buckets.last().map(|b| b.0.as_str()), Some("+Inf"));
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family} {labels:?}: buckets not cumulative"
                );
                let l: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let count = self.value(&format!("{family}_count"), &l);
                assert_eq!(buckets.last().map(|b| b.1), Some(count), "{family}");
                assert!(self.find(&format!("{family}_sum"), &l).is_some());
            }
        }
    }
}

fn scrape(addr: SocketAddr) -> Exposition {
    let (status, head, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body)
}

/// Scrapes until `f` holds (5 s at most): figures that follow a
/// connection closing lag it slightly.
fn scrape_until(addr: SocketAddr, what: &str, f: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let e = scrape(addr);
        if f(&e) {
            return e;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_connections(e: &Exposition, transport: &str) -> f64 {
    e.value("kmsd_open_connections", &[("transport", transport)])
}

fn encrypt(c: &Client, key: &str) -> Result<EncryptResponse, ClientError> {
    c.call(EncryptRequest {
        key_id: key.into(),
        plaintext: SecretBytes::from_slice(b"metrics"),
        encryption_context: Default::default(),
        grant_tokens: vec![],
    })
}

/// A signed Encrypt on the AWS endpoint; the HTTP status.
fn http_encrypt(addr: SocketAddr, key: &(String, String), key_id: &str) -> u16 {
    let body = format!(r#"{{"KeyId":"{key_id}","Plaintext":"aGVsbG8="}}"#);
    let headers = http::signed(
        addr,
        (&key.0, &key.1),
        "local",
        &http::amz_date(0),
        "Encrypt",
        &body,
    );
    let request = format!("{}{body}", http::head_of(&headers, &body));
    exchange(addr, request.as_bytes()).expect("an answer").0
}

/// A key policy that lets `uid` do everything but Encrypt.
fn no_encrypt_policy(uid: u32) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "all", "Effect": "Allow", "Principal": {"Unix": format!("uid:{uid}")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "no-encrypt", "Effect": "Deny", "Principal": {"Unix": format!("uid:{uid}")},
             "Action": "kms:Encrypt", "Resource": "*"}
        ]
    })
    .to_string()
}

struct Kmsd {
    kmsd: KmsdProcess,
    http: SocketAddr,
    metrics: SocketAddr,
    _tmp: tempfile::TempDir,
}

fn kmsd_with_metrics(extra: &[&str]) -> Kmsd {
    let tmp = tempfile::tempdir().expect("tempdir");
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (h, m) = (http.to_string(), metrics.to_string());
    let mut args = vec!["--http-listen", &h, "--metrics-listen", &m];
    args.extend_from_slice(extra);
    let kmsd = KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &args,
    );
    wait_listening(http);
    wait_listening(metrics);
    Kmsd {
        kmsd,
        http,
        metrics,
        _tmp: tmp,
    }
}

#[test]
fn request_counters_match_the_calls_made_over_socket_and_http() {
    let k = kmsd_with_metrics(&[]);
    let uid = nix::unistd::geteuid().as_raw();
    let c = k.kmsd.client();
    let allowed = k.kmsd.create_key("allowed").key_id;
    let denied = k.kmsd.create_key("denied").key_id;
    c.call(PutKeyPolicyRequest {
        key_id: denied.clone(),
        policy_name: None,
        policy: no_encrypt_policy(uid),
        bypass_policy_lockout_safety_check: false,
    })
    .expect("put the policy");

    let (n_ok, n_missing, n_denied) = (7, 3, 4);
    let mut blob = None;
    for _ in 0..n_ok {
        blob = Some(encrypt(&c, &allowed).expect("encrypt").ciphertext_blob);
    }
    for i in 0..n_missing {
        let e = encrypt(&c, &format!("alias/missing-{i}")).expect_err("no such alias");
        assert_eq!(e.kind(), Some(ErrorKind::NotFoundException));
    }
    for _ in 0..n_denied {
        let e = encrypt(&c, &denied).expect_err("denied");
        assert_eq!(e.kind(), Some(ErrorKind::AccessDeniedException));
    }
    c.call(DecryptRequest {
        ciphertext_blob: blob.expect("a ciphertext"),
        key_id: None,
        encryption_context: Default::default(),
        grant_tokens: vec![],
    })
    .expect("decrypt");

    // Over HTTP, with an access key acting as this uid.
    let key = http::access_key(&k.kmsd, &format!("uid:{uid}"));
    let (h_ok, h_denied) = (2, 1);
    for _ in 0..h_ok {
        assert_eq!(http_encrypt(k.http, &key, &allowed), 200);
    }
    for _ in 0..h_denied {
        assert_eq!(http_encrypt(k.http, &key, &denied), 400);
    }
    c.call(DisableKeyRequest {
        key_id: denied.clone(),
    })
    .expect("disable");
    drop(c);

    let e = scrape_until(k.metrics, "every connection closed", |e| {
        open_connections(e, "socket") == 0.0 && open_connections(e, "http") == 0.0
    });
    for family in [
        "kmsd_build_info",
        "kmsd_requests_total",
        "kmsd_request_duration_seconds",
        "kmsd_audit_queue_depth",
        "kmsd_audit_batch_records",
        "kmsd_audit_append_seconds",
        "kmsd_store_commit_seconds",
        "kmsd_open_connections",
        "kmsd_refused_connections_total",
        "kmsd_keys",
    ] {
        assert!(e.types.contains_key(family), "{family} not declared");
    }
    assert_eq!(e.requests("Encrypt", "ok", "socket"), n_ok as f64);
    assert_eq!(
        e.requests("Encrypt", "NotFoundException", "socket"),
        n_missing as f64
    );
    assert_eq!(
        e.requests("Encrypt", "AccessDeniedException", "socket"),
        n_denied as f64
    );
    assert_eq!(e.requests("Encrypt", "ok", "http"), h_ok as f64);
    assert_eq!(
        e.requests("Encrypt", "AccessDeniedException", "http"),
        h_denied as f64
    );
    assert_eq!(e.requests("CreateKey", "ok", "socket"), 2.0);
    assert_eq!(e.requests("PutKeyPolicy", "ok", "socket"), 1.0);
    assert_eq!(e.requests("Decrypt", "ok", "socket"), 1.0);
    assert_eq!(e.requests("DisableKey", "ok", "socket"), 1.0);
    assert_eq!(e.requests("CreateAccessKey", "ok", "socket"), 1.0);
    // Nothing else was answered: the Encrypt series hold every Encrypt,
    // and the other operations only the calls above.
    let encrypts = e.sum_of("kmsd_requests_total", |s| {
        s.labels["operation"] == "Encrypt"
    });
    let all_encrypts = (n_ok + n_missing + n_denied + h_ok + h_denied) as f64;
    assert_eq!(encrypts, all_encrypts);
    let total = e.sum_of("kmsd_requests_total", |_| true);
    assert_eq!(total, all_encrypts + 6.0);
    // The ok series of every operation exist on both transports.
    for op in ["ListKeys", "GenerateDataKey", "ReEncrypt"] {
        for t in ["socket", "http"] {
            let l = [("operation", op), ("outcome", "ok"), ("transport", t)];
            assert_eq!(e.find("kmsd_requests_total", &l), Some(0.0), "{op} {t}");
        }
    }

    // Every Encrypt was timed; an operation never called has no series.
    assert_eq!(
        e.value(
            "kmsd_request_duration_seconds_count",
            &[("operation", "Encrypt")]
        ),
        all_encrypts
    );
    assert!(
        e.find(
            "kmsd_request_duration_seconds_count",
            &[("operation", "ListGrants")]
        )
        .is_none()
    );

    // The audit trail wrote every request's record in its group commits
    // (and kmsd's own start-up records); one append per batch; nothing is
    // waiting now.
    let records = e.value("kmsd_audit_batch_records_sum", &[]);
    assert!(records >= total, "{records} records for {total} requests");
    assert_eq!(
        e.value("kmsd_audit_append_seconds_count", &[]),
        e.value("kmsd_audit_batch_records_count", &[])
    );
    assert_eq!(
        e.value("kmsd_audit_queue_depth", &[("region", "local")]),
        0.0
    );
    // One store commit per mutation (5 here, and kmsd's first service
    // policy at start-up).
    let commits = e.value("kmsd_store_commit_seconds_count", &[]);
    assert!(commits >= 5.0, "{commits} store commits");

    let keys = |state| e.value("kmsd_keys", &[("region", "local"), ("state", state)]);
    assert_eq!(
        (keys("Enabled"), keys("Disabled"), keys("PendingDeletion")),
        (1.0, 1.0, 0.0)
    );
    assert_eq!(
        e.value("kmsd_refused_connections_total", &[("transport", "socket")]),
        0.0
    );
    assert_eq!(
        e.value("kmsd_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
}

#[test]
fn connection_figures_follow_open_and_refused_connections() {
    // A port alone means 127.0.0.1:PORT.
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let metrics: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let p = port.to_string();
    let kmsd = KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &["--metrics-listen", &p, "--max-connections", "2"],
    );
    wait_listening(metrics);
    scrape_until(metrics, "the start-up probes closed", |e| {
        open_connections(e, "socket") == 0.0
    });
    let held: Vec<Client> = (0..2).map(|_| kmsd.client()).collect();
    let e = scrape_until(metrics, "two open", |e| {
        open_connections(e, "socket") == 2.0
    });
    assert_eq!(
        e.value("kmsd_refused_connections_total", &[("transport", "socket")]),
        0.0
    );
    for _ in 0..3 {
        assert!(
            Client::connect(&kmsd.socket).is_err(),
            "over --max-connections"
        );
    }
    let e = scrape(metrics);
    assert_eq!(
        e.value("kmsd_refused_connections_total", &[("transport", "socket")]),
        3.0
    );
    assert_eq!(open_connections(&e, "socket"), 2.0);
    drop(held);
    scrape_until(metrics, "all closed", |e| {
        open_connections(e, "socket") == 0.0
    });
}

#[test]
fn bad_requests_to_the_metrics_port_get_clean_answers() {
    let k = kmsd_with_metrics(&[]);
    let (status, _, body) = get(k.metrics, "/");
    assert_eq!(status, 404, "{body}");
    let (status, _, _) = get(k.metrics, "/metrics/../secret");
    assert_eq!(status, 404);
    let post = format!(
        "POST /metrics HTTP/1.1\r\nhost: {}\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        k.metrics
    );
    let (status, head, _) = exchange(k.metrics, post.as_bytes()).expect("an answer");
    assert_eq!(status, 405, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
    // HEAD: the headers of GET, no body.
    let head_req = format!("HEAD /metrics HTTP/1.1\r\nhost: {}\r\n\r\n", k.metrics);
    let (status, _, body) = exchange(k.metrics, head_req.as_bytes()).expect("an answer");
    assert_eq!((status, body.as_str()), (200, ""));
    // Not HTTP at all, and headers past the buffer's bound: refused
    // (400 or 431) or closed, never a hang.
    for bad in [
        b"\x16\x03\x01\x00\xa5 not http\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nbad header line\r\n\r\n".to_vec(),
        format!(
            "GET /metrics HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(100 << 10)
        )
        .into_bytes(),
    ] {
        let (status, head, _) = exchange(k.metrics, &bad).expect("an answer or a close");
        assert!(
            status == 0 || (400..500).contains(&status),
            "{status}: {head}"
        );
    }
    // Still serving.
    let e = scrape(k.metrics);
    assert!(e.types.contains_key("kmsd_requests_total"));
}

#[test]
fn a_non_loopback_metrics_address_is_refused_unless_asked_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let port = free_port();
    let out = Command::new(common::bin("kmsd"))
        .arg("--state-dir")
        .arg(&state)
        .arg("--socket")
        .arg(tmp.path().join("kmsd.sock"))
        .args(["--metrics-listen", &format!("0.0.0.0:{port}")])
        .output()
        .expect("run kmsd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--metrics-listen 0.0.0.0:") && err.contains("loopback"),
        "{err}"
    );
    assert!(err.contains("--insecure-metrics"), "{err}");
    assert!(!state.exists(), "refused before the state was opened");

    let kmsd = KmsdProcess::start_at(
        &state,
        &tmp.path().join("kmsd.sock"),
        &[
            "--metrics-listen",
            &format!("0.0.0.0:{port}"),
            "--insecure-metrics",
        ],
    );
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(local);
    let e = scrape(local);
    assert!(e.types.contains_key("kmsd_keys"));
    drop(kmsd);
}
