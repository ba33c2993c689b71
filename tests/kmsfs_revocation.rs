//! Revocation within a bounded time: disabling the volume's key,
//! scheduling its deletion, or a key policy that denies the mount makes
//! open files stop serving within the cache TTL (plus the sweep interval),
//! and undoing it restores service without a remount.

mod common;
#[path = "common/mount.rs"]
mod mount;

use common::KmsdProcess;
use kmsd_client::*;
use mount::Volume;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

const TTL: u64 = 2;

/// Polls `f` until it returns true or `limit` passes; how long it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn read_errno(f: &std::fs::File) -> i32 {
    let mut b = [0u8; 16];
    match f.read_at(&mut b, 0) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

/// Revokes with `revoke`, checks open and new reads fail with EACCES
/// within TTL + margin, restores with `restore`, checks reads work again.
fn revoke_and_restore(what: &str, vol: &Volume, revoke: impl FnOnce(), restore: impl FnOnce()) {
    std::fs::write(vol.path(what), b"content that must stop").unwrap();
    let f = std::fs::File::open(vol.path(what)).unwrap();
    assert_eq!(read_errno(&f), 0);
    revoke();
    let limit = Duration::from_secs(TTL + 3);
    let took = within(limit, || read_errno(&f) == libc::EACCES)
        .unwrap_or_else(|| panic!("{what}: the open file still reads after {limit:?}"));
    eprintln!("{what}: open file refused after {took:?} (TTL {TTL} s)");
    assert_eq!(
        std::fs::read(vol.path(what))
            .err()
            .and_then(|e| e.raw_os_error()),
        Some(libc::EACCES),
        "{what}: a new open"
    );
    restore();
    let took = within(Duration::from_secs(5), || read_errno(&f) == 0)
        .unwrap_or_else(|| panic!("{what}: reads did not come back"));
    eprintln!("{what}: restored after {took:?}");
    assert_eq!(
        std::fs::read(vol.path(what)).unwrap(),
        b"content that must stop"
    );
}

#[test]
fn a_revoked_key_stops_open_files_within_the_ttl_and_returns() {
    require_fuse!();
    let kmsd = KmsdProcess::start();
    let vol = Volume::create(&kmsd);
    let _m = vol.mount(&["--cache-ttl", &TTL.to_string()]);
    let c = kmsd.client();
    let key = vol.key_arn.clone();
    revoke_and_restore(
        "disabled",
        &vol,
        || {
            c.call(DisableKeyRequest {
                key_id: key.clone(),
            })
            .unwrap();
        },
        || {
            c.call(EnableKeyRequest {
                key_id: key.clone(),
            })
            .unwrap();
        },
    );
    revoke_and_restore(
        "pending-deletion",
        &vol,
        || {
            c.call(ScheduleKeyDeletionRequest {
                key_id: key.clone(),
                pending_window_in_days: Some(7),
            })
            .unwrap();
        },
        || {
            c.call(CancelKeyDeletionRequest {
                key_id: key.clone(),
            })
            .unwrap();
            // A cancelled deletion leaves the key disabled, as in AWS.
            c.call(EnableKeyRequest {
                key_id: key.clone(),
            })
            .unwrap();
        },
    );
    let original = c
        .call(GetKeyPolicyRequest {
            key_id: key.clone(),
            policy_name: None,
        })
        .unwrap()
        .policy;
    let mut denying: serde_json::Value = serde_json::from_str(&original).unwrap();
    denying["Statement"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "Sid": "DenyDecrypt",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:Decrypt",
            "Resource": "*"
        }));
    revoke_and_restore(
        "policy-denied",
        &vol,
        || {
            c.call(PutKeyPolicyRequest {
                key_id: key.clone(),
                policy_name: None,
                policy: denying.to_string(),
                bypass_policy_lockout_safety_check: false,
            })
            .unwrap();
        },
        || {
            c.call(PutKeyPolicyRequest {
                key_id: key.clone(),
                policy_name: None,
                policy: original.clone(),
                bypass_policy_lockout_safety_check: false,
            })
            .unwrap();
        },
    );
    let log = vol.log();
    assert!(log.contains("kmsd refused the key"), "{log}");
}
