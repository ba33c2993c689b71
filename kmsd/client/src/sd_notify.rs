//! systemd's readiness protocol (`sd_notify(3)`) without libsystemd: one
//! datagram such as `READY=1` to the Unix socket named by
//! `$NOTIFY_SOCKET`, which systemd sets for a `Type=notify` service. kmsd
//! sends `READY=1` once its socket is bound and `STOPPING=1` when it
//! begins to stop; `kmsfs mount --foreground` sends `READY=1` once the
//! mount is up. Without `$NOTIFY_SOCKET` nothing is sent.
//!
//! The variable holds an absolute path or, with a leading `@`, a name in
//! the abstract namespace (Linux). Other forms (systemd's `vsock:`) are
//! refused with an error naming the value.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;

pub const ENV_NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Where notifications go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A socket file.
    Path(PathBuf),
    /// A name in the abstract namespace (`@name` in the variable).
    Abstract(Vec<u8>),
}

/// The target a `$NOTIFY_SOCKET` value names; `None` for an empty value
/// or a form this module does not speak.
pub fn parse_target(value: &OsStr) -> Option<NotifyTarget> {
    let b = value.as_bytes();
    match b.first() {
        Some(b'/') => Some(NotifyTarget::Path(PathBuf::from(value))),
        Some(b'@') if b.len() > 1 => Some(NotifyTarget::Abstract(b[1..].to_vec())),
        _ => None,
    }
}

/// Sends `state` (newline-separated `KEY=VALUE` lines) to `target`.
pub fn notify_to(target: &NotifyTarget, state: &str) -> io::Result<()> {
    let addr = match target {
        NotifyTarget::Path(p) => SocketAddr::from_pathname(p)?,
        NotifyTarget::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
    };
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", state.len()),
        ));
    }
    Ok(())
}

/// Sends `state` to `$NOTIFY_SOCKET`: `Ok(false)` when the variable is
/// unset or empty (not run by systemd as `Type=notify`), `Ok(true)` once
/// sent, an error when the value is unusable or the send fails.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(value) = std::env::var_os(ENV_NOTIFY_SOCKET).filter(|v| !v.is_empty()) else {
        return Ok(false);
    };
    let target = parse_target(&value).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "${ENV_NOTIFY_SOCKET} {} is neither an absolute path nor an @abstract name",
                crate::logsafe::escape_os(&value)
            ),
        )
    })?;
    notify_to(&target, state)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn values_parse_as_paths_or_abstract_names() {
        assert_eq!(
            parse_target(OsStr::new("/run/systemd/notify")),
            Some(NotifyTarget::Path(PathBuf::from("/run/systemd/notify")))
        );
        assert_eq!(
            parse_target(OsStr::new("@/org/freedesktop/systemd1/notify/1")),
            Some(NotifyTarget::Abstract(
                b"/org/freedesktop/systemd1/notify/1".to_vec()
            ))
        );
        assert_eq!(parse_target(OsStr::new("")), None);
        assert_eq!(parse_target(OsStr::new("@")), None);
        assert_eq!(parse_target(OsStr::new("relative/sock")), None);
        assert_eq!(parse_target(OsStr::new("vsock:2:1234")), None);
    }

    #[test]
    fn a_message_reaches_a_path_socket() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("notify");
        let rx = UnixDatagram::bind(&p).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        notify_to(&NotifyTarget::Path(p), "READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
    }

    #[test]
    fn a_message_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("kmsd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let target = parse_target(OsStr::new(&format!("@{name}"))).unwrap();
        notify_to(&target, "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn nobody_listening_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let e = notify_to(&NotifyTarget::Path(t.path().join("none")), "READY=1");
        assert!(e.is_err());
    }
}
