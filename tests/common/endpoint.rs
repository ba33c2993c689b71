//! A real kmsd with its AWS endpoint on a loopback port, for the tests that
//! talk to it as AWS clients do (boto3, the aws CLI, the AWS SDK for Rust,
//! raw signed requests).
#![allow(dead_code)]

use crate::common::KmsdProcess;
use kmsd_client::CreateAccessKeyRequest;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct Endpoint {
    pub kmsd: KmsdProcess,
    pub addr: SocketAddr,
    _tmp: tempfile::TempDir,
}

/// A port nobody listens on now (the test then asks kmsd to bind it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts kmsd with `--http-listen 127.0.0.1:PORT` and `extra` arguments,
/// and waits until the endpoint accepts connections.
pub fn endpoint(extra: &[&str]) -> Endpoint {
    let tmp = tempfile::tempdir().expect("tempdir");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listen = addr.to_string();
    let mut args = vec!["--http-listen", listen.as_str()];
    args.extend_from_slice(extra);
    let kmsd = KmsdProcess::start_at(
        &tmp.path().join("state"),
        &tmp.path().join("kmsd.sock"),
        &args,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the AWS endpoint did not come up on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Endpoint {
        kmsd,
        addr,
        _tmp: tmp,
    }
}

impl Endpoint {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new access key of `principal`: (access key id, secret).
    pub fn access_key(&self, principal: &str) -> (String, String) {
        let r = self
            .kmsd
            .client()
            .call(CreateAccessKeyRequest {
                principal: principal.into(),
                description: Some("test".into()),
            })
            .unwrap_or_else(|e| panic!("create an access key for {principal}: {e}"));
        (r.access_key_id, r.secret_access_key.expose().to_string())
    }

    /// The audit trail so far, one JSON value per record.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let dir = kmsd_audit::audit_dir(&self.kmsd.state_dir);
        kmsd_audit::query(&dir, kmsd_audit::Filter::default())
            .expect("query")
            .map(|e| serde_json::from_str(&e.expect("entry").raw).expect("json"))
            .collect()
    }
}
