//! The `HEAD` file: state kept outside the log so a truncated tail shows.
//!
//! `HEAD` names the last durable record: its seq, line hash and file, with
//! an HMAC under the audit key. It is updated after every group commit, so
//! it must be cheap and never be seen half-written. Layout (8192 bytes):
//!
//! | offset | size | content                                               |
//! |--------|------|-------------------------------------------------------|
//! | 0      | 4096 | slot 0: one JSON line, then zero bytes                |
//! | 4096   | 4096 | slot 1: same                                          |
//!
//! A slot is `{"seq":N,"hash":"<hex>","file":"audit-….jsonl","mac":"<hex>","check":"<hex>"}\n`
//! where `check` = SHA-256 of `seq|hash|file|mac` (detects a torn slot
//! without the key). Commits write the slots alternately in place (`pwrite`,
//! then `fdatasync`: one flush, no rename, no directory sync); a reader takes
//! the valid slot with the higher seq. A crash mid-write tears at most the
//! slot being written, and the other one still names an earlier durable
//! record. The file is created whole (temp file + fsync + rename + fsync of
//! the directory) with seq 0 before the log's first record.

use crate::chain::{LineHash, hex_decode_32, hex_encode};
use crate::error::AuditError;
use crate::key::AuditKey;
use crate::segments::{HEAD_FILE, HEAD_TMP_FILE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Bytes per slot; the file holds two.
pub(crate) const SLOT_SIZE: usize = 4096;

/// The last durable record as `HEAD` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: LineHash,
    pub file: String,
    pub mac: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct SlotJson {
    seq: u64,
    hash: String,
    file: String,
    mac: String,
    check: String,
}

fn check_of(seq: u64, hash: &str, file: &str, mac: &str) -> String {
    hex_encode(&Sha256::digest(
        format!("{seq}|{hash}|{file}|{mac}").as_bytes(),
    ))
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

    /// One slot, `SLOT_SIZE` bytes.
    pub(crate) fn encode_slot(&self) -> Vec<u8> {
        let (hash, mac) = (self.hash.to_hex(), hex_encode(&self.mac));
        let check = check_of(self.seq, &hash, &self.file, &mac);
        let j = SlotJson {
            seq: self.seq,
            hash,
            file: self.file.clone(),
            mac,
            check,
        };
        let mut v = serde_json::to_vec(&j).unwrap_or_default();
        v.push(b'\n');
        v.resize(SLOT_SIZE, 0);
        v
    }

    /// `Ok(None)` for an all-zero (never written) slot.
    pub(crate) fn parse_slot(slot: &[u8]) -> Result<Option<Head>, String> {
        if slot.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let end = slot
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("no complete line")?;
        let j: SlotJson = serde_json::from_slice(&slot[..end]).map_err(|e| e.to_string())?;
        if check_of(j.seq, &j.hash, &j.file, &j.mac) != j.check {
            return Err("checksum mismatch (torn or edited)".into());
        }
        let hash = LineHash::from_hex(&j.hash).ok_or("hash is not 64 hex digits")?;
        let mac = hex_decode_32(&j.mac).ok_or("mac is not 64 hex digits")?;
        if j.file.is_empty() || j.file.contains('/') {
            return Err(format!("bad file name {:?}", j.file));
        }
        Ok(Some(Head {
            seq: j.seq,
            hash,
            file: j.file,
            mac,
        }))
    }
}

/// What a `HEAD` file holds: the newest valid slot and which slot it is.
struct Slots {
    newest: Head,
    index: usize,
    /// A slot that is neither valid nor empty (torn by a crash, or edited).
    damaged: Option<String>,
}

fn parse_file(bytes: &[u8]) -> Result<Slots, String> {
    let mut best: Option<(Head, usize)> = None;
    let mut damaged = None;
    for i in 0..2 {
        let slot = bytes
            .get(i * SLOT_SIZE..((i + 1) * SLOT_SIZE).min(bytes.len()))
            .unwrap_or_default();
        match Head::parse_slot(slot) {
            Ok(Some(h)) => {
                if best.as_ref().is_none_or(|(b, _)| h.seq > b.seq) {
                    best = Some((h, i));
                }
            }
            Ok(None) => {}
            Err(e) => damaged = Some(format!("slot {i}: {e}")),
        }
    }
    match best {
        Some((newest, index)) => Ok(Slots {
            newest,
            index,
            damaged,
        }),
        None => Err(damaged.unwrap_or_else(|| "no valid slot".into())),
    }
}

/// Reads `dir/HEAD`: `Ok(None)` when absent, `Damaged` when no slot is
/// valid. The second value describes a damaged other slot, if any.
pub(crate) fn read_head(dir: &Path) -> Result<Option<(Head, Option<String>)>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => parse_file(&bytes)
            .map(|s| Some((s.newest, s.damaged)))
            .map_err(|e| AuditError::Damaged(format!("{} is unreadable: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::io(format!("reading {}", path.display()), e)),
    }
}

/// An open `HEAD` file, written by the log's writer.
pub(crate) struct HeadFile {
    file: File,
    next_slot: usize,
}

impl HeadFile {
    /// Creates `dir/HEAD` holding `head` in slot 0; durable on return.
    pub(crate) fn create(dir: &Path, dir_fd: &File, head: &Head) -> io::Result<HeadFile> {
        let tmp = dir.join(HEAD_TMP_FILE);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let mut bytes = head.encode_slot();
        bytes.resize(2 * SLOT_SIZE, 0);
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(HEAD_FILE))?;
        dir_fd.sync_all()?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(HEAD_FILE))?;
        Ok(HeadFile { file, next_slot: 1 })
    }

    /// Points the writer at another descriptor (a test's way to make the
    /// next slot write fail, and to repair it).
    #[cfg(test)]
    pub(crate) fn replace_file(&mut self, file: File) {
        self.file = file;
    }

    /// Opens the existing `dir/HEAD`; returns it with the newest valid head.
    pub(crate) fn open(dir: &Path) -> Result<Option<(HeadFile, Head)>, AuditError> {
        let path = dir.join(HEAD_FILE);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(AuditError::io(format!("opening {}", path.display()), e)),
        };
        let mut bytes = vec![0u8; 2 * SLOT_SIZE];
        let n = read_full_at(&file, &mut bytes)
            .map_err(|e| AuditError::io(format!("reading {}", path.display()), e))?;
        bytes.truncate(n);
        let slots = parse_file(&bytes)
            .map_err(|e| AuditError::Damaged(format!("{} is unreadable: {e}", path.display())))?;
        Ok(Some((
            HeadFile {
                file,
                next_slot: 1 - slots.index,
            },
            slots.newest,
        )))
    }

    /// Writes `head` over the older slot and flushes it.
    pub(crate) fn write(&mut self, head: &Head) -> io::Result<()> {
        self.file
            .write_all_at(&head.encode_slot(), (self.next_slot * SLOT_SIZE) as u64)?;
        self.file.sync_data()?;
        self.next_slot = 1 - self.next_slot;
        Ok(())
    }
}

fn read_full_at(f: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::audit_key_from_root;

    fn head(k: &AuditKey, seq: u64) -> Head {
        Head::new(
            k,
            seq,
            LineHash::of_line(&seq.to_be_bytes()),
            "audit-000002.jsonl".into(),
        )
    }

    #[test]
    fn slot_round_trip_and_mac() {
        let k = audit_key_from_root(&[1; 32]);
        let h = head(&k, 12);
        let slot = h.encode_slot();
        assert_eq!(slot.len(), SLOT_SIZE);
        let back = Head::parse_slot(&slot).unwrap().unwrap();
        assert_eq!(back, h);
        assert!(back.mac_ok(&k));
        assert!(!back.mac_ok(&audit_key_from_root(&[2; 32])));
        assert!(!Head { seq: 11, ..back }.mac_ok(&k));
        assert_eq!(Head::parse_slot(&[0; SLOT_SIZE]).unwrap(), None);
    }

    #[test]
    fn torn_or_edited_slots_are_rejected() {
        let k = audit_key_from_root(&[1; 32]);
        let slot = head(&k, 12).encode_slot();
        let len = slot.iter().position(|b| *b == b'\n').unwrap();
        let mut torn = slot.clone();
        torn[len / 2..].fill(0);
        assert!(Head::parse_slot(&torn).is_err());
        let edited = String::from_utf8(slot[..len].to_vec())
            .unwrap()
            .replace("\"seq\":12", "\"seq\":13");
        let mut e = edited.into_bytes();
        e.push(b'\n');
        assert!(Head::parse_slot(&e).unwrap_err().contains("checksum"));
        assert!(Head::parse_slot(b"{\"seq\":1}\n").is_err());
        assert!(Head::parse_slot(b"garbage").is_err());
    }

    #[test]
    fn writes_alternate_and_the_newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let dfd = File::open(dir.path()).unwrap();
        let k = audit_key_from_root(&[1; 32]);
        assert!(read_head(dir.path()).unwrap().is_none());
        let mut hf = HeadFile::create(dir.path(), &dfd, &head(&k, 0)).unwrap();
        assert!(!dir.path().join(HEAD_TMP_FILE).exists());
        assert_eq!(read_head(dir.path()).unwrap().unwrap().0.seq, 0);
        for seq in 1..=5 {
            hf.write(&head(&k, seq)).unwrap();
            assert_eq!(
                read_head(dir.path()).unwrap().unwrap(),
                (head(&k, seq), None)
            );
        }
        // Slot 1 holds seq 5 (odd writes go to slot 1), slot 0 seq 4.
        let path = dir.path().join(HEAD_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * SLOT_SIZE);
        // Tear the newest slot: the older one is used, the damage reported.
        bytes[SLOT_SIZE + 10..SLOT_SIZE + 40].fill(b'x');
        std::fs::write(&path, &bytes).unwrap();
        let (h, damaged) = read_head(dir.path()).unwrap().unwrap();
        assert_eq!(h.seq, 4);
        assert!(damaged.unwrap().contains("slot 1"));
        // Reopened, the writer overwrites the torn slot, not the good one.
        let (mut hf, newest) = HeadFile::open(dir.path()).unwrap().unwrap();
        assert_eq!(newest.seq, 4);
        hf.write(&head(&k, 5)).unwrap();
        assert_eq!(read_head(dir.path()).unwrap().unwrap(), (head(&k, 5), None));
        hf.write(&head(&k, 6)).unwrap();
        assert_eq!(read_head(dir.path()).unwrap().unwrap().0.seq, 6);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(read_head(dir.path()), Err(AuditError::Damaged(_))));
        assert!(HeadFile::open(dir.path()).is_err());
    }
}
