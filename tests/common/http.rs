//! Helpers of the AWS endpoint tests (kmsd_http, kmsd_tls, kmsd_aws_sdk):
//! ports, waiting for a listener, access keys, and the real AWS clients
//! (boto3, the aws CLI) run with kmsd's credentials and no user config.
#![allow(dead_code)]

use crate::common::KmsdProcess;
use kmsd_client::CreateAccessKeyRequest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::common::net::{free_port, wait_listening};

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

/// A real kmsd with its AWS endpoint on a loopback port, for the tests that
/// talk to it as AWS clients do.
pub struct Endpoint {
    pub kmsd: KmsdProcess,
    pub addr: SocketAddr,
    _tmp: tempfile::TempDir,
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
    wait_listening(addr);
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
        access_key(&self.kmsd, principal)
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
