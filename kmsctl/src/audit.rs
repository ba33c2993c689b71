//! `kmsctl audit ...`: kmsd-audit's own command line (`kmsd_audit::cli`),
//! which reads the audit files itself, mapped to kmsctl's exit status.

use crate::failure::EXIT_OTHER;
use kmsd_audit::cli::{AuditCommand, run_to};
use std::io::Write;
use std::process::ExitCode;

/// Runs `cmd`, printing to stdout: 0 when every chain is intact (and, with
/// several, no two are one instance's), 1 when not; errors (no such
/// directory, bad flags) exit 255.
pub fn run(cmd: AuditCommand) -> ExitCode {
    let stdout = std::io::stdout();
    ExitCode::from(status(cmd, &mut stdout.lock()))
}

/// [`run`] writing to `out`; returns the exit status.
fn status(cmd: AuditCommand, out: &mut dyn Write) -> u8 {
    match run_to(cmd, out) {
        Ok(code) => u8::try_from(code).unwrap_or(EXIT_OTHER),
        Err(e) => {
            eprintln!("kmsctl audit: {e:#}");
            EXIT_OTHER
        }
    }
}

#[cfg(test)]
mod tests;
