use super::*;
use crate::metrics::histogram::{Histogram, LATENCY_BOUNDS};
use crate::metrics::registry::{Meter, op_index};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One sample line, parsed: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A label value between quotes, unescaped; the rest of the line after
/// the closing quote.
fn unquote(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, c)) => out.push(c),
                None => panic!("dangling escape in {s:?}"),
            },
            c => out.push(c),
        }
    }
    panic!("unterminated label value in {s:?}");
}

/// Parses an exposition: the samples, and each family's type. Panics on
/// anything the format does not allow, or on a sample whose family has no
/// `# HELP` and `# TYPE` before it.
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut types = HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect("help text");
            helped.insert(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line}");
        let name_end = line.find(['{', ' ']).expect("name");
        let name = &line[..name_end];
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(mut l) = rest.strip_prefix('{') {
            loop {
                if let Some(r) = l.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let l2 = l.strip_prefix(',').unwrap_or(l);
                let (k, v) = l2.split_once("=\"").expect("label");
                let (value, after) = unquote(v);
                labels.insert(k.to_string(), value);
                l = after;
            }
        }
        let value: f64 = rest.trim().parse().expect("value");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample of an undeclared family: {line}"
        );
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn label_values_escape_backslash_quote_and_newline() {
    let mut out = String::new();
    escape_label("a\\b\"c\nd", &mut out);
    assert_eq!(out, r#"a\\b\"c\nd"#);
    let mut t = Text::new();
    t.family("x", Kind::Gauge, "help with \\ and\nnewline");
    t.sample("x", &[("l", "q\"\n\\")], 1);
    let text = t.finish();
    assert_eq!(
        text,
        "# HELP x help with \\\\ and\\nnewline\n# TYPE x gauge\nx{l=\"q\\\"\\n\\\\\"} 1\n"
    );
    let (samples, _) = parse(&text);
    assert_eq!(samples[0].labels["l"], "q\"\n\\");
}

#[test]
fn seconds_are_written_from_nanoseconds_exactly() {
    assert_eq!(number(Unit::Seconds, 10_000), "0.00001");
    assert_eq!(number(Unit::Seconds, 2_500_000_000), "2.5");
    assert_eq!(number(Unit::Seconds, 5_000_000_000), "5");
    assert_eq!(number(Unit::Seconds, 0), "0");
    assert_eq!(number(Unit::Count, 4096), "4096");
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_equals_count() {
    let h = Histogram::new(Unit::Seconds, LATENCY_BOUNDS);
    let values_us = [5, 20, 20, 700, 3_000, 80_000, 6_000_000];
    for us in values_us {
        h.observe_duration(Duration::from_micros(us));
    }
    let mut t = Text::new();
    t.family("h_seconds", Kind::Histogram, "test");
    t.histogram("h_seconds", &[("operation", "Encrypt")], &h.read());
    let (samples, _) = parse(&t.finish());
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "h_seconds_bucket")
        .collect();
    assert_eq!(buckets.len(), LATENCY_BOUNDS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    let les: Vec<f64> = buckets
        .iter()
        .map(|b| b.labels["le"].parse::<f64>().expect("le"))
        .collect();
    assert!(les.windows(2).all(|w| w[0] < w[1]), "{les:?}");
    assert_eq!(
        buckets.last().map(|b| b.labels["le"].as_str()),
        Some("+Inf")
    );
    let count = value(&samples, "h_seconds_count", &[("operation", "Encrypt")]);
    assert_eq!(buckets.last().map(|b| b.value), count);
    assert_eq!(count, Some(values_us.len() as f64));
    // Each bucket counts the values at or below its bound.
    for (b, le) in buckets.iter().zip(&les) {
        let want = values_us
            .iter()
            .filter(|us| (**us as f64) / 1e6 <= *le)
            .count();
        assert_eq!(b.value, want as f64, "le={le}");
    }
    let sum = value(&samples, "h_seconds_sum", &[("operation", "Encrypt")]).expect("sum");
    let want: f64 = values_us.iter().map(|us| *us as f64 / 1e6).sum();
    assert!((sum - want).abs() < 1e-9, "{sum} vs {want}");
}

#[test]
fn render_declares_every_family_and_counts_what_was_recorded() {
    let m = Metrics::new();
    let enc = op_index("Encrypt");
    for _ in 0..4 {
        m.answered(Meter::start(enc), Transport::Socket, None);
    }
    for _ in 0..2 {
        m.answered(
            Meter::start(enc),
            Transport::Http,
            Some(ErrorKind::AccessDeniedException),
        );
    }
    m.audit_batch_records.observe(3);
    m.store_commit_seconds
        .observe_duration(Duration::from_millis(2));
    let _open = m.socket_connections.hold();
    m.http_refused.inc();
    let scrape = Scrape {
        regions: vec![RegionFigures {
            region: "eu-\"x\"".into(),
            keys: vec![(KeyState::Enabled, 5), (KeyState::Disabled, 1)],
            audit_queue: 7,
            staleness_ms: Some(250),
        }],
    };
    let text = render(&m, &scrape);
    let (samples, types) = parse(&text);
    for (family, kind) in [
        ("kmsd_requests_total", "counter"),
        ("kmsd_request_duration_seconds", "histogram"),
        ("kmsd_audit_queue_depth", "gauge"),
        ("kmsd_audit_batch_records", "histogram"),
        ("kmsd_audit_append_seconds", "histogram"),
        ("kmsd_store_commit_seconds", "histogram"),
        ("kmsd_open_connections", "gauge"),
        ("kmsd_refused_connections_total", "counter"),
        ("kmsd_keys", "gauge"),
    ] {
        assert_eq!(
            types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let req = |outcome, transport| {
        value(
            &samples,
            "kmsd_requests_total",
            &[
                ("operation", "Encrypt"),
                ("outcome", outcome),
                ("transport", transport),
            ],
        )
    };
    assert_eq!(req("ok", "socket"), Some(4.0));
    assert_eq!(req("ok", "http"), Some(0.0), "ok series are always there");
    assert_eq!(req("AccessDeniedException", "http"), Some(2.0));
    assert_eq!(
        req("AccessDeniedException", "socket"),
        None,
        "exceptions appear once they occur"
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_request_duration_seconds_count",
            &[("operation", "Encrypt")]
        ),
        Some(6.0)
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_request_duration_seconds_count",
            &[("operation", "Decrypt")]
        ),
        None,
        "operations never called have no histogram"
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_keys",
            &[("region", "eu-\"x\""), ("state", "Enabled")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_audit_queue_depth",
            &[("region", "eu-\"x\"")]
        ),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "kmsd_audit_batch_records_sum", &[]),
        Some(3.0)
    );
    assert_eq!(
        value(&samples, "kmsd_store_commit_seconds_count", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_open_connections",
            &[("transport", "socket")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "kmsd_refused_connections_total",
            &[("transport", "http")]
        ),
        Some(1.0)
    );
    assert!(text.ends_with('\n'));
}
