//! kmsd's AWS endpoint beside its native socket and moto_server, in one
//! run: GenerateDataKey and Decrypt at 1, 4 and 16 clients, one keep-alive
//! connection per client, one request in flight, every HTTP request signed
//! (SigV4) and, for kmsd, authenticated, authorized and audited durably.
//! moto (`pip install 'moto[server]'`) checks neither signatures, key
//! state nor policies: it is a baseline for speed only. It runs when
//! `moto_server` is on PATH (a line says so when it is not).
//!
//! moto's server (werkzeug's development server) answers HTTP/1.1 with
//! `Connection: close` and closes after every response, so a client must
//! open a new connection per request, as urllib3 does. It also drains the
//! socket for 10 ms after answering, with a blocking read of up to 10 MB:
//! a client that sends its next request on the old connection within
//! those 10 ms is never answered (neither side sends again). The client
//! here honors `Connection: close`; so moto's figures include a TCP
//! connect per request.
//!
//! Run: `cargo bench --bench kmsd_http`. Knobs: `KMSD_BENCH_SECS` per cell
//! (default 3); `KMSD_BENCH_REPS` rounds (default 1): each round runs
//! every server once, in turn, and each cell reports its best round, the
//! lowest beside it; `KMSD_BENCH_DIR` for kmsd's state; `KMSD_BENCH_MOTO=0`
//! leaves moto out.
//! Targets on a 2-core machine: HTTP ≥ 50% of the socket's rate at 16
//! clients, and ≥ 20× moto_server's.

#[path = "../tests/common/mod.rs"]
mod common;

use kmsd_client::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Op {
    GenerateDataKey,
    Decrypt,
}

/// One HTTP/1.1 keep-alive connection that signs every request.
struct HttpClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    akid: String,
    secret: String,
    region: &'static str,
}

/// The region signed for: kmsd's default; moto wants a real one.
fn region_for(akid: &str) -> &'static str {
    if akid == MOTO_KEY {
        "us-east-1"
    } else {
        "local"
    }
}

const MOTO_KEY: &str = "AKIDEXAMPLE";

impl HttpClient {
    fn connect(addr: SocketAddr, akid: &str, secret: &str) -> HttpClient {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("read timeout");
        HttpClient {
            addr,
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
            akid: akid.into(),
            secret: secret.into(),
            region: region_for(akid),
        }
    }

    /// Sends one signed call; the response body.
    fn call(&mut self, op: &str, body: &str) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let headers = [
            ("host".to_string(), self.addr.to_string()),
            (
                "content-type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
            ("x-amz-date".to_string(), kmsd_sigv4::format_amz_date(now)),
            ("x-amz-target".to_string(), format!("TrentService.{op}")),
        ];
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        let auth = kmsd_sigv4::sign(
            &kmsd_sigv4::RequestParts {
                method: "POST",
                path: "/",
                query: "",
                headers: &pairs,
                body: body.as_bytes(),
            },
            &kmsd_sigv4::SigningParams {
                access_key_id: &self.akid,
                region: self.region,
                service: "kms",
                signed_headers: None,
            },
            self.secret.as_bytes(),
        )
        .expect("sign");
        let mut req = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "authorization: {auth}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ));
        self.writer.write_all(req.as_bytes()).expect("send");
        let mut status = String::new();
        self.reader.read_line(&mut status).expect("status line");
        assert!(
            !status.is_empty(),
            "{op}: the server closed without answering"
        );
        let mut len = None;
        // HTTP/1.0 closes unless asked otherwise; HTTP/1.1 keeps alive
        // unless the answer says `Connection: close`.
        let mut close = status.starts_with("HTTP/1.0");
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let line = line.to_ascii_lowercase();
            if let Some(v) = line.strip_prefix("content-length:") {
                len = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("connection:") {
                close = v.split(',').any(|t| t.trim() == "close");
            }
        }
        let out = match len {
            Some(n) => {
                let mut out = vec![0; n];
                self.reader.read_exact(&mut out).expect("body");
                out
            }
            None => {
                // No length: the body ends when the server closes.
                close = true;
                let mut out = Vec::new();
                self.reader.read_to_end(&mut out).expect("body");
                out
            }
        };
        if close {
            // The server is done with this connection (moto's werkzeug
            // says so after every answer): the next request goes on a new
            // one, or it would never be answered.
            *self = HttpClient::connect(self.addr, &self.akid, &self.secret);
        }
        assert!(
            status.contains(" 200 "),
            "{status} {}",
            String::from_utf8_lossy(&out)
        );
        out
    }
}

/// ops/s and p99 of `clients` threads running `one` in a loop for `secs`.
fn cell(clients: usize, secs: f64, make: impl Fn() -> Box<dyn FnMut() + Send>) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let mut one = make();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    one();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("bench thread"))
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let p99 = all
        .get((all.len() as f64 * 0.99) as usize)
        .copied()
        .unwrap_or_default();
    (all.len() as f64 / elapsed, p99)
}

/// The encryption context of every data key here, on both wires.
const CONTEXT_JSON: &str = r#"{"kmsfs:volume":"bench"}"#;

/// A key and one of its ciphertexts (under [`CONTEXT_JSON`]) on an HTTP
/// endpoint.
fn http_setup(addr: SocketAddr, akid: &str, secret: &str) -> (String, String) {
    let mut c = HttpClient::connect(addr, akid, secret);
    let made: serde_json::Value =
        serde_json::from_slice(&c.call("CreateKey", "{}")).expect("CreateKey JSON");
    let key = made["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("KeyId")
        .to_string();
    let body =
        format!(r#"{{"KeyId":"{key}","KeySpec":"AES_256","EncryptionContext":{CONTEXT_JSON}}}"#);
    let dk: serde_json::Value =
        serde_json::from_slice(&c.call("GenerateDataKey", &body)).expect("GDK JSON");
    let blob = dk["CiphertextBlob"].as_str().expect("blob").to_string();
    (key, blob)
}

fn http_row(addr: SocketAddr, akid: &str, secret: &str, secs: f64) -> Vec<(f64, Duration)> {
    let (key, blob) = http_setup(addr, akid, secret);
    let mut row = Vec::new();
    for op in [Op::GenerateDataKey, Op::Decrypt] {
        for clients in [1, 4, 16] {
            let (key, blob, akid, secret) = (
                key.clone(),
                blob.clone(),
                akid.to_string(),
                secret.to_string(),
            );
            row.push(cell(clients, secs, move || {
                let mut c = HttpClient::connect(addr, &akid, &secret);
                let body = match op {
                    Op::GenerateDataKey => format!(
                        r#"{{"KeyId":"{key}","KeySpec":"AES_256","EncryptionContext":{CONTEXT_JSON}}}"#
                    ),
                    Op::Decrypt => format!(
                        r#"{{"CiphertextBlob":"{blob}","EncryptionContext":{CONTEXT_JSON}}}"#
                    ),
                };
                let name = match op {
                    Op::GenerateDataKey => "GenerateDataKey",
                    Op::Decrypt => "Decrypt",
                };
                Box::new(move || {
                    c.call(name, &body);
                })
            }));
        }
    }
    row
}

fn socket_row(k: &common::KmsdProcess, secs: f64) -> Vec<(f64, Duration)> {
    let key = k.create_key("bench").key_id;
    let ctx: EncryptionContext = [("kmsfs:volume".to_string(), "bench".to_string())].into();
    let blob = k
        .client()
        .call(GenerateDataKeyRequest {
            key_id: key.clone(),
            encryption_context: ctx.clone(),
            key_spec: Some(DataKeySpec::Aes256),
            number_of_bytes: None,
            grant_tokens: vec![],
        })
        .expect("gdk")
        .ciphertext_blob;
    let mut row = Vec::new();
    for op in [Op::GenerateDataKey, Op::Decrypt] {
        for clients in [1, 4, 16] {
            let (key, blob, ctx, socket) =
                (key.clone(), blob.clone(), ctx.clone(), k.socket.clone());
            row.push(cell(clients, secs, move || {
                let c = Client::connect(&socket).expect("connect");
                let (key, blob, ctx) = (key.clone(), blob.clone(), ctx.clone());
                Box::new(move || match op {
                    Op::GenerateDataKey => {
                        c.call(GenerateDataKeyRequest {
                            key_id: key.clone(),
                            encryption_context: ctx.clone(),
                            key_spec: Some(DataKeySpec::Aes256),
                            number_of_bytes: None,
                            grant_tokens: vec![],
                        })
                        .expect("gdk");
                    }
                    Op::Decrypt => {
                        c.call(DecryptRequest {
                            ciphertext_blob: blob.clone(),
                            encryption_context: ctx.clone(),
                            key_id: None,
                            grant_tokens: vec![],
                        })
                        .expect("decrypt");
                    }
                })
            }));
        }
    }
    row
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn wait_for(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// moto_server on a free loopback port; killed (by pid) and reaped on
/// drop, also when a cell panics.
struct Moto {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Moto {
    /// Starts moto_server, or says why it is not run.
    fn start() -> Result<Moto, String> {
        if std::env::var("KMSD_BENCH_MOTO").is_ok_and(|v| v == "0") {
            return Err("KMSD_BENCH_MOTO=0".into());
        }
        let addr = free_addr();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not on PATH (pip install 'moto[server]')".to_string()
                }
                _ => format!("moto_server did not start: {e}"),
            })?;
        let moto = Moto { child, addr };
        wait_for(moto.addr);
        Ok(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Row = Vec<(f64, Duration)>;

/// Per cell, the round with the most ops/s, and the fewest ops/s of any
/// round.
fn best_of(rounds: &[Row]) -> Vec<((f64, Duration), f64)> {
    (0..rounds[0].len())
        .map(|i| {
            let best = rounds
                .iter()
                .map(|r| r[i])
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .expect("a round");
            let low = rounds.iter().map(|r| r[i].0).fold(f64::INFINITY, f64::min);
            (best, low)
        })
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs: f64 = std::env::var("KMSD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let reps: usize = std::env::var("KMSD_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let tmp = match std::env::var("KMSD_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).expect("tempdir in KMSD_BENCH_DIR"),
        Err(_) => tempfile::tempdir().expect("tempdir"),
    };
    let http = free_addr();
    let listen = http.to_string();
    let k = common::KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &["--http-listen", &listen],
    );
    wait_for(http);
    let ak = k
        .client()
        .call(CreateAccessKeyRequest {
            principal: "uid:0".into(),
            description: Some("bench".into()),
        })
        .expect("access key");
    let secret = ak.secret_access_key.expose().to_string();
    let moto = match Moto::start() {
        Ok(m) => Some(m),
        Err(why) => {
            println!("moto_server: skipped: {why}");
            None
        }
    };
    let mut names = vec!["kmsd socket", "kmsd HTTP"];
    if moto.is_some() {
        names.push("moto_server");
    }
    // Rounds run every server in turn, so that a burst of load from
    // elsewhere on the machine falls on all of them alike.
    let mut rounds: Vec<Vec<Row>> = vec![Vec::new(); names.len()];
    for _ in 0..reps {
        rounds[0].push(socket_row(&k, secs));
        rounds[1].push(http_row(http, &ak.access_key_id, &secret, secs));
        if let Some(m) = &moto {
            rounds[2].push(http_row(m.addr, MOTO_KEY, "secret", secs));
        }
    }
    drop(moto);
    let rows: Vec<_> = rounds.iter().map(|r| best_of(r)).collect();
    println!(
        "kmsd AWS endpoint benchmark ({secs} s per cell, best of {reps} round(s), one connection per client (kept alive unless the server closes it), one request in flight, signed; state in {})",
        tmp.path().display()
    );
    println!(
        "{:<14} {:<16} {:>7} {:>10} {:>10} {:>9}",
        "server", "operation", "clients", "ops/s", "lowest", "p99 µs"
    );
    let ops = ["GenerateDataKey", "Decrypt"];
    let clients = [1, 4, 16];
    for (name, row) in names.iter().zip(&rows) {
        for (i, (op, c)) in ops
            .iter()
            .flat_map(|op| clients.iter().map(move |c| (op, c)))
            .enumerate()
        {
            let ((best, p99), low) = row[i];
            println!(
                "{name:<14} {op:<16} {c:>7} {best:>10.0} {low:>10.0} {:>9.0}",
                p99.as_secs_f64() * 1e6
            );
        }
    }
    for (o, op) in ops.iter().enumerate() {
        for (j, c) in clients.iter().enumerate() {
            let i = o * clients.len() + j;
            let sock = rows[0][i].0.0;
            let http = rows[1][i].0.0;
            print!("{op} at {c} clients: HTTP/socket = {:.2}", http / sock);
            if let Some(m) = rows.get(2) {
                print!(", HTTP/moto = {:.1}", http / m[i].0.0);
            }
            println!();
        }
    }
}
