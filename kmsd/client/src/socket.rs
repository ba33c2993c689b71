//! Where kmsd listens by default: `$KMSD_SOCKET`, else
//! `/run/kmsd/kmsd.sock` for root and `$XDG_RUNTIME_DIR/kmsd.sock` for
//! other users (`/tmp/kmsd-<uid>/kmsd.sock` when that is unset).

use std::path::PathBuf;

pub const ENV_SOCKET: &str = "KMSD_SOCKET";

pub fn default_socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_SOCKET).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/kmsd/kmsd.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("kmsd.sock"),
        None => PathBuf::from(format!("/tmp/kmsd-{uid}/kmsd.sock")),
    }
}
