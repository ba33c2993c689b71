//! Who is asking (`Caller`) and who a policy or grant names (`Principal`).
//!
//! Principals are written `uid:1000`, `gid:100`, `user:alice`,
//! `group:storage`, `account` or `*`. A [`Caller`] is built once per
//! connection from SO_PEERCRED and the user and group databases, so matching
//! a principal against it does no lookups.

use crate::directory::Directory;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest user or group name accepted in a principal.
pub const MAX_NAME_LEN: usize = 256;

/// A principal named in a policy statement or a grant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// `*`: every caller.
    Any,
    /// `account`: the analogue of AWS's `arn:aws:iam::ACCOUNT:root`. In an
    /// Allow statement of a key policy it lets the service policy count for
    /// that key, and it matches the administrator. In a Deny statement it
    /// matches every caller (every local user belongs to the "account").
    Account,
    /// `uid:N`: the caller whose uid is N.
    Uid(u32),
    /// `gid:N`: callers with N as primary or supplementary group.
    Gid(u32),
    /// `user:NAME`: the caller whose uid the user database names NAME.
    User(String),
    /// `group:NAME`: callers in group NAME (primary or supplementary).
    Group(String),
}

impl Principal {
    /// Whether `caller` is this principal. `admin_uid` is the uid kmsd runs
    /// as, which [`Principal::Account`] stands for here.
    pub fn matches(&self, caller: &Caller, admin_uid: u32) -> bool {
        match self {
            Principal::Any => true,
            Principal::Account => caller.uid == admin_uid,
            Principal::Uid(uid) => caller.uid == *uid,
            Principal::Gid(gid) => caller.groups.contains(gid),
            Principal::User(name) => caller.user_name.as_deref() == Some(name.as_str()),
            Principal::Group(name) => caller.group_names.iter().any(|g| g == name),
        }
    }

    /// Whether this names one user or group, as a grantee or retiring
    /// principal must (not `*`, not `account`).
    pub fn is_specific(&self) -> bool {
        !matches!(self, Principal::Any | Principal::Account)
    }

    /// Checks that a `user:` or `group:` name exists in `dir` (other forms
    /// always pass); `Err` names the unknown user or group.
    pub fn check_name(&self, dir: &dyn Directory) -> Result<(), String> {
        match self {
            Principal::User(name) if dir.uid_of(name).is_none() => {
                Err(format!("no user named \"{name}\""))
            }
            Principal::Group(name) if dir.gid_of(name).is_none() => {
                Err(format!("no group named \"{name}\""))
            }
            _ => Ok(()),
        }
    }
}

impl FromStr for Principal {
    type Err = String;

    fn from_str(s: &str) -> Result<Principal, String> {
        let bad = |why: &str| {
            Err(format!(
                "invalid principal \"{s}\": {why}; expected uid:N, gid:N, user:NAME, \
                 group:NAME, account or *"
            ))
        };
        match s {
            "*" => return Ok(Principal::Any),
            "account" => return Ok(Principal::Account),
            _ => {}
        }
        let Some((kind, rest)) = s.split_once(':') else {
            return bad("no type prefix");
        };
        match kind {
            "uid" | "gid" => {
                if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
                    return bad("the id must be a decimal number");
                }
                let Ok(id) = rest.parse::<u32>() else {
                    return bad("the id is out of range");
                };
                Ok(if kind == "uid" {
                    Principal::Uid(id)
                } else {
                    Principal::Gid(id)
                })
            }
            "user" | "group" => {
                if let Err(why) = check_name_syntax(rest) {
                    return bad(why);
                }
                Ok(if kind == "user" {
                    Principal::User(rest.to_owned())
                } else {
                    Principal::Group(rest.to_owned())
                })
            }
            _ => bad("unknown type prefix"),
        }
    }
}

fn check_name_syntax(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is too long");
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '*' || c == '?')
    {
        return Err("the name contains whitespace, a control character, ':' or a wildcard");
    }
    Ok(())
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Any => f.write_str("*"),
            Principal::Account => f.write_str("account"),
            Principal::Uid(id) => write!(f, "uid:{id}"),
            Principal::Gid(id) => write!(f, "gid:{id}"),
            Principal::User(n) => write!(f, "user:{n}"),
            Principal::Group(n) => write!(f, "group:{n}"),
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Principal, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The peer of one connection: SO_PEERCRED plus what the user and group
/// databases say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The primary gid (SO_PEERCRED).
    pub gid: u32,
    /// The peer's pid, when the kernel reported one.
    pub pid: Option<i32>,
    /// Every group of the caller, primary included, sorted.
    pub groups: Vec<u32>,
    /// The name of `uid`, if the user database has one.
    pub user_name: Option<String>,
    /// The names of `groups` that the group database knows.
    pub group_names: Vec<String>,
}

impl Caller {
    /// Looks the peer up: its user name, its groups and their names. Do
    /// this once per connection. Without the process's own group list (see
    /// [`Caller::resolve_with`]), the groups are the union of `gid`, the
    /// user's passwd primary group and the group database's supplementary
    /// groups of the user.
    pub fn resolve(uid: u32, gid: u32, pid: Option<i32>, dir: &dyn Directory) -> Caller {
        Caller::resolve_with(uid, gid, pid, &[], dir)
    }

    /// As [`Caller::resolve`], also counting `process_groups`, the
    /// supplementary groups the kernel reports for the peer process
    /// (SO_PEERGROUPS). A caller is judged by every group it belongs to by
    /// any account: the connection's gid, the passwd primary group (which a
    /// process drops from its gid with `sg`/`newgrp`/`setpriv --regid`),
    /// the database's supplementary groups and the process's own groups, so
    /// a Deny naming any of them holds however the process was started.
    pub fn resolve_with(
        uid: u32,
        gid: u32,
        pid: Option<i32>,
        process_groups: &[u32],
        dir: &dyn Directory,
    ) -> Caller {
        let groups = union_of_groups(uid, gid, process_groups, dir);
        let group_names = groups.iter().filter_map(|g| dir.group_name(*g)).collect();
        Caller {
            uid,
            gid,
            pid,
            groups,
            user_name: dir.user_name(uid),
            group_names,
        }
    }

    /// The principal that names exactly this caller (`uid:N`), as recorded
    /// as a grant's issuing principal.
    pub fn principal(&self) -> Principal {
        Principal::Uid(self.uid)
    }
}

/// Every group of `uid`, sorted and without duplicates: the connection's
/// `gid`, the passwd primary group, the database's supplementary groups of
/// the user (looked up from the passwd primary group, or from `gid` when the
/// uid has no entry) and `process_groups`.
fn union_of_groups(uid: u32, gid: u32, process_groups: &[u32], dir: &dyn Directory) -> Vec<u32> {
    let primary = dir.primary_gid(uid);
    let mut groups = dir.groups_of(uid, primary.unwrap_or(gid));
    groups.push(gid);
    groups.extend(primary);
    groups.extend_from_slice(process_groups);
    groups.sort_unstable();
    groups.dedup();
    groups
}

impl fmt::Display for Caller {
    /// `uid:1000 (user:alice)`, or `uid:1000` when the uid has no name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid:{}", self.uid)?;
        if let Some(name) = &self.user_name {
            write!(f, " (user:{name})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::FakeDirectory;

    const ADMIN: u32 = 0;

    fn dir() -> FakeDirectory {
        FakeDirectory::new()
            .user("root", 0, 0)
            .user("alice", 1000, 100)
            .user("bob", 1001, 100)
            .group("root", 0, &[])
            .group("users", 100, &[])
            .group("storage", 200, &["alice"])
    }

    fn caller(uid: u32, gid: u32) -> Caller {
        Caller::resolve(uid, gid, Some(42), &dir())
    }

    #[test]
    fn parse_and_display_round_trip() {
        let cases = [
            ("*", Principal::Any),
            ("account", Principal::Account),
            ("uid:0", Principal::Uid(0)),
            ("uid:4294967295", Principal::Uid(u32::MAX)),
            ("gid:100", Principal::Gid(100)),
            ("user:alice", Principal::User("alice".into())),
            ("group:storage", Principal::Group("storage".into())),
            ("user:svc-backup$", Principal::User("svc-backup$".into())),
        ];
        for (text, p) in cases {
            assert_eq!(text.parse::<Principal>(), Ok(p.clone()), "{text}");
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn bad_principals_say_why() {
        let cases = [
            ("", "no type prefix"),
            ("alice", "no type prefix"),
            ("uid:", "decimal number"),
            ("uid:-1", "decimal number"),
            ("uid:+5", "decimal number"),
            ("uid:1e3", "decimal number"),
            ("uid:4294967296", "out of range"),
            ("gid:abc", "decimal number"),
            ("user:", "empty"),
            ("group:a b", "whitespace"),
            ("user:a:b", "':'"),
            ("user:al*", "wildcard"),
            ("UID:1", "unknown type prefix"),
            ("role:admin", "unknown type prefix"),
            ("Account", "no type prefix"),
        ];
        for (text, why) in cases {
            let e = text.parse::<Principal>().unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(e.contains("expected uid:N"), "{text:?}: {e}");
        }
        let long = format!("user:{}", "a".repeat(MAX_NAME_LEN + 1));
        assert!(long.parse::<Principal>().unwrap_err().contains("too long"));
    }

    #[test]
    fn caller_is_resolved_once() {
        let c = caller(1000, 100);
        assert_eq!(c.groups, vec![100, 200]);
        assert_eq!(c.user_name.as_deref(), Some("alice"));
        assert_eq!(c.group_names, vec!["users", "storage"]);
        assert_eq!(c.to_string(), "uid:1000 (user:alice)");
        let nobody = caller(5000, 5000);
        assert_eq!(nobody.groups, vec![5000]);
        assert_eq!(nobody.user_name, None);
        assert!(nobody.group_names.is_empty());
        assert_eq!(nobody.to_string(), "uid:5000");
    }

    #[test]
    fn groups_are_the_union_of_every_source() {
        let d = FakeDirectory::new()
            .user("dave", 1002, 300)
            .group("contractors", 300, &[])
            .group("other", 400, &[])
            .group("storage", 200, &["dave"])
            .group("audit", 500, &[]);
        // Changed egid (sg other): the passwd primary group still counts.
        let c = Caller::resolve(1002, 400, None, &d);
        assert_eq!(c.groups, vec![200, 300, 400]);
        assert_eq!(c.group_names, vec!["storage", "contractors", "other"]);
        // The process dropped its supplementary groups: the database's count.
        let c = Caller::resolve_with(1002, 300, None, &[], &d);
        assert_eq!(c.groups, vec![200, 300]);
        // Groups only the process carries (SO_PEERGROUPS) count too.
        let c = Caller::resolve_with(1002, 400, None, &[500, 400], &d);
        assert_eq!(c.groups, vec![200, 300, 400, 500]);
        // A uid no database knows: its gid and its process's groups.
        let c = Caller::resolve_with(7000, 7000, None, &[500], &d);
        assert_eq!(c.groups, vec![500, 7000]);
        // A Deny on the primary group holds after the egid change.
        let deny = "group:contractors".parse::<Principal>().unwrap();
        assert!(deny.matches(&Caller::resolve(1002, 400, None, &d), ADMIN));
        assert!(
            "gid:300"
                .parse::<Principal>()
                .unwrap()
                .matches(&Caller::resolve(1002, 400, None, &d), ADMIN)
        );
        assert!(
            "group:audit"
                .parse::<Principal>()
                .unwrap()
                .matches(&c, ADMIN)
        );
    }

    #[test]
    fn matching_every_form() {
        let alice = caller(1000, 100);
        let bob = caller(1001, 100);
        let root = caller(0, 0);
        let p = |s: &str| s.parse::<Principal>().unwrap();
        let table = [
            ("*", [true, true, true]),
            ("account", [false, false, true]),
            ("uid:1000", [true, false, false]),
            ("gid:100", [true, true, false]),
            // Supplementary group: only alice is in storage.
            ("gid:200", [true, false, false]),
            ("group:storage", [true, false, false]),
            ("group:users", [true, true, false]),
            ("user:alice", [true, false, false]),
            ("user:root", [false, false, true]),
            ("user:carol", [false, false, false]),
            ("group:nope", [false, false, false]),
        ];
        for (text, expect) in table {
            let got = [&alice, &bob, &root].map(|c| p(text).matches(c, ADMIN));
            assert_eq!(got, expect, "{text}");
        }
    }

    #[test]
    fn specific_and_name_checks() {
        assert!(!Principal::Any.is_specific());
        assert!(!Principal::Account.is_specific());
        assert!(Principal::Gid(1).is_specific());
        let d = dir();
        assert!(Principal::User("alice".into()).check_name(&d).is_ok());
        assert!(Principal::Uid(777).check_name(&d).is_ok());
        assert_eq!(
            Principal::User("carol".into()).check_name(&d),
            Err("no user named \"carol\"".into())
        );
        assert_eq!(
            Principal::Group("x".into()).check_name(&d),
            Err("no group named \"x\"".into())
        );
    }

    #[test]
    fn serde_as_string() {
        let json = serde_json::to_string(&Principal::Group("storage".into())).unwrap();
        assert_eq!(json, "\"group:storage\"");
        let back: Principal = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Principal::Group("storage".into()));
        assert!(serde_json::from_str::<Principal>("\"bogus\"").is_err());
    }
}
