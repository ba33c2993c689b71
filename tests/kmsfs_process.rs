//! What a root mount process does to protect its keys, checked from
//! outside through /proc: its memory is locked (`mlockall`). The same for
//! a user's own mount is in kmsfs_unprivileged.rs. (POSIX ACLs, once
//! refused here, are stored and enforced: kmsfs_acl.rs.)

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use mount::Volume;

/// A field of /proc/<pid>/status in kB (`VmLck:    1234 kB`).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix(" kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"))
}

#[test]
fn a_root_mount_locks_its_memory() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let m = vol.mount(&[]);
    let pid = m.pid.expect("the mount's pid");
    std::fs::write(vol.path("f"), b"data").unwrap();
    assert_eq!(std::fs::read(vol.path("f")).unwrap(), b"data");
    // MCL_CURRENT|MCL_FUTURE: what is mapped is locked, so VmLck is most
    // of the resident set, not just a few pages.
    let (locked, rss) = (status_kb(pid, "VmLck"), status_kb(pid, "VmRSS"));
    assert!(locked > 0, "VmLck {locked} kB: memory not locked");
    assert!(
        locked >= rss / 2,
        "VmLck {locked} kB of VmRSS {rss} kB: not everything is locked"
    );
    assert!(!vol.log().contains("not locking memory"), "{}", vol.log());
    m.unmount();
}
