//! The figures kmsd keeps: every series registered up front, in fixed
//! arrays indexed by operation, transport and exception, so recording a
//! request is a few relaxed atomic adds, with no lock, no lookup by name
//! and no allocation.

use super::histogram::{BATCH_BOUNDS, Histogram, LATENCY_BOUNDS, Unit};
use crate::service::dispatch::OPERATIONS;
use kmsd_client::ErrorKind;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Operations kmsd serves (`service::dispatch::OPERATIONS`).
pub const OPS: usize = OPERATIONS.len();
/// AWS exception names kmsd answers with.
pub const KINDS: usize = ErrorKind::ALL.len();

/// The way a request reached kmsd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The native Unix socket.
    Socket,
    /// The AWS endpoint (HTTP or HTTPS).
    Http,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Socket, Transport::Http];

    pub fn label(self) -> &'static str {
        match self {
            Transport::Socket => "socket",
            Transport::Http => "http",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An operation's index in [`OPERATIONS`], at compile time:
/// `const { op_index(O::NAME) }` fails to compile for an unknown name.
pub const fn op_index(name: &str) -> usize {
    let mut i = 0;
    while i < OPERATIONS.len() {
        if str_eq(OPERATIONS[i].0, name) {
            return i;
        }
        i += 1;
    }
    panic!("not an operation kmsd serves");
}

/// An operation's index by its name at run time, for requests refused
/// before the pipeline (throttled), which carry only the name.
pub fn op_index_of(name: &str) -> Option<usize> {
    OPERATIONS.iter().position(|(n, _, _)| *n == name)
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A request being measured: its operation and when it started (none for
/// requests counted but not timed).
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    op: usize,
    started: Option<Instant>,
}

impl Meter {
    /// Starts timing a request of operation `op` ([`op_index`]).
    pub fn start(op: usize) -> Meter {
        Meter {
            op,
            started: Some(Instant::now()),
        }
    }

    /// Counts, without timing, a request of the operation named `name`;
    /// `None` for a name that is no operation.
    pub fn untimed(name: &str) -> Option<Meter> {
        op_index_of(name).map(|op| Meter { op, started: None })
    }

    pub fn op(&self) -> usize {
        self.op
    }
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn value(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    /// Adds one until the returned guard is dropped (an open connection).
    pub fn hold(&self) -> Held<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(self)
    }

    pub fn value(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One unit of a [`Gauge`], given back on drop.
pub struct Held<'a>(&'a Gauge);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The answers of one operation over one transport.
struct Answers {
    ok: Counter,
    failed: [Counter; KINDS],
}

impl Answers {
    const fn new() -> Answers {
        Answers {
            ok: Counter::new(),
            failed: [const { Counter::new() }; KINDS],
        }
    }
}

pub struct Metrics {
    requests: [[Answers; Transport::ALL.len()]; OPS],
    durations: [Histogram; OPS],
    /// Records per audit group commit.
    pub audit_batch_records: Histogram,
    /// One group commit's append: the write and `fdatasync` of its batch.
    pub audit_append_seconds: Histogram,
    /// One state store commit (redb, durable).
    pub store_commit_seconds: Histogram,
    pub socket_connections: Gauge,
    pub http_connections: Gauge,
    /// Socket connections turned away at a connection limit.
    pub socket_refused: Counter,
    /// HTTP connections turned away at a connection limit.
    pub http_refused: Counter,
    /// Commits to a shared store that lost to another instance's and were
    /// planned again.
    pub store_conflicts: Counter,
    /// Full reloads of the state from etcd (its history was compacted).
    pub etcd_reloads: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub const fn new() -> Metrics {
        Metrics {
            requests: [const { [const { Answers::new() }; Transport::ALL.len()] }; OPS],
            durations: [const { Histogram::new(Unit::Seconds, LATENCY_BOUNDS) }; OPS],
            audit_batch_records: Histogram::new(Unit::Count, BATCH_BOUNDS),
            audit_append_seconds: Histogram::new(Unit::Seconds, LATENCY_BOUNDS),
            store_commit_seconds: Histogram::new(Unit::Seconds, LATENCY_BOUNDS),
            socket_connections: Gauge::new(),
            http_connections: Gauge::new(),
            socket_refused: Counter::new(),
            http_refused: Counter::new(),
            store_conflicts: Counter::new(),
            etcd_reloads: Counter::new(),
        }
    }

    /// Counts an answered request by its outcome (`None`: ok) and, when
    /// it was timed, records its duration.
    pub fn answered(&self, m: Meter, via: Transport, error: Option<ErrorKind>) {
        let Some(a) = self.requests.get(m.op).map(|t| &t[via.index()]) else {
            return;
        };
        match error {
            None => a.ok.inc(),
            Some(k) => {
                if let Some(c) = a.failed.get(k.index()) {
                    c.inc();
                }
            }
        }
        if let (Some(t), Some(h)) = (m.started, self.durations.get(m.op)) {
            h.observe_since(t);
        }
    }

    /// Requests of operation `op` over `via` answered ok.
    pub fn ok(&self, op: usize, via: Transport) -> u64 {
        self.requests
            .get(op)
            .map_or(0, |t| t[via.index()].ok.value())
    }

    /// Requests of operation `op` over `via` answered with `kind`.
    pub fn failed(&self, op: usize, via: Transport, kind: ErrorKind) -> u64 {
        self.requests
            .get(op)
            .and_then(|t| t[via.index()].failed.get(kind.index()))
            .map_or(0, Counter::value)
    }

    /// The duration histogram of operation `op`.
    pub fn duration(&self, op: usize) -> Option<&Histogram> {
        self.durations.get(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_index_finds_every_operation_and_only_those() {
        for (i, (name, _, _)) in OPERATIONS.iter().enumerate() {
            assert_eq!(op_index(name), i);
            assert_eq!(op_index_of(name), Some(i));
        }
        assert_eq!(op_index_of("GetCallerIdentity"), None);
        assert_eq!(op_index_of("encrypt"), None);
        const ENCRYPT: usize = op_index("Encrypt");
        assert_eq!(OPERATIONS[ENCRYPT].0, "Encrypt");
    }

    #[test]
    fn answers_are_counted_by_operation_transport_and_outcome() {
        let m = Metrics::new();
        let enc = op_index("Encrypt");
        let dec = op_index("Decrypt");
        for _ in 0..3 {
            m.answered(Meter::start(enc), Transport::Socket, None);
        }
        m.answered(
            Meter::start(enc),
            Transport::Socket,
            Some(ErrorKind::AccessDeniedException),
        );
        m.answered(Meter::start(enc), Transport::Http, None);
        let throttled = Meter::untimed("Decrypt").expect("an operation");
        m.answered(
            throttled,
            Transport::Http,
            Some(ErrorKind::ThrottlingException),
        );
        assert_eq!(m.ok(enc, Transport::Socket), 3);
        assert_eq!(m.ok(enc, Transport::Http), 1);
        assert_eq!(
            m.failed(enc, Transport::Socket, ErrorKind::AccessDeniedException),
            1
        );
        assert_eq!(
            m.failed(enc, Transport::Http, ErrorKind::AccessDeniedException),
            0
        );
        assert_eq!(
            m.failed(dec, Transport::Http, ErrorKind::ThrottlingException),
            1
        );
        // Timed: every Encrypt; the untimed Decrypt is not in its histogram.
        assert_eq!(m.duration(enc).map(|h| h.read().count()), Some(5));
        assert_eq!(m.duration(dec).map(|h| h.read().count()), Some(0));
    }

    #[test]
    fn a_held_gauge_is_given_back_on_drop() {
        let g = Gauge::new();
        let a = g.hold();
        let b = g.hold();
        assert_eq!(g.value(), 2);
        drop(a);
        assert_eq!(g.value(), 1);
        drop(b);
        assert_eq!(g.value(), 0);
    }
}
