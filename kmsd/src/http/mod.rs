//! The AWS endpoint: AWS KMS's JSON 1.1 protocol over HTTP/1.1, plain or
//! in TLS, so the aws CLI, boto3 and the AWS SDKs work against kmsd
//! unchanged (docs/HTTP.md). Requests are signed with SigV4 by access keys kmsd
//! issued (`kmsctl create-access-key`); each then goes through the same
//! pipeline as a socket request (resolve → authorize → execute → audit).
//!
//! - `listener`: the accept loop, connection caps, timeouts, the TLS
//!   handshake;
//! - `tls`: the certificate and key files, reloaded on SIGHUP;
//! - `handler`: one request: read the bounded body, authenticate, decode,
//!   run, encode;
//! - `identity`: access key → caller, and the audit principal;
//! - `signing_keys`: the SigV4 signing keys, derived once per access key,
//!   secret, day and scope.

mod handler;
mod identity;
mod listener;
mod signing_keys;
pub mod tls;

pub use listener::{HttpConfig, serve_http};
pub use tls::{CertStore, TlsFiles};
