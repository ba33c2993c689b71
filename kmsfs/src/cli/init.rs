//! `kmsfs init CIPHERDIR --key-id KEY`.

use super::InitArgs;
use crate::keys::{InitFormat, KeyError, VolumeError, init_volume_as};
use std::process::ExitCode;

pub fn run(a: &InitArgs) -> Result<ExitCode, String> {
    let format = match (a.format, a.plaintext_names) {
        (1, true) => {
            return Err(
                "--plaintext-names needs --format 2 (format 1 names are always plaintext)".into(),
            );
        }
        (1, false) => InitFormat::V1,
        (_, plaintext_names) => InitFormat::V2 { plaintext_names },
    };
    let kms = a
        .kms
        .open(&format!("kmsfs init {}", env!("CARGO_PKG_VERSION")), None)?;
    let config =
        init_volume_as(kms.clone(), &a.cipherdir, &a.key_id, format).map_err(|e| match e {
            VolumeError::Key(KeyError::Unavailable(m)) => {
                format!("cannot reach {}: {m}", kms.describe())
            }
            e => e.to_string(),
        })?;
    let names = match format {
        InitFormat::V1 => "format 1, plaintext names",
        InitFormat::V2 {
            plaintext_names: true,
        } => "format 2, plaintext names",
        InitFormat::V2 {
            plaintext_names: false,
        } => "format 2, encrypted names",
    };
    println!(
        "kmsfs: initialized {}: volume {}, key {} ({names})",
        a.cipherdir.display(),
        config.volume_id,
        config.key_arn
    );
    Ok(ExitCode::SUCCESS)
}
