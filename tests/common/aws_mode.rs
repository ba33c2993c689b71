//! `KMSFS_TEST_KMS=aws`: the kmsfs tests talk to kmsd through its AWS
//! endpoint (`kmsfs --kms aws`, the AWS SDK, SigV4 with an access key of
//! root) instead of its native socket; everything else stays the same.
//! `scripts/test.sh` runs the kmsfs POSIX and crypto families both ways.
//!
//! [`crate::common::KmsdProcess::start`] then also listens on a loopback
//! port and makes an access key for `uid:0`; the kmsfs harness looks its
//! endpoint up by kmsd's socket.

use crate::common::KmsdProcess;
use crate::common::net::{free_port, wait_listening};
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a kmsd's AWS endpoint is and the key that signs for root.
#[derive(Clone)]
pub struct AwsEndpoint {
    pub url: String,
    pub access_key_id: String,
    pub secret: String,
}

static ENDPOINTS: Mutex<Option<HashMap<PathBuf, AwsEndpoint>>> = Mutex::new(None);

/// Whether this run goes through the AWS endpoint.
pub fn enabled() -> bool {
    match std::env::var("KMSFS_TEST_KMS").as_deref() {
        Ok("aws") => true,
        Ok("native") | Err(_) => false,
        Ok(other) => panic!("KMSFS_TEST_KMS={other}: expected aws or native"),
    }
}

/// Adds `--http-listen` on a free loopback port to kmsd's arguments.
pub fn listen_args(args: &mut Vec<String>) -> SocketAddr {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    args.extend(["--http-listen".to_string(), addr.to_string()]);
    addr
}

/// Records the endpoint of a started kmsd, with a new access key of root.
pub fn register(kmsd: &KmsdProcess, addr: SocketAddr) {
    wait_listening(addr);
    let (access_key_id, secret) = kmsd.access_key("uid:0");
    let e = AwsEndpoint {
        url: format!("http://{addr}"),
        access_key_id,
        secret,
    };
    ENDPOINTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(kmsd.socket.clone(), e);
}

/// The AWS endpoint of the kmsd at `socket`, in AWS mode.
pub fn endpoint(socket: &Path) -> Option<AwsEndpoint> {
    if !enabled() {
        return None;
    }
    let e = ENDPOINTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|m| m.get(socket).cloned());
    Some(e.unwrap_or_else(|| {
        panic!(
            "KMSFS_TEST_KMS=aws, but the kmsd at {} was not started by KmsdProcess::start",
            socket.display()
        )
    }))
}

/// The arguments that point a kmsfs command at the kmsd at `socket`.
pub fn kmsfs_args(socket: &Path) -> Vec<OsString> {
    match endpoint(socket) {
        None => vec!["--socket".into(), socket.into()],
        Some(e) => vec![
            "--kms".into(),
            "aws".into(),
            "--endpoint-url".into(),
            e.url.into(),
            "--region".into(),
            "local".into(),
        ],
    }
}

/// The environment of a kmsfs command: in AWS mode the access key, and
/// none of the user's own AWS configuration.
pub fn kmsfs_env(socket: &Path, cmd: &mut std::process::Command) {
    if let Some(e) = endpoint(socket) {
        cmd.env("AWS_ACCESS_KEY_ID", e.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", e.secret)
            .env("AWS_CONFIG_FILE", "/nonexistent/kmsfs-test-aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/kmsfs-test-aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_KMS");
    }
}

/// What an error naming kmsd's location shows: the socket, or the URL.
pub fn location(socket: &Path) -> String {
    match endpoint(socket) {
        None => socket.display().to_string(),
        Some(e) => e.url,
    }
}
