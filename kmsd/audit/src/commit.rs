//! Group commit: the queue of submitted records and who writes it.
//!
//! Submitters serialize their record in their own thread and queue it. A
//! batch (everything queued, up to `max_batch`) is written by whoever holds
//! the [`ChainWriter`]:
//!
//! - [`CommitMode::Inline`]: the first thread that *waits* for a record
//!   takes the writer and commits the whole queue, its neighbours' records
//!   included, then looks again before it lets go. No thread is woken to
//!   write: right where a commit costs microseconds (tmpfs, a fast cache),
//!   where a hand-off to a writer thread and back costs more than the write.
//! - [`CommitMode::Thread`]: a writer thread commits; submitters wake it
//!   only when it sleeps. Right where `fdatasync` takes milliseconds, which
//!   must not stall the threads that serve requests.
//!
//! [`CommitMode::Auto`] times the commit `open` makes and picks.

use crate::error::AuditError;
use crate::ticket::{Completer, Seq};
use crate::writer::{ChainWriter, Entry};
use std::sync::{Condvar, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// Who writes a batch; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Inline when the open commit took less than [`INLINE_BELOW`].
    #[default]
    Auto,
    Inline,
    Thread,
}

/// The slowest open commit (one write, two `fdatasync`) that still picks
/// [`CommitMode::Inline`] under [`CommitMode::Auto`].
pub const INLINE_BELOW: Duration = Duration::from_micros(300);

#[derive(Default)]
struct Queue {
    bodies: Vec<String>,
    waiters: Vec<Completer>,
    /// The writer thread waits on `Shared::more` (thread mode).
    sleeping: bool,
    closed: bool,
}

/// The writer's own scratch space, kept between batches.
pub(crate) struct Writer {
    chain: ChainWriter,
    seqs: Vec<Seq>,
    bodies: Vec<String>,
    waiters: Vec<Completer>,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    more: Condvar,
    writer: Mutex<Writer>,
    max_batch: usize,
    pub inline: bool,
}

fn relock<T>(r: std::sync::LockResult<MutexGuard<'_, T>>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere; the queue and the
    // writer stay consistent (a failed commit rolls back).
    r.unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(chain: ChainWriter, max_batch: usize, inline: bool) -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            more: Condvar::new(),
            writer: Mutex::new(Writer {
                chain,
                seqs: Vec::new(),
                bodies: Vec::new(),
                waiters: Vec::new(),
            }),
            max_batch: max_batch.max(1),
            inline,
        }
    }

    /// Queues a record; `Err` gives the completer back once the log is
    /// closed.
    pub fn push(&self, body: String, c: Completer) -> Result<(), Completer> {
        let mut q = relock(self.queue.lock());
        if q.closed {
            return Err(c);
        }
        q.bodies.push(body);
        q.waiters.push(c);
        let wake = q.sleeping;
        q.sleeping = false;
        drop(q);
        if wake {
            self.more.notify_one();
        }
        Ok(())
    }

    /// Inline mode: commits the queue unless another thread is doing so
    /// (it will see what is queued now before it lets go).
    pub fn lead(&self) {
        loop {
            let mut w = match self.writer.try_lock() {
                Ok(w) => w,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            self.commit_queued(&mut w);
            drop(w);
            // A record queued after our last look, whose waiter found the
            // writer taken, is ours to write.
            if relock(self.queue.lock()).bodies.is_empty() {
                return;
            }
        }
    }

    /// Commits batches until the queue is empty.
    fn commit_queued(&self, w: &mut Writer) {
        while self.take(w) {
            w.commit();
        }
    }

    /// Moves up to `max_batch` queued records into the writer's batch.
    fn take(&self, w: &mut Writer) -> bool {
        let mut q = relock(self.queue.lock());
        let n = q.bodies.len().min(self.max_batch);
        w.bodies.extend(q.bodies.drain(..n));
        w.waiters.extend(q.waiters.drain(..n));
        n > 0
    }

    /// Thread mode: the writer thread's loop, until [`Shared::close`].
    pub fn run_thread(&self) {
        loop {
            {
                let mut q = relock(self.queue.lock());
                while q.bodies.is_empty() && !q.closed {
                    q.sleeping = true;
                    q = relock(self.more.wait(q));
                }
                if q.bodies.is_empty() {
                    return;
                }
            }
            self.commit_queued(&mut relock(self.writer.lock()));
        }
    }

    /// Records submitted and not yet taken into a batch.
    pub fn queued(&self) -> usize {
        relock(self.queue.lock()).bodies.len()
    }

    /// After a failed write: see [`ChainWriter::probe`].
    pub fn probe(&self) -> Result<Seq, AuditError> {
        let mut w = relock(self.writer.lock());
        w.chain.probe().map(|()| w.chain.last_seq())
    }

    /// Refuses new records and wakes the writer thread to finish.
    pub fn stop(&self) {
        relock(self.queue.lock()).closed = true;
        self.more.notify_all();
    }

    /// Writes what is still queued and a `close` checkpoint. Call after
    /// [`Shared::stop`] (and after the writer thread has ended).
    pub fn close(&self) -> Result<Seq, AuditError> {
        let mut w = relock(self.writer.lock());
        self.commit_queued(&mut w);
        let mut seqs = Vec::new();
        w.chain.commit(&[Entry::Checkpoint("close")], &mut seqs)?;
        Ok(w.chain.last_seq())
    }
}

impl Writer {
    /// Appends the batch, completes its tickets once it is durable, then
    /// brings `HEAD` up to date: the submitters wait for one flush, and the
    /// next batch gathers while `HEAD`'s runs. A failed `HEAD` update fails
    /// the next batch instead (see [`ChainWriter::append`]).
    fn commit(&mut self) {
        let entries: Vec<Entry<'_>> = self.bodies.iter().map(|b| Entry::Event(b)).collect();
        let started = Instant::now();
        let result = self.chain.append(&entries, &mut self.seqs);
        let took = started.elapsed();
        drop(entries);
        // Before the answers: a request answered is in the figures.
        if let Some(o) = &self.chain.opts.observer {
            o.batch_appended(self.bodies.len(), took);
        }
        match result {
            Ok(()) => {
                for (c, seq) in self.waiters.drain(..).zip(self.seqs.iter()) {
                    c.complete(Ok(*seq));
                }
                let _ = self.chain.update_head();
            }
            Err(e) => {
                for c in self.waiters.drain(..) {
                    c.complete(Err(e.clone()));
                }
            }
        }
        self.bodies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEvent, AuditLog, CommitObserver, Options, Principal, audit_key_from_root};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Tally {
        batches: AtomicUsize,
        records: AtomicUsize,
    }

    impl CommitObserver for Tally {
        fn batch_appended(&self, records: usize, _took: Duration) {
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.records.fetch_add(records, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_observer_sees_every_submitted_record_in_some_batch() {
        for mode in [CommitMode::Inline, CommitMode::Thread] {
            let dir = tempfile::tempdir().unwrap();
            let tally = Arc::new(Tally::default());
            let opts = Options {
                commit: mode,
                observer: Some(tally.clone()),
                ..Options::default()
            };
            let log = AuditLog::open(dir.path(), audit_key_from_root(&[3; 32]), opts).unwrap();
            let who = Principal::from_peer(1000, 100, None);
            let tickets: Vec<_> = (0..50)
                .map(|i| log.submit(&AuditEvent::new("Encrypt", format!("r-{i}"), who.clone())))
                .collect();
            for t in tickets {
                t.wait().unwrap();
            }
            assert_eq!(log.queued(), 0, "{mode:?}");
            assert_eq!(tally.records.load(Ordering::Relaxed), 50, "{mode:?}");
            let batches = tally.batches.load(Ordering::Relaxed);
            assert!((1..=50).contains(&batches), "{mode:?}: {batches}");
            log.close().unwrap();
        }
    }
}
