//! Regions: each region kmsd serves is its own namespace of keys, aliases,
//! grants and audit trail, as in AWS, where a key lives in one region and
//! is unknown in the others. kmsd gives each served region its own state
//! (store and audit chain) under one root key:
//!
//! | region                       | state                        |
//! |------------------------------|------------------------------|
//! | the home region              | `STATE_DIR` itself           |
//! | every other `--region NAME`  | `STATE_DIR/regions/NAME/`    |
//!
//! The home region is the one `STATE_DIR/region` names, written on first
//! start with the first `--region` (and, for a state dir made before
//! regions, on the first start that has them). It holds the access keys
//! (identities are global, as IAM's are) and is the region of the native
//! socket. A later start may list its regions in any order, but must list
//! the home region: kmsd refuses to start rather than serve a state dir's
//! keys under another region's ARNs.
//!
//! The pure part (names, paths, the home record) is here; `daemon` opens
//! the services.

use crate::service::KeyService;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file naming the state dir's home region.
pub const HOME_FILE: &str = "region";
/// The directory holding the other regions' state.
pub const REGIONS_DIR: &str = "regions";

/// A region name as AWS spells them (`us-east-1`, `local`): 1 to 32 of
/// `a-z`, `0-9` and `-`, not starting or ending with `-`. It becomes a
/// directory name, so nothing else is accepted.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "invalid region name '{}': 1 to 32 of a-z, 0-9 and '-', not starting or ending with '-'",
            kmsd_client::logsafe::escape(name)
        );
    }
    Ok(())
}

/// The served regions, checked: valid names, none twice, at least one.
pub fn check_list(regions: &[String]) -> anyhow::Result<()> {
    if regions.is_empty() {
        bail!("no region to serve");
    }
    for (i, r) in regions.iter().enumerate() {
        check_name(r)?;
        if regions[..i].contains(r) {
            bail!("region '{r}' is given twice");
        }
    }
    Ok(())
}

/// Where a region's state lives.
pub fn state_dir_of(state_dir: &Path, home: &str, region: &str) -> PathBuf {
    if region == home {
        state_dir.to_path_buf()
    } else {
        state_dir.join(REGIONS_DIR).join(region)
    }
}

/// The home region of `state_dir`: the one its record names, or, when it
/// has none yet, `first` (then recorded). Refused when the record names a
/// region that is not served.
pub fn home_region(state_dir: &Path, served: &[String], first: &str) -> anyhow::Result<String> {
    let file = state_dir.join(HOME_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let home = text.trim().to_string();
            check_name(&home).with_context(|| format!("in {}", file.display()))?;
            if !served.contains(&home) {
                bail!(
                    "{} holds the keys of region '{home}' (its home region), which is not in \
                     --region ({}); add --region {home}",
                    state_dir.display(),
                    served.join(", ")
                );
            }
            Ok(home)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_home(&file, first)?;
            Ok(first.to_string())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// The regions whose state lies below `state_dir` (`regions/NAME`, names
/// checked), sorted; for offline tools.
pub fn stored_below(state_dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(state_dir.join(REGIONS_DIR)) else {
        return Vec::new();
    };
    let mut v: Vec<(String, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            check_name(&name).ok()?;
            e.file_type().ok()?.is_dir().then(|| (name, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Writes the home record durably (temp file, fsync, rename, fsync of the
/// directory).
fn write_home(file: &Path, region: &str) -> anyhow::Result<()> {
    write_durably(file, &format!("{region}\n"))
}

/// Writes a small state file whole or not at all: a temp file beside it,
/// fsync, rename, fsync of the directory.
pub fn write_durably(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}

/// The services of the served regions; the home region first.
pub struct Regions {
    services: Vec<(String, Arc<KeyService>)>,
}

impl Regions {
    /// `services` in any order; `home` must be among them.
    pub fn new(home: &str, mut services: Vec<(String, Arc<KeyService>)>) -> anyhow::Result<Self> {
        let Some(i) = services.iter().position(|(n, _)| n == home) else {
            bail!("the home region '{home}' is not served");
        };
        services.swap(0, i);
        Ok(Regions { services })
    }

    /// The home region's service: access keys, the native socket.
    pub fn home(&self) -> &Arc<KeyService> {
        &self.services[0].1
    }

    pub fn get(&self, region: &str) -> Option<&Arc<KeyService>> {
        self.services
            .iter()
            .find(|(n, _)| n == region)
            .map(|(_, s)| s)
    }

    /// The served region names, home first.
    pub fn names(&self) -> Vec<&str> {
        self.services.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<KeyService>> {
        self.services.iter().map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_aws_shaped_and_safe_as_directory_names() {
        for good in ["local", "us-east-1", "eu-west-3", "a", "x9"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "US-EAST-1",
            "a/b",
            "..",
            ".",
            "a b",
            "é",
            "a_b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(32)).is_ok());
        assert!(check_name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn lists_need_one_region_and_no_repeats() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(check_list(&v(&[])).is_err());
        assert!(check_list(&v(&["local", "local"])).is_err());
        assert!(check_list(&v(&["local", "eu-west-1"])).is_ok());
    }

    #[test]
    fn the_home_region_lives_in_the_state_dir_the_others_below_it() {
        let d = Path::new("/s");
        assert_eq!(state_dir_of(d, "local", "local"), PathBuf::from("/s"));
        assert_eq!(
            state_dir_of(d, "local", "eu-west-1"),
            PathBuf::from("/s/regions/eu-west-1")
        );
    }

    #[test]
    fn the_home_record_is_written_once_and_then_required() {
        let t = tempfile::tempdir().unwrap();
        let served = vec!["eu-west-1".to_string(), "local".to_string()];
        assert_eq!(
            home_region(t.path(), &served, "eu-west-1").unwrap(),
            "eu-west-1"
        );
        // Another order later: the record wins.
        let later = vec!["local".to_string(), "eu-west-1".to_string()];
        assert_eq!(home_region(t.path(), &later, "local").unwrap(), "eu-west-1");
        // Without the home region: refused, naming it.
        let e = home_region(t.path(), &["local".to_string()], "local").unwrap_err();
        assert!(e.to_string().contains("'eu-west-1'"), "{e}");
        // A tampered record is refused, not used as a path.
        std::fs::write(t.path().join(HOME_FILE), "../x\n").unwrap();
        assert!(home_region(t.path(), &served, "local").is_err());
    }
}
