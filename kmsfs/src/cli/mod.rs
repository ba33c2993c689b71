//! The `kmsfs` command line: `init`, `mount`, `umount`, `status`, `cat`,
//! `fsck`. Each subcommand is a file; `main.rs` only calls [`main`].

mod daemon;
mod init;
mod kms;
mod logging;
mod mount;
pub mod mount_helper;
mod status;
mod tools;
mod umount;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kmsfs",
    version,
    about = "An encrypting FUSE filesystem with a kmsd-wrapped data key per file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make CIPHERDIR a kmsfs volume bound to a KMS key.
    Init(InitArgs),
    /// Mount CIPHERDIR at MOUNTPOINT (returns once the mount is ready).
    Mount(MountArgs),
    /// Unmount a kmsfs mount and wait for its process to exit.
    Umount(UmountArgs),
    /// Show a mount's key cache and kmsd figures.
    Status(StatusArgs),
    /// Print the plaintext of a file in CIPHERDIR without mounting.
    Cat(CatArgs),
    /// Check every file of CIPHERDIR without mounting.
    Fsck(FsckArgs),
    /// Re-encrypt every wrapped key of CIPHERDIR through kmsd (ReEncrypt):
    /// under --to-key, or under the current version of the volume's key.
    Rewrap(RewrapArgs),
    /// Show the volume's key, and how many files are wrapped under which
    /// KMS key and key version (offline: reads CIPHERDIR only).
    Info(InfoArgs),
    /// Print the backing path (relative to CIPHERDIR) of a path inside the
    /// volume: its names encrypted, as a mount stores them.
    BackingPath(CatArgs),
}

pub use kms::{KmsArgs, KmsKind};

#[derive(Args, Debug)]
pub struct InitArgs {
    pub cipherdir: PathBuf,
    /// The KMS key (id, ARN or alias) that wraps every data key.
    #[arg(long, value_name = "KEY")]
    pub key_id: String,
    /// On-disk format: 2 encrypts names, gives every file a header and
    /// binds xattr values to their file; 1 is the earlier format.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub format: u32,
    /// Format 2: keep names in the clear (contents, symlink targets and
    /// xattr values stay encrypted).
    #[arg(long)]
    pub plaintext_names: bool,
    #[command(flatten)]
    pub kms: KmsArgs,
}

#[derive(Args, Debug, Clone)]
pub struct MountArgs {
    pub cipherdir: PathBuf,
    pub mountpoint: PathBuf,
    #[command(flatten)]
    pub kms: KmsArgs,
    /// Refuse the volume unless it is bound to this key (id, ARN or alias).
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
    /// Serve in the foreground instead of returning once mounted.
    #[arg(short, long)]
    pub foreground: bool,
    /// Mount options: allow_other, allow_root, default_permissions (implied
    /// by allow_other/allow_root), ro, rw, noexec, nosuid, nodev, noatime,
    /// sync, dirsync, no_writeback_cache, fsname=NAME (comma-separated).
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Vec<String>,
    /// Unwrapped data keys kept in memory.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    pub cache_capacity: usize,
    /// Seconds an unwrapped key is used before kmsd is asked again.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub cache_ttl: u64,
    /// Pre-generated data keys kept ready for new files.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub pool_size: usize,
    /// Threads serving FUSE requests.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub threads: usize,
    /// Kernel read-ahead of the mount in KiB (0: the kernel's default).
    #[arg(long, value_name = "KIB", default_value_t = 16384)]
    pub read_ahead_kb: u32,
    /// Log file of a background mount [default: next to its control socket].
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Internal: the daemon reports readiness on this fd.
    #[arg(long, value_name = "FD", hide = true)]
    pub ready_fd: Option<i32>,
}

#[derive(Args, Debug)]
pub struct UmountArgs {
    pub mountpoint: PathBuf,
    /// Detach now even if busy; the mount goes when its last file closes.
    #[arg(short = 'z', long)]
    pub lazy: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    pub mountpoint: PathBuf,
    /// Print JSON (as --output json).
    #[arg(long, conflicts_with = "output")]
    pub json: bool,
    /// What to print: the figures for people (text), JSON, or Prometheus
    /// text format (`kmsfs_` metrics labelled with the mountpoint).
    #[arg(long, value_enum, default_value_t = status::StatusOutput::Text)]
    pub output: status::StatusOutput,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    pub cipherdir: PathBuf,
    /// Path of the file inside the volume.
    pub path: PathBuf,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct RewrapArgs {
    pub cipherdir: PathBuf,
    /// The KMS key (id, ARN or alias) to move the volume to [default: the
    /// volume's own key, at its current version].
    #[arg(long, value_name = "KEY")]
    pub to_key: Option<String>,
    #[command(flatten)]
    pub kms: KmsArgs,
    /// kmsd requests in flight.
    #[arg(long, default_value_t = 8)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub cipherdir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct FsckArgs {
    pub cipherdir: PathBuf,
    #[command(flatten)]
    pub kms: KmsArgs,
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
}

/// Runs the command line; errors are printed as `kmsfs: message`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Init(a) => init::run(&a),
        Command::Mount(a) => mount::run(a),
        Command::Umount(a) => umount::run(&a),
        Command::Status(a) => status::run(&a),
        Command::Cat(a) => tools::cat(&a),
        Command::Fsck(a) => tools::fsck(&a),
        Command::BackingPath(a) => tools::backing_path(&a),
        Command::Rewrap(a) => tools::rewrap(&a),
        Command::Info(a) => tools::info(&a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kmsfs: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_arguments_parse() {
        let c = Cli::try_parse_from([
            "kmsfs",
            "mount",
            "/c",
            "/m",
            "-o",
            "allow_other,ro",
            "--socket",
            "/s",
            "--key-id",
            "alias/x",
            "--threads",
            "2",
        ])
        .unwrap();
        let Command::Mount(m) = c.command else {
            panic!("not mount")
        };
        assert_eq!(m.options, ["allow_other,ro"]);
        assert_eq!(m.kms.sockets(), Ok(vec![PathBuf::from("/s")]));
        assert_eq!(m.kms.kms, KmsKind::Native);
        assert_eq!(m.key_id.as_deref(), Some("alias/x"));
        assert_eq!(m.threads, 2);
        assert!(!m.foreground);
    }

    #[test]
    fn init_requires_a_key() {
        assert!(Cli::try_parse_from(["kmsfs", "init", "/c"]).is_err());
        assert!(Cli::try_parse_from(["kmsfs", "init", "/c", "--key-id", "k"]).is_ok());
    }
}
