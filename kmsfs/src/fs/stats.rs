//! Counters of the filesystem layer, shown by `kmsfs status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Default)]
pub struct FsStats {
    damaged_reads: AtomicU64,
    key_errors: AtomicU64,
    /// Second of the last logged key error (key errors are logged at most
    /// once a second: kmsd being down fails every uncached open).
    last_key_log: AtomicU64,
    pub(crate) inodes: AtomicU64,
    pub(crate) open_files: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsFigures {
    pub damaged_reads: u64,
    pub key_errors: u64,
    pub inodes: u64,
    pub open_files: u64,
}

impl FsStats {
    pub fn count_damaged_read(&self) {
        self.damaged_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_key_error(&self) {
        self.key_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// True at most once per second.
    pub fn should_log_key_error(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_key_log.swap(now, Ordering::Relaxed) != now
    }

    pub fn figures(&self) -> FsFigures {
        FsFigures {
            damaged_reads: self.damaged_reads.load(Ordering::Relaxed),
            key_errors: self.key_errors.load(Ordering::Relaxed),
            inodes: self.inodes.load(Ordering::Relaxed),
            open_files: self.open_files.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_error_logging_is_rate_limited() {
        let s = FsStats::default();
        let first = s.should_log_key_error();
        let second = s.should_log_key_error();
        // Within one second at most one of two calls logs (the second
        // could land in the next second only if the clock ticked between).
        assert!(first);
        assert!(!second || first);
        s.count_key_error();
        s.count_damaged_read();
        s.count_damaged_read();
        let f = s.figures();
        assert_eq!((f.key_errors, f.damaged_reads), (1, 2));
    }
}
