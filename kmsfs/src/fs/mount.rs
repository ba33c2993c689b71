//! Mount options (`-o a,b,c`) and starting a FUSE session.

use super::KmsFs;
use fuser::{Config, MountOption, Session, SessionACL};
use std::path::Path;

/// Parsed `-o` options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOpts {
    pub options: Vec<MountOption>,
    pub acl: SessionACL,
    pub read_only: bool,
    /// `-o default_permissions` asked for explicitly.
    pub default_permissions: bool,
    /// `-o no_writeback_cache`: every write(2) waits for its encryption.
    pub no_writeback_cache: bool,
}

/// Parses comma-separated mount options. Known: `allow_other`,
/// `allow_root`, `ro`, `rw`, `exec`/`noexec`, `suid`/`nosuid`,
/// `dev`/`nodev`, `atime`/`noatime`, `sync`/`async`, `dirsync`,
/// `default_permissions` (implied by `allow_other`/`allow_root`),
/// `writeback_cache`/`no_writeback_cache`, `fsname=`, `subtype=`.
pub fn parse_options<S: AsRef<str>>(lists: &[S]) -> Result<MountOpts, String> {
    let mut o = MountOpts::default();
    for list in lists {
        for opt in list
            .as_ref()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let m = match opt {
                "allow_other" => {
                    o.acl = SessionACL::All;
                    continue;
                }
                "allow_root" => {
                    o.acl = SessionACL::RootAndOwner;
                    continue;
                }
                "default_permissions" => {
                    o.default_permissions = true;
                    continue;
                }
                "writeback_cache" | "no_writeback_cache" => {
                    o.no_writeback_cache = opt.starts_with("no_");
                    continue;
                }
                "ro" => {
                    o.read_only = true;
                    MountOption::RO
                }
                "rw" => {
                    o.read_only = false;
                    MountOption::RW
                }
                "exec" => MountOption::Exec,
                "noexec" => MountOption::NoExec,
                "suid" => MountOption::Suid,
                "nosuid" => MountOption::NoSuid,
                "dev" => MountOption::Dev,
                "nodev" => MountOption::NoDev,
                "atime" => MountOption::Atime,
                "noatime" => MountOption::NoAtime,
                "sync" => MountOption::Sync,
                "async" => MountOption::Async,
                "dirsync" => MountOption::DirSync,
                _ => {
                    if let Some(v) = opt.strip_prefix("fsname=") {
                        MountOption::FSName(v.to_string())
                    } else if let Some(v) = opt.strip_prefix("subtype=") {
                        MountOption::Subtype(v.to_string())
                    } else {
                        return Err(format!("unknown mount option {opt:?}"));
                    }
                }
            };
            o.options.retain(|x| !conflicts(x, &m));
            o.options.push(m);
        }
    }
    Ok(o)
}

/// The later of two options wins: `ro` after `rw` replaces it, etc.
fn conflicts(a: &MountOption, b: &MountOption) -> bool {
    use MountOption::*;
    let pair = |x: &MountOption| match x {
        RO | RW => 1,
        Exec | NoExec => 2,
        Suid | NoSuid => 3,
        Dev | NoDev => 4,
        Atime | NoAtime => 5,
        Sync | Async => 6,
        FSName(_) => 7,
        Subtype(_) => 8,
        _ => 0,
    };
    pair(a) != 0 && pair(a) == pair(b)
}

/// The session configuration for `opts`, naming the backing directory.
pub fn session_config(cipherdir: &Path, opts: &MountOpts, threads: usize) -> Config {
    // With other users let in, the kernel checks permissions from the
    // attributes we report (the daemon itself may do anything). A mount
    // only its owner can use needs no such check: the daemon runs as the
    // owner, so the backing file system checks. (Kernels that grant
    // FUSE_POSIX_ACL, filesystem.rs `init`, check on every mount anyway:
    // ACLs are theirs to enforce.)
    let mut options = vec![MountOption::Subtype("kmsfs".into())];
    if opts.acl != SessionACL::Owner || opts.default_permissions {
        options.push(MountOption::DefaultPermissions);
    }
    if !opts
        .options
        .iter()
        .any(|o| matches!(o, MountOption::FSName(_)))
    {
        options.push(MountOption::FSName(cipherdir.display().to_string()));
    }
    options.extend(
        opts.options
            .iter()
            .filter(|o| !matches!(o, MountOption::Subtype(_)))
            .cloned(),
    );
    let mut c = Config::default();
    c.mount_options = options;
    c.acl = opts.acl;
    c.n_threads = Some(threads.max(1));
    c.clone_fd = true;
    c
}

/// Mounts `fs` at `mountpoint`. When this returns, the kernel has
/// completed the FUSE handshake: the mount is ready; `run` serves it.
pub fn mount(fs: KmsFs, mountpoint: &Path, config: &Config) -> std::io::Result<Session<KmsFs>> {
    Session::new(fs, mountpoint, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_later_ones_win() {
        let o = parse_options(&["allow_other,ro", "noexec,rw"]).unwrap();
        assert_eq!(o.acl, SessionACL::All);
        assert!(!o.read_only);
        assert_eq!(o.options, vec![MountOption::NoExec, MountOption::RW]);
        let o = parse_options(&["fsname=x,default_permissions, ro"]).unwrap();
        assert!(o.read_only);
        assert!(o.default_permissions);
        assert_eq!(
            o.options,
            vec![MountOption::FSName("x".into()), MountOption::RO]
        );
        assert!(parse_options(&["bogus"]).unwrap_err().contains("bogus"));
        assert!(
            parse_options(&["no_writeback_cache"])
                .unwrap()
                .no_writeback_cache
        );
        assert!(
            !parse_options(&["no_writeback_cache,writeback_cache"])
                .unwrap()
                .no_writeback_cache
        );
        assert_eq!(parse_options::<&str>(&[]).unwrap(), MountOpts::default());
    }

    #[test]
    fn shared_sessions_have_default_permissions_and_all_have_a_name() {
        let o = parse_options(&["allow_root"]).unwrap();
        let c = session_config(Path::new("/data/x"), &o, 0);
        assert!(c.mount_options.contains(&MountOption::DefaultPermissions));
        let own = session_config(Path::new("/d"), &parse_options::<&str>(&[]).unwrap(), 1);
        assert!(!own.mount_options.contains(&MountOption::DefaultPermissions));
        let asked = parse_options(&["default_permissions"]).unwrap();
        assert!(
            session_config(Path::new("/d"), &asked, 1)
                .mount_options
                .contains(&MountOption::DefaultPermissions)
        );
        assert!(
            c.mount_options
                .contains(&MountOption::FSName("/data/x".into()))
        );
        assert_eq!(c.n_threads, Some(1));
        assert_eq!(c.acl, SessionACL::RootAndOwner);
    }
}
