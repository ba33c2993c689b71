//! What [`crate::verify`] finds: the first problem, or that the log is intact.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// The kind of the first problem found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProblemKind {
    /// A record's bytes were changed (or the line is not a record).
    Altered,
    /// Records are missing from the middle of the log.
    Removed,
    /// A record that was never written by kmsd (or a duplicate) is present.
    Inserted,
    /// Records are present but out of order.
    Reordered,
    /// Records are missing from the end of the log (`HEAD` is ahead).
    Truncated,
    /// The log ends in a partial line.
    TornLine,
    /// A file of the rotation set is missing.
    MissingFile,
    /// A checkpoint's MAC does not verify.
    BadCheckpoint,
    /// `HEAD` is missing, unreadable, or its MAC does not verify.
    BadHead,
    /// A record names another instance than the chain's (copied from
    /// another instance's chain), a record without an instance follows
    /// ones with it, or `INSTANCE` does not hold an id.
    WrongInstance,
}

impl ProblemKind {
    pub fn describe(self) -> &'static str {
        match self {
            ProblemKind::Altered => "record altered",
            ProblemKind::Removed => "records removed",
            ProblemKind::Inserted => "record inserted",
            ProblemKind::Reordered => "records reordered",
            ProblemKind::Truncated => "log truncated",
            ProblemKind::TornLine => "torn partial line",
            ProblemKind::MissingFile => "file missing",
            ProblemKind::BadCheckpoint => "checkpoint forged",
            ProblemKind::BadHead => "HEAD bad",
            ProblemKind::WrongInstance => "wrong instance",
        }
    }
}

/// Where and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// A log file name, or `HEAD`.
    pub file: String,
    /// 1-based line in `file`; 0 when the problem is the file as a whole.
    pub line: u64,
    /// The sequence number at that position (what was expected there when
    /// the record itself is unusable).
    pub seq: Option<u64>,
    pub detail: String,
}

/// The result of [`crate::verify`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub dir: PathBuf,
    /// The kmsd instance the chain belongs to: its `INSTANCE` file, else
    /// the id its records name; `None` for a chain without instances.
    pub instance: Option<String>,
    /// Log files seen.
    pub files: usize,
    /// Records that chained correctly (before the problem, if any).
    pub records: u64,
    pub last_seq: Option<u64>,
    /// Checkpoint records seen.
    pub checkpoints: u64,
    /// Whether checkpoint and HEAD MACs were checked (a key was given).
    pub macs_verified: bool,
    /// The seq `HEAD` names, when it was readable.
    pub head_seq: Option<u64>,
    /// Torn tails discarded on restart, as recorded in the log.
    pub recoveries: Vec<String>,
    pub notes: Vec<String>,
    /// The FIRST problem in log order; `None` when intact.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, " line {}", self.line)?;
        }
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}: {}", self.kind.describe(), self.detail)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = if self.files == 1 { "file" } else { "files" };
        match &self.problem {
            None => {
                write!(
                    f,
                    "INTACT: {} records in {} {files}",
                    self.records, self.files
                )?;
                if let Some(last) = self.last_seq {
                    write!(f, " (seq 1..{last})")?;
                }
                if self.macs_verified {
                    writeln!(
                        f,
                        "; {} checkpoints and HEAD verified with the audit key",
                        self.checkpoints
                    )?;
                } else {
                    writeln!(
                        f,
                        "; hash chain only: {} checkpoints and HEAD NOT verified (no root key given)",
                        self.checkpoints
                    )?;
                }
            }
            Some(p) => {
                writeln!(f, "TAMPERED: {p}")?;
                writeln!(f, "  {} records before it chain correctly", self.records)?;
                if !self.macs_verified {
                    writeln!(
                        f,
                        "  (checkpoints and HEAD NOT verified: no root key given)"
                    )?;
                }
            }
        }
        if let Some(id) = &self.instance {
            writeln!(f, "  instance: {id}")?;
        }
        for r in &self.recoveries {
            writeln!(f, "  recovery: {r}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}
