//! The kmsd client library: wire types, the frame codec and a blocking
//! client. kmsd, kmsctl and kmsfs all import these; nothing re-declares
//! them.

pub mod blob;
pub mod client;
pub mod codec;
pub mod error;
pub mod failover;
pub mod logsafe;
pub mod messages;
pub mod no_prealloc;
pub mod nofollow;
pub mod private_dir;
pub mod sd_notify;
pub mod secret;
pub mod socket;
pub mod types;

pub use blob::Blob;
pub use client::{Client, ClientConfig};
pub use error::{ClientError, ErrorKind, KmsError};
pub use messages::*;
pub use secret::{SecretBytes, SecretString};
pub use socket::{default_endpoints, default_socket_path};
pub use types::*;
