//! The PostgreSQL store, for several Portcullis nodes behind a load balancer.
//!
//! It runs the same body of SQL as [`crate::sqlite`] (`shared.rs`: JSON documents beside
//! indexed columns, cascades done by hand in one transaction, the same error mapping), so
//! that one contract suite (`tests/contract.rs`) holds for both. What this file adds is
//! what several writers on several machines need:
//!
//! - **The change feed's order** (see [`record`]): sequence numbers are handed out in
//!   commit order, so a node following the feed never skips a change.
//! - **Wake-ups**: every appending transaction also sends `NOTIFY portcullis_changes`,
//!   delivered at commit; a listener task turns them into [`FeedStore::change_signal`], so
//!   every node's view follows a write within milliseconds instead of at its next poll.
//! - **Pool size and timeouts** are the operator's ([`PgOptions`]), since a database is
//!   shared by every node and has a connection limit.

use crate::audit_sql;
use crate::prelude::*;
use crate::shared::{
    USAGE_ADD_HOURS, USAGE_ADD_MINUTES, USAGE_BY_APP_BY_HOUR, USAGE_BY_APP_BY_MINUTE,
    USAGE_OF_APP_BY_HOUR, USAGE_OF_APP_BY_MINUTE, USAGE_OF_ORG_BY_HOUR, USAGE_OF_ORG_BY_MINUTE,
    USAGE_PRUNE_HOURS, USAGE_PRUNE_MINUTES, USAGE_ROWS,
};
use crate::{AuditFilter, Change, KeysByApp, PageRequest, Result, SnapshotSink, StoreError};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::model::{
    App, AppKey, AuditEntry, Group, NewAuditEntry, NewEvent, Org, Resource, Revocation,
    SecretRecord, SigningKeyRecord, StoredEvent, User, UserLink,
};
use portcullis_core::secret::SecretHash;
use portcullis_core::wave::{
    Authorization, Feed, LinkToken, NewNotification, RequestToken, StoredNotification, Topic,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::watch;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The `LISTEN` / `NOTIFY` channel of the change feed. Notifications are per database, so
/// two clusters on one server do not wake each other.
pub const CHANGES_CHANNEL: &str = "portcullis_changes";

/// The channel on which a stored Wave notification wakes every node's live fan-out
/// (payload: its id). Separate from the change feed, which notifications are not part of.
pub const NOTIFICATIONS_CHANNEL: &str = "portcullis_notifications";

/// The advisory lock (two-key form, so it cannot meet sqlx's migration lock) that
/// serialises notification inserts: ids are then committed in the order they are handed
/// out, as [`record`] argues for the change feed, so a node reading `id > last` never
/// skips one.
const NOTIFICATION_LOCK: (i32, i32) = (0x5043_5756, 1);

/// Connection settings an operator tunes.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections this node opens at most (the change listener takes one more).
    pub pool_size: u32,
    /// How long connecting, or waiting for a free connection, may take before the
    /// operation fails as [`StoreError::Backend`].
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            timeout: Duration::from_secs(5),
        }
    }
}

/// A PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    /// Bumped by the listener task on every change notification and every reconnection.
    signal: watch::Receiver<u64>,
    /// Bumped on every stored Wave notification (and every reconnection).
    notifications: watch::Receiver<u64>,
    /// Stops the listener task when the store goes away.
    _listener: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn backend(e: sqlx::Error) -> StoreError {
    // 22021: "invalid byte sequence for encoding UTF8: 0x00", PostgreSQL's answer to a NUL
    // in a text parameter (a valid Rust string). 22P05: untranslatable character.
    if let sqlx::Error::Database(d) = &e
        && matches!(d.code().as_deref(), Some("22021" | "22P05"))
    {
        return StoreError::Invalid("text may not contain a NUL character".to_owned());
    }
    crate::shared::neutral_error(e)
}

/// Append `change` to the feed, in `tx`, and notify every listening node at commit.
///
/// **Why a reader never skips a change.** A follower asks for `seq > last_seen`. With a
/// plain sequence, transaction A could take 7, transaction B take 8 and commit first; a
/// follower reading then sees 8, moves its cursor to 8, and never sees 7 once A commits.
/// Here the number comes from `UPDATE change_seq SET seq = seq + 1`: the UPDATE takes the
/// single row's lock and holds it until the transaction ends, so a second appender waits
/// on the first, and reads the counter only after the first has committed (READ COMMITTED
/// re-reads the updated row). Numbers are therefore taken — and committed — strictly one
/// after another: when seq n is visible to a reader, every seq below n was committed
/// before n's transaction could even take its number, so it is visible too. A rollback
/// undoes its increment, so the feed has no gaps either (pruning keeps that arithmetic
/// right). PostgreSQL releases a transaction's locks only after its commit is visible
/// to new snapshots, which is what the argument needs.
///
/// The price is that appends are serialised across the cluster; every write calls this
/// last, just before commit, so the lock is held for one statement and the commit.
/// No appender waits for another lock while holding this one, so it cannot deadlock.
async fn record(tx: &mut Transaction<'static, Postgres>, change: Change) -> Result<()> {
    sqlx::query(
        "WITH s AS (UPDATE change_seq SET seq = seq + 1 RETURNING seq), \
              c AS (INSERT INTO changes (seq, kind, key) SELECT seq, $1, $2 FROM s RETURNING seq) \
         SELECT pg_notify($3, seq::text) FROM c",
    )
    .bind(change.kind())
    .bind(change.key())
    .bind(CHANGES_CHANNEL)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Follow `LISTEN portcullis_changes` and `LISTEN portcullis_notifications` for as long
/// as the store lives, bumping `changes` or `notifications` on each. A lost connection
/// bumps both (what was sent meanwhile is gone, so followers should look at the tables),
/// then the listener reconnects; while the database is away it retries every second.
async fn listen(pool: PgPool, changes: watch::Sender<u64>, notifications: watch::Sender<u64>) {
    let bump = |tx: &watch::Sender<u64>| tx.send_modify(|n| *n = n.wrapping_add(1));
    let both = || {
        bump(&changes);
        bump(&notifications);
    };
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener
                .listen_all([CHANGES_CHANNEL, NOTIFICATIONS_CHANNEL])
                .await
            {
                Ok(()) => {
                    both();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) if n.channel() == NOTIFICATIONS_CHANNEL => {
                                bump(&notifications)
                            }
                            Ok(Some(_)) => bump(&changes),
                            // The connection was lost and re-established by sqlx.
                            Ok(None) => both(),
                            Err(e) => {
                                tracing::debug!(error = %e, "the change listener lost the database");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "LISTEN failed"),
            },
            Err(e) => tracing::debug!(error = %e, "the change listener cannot connect"),
        }
        both();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl PostgresStore {
    /// Connect to `url` (`postgres://…`), run the migrations (under sqlx's advisory lock,
    /// so nodes starting together do not race) and start the change listener.
    pub async fn open(url: &str, opts: &PgOptions) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("the database URL is invalid: {e}")))?;
        // Named in pg_stat_activity, unless the URL names the node itself.
        if !url.contains("application_name=") {
            connect = connect.application_name("portcullis");
        }
        let pool = PgPoolOptions::new()
            .max_connections(opts.pool_size.max(1))
            .acquire_timeout(opts.timeout)
            .connect_with(connect.clone())
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("running migrations: {e}")))?;
        // Its own pool of one: the listener holds its connection for good.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.timeout)
            .connect_lazy_with(connect);
        let (tx, signal) = watch::channel(0);
        let (ntx, notifications) = watch::channel(0);
        let task = tokio::spawn(listen(listener_pool, tx, ntx));
        Ok(Self {
            pool,
            signal,
            notifications,
            _listener: AbortOnDrop(task),
        })
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(backend)
    }
}

crate::shared::store_helpers!(PostgresStore, Postgres, sqlx::postgres::PgRow);

/// Locks the organization being deleted, so an app or group inserted into it meanwhile
/// either commits before (and is deleted too) or fails its foreign key after.
const LOCK_ORG: &str = "SELECT id FROM orgs WHERE id = $1 FOR UPDATE";
/// Before a notification is stored: take the lock that makes notification ids commit
/// in order (see [`NOTIFICATION_LOCK`]); held to commit.
async fn before_notification(tx: &mut Transaction<'static, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(NOTIFICATION_LOCK.0)
        .bind(NOTIFICATION_LOCK.1)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Once a notification is stored: wake every listening node's fan-out at commit.
async fn after_notification(tx: &mut Transaction<'static, Postgres>, id: i64) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFICATIONS_CHANNEL)
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Marks a secret used (the latest time wins).
const TOUCH_SECRET: &str =
    "UPDATE secrets SET last_used_at = GREATEST(COALESCE(last_used_at, 0), $1) WHERE id = $2";
/// How many apps take their scopes from a permission group.
const APPS_IN_GROUP: &str = "SELECT COUNT(*) AS n FROM apps WHERE (doc::jsonb ->> 'group_id') = $1";

crate::shared::implement_store!(PostgresStore, Postgres, {
    system: {
        fn backend(&self) -> &'static str {
            "postgres"
        }
    }
    feed: {
        fn change_signal(&self) -> Option<watch::Receiver<u64>> {
            Some(self.signal.clone())
        }

        async fn last_change(&self) -> Result<i64> {
            let row = sqlx::query("SELECT seq FROM change_seq")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
            Ok(row.get("seq"))
        }

        async fn snapshot_into(&self, sink: &mut dyn SnapshotSink) -> Result<i64> {
            // One REPEATABLE READ transaction: every table and the counter are read from the
            // same snapshot, so the data and its seq agree.
            let mut tx = self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await
                .map_err(backend)?;
            macro_rules! each {
                ($sql:literal, $f:expr) => {{
                    // Row by row: with a million apps, holding every row's JSON beside
                    // the decoded records doubled the peak memory of a start.
                    let mut rows = sqlx::query($sql).fetch(&mut *tx);
                    while let Some(r) = rows.try_next().await.map_err(backend)? {
                        $f(from_doc(r.get::<&str, _>("doc"))?);
                    }
                }};
            }
            let seq: i64 = sqlx::query("SELECT seq FROM change_seq")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?
                .get("seq");
            each!("SELECT doc FROM orgs", |o| sink.org(o));
            each!("SELECT doc FROM permission_groups", |g| sink.group(g));
            each!("SELECT doc FROM resources", |r| sink.resource(r));
            let mut keys = KeysByApp::default();
            each!("SELECT doc FROM app_keys", |k| keys.key(k));
            each!("SELECT doc FROM apps", |a| keys.app(a, sink));
            each!("SELECT doc FROM secrets", |s| sink.secret(s));
            let mut rows = sqlx::query("SELECT jti, client_id, exp FROM revocations").fetch(&mut *tx);
            while let Some(r) = rows.try_next().await.map_err(backend)? {
                if let Some(r) = revocation_of(&r) {
                    sink.revocation(r);
                }
            }
            drop(rows);
            each!("SELECT doc FROM signing_keys", |k| sink.signing_key(k));
            tx.commit().await.map_err(backend)?;
            Ok(seq)
        }
    }
    directory: {}
    user: {}
    log: {}
    wave: {
        fn notification_signal(&self) -> Option<watch::Receiver<u64>> {
            Some(self.notifications.clone())
        }
    }
    usage: {}
});
