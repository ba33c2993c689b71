//! Verifying a set of chains, one per kmsd instance of a deployment
//! (`kmsctl audit verify --audit-dir A --audit-dir B ...`): each chain as
//! [`crate::verify`] does, and across the set, no two chains of one
//! instance.

use crate::error::AuditError;
use crate::key::AuditKey;
use crate::report::Report;
use crate::verify::verify;
use serde::{Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// The result of [`verify_set`].
#[derive(Clone, Debug)]
pub struct SetReport {
    /// One report per directory, in the order given.
    pub chains: Vec<Report>,
    /// Instance ids that more than one chain claims.
    pub duplicates: Vec<DuplicateInstance>,
}

/// Several chains that are the same instance's: a copied state or audit
/// directory, or one chain given twice under two names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DuplicateInstance {
    pub instance: String,
    /// In the order given; two or more.
    pub dirs: Vec<PathBuf>,
}

/// Verifies every chain in `dirs` ([`crate::verify`] with `key`), then
/// checks the set ([`SetReport::of`]). I/O failures are errors, as in
/// [`crate::verify`].
pub fn verify_set<P: AsRef<Path>>(
    dirs: &[P],
    key: Option<&AuditKey>,
) -> Result<SetReport, AuditError> {
    let chains = dirs
        .iter()
        .map(|d| verify(d.as_ref(), key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SetReport::of(chains))
}

impl SetReport {
    /// The set of these chains' reports: finds the instance ids that more
    /// than one chain claims ([`Report::instance`]; chains without one,
    /// written before instances, are not compared).
    pub fn of(chains: Vec<Report>) -> SetReport {
        let mut duplicates: Vec<DuplicateInstance> = Vec::new();
        for (i, r) in chains.iter().enumerate() {
            let Some(id) = &r.instance else { continue };
            if duplicates.iter().any(|d| &d.instance == id) {
                continue;
            }
            let dirs: Vec<PathBuf> = chains[i..]
                .iter()
                .filter(|o| o.instance.as_ref() == Some(id))
                .map(|o| o.dir.clone())
                .collect();
            if dirs.len() > 1 {
                duplicates.push(DuplicateInstance {
                    instance: id.clone(),
                    dirs,
                });
            }
        }
        SetReport { chains, duplicates }
    }

    /// Every chain is intact and no two are one instance's.
    pub fn is_intact(&self) -> bool {
        self.duplicates.is_empty() && self.chains.iter().all(Report::is_intact)
    }
}

/// `{"intact":…,"chains":[…],"duplicates":[…]}`.
impl Serialize for SetReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            intact: bool,
            chains: &'a [Report],
            duplicates: &'a [DuplicateInstance],
        }
        Json {
            intact: self.is_intact(),
            chains: &self.chains,
            duplicates: &self.duplicates,
        }
        .serialize(s)
    }
}

impl fmt::Display for DuplicateInstance {
    /// `chains A and B are both instance I` (`A, B and C are all`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        let (all, last) = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => (rest.join(", "), last),
            _ => return write!(f, "chain {} is instance {}", names.join(""), self.instance),
        };
        let both = if names.len() == 2 { "both" } else { "all" };
        write!(
            f,
            "chains {all} and {last} are {both} instance {}",
            self.instance
        )
    }
}

impl fmt::Display for SetReport {
    /// Each chain as `<dir>: <report>`, then a line on the whole set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.chains {
            write!(f, "{}: {r}", r.dir.display())?;
        }
        let n = self.chains.len();
        let chains = if n == 1 { "chain" } else { "chains" };
        if self.is_intact() {
            let ids: Vec<&str> = self
                .chains
                .iter()
                .filter_map(|r| r.instance.as_deref())
                .collect();
            write!(f, "SET INTACT: {n} {chains}")?;
            if !ids.is_empty() {
                write!(f, ", instances {}", ids.join(", "))?;
            }
            if ids.len() < n {
                write!(f, "; {} without an instance", n - ids.len())?;
            }
            return writeln!(f);
        }
        let bad = self.chains.iter().filter(|r| !r.is_intact()).count();
        writeln!(f, "SET NOT INTACT: {bad} of {n} {chains} tampered")?;
        for r in self.chains.iter().filter(|r| !r.is_intact()) {
            writeln!(f, "  tampered: {}", r.dir.display())?;
        }
        for d in &self.duplicates {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditLog, Options, audit_key_from_root};

    fn chain(dir: &Path, instance: Option<&str>) {
        let opts = Options {
            instance: instance.map(String::from),
            ..Options::default()
        };
        AuditLog::open(dir, audit_key_from_root(&[5; 32]), opts)
            .unwrap()
            .close()
            .unwrap();
    }

    #[test]
    fn distinct_instances_pass_and_a_shared_one_is_named() {
        let root = tempfile::tempdir().unwrap();
        let d = |n: &str| root.path().join(n);
        chain(&d("a"), Some("kmsd-a"));
        chain(&d("b"), Some("kmsd-b"));
        chain(&d("old"), None);
        let key = audit_key_from_root(&[5; 32]);
        let set = verify_set(&[d("a"), d("b"), d("old")], Some(&key)).unwrap();
        assert!(set.is_intact(), "{set}");
        assert!(set.duplicates.is_empty());
        let text = set.to_string();
        assert!(
            text.ends_with(
                "SET INTACT: 3 chains, instances kmsd-a, kmsd-b; 1 without an instance\n"
            ),
            "{text}"
        );

        // A copy of a's directory claims kmsd-a as well.
        std::fs::create_dir(d("c")).unwrap();
        for f in std::fs::read_dir(d("a")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), d("c").join(f.file_name())).unwrap();
        }
        let set = verify_set(&[d("a"), d("b"), d("c")], Some(&key)).unwrap();
        assert!(set.chains.iter().all(Report::is_intact));
        assert!(!set.is_intact());
        assert_eq!(
            set.duplicates,
            [DuplicateInstance {
                instance: "kmsd-a".into(),
                dirs: vec![d("a"), d("c")],
            }]
        );
        let text = set.to_string();
        let want = format!(
            "SET NOT INTACT: 0 of 3 chains tampered\n  chains {} and {} are both instance kmsd-a\n",
            d("a").display(),
            d("c").display()
        );
        assert!(text.ends_with(&want), "{text}");
        let j = serde_json::to_value(&set).unwrap();
        assert_eq!(j["intact"], false);
        assert_eq!(j["chains"].as_array().unwrap().len(), 3);
        assert_eq!(j["chains"][2]["instance"], "kmsd-a");
        assert_eq!(j["duplicates"][0]["instance"], "kmsd-a");

        let three = DuplicateInstance {
            instance: "x".into(),
            dirs: vec!["/1".into(), "/2".into(), "/3".into()],
        };
        assert_eq!(three.to_string(), "chains /1, /2 and /3 are all instance x");
    }
}
