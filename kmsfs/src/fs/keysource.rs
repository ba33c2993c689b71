//! The mount's key source: the core's [`KeyService`].

use super::content::{KeyFailure, KeySource};
use crate::format::FileCipher;
use crate::keys::{KeyError, KeyService};
use fuser::Errno;
use std::sync::Arc;

fn failure(e: KeyError) -> KeyFailure {
    KeyFailure {
        errno: Errno::from_i32(e.errno()),
        damaged: matches!(e, KeyError::Corrupt(_)),
        message: e.to_string(),
    }
}

impl KeySource for KeyService {
    fn new_file(&self) -> Result<(Arc<FileCipher>, Vec<u8>), KeyFailure> {
        let n = KeyService::new_file(self).map_err(failure)?;
        Ok((n.cipher, n.header))
    }

    fn open(&self, header: &[u8]) -> Result<Arc<FileCipher>, KeyFailure> {
        KeyService::open(self, header).map_err(failure)
    }

    fn revalidate_after(&self) -> Option<std::time::Duration> {
        Some(self.ttl())
    }

    fn revalidate(&self, header: &[u8]) -> Result<Arc<FileCipher>, KeyFailure> {
        KeyService::revalidate(self, header).map_err(failure)
    }
}
