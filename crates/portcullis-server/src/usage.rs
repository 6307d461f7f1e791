//! Usage analytics: every gateway answer, token request and introspection is counted per
//! app, minute, subject (the resource, the grant, introspection) and outcome, in memory on
//! the request's thread ([`UsageCounter`]); a task per node writes the counts to the
//! store every few seconds ([`Usage::flush`]), where the nodes' counts add up per minute
//! and per hour, and prunes minute counts past a short retention window (48 h by default)
//! and hour counts past a long one (90 days). The request path never touches the store.
//!
//! A count names only what the view has: an api key or resource the view does not know
//! is counted without it, so made-up ids make no new keys. `/metrics` carries none of
//! this per app on purpose: a label per app would grow Prometheus's series with the
//! number of apps; the admin API reads the counts instead
//! (`/admin/v1/orgs/{org}/usage`, `/admin/v1/apps/{client_id}/usage`).

use crate::config::UsageConfig;
use crate::metrics::Metrics;
use crate::state::AppState;
use portcullis_core::model::{App, Resource};
use portcullis_core::usage::{Subject, UsageCounter, UsageKey};
use portcullis_store::{Store, UsageResolution};
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's usage counter and its settings.
pub struct Usage {
    /// `None` when usage analytics are off (`--usage-analytics false`).
    counter: Option<UsageCounter>,
    pub config: UsageConfig,
    /// One flush at a time: a flush that is asked for (the final one, a test's) waits for
    /// one in flight, so once it returns every count made before the call is stored.
    flushing: tokio::sync::Mutex<()>,
    /// The counter's folded total at the last flush, to add only what is new to the
    /// metric.
    folded_seen: AtomicU64,
}

impl Usage {
    pub fn new(config: UsageConfig) -> Self {
        // Request threads (tokio's workers, one per core) pick shards round-robin; twice
        // as many shards as cores leaves room for blocking threads that count too.
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Self {
            counter: config
                .enabled
                .then(|| UsageCounter::new(cores * 2, config.max_keys)),
            config,
            flushing: tokio::sync::Mutex::new(()),
            folded_seen: AtomicU64::new(0),
        }
    }

    /// Whether requests are counted.
    pub fn enabled(&self) -> bool {
        self.counter.is_some()
    }

    /// Count one request of `app` (or none the view knows) about `subject`; `resource` is
    /// the gateway check's, for its organization when there is no app.
    fn count(
        &self,
        now: i64,
        app: Option<&App>,
        resource: Option<&Resource>,
        subject: Subject,
        outcome: &'static str,
    ) {
        let Some(counter) = &self.counter else {
            return;
        };
        counter.count(
            UsageKey {
                minute: UsageKey::minute_of(now),
                // The app's organization; without an app, the resource's, so an org sees
                // the calls to its resources that named no app it has.
                org: app
                    .map(|a| a.org_id.clone())
                    .or_else(|| resource.map(|r| r.org_id.clone())),
                app: app.map(|a| a.client_id.clone()),
                subject,
                outcome,
            },
            1,
        );
    }

    /// Count a gateway answer about `resource` (one the view has, or none): `"allowed"`
    /// or the catalogue's code.
    pub fn gateway(
        &self,
        now: i64,
        app: Option<&App>,
        resource: Option<&Resource>,
        outcome: &'static str,
    ) {
        let subject = Subject::Resource(resource.map(|r| r.id.clone()));
        self.count(now, app, resource, subject, outcome);
    }

    /// Count a token request of `grant` (a fixed label): `"issued"` or the OAuth error.
    pub fn grant(&self, now: i64, app: Option<&App>, grant: &'static str, outcome: &'static str) {
        self.count(now, app, None, Subject::Grant(grant), outcome);
    }

    /// Count an introspection: `"active"`, `"inactive"` or the OAuth error.
    pub fn introspection(&self, now: i64, app: Option<&App>, outcome: &'static str) {
        self.count(now, app, None, Subject::Introspection, outcome);
    }

    /// Write every count so far to `store`, adding to what the store has. When the store
    /// refuses, the counts go back into the counter for the next flush (a warning and
    /// `portcullis_usage_flush_failures_total` say so). Returns whether the counts were
    /// stored.
    pub async fn flush(&self, store: &dyn Store, metrics: &Metrics) -> bool {
        let Some(counter) = &self.counter else {
            return true;
        };
        let _one = self.flushing.lock().await;
        let batch = counter.drain();
        let folded = counter.folded();
        let before = self.folded_seen.swap(folded, Ordering::Relaxed);
        metrics.usage_folded(folded.saturating_sub(before));
        if batch.is_empty() {
            return true;
        }
        match store.add_usage(&batch).await {
            Ok(()) => true,
            Err(e) => {
                metrics.usage_flush_failed();
                tracing::warn!(error = %e, keys = batch.len(),
                    "storing usage counts failed; keeping them for the next flush");
                for (k, n) in batch {
                    counter.count(k, n);
                }
                false
            }
        }
    }

    /// Forget the minute counts older than the minute retention window at `now`, and the
    /// hour counts older than the hour one, in bounded batches. Returns how many rows went.
    pub async fn prune(&self, store: &dyn Store, now: i64) -> u64 {
        let mut gone = 0;
        for (resolution, keep, what) in [
            (
                UsageResolution::Minute,
                self.config.retention,
                "minute usage counts past their retention window",
            ),
            (
                UsageResolution::Hour,
                self.config.hour_retention,
                "hour usage counts past their retention window",
            ),
        ] {
            let before = now.saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
            gone += crate::wave::prune::batches(what, || {
                store.prune_usage(resolution, before, crate::wave::prune::BATCH)
            })
            .await;
        }
        gone
    }
}

impl AppState {
    /// Store the usage counts made so far ([`Usage::flush`]); what the flush task does
    /// every few seconds, and on stop.
    pub async fn flush_usage(&self) -> bool {
        self.usage.flush(&*self.store, &self.metrics).await
    }

    /// Prune usage counts past the retention window, at the server's clock's now.
    pub async fn prune_usage(&self) -> u64 {
        self.usage.prune(&*self.store, self.now()).await
    }
}

/// Flush every `flush_interval` and prune every `prune_interval` until `stop` turns true
/// (the server flushes once more after its last requests are drained).
pub async fn run(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    if !state.usage.enabled() {
        return;
    }
    let every = |d: std::time::Duration| {
        let mut t = tokio::time::interval(d.max(std::time::Duration::from_millis(10)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    };
    let mut flush = every(state.usage.config.flush_interval);
    let mut prune = every(state.usage.config.prune_interval);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                state.flush_usage().await;
            }
            _ = prune.tick() => {
                let n = state.prune_usage().await;
                if n > 0 {
                    tracing::info!(rows = n, "pruned usage counts past the retention window");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
