//! `kmsfs info`: what a volume's config says and how many files are
//! wrapped under which KMS key and key version. Offline: it reads the
//! backing directory only, no kmsd call, no key: the key and version of a
//! kmsd blob are in its plaintext prefix (docs/FORMAT.md "A blob's key and
//! version, without a key"). So what it reports is what the backing
//! directory claims; `kmsfs fsck` authenticates.

use super::walk::is_reserved;
use crate::format::kmsblob::{BlobKey, key_uuid};
use crate::format::{HEADER_SIZE, HEADER_VERSION, HEADER_VERSION_2, Header, VolumeConfig};
use crate::keys::volume::read_config;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files wrapped under one key version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyCount {
    /// The ARN, when the config names a key of this id; else `None`.
    pub key_arn: Option<String>,
    pub key_id: String,
    pub version: u32,
    pub files: u64,
}

/// Which key a config blob is under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobAt {
    pub key_arn: Option<String>,
    pub key_id: Option<String>,
    pub version: Option<u32>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub volume_id: String,
    pub format_version: u32,
    pub encrypted_names: bool,
    pub key_arn: String,
    /// The key an unfinished `rewrap --to-key` moves the volume from.
    pub rewrap_from: Option<String>,
    pub config_key: BlobAt,
    pub name_key: Option<BlobAt>,
    /// Regular files with a header.
    pub files: u64,
    /// By key and version, in key id then version order.
    pub keys: Vec<KeyCount>,
    /// Files whose blob is not a kmsd blob (AWS KMS's are opaque).
    pub unknown_key: u64,
    /// Format 1 empty files: no header, no key.
    pub empty_without_key: u64,
    /// Files whose header could not be read or parsed.
    pub unreadable: Vec<(PathBuf, String)>,
}

fn arn_for(config: &VolumeConfig, id: &uuid::Uuid) -> Option<String> {
    std::iter::once(config.key_arn.as_str())
        .chain(config.rewrap_from.as_ref().map(|r| r.key_arn.as_str()))
        .find(|a| key_uuid(a).as_ref() == Some(id))
        .map(str::to_string)
}

fn blob_at(config: &VolumeConfig, blob: &[u8]) -> BlobAt {
    match BlobKey::of(blob) {
        Some(k) => BlobAt {
            key_arn: arn_for(config, &k.key_id),
            key_id: Some(k.key_id.to_string()),
            version: Some(k.version),
        },
        None => BlobAt {
            key_arn: None,
            key_id: None,
            version: None,
        },
    }
}

/// Reads the volume at `dir`.
pub fn info(dir: &Path) -> Result<Info, String> {
    let config = read_config(dir).map_err(|e| e.to_string())?;
    let version = if config.names.is_some() {
        HEADER_VERSION_2
    } else {
        HEADER_VERSION
    };
    let mut info = Info {
        volume_id: config.volume_id.to_hex(),
        format_version: config.format_version,
        encrypted_names: config.encrypted_names(),
        key_arn: config.key_arn.clone(),
        rewrap_from: config.rewrap_from.as_ref().map(|r| r.key_arn.clone()),
        config_key: blob_at(&config, &config.config_key),
        name_key: config.names.as_ref().map(|n| blob_at(&config, &n.name_key)),
        files: 0,
        keys: Vec::new(),
        unknown_key: 0,
        empty_without_key: 0,
        unreadable: Vec::new(),
    };
    let mut counts: BTreeMap<(uuid::Uuid, u32), u64> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = match std::fs::read_dir(dir.join(&rel)) {
            Ok(rd) => rd,
            Err(e) => {
                info.unreadable.push((rel, e.to_string()));
                continue;
            }
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let path = rel.join(&name);
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !is_reserved(name.as_encoded_bytes(), rel.as_os_str().is_empty(), &config) {
                    stack.push(path);
                }
                continue;
            }
            if !ft.is_file()
                || is_reserved(name.as_encoded_bytes(), rel.as_os_str().is_empty(), &config)
            {
                continue;
            }
            match read_header(&dir.join(&path), version) {
                Ok(None) => info.empty_without_key += 1,
                Ok(Some(h)) => {
                    info.files += 1;
                    match BlobKey::of(&h.wrapped_key) {
                        Some(k) => *counts.entry((k.key_id, k.version)).or_default() += 1,
                        None => info.unknown_key += 1,
                    }
                }
                Err(e) => info.unreadable.push((path, e)),
            }
        }
    }
    info.keys = counts
        .into_iter()
        .map(|((id, version), files)| KeyCount {
            key_arn: arn_for(&config, &id),
            key_id: id.to_string(),
            version,
            files,
        })
        .collect();
    info.unreadable.sort();
    Ok(info)
}

/// The header of a backing file; `None` for a format 1 empty file.
fn read_header(path: &Path, version: u16) -> Result<Option<Header>, String> {
    let f = kmsd_client::nofollow::open_regular(path).map_err(|e| e.to_string())?;
    let mut h = Vec::with_capacity(HEADER_SIZE);
    f.take(HEADER_SIZE as u64)
        .read_to_end(&mut h)
        .map_err(|e| e.to_string())?;
    if h.is_empty() && version == HEADER_VERSION {
        return Ok(None);
    }
    Header::parse_version(&h, version)
        .map(Some)
        .map_err(|e| e.to_string())
}

impl std::fmt::Display for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = if self.format_version == 1 || !self.encrypted_names {
            "plaintext names"
        } else {
            "encrypted names"
        };
        writeln!(f, "volume      {}", self.volume_id)?;
        writeln!(f, "format      {} ({names})", self.format_version)?;
        writeln!(f, "key         {}", self.key_arn)?;
        if let Some(r) = &self.rewrap_from {
            writeln!(f, "rewrap      unfinished, from {r}")?;
        }
        let at = |b: &BlobAt| match (&b.key_arn, &b.key_id, b.version) {
            (Some(a), _, Some(v)) => format!("{a} version {v}"),
            (None, Some(id), Some(v)) => format!("key {id} (not named by the config) version {v}"),
            _ => "a key kmsfs cannot read from the blob".to_string(),
        };
        writeln!(f, "config key  {}", at(&self.config_key))?;
        if let Some(n) = &self.name_key {
            writeln!(f, "name key    {}", at(n))?;
        }
        writeln!(f, "files       {}", self.files)?;
        for k in &self.keys {
            let key = k
                .key_arn
                .clone()
                .unwrap_or_else(|| format!("key {} (not named by the config)", k.key_id));
            writeln!(f, "  {key} version {}: {}", k.version, k.files)?;
        }
        if self.unknown_key > 0 {
            writeln!(f, "  key unknown (not a kmsd blob): {}", self.unknown_key)?;
        }
        if self.empty_without_key > 0 {
            writeln!(
                f,
                "empty files without a key (format 1): {}",
                self.empty_without_key
            )?;
        }
        for (p, e) in &self.unreadable {
            writeln!(f, "unreadable  {}: {e}", p.display())?;
        }
        Ok(())
    }
}
