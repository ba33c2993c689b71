//! Backing `stat` → the attributes the kernel sees, and the reverse for
//! times. Regular files report their plaintext size; everything else is the
//! backing file's own.

use crate::format::offsets;
use fuser::{FileAttr, INodeNo, TimeOrNow};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::inode::kind_of_mode;
use super::layout::Sizes;

/// Plaintext bytes per block, reported as `st_blksize`.
const BLKSIZE: u32 = offsets::BLOCK_SIZE as u32;

/// A point in time from `stat`'s seconds and nanoseconds (negative seconds
/// are before 1970).
pub fn system_time(sec: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec.unsigned_abs(), nsec)
    } else {
        // sec < 0: (sec, nsec) = -(|sec|) + nsec
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(u64::from(nsec))
    }
}

/// The attributes of node `id`, whose backing status is `st`, in a volume
/// of format `sizes`.
pub fn file_attr(id: INodeNo, st: &libc::stat, sizes: Sizes) -> FileAttr {
    let kind = kind_of_mode(st.st_mode);
    let backing = u64::try_from(st.st_size).unwrap_or(0);
    let size = match kind {
        fuser::FileType::RegularFile => sizes.apparent_size(backing),
        fuser::FileType::Symlink => sizes.symlink_size(backing),
        _ => backing,
    };
    FileAttr {
        ino: id,
        size,
        blocks: u64::try_from(st.st_blocks).unwrap_or(0),
        atime: system_time(st.st_atime, st.st_atime_nsec),
        mtime: system_time(st.st_mtime, st.st_mtime_nsec),
        ctime: system_time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind,
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        // Device numbers fit 32 bits in FUSE's attr.
        rdev: st.st_rdev as u32,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// A `timespec` for `utimensat`: a time, "now", or "leave as is".
pub fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => libc::timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(d.subsec_nanos()),
            },
            Err(before) => {
                // Before 1970: whole seconds rounded down, nanoseconds up.
                let d = before.duration();
                let mut sec = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nsec = i64::from(d.subsec_nanos());
                if nsec > 0 {
                    sec -= 1;
                    nsec = 1_000_000_000 - nsec;
                }
                libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_including_before_1970() {
        for (s, n) in [
            (0i64, 0i64),
            (1, 5),
            (1_700_000_000, 999_999_999),
            (-1, 0),
            (-5, 250),
        ] {
            let t = system_time(s, n);
            let ts = timespec(Some(TimeOrNow::SpecificTime(t)));
            assert_eq!((ts.tv_sec, ts.tv_nsec), (s, n), "{s}.{n}");
        }
        assert_eq!(timespec(None).tv_nsec, libc::UTIME_OMIT);
        assert_eq!(timespec(Some(TimeOrNow::Now)).tv_nsec, libc::UTIME_NOW);
    }

    #[test]
    fn regular_files_report_plaintext_size() {
        // SAFETY: stat is plain data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFREG | 0o644;
        st.st_size = offsets::cipher_size(4097) as i64;
        let a = file_attr(INodeNo(7), &st, Sizes::V1);
        assert_eq!(a.size, 4097);
        assert_eq!(a.perm, 0o644);
        assert_eq!(a.kind, fuser::FileType::RegularFile);
        st.st_mode = libc::S_IFDIR | 0o755;
        st.st_size = 4096;
        assert_eq!(file_attr(INodeNo(7), &st, Sizes::V1).size, 4096);
        // A damaged size shows its whole blocks; reads will fail.
        st.st_mode = libc::S_IFREG;
        st.st_size = 100;
        assert_eq!(file_attr(INodeNo(7), &st, Sizes::V1).size, 0);
    }
}
