//! The server's side of the audit trail: who a connection's caller is, as
//! its records show it. The records themselves are written by the service's
//! pipeline (`service::pipeline`), for socket requests and kmsd's own
//! events alike.

use crate::service::Caller;
use kmsd_audit::Principal;

/// The audit principal of a connection's caller.
pub fn principal(c: &Caller) -> Principal {
    Principal {
        uid: c.uid,
        gid: c.gid,
        pid: c.pid,
        user_name: c.user_name.clone(),
        group_name: kmsd_policy_group_name(c),
        executable: c.pid.and_then(kmsd_audit::exe_path),
        invoked_by: None,
        access_key_id: None,
        source_ip_address: None,
    }
}

fn kmsd_policy_group_name(c: &Caller) -> Option<String> {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(c.gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}
