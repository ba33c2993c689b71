//! `kmsfs status`'s side of the control socket.

use super::path::socket_path;
use super::protocol::{CtlRequest, CtlResponse, MAX_LINE, Status};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Asks the mount at `mountpoint` for its status.
pub fn query(mountpoint: &Path) -> Result<Status, String> {
    query_socket(&socket_path(mountpoint)?)
        .map_err(|e| format!("no kmsfs mount answers for {}: {e}", mountpoint.display()))
}

/// Asks the control socket at `socket` for its mount's status.
pub fn query_socket(socket: &Path) -> Result<Status, String> {
    let conn = UnixStream::connect(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let t = Some(Duration::from_secs(5));
    conn.set_read_timeout(t).map_err(|e| e.to_string())?;
    conn.set_write_timeout(t).map_err(|e| e.to_string())?;
    let mut req = serde_json::to_vec(&CtlRequest::Status).map_err(|e| e.to_string())?;
    req.push(b'\n');
    (&conn).write_all(&req).map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_LINE as u64))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    match serde_json::from_str::<CtlResponse>(line.trim()) {
        Ok(CtlResponse::Status(s)) => Ok(*s),
        Ok(CtlResponse::Error { message }) => Err(message),
        Err(e) => Err(format!("bad answer from the mount: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::server::CtlServer;

    #[test]
    fn status_round_trips_over_the_socket_and_the_socket_goes_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("run/x.sock");
        let server = CtlServer::start(&sock, || {
            let mut s = Status {
                pid: 42,
                ..Status::default()
            };
            s.cache.hits = 9;
            s
        })
        .unwrap();
        let s = query_socket(&sock).unwrap();
        assert_eq!((s.pid, s.cache.hits), (42, 9));
        // A second server on a live socket is refused.
        assert!(CtlServer::start(&sock, Status::default).is_err());
        drop(server);
        assert!(!sock.exists());
        assert!(query_socket(&sock).is_err());
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("s.sock");
        // A socket file nobody listens on: bound, never listened. (A
        // listener dropped here could stay alive for a moment in a child
        // another test is forking, and answer.)
        {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr};
            use std::os::fd::AsRawFd;
            let fd = nix::sys::socket::socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            nix::sys::socket::bind(fd.as_raw_fd(), &UnixAddr::new(&sock).unwrap()).unwrap();
        }
        assert!(sock.exists());
        let _server = CtlServer::start(&sock, Status::default).unwrap();
        assert!(query_socket(&sock).is_ok());
    }
}
