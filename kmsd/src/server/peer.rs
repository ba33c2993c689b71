//! The caller's identity, from the kernel.

use crate::service::Caller;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use std::os::fd::{AsFd, AsRawFd};

/// The most supplementary groups a process can have (Linux NGROUPS_MAX).
const MAX_GROUPS: usize = 65_536;

/// uid, gid and pid of the process at the other end of a Unix socket, as
/// the kernel recorded them at connect time, and the caller's groups: the
/// union of that gid, the uid's passwd primary group, the group database's
/// supplementary groups and the groups the kernel recorded for the peer
/// process (SO_PEERGROUPS), with the user and group names from the system's
/// databases (resolved once per connection).
pub fn peer_caller(sock: &impl AsFd) -> std::io::Result<Caller> {
    let cred = getsockopt(sock, PeerCredentials).map_err(std::io::Error::from)?;
    let process_groups = peer_groups(sock)?;
    Ok(Caller::resolve_with(
        cred.uid(),
        cred.gid(),
        Some(cred.pid()),
        &process_groups,
        &kmsd_policy::SystemDirectory,
    ))
}

/// The supplementary groups the kernel recorded for the peer at connect
/// time (SO_PEERGROUPS, Linux 4.13+). On a kernel without it (ENOPROTOOPT)
/// the database's groups alone count; /proc/<pid>/status is not read, as
/// the pid may have been reused by then.
pub fn peer_groups(sock: &impl AsFd) -> std::io::Result<Vec<u32>> {
    let fd = sock.as_fd().as_raw_fd();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` has room for `len` bytes; fd is a live socket.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n.min(groups.len()));
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // The kernel put the size it needs in `len`.
            Some(libc::ERANGE) if n > groups.len() && n <= MAX_GROUPS => groups.resize(n, 0),
            Some(libc::ENOPROTOOPT) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn peer_groups_are_this_process_groups() {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        let mut got = peer_groups(&a).expect("SO_PEERGROUPS");
        let mut want: Vec<u32> = nix::unistd::getgroups()
            .expect("getgroups")
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        got.sort_unstable();
        want.sort_unstable();
        want.dedup();
        got.dedup();
        assert_eq!(got, want);
        let c = peer_caller(&a).expect("peer_caller");
        assert!(want.iter().all(|g| c.groups.contains(g)));
    }
}
