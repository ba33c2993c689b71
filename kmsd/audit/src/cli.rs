//! `kmsctl audit verify|tail|query`: clap definitions and [`run`].
//!
//! Exit codes from [`run`]: `verify` 0 intact, 1 tampered; `tail`/`query` 0,
//! or 1 when a line that is not a record was met (reported on stderr).
//! I/O and usage errors are `Err`.

use crate::key::audit_key_from_root_file;
use crate::query::{Filter, PrincipalFilter, query, tail};
use crate::segments::audit_dir;
use crate::time::{EventTime, parse_since};
use crate::verify::verify;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::io::{self, Write};
use std::path::PathBuf;

/// Where the audit log is.
#[derive(Debug, Clone, Args)]
pub struct AuditDirArgs {
    /// kmsd's state directory; the log is in <DIR>/audit
    #[arg(long, value_name = "DIR", env = "KMSD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The audit directory itself (takes precedence over --state-dir)
    #[arg(long, value_name = "DIR")]
    pub audit_dir: Option<PathBuf>,
}

impl AuditDirArgs {
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        match (&self.audit_dir, &self.state_dir) {
            (Some(a), _) => Ok(a.clone()),
            (None, Some(s)) => Ok(audit_dir(s)),
            (None, None) => bail!("give --state-dir DIR (or KMSD_STATE_DIR) or --audit-dir DIR"),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain, checkpoints and HEAD; report the first altered,
    /// removed, inserted or reordered record. Exit 0 if intact, 1 if not.
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
    /// Print the last records, one JSON object per line.
    Tail {
        #[command(flatten)]
        dir: AuditDirArgs,
        /// How many records
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: usize,
        /// Keep printing records as they are written
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Print the records matching every given filter, one JSON object per line.
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
            let dir = dir.resolve()?;
            let key = match &root_key_file {
                Some(p) => Some(audit_key_from_root_file(p)?),
                None => None,
            };
            let report = verify(&dir, key.as_ref())
                .with_context(|| format!("verifying {}", dir.display()))?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &report)?;
                writeln!(out)?;
            } else {
                write!(out, "{}: {report}", dir.display())?;
            }
            Ok(if report.is_intact() { 0 } else { 1 })
        }
        AuditCommand::Tail { dir, lines, follow } => {
            let dir = existing(dir.resolve()?)?;
            let it =
                tail(&dir, lines, follow).with_context(|| format!("reading {}", dir.display()))?;
            print_entries(it, out, follow)
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
            let dir = existing(dir.resolve()?)?;
            let filter = Filter {
                key_id,
                principal,
                event,
                since,
            };
            let it = query(&dir, filter).with_context(|| format!("reading {}", dir.display()))?;
            print_entries(it, out, false)
        }
    }
}

fn existing(dir: PathBuf) -> anyhow::Result<PathBuf> {
    if !dir.is_dir() {
        bail!("no audit log at {}: not a directory", dir.display());
    }
    Ok(dir)
}

fn print_entries(
    entries: impl Iterator<Item = Result<crate::query::Entry, crate::error::AuditError>>,
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
            Err(crate::error::AuditError::Damaged(m)) => {
                eprintln!("warning: {m}");
                code = 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    out.flush()?;
    Ok(code)
}
