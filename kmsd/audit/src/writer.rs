//! The chain writer: turns a batch of record bodies into chained lines,
//! appends them with one write + fdatasync ([`ChainWriter::append`]), then
//! updates `HEAD` (one pwrite + fdatasync, [`ChainWriter::update_head`]).
//! The group commit acknowledges a batch between the two, so a request
//! waits for one flush, not two (docs/AUDIT.md, "HEAD after the
//! acknowledgement"). Runs under the group commit's lock (see
//! `commit.rs`), and once in `open`. Rotation and periodic checkpoints
//! happen here.

use crate::chain::LineHash;
use crate::error::AuditError;
use crate::head::{Head, HeadFile};
use crate::key::AuditKey;
use crate::record::{RecoveryParams, checkpoint_body, push_line, recovery_body};
use crate::segments::segment_name;
use crate::ticket::Seq;
use crate::time::EventTime;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Tuning of an [`crate::AuditLog`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Start a new file at the first commit after the current one reached
    /// this size. `None`: never rotate. Default 64 MiB.
    pub rotate_bytes: Option<u64>,
    /// Write a signed checkpoint after this many records (besides the ones
    /// at open, close and rotation). Default 1000; 0 means only those.
    pub checkpoint_every: u64,
    /// Most records in one group commit. Default 4096.
    pub max_batch: usize,
    /// Who commits: see [`crate::CommitMode`]. Default `Auto`.
    pub commit: crate::CommitMode,
    /// Told about each group commit (a server's metrics). Default none.
    pub observer: Option<Arc<dyn crate::CommitObserver>>,
    /// The kmsd instance whose chain this is (`[a-z0-9-]{1,64}`, see
    /// [`crate::check_instance_id`]). When set, every line written names it
    /// (`"instance":"<id>"` after `prevHash`), and `open` writes
    /// `<dir>/INSTANCE` or refuses a directory whose `INSTANCE` names
    /// another id. Default none: lines without the field, no `INSTANCE`.
    pub instance: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rotate_bytes: Some(64 << 20),
            checkpoint_every: 1000,
            max_batch: 4096,
            commit: crate::CommitMode::Auto,
            observer: None,
            instance: None,
        }
    }
}

/// One entry of a batch.
pub(crate) enum Entry<'a> {
    /// A serialized [`crate::AuditEvent`] body.
    Event(&'a str),
    /// A checkpoint with this reason.
    Checkpoint(&'static str),
    Recovery(&'a RecoveryParams),
}

pub(crate) struct ChainWriter {
    pub dir: PathBuf,
    pub dir_fd: File,
    pub head_file: HeadFile,
    pub file: File,
    pub seg_index: u32,
    pub file_len: u64,
    pub next_seq: Seq,
    pub prev: LineHash,
    /// The file holding record `next_seq - 1` (what `HEAD` names).
    pub last_file: String,
    pub since_checkpoint: u64,
    pub rotation_checkpoint_due: bool,
    pub key: AuditKey,
    pub opts: Options,
    pub buf: Vec<u8>,
    pub poisoned: Option<Arc<str>>,
    /// The log holds durable records that `HEAD` does not name yet: set
    /// by [`ChainWriter::append`], cleared by [`ChainWriter::update_head`].
    pub head_stale: bool,
}

impl ChainWriter {
    fn seg_name(&self) -> String {
        segment_name(self.seg_index)
    }

    /// The last durable record: what `HEAD` says after a commit.
    pub fn last_seq(&self) -> Seq {
        self.next_seq - 1
    }

    /// [`ChainWriter::append`] then [`ChainWriter::update_head`]: the batch
    /// is durable and `HEAD` names its last record.
    pub fn commit(&mut self, entries: &[Entry<'_>], seqs: &mut Vec<Seq>) -> Result<(), AuditError> {
        self.append(entries, seqs)?;
        self.update_head()
    }

    /// Writes `entries` as one durable batch (one `write`, one
    /// `fdatasync`); `HEAD` is left for [`ChainWriter::update_head`]. On
    /// success `seqs` holds the seq of each entry, in order. On failure
    /// nothing of the batch is acknowledged and the log is rolled back to
    /// its previous state (or, if that fails too, the writer is poisoned).
    /// A `HEAD` left stale by a failed update is brought up to date first,
    /// so it never lags the log by more than one batch.
    pub fn append(&mut self, entries: &[Entry<'_>], seqs: &mut Vec<Seq>) -> Result<(), AuditError> {
        seqs.clear();
        if let Some(message) = &self.poisoned {
            return Err(AuditError::WriteFailed {
                message: message.clone(),
                poisoned: true,
            });
        }
        self.update_head()?;
        if self
            .opts
            .rotate_bytes
            .is_some_and(|max| self.file_len >= max)
            && self.file_len > 0
        {
            self.rotate().map_err(|e| AuditError::WriteFailed {
                message: format!("starting {}: {e}", segment_name(self.seg_index + 1)).into(),
                poisoned: false,
            })?;
        }
        let saved = (
            self.next_seq,
            self.prev,
            self.since_checkpoint,
            self.file_len,
            self.last_file.clone(),
        );
        self.buf.clear();
        let now = EventTime::now();
        if self.rotation_checkpoint_due {
            self.push_checkpoint(now, "rotation");
        }
        for entry in entries {
            if self.opts.checkpoint_every > 0
                && self.since_checkpoint >= self.opts.checkpoint_every
                && !matches!(entry, Entry::Checkpoint(_))
            {
                self.push_checkpoint(now, "interval");
            }
            let seq = self.next_seq;
            match entry {
                Entry::Event(body) => self.push(body),
                Entry::Checkpoint(reason) => self.push_checkpoint(now, reason),
                Entry::Recovery(params) => self.push(&recovery_body(now, params)),
            }
            seqs.push(seq);
        }
        match self.write_batch() {
            Ok(()) => {
                self.head_stale = true;
                self.file_len += self.buf.len() as u64;
                self.last_file = self.seg_name();
                self.rotation_checkpoint_due = false;
                Ok(())
            }
            Err(e) => {
                seqs.clear();
                let message = e.to_string();
                (
                    self.next_seq,
                    self.prev,
                    self.since_checkpoint,
                    self.file_len,
                    self.last_file,
                ) = saved;
                let poisoned = self.roll_back().is_err();
                let message: Arc<str> = message.into();
                if poisoned {
                    self.poisoned = Some(message.clone());
                }
                Err(AuditError::WriteFailed { message, poisoned })
            }
        }
    }

    /// After a failed commit: checks that the file ends exactly with the
    /// last durable record (length and hash of its last line), retries a
    /// rollback that failed, then writes a `resume` checkpoint. `Ok` means
    /// the log is writable again and its tail is what the chain expects.
    pub fn probe(&mut self) -> Result<(), AuditError> {
        let failed = |message: String, poisoned: bool| AuditError::WriteFailed {
            message: message.into(),
            poisoned,
        };
        if self.poisoned.is_some() {
            self.roll_back()
                .map_err(|e| failed(format!("rolling back a failed batch: {e}"), true))?;
            self.poisoned = None;
        }
        self.check_tail().map_err(|m| failed(m, false))?;
        let mut seqs = Vec::new();
        self.commit(&[Entry::Checkpoint("resume")], &mut seqs)
    }

    /// The current file is `file_len` bytes long and, unless it is a new
    /// empty file, its last line hashes to `prev`.
    fn check_tail(&mut self) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        let len = self
            .file
            .metadata()
            .map_err(|e| format!("reading the log's length: {e}"))?
            .len();
        if len != self.file_len {
            return Err(format!(
                "{} is {len} bytes, the chain expects {}",
                self.seg_name(),
                self.file_len
            ));
        }
        if len == 0 {
            return Ok(());
        }
        let want = len.min(crate::lines::MAX_LINE as u64 + 1);
        let mut tail = vec![0u8; want as usize];
        self.file
            .read_exact_at(&mut tail, len - want)
            .map_err(|e| format!("reading the log's tail: {e}"))?;
        let Some(body) = tail.strip_suffix(b"\n") else {
            return Err(format!(
                "{} does not end with a whole line",
                self.seg_name()
            ));
        };
        let line = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => &body[i + 1..],
            None if want == len => body,
            None => return Err(format!("{}: last line too long", self.seg_name())),
        };
        if LineHash::of_line(line) != self.prev {
            return Err(format!(
                "the last line of {} is not the last record written",
                self.seg_name()
            ));
        }
        Ok(())
    }

    fn push(&mut self, body: &str) {
        let instance = self.opts.instance.as_deref();
        self.prev = push_line(&mut self.buf, self.next_seq, &self.prev, instance, body);
        self.next_seq += 1;
        self.since_checkpoint += 1;
    }

    fn push_checkpoint(&mut self, now: EventTime, reason: &str) {
        let mac = self.key.checkpoint_mac(self.next_seq, &self.prev);
        self.push(&checkpoint_body(now, reason, &mac));
        self.since_checkpoint = 0;
    }

    fn write_batch(&mut self) -> std::io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.file.sync_data()
    }

    /// Makes `HEAD` name the last durable record, if it does not yet. A
    /// failure leaves it stale (the previous slot still names an earlier
    /// durable record) and fails the next [`ChainWriter::append`] until a
    /// retry succeeds.
    pub fn update_head(&mut self) -> Result<(), AuditError> {
        if !self.head_stale {
            return Ok(());
        }
        let head = Head::new(
            &self.key,
            self.next_seq - 1,
            self.prev,
            self.last_file.clone(),
        );
        self.head_file
            .write(&head)
            .map_err(|e| AuditError::WriteFailed {
                message: format!("updating HEAD: {e}").into(),
                poisoned: false,
            })?;
        self.head_stale = false;
        Ok(())
    }

    /// Cuts the current file back to `file_len` and restores `HEAD`.
    fn roll_back(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.file_len)?;
        self.file.sync_data()?;
        let head = Head::new(
            &self.key,
            self.next_seq - 1,
            self.prev,
            self.last_file.clone(),
        );
        self.head_file.write(&head)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let index = self.seg_index + 1;
        let file = create_segment(&self.dir, index)?;
        self.dir_fd.sync_all()?;
        self.file = file;
        self.seg_index = index;
        self.file_len = 0;
        self.rotation_checkpoint_due = true;
        Ok(())
    }
}

/// Creates a new, empty segment file opened for appending.
pub(crate) fn create_segment(dir: &std::path::Path, index: u32) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join(segment_name(index)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::audit_key_from_root;
    use crate::segments::HEAD_FILE;

    fn body(i: u64) -> String {
        let who = crate::Principal::from_peer(1000, 100, None);
        crate::AuditEvent::new("Encrypt", format!("req-{i}"), who)
            .body_json()
            .unwrap()
    }

    #[test]
    fn head_follows_each_append_and_a_failed_update_refuses_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let key = || audit_key_from_root(&[7; 32]);
        let (mut w, _) = crate::resume::resume(dir.path(), key(), Options::default()).unwrap();
        let mut seqs = Vec::new();
        w.commit(&[Entry::Checkpoint("open")], &mut seqs).unwrap();
        let head_seq = || crate::head::read_head(dir.path()).unwrap().unwrap().0.seq;

        // Durable and acknowledged before HEAD moves; HEAD names it after.
        let b = body(1);
        w.append(&[Entry::Event(&b)], &mut seqs).unwrap();
        assert_eq!((seqs.clone(), head_seq()), (vec![2], 1));
        w.update_head().unwrap();
        assert_eq!(head_seq(), 2);

        // A HEAD update that fails leaves HEAD one batch behind...
        let b = body(2);
        w.append(&[Entry::Event(&b)], &mut seqs).unwrap();
        let ro = File::open(dir.path().join(HEAD_FILE)).unwrap();
        w.head_file.replace_file(ro);
        assert!(w.update_head().is_err());
        assert_eq!(head_seq(), 2);
        // ...and the next batch is refused, not appended.
        let len = w.file.metadata().unwrap().len();
        let b = body(3);
        let err = w.append(&[Entry::Event(&b)], &mut seqs).unwrap_err();
        assert!(
            matches!(&err, AuditError::WriteFailed { poisoned: false, message } if message.contains("HEAD")),
            "{err}"
        );
        assert!(seqs.is_empty());
        assert_eq!(w.file.metadata().unwrap().len(), len);

        // Once HEAD can be written, the next batch brings it up to date first.
        let rw = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join(HEAD_FILE))
            .unwrap();
        w.head_file.replace_file(rw);
        w.commit(&[Entry::Event(&b)], &mut seqs).unwrap();
        assert_eq!((seqs.clone(), head_seq()), (vec![4], 4));
        let r = crate::verify(dir.path(), Some(&key())).unwrap();
        assert!(r.is_intact() && r.notes.is_empty(), "{r}");
    }
}
