//! The AWS endpoint: AWS KMS's JSON 1.1 protocol over HTTP/1.1, so the
//! aws CLI, boto3 and the AWS SDKs work against kmsd unchanged
//! (docs/HTTP.md). Requests are signed with SigV4 by access keys kmsd
//! issued (`kmsctl create-access-key`); each then goes through the same
//! pipeline as a socket request (resolve → authorize → execute → audit).
//!
//! - `listener`: the accept loop, connection caps, timeouts;
//! - `handler`: one request: read the bounded body, authenticate, decode,
//!   run, encode;
//! - `identity`: access key → caller, and the audit principal.

mod handler;
mod identity;
mod listener;

pub use listener::{HttpConfig, serve_http};
