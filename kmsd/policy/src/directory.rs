//! The user and group databases, behind a trait so policy logic can be
//! tested without touching `/etc/passwd`. [`crate::SystemDirectory`] asks
//! the system (NSS); [`FakeDirectory`] is a table for tests.

/// Name lookups in the system's user and group databases.
pub trait Directory {
    /// The uid of the user called `name`.
    fn uid_of(&self, name: &str) -> Option<u32>;
    /// The gid of the group called `name`.
    fn gid_of(&self, name: &str) -> Option<u32>;
    /// Every group of user `uid`: the primary group `gid` and the
    /// supplementary groups the group database lists the user in.
    fn groups_of(&self, uid: u32, gid: u32) -> Vec<u32>;
    /// The name of user `uid`.
    fn user_name(&self, uid: u32) -> Option<String>;
    /// The name of group `gid`.
    fn group_name(&self, gid: u32) -> Option<String>;
    /// The primary group of user `uid` in the user database (passwd's gid
    /// field), whatever gid the process runs with now.
    fn primary_gid(&self, uid: u32) -> Option<u32>;
}

/// A user and group database held in memory, for tests.
///
/// ```
/// use kmsd_policy::{Directory, FakeDirectory};
/// let dir = FakeDirectory::new()
///     .user("alice", 1000, 1000)
///     .group("alice", 1000, &[])
///     .group("storage", 200, &["alice"]);
/// assert_eq!(dir.groups_of(1000, 1000), vec![1000, 200]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FakeDirectory {
    users: Vec<(String, u32, u32)>,
    groups: Vec<(String, u32, Vec<String>)>,
}

impl FakeDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a user with its primary group (passwd's gid field).
    pub fn user(mut self, name: &str, uid: u32, primary_gid: u32) -> Self {
        self.users.push((name.to_owned(), uid, primary_gid));
        self
    }

    /// Adds a group whose supplementary members are `members` (user names).
    pub fn group(mut self, name: &str, gid: u32, members: &[&str]) -> Self {
        let members = members.iter().map(|m| (*m).to_owned()).collect();
        self.groups.push((name.to_owned(), gid, members));
        self
    }
}

impl Directory for FakeDirectory {
    fn uid_of(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|(n, ..)| n == name).map(|u| u.1)
    }

    fn gid_of(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, ..)| n == name).map(|g| g.1)
    }

    fn groups_of(&self, uid: u32, gid: u32) -> Vec<u32> {
        let mut out = vec![gid];
        if let Some(name) = self.user_name(uid) {
            for (_, g, members) in &self.groups {
                if members.contains(&name) && !out.contains(g) {
                    out.push(*g);
                }
            }
        }
        out
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.users.iter().find(|u| u.1 == uid).map(|u| u.0.clone())
    }

    fn group_name(&self, gid: u32) -> Option<String> {
        self.groups.iter().find(|g| g.1 == gid).map(|g| g.0.clone())
    }

    fn primary_gid(&self, uid: u32) -> Option<u32> {
        self.users.iter().find(|u| u.1 == uid).map(|u| u.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> FakeDirectory {
        FakeDirectory::new()
            .user("alice", 1000, 100)
            .user("bob", 1001, 100)
            .group("users", 100, &[])
            .group("storage", 200, &["alice"])
            .group("audit", 300, &["alice", "bob"])
    }

    #[test]
    fn lookups_both_ways() {
        let d = dir();
        assert_eq!(d.uid_of("alice"), Some(1000));
        assert_eq!(d.uid_of("carol"), None);
        assert_eq!(d.gid_of("storage"), Some(200));
        assert_eq!(d.gid_of("nope"), None);
        assert_eq!(d.user_name(1001).as_deref(), Some("bob"));
        assert_eq!(d.user_name(5), None);
        assert_eq!(d.group_name(300).as_deref(), Some("audit"));
        assert_eq!(d.group_name(5), None);
    }

    #[test]
    fn groups_include_primary_then_supplementary() {
        let d = dir();
        assert_eq!(d.groups_of(1000, 100), vec![100, 200, 300]);
        assert_eq!(d.groups_of(1001, 100), vec![100, 300]);
        // A uid with no user entry still has its primary group.
        assert_eq!(d.groups_of(4242, 4242), vec![4242]);
        // The primary group is not listed twice.
        assert_eq!(d.groups_of(1000, 200), vec![200, 300]);
    }
}
