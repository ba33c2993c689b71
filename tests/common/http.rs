//! Helpers of the AWS endpoint tests (kmsd_http, kmsd_tls, kmsd_aws_sdk):
//! ports, waiting for a listener, access keys, and the real AWS clients
//! (boto3, the aws CLI) run with kmsd's credentials and no user config.
#![allow(dead_code)]

use crate::common::KmsdProcess;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use crate::common::net::{free_port, wait_listening};

/// A new access key of `principal`: (id, secret).
pub fn access_key(kmsd: &KmsdProcess, principal: &str) -> (String, String) {
    kmsd.access_key(principal)
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

/// The headers of a request for `op` with `body`, signed as botocore signs
/// them.
pub fn signed(
    addr: SocketAddr,
    key: (&str, &str),
    region: &str,
    amz_date: &str,
    op: &str,
    body: &str,
) -> Vec<(String, String)> {
    let host = addr.to_string();
    let mut headers = vec![
        ("host".to_string(), host),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-date".to_string(), amz_date.to_string()),
        ("x-amz-target".to_string(), format!("TrentService.{op}")),
    ];
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let req = kmsd_sigv4::RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &pairs,
        body: body.as_bytes(),
    };
    let params = kmsd_sigv4::SigningParams {
        access_key_id: key.0,
        region,
        service: "kms",
        signed_headers: None,
    };
    let auth = kmsd_sigv4::sign(&req, &params, key.1.as_bytes()).expect("sign");
    headers.push(("authorization".to_string(), auth));
    headers
}

/// The head of a POST with `headers`, closing the connection after it.
pub fn head_of(headers: &[(String, String)], body: &str) -> String {
    let mut h = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    h
}

/// `X-Amz-Date` of now, shifted by `offset_secs`.
pub fn amz_date(offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset_secs;
    kmsd_sigv4::format_amz_date(now as u64)
}
