//! A fixed-bucket histogram on atomics: recording is one binary search
//! over at most [`MAX_BOUNDS`] bounds and two relaxed `fetch_add`s, with
//! no lock and no allocation. A scrape reads the buckets one by one, so a
//! reading taken while requests are recorded may be a few observations
//! behind in some buckets, but it is always self-consistent: `_count` is
//! the sum of the buckets read, so the `+Inf` bucket always equals it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most finite bounds a histogram may have.
pub const MAX_BOUNDS: usize = 23;

/// What a histogram's values are, and so how they are written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds, written as seconds.
    Seconds,
    /// A plain count, written as it is.
    Count,
}

/// Request and I/O latency bounds: 10 µs to 5 s, in nanoseconds.
pub const LATENCY_BOUNDS: &[u64] = &[
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// Batch size bounds: powers of two up to the audit trail's default
/// largest batch (4096 records).
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

pub struct Histogram {
    unit: Unit,
    /// Upper bounds (inclusive), ascending.
    bounds: &'static [u64],
    /// `counts[i]`: observations in bucket `i` alone (not cumulative);
    /// `counts[bounds.len()]` is the `+Inf` bucket.
    counts: [AtomicU64; MAX_BOUNDS + 1],
    sum: AtomicU64,
}

/// A histogram as read at one moment, cumulative as the text format wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub unit: Unit,
    pub bounds: &'static [u64],
    /// `cumulative[i]`: observations ≤ `bounds[i]`; one more entry for
    /// `+Inf`, equal to [`Reading::count`].
    pub cumulative: Vec<u64>,
    /// Sum of the observed values, in the unit's integer form.
    pub sum: u64,
}

impl Reading {
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

impl Histogram {
    /// A histogram over `bounds` (ascending, at most [`MAX_BOUNDS`]);
    /// checked at compile time for the statics that use it.
    pub const fn new(unit: Unit, bounds: &'static [u64]) -> Histogram {
        assert!(bounds.len() <= MAX_BOUNDS, "too many histogram bounds");
        let mut i = 1;
        while i < bounds.len() {
            assert!(bounds[i - 1] < bounds[i], "histogram bounds must ascend");
            i += 1;
        }
        Histogram {
            unit,
            bounds,
            counts: [const { AtomicU64::new(0) }; MAX_BOUNDS + 1],
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value (nanoseconds for [`Unit::Seconds`]).
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records the time since `start`.
    pub fn observe_since(&self, start: Instant) {
        self.observe_duration(start.elapsed());
    }

    pub fn read(&self) -> Reading {
        let mut cumulative = Vec::with_capacity(self.bounds.len() + 1);
        let mut total = 0u64;
        for c in &self.counts[..=self.bounds.len()] {
            total = total.saturating_add(c.load(Ordering::Relaxed));
            cumulative.push(total);
        }
        Reading {
            unit: self.unit,
            bounds: self.bounds,
            cumulative,
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::new(Unit::Count, &[1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let r = h.read();
        // ≤1: 0 and 1; ≤2: +2; ≤4: +3, 4; +Inf: +5, 100.
        assert_eq!(r.cumulative, vec![2, 3, 5, 7]);
        assert_eq!(r.count(), 7);
        assert_eq!(r.sum, 115);
    }

    #[test]
    fn buckets_are_cumulative_and_inf_is_the_count() {
        let h = Histogram::new(Unit::Seconds, LATENCY_BOUNDS);
        let mut n = 0;
        for us in (0..7_000_000u64).step_by(3_331) {
            h.observe_duration(Duration::from_micros(us));
            n += 1;
        }
        let r = h.read();
        assert_eq!(r.cumulative.len(), LATENCY_BOUNDS.len() + 1);
        assert!(r.cumulative.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(r.count(), n);
        // Values above 5 s only in +Inf.
        assert!(r.cumulative[LATENCY_BOUNDS.len()] > r.cumulative[LATENCY_BOUNDS.len() - 1]);
    }

    #[test]
    fn an_empty_histogram_reads_zero_everywhere() {
        let h = Histogram::new(Unit::Count, BATCH_BOUNDS);
        let r = h.read();
        assert!(r.cumulative.iter().all(|c| *c == 0));
        assert_eq!((r.count(), r.sum), (0, 0));
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = std::sync::Arc::new(Histogram::new(Unit::Count, BATCH_BOUNDS));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        h.observe((i + t) % 5000);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.read().count(), 40_000);
    }
}
