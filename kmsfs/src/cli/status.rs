//! `kmsfs status MOUNTPOINT`.

use super::StatusArgs;
use crate::ctl;
use std::process::ExitCode;

pub fn run(a: &StatusArgs) -> Result<ExitCode, String> {
    let s = ctl::query(&a.mountpoint)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", s.render());
    }
    Ok(ExitCode::SUCCESS)
}
