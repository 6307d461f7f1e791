//! Forgetting what Wave no longer needs: request tokens and publisher API tokens past
//! their expiry, and notifications older than the retention window (with their inbox
//! rows). A periodic task per node, every `WaveConfig::prune_interval`; each table is
//! pruned in bounded batches so no statement holds locks for long, and at most
//! [`MAX_BATCHES`] per table per round (the rest waits for the next round). Deleting
//! is idempotent, so several nodes pruning at once only repeat each other's work.

use crate::state::AppState;

/// Rows deleted by one statement.
pub const BATCH: u32 = 500;
/// Batches per table per round.
const MAX_BATCHES: u32 = 20;

/// How many rows one round removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub request_tokens: u64,
    pub api_tokens: u64,
    pub notifications: u64,
}

/// One round, at the server's clock's now.
pub async fn prune_once(state: &AppState) -> Pruned {
    let now = state.now();
    let before = now - state.wave.config.retention.as_secs() as i64;
    let store = &state.store;
    Pruned {
        request_tokens: batches("expired Wave request tokens", || {
            store.prune_request_tokens(now, BATCH)
        })
        .await,
        api_tokens: batches("expired Wave API tokens", || {
            store.prune_api_tokens(now, BATCH)
        })
        .await,
        notifications: batches("Wave notifications past the retention window", || {
            store.prune_notifications(before, BATCH)
        })
        .await,
    }
}

/// Run `step` (one pruning batch of at most [`BATCH`] rows) until a batch comes back
/// short, at most [`MAX_BATCHES`] times; how many rows went. A failure is logged and
/// ends the round (the next one retries).
pub(crate) async fn batches<F, Fut>(what: &str, mut step: F) -> u64
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = portcullis_store::Result<u64>> + Send,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        match step().await {
            Ok(n) => {
                total += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "pruning {what} failed; retrying next round");
                break;
            }
        }
    }
    total
}

/// Prune every `interval` until `stop` turns true.
pub async fn run(
    state: AppState,
    interval: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let p = prune_once(&state).await;
                if p != Pruned::default() {
                    tracing::info!(request_tokens = p.request_tokens, api_tokens = p.api_tokens,
                        notifications = p.notifications, "pruned expired Wave records");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
