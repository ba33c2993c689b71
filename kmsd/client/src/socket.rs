//! Where kmsd listens by default, and whom a client accepts as kmsd.
//!
//! Socket: `$KMSD_SOCKET`, else `/run/kmsd/kmsd.sock` for root, else
//! `<runtime dir>/kmsd.sock` for other users, where the runtime dir is
//! `$XDG_RUNTIME_DIR`, `/run/user/<uid>` or `$HOME/.local/state`, each
//! verified private (see [`crate::private_dir`]). There is no fallback in
//! a world-writable directory such as `/tmp`; when no safe directory
//! exists the lookup fails with an error saying so.
//!
//! Server identity: after connecting, the client reads the server's
//! `SO_PEERCRED` and accepts it only when its uid is root, the caller's
//! own uid, or one of the uids in `$KMSD_UID` (comma-separated uids or
//! user names: the account a system kmsd runs as). Anything else is
//! refused before a single request is sent.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

pub const ENV_SOCKET: &str = "KMSD_SOCKET";
/// The uid(s) (or user names) a kmsd the client trusts may run as,
/// besides root and the caller.
pub const ENV_KMSD_UID: &str = "KMSD_UID";

/// kmsd's default socket for this process; an error when no private
/// directory exists to hold it.
pub fn default_socket_path() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os(ENV_SOCKET).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if crate::private_dir::euid() == 0 {
        return Ok(PathBuf::from("/run/kmsd/kmsd.sock"));
    }
    let dir = crate::private_dir::user_runtime_dir()
        .map_err(|e| io::Error::new(e.kind(), format!("no default kmsd socket: {e}")))?;
    Ok(dir.join("kmsd.sock"))
}

/// kmsd's endpoints for this process: `$KMSD_ENDPOINTS` (several sockets,
/// comma-separated, for failover), else the one default socket.
pub fn default_endpoints() -> io::Result<Vec<PathBuf>> {
    if let Some(v) = std::env::var_os(crate::failover::ENV_ENDPOINTS) {
        let list = crate::failover::parse_endpoints(&v.to_string_lossy());
        if !list.is_empty() {
            return Ok(list);
        }
    }
    default_socket_path().map(|p| vec![p])
}

/// The uids a client accepts as kmsd: root, the caller, and `$KMSD_UID`.
pub fn trusted_server_uids() -> io::Result<Vec<u32>> {
    let mut uids = vec![0, crate::private_dir::euid()];
    if let Some(v) = std::env::var_os(ENV_KMSD_UID).filter(|v| !v.is_empty()) {
        let v = v.to_string_lossy();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            uids.push(parse_uid(item)?);
        }
    }
    uids.dedup();
    Ok(uids)
}

fn parse_uid(item: &str) -> io::Result<u32> {
    if let Ok(u) = item.parse::<u32>() {
        return Ok(u);
    }
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{ENV_KMSD_UID}: {} is neither a uid nor a known user",
                crate::logsafe::escape(item)
            ),
        )
    };
    let name = std::ffi::CString::new(item).map_err(|_| bad())?;
    // SAFETY: getpwnam_r writes into our buffer and struct only.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 || out.is_null() {
        return Err(bad());
    }
    Ok(pw.pw_uid)
}

/// The credentials (pid, uid, gid) of the process at the other end.
pub fn peer_credentials(s: &UnixStream) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid socket fd, and a buffer of the size we pass.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// Refuses a server whose uid is not in `trusted`.
pub fn check_server(s: &UnixStream, trusted: &[u32], what: &str) -> io::Result<()> {
    let cred = peer_credentials(s)?;
    if trusted.contains(&cred.uid) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "refusing the server at {what}: it runs as uid {} (pid {}), which is neither root, \
             this user (uid {}) nor a uid in ${ENV_KMSD_UID}; another user may be impersonating kmsd",
            cred.uid,
            cred.pid,
            crate::private_dir::euid()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_of_our_own_uid_is_accepted_and_others_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let me = crate::private_dir::euid();
        check_server(&a, &[me], "pair").unwrap();
        let e = check_server(&a, &[me.wrapping_add(1)], "pair")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("uid {me}")), "{e}");
    }

    #[test]
    fn uids_parse_as_numbers_or_names() {
        assert_eq!(parse_uid("1234").unwrap(), 1234);
        assert_eq!(parse_uid("root").unwrap(), 0);
        assert!(parse_uid("no-such-user-kmsd-test").is_err());
        assert!(parse_uid("a\0b").is_err());
    }
}
