//! The caller's identity, from the kernel.

use crate::service::Caller;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::os::fd::AsFd;

/// uid, gid and pid of the process at the other end of a Unix socket, as
/// the kernel recorded them at connect time, with the uid's supplementary
/// groups and the user and group names from the system's databases
/// (resolved once per connection).
pub fn peer_caller(sock: &impl AsFd) -> std::io::Result<Caller> {
    let cred = getsockopt(sock, PeerCredentials).map_err(std::io::Error::from)?;
    Ok(Caller::resolve(
        cred.uid(),
        cred.gid(),
        Some(cred.pid()),
        &kmsd_policy::SystemDirectory,
    ))
}
