//! [`CommitObserver`]: how a server learns about the group commits (for
//! its metrics) without this crate knowing the server.

use std::time::Duration;

/// Told about each group commit of submitted records, on the thread that
/// made it, just before the batch's submitters are answered (so an
/// answered request's batch is always counted). Keep it cheap: the
/// batch's answers wait for it.
pub trait CommitObserver: Send + Sync + std::fmt::Debug {
    /// A batch of `records` records was appended (one write and one
    /// `fdatasync`, plus a rotation when one was due) in `took`; called
    /// whether or not the append succeeded.
    fn batch_appended(&self, records: usize, took: Duration);
}
