//! Random bytes for keys and nonces, from the OS's CSPRNG in 4 KiB draws.
//!
//! A GenerateDataKey needs 44 random bytes (key and nonce); asking the
//! kernel for each costs two `getrandom` calls per request. Each thread
//! instead keeps one draw of [`POOL_SIZE`] bytes and hands them out in
//! order; every byte handed out is wiped from the pool at once, so the
//! pool only ever holds bytes no one has seen, in memory kmsd locks and
//! keeps out of core dumps. kmsd never forks after start-up, so no two
//! processes can share a pool.

use std::cell::RefCell;
use zeroize::Zeroize;

/// Bytes per draw from the OS.
pub const POOL_SIZE: usize = 4096;

struct Pool {
    bytes: Box<[u8; POOL_SIZE]>,
    /// Bytes before `next` have been handed out (and wiped).
    next: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        bytes: Box::new([0u8; POOL_SIZE]),
        next: POOL_SIZE,
    });
}

/// Fills `buf` from the OS's CSPRNG. A failing getrandom leaves no safe way
/// to continue, so this aborts the process rather than use weak bytes.
pub fn fill_random(buf: &mut [u8]) {
    if buf.len() > POOL_SIZE / 4 {
        return os_fill(buf);
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let mut done = 0;
        while done < buf.len() {
            if p.next == POOL_SIZE {
                os_fill(&mut p.bytes[..]);
                p.next = 0;
            }
            let n = (buf.len() - done).min(POOL_SIZE - p.next);
            let (start, end) = (p.next, p.next + n);
            buf[done..done + n].copy_from_slice(&p.bytes[start..end]);
            p.bytes[start..end].zeroize();
            p.next = end;
            done += n;
        }
    });
}

fn os_fill(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        eprintln!("kmsd: the OS random number generator failed: {e}");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_never_repeat_and_cross_refills() {
        let mut seen = std::collections::HashSet::new();
        // 44-byte draws straddle the pool's end several times.
        for _ in 0..(3 * POOL_SIZE / 44) {
            let mut b = [0u8; 44];
            fill_random(&mut b);
            assert!(seen.insert(b), "a draw repeated");
        }
    }

    #[test]
    fn handed_out_bytes_are_wiped_from_the_pool() {
        let mut b = [0u8; 32];
        fill_random(&mut b);
        POOL.with(|p| {
            let p = p.borrow();
            assert!(p.next >= 32);
            assert!(p.bytes[..p.next].iter().all(|&x| x == 0));
            assert!(p.bytes[p.next..].iter().any(|&x| x != 0));
        });
    }

    #[test]
    fn large_requests_go_to_the_os() {
        let mut b = vec![0u8; POOL_SIZE];
        fill_random(&mut b);
        assert!(b.iter().any(|&x| x != 0));
    }
}
