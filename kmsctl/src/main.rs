//! kmsctl: control kmsd with the verbs and flags of `aws kms`.
//!
//! Parses the command line, runs one command, prints its reply and exits
//! with the AWS CLI v2's status codes (see `failure.rs`).

mod args;
mod audit;
mod commands;
mod failure;
mod input;
mod json;
mod output;
mod shorthand;

use args::{Cli, TopLevel};
use clap::Parser;
use failure::{EXIT_OTHER, EXIT_USAGE};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; anything else
            // is a usage error.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let command = match cli.command {
        TopLevel::Kms(command) => command,
        TopLevel::Audit(cmd) => return audit::run(cmd),
    };
    let sockets = match cli.socket {
        s if !s.is_empty() => s,
        _ => match kmsd_client::default_endpoints() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_OTHER);
            }
        },
    };
    let ctx = commands::Ctx::new(sockets, cli.cli_binary_format);
    match commands::run(command, &ctx) {
        Ok(reply) => {
            let text = reply.render(cli.output);
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // `kmsctl list-keys | head -1` is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("Cannot write the output: {e}");
                    ExitCode::from(EXIT_OTHER)
                }
            }
        }
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
