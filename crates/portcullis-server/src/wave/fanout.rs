//! Live fan-out across nodes: one task per node reads newly stored notifications from
//! the store, in id order, and hands each (with its recipients) to the node's open
//! streams through a tokio broadcast channel ([`super::WaveState::live`]).
//!
//! The store is the only source, so a notification accepted by any node — or by another
//! process on the same SQLite file — reaches every node's streams, and always in id
//! order (a stream drops ids at or below the last it sent). The task wakes when this node
//! stored one ([`super::WaveState::stored`]), when the store signals one
//! ([`portcullis_store::WaveStore::notification_signal`]: PostgreSQL's `NOTIFY`, within
//! milliseconds on every node), and at least every [`POLL`] (SQLite's only way to hear
//! of another process; on PostgreSQL a safety net).

use super::Delivery;
use crate::state::AppState;
use std::sync::Arc;
use std::time::Duration;

/// The longest a stored notification waits for this node to look (SQLite, another
/// process; or a lost PostgreSQL notification).
pub const POLL: Duration = Duration::from_secs(1);

/// Notifications read at a time.
const BATCH: u32 = 100;

/// Follow the store from notification id `after` until `stop` turns true.
pub async fn run(state: AppState, mut after: i64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut signal = state.store.notification_signal();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        after = forward(&state, after).await;
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.wave.stored.notified() => {}
            changed = async {
                match &mut signal {
                    Some(s) => s.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    signal = None;
                }
            }
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Send everything stored after `after` to this node's streams; the new cursor.
async fn forward(state: &AppState, mut after: i64) -> i64 {
    loop {
        let batch = match state.store.notifications_since(after, BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading new notifications failed; retrying at the next poll");
                return after;
            }
        };
        let full = batch.len() as u32 >= BATCH;
        for (notification, recipients) in batch {
            after = notification.id;
            if recipients.is_empty() {
                continue;
            }
            // No receiver is fine: nobody is connected here; the store has it for later.
            let _ = state.wave.live.send(Arc::new(Delivery {
                notification,
                recipients,
            }));
        }
        if !full {
            return after;
        }
    }
}
