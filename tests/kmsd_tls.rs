//! kmsd's AWS endpoint over TLS (`--tls-cert`/`--tls-key`), with real
//! clients: boto3 and the aws CLI trusting a test CA; a rustls client that
//! reads the certificate served (SIGHUP reload); plaintext and silent
//! clients on the TLS port; and the start-up refusals. The test CA and
//! server certificates are made per test with the openssl CLI.

mod common;
#[path = "common/http.rs"]
mod http;

use common::KmsdProcess;
use common::pki::Pki;
use http::{access_key, aws_command, free_port, has_aws_cli, output_text, python_has_boto3};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The DER of the first certificate in a PEM file.
fn der_of(pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem)
        .expect("a certificate")
        .to_vec()
}

/// A kmsd serving HTTPS on 127.0.0.1 with `cert.pem`/`key.pem` in its own
/// directory (copies of the test CA's first server certificate), its
/// stderr in `kmsd.log`.
struct TlsEndpoint {
    kmsd: KmsdProcess,
    addr: SocketAddr,
    pki: Pki,
    cert: PathBuf,
    key: PathBuf,
    log: PathBuf,
    tmp: tempfile::TempDir,
}

fn tls_endpoint() -> TlsEndpoint {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(&tmp.path().join("pki"));
    let (crt, key) = pki.server("server-one");
    let serving = tmp.path().join("serving");
    std::fs::create_dir(&serving).unwrap();
    let (cert_file, key_file) = (serving.join("cert.pem"), serving.join("key.pem"));
    install(&crt, &key, &cert_file, &key_file);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = tmp.path().join("kmsd.log");
    let kmsd = KmsdProcess::start_logged(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &[
            "--http-listen",
            &addr.to_string(),
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
        Some(&log),
    );
    http::wait_listening(addr);
    TlsEndpoint {
        kmsd,
        addr,
        pki,
        cert: cert_file,
        key: key_file,
        log,
        tmp,
    }
}

/// Copies a certificate and key over the files kmsd serves (the key
/// stays 0600).
fn install(crt: &Path, key: &Path, cert_file: &Path, key_file: &Path) {
    std::fs::copy(crt, cert_file).unwrap();
    std::fs::copy(key, key_file).unwrap();
    std::fs::set_permissions(key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

impl TlsEndpoint {
    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn sighup(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.kmsd.pid() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP kmsd by pid");
    }
}

/// A rustls client trusting only `ca`. It resumes no session, so each
/// connection's handshake shows the certificate served now (a resumed
/// session keeps the one it was made with).
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read the CA") {
        roots.add(c.expect("a CA certificate")).expect("add the CA");
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr`, verified for 127.0.0.1, with its handshake
/// done.
fn tls_connect(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> TlsStream {
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).expect("client connection");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .expect("the TLS handshake with kmsd");
    }
    s
}

/// The certificate a new connection is served.
fn served_cert(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let s = tls_connect(addr, cfg);
    s.conn.peer_certificates().expect("a certificate")[0].to_vec()
}

/// An unsigned request on `s`; kmsd's answer (status line to body).
fn unsigned_request(s: &mut impl ReadWrite, close: bool) -> String {
    let body = "{}";
    let head = format!(
        "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amz-target: TrentService.ListKeys\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&out);
        if let Some(i) = text.find("\r\n\r\n") {
            let len = text[..i]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if out.len() >= i + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// kmsd's answer to an unsigned request over a new TLS connection: the
/// refusal AWS gives, so the endpoint is serving.
fn assert_serves_tls(addr: SocketAddr, cfg: &Arc<rustls::ClientConfig>) {
    let answer = unsigned_request(&mut tls_connect(addr, cfg), true);
    assert!(
        answer.starts_with("HTTP/1.1 400")
            && answer.contains("MissingAuthenticationTokenException"),
        "{answer}"
    );
}

#[test]
fn boto3_encrypts_and_decrypts_over_https_trusting_the_test_ca() {
    assert!(
        python_has_boto3(),
        "boto3 is missing: .ci/run installs it (pip install boto3 awscli)"
    );
    let e = tls_endpoint();
    let key = access_key(&e.kmsd, "user:root");
    let script = r#"
import os, boto3, botocore
from botocore.config import Config
cfg = Config(retries={"max_attempts": 1, "mode": "standard"})
kms = boto3.client("kms", endpoint_url=os.environ["KMSD_ENDPOINT"], region_name="local",
                   verify=os.environ["KMSD_CA"], config=cfg)
key_id = kms.create_key(Description="over tls")["KeyMetadata"]["KeyId"]
ct = kms.encrypt(KeyId=key_id, Plaintext=b"hello over tls",
                 EncryptionContext={"via": "https"})["CiphertextBlob"]
pt = kms.decrypt(CiphertextBlob=ct, EncryptionContext={"via": "https"})["Plaintext"]
assert pt == b"hello over tls", pt
print("round trip ok", key_id)
untrusted = boto3.client("kms", endpoint_url=os.environ["KMSD_ENDPOINT"], region_name="local",
                         config=cfg)
try:
    untrusted.list_keys()
    print("UNTRUSTED ACCEPTED")
except botocore.exceptions.SSLError as err:
    print("untrusted refused:", "CERTIFICATE_VERIFY_FAILED" in str(err))
"#;
    let out = aws_command("python3", &key)
        .args(["-c", script])
        .env("KMSD_ENDPOINT", e.url())
        .env("KMSD_CA", e.pki.ca())
        .output()
        .expect("run python3");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("round trip ok"), "{text}");
    assert!(
        text.contains("untrusted refused: True"),
        "without the CA the certificate is not trusted: {text}"
    );
    // The requests reached the pipeline: in the trail with the access key.
    let dir = kmsd_audit::audit_dir(&e.kmsd.state_dir);
    let recs: Vec<serde_json::Value> = kmsd_audit::query(&dir, kmsd_audit::Filter::default())
        .expect("query")
        .map(|r| serde_json::from_str(&r.expect("entry").raw).expect("json"))
        .collect();
    for op in ["CreateKey", "Encrypt", "Decrypt"] {
        assert!(
            recs.iter().any(|r| r["eventName"] == op
                && r["errorCode"].is_null()
                && r["principal"]["accessKeyId"] == key.0.as_str()),
            "{op} over https is audited"
        );
    }
}

#[test]
fn aws_cli_lists_keys_over_https_with_the_ca_bundle() {
    assert!(
        has_aws_cli(),
        "the aws CLI is missing: .ci/run installs it (pip install awscli)"
    );
    let e = tls_endpoint();
    let made = e.kmsd.create_key("listed over https");
    let key = access_key(&e.kmsd, "user:root");
    let ca = e.pki.ca();
    let by_flag = aws_command("aws", &key)
        .args(["--endpoint-url", &e.url(), "--ca-bundle"])
        .arg(&ca)
        .args(["kms", "list-keys", "--output", "json"])
        .output()
        .expect("run aws");
    let by_env = aws_command("aws", &key)
        .args(["--endpoint-url", &e.url(), "kms", "list-keys"])
        .args(["--output", "json"])
        .env("AWS_CA_BUNDLE", &ca)
        .output()
        .expect("run aws");
    for (how, out) in [("--ca-bundle", by_flag), ("AWS_CA_BUNDLE", by_env)] {
        let text = output_text(&out);
        assert!(out.status.success(), "{how}: {text}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{how}: not JSON ({err}): {text}"));
        let ids: Vec<&str> = v["Keys"]
            .as_array()
            .expect("Keys")
            .iter()
            .filter_map(|k| k["KeyId"].as_str())
            .collect();
        assert_eq!(ids, vec![made.key_id.as_str()], "{how}");
    }
    // Without the bundle the CLI does not trust kmsd's certificate.
    let out = aws_command("aws", &key)
        .args(["--endpoint-url", &e.url(), "kms", "list-keys"])
        .output()
        .expect("run aws");
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("CERTIFICATE_VERIFY_FAILED"), "{text}");
}

#[test]
fn plaintext_http_on_the_tls_port_gets_no_kms_answer() {
    let e = tls_endpoint();
    let cfg = client_config(&e.pki.ca());
    for _ in 0..3 {
        let mut plain = TcpStream::connect(e.addr).expect("connect");
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let t = Instant::now();
        let answer = unsigned_request(&mut plain, true);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "closed at once, not at a timeout: {:?}",
            t.elapsed()
        );
        assert!(
            !answer.contains("HTTP/1.1") && !answer.contains("Exception"),
            "no HTTP answer in the clear: {answer:?}"
        );
        // Any bytes are a TLS alert record (content type 21), nothing else.
        let bytes = answer.as_bytes();
        assert!(bytes.is_empty() || bytes[0] == 21, "{bytes:?}");
    }
    assert_serves_tls(e.addr, &cfg);
    assert!(
        !e.log_text().contains("ERROR"),
        "a client's mistake is not kmsd's error: {}",
        e.log_text()
    );
}

#[test]
fn a_client_silent_before_its_hello_is_dropped_and_others_are_served() {
    let e = tls_endpoint();
    let cfg = client_config(&e.pki.ca());
    // One client that connects and never starts the handshake.
    let mut silent = TcpStream::connect(e.addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let t = Instant::now();
    // Meanwhile another is served at once.
    assert_serves_tls(e.addr, &cfg);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // The silent one is closed after the header timeout (10 s).
    let mut buf = [0u8; 64];
    let r = silent.read(&mut buf);
    let waited = t.elapsed();
    assert!(
        matches!(r, Ok(0)) || r.is_err(),
        "closed without an answer: {r:?}"
    );
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(25),
        "dropped after the handshake timeout, not at once nor never: {waited:?}"
    );

    // The connection caps count connections still in their handshake:
    // 128 silent clients from one address fill its seats, the next from
    // it is closed at once, and other addresses are still served.
    let src = "127.0.0.7:0";
    let seats: Vec<TcpStream> = (0..128)
        .map(|_| connect_from(src, e.addr).expect("a silent client"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = connect_from(src, e.addr).expect("one more");
    over.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let r = over.read(&mut buf);
    assert!(
        matches!(r, Ok(0)) || r.is_err(),
        "the 129th connection of one address is closed: {r:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_serves_tls(e.addr, &cfg);
    drop(seats);
}

/// A TCP connection from a chosen loopback source address.
fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let src: SocketAddr = src.parse().map_err(std::io::Error::other)?;
    let (SocketAddr::V4(src), SocketAddr::V4(dst)) = (src, dst) else {
        return Err(std::io::Error::other("ipv4 only"));
    };
    let to_sockaddr = |a: std::net::SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (s, d) = (to_sockaddr(src), to_sockaddr(dst));
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it is handed to TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::bind(fd, &s as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &d as *const _ as *const libc::sockaddr, len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

/// Waits up to 10 s for `cond`.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_reload_keeps_it() {
    let mut e = tls_endpoint();
    let cfg = client_config(&e.pki.ca());
    let one = der_of(&e.cert);
    assert_eq!(served_cert(e.addr, &cfg), one);
    // A connection open across the reload.
    let mut open = tls_connect(e.addr, &cfg);

    let (crt, key) = e.pki.server("server-two");
    let two = der_of(&crt);
    assert_ne!(one, two);
    install(&crt, &key, &e.cert, &e.key);
    e.sighup();
    eventually("a new connection gets the new certificate", || {
        served_cert(e.addr, &cfg) == two
    });
    assert_eq!(
        open.conn.peer_certificates().expect("its certificate")[0].as_ref(),
        one.as_slice(),
        "the open connection keeps its certificate"
    );
    let answer = unsigned_request(&mut open, true);
    assert!(
        answer.contains("MissingAuthenticationTokenException"),
        "and is still served: {answer}"
    );
    assert!(!e.log_text().contains("ERROR"), "{}", e.log_text());

    // A garbage key: one error line, the second certificate still served.
    std::fs::write(&e.key, b"-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    e.sighup();
    eventually("the failed reload is logged", || {
        e.log_text().contains("TLS reload failed")
    });
    std::thread::sleep(Duration::from_millis(300));
    let log = e.log_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("still serving the previous certificate")
            && errors[0].contains("key.pem"),
        "{log}"
    );
    assert_eq!(served_cert(e.addr, &cfg), two);
    assert_serves_tls(e.addr, &cfg);

    // SIGTERM still stops kmsd cleanly.
    let st = e.kmsd.terminate();
    assert!(st.success(), "{st}");
    drop(e.tmp);
}

/// Runs kmsd with `args` and expects it to refuse to start: its stderr.
fn refused(tmp: &Path, args: &[&str]) -> String {
    let mut child = Command::new(common::bin("kmsd"))
        .arg("--state-dir")
        .arg(tmp.join("state"))
        .arg("--socket")
        .arg(tmp.join("kmsd.sock"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kmsd");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kmsd started with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    assert!(!status.success(), "{args:?}: {status} {err}");
    err
}

#[test]
fn kmsd_refuses_to_start_with_half_or_unsafe_tls_or_plain_http_abroad() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let (crt, key) = pki.server("server");
    let (crt_s, key_s) = (crt.to_str().unwrap(), key.to_str().unwrap());
    let listen = format!("127.0.0.1:{}", free_port());

    let err = refused(tmp.path(), &["--http-listen", &listen, "--tls-cert", crt_s]);
    assert!(
        err.contains("--tls-key") && err.contains("required"),
        "{err}"
    );
    let err = refused(tmp.path(), &["--http-listen", &listen, "--tls-key", key_s]);
    assert!(
        err.contains("--tls-cert") && err.contains("required"),
        "{err}"
    );

    let err = refused(tmp.path(), &["--tls-cert", crt_s, "--tls-key", key_s]);
    assert!(err.contains("give --http-listen"), "{err}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = refused(
        tmp.path(),
        &[
            "--http-listen",
            &listen,
            "--tls-cert",
            crt_s,
            "--tls-key",
            key_s,
        ],
    );
    assert!(
        err.contains(key_s) && err.contains("writable by group or others"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let link = tmp.path().join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let err = refused(
        tmp.path(),
        &[
            "--http-listen",
            &listen,
            "--tls-cert",
            crt_s,
            "--tls-key",
            link.to_str().unwrap(),
        ],
    );
    assert!(err.contains("is a symlink (not followed)"), "{err}");

    let (other_crt, _) = pki.server("other");
    let err = refused(
        tmp.path(),
        &[
            "--http-listen",
            &listen,
            "--tls-cert",
            other_crt.to_str().unwrap(),
            "--tls-key",
            key_s,
        ],
    );
    assert!(err.contains("does not belong to the certificate"), "{err}");

    // Plain HTTP off loopback: refused, naming both ways out; nothing was
    // bound (the check comes first).
    let abroad = format!("0.0.0.0:{}", free_port());
    let err = refused(tmp.path(), &["--http-listen", &abroad]);
    assert!(
        err.contains("plain HTTP is served only on loopback addresses")
            && err.contains("--tls-cert and --tls-key")
            && err.contains("--insecure-http"),
        "{err}"
    );

    // The same key, private and not a symlink, starts.
    let addr: SocketAddr = listen.parse().unwrap();
    let k = KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &[
            "--http-listen",
            &listen,
            "--tls-cert",
            crt_s,
            "--tls-key",
            key_s,
        ],
    );
    http::wait_listening(addr);
    assert_serves_tls(addr, &client_config(&pki.ca()));
    drop(k);
}
