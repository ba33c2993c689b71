//! One call per key at a time: when several threads miss the cache for the
//! same wrapped key at once (a directory of hard links, many readers of a
//! file that was just evicted), the first asks kmsd and the others wait
//! for its answer instead of asking too.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Calls in flight, by key; `V` is what every waiter gets a copy of.
pub struct SingleFlight<K, V> {
    calls: Mutex<HashMap<K, Arc<Call<V>>>>,
}

struct Call<V> {
    /// `Some(Some(v))`: finished; `Some(None)`: the leader panicked.
    result: Mutex<Option<Option<V>>>,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub fn new() -> Self {
        SingleFlight {
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// `f()`, unless a call for `key` is already running: then its result
    /// (or, if that call panicked, `f()` after all). The second value is
    /// true when this caller ran its `f`.
    pub fn run(&self, key: &K, f: impl FnOnce() -> V) -> (V, bool) {
        let (call, leader) = {
            let mut calls = lock(&self.calls);
            match calls.get(key) {
                Some(c) => (c.clone(), false),
                None => {
                    let c = Arc::new(Call {
                        result: Mutex::new(None),
                        done: Condvar::new(),
                    });
                    calls.insert(key.clone(), c.clone());
                    (c, true)
                }
            }
        };
        if !leader {
            let mut r = lock(&call.result);
            loop {
                match r.as_ref() {
                    Some(Some(v)) => return (v.clone(), false),
                    Some(None) => {
                        drop(r);
                        return (f(), true);
                    }
                    None => r = call.done.wait(r).unwrap_or_else(|p| p.into_inner()),
                }
            }
        }
        // Even if `f` panics, the entry goes and the waiters wake (and run
        // their own call), so nobody waits for a call that never finishes.
        struct Finish<'a, K: Eq + Hash, V> {
            calls: &'a Mutex<HashMap<K, Arc<Call<V>>>>,
            call: &'a Call<V>,
            key: &'a K,
        }
        impl<K: Eq + Hash, V> Drop for Finish<'_, K, V> {
            fn drop(&mut self) {
                lock(self.calls).remove(self.key);
                let mut r = lock(&self.call.result);
                if r.is_none() {
                    *r = Some(None);
                }
                drop(r);
                self.call.done.notify_all();
            }
        }
        let _finish = Finish {
            calls: &self.calls,
            call: &call,
            key,
        };
        let v = f();
        *lock(&call.result) = Some(Some(v.clone()));
        (v, true)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        lock(&self.calls).len()
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn concurrent_callers_of_one_key_share_one_call() {
        let sf = Arc::new(SingleFlight::<u32, u64>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (sf, calls, start) = (sf.clone(), calls.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    sf.run(&7, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Long enough for every other thread to arrive.
                        std::thread::sleep(Duration::from_millis(200));
                        42
                    })
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|(v, _)| *v == 42));
        assert_eq!(results.iter().filter(|(_, led)| *led).count(), 1);
        assert_eq!(sf.in_flight(), 0);
    }

    #[test]
    fn different_keys_and_later_calls_run_again() {
        let sf = SingleFlight::<u32, u32>::new();
        assert_eq!(sf.run(&1, || 10), (10, true));
        assert_eq!(sf.run(&2, || 20), (20, true));
        // Finished calls are not remembered: that is the cache's job.
        assert_eq!(sf.run(&1, || 11), (11, true));
        assert_eq!(sf.in_flight(), 0);
    }

    #[test]
    fn a_panicking_call_leaves_nobody_waiting() {
        let sf = Arc::new(SingleFlight::<u32, u32>::new());
        let s = sf.clone();
        let leader = std::thread::spawn(move || {
            s.run(&3, || {
                std::thread::sleep(Duration::from_millis(300));
                panic!("boom")
            })
        });
        while sf.in_flight() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // This caller waits on the doomed call, then runs its own.
        assert_eq!(sf.run(&3, || 4), (4, true));
        assert!(leader.join().is_err());
        assert_eq!(sf.in_flight(), 0);
        assert_eq!(sf.run(&3, || 5), (5, true));
    }
}
