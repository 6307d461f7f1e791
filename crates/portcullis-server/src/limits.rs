//! Failed authentications per client address and per (app, address): counted on this
//! node, and with `--redis-url` in the shared store so that every node sees them.

use crate::state::AppState;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Whether `ip` (or `ip` with `app`) is over the failure limit: in the shared store when
/// there is one (counted by every node), else on this node. A shared store that does not
/// answer fails open to this node's own counts: the limit slows guessing, it does not
/// authenticate, and refusing everyone while Redis is away would be an outage.
///
/// The shared store's answer is remembered for [`SHARED_VERDICT_FRESH`] (see
/// [`SharedVerdicts`]), so a client making many requests costs one Redis read a second on
/// each node, not one per request.
pub async fn blocked(state: &AppState, ip: IpAddr, app: Option<&str>, now: i64) -> Option<u64> {
    let limit = state.gateway.failure_limit;
    if let Some(shared) = &state.shared
        && limit > 0
    {
        if let Some(known) = state.shared_verdicts.get(ip, app, Instant::now()) {
            return known;
        }
        match shared.failures(&ip.to_string(), app, limit).await {
            Ok(blocked) => {
                state.shared_verdicts.put(ip, app, blocked, Instant::now());
                return blocked;
            }
            Err(e) => {
                tracing::debug!(error = %e, "shared failure limits unreachable; using this node's")
            }
        }
    }
    state.failures.blocked(ip, app, now)
}

/// How long a node trusts the shared store's failure-limit answer for one address (and
/// app): another node's failures reach this node's decisions at most this late.
pub const SHARED_VERDICT_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The shared store's recent failure-limit answers on this node, per address and app. A
/// failure this node records forgets its address's answers, so its own next check asks
/// again; failures on other nodes show up within [`SHARED_VERDICT_FRESH`].
#[derive(Debug, Default)]
pub struct SharedVerdicts(std::sync::Mutex<HashMap<IpAddr, Vec<Verdict>>>);

/// One remembered answer: the app it was about (`None`: the address alone), when it was
/// given, and `Some(retry_after)` when the limit was reached.
type Verdict = (Option<Box<str>>, Instant, Option<u64>);

impl SharedVerdicts {
    /// Addresses remembered at most; past it the memory starts over.
    const CAPACITY: usize = 100_000;

    /// The remembered answer (`Some(retry_after)` when blocked), if still fresh.
    fn get(&self, ip: IpAddr, app: Option<&str>, now: Instant) -> Option<Option<u64>> {
        let map = self.0.lock().ok()?;
        let (_, at, verdict) = map.get(&ip)?.iter().find(|(a, ..)| a.as_deref() == app)?;
        let age = now.saturating_duration_since(*at);
        (age < SHARED_VERDICT_FRESH)
            .then(|| verdict.map(|retry| retry.saturating_sub(age.as_secs()).max(1)))
    }

    fn put(&self, ip: IpAddr, app: Option<&str>, verdict: Option<u64>, now: Instant) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= Self::CAPACITY && !map.contains_key(&ip) {
            map.clear();
        }
        let entries = map.entry(ip).or_default();
        entries.retain(|(a, ..)| a.as_deref() != app);
        entries.push((app.map(Box::from), now, verdict));
    }

    /// Forget every answer about `ip` (it has just failed again).
    fn forget(&self, ip: IpAddr) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&ip);
        }
    }
}

/// Count a failed authentication on this node and, when there is one, in the shared store.
pub async fn record_failure(state: &AppState, ip: IpAddr, app: Option<&str>, now: i64) {
    state.failures.record(ip, app, now);
    state.shared_verdicts.forget(ip);
    if let Some(shared) = &state.shared
        && state.gateway.failure_limit > 0
        && let Err(e) = shared
            .record_failure(&ip.to_string(), app, FAILURE_WINDOW)
            .await
    {
        tracing::debug!(error = %e, "recording a failure in the shared store failed");
    }
}

/// The failure limits' window, seconds.
pub const FAILURE_WINDOW: i64 = 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_verdicts_are_kept_a_second_per_address_and_app_and_forgotten_on_failure() {
        let v = SharedVerdicts::default();
        let (ip, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(v.get(ip, None, t0), None, "nothing known yet");
        v.put(ip, None, None, t0);
        v.put(ip, Some("app"), Some(30), t0);
        assert_eq!(v.get(ip, None, t0), Some(None), "known clean");
        assert_eq!(v.get(ip, Some("app"), t0), Some(Some(30)), "known blocked");
        assert_eq!(v.get(ip, Some("other-app"), t0), None);
        assert_eq!(v.get(other, None, t0), None);
        // Retry-After counts down with the answer's age; the answer expires after a second.
        let later = t0 + std::time::Duration::from_millis(999);
        assert_eq!(v.get(ip, Some("app"), later), Some(Some(30)));
        assert_eq!(v.get(ip, None, t0 + SHARED_VERDICT_FRESH), None, "stale");
        // A new answer replaces the old one; a failure forgets the whole address.
        v.put(ip, None, Some(5), t0);
        assert_eq!(v.get(ip, None, t0), Some(Some(5)));
        v.forget(ip);
        assert_eq!(v.get(ip, None, t0), None);
        assert_eq!(v.get(ip, Some("app"), t0), None);
    }
}
