//! `kmsfs status MOUNTPOINT [--output text|json|prometheus]`.

use super::StatusArgs;
use crate::ctl;
use std::process::ExitCode;

/// The forms `kmsfs status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusOutput {
    Text,
    Json,
    Prometheus,
}

impl StatusArgs {
    /// The form asked for: `--json` is `--output json`.
    fn form(&self) -> StatusOutput {
        if self.json {
            StatusOutput::Json
        } else {
            self.output
        }
    }
}

pub fn run(a: &StatusArgs) -> Result<ExitCode, String> {
    let s = ctl::query(&a.mountpoint)?;
    match a.form() {
        StatusOutput::Json => println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        ),
        StatusOutput::Text => print!("{}", s.render()),
        StatusOutput::Prometheus => print!("{}", ctl::render_prometheus(&s)),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    fn form(args: &[&str]) -> Result<StatusOutput, clap::Error> {
        let c = Cli::try_parse_from(["kmsfs", "status", "/m"].iter().chain(args).copied())?;
        let Command::Status(s) = c.command else {
            panic!("not status")
        };
        Ok(s.form())
    }

    #[test]
    fn output_forms_parse_and_json_stays_a_shorthand() {
        assert_eq!(form(&[]).unwrap(), StatusOutput::Text);
        assert_eq!(form(&["--json"]).unwrap(), StatusOutput::Json);
        assert_eq!(form(&["--output", "json"]).unwrap(), StatusOutput::Json);
        assert_eq!(
            form(&["--output", "prometheus"]).unwrap(),
            StatusOutput::Prometheus
        );
        assert_eq!(form(&["--output", "text"]).unwrap(), StatusOutput::Text);
        assert!(form(&["--output", "yaml"]).is_err());
        assert!(form(&["--json", "--output", "prometheus"]).is_err());
    }
}
