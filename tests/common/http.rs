//! Helpers of the AWS endpoint tests (tests/kmsd_http.rs, tests/kmsd_tls.rs):
//! ports, waiting for a listener, access keys, and the real AWS clients
//! (boto3, the aws CLI) run with kmsd's credentials and no user config.
#![allow(dead_code)]

use crate::common::KmsdProcess;
use kmsd_client::CreateAccessKeyRequest;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A port nobody listens on now (the test then asks kmsd to bind it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (10 s at most) until `addr` accepts TCP connections.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the AWS endpoint did not come up on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A new access key of `principal`: (id, secret).
pub fn access_key(kmsd: &KmsdProcess, principal: &str) -> (String, String) {
    let r = kmsd
        .client()
        .call(CreateAccessKeyRequest {
            principal: principal.into(),
            description: Some("test".into()),
        })
        .unwrap_or_else(|e| panic!("create an access key for {principal}: {e}"));
    (r.access_key_id, r.secret_access_key.expose().to_string())
}

pub fn python_has_boto3() -> bool {
    Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn has_aws_cli() -> bool {
    Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A file of tests/http/.
pub fn suite_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/http")
        .join(name)
}

/// `program` with the access key, region `local`, and none of the user's
/// AWS configuration.
pub fn aws_command(program: &str, key: &(String, String)) -> Command {
    let mut c = Command::new(program);
    c.env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_DEFAULT_REGION", "local")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_KMS")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    c
}

/// Stdout and stderr of a finished command, for assertions and messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
