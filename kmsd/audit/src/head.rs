//! The `HEAD` file: state kept outside the log so a truncated tail shows.
//!
//! One JSON line `{"seq":N,"hash":"<hex>","file":"audit-….jsonl","mac":"<hex>"}`
//! naming the last durable record, its line hash and the file holding it,
//! with an HMAC under the audit key. Rewritten after every group commit by
//! write-temp + fsync + rename + fsync-dir, so it is always whole. A fresh
//! log gets `HEAD` (seq 0, genesis hash) before its first record.

use crate::chain::{LineHash, hex_decode_32, hex_encode};
use crate::error::AuditError;
use crate::key::AuditKey;
use crate::segments::{HEAD_FILE, HEAD_TMP_FILE};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The last durable record as `HEAD` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: LineHash,
    pub file: String,
    pub mac: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct HeadJson {
    seq: u64,
    hash: String,
    file: String,
    mac: String,
}

impl Head {
    pub(crate) fn new(key: &AuditKey, seq: u64, hash: LineHash, file: String) -> Head {
        let mac = key.head_mac(seq, &hash, &file);
        Head {
            seq,
            hash,
            file,
            mac,
        }
    }

    pub fn mac_ok(&self, key: &AuditKey) -> bool {
        key.head_mac_ok(self.seq, &self.hash, &self.file, &self.mac)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let j = HeadJson {
            seq: self.seq,
            hash: self.hash.to_hex(),
            file: self.file.clone(),
            mac: hex_encode(&self.mac),
        };
        let mut v = serde_json::to_vec(&j).unwrap_or_default();
        v.push(b'\n');
        v
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Head, String> {
        let j: HeadJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let hash = LineHash::from_hex(&j.hash).ok_or("hash is not 64 hex digits")?;
        let mac = hex_decode_32(&j.mac).ok_or("mac is not 64 hex digits")?;
        if j.file.contains('/') || j.file.is_empty() {
            return Err(format!("bad file name {:?}", j.file));
        }
        Ok(Head {
            seq: j.seq,
            hash,
            file: j.file,
            mac,
        })
    }
}

/// Reads `dir/HEAD`: `Ok(None)` when absent, `Damaged` when unparsable.
pub(crate) fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Head::parse(&bytes)
            .map(Some)
            .map_err(|e| AuditError::Damaged(format!("{} is unreadable: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io(format!("reading {}", path.display()), e)),
    }
}

/// Atomically replaces `dir/HEAD`; durable when this returns.
pub(crate) fn write_head(dir: &Path, dir_fd: &File, head: &Head) -> io::Result<()> {
    let tmp = dir.join(HEAD_TMP_FILE);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(&head.encode())?;
    f.sync_data()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(HEAD_FILE))?;
    dir_fd.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::audit_key_from_root;

    #[test]
    fn encode_parse_round_trip_and_mac() {
        let k = audit_key_from_root(&[1; 32]);
        let h = Head::new(&k, 12, LineHash::of_line(b"x"), "audit-000002.jsonl".into());
        let back = Head::parse(&h.encode()).unwrap();
        assert_eq!(back, h);
        assert!(back.mac_ok(&k));
        assert!(!back.mac_ok(&audit_key_from_root(&[2; 32])));
        let forged = Head { seq: 11, ..back };
        assert!(!forged.mac_ok(&k));
    }

    #[test]
    fn parse_rejects_damage() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"seq\":1}",
            b"{\"seq\":1,\"hash\":\"00\",\"file\":\"a\",\"mac\":\"00\"}",
        ] {
            assert!(Head::parse(bad).is_err());
        }
    }

    #[test]
    fn write_then_read() {
        let dir = tempfile::tempdir().unwrap();
        let dfd = File::open(dir.path()).unwrap();
        assert_eq!(read_head(dir.path()).unwrap(), None);
        let k = audit_key_from_root(&[1; 32]);
        let h = Head::new(&k, 3, LineHash::GENESIS, "audit-000001.jsonl".into());
        write_head(dir.path(), &dfd, &h).unwrap();
        assert_eq!(read_head(dir.path()).unwrap(), Some(h));
        assert!(!dir.path().join(HEAD_TMP_FILE).exists());
        std::fs::write(dir.path().join(HEAD_FILE), b"garbage").unwrap();
        assert!(matches!(read_head(dir.path()), Err(AuditError::Damaged(_))));
    }
}
