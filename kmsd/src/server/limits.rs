//! Bounded cost per caller: connection caps with a reserve for the
//! administrator, and per-uid token buckets for requests and audit bytes.
//! See `docs/LIMITS.md`.
//!
//! The bucket and admission logic is pure (time is an argument); the
//! server holds one [`Limits`] and each connection a [`ConnSlot`], which
//! frees its place when dropped. Root and kmsd's administrator uid are
//! exempt from the per-uid connection cap and the rate limits, and may use
//! the reserved connections nobody else can.
//!
//! Throttled requests are not audited one by one (that would let a flood
//! fill the disk at the rate it is refused): each uid's throttled requests
//! are counted and [`Limits::drain_throttled`] hands the counts over, at
//! most once per report interval, for one `RequestsThrottled` record per
//! uid.

use super::listener::ServerConfig;
use kmsd_audit::{AuditEvent, Principal};
use kmsd_client::KmsError;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second up to `burst`; a rate of 0
/// means unlimited. Time is seconds since an arbitrary origin.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: f64,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(rate: f64, burst: f64, now: f64) -> Self {
        let burst = burst.max(rate.min(1.0));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    pub fn unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    fn refill(&mut self, now: f64) {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Whether `cost` tokens are available at `now` (refilling first).
    pub fn can_take(&mut self, cost: f64, now: f64) -> bool {
        if self.unlimited() {
            return true;
        }
        self.refill(now);
        // A cost above the burst passes when the bucket is full, so a
        // large request is slow, not impossible.
        self.tokens >= cost.min(self.burst)
    }

    /// Takes `cost` tokens (may go negative: later requests wait for it).
    pub fn take(&mut self, cost: f64, now: f64) {
        if !self.unlimited() {
            self.refill(now);
            self.tokens -= cost;
        }
    }

    /// Takes `cost` if available; `false` (nothing taken) otherwise.
    pub fn try_take(&mut self, cost: f64, now: f64) -> bool {
        if self.can_take(cost, now) {
            self.take(cost, now);
            true
        } else {
            false
        }
    }

    /// Whether the bucket has refilled completely (its state is then the
    /// same as a new one's and may be forgotten).
    pub fn is_full(&mut self, now: f64) -> bool {
        self.unlimited() || {
            self.refill(now);
            self.tokens >= self.burst
        }
    }
}

/// Why a connection is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// All connections not reserved for the administrator are in use.
    Global { max: usize, reserved: usize },
    /// This uid has its maximum open.
    PerUid { uid: u32, max: usize },
}

impl Refusal {
    pub fn error(self) -> KmsError {
        KmsError::limit_exceeded(match self {
            Refusal::Global { max, reserved: 0 } => {
                format!("kmsd is serving its maximum of {max} connections; try again later")
            }
            Refusal::Global { max, reserved } => format!(
                "kmsd is serving its maximum of {} connections ({max}, of which {reserved} are \
                 reserved for the administrator); try again later",
                max - reserved
            ),
            Refusal::PerUid { uid, max } => format!(
                "uid {uid} has its maximum of {max} connections to kmsd open; close one first"
            ),
        })
    }
}

/// Connection admission: `total` open in all, `of_uid` open by this uid.
/// The administrator may use every connection; others leave `reserved`
/// free and stay under `per_uid` each.
pub fn admit(
    total: usize,
    of_uid: usize,
    admin: bool,
    max: usize,
    reserved: usize,
    per_uid: usize,
    uid: u32,
) -> Result<(), Refusal> {
    if admin {
        return if total < max {
            Ok(())
        } else {
            Err(Refusal::Global { max, reserved: 0 })
        };
    }
    let reserved = reserved.min(max);
    if total >= max - reserved {
        return Err(Refusal::Global { max, reserved });
    }
    if of_uid >= per_uid {
        return Err(Refusal::PerUid { uid, max: per_uid });
    }
    Ok(())
}

/// Audit bytes a request is charged before it runs: its encoded frame
/// length, capped at the largest record the audit bound lets through
/// (parameters 16 KiB + error message 1 KiB), plus the fixed part of a
/// record (time, ids, principal, resources).
pub fn audit_cost(frame_len: usize) -> f64 {
    const MAX_BOUNDED: usize = 16 * 1024 + 1024 + 512;
    const RECORD_OVERHEAD: usize = 512;
    (frame_len.min(MAX_BOUNDED) + RECORD_OVERHEAD) as f64
}

/// Throttled requests of one uid since the last report.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub count: u64,
    pub by_operation: BTreeMap<&'static str, u64>,
    pub by_limit: BTreeMap<&'static str, u64>,
    /// The caller of the first throttled request.
    pub principal: Option<Principal>,
}

struct Buckets {
    requests: TokenBucket,
    audit_bytes: TokenBucket,
    tally: Tally,
}

/// The limits state of one uid.
struct UidState {
    uid: u32,
    admin: bool,
    connections: usize,
    buckets: Arc<Mutex<Buckets>>,
}

struct Inner {
    total: usize,
    uids: HashMap<u32, UidState>,
}

/// The server's limits: connection counts and per-uid buckets.
pub struct Limits {
    config: ServerConfig,
    admin_uid: u32,
    origin: Instant,
    inner: Mutex<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Entries kept for uids without connections before refilled ones are
/// forgotten.
const PRUNE_ABOVE: usize = 256;

impl Limits {
    pub fn new(config: &ServerConfig, admin_uid: u32) -> Arc<Limits> {
        Arc::new(Limits {
            config: config.clone(),
            admin_uid,
            origin: Instant::now(),
            inner: Mutex::new(Inner {
                total: 0,
                uids: HashMap::new(),
            }),
        })
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    pub fn is_admin(&self, uid: u32) -> bool {
        uid == 0 || uid == self.admin_uid
    }

    /// A place for a new connection of `uid`, or why there is none.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Result<ConnSlot, Refusal> {
        let now = self.now();
        let c = &self.config;
        let admin = self.is_admin(uid);
        let mut inner = lock(&self.inner);
        let of_uid = inner.uids.get(&uid).map_or(0, |u| u.connections);
        admit(
            inner.total,
            of_uid,
            admin,
            c.max_connections,
            c.admin_reserved_connections,
            c.max_connections_per_uid,
            uid,
        )?;
        inner.total += 1;
        let st = self.uid_state(&mut inner, uid, now);
        st.connections += 1;
        Ok(ConnSlot {
            limits: self.clone(),
            uid,
            admin: st.admin,
            buckets: st.buckets.clone(),
        })
    }

    /// The state of `uid`, made with full buckets if it has none (and,
    /// past [`PRUNE_ABOVE`] entries, refilled idle ones forgotten first).
    fn uid_state<'a>(&self, inner: &'a mut Inner, uid: u32, now: f64) -> &'a mut UidState {
        if inner.uids.len() > PRUNE_ABOVE && !inner.uids.contains_key(&uid) {
            inner.uids.retain(|_, u| {
                if u.connections > 0 {
                    return true;
                }
                let mut b = lock(&u.buckets);
                !(b.requests.is_full(now) && b.audit_bytes.is_full(now) && b.tally.count == 0)
            });
        }
        let c = &self.config;
        let admin = self.is_admin(uid);
        inner.uids.entry(uid).or_insert_with(|| UidState {
            uid,
            admin,
            connections: 0,
            buckets: Arc::new(Mutex::new(Buckets {
                requests: TokenBucket::new(c.requests_per_sec as f64, c.request_burst as f64, now),
                audit_bytes: TokenBucket::new(
                    c.audit_bytes_per_sec as f64,
                    c.audit_burst_bytes as f64,
                    now,
                ),
                tally: Tally::default(),
            })),
        })
    }

    /// Charges one request of `uid` that holds no socket connection (an
    /// AWS-endpoint request: its uid is the access key's) to the same
    /// buckets as the uid's socket requests.
    pub fn check_request(
        &self,
        uid: u32,
        operation: &'static str,
        frame_len: usize,
        principal: &Principal,
    ) -> Result<(), KmsError> {
        if self.is_admin(uid) {
            return Ok(());
        }
        let now = self.now();
        let buckets = {
            let mut inner = lock(&self.inner);
            self.uid_state(&mut inner, uid, now).buckets.clone()
        };
        self.charge(uid, &buckets, now, operation, frame_len, principal)
    }

    /// Takes one request's tokens from `buckets`, or counts it as
    /// throttled and says why.
    fn charge(
        &self,
        uid: u32,
        buckets: &Mutex<Buckets>,
        now: f64,
        operation: &'static str,
        frame_len: usize,
        principal: &Principal,
    ) -> Result<(), KmsError> {
        let cost = audit_cost(frame_len);
        let mut b = lock(buckets);
        let which = if !b.requests.can_take(1.0, now) {
            "requests"
        } else if !b.audit_bytes.can_take(cost, now) {
            "auditBytes"
        } else {
            b.requests.take(1.0, now);
            b.audit_bytes.take(cost, now);
            return Ok(());
        };
        let t = &mut b.tally;
        if t.count == 0 {
            tracing::warn!(uid, limit = which, "throttling requests");
        }
        t.count += 1;
        *t.by_operation.entry(operation).or_default() += 1;
        *t.by_limit.entry(which).or_default() += 1;
        t.principal.get_or_insert_with(|| principal.clone());
        let c = &self.config;
        Err(KmsError::throttling(match which {
            "requests" => format!(
                "Rate exceeded: uid {uid} is over its {} requests/s; retry later",
                c.requests_per_sec
            ),
            _ => format!(
                "Rate exceeded: uid {uid} is over its {} audit bytes/s; retry later",
                c.audit_bytes_per_sec
            ),
        }))
    }

    fn release(&self, uid: u32) {
        let mut inner = lock(&self.inner);
        inner.total = inner.total.saturating_sub(1);
        if let Some(u) = inner.uids.get_mut(&uid) {
            u.connections = u.connections.saturating_sub(1);
        }
    }

    /// Open connections in all and of `uid`.
    pub fn connections(&self, uid: u32) -> (usize, usize) {
        let inner = lock(&self.inner);
        (
            inner.total,
            inner.uids.get(&uid).map_or(0, |u| u.connections),
        )
    }

    /// Takes every uid's throttled-request tally (those with a count).
    pub fn drain_throttled(&self) -> Vec<(u32, Tally)> {
        let inner = lock(&self.inner);
        let mut out = Vec::new();
        for u in inner.uids.values() {
            let mut b = lock(&u.buckets);
            if b.tally.count > 0 {
                out.push((u.uid, std::mem::take(&mut b.tally)));
            }
        }
        out
    }
}

/// One connection's place; frees it when dropped.
pub struct ConnSlot {
    limits: Arc<Limits>,
    uid: u32,
    admin: bool,
    buckets: Arc<Mutex<Buckets>>,
}

impl ConnSlot {
    /// Charges one request (`operation`, `frame_len` bytes on the wire) to
    /// the uid's buckets; `ThrottlingException` when either is empty (the
    /// request is then counted for the next throttle report, not run).
    pub fn check(
        &self,
        operation: &'static str,
        frame_len: usize,
        principal: &Principal,
    ) -> Result<(), KmsError> {
        if self.admin {
            return Ok(());
        }
        let now = self.limits.now();
        self.limits.charge(
            self.uid,
            &self.buckets,
            now,
            operation,
            frame_len,
            principal,
        )
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.limits.release(self.uid);
    }
}

/// The one audit record for a uid's throttled requests of an interval.
pub fn throttle_event(uid: u32, tally: &Tally, interval: Duration, seq: u64) -> AuditEvent {
    let principal = tally.principal.clone().unwrap_or(Principal {
        uid,
        ..Principal::default()
    });
    AuditEvent::new(
        "RequestsThrottled",
        format!("throttle-{uid}-{seq}"),
        principal,
    )
    .with_parameters(json!({
        "ThrottledRequests": tally.count,
        "Operations": tally.by_operation,
        "Limits": tally.by_limit,
        "IntervalSeconds": interval.as_secs(),
    }))
    .with_kms_error(&throttle_error(uid, tally))
}

/// The error a `RequestsThrottled` record carries.
pub fn throttle_error(uid: u32, tally: &Tally) -> KmsError {
    KmsError::throttling(format!("{} requests of uid {uid} throttled", tally.count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(10.0, 20.0, 0.0);
        for _ in 0..20 {
            assert!(b.try_take(1.0, 0.0));
        }
        assert!(!b.try_take(1.0, 0.0));
        assert!(!b.try_take(1.0, 0.05));
        assert!(b.try_take(1.0, 0.1));
        assert!(!b.try_take(1.0, 0.1));
        // A long pause refills to the burst, not beyond.
        assert!(b.is_full(100.0));
        for _ in 0..20 {
            assert!(b.try_take(1.0, 100.0));
        }
        assert!(!b.try_take(1.0, 100.0));
        // Time going backwards changes nothing.
        assert!(!b.try_take(1.0, 50.0));
    }

    #[test]
    fn a_cost_above_the_burst_passes_only_from_a_full_bucket_and_is_paid_back() {
        let mut b = TokenBucket::new(1000.0, 1000.0, 0.0);
        assert!(b.try_take(5000.0, 0.0));
        assert!(!b.try_take(1.0, 0.0));
        assert!(!b.try_take(1.0, 3.9));
        assert!(b.try_take(1.0, 4.1));
    }

    #[test]
    fn rate_zero_is_unlimited() {
        let mut b = TokenBucket::new(0.0, 0.0, 0.0);
        for _ in 0..100_000 {
            assert!(b.try_take(1e9, 0.0));
        }
        assert!(b.is_full(0.0));
    }

    #[test]
    fn admission_keeps_a_reserve_and_a_per_uid_cap() {
        // max 10, 2 reserved, 3 per uid.
        let a = |total, of_uid, admin| admit(total, of_uid, admin, 10, 2, 3, 1000);
        assert_eq!(a(0, 0, false), Ok(()));
        assert_eq!(a(5, 2, false), Ok(()));
        assert_eq!(a(5, 3, false), Err(Refusal::PerUid { uid: 1000, max: 3 }));
        assert_eq!(
            a(8, 0, false),
            Err(Refusal::Global {
                max: 10,
                reserved: 2
            })
        );
        // The administrator has no per-uid cap and may use the reserve.
        assert_eq!(a(8, 50, true), Ok(()));
        assert_eq!(a(9, 50, true), Ok(()));
        assert!(a(10, 50, true).is_err());
        // A reserve larger than the maximum leaves nothing to others.
        assert!(admit(0, 0, false, 4, 10, 3, 1).is_err());
        assert!(
            Refusal::PerUid { uid: 7, max: 3 }
                .error()
                .message
                .contains("uid 7")
        );
    }

    fn config(rate: u32, burst: u32) -> ServerConfig {
        ServerConfig {
            max_connections: 8,
            admin_reserved_connections: 2,
            max_connections_per_uid: 3,
            requests_per_sec: rate,
            request_burst: burst,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn slots_count_connections_and_free_them_on_drop() {
        let l = Limits::new(&config(0, 0), 500);
        let s: Vec<_> = (0..3).map(|_| l.admit(1000).expect("under cap")).collect();
        assert_eq!(
            l.admit(1000).err(),
            Some(Refusal::PerUid { uid: 1000, max: 3 })
        );
        let o: Vec<_> = (0..3).map(|_| l.admit(1001).expect("other uid")).collect();
        assert_eq!(l.connections(1000), (6, 3));
        // 6 of 8 in use, 2 reserved: nobody but the administrator gets in.
        assert!(matches!(l.admit(1002), Err(Refusal::Global { .. })));
        let r1 = l.admit(0).expect("root uses the reserve");
        let r2 = l.admit(500).expect("the admin uid too");
        assert!(l.admit(0).is_err());
        drop((r1, r2));
        drop(s);
        assert_eq!(l.connections(1000), (3, 0));
        assert!(l.admit(1000).is_ok());
        drop(o);
    }

    #[test]
    fn requests_over_the_rate_are_throttled_counted_and_reported_once() {
        let l = Limits::new(&config(100, 5), 500);
        let s = l.admit(1000).unwrap();
        let p = Principal {
            uid: 1000,
            ..Default::default()
        };
        let mut throttled = 0;
        for _ in 0..50 {
            match s.check("Encrypt", 100, &p) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.kind, kmsd_client::ErrorKind::ThrottlingException);
                    throttled += 1;
                }
            }
        }
        assert!(throttled >= 40, "{throttled}");
        // A second connection of the same uid shares the bucket.
        let s2 = l.admit(1000).unwrap();
        assert!(s2.check("Decrypt", 100, &p).is_err());
        let root = l.admit(0).unwrap();
        for _ in 0..1000 {
            root.check("Encrypt", 100, &p).expect("root is exempt");
        }
        let r = l.drain_throttled();
        assert_eq!(r.len(), 1);
        let (uid, t) = &r[0];
        assert_eq!((*uid, t.count), (1000, throttled + 1));
        assert_eq!(t.by_operation["Decrypt"], 1);
        assert!(l.drain_throttled().is_empty());
        let ev = throttle_event(*uid, t, Duration::from_secs(10), 1);
        assert_eq!(ev.event_name, "RequestsThrottled");
        assert_eq!(ev.request_parameters["ThrottledRequests"], throttled + 1);
        assert_eq!(ev.error.unwrap().code, "ThrottlingException");
    }

    #[test]
    fn reconnecting_does_not_refill_the_bucket() {
        let l = Limits::new(&config(1, 2), 500);
        let p = Principal::default();
        for _ in 0..2 {
            l.admit(1000).unwrap().check("Encrypt", 10, &p).unwrap();
        }
        assert!(l.admit(1000).unwrap().check("Encrypt", 10, &p).is_err());
    }

    #[test]
    fn audit_bytes_are_charged_by_frame_length_capped_at_a_bounded_record() {
        assert_eq!(audit_cost(100), 612.0);
        assert_eq!(audit_cost(250_000), audit_cost(20_000));
        let l = Limits::new(
            &ServerConfig {
                audit_bytes_per_sec: 100_000,
                audit_burst_bytes: 100_000,
                ..config(0, 0)
            },
            500,
        );
        let s = l.admit(1000).unwrap();
        let p = Principal::default();
        let ok = (0..40)
            .filter(|_| s.check("Encrypt", 240_000, &p).is_ok())
            .count();
        assert!((4..=6).contains(&ok), "{ok}");
        assert_eq!(
            l.drain_throttled()[0].1.by_limit["auditBytes"],
            40 - ok as u64
        );
    }
}
