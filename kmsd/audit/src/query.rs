//! Reading records back: [`query`] with a [`Filter`], and [`tail`] (with
//! follow). Both yield [`Entry`]s: the parsed record, its exact line and
//! where it is. Lines that are not records come back as errors, so a
//! damaged log is never silently skipped.

use crate::error::AuditError;
use crate::lines::{Item, LineReader, LogScan, RawLine};
use crate::record::Record;
use crate::segments::{Segment, list_segments};
use crate::time::EventTime;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A record read back from the log.
#[derive(Clone, Debug)]
pub struct Entry {
    pub file: String,
    /// 1-based.
    pub line: u64,
    pub record: Record,
    /// The exact line (without newline).
    pub raw: String,
}

/// Selects records; every field that is set must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// A key id or ARN: matches `KeyId`/`SourceKeyId`/`DestinationKeyId`/
    /// `TargetKeyId` in the parameters, or a resource ARN (exactly or by its
    /// `key/<id>` suffix).
    pub key_id: Option<String>,
    pub principal: Option<PrincipalFilter>,
    /// `eventName`, case-insensitive.
    pub event: Option<String>,
    /// `eventTime` at or after this.
    pub since: Option<EventTime>,
}

/// `uid:N` or `user:NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalFilter {
    Uid(u32),
    User(String),
}

impl FromStr for PrincipalFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a principal: use uid:N or user:NAME");
        match s.split_once(':') {
            Some(("uid", n)) => n.parse().map(PrincipalFilter::Uid).map_err(|_| bad()),
            Some(("user", name)) if !name.is_empty() => Ok(PrincipalFilter::User(name.to_string())),
            _ => Err(bad()),
        }
    }
}

const KEY_FIELDS: &[&str] = &["KeyId", "SourceKeyId", "DestinationKeyId", "TargetKeyId"];

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        if let Some(ev) = &self.event
            && !r.event_name.eq_ignore_ascii_case(ev)
        {
            return false;
        }
        if let Some(since) = self.since
            && r.time().is_none_or(|t| t < since)
        {
            return false;
        }
        if let Some(pf) = &self.principal {
            let ok = match (&r.principal, pf) {
                (Some(p), PrincipalFilter::Uid(uid)) => p.uid == *uid,
                (Some(p), PrincipalFilter::User(name)) => {
                    p.user_name.as_deref() == Some(name.as_str())
                }
                (None, _) => false,
            };
            if !ok {
                return false;
            }
        }
        if let Some(key) = &self.key_id {
            let in_params = r.request_parameters.as_ref().is_some_and(|p| {
                KEY_FIELDS
                    .iter()
                    .any(|f| matches!(p.get(*f), Some(Value::String(v)) if v == key))
            });
            let suffix = format!("key/{key}");
            let in_resources = r
                .resources
                .iter()
                .any(|arn| arn == key || arn.ends_with(&suffix));
            if !in_params && !in_resources {
                return false;
            }
        }
        true
    }
}

fn entry(seg: &Segment, line: RawLine) -> Result<Entry, AuditError> {
    let at = || format!("{} line {}", seg.name, line.line_no);
    if !line.complete {
        return Err(AuditError::Damaged(format!(
            "{}: partial line ({} bytes)",
            at(),
            line.bytes.len()
        )));
    }
    let record = Record::parse(&line.bytes)
        .map_err(|e| AuditError::Damaged(format!("{}: not a record: {e}", at())))?;
    let raw = String::from_utf8(line.bytes)
        .map_err(|_| AuditError::Damaged(format!("{}: not UTF-8", at())))?;
    Ok(Entry {
        file: seg.name.clone(),
        line: line.line_no,
        record,
        raw,
    })
}

/// Records of the log in `dir` that match `filter`, in log order.
pub fn query(dir: &Path, filter: Filter) -> Result<Query, AuditError> {
    Ok(Query {
        scan: LogScan::open(dir)?,
        filter,
    })
}

/// Iterator returned by [`query`].
pub struct Query {
    scan: LogScan,
    filter: Filter,
}

impl Iterator for Query {
    type Item = Result<Entry, AuditError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (seg, line) = match self.scan.next_item() {
                Err(e) => return Some(Err(e)),
                Ok(None) => return None,
                Ok(Some(Item::FileStart(_))) => continue,
                Ok(Some(Item::Line(seg, line))) => (seg, line),
            };
            match entry(&seg, line) {
                Ok(e) if self.filter.matches(&e.record) => return Some(Ok(e)),
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The last `n` records of the log in `dir`; with `follow`, the iterator
/// then waits for new records (polling, across rotations) and never ends.
pub fn tail(dir: &Path, n: usize, follow: bool) -> Result<Tail, AuditError> {
    let segs =
        list_segments(dir).map_err(|e| AuditError::io(format!("listing {}", dir.display()), e))?;
    // Walk back over files until `n` complete lines are collected.
    let mut start = segs.len();
    let mut have = 0usize;
    while start > 0 && have < n {
        start -= 1;
        have += count_complete_lines(&segs[start])?;
    }
    let mut ring: VecDeque<Result<Entry, AuditError>> = VecDeque::new();
    let mut pos = None;
    for seg in &segs[start..] {
        let mut r = LineReader::open(&seg.path)
            .map_err(|e| AuditError::io(format!("opening {}", seg.name), e))?;
        let mut lines_done = 0;
        let mut offset = 0;
        while let Some(line) = r
            .next_line()
            .map_err(|e| AuditError::io(format!("reading {}", seg.name), e))?
        {
            if !line.complete {
                break;
            }
            lines_done = line.line_no;
            offset = r.offset();
            if n > 0 {
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(entry(seg, line));
            }
        }
        pos = Some(FollowPos {
            seg: seg.clone(),
            offset,
            lines: lines_done,
        });
    }
    if pos.is_none() {
        pos = segs.last().map(|seg| FollowPos {
            seg: seg.clone(),
            offset: 0,
            lines: 0,
        });
    }
    Ok(Tail {
        dir: dir.to_path_buf(),
        ready: ring,
        follow,
        pos,
        poll: Duration::from_millis(200),
    })
}

fn count_complete_lines(seg: &Segment) -> Result<usize, AuditError> {
    let mut r = LineReader::open(&seg.path)
        .map_err(|e| AuditError::io(format!("opening {}", seg.name), e))?;
    let mut n = 0;
    while let Some(l) = r
        .next_line()
        .map_err(|e| AuditError::io(format!("reading {}", seg.name), e))?
    {
        if l.complete {
            n += 1;
        }
    }
    Ok(n)
}

struct FollowPos {
    seg: Segment,
    /// End of the last complete line read.
    offset: u64,
    lines: u64,
}

/// Iterator returned by [`tail`].
pub struct Tail {
    dir: PathBuf,
    ready: VecDeque<Result<Entry, AuditError>>,
    follow: bool,
    pos: Option<FollowPos>,
    poll: Duration,
}

impl Tail {
    /// How often `follow` looks for new records (default 200 ms).
    pub fn poll_interval(mut self, d: Duration) -> Tail {
        self.poll = d;
        self
    }

    /// Reads complete lines past the current position; moves on to the next
    /// file once this one is drained and a newer one exists (the writer never
    /// goes back to an older file).
    fn refill(&mut self) -> Result<(), AuditError> {
        loop {
            if self.read_current()? > 0 {
                return Ok(());
            }
            let segs = list_segments(&self.dir)
                .map_err(|e| AuditError::io(format!("listing {}", self.dir.display()), e))?;
            let current = self.pos.as_ref().map_or(0, |p| p.seg.index);
            let Some(next) = segs.into_iter().find(|s| s.index > current) else {
                return Ok(());
            };
            // Lines may have landed in the current file just before the
            // newer one was created: read it once more before leaving it.
            if self.read_current()? > 0 {
                return Ok(());
            }
            self.pos = Some(FollowPos {
                seg: next,
                offset: 0,
                lines: 0,
            });
        }
    }

    fn read_current(&mut self) -> Result<usize, AuditError> {
        let Some(p) = &mut self.pos else { return Ok(0) };
        let mut r = LineReader::open_at(&p.seg.path, p.offset, p.lines)
            .map_err(|e| AuditError::io(format!("opening {}", p.seg.name), e))?;
        let mut n = 0;
        while let Some(line) = r
            .next_line()
            .map_err(|e| AuditError::io(format!("reading {}", p.seg.name), e))?
        {
            if !line.complete {
                break;
            }
            p.offset = r.offset();
            p.lines = line.line_no;
            self.ready.push_back(entry(&p.seg, line));
            n += 1;
        }
        Ok(n)
    }
}

impl Iterator for Tail {
    type Item = Result<Entry, AuditError>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if !self.follow {
                return None;
            }
            if let Err(e) = self.refill() {
                return Some(Err(e));
            }
            if self.ready.is_empty() {
                std::thread::sleep(self.poll);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Principal;
    use serde_json::json;

    fn rec(
        name: &str,
        uid: u32,
        user: &str,
        params: Value,
        resources: &[&str],
        time: &str,
    ) -> Record {
        Record {
            seq: 1,
            prev_hash: "0".repeat(64),
            instance: None,
            event_time: time.into(),
            event_name: name.into(),
            request_id: Some("r".into()),
            principal: Some(Principal {
                uid,
                gid: 0,
                user_name: Some(user.into()),
                ..Default::default()
            }),
            request_parameters: Some(params),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            error_code: None,
            error_message: None,
            checkpoint: None,
        }
    }

    #[test]
    fn filter_fields() {
        let r = rec(
            "Encrypt",
            1000,
            "alice",
            json!({"KeyId": "alias/app"}),
            &["arn:aws:kms:local:111122223333:key/1234"],
            "2025-01-02T00:00:00.000Z",
        );
        assert!(Filter::default().matches(&r));
        let f =
            |key: Option<&str>, p: Option<&str>, ev: Option<&str>, since: Option<&str>| Filter {
                key_id: key.map(String::from),
                principal: p.map(|p| p.parse().unwrap()),
                event: ev.map(String::from),
                since: since.map(|s| EventTime::parse_rfc3339(s).unwrap()),
            };
        assert!(f(Some("1234"), None, None, None).matches(&r));
        assert!(f(Some("alias/app"), None, None, None).matches(&r));
        assert!(
            f(
                Some("arn:aws:kms:local:111122223333:key/1234"),
                None,
                None,
                None
            )
            .matches(&r)
        );
        assert!(!f(Some("234"), None, None, None).matches(&r));
        assert!(f(None, Some("uid:1000"), None, None).matches(&r));
        assert!(f(None, Some("user:alice"), None, None).matches(&r));
        assert!(!f(None, Some("uid:0"), None, None).matches(&r));
        assert!(!f(None, Some("user:bob"), None, None).matches(&r));
        assert!(f(None, None, Some("encrypt"), None).matches(&r));
        assert!(!f(None, None, Some("Decrypt"), None).matches(&r));
        assert!(f(None, None, None, Some("2025-01-02")).matches(&r));
        assert!(!f(None, None, None, Some("2025-01-02T00:00:00.001Z")).matches(&r));
        assert!(
            f(
                Some("1234"),
                Some("uid:1000"),
                Some("Encrypt"),
                Some("2025-01-01")
            )
            .matches(&r)
        );
        assert!(
            !f(
                Some("1234"),
                Some("uid:1000"),
                Some("Decrypt"),
                Some("2025-01-01")
            )
            .matches(&r)
        );
    }

    #[test]
    fn principal_filter_parsing() {
        assert_eq!("uid:0".parse(), Ok(PrincipalFilter::Uid(0)));
        assert_eq!("user:bob".parse(), Ok(PrincipalFilter::User("bob".into())));
        for bad in ["uid:x", "uid:", "user:", "bob", "gid:1", ""] {
            assert!(bad.parse::<PrincipalFilter>().is_err(), "{bad}");
        }
    }
}
