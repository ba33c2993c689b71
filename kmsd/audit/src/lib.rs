//! kmsd's tamper-evident audit trail.
//!
//! Every kmsd request (allowed or denied, successful or failed) becomes one
//! JSON line in `<state-dir>/audit/audit-NNNNNN.jsonl`, chained to the line
//! before it by SHA-256, with HMAC-signed checkpoints and a `HEAD` file that
//! makes a truncated tail visible. See `docs/AUDIT.md` for the format and
//! the crash guarantees.
//!
//! # Writing (the server)
//!
//! ```no_run
//! use kmsd_audit::{AuditEvent, AuditLog, Options, Principal, audit_key_from_root, audit_dir};
//! # fn f(root_key: &[u8; 32], state_dir: &std::path::Path) -> Result<(), kmsd_audit::AuditError> {
//! let log = AuditLog::open(audit_dir(state_dir), audit_key_from_root(root_key), Options::default())?;
//! let ev = AuditEvent::new("Encrypt", "req-id", Principal::from_peer(1000, 1000, Some(4242)))
//!     .with_parameters(serde_json::json!({"KeyId": "alias/app", "EncryptionContext": {"a": "b"}}))
//!     .with_resource("arn:aws:kms:local:111122223333:key/…");
//! let seq = log.append(&ev)?;          // blocking: returns once durable
//! // async handlers: `log.submit(&ev).await?` (a Ticket is a Future)
//! // failure: `.with_kms_error(&err)` or `.with_error(code, message)`
//! log.close()?;
//! # let _ = seq; Ok(()) }
//! ```
//!
//! - [`AuditLog::open`]`(dir, AuditKey, Options) -> Result<AuditLog>`: creates
//!   or resumes; refuses ([`AuditError::Damaged`]) a log whose acknowledged
//!   records are missing; [`AuditError::Locked`] if another process has it.
//! - [`AuditLog::append`]`(&AuditEvent) -> Result<Seq>` (blocking) and
//!   [`AuditLog::submit`]`(&AuditEvent) -> Ticket` (`.wait()` or `.await`).
//!   `Ok` means the record is on disk (group commit: one write + fdatasync
//!   per batch). ANY `Err` means it is not: fail the request with
//!   `KMSInternalException`.
//! - [`AuditEvent`] / [`Principal`]: what to record; [`exe_path`] reads
//!   `/proc/<pid>/exe`; [`scrub`] (applied automatically) drops
//!   `Plaintext`, `CiphertextBlob`, ... fields from the parameters.
//! - [`AuditKey`]: 32-byte MAC key (no `Debug`, zeroized);
//!   [`audit_key_from_root`] derives it with HKDF-SHA256, info
//!   [`AUDIT_KEY_LABEL`] = `kmsd/audit-checkpoint/v1`.
//! - One chain per kmsd instance: [`Options::instance`]`: Option<String>`
//!   (`[a-z0-9-]{1,64}`, [`check_instance_id`]) puts `"instance":"<id>"` in
//!   every line and ties the directory to the id (`INSTANCE`,
//!   [`read_instance`]); `open` refuses another instance's directory
//!   ([`AuditError::WrongInstance`]).
//!
//! # Reading (kmsctl and tests)
//!
//! - [`verify`]`(dir, Option<&AuditKey>) -> Result<Report>`: the first
//!   altered / removed / inserted / reordered record, torn or truncated tail,
//!   missing file, forged checkpoint or bad `HEAD`, with file, line and seq;
//!   or intact with counts.
//!   A record of another instance is [`ProblemKind::WrongInstance`].
//! - [`verify_set`]`(&[dir], Option<&AuditKey>) -> Result<SetReport>`: each
//!   chain, and no two chains of one instance ([`DuplicateInstance`]).
//! - [`query`]`(dir, Filter) -> Query` and [`tail`]`(dir, n, follow) -> Tail`:
//!   iterators of [`Entry`] (record + exact line + position);
//!   [`merge_by_time`] interleaves several chains' by `eventTime`.
//! - [`cli`] module: `AuditCommand` (clap `Subcommand`: `verify`, `tail`, `query`)
//!   and `cli::run(cmd) -> anyhow::Result<i32>` (0 intact, 1 tampered).

mod bound;
mod chain;
pub mod cli;
mod commit;
mod error;
mod event;
mod head;
mod instance;
mod key;
mod lines;
mod log;
mod merge;
mod observer;
mod query;
mod record;
mod report;
mod resume;
mod scrub;
mod segments;
mod set;
mod ticket;
mod time;
mod verify;
mod writer;

pub use bound::{BoundLimits, MAX_ERROR_MESSAGE, PREFIX_BYTES, bound_message, bound_parameters};
pub use chain::LineHash;
pub use commit::{CommitMode, INLINE_BELOW};
pub use error::AuditError;
pub use event::{AuditEvent, EventError, Principal, exe_path};
pub use instance::{
    INSTANCE_FILE, MAX_INSTANCE_LEN, check_instance_id, is_instance_id, read_instance,
};
pub use key::{
    AUDIT_KEY_LABEL, AuditKey, ROOT_KEY_LEN, audit_key_from_root, audit_key_from_root_file,
};
pub use log::AuditLog;
pub use merge::{MergeByTime, merge_by_time};
pub use observer::CommitObserver;
pub use query::{Entry, Filter, PrincipalFilter, Query, Tail, query, tail};
pub use record::{CHECKPOINT_EVENT, CheckpointInfo, RECOVERY_EVENT, Record};
pub use report::{Problem, ProblemKind, Report};
pub use scrub::{SECRET_FIELDS, is_secret_field, scrub};
pub use segments::{HEAD_FILE, audit_dir, segment_name};
pub use set::{DuplicateInstance, SetReport, verify_set};
pub use ticket::{Seq, Ticket};
pub use time::{EventTime, parse_since};
pub use verify::verify;
pub use writer::Options;
