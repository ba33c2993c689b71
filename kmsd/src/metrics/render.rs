//! Prometheus text exposition format 0.0.4: a small writer ([`Text`]) and
//! the rendering of kmsd's figures with it ([`render`]). Pure: the figures
//! read at scrape time from the service come in as a [`Scrape`].

use super::histogram::{Reading, Unit};
use super::registry::{Metrics, Transport};
use crate::service::dispatch::OPERATIONS;
use kmsd_client::{ErrorKind, KeyState};
use std::fmt::Write;

/// The `Content-Type` of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as its `# TYPE` line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A label value as the format writes it between double quotes:
/// backslash, double quote and line feed escaped.
pub fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The exposition being written: families, each a `# HELP` and a
/// `# TYPE` line, then its samples.
#[derive(Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Text {
        Text::default()
    }

    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(help, &mut self.out);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.name());
        self.out.push('\n');
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram's samples: cumulative `_bucket`s with `le` (the last
    /// `+Inf`), `_sum` and `_count`, with `labels` on each.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], r: &Reading) {
        let bucket = format!("{name}_bucket");
        for (i, cum) in r.cumulative.iter().enumerate() {
            let le = match r.bounds.get(i) {
                Some(b) => number(r.unit, *b),
                None => "+Inf".to_string(),
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cum);
        }
        self.sample(&format!("{name}_sum"), labels, number(r.unit, r.sum));
        self.sample(&format!("{name}_count"), labels, r.count());
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A value in its unit's written form: nanoseconds as seconds.
fn number(unit: Unit, v: u64) -> String {
    match unit {
        Unit::Count => v.to_string(),
        Unit::Seconds => {
            let s = v / 1_000_000_000;
            let ns = v % 1_000_000_000;
            if ns == 0 {
                s.to_string()
            } else {
                let frac = format!("{ns:09}");
                format!("{s}.{}", frac.trim_end_matches('0'))
            }
        }
    }
}

/// Figures read from the service at scrape time, per region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scrape {
    pub regions: Vec<RegionFigures>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionFigures {
    pub region: String,
    /// Keys in each state, in [`KeyState::ALL`] order.
    pub keys: Vec<(KeyState, u64)>,
    /// Audit records submitted and not yet taken into a group commit.
    pub audit_queue: u64,
    /// With a shared store (etcd): how old the state may be, in
    /// milliseconds.
    pub staleness_ms: Option<u64>,
}

/// Every kmsd metric, as the text format.
pub fn render(m: &Metrics, s: &Scrape) -> String {
    let mut t = Text::new();
    t.family(
        "kmsd_build_info",
        Kind::Gauge,
        "Always 1; the version of the running kmsd is its label.",
    );
    t.sample(
        "kmsd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    requests(&mut t, m);
    t.family(
        "kmsd_request_duration_seconds",
        Kind::Histogram,
        "Time from a request entering the pipeline to its answer being settled (its audit record durable).",
    );
    for (op, (name, _, _)) in OPERATIONS.iter().enumerate() {
        if let Some(r) = m.duration(op).map(|h| h.read())
            && r.count() > 0
        {
            t.histogram("kmsd_request_duration_seconds", &[("operation", *name)], &r);
        }
    }
    audit(&mut t, m, s);
    t.family(
        "kmsd_store_commit_seconds",
        Kind::Histogram,
        "Durable commits of the state store (redb), one per mutation.",
    );
    t.histogram(
        "kmsd_store_commit_seconds",
        &[],
        &m.store_commit_seconds.read(),
    );
    t.family(
        "kmsd_store_conflicts_total",
        Kind::Counter,
        "Commits to a shared store (etcd) that lost to another instance's change and were planned again.",
    );
    t.sample("kmsd_store_conflicts_total", &[], m.store_conflicts.value());
    t.family(
        "kmsd_etcd_reloads_total",
        Kind::Counter,
        "Full reloads of the state from etcd after its history was compacted under the watch.",
    );
    t.sample("kmsd_etcd_reloads_total", &[], m.etcd_reloads.value());
    t.family(
        "kmsd_etcd_staleness_seconds",
        Kind::Gauge,
        "With the etcd store: every change committed this long ago or earlier has been applied here (measured by heartbeats).",
    );
    for r in &s.regions {
        if let Some(ms) = r.staleness_ms {
            t.sample(
                "kmsd_etcd_staleness_seconds",
                &[("region", r.region.as_str())],
                format!("{}.{:03}", ms / 1000, ms % 1000),
            );
        }
    }
    connections(&mut t, m);
    t.family("kmsd_keys", Kind::Gauge, "Keys by region and key state.");
    for r in &s.regions {
        for (state, n) in &r.keys {
            t.sample(
                "kmsd_keys",
                &[("region", r.region.as_str()), ("state", state.as_str())],
                n,
            );
        }
    }
    t.finish()
}

/// `kmsd_requests_total`: every operation's `ok` series on both
/// transports (zero included), and each exception's once it occurred.
fn requests(t: &mut Text, m: &Metrics) {
    t.family(
        "kmsd_requests_total",
        Kind::Counter,
        "Requests answered, by operation, outcome (ok or the AWS exception name) and transport.",
    );
    for (op, (name, _, _)) in OPERATIONS.iter().enumerate() {
        for via in Transport::ALL {
            let labels = |outcome| {
                [
                    ("operation", *name),
                    ("outcome", outcome),
                    ("transport", via.label()),
                ]
            };
            t.sample("kmsd_requests_total", &labels("ok"), m.ok(op, via));
            for kind in ErrorKind::ALL {
                let n = m.failed(op, via, *kind);
                if n > 0 {
                    t.sample("kmsd_requests_total", &labels(kind.name()), n);
                }
            }
        }
    }
}

fn audit(t: &mut Text, m: &Metrics, s: &Scrape) {
    t.family(
        "kmsd_audit_queue_depth",
        Kind::Gauge,
        "Audit records submitted and waiting for a group commit, by region.",
    );
    for r in &s.regions {
        t.sample(
            "kmsd_audit_queue_depth",
            &[("region", r.region.as_str())],
            r.audit_queue,
        );
    }
    t.family(
        "kmsd_audit_batch_records",
        Kind::Histogram,
        "Records per audit group commit (one write and one fdatasync each).",
    );
    t.histogram(
        "kmsd_audit_batch_records",
        &[],
        &m.audit_batch_records.read(),
    );
    t.family(
        "kmsd_audit_append_seconds",
        Kind::Histogram,
        "Time of one audit group commit's append: the write and fdatasync of its batch.",
    );
    t.histogram(
        "kmsd_audit_append_seconds",
        &[],
        &m.audit_append_seconds.read(),
    );
}

fn connections(t: &mut Text, m: &Metrics) {
    t.family(
        "kmsd_open_connections",
        Kind::Gauge,
        "Connections open now, by transport.",
    );
    t.sample(
        "kmsd_open_connections",
        &[("transport", "socket")],
        m.socket_connections.value(),
    );
    t.sample(
        "kmsd_open_connections",
        &[("transport", "http")],
        m.http_connections.value(),
    );
    t.family(
        "kmsd_refused_connections_total",
        Kind::Counter,
        "Connections turned away at a connection limit, by transport.",
    );
    t.sample(
        "kmsd_refused_connections_total",
        &[("transport", "socket")],
        m.socket_refused.value(),
    );
    t.sample(
        "kmsd_refused_connections_total",
        &[("transport", "http")],
        m.http_refused.value(),
    );
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
