//! Rate limits around the gateway decision.
//!
//! **Failure limits** count failed authentications per client address and per (app,
//! client address) pair — never per app alone: client ids are public, so a limit per app
//! would let anyone lock a partner out by failing on purpose. Over the limit, every request
//! from that address (or pair) is refused until its window has passed.
//!
//! **Quotas** cap an app's allowed requests per second or minute.
//!
//! Both are fixed windows held in memory on each node, keyed without allocation on the hot
//! path, with time passed in (`now`, unix seconds) like everything else in core. They are
//! small, bounded maps behind one mutex each: a lookup costs tens of nanoseconds, next to
//! the microsecond the decision takes.

use crate::model::Quota;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;

/// A fixed window: when it began and how many events it has seen.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

/// Entries kept at most per map; past it, windows that have ended are dropped, and if
/// that is not enough the map starts afresh (an attacker with many addresses can then only
/// reset counts, not grow memory).
const MAX_ENTRIES: usize = 100_000;

/// Failed-authentication counters per address and per (app, address).
pub struct FailureLimiter {
    /// Failures allowed within one window; 0 disables the limit.
    limit: u32,
    /// Window length in seconds.
    window: i64,
    /// Hashes app ids for the pair key, so a lookup needs no allocation. Keyed per
    /// process, so nobody can aim collisions.
    hasher: RandomState,
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    by_addr: HashMap<IpAddr, Window>,
    by_pair: HashMap<(IpAddr, u64), Window>,
}

impl FailureLimiter {
    /// `limit` failures per `window_seconds`; a `limit` of 0 turns the limits off.
    pub fn new(limit: u32, window_seconds: i64) -> Self {
        Self {
            limit,
            window: window_seconds.max(1),
            hasher: RandomState::new(),
            inner: Mutex::new(Counters::default()),
        }
    }

    fn pair(&self, addr: IpAddr, app: &str) -> (IpAddr, u64) {
        (addr, self.hasher.hash_one(app))
    }

    /// `Some(seconds until the window ends)` when `addr`, or `addr` with the app the
    /// request names, is over the limit.
    pub fn blocked(&self, addr: IpAddr, app: Option<&str>, now: i64) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let c = self.inner.lock().ok()?;
        let over = |w: Option<&Window>| {
            w.filter(|w| w.count >= self.limit && now < w.start + self.window)
                .map(|w| (w.start + self.window - now) as u64)
        };
        over(c.by_addr.get(&addr))
            .into_iter()
            .chain(app.and_then(|a| over(c.by_pair.get(&self.pair(addr, a)))))
            .max()
    }

    /// Count one failed authentication from `addr`, naming `app` if it named one.
    pub fn record(&self, addr: IpAddr, app: Option<&str>, now: i64) {
        if self.limit == 0 {
            return;
        }
        let pair = app.map(|a| self.pair(addr, a));
        let Ok(mut c) = self.inner.lock() else {
            return;
        };
        let window = self.window;
        bump(&mut c.by_addr, addr, now, window);
        if let Some(p) = pair {
            bump(&mut c.by_pair, p, now, window);
        }
    }

    /// Count one attempt from `addr` *before* it is checked, unless `addr` is over the
    /// limit already: `Err(seconds until the window ends)` then. Checking and counting
    /// under one lock is what makes the limit hold for attempts sent at once (each would
    /// pass a separate "blocked?" test before the first failure was counted). An attempt
    /// that turns out to succeed is given back with [`FailureLimiter::forgive`].
    pub fn try_record(&self, addr: IpAddr, now: i64) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let Ok(mut c) = self.inner.lock() else {
            return Ok(());
        };
        if let Some(w) = c.by_addr.get(&addr)
            && w.count >= self.limit
            && now < w.start + self.window
        {
            return Err((w.start + self.window - now) as u64);
        }
        bump(&mut c.by_addr, addr, now, self.window);
        Ok(())
    }

    /// Give back an attempt counted by [`FailureLimiter::try_record`] that succeeded.
    pub fn forgive(&self, addr: IpAddr, now: i64) {
        if let Ok(mut c) = self.inner.lock()
            && let Some(w) = c.by_addr.get_mut(&addr)
            && now < w.start + self.window
        {
            w.count = w.count.saturating_sub(1);
        }
    }

    /// Addresses and pairs currently counted (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .map(|c| c.by_addr.len() + c.by_pair.len())
            .unwrap_or(0)
    }
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, key: K, now: i64, window: i64) {
    if map.len() >= MAX_ENTRIES && !map.contains_key(&key) {
        map.retain(|_, w| now < w.start + window);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
    let w = map.entry(key).or_insert(Window {
        start: now,
        count: 0,
    });
    if now >= w.start + window {
        *w = Window {
            start: now,
            count: 0,
        };
    }
    w.count = w.count.saturating_add(1);
}

/// Failed password sign-ins per account (login lockout): past `limit` failures within a
/// window, the account's sign-ins are refused — even with the right password — until the
/// window has passed. Beside the per-address limit, this stops a guesser who spreads over
/// many addresses; the window is short, so that someone failing on purpose can only delay
/// the account's owner, never lock them out for good. Accounts are keyed by a per-process
/// keyed hash of their normalised name.
pub struct AccountLockout {
    limit: u32,
    window: i64,
    hasher: RandomState,
    inner: Mutex<HashMap<u64, Window>>,
}

impl AccountLockout {
    /// `limit` failures per `window_seconds`; a `limit` of 0 turns the lockout off.
    pub fn new(limit: u32, window_seconds: i64) -> Self {
        Self {
            limit,
            window: window_seconds.max(1),
            hasher: RandomState::new(),
            inner: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds until sign-ins are accepted again)` when `account` is locked.
    pub fn blocked(&self, account: &str, now: i64) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        let key = self.hasher.hash_one(account);
        let map = self.inner.lock().ok()?;
        map.get(&key)
            .filter(|w| w.count >= self.limit && now < w.start + self.window)
            .map(|w| (w.start + self.window - now) as u64)
    }

    /// Count one failed sign-in of `account`.
    pub fn record(&self, account: &str, now: i64) {
        if self.limit == 0 {
            return;
        }
        let key = self.hasher.hash_one(account);
        if let Ok(mut map) = self.inner.lock() {
            bump(&mut map, key, now, self.window);
        }
    }

    /// Count one sign-in of `account` *before* its password is checked, unless the
    /// account is locked already: `Err(seconds until it is unlocked)` then. Checking and
    /// counting under one lock makes the lockout hold for guesses sent at once; a sign-in
    /// that succeeds starts the count afresh ([`AccountLockout::clear`]).
    pub fn try_record(&self, account: &str, now: i64) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let key = self.hasher.hash_one(account);
        let Ok(mut map) = self.inner.lock() else {
            return Ok(());
        };
        if let Some(w) = map.get(&key)
            && w.count >= self.limit
            && now < w.start + self.window
        {
            return Err((w.start + self.window - now) as u64);
        }
        bump(&mut map, key, now, self.window);
        Ok(())
    }

    /// A successful sign-in starts the count afresh.
    pub fn clear(&self, account: &str) {
        let key = self.hasher.hash_one(account);
        if let Ok(mut map) = self.inner.lock() {
            map.remove(&key);
        }
    }
}

/// Per-app request quotas: fixed windows aligned to the quota's period.
#[derive(Default)]
pub struct QuotaLimiter {
    inner: Mutex<HashMap<Box<str>, Window>>,
}

impl QuotaLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one request of `client_id` against `quota`; `Err(seconds until the next
    /// window)` when the window is already full.
    pub fn admit(&self, client_id: &str, quota: &Quota, now: i64) -> Result<(), u64> {
        let period = quota.per.seconds();
        let start = now - now.rem_euclid(period);
        let Ok(mut map) = self.inner.lock() else {
            return Ok(());
        };
        if let Some(w) = map.get_mut(client_id) {
            if w.start != start {
                *w = Window { start, count: 0 };
            }
            if w.count >= quota.requests {
                return Err((start + period - now) as u64);
            }
            w.count += 1;
            return Ok(());
        }
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, w| w.start == start);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        if quota.requests == 0 {
            return Err((start + period - now) as u64);
        }
        map.insert(client_id.into(), Window { start, count: 1 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QuotaPeriod;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked_and_successes_given_back() {
        let l = FailureLimiter::new(2, 60);
        let a = ip("192.0.2.7");
        assert_eq!(l.try_record(a, 100), Ok(()));
        l.forgive(a, 100);
        assert_eq!(l.try_record(a, 100), Ok(()));
        assert_eq!(l.try_record(a, 100), Ok(()));
        assert_eq!(l.try_record(a, 110), Err(50));
        assert_eq!(l.blocked(a, None, 110), Some(50));
        assert_eq!(l.try_record(a, 160), Ok(()));
        let lock = AccountLockout::new(1, 60);
        assert_eq!(lock.try_record("x@example.com", 100), Ok(()));
        assert_eq!(lock.try_record("x@example.com", 100), Err(60));
        lock.clear("x@example.com");
        assert_eq!(lock.try_record("x@example.com", 100), Ok(()));
    }

    #[test]
    fn an_address_over_the_limit_is_blocked_until_the_window_passes() {
        let l = FailureLimiter::new(3, 60);
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.blocked(a, None, 100), None);
            l.record(a, None, 100);
        }
        assert_eq!(l.blocked(a, None, 100), Some(60));
        assert_eq!(l.blocked(a, Some("anyapp"), 130), Some(30));
        assert_eq!(l.blocked(ip("192.0.2.2"), None, 130), None, "others pass");
        assert_eq!(l.blocked(a, None, 160), None, "the window has passed");
        l.record(a, None, 160);
        assert_eq!(
            l.blocked(a, None, 160),
            None,
            "a fresh window counts from one"
        );
    }

    #[test]
    fn a_pair_is_limited_without_locking_the_app_out_for_other_addresses() {
        let l = FailureLimiter::new(2, 60);
        let (a, b) = (ip("198.51.100.7"), ip("2001:db8::1"));
        // Failures from `a` spread over two apps: each pair stays under the limit, the
        // address alone reaches it.
        l.record(a, Some("app1"), 0);
        assert_eq!(l.blocked(a, Some("app1"), 0), None);
        l.record(a, Some("app2"), 0);
        assert_eq!(l.blocked(a, Some("app3"), 0), Some(60), "address limit");
        // The app itself is not locked out: another address naming it passes.
        assert_eq!(l.blocked(b, Some("app1"), 0), None);

        let l = FailureLimiter::new(2, 60);
        l.record(a, Some("app1"), 0);
        l.record(b, Some("app1"), 0);
        assert_eq!(l.blocked(a, Some("app1"), 0), None, "one failure per pair");
        l.record(a, Some("app1"), 1);
        assert_eq!(l.blocked(a, Some("app1"), 1), Some(59));
        assert_eq!(l.blocked(b, Some("app1"), 1), None);
    }

    #[test]
    fn a_zero_limit_is_off() {
        let l = FailureLimiter::new(0, 60);
        let a = ip("192.0.2.1");
        for _ in 0..10 {
            l.record(a, None, 0);
        }
        assert_eq!(l.blocked(a, None, 0), None);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn the_maps_stay_bounded() {
        let l = FailureLimiter::new(5, 60);
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            l.record(IpAddr::from(i.to_be_bytes()), None, 0);
        }
        assert!(l.tracked() <= MAX_ENTRIES, "{}", l.tracked());
    }

    #[test]
    fn a_quota_admits_its_requests_per_window_and_says_when_to_retry() {
        let q = QuotaLimiter::new();
        let quota = Quota {
            requests: 2,
            per: QuotaPeriod::Minute,
        };
        assert_eq!(q.admit("a", &quota, 600), Ok(()));
        assert_eq!(q.admit("a", &quota, 610), Ok(()));
        assert_eq!(q.admit("a", &quota, 615), Err(45));
        assert_eq!(q.admit("b", &quota, 615), Ok(()), "per app");
        assert_eq!(q.admit("a", &quota, 660), Ok(()), "the next minute");
        let per_second = Quota {
            requests: 1,
            per: QuotaPeriod::Second,
        };
        assert_eq!(q.admit("c", &per_second, 5), Ok(()));
        assert_eq!(q.admit("c", &per_second, 5), Err(1));
        assert_eq!(q.admit("c", &per_second, 6), Ok(()));
        let none = Quota {
            requests: 0,
            per: QuotaPeriod::Second,
        };
        assert_eq!(q.admit("d", &none, 5), Err(1));
    }

    #[test]
    fn an_account_locks_after_its_limit_until_the_window_passes() {
        let l = AccountLockout::new(3, 900);
        for _ in 0..3 {
            assert_eq!(l.blocked("a@x", 100), None);
            l.record("a@x", 100);
        }
        assert_eq!(l.blocked("a@x", 100), Some(900));
        assert_eq!(l.blocked("a@x", 999), Some(1));
        assert_eq!(
            l.blocked("b@x", 100),
            None,
            "other accounts are not affected"
        );
        assert_eq!(l.blocked("a@x", 1000), None, "the window has passed");
        l.record("a@x", 1000);
        assert_eq!(l.blocked("a@x", 1000), None, "a new window starts at one");
        l.clear("a@x");
        assert_eq!(l.blocked("a@x", 1000), None);
        let off = AccountLockout::new(0, 900);
        for _ in 0..10 {
            off.record("a@x", 1);
        }
        assert_eq!(off.blocked("a@x", 1), None);
    }
}
