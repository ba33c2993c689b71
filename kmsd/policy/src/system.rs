//! [`Directory`] over the system's user and group databases (NSS:
//! `/etc/passwd`, `/etc/group`, LDAP, ...), through the reentrant libc
//! calls. The only file in this crate that does I/O.

use crate::directory::Directory;
use libc::{c_char, c_int};
use std::ffi::{CStr, CString};
use std::mem::MaybeUninit;
use std::ptr;

/// The system's user and group databases.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemDirectory;

/// The largest lookup buffer tried before giving up (entries with huge
/// member lists need more than the usual 1 KiB).
const MAX_BUF: usize = 1 << 20;
/// The most groups asked of getgrouplist (Linux's NGROUPS_MAX).
const MAX_GROUPS: usize = 65_536;

/// Runs a `get*_r` call with a buffer that doubles on ERANGE. `call` gets
/// the buffer and returns the entry found (or `None`), or the call's error.
fn lookup<T>(mut call: impl FnMut(&mut [c_char]) -> Result<Option<T>, c_int>) -> Option<T> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as c_char; size];
        match call(&mut buf) {
            Ok(entry) => return entry,
            Err(libc::ERANGE) if size < MAX_BUF => size *= 2,
            Err(_) => return None,
        }
    }
}

fn string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libc filled `p` with a NUL-terminated string inside the
    // buffer that is still alive while the caller reads it.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// (uid, name, primary gid) of a passwd entry, by name or by uid.
fn passwd(by: Result<&CStr, u32>) -> Option<(u32, String, u32)> {
    let mut pwd = MaybeUninit::<libc::passwd>::zeroed();
    let mut out: *mut libc::passwd = ptr::null_mut();
    lookup(|buf| {
        // SAFETY: every pointer is valid for the call; buf.len() is the
        // buffer's true length.
        let rc = unsafe {
            match by {
                Ok(name) => libc::getpwnam_r(
                    name.as_ptr(),
                    pwd.as_mut_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut out,
                ),
                Err(uid) => {
                    libc::getpwuid_r(uid, pwd.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut out)
                }
            }
        };
        if rc != 0 {
            return Err(rc);
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: a non-null result points at `pwd`, now filled, and its
        // strings into `buf`, which lives until this closure returns.
        let p = unsafe { &*out };
        Ok(string(p.pw_name).map(|n| (p.pw_uid, n, p.pw_gid)))
    })
}

/// (gid, name) of a group entry, by name or by gid.
fn group(by: Result<&CStr, u32>) -> Option<(u32, String)> {
    let mut grp = MaybeUninit::<libc::group>::zeroed();
    let mut out: *mut libc::group = ptr::null_mut();
    lookup(|buf| {
        // SAFETY: as in `passwd`.
        let rc = unsafe {
            match by {
                Ok(name) => libc::getgrnam_r(
                    name.as_ptr(),
                    grp.as_mut_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut out,
                ),
                Err(gid) => {
                    libc::getgrgid_r(gid, grp.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut out)
                }
            }
        };
        if rc != 0 {
            return Err(rc);
        }
        if out.is_null() {
            return Ok(None);
        }
        // SAFETY: as in `passwd`.
        let g = unsafe { &*out };
        Ok(string(g.gr_name).map(|n| (g.gr_gid, n)))
    })
}

impl Directory for SystemDirectory {
    fn uid_of(&self, name: &str) -> Option<u32> {
        let name = CString::new(name).ok()?;
        passwd(Ok(&name)).map(|(uid, ..)| uid)
    }

    fn gid_of(&self, name: &str) -> Option<u32> {
        let name = CString::new(name).ok()?;
        group(Ok(&name)).map(|(gid, _)| gid)
    }

    fn groups_of(&self, uid: u32, gid: u32) -> Vec<u32> {
        let Some(name) = self.user_name(uid).and_then(|n| CString::new(n).ok()) else {
            return vec![gid];
        };
        let mut want: usize = 64;
        loop {
            let mut groups = vec![0 as libc::gid_t; want];
            let mut n = want as c_int;
            // SAFETY: `groups` holds `n` gids; `name` is NUL-terminated.
            let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
            let n = usize::try_from(n).unwrap_or(0);
            if rc >= 0 {
                groups.truncate(n.min(want));
                if !groups.contains(&gid) {
                    groups.insert(0, gid);
                }
                return groups;
            }
            // -1: too small; glibc put the needed count in `n`.
            if want >= MAX_GROUPS {
                return vec![gid];
            }
            want = n.clamp(want * 2, MAX_GROUPS);
        }
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        passwd(Err(uid)).map(|(_, name, _)| name)
    }

    fn primary_gid(&self, uid: u32) -> Option<u32> {
        passwd(Err(uid)).map(|(.., gid)| gid)
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        group(Err(gid)).map(|(_, name)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Caller;

    // Every Linux system has root (uid 0, group root gid 0).

    #[test]
    fn root_both_ways() {
        let d = SystemDirectory;
        assert_eq!(d.uid_of("root"), Some(0));
        assert_eq!(d.gid_of("root"), Some(0));
        assert_eq!(d.user_name(0).as_deref(), Some("root"));
        assert_eq!(d.group_name(0).as_deref(), Some("root"));
        assert!(d.groups_of(0, 0).contains(&0));
        assert_eq!(d.primary_gid(0), Some(0));
        assert_eq!(d.primary_gid(3_999_999_999), None);
    }

    #[test]
    fn unknown_names_and_ids() {
        let d = SystemDirectory;
        assert_eq!(d.uid_of("no-such-user-kmsd-test"), None);
        assert_eq!(d.gid_of("no-such-group-kmsd-test"), None);
        assert_eq!(d.uid_of("nul\0inside"), None);
        assert_eq!(d.uid_of(""), None);
        assert_eq!(d.user_name(3_999_999_999), None);
        assert_eq!(d.group_name(3_999_999_999), None);
        assert_eq!(d.groups_of(3_999_999_999, 4242), vec![4242]);
    }

    #[test]
    fn agrees_with_the_group_file() {
        // Every group in /etc/group that lists root as a member must be
        // among root's groups.
        let Ok(text) = std::fs::read_to_string("/etc/group") else {
            return;
        };
        let groups = SystemDirectory.groups_of(0, 0);
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() == 4 && f[3].split(',').any(|m| m == "root") {
                let gid: u32 = f[2].parse().unwrap();
                assert!(groups.contains(&gid), "{line} not in {groups:?}");
            }
        }
    }

    #[test]
    fn resolves_a_caller() {
        let c = Caller::resolve(0, 0, Some(1), &SystemDirectory);
        assert_eq!(c.user_name.as_deref(), Some("root"));
        assert!(c.group_names.iter().any(|g| g == "root"));
    }
}
