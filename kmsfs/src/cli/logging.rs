//! Log lines go to stderr (a background mount's stderr is its log file).
//! `KMSFS_LOG` (or `RUST_LOG`) sets the filter; the default is `info`
//! (without fuser's warning that the kernel unmounted before it could).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("KMSFS_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,fuser::session=error".into());
    // SAFETY: isatty has no preconditions.
    let tty = unsafe { libc::isatty(2) } == 1;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(tty)
        .try_init();
}
