//! Usage counting: how many gateway decisions and token requests each app made, per
//! minute, by resource and outcome — counted in memory on the request's thread and handed
//! over in batches, so a decision never waits on the store for it.
//!
//! A count's key holds only what the view knew: an app, organization and resource the
//! view has, or nothing. A request naming an api key or resource that does not exist is
//! counted without them, so a flood of random keys adds no key per request: the number of
//! keys in a minute is bounded by apps × resources × outcomes, and the counter refuses new
//! keys past [`UsageCounter::new`]'s limit (counting them without app and resource
//! instead, and saying how many it folded so).

use crate::ids::{ClientId, OrgId, RecordId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a count is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A gateway check of this protected resource (`None`: a resource the view does not
    /// have, or a check that named none).
    Resource(Option<RecordId>),
    /// A token request of this grant type (`client_credentials`, `jwt_bearer`, …: a fixed
    /// set, never the client's text).
    Grant(&'static str),
    /// An introspection request.
    Introspection,
}

/// One counted thing: a minute, who, what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    /// The minute's first second (unix seconds, a multiple of 60).
    pub minute: i64,
    pub org: Option<OrgId>,
    pub app: Option<ClientId>,
    pub subject: Subject,
    /// `"allowed"` (or `"issued"`, `"active"`), or the refusal's code: the gateway
    /// catalogue's (`"403003"`) or the OAuth error (`"invalid_client"`). A fixed set.
    pub outcome: &'static str,
}

/// The outcomes that are not refusals: a gateway check let through (`allowed`), a token
/// issued (`issued`), an introspection answered (`active` or `inactive`, both a
/// successful request). Every other outcome is a refusal's code.
pub const SUCCESSES: [&str; 4] = ["allowed", "issued", "active", "inactive"];

/// Whether `outcome` is a refusal: the gateway catalogue's code or an OAuth error.
pub fn is_refusal(outcome: &str) -> bool {
    !SUCCESSES.contains(&outcome)
}

impl UsageKey {
    /// The minute `now` (unix seconds) falls in.
    pub fn minute_of(now: i64) -> i64 {
        now.div_euclid(60) * 60
    }
}

/// A shard's counts. foldhash, not SipHash: the keys are the view's ids (never chosen
/// freely by a client: unknown ones are counted as none), and hashing them is on every
/// request's path.
type Counts = HashMap<UsageKey, u64, foldhash::fast::RandomState>;

/// Counts per key, sharded so that request threads do not contend: each thread counts
/// into its own shard (chosen once per thread), under a lock nobody else takes except the
/// flush.
pub struct UsageCounter {
    shards: Box<[Mutex<Counts>]>,
    /// Keys the shards may hold between two drains, in all.
    max_keys: usize,
    /// Keys the shards hold now, in all: added under a shard's lock when a key is
    /// inserted, taken off under it when the shard is drained. Shared, so that a counter
    /// whose busy threads use only some shards still holds `max_keys`.
    held: AtomicUsize,
    /// Counts folded into a key without app and resource because a shard was full.
    folded: AtomicU64,
}

/// Hands each thread a shard index, round-robin.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
}

impl UsageCounter {
    /// A counter of `shards` shards (at least one; the number of request threads is a
    /// good choice) holding at most `max_keys` keys between two drains in all.
    pub fn new(shards: usize, max_keys: usize) -> Self {
        let shards = shards.max(1);
        Self {
            shards: (0..shards).map(|_| Mutex::new(Counts::default())).collect(),
            max_keys: max_keys.max(1),
            held: AtomicUsize::new(0),
            folded: AtomicU64::new(0),
        }
    }

    /// Count `n` for `key`. A key already in this thread's shard costs a hash and an add;
    /// a new key past the shard's limit is counted without its app and resource.
    pub fn count(&self, key: UsageKey, n: u64) {
        let i = SHARD.with(|s| *s) % self.shards.len();
        let Ok(mut shard) = self.shards[i].lock() else {
            return;
        };
        if let Some(c) = shard.get_mut(&key) {
            *c += n;
            return;
        }
        if self.held.load(Ordering::Relaxed) < self.max_keys {
            self.held.fetch_add(1, Ordering::Relaxed);
            shard.insert(key, n);
            return;
        }
        // A key that already had no app nor resource loses nothing: not a fold.
        let bare = key.app.is_none()
            && key.org.is_none()
            && !matches!(key.subject, Subject::Resource(Some(_)));
        if !bare {
            self.folded.fetch_add(n, Ordering::Relaxed);
        }
        let folded = UsageKey {
            app: None,
            org: None,
            subject: match key.subject {
                Subject::Resource(_) => Subject::Resource(None),
                other => other,
            },
            ..key
        };
        // There is always room for the folded keys: they are few (minutes × subjects
        // without ids × outcomes), and dropping a count would make the totals lie.
        let slot = shard.entry(folded).or_insert_with(|| {
            self.held.fetch_add(1, Ordering::Relaxed);
            0
        });
        *slot += n;
    }

    /// Every count since the last drain; the counter starts over. A key counted on
    /// several threads comes once per shard that holds it (the store adds equal keys up):
    /// summing here would build one more map of every key, the largest allocation a
    /// flush would make.
    pub fn drain(&self) -> Vec<(UsageKey, u64)> {
        let mut taken: Vec<Counts> = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            if let Ok(mut s) = shard.lock() {
                let t = std::mem::take(&mut *s);
                self.held.fetch_sub(t.len(), Ordering::Relaxed);
                taken.push(t);
            }
        }
        let mut all = Vec::with_capacity(taken.iter().map(|t| t.len()).sum());
        for t in taken {
            all.extend(t);
        }
        all
    }

    /// Counts folded into a key without app and resource, since the counter was made.
    pub fn folded(&self) -> u64 {
        self.folded.load(Ordering::Relaxed)
    }

    /// Keys held now, in all shards (for the memory figures).
    pub fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(minute: i64, app: Option<&str>, outcome: &'static str) -> UsageKey {
        UsageKey {
            minute,
            org: app.map(|_| OrgId::parse("4F2A9C1B7D3E5A6B8C0D1E2F@Org").unwrap()),
            app: app.map(|a| ClientId::parse(a).unwrap()),
            subject: Subject::Resource(
                app.map(|_| RecordId::parse("res_0123456789abcdef").unwrap()),
            ),
            outcome,
        }
    }

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn counts_add_up_across_threads_and_a_drain_starts_over() {
        let c = std::sync::Arc::new(UsageCounter::new(4, 1000));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let outcome = if i % 4 == 0 { "403003" } else { "allowed" };
                        c.count(key(60, Some(if t % 2 == 0 { A } else { B }), outcome), 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // A key counted in several shards comes once per shard: add them up.
        let mut summed: std::collections::BTreeMap<(String, &str), u64> = Default::default();
        for (k, n) in c.drain() {
            *summed
                .entry((k.app.unwrap().to_string(), k.outcome))
                .or_default() += n;
        }
        let summary: Vec<_> = summed
            .iter()
            .map(|((app, outcome), n)| (app.as_str(), *outcome, *n))
            .collect();
        assert_eq!(
            summary,
            vec![
                (A, "403003", 1000),
                (A, "allowed", 3000),
                (B, "403003", 1000),
                (B, "allowed", 3000),
            ]
        );
        assert!(c.drain().is_empty());
        assert_eq!(c.folded(), 0);
    }

    #[test]
    fn past_the_key_limit_counts_are_folded_not_lost() {
        let c = UsageCounter::new(1, 2);
        c.count(key(0, Some(A), "allowed"), 1);
        c.count(key(60, Some(A), "allowed"), 1);
        // A third key does not fit: counted without app, org and resource.
        c.count(key(120, Some(B), "403003"), 5);
        c.count(key(120, Some(A), "403003"), 2);
        assert_eq!(c.folded(), 7);
        let got = c.drain();
        let total: u64 = got.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 9);
        let folded: Vec<_> = got.iter().filter(|(k, _)| k.app.is_none()).collect();
        assert_eq!(folded.len(), 1);
        assert_eq!(folded[0].0, key(120, None, "403003"));
        assert_eq!(folded[0].1, 7);
    }

    #[test]
    fn a_key_without_app_in_a_full_shard_is_counted_but_not_called_folded() {
        let c = UsageCounter::new(1, 1);
        c.count(key(0, Some(A), "allowed"), 1);
        c.count(key(0, None, "403003"), 3);
        assert_eq!(c.folded(), 0);
        let total: u64 = c.drain().iter().map(|(_, n)| n).sum();
        assert_eq!(total, 4);
    }

    #[test]
    fn the_key_limit_is_the_counters_whatever_shards_the_threads_use() {
        // Four shards, one busy thread: it may still hold every key the limit allows.
        let c = UsageCounter::new(4, 8);
        let apps: Vec<String> = (0..10).map(|i| format!("{i:032x}")).collect();
        for a in &apps {
            c.count(key(0, Some(a), "allowed"), 1);
        }
        assert_eq!(c.keys(), 8 + 1, "eight keys, and the folded one");
        assert_eq!(c.folded(), 2);
        assert_eq!(c.drain().len(), 9);
        // Drained: room again.
        for a in &apps[..8] {
            c.count(key(60, Some(a), "allowed"), 1);
        }
        assert_eq!(c.folded(), 2);
        assert_eq!(c.keys(), 8);
    }

    #[test]
    fn a_minute_starts_on_its_first_second() {
        assert_eq!(UsageKey::minute_of(119), 60);
        assert_eq!(UsageKey::minute_of(120), 120);
        assert_eq!(UsageKey::minute_of(-1), -60);
    }
}
