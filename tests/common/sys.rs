//! Thin wrappers over the system calls tests make directly (std has no
//! renameat2, and the xattr tests need the raw errno).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `p` as a C string (test paths have no NUL).
pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("a test path has no NUL byte")
}

/// The errno of the last failed call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

/// renameat2(2) with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE,
/// RENAME_WHITEOUT): 0, or the errno.
pub fn renameat2(from: &Path, to: &Path, flags: u32) -> i32 {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: valid NUL-terminated paths.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if r == 0 { 0 } else { errno() }
}
