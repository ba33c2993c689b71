//! The socket side: accept connections, identify the peer (SO_PEERCRED),
//! read frames, run requests, write responses. See `docs/WIRE.md`.

pub mod audit;
mod connection;
pub mod limits;
mod listener;
mod peer;

pub use listener::{ServerConfig, serve};
pub use peer::peer_caller;
