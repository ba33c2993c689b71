//! `kmsctl audit verify|tail|query`: clap definitions and [`run`].
//!
//! Exit codes from [`run`]: `verify` 0 intact, 1 tampered; `tail`/`query` 0,
//! or 1 when a line that is not a record was met (reported on stderr).
//! I/O and usage errors are `Err`.
//!
//! Every subcommand takes several chains (one per kmsd instance: repeat
//! `--audit-dir` or `--state-dir`). `verify` checks each and the set (no
//! two chains of one instance); `query` and `tail` (without `-f`) merge
//! the chains' records by `eventTime`. With one chain the output is what
//! it always was.

use crate::error::AuditError;
use crate::key::audit_key_from_root_file;
use crate::merge::merge_by_time;
use crate::query::{Entry, Filter, PrincipalFilter, query, tail};
use crate::segments::audit_dir;
use crate::set::SetReport;
use crate::time::{EventTime, parse_since};
use crate::verify::verify;
use anyhow::{Context, bail};
use clap::{ArgAction, Args, Subcommand};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Where the audit logs are: one or more chains.
#[derive(Debug, Clone, Args)]
pub struct AuditDirArgs {
    /// kmsd's state directory; the log is in <DIR>/audit. Repeat it for
    /// several instances' chains
    #[arg(long, value_name = "DIR", env = "KMSD_STATE_DIR", action = ArgAction::Append)]
    pub state_dir: Vec<PathBuf>,
    /// The audit directory itself; repeat it for several chains (takes
    /// precedence over --state-dir)
    #[arg(long, value_name = "DIR", action = ArgAction::Append)]
    pub audit_dir: Vec<PathBuf>,
}

impl AuditDirArgs {
    /// The audit directories in the order given: every `--audit-dir` if
    /// there is one, else `<DIR>/audit` of every `--state-dir`. Never
    /// empty; a directory named twice is an error.
    pub fn resolve(&self) -> anyhow::Result<Vec<PathBuf>> {
        let dirs: Vec<PathBuf> = if !self.audit_dir.is_empty() {
            self.audit_dir.clone()
        } else {
            self.state_dir.iter().map(|s| audit_dir(s)).collect()
        };
        if dirs.is_empty() {
            bail!("give --state-dir DIR (or KMSD_STATE_DIR) or --audit-dir DIR");
        }
        let same = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        for (i, d) in dirs.iter().enumerate() {
            if dirs[..i].iter().any(|e| same(e) == same(d)) {
                bail!("{} is given twice", d.display());
            }
        }
        Ok(dirs)
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, checkpoints and HEAD; report the first altered,
    /// removed, inserted or reordered record, or one of another instance.
    /// With several chains, each is checked and no two may be one
    /// instance's. Exit 0 if all are intact, 1 if not.
    Verify {
        #[command(flatten)]
        dir: AuditDirArgs,
        /// kmsd's root key file (32 raw bytes): also verify checkpoint and
        /// HEAD MACs. Without it only the hash chain is checked.
        #[arg(long, value_name = "FILE")]
        root_key_file: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the last records, one JSON object per line; of several
    /// chains, the last records of all, merged by eventTime.
    Tail {
        #[command(flatten)]
        dir: AuditDirArgs,
        /// How many records
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: usize,
        /// Keep printing records as they are written (one chain only)
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print the records matching every given filter, one JSON object per
    /// line; of several chains, merged by eventTime.
    Query {
        #[command(flatten)]
        dir: AuditDirArgs,
        /// A key id, alias or key ARN
        #[arg(long, value_name = "KEY")]
        key_id: Option<String>,
        /// uid:N or user:NAME
        #[arg(long, value_name = "WHO")]
        principal: Option<PrincipalFilter>,
        /// An operation name, e.g. Encrypt (case-insensitive)
        #[arg(long, value_name = "NAME")]
        event: Option<String>,
        /// An RFC 3339 time or date, or an age like 15m, 2h, 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
}

/// Runs `cmd`, printing to stdout; returns the exit code.
pub fn run(cmd: AuditCommand) -> anyhow::Result<i32> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    run_to(cmd, &mut out)
}

/// [`run`] writing to `out` (records, reports) and stderr (warnings).
pub fn run_to(cmd: AuditCommand, out: &mut dyn Write) -> anyhow::Result<i32> {
    match write_output(cmd, out) {
        Err(e) if is_broken_pipe(&e) => Ok(0),
        r => r,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn write_output(cmd: AuditCommand, out: &mut dyn Write) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Verify {
            dir,
            root_key_file,
            json,
        } => {
            let dirs = dir.resolve()?;
            let key = match &root_key_file {
                Some(p) => Some(audit_key_from_root_file(p)?),
                None => None,
            };
            let mut reports = Vec::with_capacity(dirs.len());
            for d in &dirs {
                let r = verify(d, key.as_ref())
                    .with_context(|| format!("verifying {}", d.display()))?;
                reports.push(r);
            }
            let set = SetReport::of(reports);
            match (&set.chains[..], json) {
                ([one], true) => serde_json::to_writer_pretty(&mut *out, one)?,
                ([one], false) => write!(out, "{}: {one}", one.dir.display())?,
                (_, true) => serde_json::to_writer_pretty(&mut *out, &set)?,
                (_, false) => write!(out, "{set}")?,
            }
            if json {
                writeln!(out)?;
            }
            Ok(if set.is_intact() { 0 } else { 1 })
        }
        AuditCommand::Tail { dir, lines, follow } => {
            let dirs = existing(dir.resolve()?)?;
            if let [dir] = &dirs[..]
                && follow
            {
                let it = tail(dir, lines, follow)
                    .with_context(|| format!("reading {}", dir.display()))?;
                return print_entries(it, out, follow);
            }
            if follow {
                bail!("tail -f follows one chain: give one --audit-dir or --state-dir");
            }
            let mut tails = Vec::with_capacity(dirs.len());
            for d in &dirs {
                let it =
                    tail(d, lines, false).with_context(|| format!("reading {}", d.display()))?;
                tails.push(named_errors(it, d, dirs.len() > 1));
            }
            // The last `lines` of the merge: each input holds its chain's
            // last `lines`, so these are the last of all.
            let mut last = VecDeque::new();
            for e in merge_by_time(tails) {
                if last.len() == lines {
                    last.pop_front();
                }
                if lines > 0 {
                    last.push_back(e);
                }
            }
            print_entries(last.into_iter(), out, false)
        }
        AuditCommand::Query {
            dir,
            key_id,
            principal,
            event,
            since,
        } => {
            let since = match since {
                Some(s) => Some(parse_since(&s, EventTime::now()).map_err(anyhow::Error::msg)?),
                None => None,
            };
            let dirs = existing(dir.resolve()?)?;
            let filter = Filter {
                key_id,
                principal,
                event,
                since,
            };
            let mut queries = Vec::with_capacity(dirs.len());
            for d in &dirs {
                let it =
                    query(d, filter.clone()).with_context(|| format!("reading {}", d.display()))?;
                queries.push(named_errors(it, d, dirs.len() > 1));
            }
            print_entries(merge_by_time(queries), out, false)
        }
    }
}

fn existing(dirs: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    for dir in &dirs {
        if !dir.is_dir() {
            bail!("no audit log at {}: not a directory", dir.display());
        }
    }
    Ok(dirs)
}

/// With several chains, a damaged line's warning names its directory.
fn named_errors<'a>(
    entries: impl Iterator<Item = Result<Entry, AuditError>> + 'a,
    dir: &'a Path,
    several: bool,
) -> impl Iterator<Item = Result<Entry, AuditError>> + 'a {
    entries.map(move |e| match e {
        Err(AuditError::Damaged(m)) if several => {
            Err(AuditError::Damaged(format!("{}: {m}", dir.display())))
        }
        e => e,
    })
}

fn print_entries(
    entries: impl Iterator<Item = Result<Entry, AuditError>>,
    out: &mut dyn Write,
    flush_each: bool,
) -> anyhow::Result<i32> {
    let mut code = 0;
    for e in entries {
        match e {
            Ok(e) => {
                writeln!(out, "{}", e.raw)?;
                if flush_each {
                    out.flush()?;
                }
            }
            Err(AuditError::Damaged(m)) => {
                eprintln!("warning: {m}");
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    out.flush()?;
    Ok(code)
}
