//! [`AuditLog`]: the append API and its group-commit writer thread.
//!
//! Submitters serialize their event in their own thread and queue the body;
//! one writer thread takes everything queued (up to `max_batch`), chains it,
//! writes it with one `write` + `fdatasync`, replaces `HEAD`, and only then
//! completes the submitters' tickets.

use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::key::AuditKey;
use crate::resume::resume;
use crate::segments::LOCK_FILE;
use crate::ticket::{Completer, Seq, Ticket, ticket};
use crate::writer::{ChainWriter, Entry, Options};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

enum Msg {
    Append(String, Completer),
    Probe(Completer),
    Close(Completer),
}

/// An open, append-only audit log. `Send + Sync`: share it (`Arc`) between
/// request handlers. Dropping it closes it (final checkpoint).
pub struct AuditLog {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
    _lock: Flock<File>,
}

impl AuditLog {
    /// Opens (creating if needed, mode 0700) the log in `dir`, resumes the
    /// chain from the last record, cuts off a torn last line (writing an
    /// `AuditLogRecovered` record) and writes an `open` checkpoint. Fails
    /// with [`AuditError::Damaged`] if acknowledged records are missing or
    /// `HEAD` does not verify under `key`, and with [`AuditError::Locked`]
    /// if another process has the log open.
    pub fn open(
        dir: impl AsRef<Path>,
        key: AuditKey,
        options: Options,
    ) -> Result<AuditLog, AuditError> {
        let dir = dir.as_ref();
        create_private_dir(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| AuditError::io(format!("opening {}", lock_path.display()), e))?;
        let lock =
            Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
                AuditError::Locked(format!(
                    "{} is held by another process ({errno})",
                    lock_path.display()
                ))
            })?;
        let max_batch = options.max_batch.max(1);
        let (mut writer, recovery) = resume(dir, key, options)?;
        let mut entries = Vec::new();
        if let Some(r) = &recovery {
            entries.push(Entry::Recovery(r));
        }
        entries.push(Entry::Checkpoint("open"));
        writer.commit(&entries, &mut Vec::new())?;
        drop(entries);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kmsd-audit-writer".into())
            .spawn(move || run_writer(writer, rx, max_batch))
            .map_err(|e| AuditError::io("starting the audit writer thread", e))?;
        Ok(AuditLog {
            tx: Some(tx),
            thread: Some(thread),
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `event` and returns at once. The ticket resolves (blocking
    /// [`Ticket::wait`] or `.await`) to the record's seq once it is durable,
    /// or to the error that kept it from being written.
    pub fn submit(&self, event: &AuditEvent) -> Ticket {
        let body = match event.body_json() {
            Ok(b) => b,
            Err(e) => return Ticket::ready(Err(e)),
        };
        let (t, c) = ticket();
        if let Some(tx) = &self.tx {
            // If the writer is gone the message (and its completer) is
            // dropped, which resolves the ticket to `Closed`.
            let _ = tx.send(Msg::Append(body, c));
        }
        t
    }

    /// Writes `event` and blocks until it is durable; returns its seq. Do
    /// not call from an async task: `submit(..).await` there.
    pub fn append(&self, event: &AuditEvent) -> Result<Seq, AuditError> {
        self.submit(event).wait()
    }

    /// After a failed write: checks that the log ends with the last durable
    /// record, retries a failed rollback, and writes a `resume` checkpoint.
    /// `Ok` (the checkpoint's seq) means appends work again. Blocks.
    pub fn probe(&self) -> Result<Seq, AuditError> {
        let (t, c) = ticket();
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Probe(c));
        }
        t.wait()
    }

    /// Writes a `close` checkpoint and stops the writer thread.
    pub fn close(mut self) -> Result<(), AuditError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), AuditError> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let (t, c) = ticket();
        let _ = tx.send(Msg::Close(c));
        drop(tx);
        let result = t.wait();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
        result.map(|_| ())
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AuditError::io(format!("creating {}", dir.display()), e))
}

fn run_writer(mut w: ChainWriter, rx: mpsc::Receiver<Msg>, max_batch: usize) {
    let mut bodies: Vec<String> = Vec::new();
    let mut waiters: Vec<Completer> = Vec::new();
    let mut seqs = Vec::new();
    let mut close = None;
    let mut probes: Vec<Completer> = Vec::new();
    while close.is_none() {
        let Ok(first) = rx.recv() else { break };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(body, c) => {
                    bodies.push(body);
                    waiters.push(c);
                }
                Msg::Probe(c) => {
                    probes.push(c);
                    break;
                }
                Msg::Close(c) => {
                    close = Some(c);
                    break;
                }
            }
            if bodies.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if bodies.is_empty() {
            for c in probes.drain(..) {
                c.complete(w.probe().map(|()| w.last_seq()));
            }
            continue;
        }
        let entries: Vec<Entry<'_>> = bodies.iter().map(|b| Entry::Event(b)).collect();
        let result = w.commit(&entries, &mut seqs);
        drop(entries);
        match result {
            Ok(()) => {
                for (c, seq) in waiters.drain(..).zip(seqs.iter()) {
                    c.complete(Ok(*seq));
                }
            }
            Err(e) => {
                for c in waiters.drain(..) {
                    c.complete(Err(e.clone()));
                }
            }
        }
        bodies.clear();
        for c in probes.drain(..) {
            c.complete(w.probe().map(|()| w.last_seq()));
        }
    }
    if let Some(c) = close {
        let result = w.commit(&[Entry::Checkpoint("close")], &mut seqs);
        c.complete(result.map(|()| w.last_seq()));
    }
}
