//! Who an AWS-endpoint request acts as: the principal of the access key
//! that signed it, with its groups from the user database (as a socket
//! caller's), and how its audit records show it (the access key id and the
//! source address, as CloudTrail's `userIdentity.accessKeyId` and
//! `sourceIPAddress`).
//!
//! Resolving a caller reads the user and group databases (NSS, which may be
//! slow), so callers are cached per access key for [`CALLER_TTL`]: a group
//! change reaches access-key callers within that time.

use crate::service::{Caller, KeyService};
use kmsd_audit::Principal;
use kmsd_client::KmsError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CALLER_TTL: Duration = Duration::from_secs(10);

/// A resolved caller, its audit principal (without the source address) and
/// when it was resolved.
type Resolved = (Arc<Caller>, Principal, Instant);

/// Access key id → (caller, its audit principal, when resolved). The
/// caller is shared, not copied, by the requests it makes.
#[derive(Default)]
pub struct Callers {
    cache: Mutex<HashMap<String, Resolved>>,
}

impl Callers {
    /// The caller and audit principal of the access key `access_key_id`
    /// (of `home`, the home region's service; off the async runtime: it
    /// may read the user database).
    pub async fn of(
        &self,
        access_key_id: &str,
        home: &KeyService,
        peer: SocketAddr,
    ) -> Result<(Arc<Caller>, Principal), KmsError> {
        if let Some((c, p, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(access_key_id)
            && at.elapsed() < CALLER_TTL
        {
            return Ok((c.clone(), with_source(p.clone(), peer)));
        }
        let (k, _) = home
            .access_key(access_key_id)
            .ok_or_else(|| KmsError::access_denied("the access key no longer exists"))?;
        let (caller, principal) = tokio::task::spawn_blocking(move || {
            let caller = KeyService::access_key_caller(&k)?;
            let mut p = crate::server::audit::principal(&caller);
            p.access_key_id = Some(k.access_key_id.clone());
            Ok::<_, KmsError>((Arc::new(caller), p))
        })
        .await
        .map_err(|e| KmsError::internal(format!("resolving the caller: {e}")))??;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 4096 {
            cache.retain(|_, (_, _, at)| at.elapsed() < CALLER_TTL);
        }
        cache.insert(
            access_key_id.to_owned(),
            (caller.clone(), principal.clone(), Instant::now()),
        );
        Ok((caller, with_source(principal, peer)))
    }
}

fn with_source(mut p: Principal, peer: SocketAddr) -> Principal {
    p.source_ip_address = Some(peer.ip().to_string());
    p
}

/// The audit principal of a request refused before it was authenticated:
/// no uid is known (`u32::MAX`), only what the request claimed.
pub fn unauthenticated(access_key_id: Option<&str>, peer: SocketAddr) -> Principal {
    Principal {
        uid: u32::MAX,
        gid: u32::MAX,
        access_key_id: access_key_id.map(|s| kmsd_client::logsafe::escape(s).into_owned()),
        source_ip_address: Some(peer.ip().to_string()),
        ..Principal::default()
    }
}
