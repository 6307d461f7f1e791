//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through transactions begun with `BEGIN IMMEDIATE`, so a writer takes the
//! write lock before reading and never fails half-way with a busy snapshot when another
//! process (the CLI) writes at the same time; `busy_timeout` makes the other wait.

use crate::audit_sql;
use crate::prelude::*;
use crate::shared::{
    USAGE_ADD_HOURS, USAGE_ADD_MINUTES, USAGE_BY_APP_BY_HOUR, USAGE_BY_APP_BY_MINUTE,
    USAGE_OF_APP_BY_HOUR, USAGE_OF_APP_BY_MINUTE, USAGE_OF_ORG_BY_HOUR, USAGE_OF_ORG_BY_MINUTE,
    USAGE_PRUNE_HOURS, USAGE_PRUNE_MINUTES, USAGE_ROWS,
};
use crate::{AuditFilter, Bulk, Change, KeysByApp, PageRequest, Result, SnapshotSink, StoreError};
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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn backend(e: sqlx::Error) -> StoreError {
    crate::shared::neutral_error(e)
}

async fn record(tx: &mut Transaction<'static, Sqlite>, change: Change) -> Result<()> {
    sqlx::query("INSERT INTO changes (kind, key) VALUES (?, ?)")
        .bind(change.kind())
        .bind(change.key())
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Rows per multi-row `INSERT` of [`DirectoryStore::insert_bulk`]: 3 parameters each, far below
/// SQLite's limit of 32,766, and large enough that statement overhead stops mattering.
const BULK_ROWS: usize = 1000;

/// Insert `rows` into `table` as `(columns) VALUES (…), (…)`, [`BULK_ROWS`] at a time;
/// each row gives its three column values.
async fn insert_rows<T>(
    tx: &mut Transaction<'static, Sqlite>,
    table: &str,
    columns: &str,
    rows: &[T],
    values: impl Fn(&T) -> Result<[String; 3]>,
) -> Result<()> {
    for chunk in rows.chunks(BULK_ROWS) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(format!("INSERT INTO {table} ({columns}) "));
        let encoded = chunk.iter().map(&values).collect::<Result<Vec<_>>>()?;
        q.push_values(encoded, |mut b, [x, y, z]| {
            b.push_bind(x).push_bind(y).push_bind(z);
        });
        q.build().execute(&mut **tx).await.map_err(backend)?;
    }
    Ok(())
}

/// Rows of a table per query of [`each_doc`].
const SNAPSHOT_CHUNK: u32 = 1000;

/// Decode every `doc` of `table` (a name from the code, never from input) in rowid (storage) order and hand each to `f`. The rows
/// come [`SNAPSHOT_CHUNK`] a query, their documents joined by SQLite into one JSON array:
/// sqlx's SQLite driver passes every row from its worker thread over a channel, and with
/// a million rows that hand-over (a thread wake-up and a copy a row) cost more than
/// SQLite's reading did.
async fn each_doc<T: DeserializeOwned>(
    conn: &mut sqlx::SqliteConnection,
    table: &'static str,
    mut f: impl FnMut(T) + Send,
) -> Result<()> {
    let sql = format!(
        "SELECT MAX(r) AS last, '[' || group_concat(doc, ',') || ']' AS docs \
         FROM (SELECT rowid AS r, doc FROM {table} WHERE rowid > ? ORDER BY rowid \
               LIMIT {SNAPSHOT_CHUNK})"
    );
    let mut after = i64::MIN;
    loop {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(after)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
        let Some(last) = row.get::<Option<i64>, _>("last") else {
            return Ok(());
        };
        crate::each_element(row.get::<&str, _>("docs"), &mut f)?;
        after = last;
    }
}

impl SqliteStore {
    /// Open (creating if missing) the database file at `path` and run migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a write acknowledged to a client survives a crash of the machine.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(backend)?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("running migrations: {e}")))?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }
}

crate::shared::store_helpers!(SqliteStore, Sqlite, sqlx::sqlite::SqliteRow);

/// Finds the organization being deleted (`BEGIN IMMEDIATE` already holds the write lock).
const LOCK_ORG: &str = "SELECT id FROM orgs WHERE id = $1";
/// Before a notification is stored: nothing (`BEGIN IMMEDIATE` orders the writers).
async fn before_notification(_: &mut Transaction<'static, Sqlite>) -> Result<()> {
    Ok(())
}

/// Once a notification is stored: nothing (one process: the fan-out is woken in memory).
async fn after_notification(_: &mut Transaction<'static, Sqlite>, _: i64) -> Result<()> {
    Ok(())
}

/// Marks a secret used (the latest time wins).
const TOUCH_SECRET: &str =
    "UPDATE secrets SET last_used_at = MAX(COALESCE(last_used_at, 0), $1) WHERE id = $2";
/// How many apps take their scopes from a permission group.
const APPS_IN_GROUP: &str =
    "SELECT COUNT(*) AS n FROM apps WHERE json_extract(doc, '$.group_id') = $1";

crate::shared::implement_store!(SqliteStore, Sqlite, {
    system: {
        fn backend(&self) -> &'static str {
            "sqlite"
        }

        async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
            let target = path
                .to_str()
                .ok_or_else(|| StoreError::Backend("the backup path is not valid UTF-8".into()))?;
            // The backup holds password and secret hashes: it is created empty, owner-only and
            // new (never over an existing file) before SQLite writes into it.
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(StoreError::Conflict(format!(
                        "{} already exists; choose a new file for the backup",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(StoreError::Backend(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
            // One statement, one read transaction: a snapshot of every table at one moment,
            // taken while writers go on (WAL), written compacted into the empty file.
            let written = sqlx::query("VACUUM INTO ?")
                .bind(target)
                .execute(&self.pool)
                .await;
            if let Err(e) = written {
                let _ = std::fs::remove_file(path);
                return Err(backend(e));
            }
            Ok(())
        }
    }
    feed: {
        async fn last_change(&self) -> Result<i64> {
            let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes")
                .fetch_one(&self.pool)
                .await
                .map_err(backend)?;
            Ok(row.get("seq"))
        }

        async fn snapshot_into(&self, sink: &mut dyn SnapshotSink) -> Result<i64> {
            // One read transaction, so the snapshot and its seq agree.
            let mut tx = self.pool.begin().await.map_err(backend)?;
            let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            each_doc(&mut tx, "orgs", |o| sink.org(o)).await?;
            each_doc(&mut tx, "permission_groups", |g| sink.group(g)).await?;
            each_doc(&mut tx, "resources", |r| sink.resource(r)).await?;
            let mut keys = KeysByApp::default();
            each_doc(&mut tx, "app_keys", |k| keys.key(k)).await?;
            each_doc(&mut tx, "apps", |a| keys.app(a, sink)).await?;
            each_doc(&mut tx, "secrets", |s| sink.secret(s)).await?;
            let mut rows = sqlx::query("SELECT jti, client_id, exp FROM revocations").fetch(&mut *tx);
            while let Some(r) = rows.try_next().await.map_err(backend)? {
                if let Ok(client_id) = ClientId::parse(r.get::<&str, _>("client_id")) {
                    sink.revocation(Revocation {
                        jti: r.get("jti"),
                        client_id,
                        exp: r.get("exp"),
                    });
                }
            }
            drop(rows);
            each_doc(&mut tx, "signing_keys", |k| sink.signing_key(k)).await?;
            tx.commit().await.map_err(backend)?;
            Ok(seq)
        }
    }
    directory: {
        async fn insert_bulk(&self, bulk: &Bulk) -> Result<()> {
            let mut tx = self.begin().await?;
            // Orgs have two columns, not three, and are few: one statement each.
            for o in &bulk.orgs {
                sqlx::query("INSERT INTO orgs (id, doc) VALUES (?, ?)")
                    .bind(o.id.as_str())
                    .bind(to_doc(o)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            insert_rows(
                &mut tx,
                "resources",
                "id, org_id, doc",
                &bulk.resources,
                |r| Ok([r.id.to_string(), r.org_id.to_string(), to_doc(r)?]),
            )
            .await?;
            insert_rows(&mut tx, "apps", "client_id, org_id, doc", &bulk.apps, |a| {
                Ok([a.client_id.to_string(), a.org_id.to_string(), to_doc(a)?])
            })
            .await?;
            insert_rows(
                &mut tx,
                "secrets",
                "id, client_id, doc",
                &bulk.secrets,
                |s| Ok([s.id.to_string(), s.client_id.to_string(), to_doc(s)?]),
            )
            .await?;
            record(&mut tx, Change::Resync).await?;
            tx.commit().await.map_err(backend)
        }
    }
    user: {}
    log: {}
    wave: {}
    usage: {}
});

/// What [`check_file`] found in a SQLite database file.
#[derive(Debug, Clone)]
pub struct FileCheck {
    /// `PRAGMA integrity_check`'s answer: `"ok"` when the file is sound.
    pub integrity: String,
    /// The sealed secret-hash key (present in every initialised Portcullis store).
    pub sealed_hash_key: Option<String>,
}

/// Open a database file read-only (never creating or migrating it) and check it: for
/// backups, restores and the crash tests.
pub async fn check_file(path: &Path) -> Result<FileCheck> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(backend)?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .map_err(backend)?;
    let sealed_hash_key: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE name = 'secret_hash_key'")
            .fetch_optional(&pool)
            .await
            .unwrap_or(None);
    pool.close().await;
    Ok(FileCheck {
        integrity,
        sealed_hash_key,
    })
}
