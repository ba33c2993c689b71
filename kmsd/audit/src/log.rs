//! [`AuditLog`]: the append API. Submitters serialize their event in their
//! own thread and queue the body; a group commit (see [`crate::commit`])
//! chains everything queued, writes it with one `write` + `fdatasync`,
//! completes the submitters' tickets, then updates `HEAD`.

use crate::commit::{CommitMode, INLINE_BELOW, Shared};
use crate::error::AuditError;
use crate::event::AuditEvent;
use crate::instance::{INSTANCE_FILE, check_claim, check_instance_id, write_instance};
use crate::key::AuditKey;
use crate::resume::resume;
use crate::segments::LOCK_FILE;
use crate::ticket::{Seq, Ticket, ticket};
use crate::writer::{Entry, Options};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// An open, append-only audit log. `Send + Sync`: share it (`Arc`) between
/// request handlers. Dropping it closes it (final checkpoint).
pub struct AuditLog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    closed: bool,
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
    ///
    /// With [`Options::instance`], the id must be valid
    /// ([`AuditError::BadInput`] before anything is touched); `<dir>/INSTANCE`
    /// is written if absent (also for a log written before instances: its
    /// earlier records simply have no `instance`), and a directory whose
    /// `INSTANCE` names another id, or any id when `instance` is `None`, is
    /// refused with [`AuditError::WrongInstance`]; so is a log whose last
    /// record names another instance (or any, when `None`).
    pub fn open(
        dir: impl AsRef<Path>,
        key: AuditKey,
        options: Options,
    ) -> Result<AuditLog, AuditError> {
        let dir = dir.as_ref();
        if let Some(id) = &options.instance {
            check_instance_id(id)?;
        }
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
        let max_batch = options.max_batch;
        let mode = options.commit;
        let claim = check_claim(dir, options.instance.as_deref())?;
        let (mut writer, recovery) = resume(dir, key, options)?;
        // Before the first record that names it, and only once the log is
        // known to resume (a refused log is left untouched).
        if claim && let Some(id) = &writer.opts.instance {
            write_instance(dir, &writer.dir_fd, id).map_err(|e| {
                AuditError::io(format!("writing {}/{INSTANCE_FILE}", dir.display()), e)
            })?;
        }
        let mut entries = Vec::new();
        if let Some(r) = &recovery {
            entries.push(Entry::Recovery(r));
        }
        entries.push(Entry::Checkpoint("open"));
        let t = Instant::now();
        writer.commit(&entries, &mut Vec::new())?;
        let took = t.elapsed();
        drop(entries);
        let inline = match mode {
            CommitMode::Inline => true,
            CommitMode::Thread => false,
            CommitMode::Auto => took < INLINE_BELOW,
        };
        let shared = Arc::new(Shared::new(writer, max_batch, inline));
        let thread = if inline {
            None
        } else {
            let s = shared.clone();
            let h = std::thread::Builder::new()
                .name("kmsd-audit-writer".into())
                .spawn(move || s.run_thread())
                .map_err(|e| AuditError::io("starting the audit writer thread", e))?;
            Some(h)
        };
        Ok(AuditLog {
            shared,
            thread,
            closed: false,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Whether records are committed by the threads that wait for them
    /// (`true`) or by a writer thread.
    pub fn commits_inline(&self) -> bool {
        self.shared.inline
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
        let (t, c) = ticket(self.shared.inline.then(|| self.shared.clone()));
        // Once closed, the completer is dropped, which resolves the ticket
        // to `Closed`.
        let _ = self.shared.push(body, c);
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
        self.shared.probe()
    }

    /// Records submitted and waiting for a group commit (a gauge for
    /// metrics; takes the queue's lock briefly).
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// Writes a `close` checkpoint and stops the writer thread.
    pub fn close(mut self) -> Result<(), AuditError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), AuditError> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.shared.stop();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
        self.shared.close().map(|_| ())
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
