//! Completion of one submitted record: a one-shot slot the writer fills
//! once the record's batch is durable. Wait on it blocking
//! ([`Ticket::wait`]) or `.await` it (it is a `Future`); it never hangs: if
//! the writer goes away first, the result is [`AuditError::Closed`]. In
//! inline commit mode, waiting first commits the queue if no other thread
//! is doing so (see `commit.rs`).

use crate::commit::Shared;
use crate::error::AuditError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The sequence number a record was written with.
pub type Seq = u64;

enum State {
    /// The task to wake, and whether a thread blocks on the condvar (so
    /// completing a ticket nobody blocks on costs no `futex` call).
    Waiting(Option<Waker>, bool),
    Done(Result<Seq, AuditError>),
    Taken,
}

struct Slot {
    state: Mutex<State>,
    ready: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is still
        // one of the three variants.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Waits for one record to become durable.
#[must_use = "a record is acknowledged only once its ticket resolves Ok"]
pub struct Ticket {
    slot: Arc<Slot>,
    /// Inline mode: the queue this ticket's waiter commits.
    lead: Option<Arc<Shared>>,
}

/// The writer's half: completes the ticket once; on drop without
/// completing, completes it with `Closed`.
pub(crate) struct Completer {
    slot: Option<Arc<Slot>>,
}

pub(crate) fn ticket(lead: Option<Arc<Shared>>) -> (Ticket, Completer) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting(None, false)),
        ready: Condvar::new(),
    });
    (
        Ticket {
            slot: slot.clone(),
            lead,
        },
        Completer { slot: Some(slot) },
    )
}

impl Ticket {
    /// An already resolved ticket (e.g. a submit that failed up front).
    pub fn ready(result: Result<Seq, AuditError>) -> Ticket {
        Ticket {
            slot: Arc::new(Slot {
                state: Mutex::new(State::Done(result)),
                ready: Condvar::new(),
            }),
            lead: None,
        }
    }

    /// Whether waiting for this ticket may write the batch itself (inline
    /// commit mode) rather than wait for the writer thread.
    pub fn commits_inline(&self) -> bool {
        self.lead.is_some()
    }

    /// Blocks until the record is durable (`Ok(seq)`) or failed. Do not
    /// call from an async task: `.await` the ticket there.
    pub fn wait(self) -> Result<Seq, AuditError> {
        if let Some(l) = &self.lead {
            l.lead();
        }
        let mut st = self.slot.lock();
        loop {
            match std::mem::replace(&mut *st, State::Taken) {
                State::Done(r) => return r,
                State::Taken => return Err(AuditError::Closed),
                State::Waiting(w, _) => {
                    *st = State::Waiting(w, true);
                    st = self.slot.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }
}

impl Future for Ticket {
    type Output = Result<Seq, AuditError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(l) = &self.lead {
            l.lead();
        }
        let mut st = self.slot.lock();
        match std::mem::replace(&mut *st, State::Taken) {
            State::Done(r) => Poll::Ready(r),
            State::Taken => Poll::Ready(Err(AuditError::Closed)),
            State::Waiting(_, blocked) => {
                *st = State::Waiting(Some(cx.waker().clone()), blocked);
                Poll::Pending
            }
        }
    }
}

impl Completer {
    pub fn complete(mut self, result: Result<Seq, AuditError>) {
        if let Some(slot) = self.slot.take() {
            finish(&slot, result);
        }
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            finish(&slot, Err(AuditError::Closed));
        }
    }
}

fn finish(slot: &Slot, result: Result<Seq, AuditError>) {
    let (waker, blocked) = {
        let mut st = slot.lock();
        match std::mem::replace(&mut *st, State::Done(result)) {
            State::Waiting(w, blocked) => (w, blocked),
            _ => (None, false),
        }
    };
    if blocked {
        slot.ready.notify_all();
    }
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_wait_gets_the_result_from_another_thread() {
        let (t, c) = ticket(None);
        let h = std::thread::spawn(move || t.wait());
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.complete(Ok(7));
        assert_eq!(h.join().unwrap().unwrap(), 7);
    }

    #[test]
    fn dropped_completer_means_closed() {
        let (t, c) = ticket(None);
        drop(c);
        assert!(matches!(t.wait(), Err(AuditError::Closed)));
    }

    #[test]
    fn await_works_on_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (t, c) = ticket(None);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            c.complete(Ok(3));
        });
        assert_eq!(rt.block_on(t).unwrap(), 3);
        assert_eq!(rt.block_on(Ticket::ready(Ok(9))).unwrap(), 9);
    }
}
