//! `kmsd migrate-store --from A --to B`: copies every region's state from
//! a state dir's redb files into etcd, or back. The source must be idle
//! (redb: its file lock; etcd: no instance holding a sweeper lease), the
//! target empty; all key material is authenticated under the root key
//! before anything is written; the copy is read back and compared record
//! for record, and only then is the target marked usable (`P/format` in
//! etcd, which instances refuse to start without; `state.redb` written
//! last in a dir). docs/STORE.md ("Moving a state").

use super::etcd::{EtcdBackend, EtcdConfig, EtcdStore};
use super::etcd_layout::{self as layout};
use super::{AuditRef, Mutation, RedbStore, Row, Store, StoreError};
use crate::crypto::aead::KeyCipher;
use crate::crypto::cipher_cache::CipherCache;
use crate::crypto::rootkey::{MATERIAL_WRAP_LABEL, RootKey};
use crate::service::State;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Mutations per etcd transaction while copying (etcd's default limit is
/// 128 operations; each also writes the region's revision key).
const CHUNK: usize = 100;

/// One side of a migration.
pub enum Place {
    Dir(PathBuf),
    Etcd(EtcdConfig),
}

impl Place {
    pub fn parse(text: &str) -> Result<Place, String> {
        if text.starts_with("etcd://") {
            EtcdConfig::parse_url(text).map(Place::Etcd)
        } else {
            Ok(Place::Dir(PathBuf::from(text)))
        }
    }
}

pub struct Migration {
    pub from: Place,
    pub to: Place,
    pub root_key_file: Option<PathBuf>,
    /// The instance whose audited refs go into a dir (etcd → dir); default
    /// the dir's `instance-id`, or the only one found.
    pub instance: Option<String>,
    /// Clear an etcd prefix that holds records but no `P/format` first.
    pub overwrite_incomplete: bool,
}

/// What was copied, per region.
pub struct Copied {
    pub region: String,
    pub rows: usize,
    pub audited: usize,
    pub digest: String,
}

/// A region's content as comparable lines, sorted.
fn canonical(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    store.scan(&mut |row| {
        out.push(match row {
            Row::Key(k) => format!("k {} {}", k.key_id, json(&k)?),
            Row::Alias(a) => format!("a {} {}", a.name, json(&a)?),
            Row::Grant(k, v) => format!("g {k} {v}"),
            Row::Meta(k, v) => format!("m {k} {v}"),
            Row::AccessKey(a) => format!("ak {} {}", a.access_key_id, json(&a)?),
        });
        Ok(())
    })?;
    out.sort();
    Ok(out)
}

fn json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError(e.to_string()))
}

fn digest(lines: &[String], refs: &[AuditRef]) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    for r in refs {
        h.update(format!("{} {} {}\n", r.seq, r.request_id, r.event_name).as_bytes());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn put_of(row: Row) -> Mutation {
    match row {
        Row::Key(k) => Mutation::PutKey(k),
        Row::Alias(a) => Mutation::PutAlias(a),
        Row::Grant(grant_id, json) => Mutation::PutGrant { grant_id, json },
        Row::Meta(name, json) => Mutation::PutMeta { name, json },
        Row::AccessKey(a) => Mutation::PutAccessKey(a),
    }
}

/// Every version and access key authenticates under the root key.
fn authenticate(store: &dyn Store, root: &RootKey) -> anyhow::Result<()> {
    let wrap = Arc::new(KeyCipher::new(&root.derive(MATERIAL_WRAP_LABEL)));
    let cache = Arc::new(CipherCache::new(wrap.clone(), 1));
    let policy = kmsd_policy::Policy::parse(&kmsd_policy::default_service_policy(0))?;
    State::load(store, &wrap, cache, policy).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn copy(
    from: &dyn Store,
    to: &dyn Store,
    refs: Vec<AuditRef>,
    chunk: usize,
) -> anyhow::Result<(usize, usize)> {
    let mut rows = Vec::new();
    from.scan(&mut |r| {
        rows.push(put_of(r));
        Ok(())
    })?;
    let n = rows.len();
    let mut refs_m: Vec<Mutation> = refs.into_iter().map(Mutation::Audited).collect();
    let a = refs_m.len();
    rows.append(&mut refs_m);
    for part in rows.chunks(chunk.max(1)) {
        to.commit(part)?;
    }
    Ok((n, a))
}

fn compare(
    region: &str,
    from: &dyn Store,
    to: &dyn Store,
    refs: &[AuditRef],
) -> anyhow::Result<String> {
    let (a, b) = (canonical(from)?, canonical(to)?);
    if a != b {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        bail!(
            "region {region}: the copy differs from the source ({} rows vs {}; first difference at row {first})",
            a.len(),
            b.len()
        );
    }
    let mut got = to.audited()?;
    got.sort_by_key(|r| r.seq);
    if got != refs {
        bail!(
            "region {region}: audited refs differ after the copy ({} vs {})",
            refs.len(),
            got.len()
        );
    }
    Ok(digest(&a, refs))
}

/// The regions a dir holds: its home region (`region` file) and those
/// below `regions/`.
fn dir_regions(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let file = dir.join(crate::regions::HOME_FILE);
    let home = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {} (has kmsd run on this dir?)", file.display()))?
        .trim()
        .to_string();
    crate::regions::check_name(&home)?;
    let mut v = vec![(home, dir.to_path_buf())];
    v.extend(crate::regions::stored_below(dir));
    Ok(v)
}

fn root_key(m: &Migration, dir: &Path) -> anyhow::Result<RootKey> {
    let path = m
        .root_key_file
        .clone()
        .unwrap_or_else(|| dir.join("root.key"));
    RootKey::load(&path).with_context(|| format!("cannot load root key {}", path.display()))
}

fn dir_instance(dir: &Path) -> anyhow::Result<String> {
    let mut cfg = crate::DaemonConfig::new(dir, dir.join("unused.sock"));
    cfg.instance_id = None;
    crate::daemon::instance_id(&cfg)
}

pub fn run(m: &Migration) -> anyhow::Result<Vec<Copied>> {
    match (&m.from, &m.to) {
        (Place::Dir(d), Place::Etcd(e)) => dir_to_etcd(m, d, e),
        (Place::Etcd(e), Place::Dir(d)) => etcd_to_dir(m, e, d),
        _ => bail!("migrate-store copies between a state dir and etcd://...: give one of each"),
    }
}

fn dir_to_etcd(m: &Migration, dir: &Path, e: &EtcdConfig) -> anyhow::Result<Vec<Copied>> {
    let root = root_key(m, dir)?;
    let regions = dir_regions(dir)?;
    let mut sources = Vec::new();
    for (name, d) in &regions {
        let s = RedbStore::open(&d.join("state.redb"))
            .with_context(|| format!("cannot open region {name}'s store (is kmsd running?)"))?;
        authenticate(&s, &root).with_context(|| format!("region {name}"))?;
        sources.push((name.clone(), s));
    }
    let instance = match &m.instance {
        Some(i) => i.clone(),
        None => dir_instance(dir)?,
    };
    let backend = EtcdBackend::connect(e.clone(), &instance)?;
    let found = backend.count(&format!("{}/", e.prefix))?;
    if found > 0 {
        let formatted = backend.get(&layout::format_key(&e.prefix))?.is_some();
        if formatted || !m.overwrite_incomplete {
            bail!(
                "etcd prefix {} is not empty ({found} keys{}); migrate-store only fills an empty one",
                e.prefix,
                if formatted {
                    ""
                } else {
                    ", no format: an interrupted migration? --overwrite-incomplete clears it"
                }
            );
        }
        backend.delete_prefix(&format!("{}/", e.prefix))?;
    }
    let mut out = Vec::new();
    for (name, src) in &sources {
        let dst = EtcdStore::open_passive(backend.clone(), name);
        let mut refs = src.audited()?;
        refs.sort_by_key(|r| r.seq);
        let (rows, audited) = copy(src, &dst, refs.clone(), CHUNK)?;
        let digest = compare(name, src, &dst, &refs)?;
        out.push(Copied {
            region: name.clone(),
            rows,
            audited,
            digest,
        });
    }
    backend.put(&layout::home_key(&e.prefix), &regions[0].0)?;
    backend.seal_format(&root.store_check(&e.prefix))?;
    Ok(out)
}

fn etcd_to_dir(m: &Migration, e: &EtcdConfig, dir: &Path) -> anyhow::Result<Vec<Copied>> {
    let root = root_key(m, dir)?;
    let probe = EtcdBackend::connect(e.clone(), "migrate")?;
    probe.check_format(&root.store_check(&e.prefix), false)?;
    let home = probe
        .get(&layout::home_key(&e.prefix))?
        .context("the etcd state names no home region")?;
    let names = probe.region_names()?;
    for n in &names {
        if probe.count(&format!("{}/r/{n}/leader/", e.prefix))? > 0 {
            bail!(
                "a kmsd instance is running on etcd region {n} (it holds the sweeper's lease); stop every instance first"
            );
        }
    }
    let instance = match &m.instance {
        Some(i) => i.clone(),
        None => match std::fs::read_to_string(dir.join("instance-id")) {
            Ok(t) => t.trim().to_string(),
            Err(_) => {
                let found = probe.instances(&home)?;
                match found.as_slice() {
                    [one] => one.clone(),
                    _ => bail!(
                        "the etcd state has audited refs of {} instances ({}); give --instance ID",
                        found.len(),
                        found.join(", ")
                    ),
                }
            }
        },
    };
    crate::daemon::check_instance_id(&instance)?;
    drop(probe);
    let backend = EtcdBackend::connect(e.clone(), &instance)?;
    let mut out = Vec::new();
    let mut order = vec![home.clone()];
    order.extend(names.into_iter().filter(|n| *n != home));
    crate::daemon::prepare_state_dir(dir)?;
    for name in &order {
        let d = crate::regions::state_dir_of(dir, &home, name);
        let path = d.join("state.redb");
        if path.exists() {
            bail!(
                "{} exists; migrate-store only fills an empty state dir",
                path.display()
            );
        }
        std::fs::create_dir_all(&d)?;
        let src = EtcdStore::open_passive(backend.clone(), name);
        authenticate(&src, &root).with_context(|| format!("region {name}"))?;
        let tmp = d.join("state.redb.migrating");
        let _ = std::fs::remove_file(&tmp);
        {
            let dst = RedbStore::open(&tmp)?;
            let mut refs = src.audited()?;
            refs.sort_by_key(|r| r.seq);
            let (rows, audited) = copy(&src, &dst, refs.clone(), usize::MAX)?;
            let digest = compare(name, &src, &dst, &refs)?;
            out.push(Copied {
                region: name.clone(),
                rows,
                audited,
                digest,
            });
        }
        std::fs::rename(&tmp, &path)?;
    }
    let write = crate::regions::write_durably;
    write(&dir.join(crate::regions::HOME_FILE), &format!("{home}\n"))?;
    if !dir.join("instance-id").exists() {
        write(&dir.join("instance-id"), &format!("{instance}\n"))?;
    }
    crate::daemon::restrict_state_files(dir)?;
    Ok(out)
}
