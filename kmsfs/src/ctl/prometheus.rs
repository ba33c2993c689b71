//! A mount's [`Status`] as Prometheus text exposition format 0.0.4
//! (`kmsfs status MOUNTPOINT --output prometheus`): every figure a
//! `kmsfs_` metric with a `mountpoint` label, for node_exporter's
//! textfile collector or a scrape wrapper. Pure.

use super::protocol::Status;
use std::fmt::Write;

/// One figure: metric name, type, help, value.
struct Figure {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: u64,
}

fn figures(s: &Status) -> [Figure; 14] {
    let (c, k, f) = (&s.cache, &s.kmsd, &s.fs);
    let fig = |name, kind, help, value| Figure {
        name,
        kind,
        help,
        value,
    };
    [
        fig(
            "kmsfs_key_cache_entries",
            "gauge",
            "Unwrapped file keys in the key cache.",
            c.entries,
        ),
        fig(
            "kmsfs_key_cache_capacity",
            "gauge",
            "Most file keys the key cache holds.",
            c.capacity,
        ),
        fig(
            "kmsfs_key_cache_hits_total",
            "counter",
            "File key lookups answered by the cache.",
            c.hits,
        ),
        fig(
            "kmsfs_key_cache_misses_total",
            "counter",
            "File key lookups that asked kmsd.",
            c.misses,
        ),
        fig(
            "kmsfs_key_cache_evictions_total",
            "counter",
            "File keys evicted (and wiped) from the cache.",
            c.evictions,
        ),
        fig(
            "kmsfs_kmsd_calls_total",
            "counter",
            "Requests the mount sent to kmsd.",
            k.calls,
        ),
        fig(
            "kmsfs_kmsd_errors_total",
            "counter",
            "Requests to kmsd that failed.",
            k.errors,
        ),
        fig(
            "kmsfs_key_pool_ready",
            "gauge",
            "Pre-generated data keys ready for new files.",
            k.pool_ready,
        ),
        fig(
            "kmsfs_key_pool_taken_total",
            "counter",
            "New files that took a pre-generated key.",
            k.pool_taken,
        ),
        fig(
            "kmsfs_key_pool_empty_total",
            "counter",
            "New files that found the key pool empty and waited for kmsd.",
            k.pool_empty,
        ),
        fig(
            "kmsfs_inodes",
            "gauge",
            "Inodes the kernel holds.",
            f.inodes,
        ),
        fig("kmsfs_open_files", "gauge", "Files open now.", f.open_files),
        fig(
            "kmsfs_damaged_reads_total",
            "counter",
            "Reads that failed because a block or file did not authenticate.",
            f.damaged_reads,
        ),
        fig(
            "kmsfs_key_errors_total",
            "counter",
            "Operations that failed because a key was unavailable or denied.",
            f.key_errors,
        ),
    ]
}

/// A label value between double quotes: backslash, double quote and line
/// feed escaped, as the format requires.
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label(v, &mut out);
        out.push('"');
    }
    out.push('}');
    out
}

/// The status as the text format: `kmsfs_mount_info` (1, with the
/// volume's identity as labels), then one metric per figure.
pub fn render_prometheus(s: &Status) -> String {
    let mut out = String::new();
    let mount = labels(&[("mountpoint", s.mountpoint.as_str())]);
    let pid = s.pid.to_string();
    let info = labels(&[
        ("mountpoint", s.mountpoint.as_str()),
        ("cipherdir", s.cipherdir.as_str()),
        ("key_arn", s.key_arn.as_str()),
        ("volume_id", s.volume_id.as_str()),
        ("pid", pid.as_str()),
    ]);
    out.push_str(
        "# HELP kmsfs_mount_info Always 1; the mount's volume, key and process are its labels.\n",
    );
    out.push_str("# TYPE kmsfs_mount_info gauge\n");
    let _ = writeln!(out, "kmsfs_mount_info{info} 1");
    for f in figures(s) {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        let _ = writeln!(out, "{}{mount} {}", f.name, f.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    /// Parses the text format strictly enough for the renderer: HELP then
    /// TYPE before each family's samples, `name{labels} value` lines.
    fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, u64)> {
        let (mut helped, mut typed) = (HashSet::new(), HashMap::new());
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(r) = line.strip_prefix("# HELP ") {
                helped.insert(r.split_once(' ').expect("help").0.to_string());
            } else if let Some(r) = line.strip_prefix("# TYPE ") {
                let (n, k) = r.split_once(' ').expect("type");
                assert!(helped.contains(n), "TYPE before HELP: {line}");
                assert!(["gauge", "counter"].contains(&k), "{line}");
                typed.insert(n.to_string(), k.to_string());
            } else {
                let (name, rest) = line.split_once('{').expect("labels");
                assert!(typed.contains_key(name), "undeclared: {line}");
                let mut labels = BTreeMap::new();
                let mut chars = rest.chars().peekable();
                loop {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut v = String::new();
                    loop {
                        match chars.next().expect("closing quote") {
                            '"' => break,
                            '\\' => match chars.next().expect("escape") {
                                'n' => v.push('\n'),
                                c => v.push(c),
                            },
                            c => v.push(c),
                        }
                    }
                    labels.insert(key.trim_start_matches(',').to_string(), v);
                    if chars.peek() == Some(&'}') {
                        chars.next();
                        break;
                    }
                }
                let value: String = chars.collect();
                samples.push((
                    name.to_string(),
                    labels,
                    value.trim().parse().expect("value"),
                ));
            }
        }
        samples
    }

    #[test]
    fn every_figure_is_a_metric_labelled_with_the_mountpoint() {
        let mut s = Status {
            pid: 4242,
            mountpoint: "/mnt/a \"b\"\\c\nd".into(),
            key_arn: "arn:aws:kms:local:000000000000:key/k".into(),
            ..Status::default()
        };
        s.cache.entries = 3;
        s.cache.capacity = 1000;
        s.cache.hits = 17;
        s.cache.misses = 4;
        s.cache.evictions = 1;
        s.kmsd.calls = 9;
        s.kmsd.errors = 2;
        s.kmsd.pool_ready = 8;
        s.kmsd.pool_taken = 5;
        s.kmsd.pool_empty = 6;
        s.fs.inodes = 11;
        s.fs.open_files = 12;
        s.fs.damaged_reads = 13;
        s.fs.key_errors = 14;
        let samples = parse(&render_prometheus(&s));
        let want: &[(&str, u64)] = &[
            ("kmsfs_key_cache_entries", 3),
            ("kmsfs_key_cache_capacity", 1000),
            ("kmsfs_key_cache_hits_total", 17),
            ("kmsfs_key_cache_misses_total", 4),
            ("kmsfs_key_cache_evictions_total", 1),
            ("kmsfs_kmsd_calls_total", 9),
            ("kmsfs_kmsd_errors_total", 2),
            ("kmsfs_key_pool_ready", 8),
            ("kmsfs_key_pool_taken_total", 5),
            ("kmsfs_key_pool_empty_total", 6),
            ("kmsfs_inodes", 11),
            ("kmsfs_open_files", 12),
            ("kmsfs_damaged_reads_total", 13),
            ("kmsfs_key_errors_total", 14),
        ];
        // The info line and one sample per figure, nothing else.
        assert_eq!(samples.len(), want.len() + 1);
        let (name, info, one) = &samples[0];
        assert_eq!((name.as_str(), *one), ("kmsfs_mount_info", 1));
        assert_eq!(info["pid"], "4242");
        assert_eq!(info["key_arn"], s.key_arn);
        for (name, value) in want {
            let (_, labels, v) = samples
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(v, value, "{name}");
            assert_eq!(labels.len(), 1, "{name}");
            // The mountpoint survives escaping.
            assert_eq!(labels["mountpoint"], s.mountpoint, "{name}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("mountpoint", "a\\b\"c\nd")]),
            r#"{mountpoint="a\\b\"c\nd"}"#
        );
    }
}
