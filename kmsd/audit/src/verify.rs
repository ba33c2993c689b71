//! `verify`: walks every file in order, recomputes the hash chain, checks
//! checkpoint MACs (with the key), checks that every record names the
//! chain's instance, and compares the end with `HEAD`; reports the FIRST
//! problem, classified by looking a few lines around it.

use crate::chain::{LineHash, hex_decode_32};
use crate::error::AuditError;
use crate::head::{Head, read_head};
use crate::instance::{INSTANCE_FILE, read_instance};
use crate::key::AuditKey;
use crate::lines::{Item, LogScan, RawLine};
use crate::record::{RECOVERY_EVENT, Record};
use crate::report::{Problem, ProblemKind, Report};
use crate::segments::{HEAD_FILE, Segment, segment_name};
use std::collections::VecDeque;
use std::path::Path;

/// How far `verify` looks ahead for a record that is out of place.
const LOOKAHEAD: usize = 8;
/// How many accepted records it remembers to recognize inserted ones.
const HISTORY: usize = 64;

/// Checks the log in `dir`. With `key`, checkpoint and `HEAD` MACs are
/// verified too; without, only the chain (and `HEAD`'s unauthenticated
/// seq/hash). Every record that names an instance must name the chain's
/// (its `INSTANCE` file's, else the first one named), and once one does,
/// every later record must. I/O failures (unreadable directory or file) are
/// errors; everything found in the files is in the [`Report`].
pub fn verify(dir: &Path, key: Option<&AuditKey>) -> Result<Report, AuditError> {
    std::fs::metadata(dir).map_err(|e| AuditError::io(format!("reading {}", dir.display()), e))?;
    let (file_instance, instance_damage) = match read_instance(dir) {
        Ok(id) => (id, None),
        Err(AuditError::Damaged(m)) => (None, Some(m)),
        Err(e) => return Err(e),
    };
    let mut head_note = None;
    let head = match read_head(dir) {
        Ok(Some((h, damaged))) => {
            head_note = damaged
                .map(|d| format!("HEAD {d}; the other slot was used (normal only after a crash)"));
            Ok(Some(h))
        }
        Ok(None) => Ok(None),
        Err(AuditError::Damaged(m)) => Err(m),
        Err(e) => return Err(e),
    };
    let head_known = head.as_ref().ok().and_then(Option::as_ref);
    let (head_seq, head_hash) = (head_known.map(|h| h.seq), head_known.map(|h| h.hash));
    let mut v = Verifier {
        key,
        report: Report {
            dir: dir.to_path_buf(),
            instance: None,
            files: 0,
            records: 0,
            last_seq: None,
            checkpoints: 0,
            macs_verified: key.is_some(),
            head_seq,
            recoveries: Vec::new(),
            notes: head_note.into_iter().collect(),
            problem: None,
        },
        head_seq,
        head_hash,
        head_record: None,
        exp_seq: 1,
        exp_prev: LineHash::GENESIS,
        last_pos: None,
        last_index: 0,
        history: VecDeque::new(),
        instance_from_file: file_instance.is_some(),
        instance: file_instance,
        carrying_since: None,
    };
    let mut scan = LogScan::open(dir)?;
    while v.report.problem.is_none() {
        let Some(item) = scan.next_item()? else { break };
        let problem = match item {
            Item::FileStart(seg) => v.file_start(&seg),
            Item::Line(seg, line) => v.line(&seg, &line, &mut scan)?,
        };
        v.report.problem = problem;
    }
    if v.report.problem.is_none() {
        v.report.problem = v.check_head(head);
    }
    if v.report.problem.is_none()
        && let Some(m) = instance_damage
    {
        let pos = Pos {
            file: INSTANCE_FILE.into(),
            line: 0,
        };
        v.report.problem = problem(ProblemKind::WrongInstance, &pos, None, m);
    }
    v.instance_notes();
    v.report.instance = v.instance;
    Ok(v.report)
}

#[derive(Clone)]
struct Pos {
    file: String,
    line: u64,
}

struct Seen {
    seq: u64,
    hash: LineHash,
    pos: Pos,
}

struct Verifier<'k> {
    key: Option<&'k AuditKey>,
    report: Report,
    head_seq: Option<u64>,
    head_hash: Option<LineHash>,
    /// The record HEAD names, once passed: its hash and position.
    head_record: Option<(LineHash, Pos)>,
    exp_seq: u64,
    exp_prev: LineHash,
    last_pos: Option<Pos>,
    last_index: u32,
    history: VecDeque<Seen>,
    /// The chain's instance: from `INSTANCE`, else the first one a record
    /// names.
    instance: Option<String>,
    instance_from_file: bool,
    /// The first accepted record that named an instance.
    carrying_since: Option<u64>,
}

fn problem(kind: ProblemKind, pos: &Pos, seq: Option<u64>, detail: String) -> Option<Problem> {
    Some(Problem {
        kind,
        file: pos.file.clone(),
        line: pos.line,
        seq,
        detail,
    })
}

/// A complete line parsed as a record with a well-formed prevHash.
fn parse(line: &RawLine) -> Result<(Record, LineHash), String> {
    if !line.complete {
        return Err("partial line".into());
    }
    if line.oversize {
        return Err("line longer than 16 MiB".into());
    }
    let r = Record::parse(&line.bytes)?;
    let prev = r.prev_hash().ok_or("prevHash is not 64 hex digits")?;
    Ok((r, prev))
}

impl Verifier<'_> {
    fn file_start(&mut self, seg: &Segment) -> Option<Problem> {
        self.report.files += 1;
        let expected = self.last_index + 1;
        self.last_index = seg.index;
        if seg.index == expected {
            return None;
        }
        let missing = if seg.index == expected + 1 {
            segment_name(expected)
        } else {
            format!(
                "{} .. {}",
                segment_name(expected),
                segment_name(seg.index - 1)
            )
        };
        let pos = Pos {
            file: segment_name(expected),
            line: 0,
        };
        problem(
            ProblemKind::MissingFile,
            &pos,
            Some(self.exp_seq),
            format!(
                "{missing} missing from the rotation set (next present: {})",
                seg.name
            ),
        )
    }

    /// Whether the `n`th line ahead continues the chain from (seq, prev).
    fn chains_at(
        scan: &mut LogScan,
        n: usize,
        seq: u64,
        prev: LineHash,
    ) -> Result<bool, AuditError> {
        Ok(match scan.peek_line(n)? {
            Some((_, l)) => matches!(parse(l), Ok((r, p)) if r.seq == seq && p == prev),
            None => false,
        })
    }

    /// The first line in the lookahead window whose hash is `hash`.
    #[allow(clippy::type_complexity)]
    fn find_ahead(
        scan: &mut LogScan,
        hash: LineHash,
    ) -> Result<Option<(usize, String, u64, u64)>, AuditError> {
        for i in 0..LOOKAHEAD {
            let Some((seg, l)) = scan.peek_line(i)? else {
                break;
            };
            if l.complete && LineHash::of_line(&l.bytes) == hash {
                let seq = parse(l).map(|(r, _)| r.seq).unwrap_or(0);
                return Ok(Some((i, seg.name.clone(), l.line_no, seq)));
            }
        }
        Ok(None)
    }

    fn line(
        &mut self,
        seg: &Segment,
        line: &RawLine,
        scan: &mut LogScan,
    ) -> Result<Option<Problem>, AuditError> {
        let pos = Pos {
            file: seg.name.clone(),
            line: line.line_no,
        };
        let exp = self.exp_seq;
        if !line.complete {
            let at_end = scan.peek_line(0)?.is_none();
            if at_end && self.head_seq.is_some_and(|h| exp > h) {
                // Past what HEAD says was acknowledged: a write in progress
                // (verify on a live log) or a crash; kmsd cuts it on restart.
                self.report.notes.push(format!(
                    "{} line {} is a partial line ({} bytes) after the last acknowledged record: \
                     a write in progress, or a crash (cut off when kmsd restarts)",
                    pos.file,
                    pos.line,
                    line.bytes.len()
                ));
                return Ok(None);
            }
            let detail = if at_end {
                format!(
                    "the log ends in a partial line ({} bytes, no newline): record {exp} was cut short",
                    line.bytes.len()
                )
            } else {
                format!(
                    "partial line ({} bytes) at the end of a file that is not the last",
                    line.bytes.len()
                )
            };
            return Ok(problem(ProblemKind::TornLine, &pos, Some(exp), detail));
        }
        let hash = LineHash::of_line(&line.bytes);
        let (rec, prev) = match parse(line) {
            Ok(x) => x,
            Err(e) => {
                if Self::chains_at(scan, 0, exp, self.exp_prev)? {
                    return Ok(problem(
                        ProblemKind::Inserted,
                        &pos,
                        Some(exp),
                        format!("line is not a record ({e}) and the chain continues around it"),
                    ));
                }
                return Ok(problem(
                    ProblemKind::Altered,
                    &pos,
                    Some(exp),
                    format!("not a valid record: {e}"),
                ));
            }
        };
        // Before the chain: a line of another chain spliced in breaks it
        // too, and this says where it came from.
        if let Some(p) = self.foreign(&rec, &pos) {
            return Ok(Some(p));
        }
        if rec.seq == exp && prev == self.exp_prev {
            return Ok(self.accept(&rec, prev, hash, pos));
        }
        self.diagnose(&rec, prev, hash, &pos, scan)
    }

    fn accept(
        &mut self,
        rec: &Record,
        prev: LineHash,
        hash: LineHash,
        pos: Pos,
    ) -> Option<Problem> {
        match (&rec.instance, self.carrying_since, &self.instance) {
            (None, Some(since), Some(id)) => {
                return problem(
                    ProblemKind::WrongInstance,
                    &pos,
                    Some(rec.seq),
                    format!(
                        "record names no instance, but seq {since} and every record after it name \
                         instance {id}: a record of a chain without instances was copied here"
                    ),
                );
            }
            (Some(named), None, _) => {
                self.carrying_since = Some(rec.seq);
                if self.instance.is_none() {
                    self.instance = Some(named.clone());
                }
            }
            _ => {}
        }
        if rec.is_checkpoint() {
            self.report.checkpoints += 1;
            if let Some(key) = self.key {
                let mac = rec.checkpoint.as_ref().and_then(|c| hex_decode_32(&c.mac));
                let ok = mac.is_some_and(|m| key.checkpoint_mac_ok(rec.seq, &prev, &m));
                if !ok {
                    return problem(
                        ProblemKind::BadCheckpoint,
                        &pos,
                        Some(rec.seq),
                        "checkpoint MAC does not verify under the audit key: the log up to here was \
                         rewritten, the checkpoint was forged, or the root key is not this log's"
                            .into(),
                    );
                }
            }
        }
        if rec.event_name == RECOVERY_EVENT {
            let p = rec.request_parameters.clone().unwrap_or_default();
            self.report.recoveries.push(format!(
                "seq {} ({} line {}): on restart a torn last line of {} bytes was cut from {} at offset {}",
                rec.seq, pos.file, pos.line, p["discardedBytes"], p["file"], p["offset"]
            ));
        }
        if Some(rec.seq) == self.head_seq {
            self.head_record = Some((hash, pos.clone()));
        }
        self.report.records += 1;
        self.report.last_seq = Some(rec.seq);
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Seen {
            seq: rec.seq,
            hash,
            pos: pos.clone(),
        });
        self.exp_seq = rec.seq + 1;
        self.exp_prev = hash;
        self.last_pos = Some(pos);
        None
    }

    fn diagnose(
        &mut self,
        rec: &Record,
        prev: LineHash,
        hash: LineHash,
        pos: &Pos,
        scan: &mut LogScan,
    ) -> Result<Option<Problem>, AuditError> {
        let exp = self.exp_seq;
        // The chain goes on after this line as if it were not there: an
        // extra line, unless it chains on from a later line (moved back).
        if Self::chains_at(scan, 0, exp, self.exp_prev)? {
            if let Some((i, file, line, seq)) = Self::find_ahead(scan, prev)? {
                let detail = if i == 0 {
                    format!(
                        "this line (seq {}) and the next ({file} line {line}, seq {seq}) are swapped",
                        rec.seq
                    )
                } else {
                    format!(
                        "this record follows seq {seq} ({file} line {line}), which comes after it"
                    )
                };
                return Ok(problem(ProblemKind::Reordered, pos, Some(rec.seq), detail));
            }
            return Ok(problem(
                ProblemKind::Inserted,
                pos,
                Some(rec.seq),
                format!(
                    "record claiming seq {} does not belong here; the next line continues from seq {}",
                    rec.seq,
                    exp - 1
                ),
            ));
        }
        // Chained lines were slipped in after an earlier record: this one
        // still points at that earlier record.
        let n = self.history.len();
        if n >= 2 {
            for i in (0..n - 1).rev() {
                let h = &self.history[i];
                if h.hash == prev && h.seq + 1 == rec.seq {
                    let first = &self.history[i + 1];
                    let count = n - 1 - i;
                    return Ok(problem(
                        ProblemKind::Inserted,
                        &first.pos,
                        Some(first.seq),
                        format!(
                            "{count} record(s) inserted after seq {}: the original seq {} ({} line {}) still chains to seq {}",
                            h.seq, rec.seq, pos.file, pos.line, h.seq
                        ),
                    ));
                }
            }
        }
        if rec.seq == exp {
            // Right seq, wrong prevHash: the previous record changed, or this
            // record's prevHash did. The line after tells which.
            let this_intact = match scan.peek_line(0)? {
                Some((_, l)) => matches!(parse(l), Ok((_, p)) if p == hash),
                None => self.head_seq == Some(rec.seq) && self.head_hash_is(hash),
            };
            if this_intact
                && exp > 1
                && let Some(prev_pos) = self.last_pos.clone()
            {
                // That record was counted as good; it is not.
                self.report.records -= 1;
                return Ok(problem(
                    ProblemKind::Altered,
                    &prev_pos,
                    Some(exp - 1),
                    format!(
                        "its hash no longer matches the prevHash stored in seq {exp} ({} line {})",
                        pos.file, pos.line
                    ),
                ));
            }
            return Ok(problem(
                ProblemKind::Altered,
                pos,
                Some(exp),
                "prevHash does not match the previous record".into(),
            ));
        }
        if prev == self.exp_prev {
            return Ok(problem(
                ProblemKind::Altered,
                pos,
                Some(exp),
                format!(
                    "seq field says {} but the record chains on from seq {}",
                    rec.seq,
                    exp - 1
                ),
            ));
        }
        if rec.seq > exp {
            for i in 0..LOOKAHEAD {
                let Some((seg, l)) = scan.peek_line(i)? else {
                    break;
                };
                if let Ok((r, _)) = parse(l)
                    && r.seq == exp
                {
                    let detail = if i == 0 {
                        format!(
                            "this line (seq {}) and the next ({} line {}, seq {exp}) are swapped",
                            rec.seq, seg.name, l.line_no
                        )
                    } else {
                        format!(
                            "seq {} appears before seq {exp} ({} line {})",
                            rec.seq, seg.name, l.line_no
                        )
                    };
                    return Ok(problem(ProblemKind::Reordered, pos, Some(rec.seq), detail));
                }
            }
            let range = if rec.seq - exp == 1 {
                format!("record {exp} is")
            } else {
                format!("records {exp}..{} are", rec.seq - 1)
            };
            let place = if pos.line == 1 {
                "at the end of the previous file or the start of this one".to_string()
            } else {
                "before this line".to_string()
            };
            return Ok(problem(
                ProblemKind::Removed,
                pos,
                Some(exp),
                format!("{range} missing {place} (found seq {})", rec.seq),
            ));
        }
        // seq goes backwards.
        let dup = self
            .history
            .iter()
            .find(|h| h.hash == hash)
            .map(|h| h.pos.clone());
        let detail = match dup {
            Some(d) => format!(
                "duplicate of {} line {} (seq {}), expected seq {exp}",
                d.file, d.line, rec.seq
            ),
            None => format!(
                "seq {} goes backwards (expected {exp}): a record was inserted or moved here",
                rec.seq
            ),
        };
        Ok(problem(ProblemKind::Inserted, pos, Some(rec.seq), detail))
    }

    /// A record that names another instance than the chain's.
    fn foreign(&self, rec: &Record, pos: &Pos) -> Option<Problem> {
        let (Some(named), Some(chain)) = (&rec.instance, &self.instance) else {
            return None;
        };
        if named == chain {
            return None;
        }
        let why = match self.carrying_since {
            _ if self.instance_from_file => format!("its {INSTANCE_FILE} file"),
            Some(since) => format!("named from seq {since} on"),
            None => "named by its records".to_string(),
        };
        problem(
            ProblemKind::WrongInstance,
            pos,
            Some(rec.seq),
            format!(
                "record names instance {named:.80}, but this chain is instance {chain} ({why}): \
                 a record copied from another instance's chain"
            ),
        )
    }

    /// Notes on the chain's instance: records from before it had one, and
    /// records naming one with no `INSTANCE` file.
    fn instance_notes(&mut self) {
        let (Some(id), Some(since)) = (&self.instance, self.carrying_since) else {
            return;
        };
        if since > 1 {
            self.report.notes.push(format!(
                "seq 1..{} name no instance (written before the log had one); seq {since} on name instance {id}",
                since - 1
            ));
        }
        if !self.instance_from_file {
            self.report.notes.push(format!(
                "the records name instance {id} but there is no {INSTANCE_FILE} file: it was removed, \
                 or the log was copied without it"
            ));
        }
    }

    fn head_hash_is(&self, hash: LineHash) -> bool {
        self.head_hash == Some(hash)
    }

    fn check_head(&mut self, head: Result<Option<Head>, String>) -> Option<Problem> {
        let head_pos = Pos {
            file: HEAD_FILE.into(),
            line: 0,
        };
        let last = self.exp_seq - 1;
        let head = match head {
            Err(m) => {
                return problem(
                    ProblemKind::BadHead,
                    &head_pos,
                    None,
                    format!("HEAD is unreadable: {m}"),
                );
            }
            Ok(None) if last == 0 => return None,
            Ok(None) => {
                return problem(
                    ProblemKind::BadHead,
                    &head_pos,
                    None,
                    "HEAD is missing: records removed from the end could not be detected".into(),
                );
            }
            Ok(Some(h)) => h,
        };
        if let Some(key) = self.key
            && !head.mac_ok(key)
        {
            return problem(
                ProblemKind::BadHead,
                &head_pos,
                Some(head.seq),
                "HEAD's MAC does not verify under the audit key (forged HEAD, or wrong root key)"
                    .into(),
            );
        }
        if head.seq > last {
            let pos = match &self.last_pos {
                Some(p) => Pos {
                    file: p.file.clone(),
                    line: p.line + 1,
                },
                None => Pos {
                    file: head.file.clone(),
                    line: 1,
                },
            };
            let removed = if head.seq == last + 1 {
                format!("record {}", head.seq)
            } else {
                format!("records {}..{}", last + 1, head.seq)
            };
            return problem(
                ProblemKind::Truncated,
                &pos,
                Some(last + 1),
                format!(
                    "the log ends at seq {last} but HEAD says seq {} was written: {removed} removed from the end",
                    head.seq
                ),
            );
        }
        if head.seq == 0 {
            if head.hash != LineHash::GENESIS {
                return problem(
                    ProblemKind::BadHead,
                    &head_pos,
                    Some(0),
                    "HEAD at seq 0 with a non-genesis hash".into(),
                );
            }
        } else if let Some((hash, pos)) = &self.head_record {
            if *hash != head.hash {
                return problem(
                    ProblemKind::Altered,
                    pos,
                    Some(head.seq),
                    "record differs from the one HEAD recorded (hash mismatch)".into(),
                );
            }
            if pos.file != head.file {
                return problem(
                    ProblemKind::BadHead,
                    &head_pos,
                    Some(head.seq),
                    format!(
                        "HEAD places record {} in {} but it is in {}",
                        head.seq, head.file, pos.file
                    ),
                );
            }
        }
        if head.seq < last {
            self.report.notes.push(format!(
                "{} record(s) after HEAD (seq {}..{last}): written but not covered by HEAD yet; normal on a live log and after a crash",
                last - head.seq,
                head.seq + 1
            ));
        }
        None
    }
}
