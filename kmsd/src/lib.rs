//! kmsd: a local key management service with the semantics of AWS KMS for
//! symmetric keys, served over a Unix socket.
//!
//! Layers, bottom up: `crypto` (pure AEAD, blob codec, encryption context,
//! root key), `store` (durable state behind a trait), `service` (AWS KMS
//! operations over the in-memory state), `server` (socket, frames, peer
//! identity), `daemon` (start-up and shutdown); `metrics` counts what
//! passes through them and serves it to Prometheus. Wire types and the client
//! live in the `kmsd-client` crate.

pub mod audit_check;
pub mod clock;
pub mod crypto;
pub mod daemon;
pub mod http;
pub mod metrics;
pub mod regions;
pub mod server;
pub mod service;
pub mod store;

pub use daemon::{Daemon, DaemonConfig};
