//! `kmsfs cat` and `kmsfs fsck`: the offline tools (`crate::tools`) on a
//! volume opened through kmsd, without mounting.

use super::{CatArgs, FsckArgs, InfoArgs, RewrapArgs};
use crate::keys::{KeyOptions, Volume};
use std::io::Write;
use std::process::ExitCode;

/// kmsd's logs name the tool.
fn client_name(tool: &str) -> String {
    format!("kmsfs {tool} {}", env!("CARGO_PKG_VERSION"))
}

fn open(a: &CatArgs) -> Result<Volume, String> {
    Volume::open(
        a.kms.open(&client_name("cat"), None)?,
        &a.cipherdir,
        a.key_id.as_deref(),
        KeyOptions::offline(),
    )
    .map_err(|e| format!("cannot open the volume {}: {e}", a.cipherdir.display()))
}

/// Prints the backing path of a plaintext path.
pub fn backing_path(a: &CatArgs) -> Result<ExitCode, String> {
    let volume = open(a)?;
    let p = crate::tools::backing_path(&volume, &a.path)?;
    let mut out = std::io::stdout().lock();
    out.write_all(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
        .and_then(|()| out.write_all(b"\n"))
        .map_err(|e| format!("writing output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Rewraps the volume; prints the summary. Exit 1 when a file failed
/// (the run can be repeated: it finishes what is left).
pub fn rewrap(a: &RewrapArgs) -> Result<ExitCode, String> {
    // SAFETY: isatty has no preconditions.
    let tty = unsafe { libc::isatty(2) } == 1;
    let bar = if tty {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let connect = a.kms.connector(&client_name("rewrap"))?;
    let report = crate::tools::rewrap::rewrap(
        &connect,
        &a.cipherdir,
        a.to_key.as_deref(),
        a.threads,
        &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    println!("{report}");
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the volume's key and its files per key and key version.
pub fn info(a: &InfoArgs) -> Result<ExitCode, String> {
    let info = crate::tools::info::info(&a.cipherdir)
        .map_err(|e| format!("cannot read the volume {}: {e}", a.cipherdir.display()))?;
    if a.json {
        let s = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
        println!("{s}");
    } else {
        print!("{info}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a file's plaintext to stdout; a damaged block stops it with an
/// error naming the block.
pub fn cat(a: &CatArgs) -> Result<ExitCode, String> {
    let volume = open(a)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    crate::tools::cat(&volume, &a.path, &mut out).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| format!("writing output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Checks every file; prints one line per problem and a summary. Exit
/// status 0 when clean, 1 when something is damaged.
pub fn fsck(a: &FsckArgs) -> Result<ExitCode, String> {
    // SAFETY: isatty has no preconditions.
    let progress = unsafe { libc::isatty(2) } == 1;
    let report = crate::tools::fsck(
        a.kms.open(&client_name("fsck"), None)?,
        &a.cipherdir,
        a.key_id.as_deref(),
        progress,
    )
    .map_err(|e| e.to_string())?;
    println!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
