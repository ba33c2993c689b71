//! Data keys: the kmsd backend, the LRU cache of unwrapped keys, the pool
//! of pre-generated keys for new files, the [`KeyService`] the filesystem
//! uses, and opening or creating a volume (its authenticated config).

pub mod backend;
pub mod cache;
pub mod clock;
mod error;
pub mod flight;
pub mod follow;
pub mod pool;
pub mod service;
#[doc(hidden)]
pub mod testing;
pub mod volume;

pub use crate::format::DataKey;
pub use backend::{Generated, KmsBackend, RemoteBackend};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::KeyError;
pub use service::{KeyOptions, KeyService, KeyStats, NewFile};
pub use volume::{
    InitFormat, Volume, VolumeError, VolumeKeys, init_volume, init_volume_as, load_volume,
    load_volume_keys, unwrap_volume_keys,
};
