//! The control socket of a mount (in the style of gocryptfs's ctlsock):
//! `kmsfs status MOUNTPOINT` asks the mount process for its figures over a
//! Unix socket whose path is derived from the mountpoint.
//!
//! Wire format: one JSON request line, one JSON response line.

pub mod client;
pub mod path;
pub mod prometheus;
pub mod protocol;
pub mod server;

pub use client::query;
pub use path::socket_path;
pub use prometheus::render_prometheus;
pub use protocol::{CtlRequest, CtlResponse, Status};
pub use server::CtlServer;
