//! `kmsfs init CIPHERDIR --key-id KEY`.

use super::InitArgs;
use crate::keys::init_volume;
use kmsd_client::Client;
use std::process::ExitCode;

pub fn run(a: &InitArgs) -> Result<ExitCode, String> {
    let socket = a.socket.path()?;
    let client = Client::connect(&socket)
        .map_err(|e| format!("cannot reach kmsd at {}: {e}", socket.display()))?;
    let config = init_volume(client, &a.cipherdir, &a.key_id).map_err(|e| e.to_string())?;
    println!(
        "kmsfs: initialized {}: volume {}, key {}",
        a.cipherdir.display(),
        config.volume_id,
        config.key_arn
    );
    Ok(ExitCode::SUCCESS)
}
