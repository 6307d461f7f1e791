//! The embedded store: one SQLite file in WAL mode.
//!
//! Writes go through transactions begun with `BEGIN IMMEDIATE`, so a writer takes the
//! write lock before reading and never fails half-way with a busy snapshot when another
//! process (the CLI) writes at the same time; `busy_timeout` makes the other wait.

use crate::audit_sql;
use crate::{
    AuditFilter, Bulk, Change, KeysByApp, PageRequest, Result, SnapshotSink, Store, StoreError,
};
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
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict(d.message().to_owned());
    }
    if let sqlx::Error::Database(d) = &e
        && d.is_foreign_key_violation()
    {
        return StoreError::Conflict("a record it refers to does not exist".to_owned());
    }
    StoreError::Backend(e.to_string())
}

fn to_doc<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

fn from_doc<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Backend(format!("decoding a record: {e}")))
}

fn limit(p: &PageRequest) -> i64 {
    p.limit.clamp(1, 1000) as i64
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

/// Rows per multi-row `INSERT` of [`Store::insert_bulk`]: 3 parameters each, far below
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

fn expect_one(rows: u64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn hash_col(r: &sqlx::sqlite::SqliteRow, col: &str) -> Result<SecretHash> {
    SecretHash::from_hex(r.get::<&str, _>(col))
        .ok_or_else(|| StoreError::Backend(format!("decoding a token: bad {col}")))
}

fn user_link_row(r: &sqlx::sqlite::SqliteRow) -> Result<UserLink> {
    crate::user_link_from_row(
        r.get("hash"),
        r.get("kind"),
        r.get("user_id"),
        r.get("org_id"),
        r.get("role"),
        r.get("created_by"),
        r.get("created_at"),
        r.get("expires_at"),
        r.get("used_at"),
    )
}

async fn insert_user_link(tx: &mut Transaction<'static, Sqlite>, link: &UserLink) -> Result<()> {
    sqlx::query(
        "INSERT INTO user_links (hash, kind, user_id, org_id, role, created_by, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(link.hash.to_hex())
    .bind(link.kind.as_str())
    .bind(link.user_id.as_str())
    .bind(link.org_id.as_ref().map(|o| o.as_str()))
    .bind(link.role.map(|r| r.as_str()))
    .bind(&link.created_by)
    .bind(link.created_at)
    .bind(link.expires_at)
    .bind(link.used_at)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

fn id_col(r: &sqlx::sqlite::SqliteRow, col: &str) -> Result<RecordId> {
    RecordId::parse(r.get::<&str, _>(col))
        .map_err(|e| StoreError::Backend(format!("decoding {col}: {}", e.0)))
}

fn client_col(r: &sqlx::sqlite::SqliteRow) -> Result<ClientId> {
    ClientId::parse(r.get::<&str, _>("client_id"))
        .map_err(|e| StoreError::Backend(format!("decoding client_id: {}", e.0)))
}

fn request_token_row(r: &sqlx::sqlite::SqliteRow) -> Result<RequestToken> {
    let user: Option<&str> = r.get("user_id");
    let authorized = match user {
        Some(_) => Some(Authorization {
            user_id: id_col(r, "user_id")?,
            feed_id: id_col(r, "feed_id")?,
        }),
        None => None,
    };
    Ok(RequestToken {
        hash: hash_col(r, "hash")?,
        secret_hash: hash_col(r, "secret_hash")?,
        client_id: client_col(r)?,
        expires_at: r.get("expires_at"),
        authorized,
    })
}

impl SqliteStore {
    /// One batch of a pruning `DELETE`, whose two parameters are the cut-off and the batch
    /// size; how many rows it removed.
    async fn delete_batch(&self, sql: &'static str, cutoff: i64, limit: u32) -> Result<u64> {
        Ok(sqlx::query(sql)
            .bind(cutoff)
            .bind(limit.max(1) as i64)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected())
    }

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

    async fn docs<T: DeserializeOwned>(
        &self,
        q: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Vec<T>> {
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter()
            .map(|r| from_doc(r.get::<&str, _>("doc")))
            .collect()
    }

    async fn doc<T: DeserializeOwned>(
        &self,
        q: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<Option<T>> {
        let row = q.fetch_optional(&self.pool).await.map_err(backend)?;
        row.map(|r| from_doc(r.get::<&str, _>("doc"))).transpose()
    }

    /// Run one statement that changes one record, plus its change row.
    async fn write_one(
        &self,
        q: sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments>,
        change: Change,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = q.execute(&mut *tx).await.map_err(backend)?.rows_affected();
        expect_one(n)?;
        record(&mut tx, change).await?;
        tx.commit().await.map_err(backend)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn last_change(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.get("seq"))
    }

    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<(i64, Change)>> {
        let rows =
            sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(after)
                .bind(limit as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let seq: i64 = r.get("seq");
                Change::from_row(r.get::<&str, _>("kind"), r.get("key")).map(|c| (seq, c))
            })
            .collect())
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

    async fn oldest_change(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MIN(seq), 0) AS seq FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.get("seq"))
    }

    async fn prune_changes(&self, keep: u32) -> Result<u64> {
        let keep = keep.max(1) as i64;
        let n = sqlx::query("DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?")
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(n)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get("value")))
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n > 0 {
            record(&mut tx, Change::Settings).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        record(&mut tx, Change::Settings).await?;
        tx.commit().await.map_err(backend)
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        self.docs(sqlx::query("SELECT doc FROM signing_keys ORDER BY kid"))
            .await
    }

    async fn replace_signing_keys(&self, keys: &[SigningKeyRecord]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM signing_keys")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for k in keys {
            sqlx::query("INSERT INTO signing_keys (kid, doc) VALUES (?, ?)")
                .bind(&k.kid)
                .bind(to_doc(k)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        record(&mut tx, Change::SigningKeys).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_org(&self, org: &Org) -> Result<()> {
        let doc = to_doc(org)?;
        self.write_one(
            sqlx::query("INSERT INTO orgs (id, doc) VALUES (?, ?)")
                .bind(org.id.as_str())
                .bind(doc),
            Change::Org(org.id.to_string()),
        )
        .await
    }

    async fn org(&self, id: &OrgId) -> Result<Option<Org>> {
        self.doc(sqlx::query("SELECT doc FROM orgs WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn orgs(&self, page: &PageRequest) -> Result<Vec<Org>> {
        self.docs(
            sqlx::query("SELECT doc FROM orgs WHERE id > ? ORDER BY id LIMIT ?")
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(limit(page)),
        )
        .await
    }

    async fn update_org(&self, org: &Org) -> Result<()> {
        let doc = to_doc(org)?;
        self.write_one(
            sqlx::query("UPDATE orgs SET doc = ? WHERE id = ?")
                .bind(doc)
                .bind(org.id.as_str()),
            Change::Org(org.id.to_string()),
        )
        .await
    }

    async fn delete_org(&self, id: &OrgId) -> Result<()> {
        let mut tx = self.begin().await?;
        let apps: Vec<String> = sqlx::query("SELECT client_id FROM apps WHERE org_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.get("client_id"))
            .collect();
        let groups: Vec<String> = sqlx::query("SELECT id FROM permission_groups WHERE org_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.get("id"))
            .collect();
        for sql in [
            "DELETE FROM secrets WHERE client_id IN (SELECT client_id FROM apps WHERE org_id = ?)",
            "DELETE FROM app_keys WHERE client_id IN (SELECT client_id FROM apps WHERE org_id = ?)",
        ] {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query("DELETE FROM apps WHERE org_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let resources: Vec<String> = sqlx::query("SELECT id FROM resources WHERE org_id = ?")
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| r.get("id"))
            .collect();
        sqlx::query("DELETE FROM resources WHERE org_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM permission_groups WHERE org_id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let n = sqlx::query("DELETE FROM orgs WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)?;
        for a in apps {
            record(&mut tx, Change::App(a)).await?;
        }
        for g in groups {
            record(&mut tx, Change::Group(g)).await?;
        }
        for r in resources {
            record(&mut tx, Change::Resource(r)).await?;
        }
        record(&mut tx, Change::Org(id.to_string())).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_group(&self, group: &Group) -> Result<()> {
        let doc = to_doc(group)?;
        self.write_one(
            sqlx::query("INSERT INTO permission_groups (id, org_id, doc) VALUES (?, ?, ?)")
                .bind(group.id.as_str())
                .bind(group.org_id.as_str())
                .bind(doc),
            Change::Group(group.id.to_string()),
        )
        .await
    }

    async fn group(&self, id: &RecordId) -> Result<Option<Group>> {
        self.doc(sqlx::query("SELECT doc FROM permission_groups WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn groups(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Group>> {
        self.docs(
            sqlx::query(
                "SELECT doc FROM permission_groups WHERE org_id = ? AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(org.as_str())
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(limit(page)),
        )
        .await
    }

    async fn update_group(&self, group: &Group) -> Result<()> {
        let doc = to_doc(group)?;
        self.write_one(
            sqlx::query("UPDATE permission_groups SET doc = ? WHERE id = ?")
                .bind(doc)
                .bind(group.id.as_str()),
            Change::Group(group.id.to_string()),
        )
        .await
    }

    async fn delete_group(&self, id: &RecordId) -> Result<()> {
        let mut tx = self.begin().await?;
        let in_use: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM apps WHERE json_extract(doc, '$.group_id') = ?")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?
                .get("n");
        if in_use > 0 {
            return Err(StoreError::Conflict(format!(
                "{in_use} application(s) are in this permission group; move them out first"
            )));
        }
        let n = sqlx::query("DELETE FROM permission_groups WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)?;
        record(&mut tx, Change::Group(id.to_string())).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_resource(&self, resource: &Resource) -> Result<()> {
        let doc = to_doc(resource)?;
        self.write_one(
            sqlx::query("INSERT INTO resources (id, org_id, doc) VALUES (?, ?, ?)")
                .bind(resource.id.as_str())
                .bind(resource.org_id.as_str())
                .bind(doc),
            Change::Resource(resource.id.to_string()),
        )
        .await
    }

    async fn resource(&self, id: &RecordId) -> Result<Option<Resource>> {
        self.doc(sqlx::query("SELECT doc FROM resources WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn resources(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Resource>> {
        self.docs(
            sqlx::query(
                "SELECT doc FROM resources WHERE org_id = ? AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(org.as_str())
            .bind(page.after.as_deref().unwrap_or(""))
            .bind(limit(page)),
        )
        .await
    }

    async fn update_resource(&self, resource: &Resource) -> Result<()> {
        let doc = to_doc(resource)?;
        self.write_one(
            sqlx::query("UPDATE resources SET doc = ? WHERE id = ?")
                .bind(doc)
                .bind(resource.id.as_str()),
            Change::Resource(resource.id.to_string()),
        )
        .await
    }

    async fn delete_resource(&self, id: &RecordId) -> Result<()> {
        self.write_one(
            sqlx::query("DELETE FROM resources WHERE id = ?").bind(id.as_str()),
            Change::Resource(id.to_string()),
        )
        .await
    }

    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // One transaction: a failure part-way (a resource deleted meanwhile) rolls every
        // row back when `tx` is dropped uncommitted.
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(events.len());
        for e in events {
            let row = sqlx::query(
                "INSERT INTO events (resource_id, received_at, authenticated, client_id, event) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(e.resource_id.as_str())
            .bind(e.received_at)
            .bind(e.authenticated)
            .bind(e.client_id.as_ref().map(ClientId::as_str))
            .bind(to_doc(&e.event)?)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            ids.push(row.get::<i64, _>("id"));
        }
        tx.commit().await.map_err(backend)?;
        Ok(ids)
    }

    async fn events(&self, resource: &RecordId, page: &PageRequest) -> Result<Vec<StoredEvent>> {
        let after = match page.after.as_deref() {
            None => 0,
            Some(a) => a.parse::<i64>().map_err(|_| StoreError::NotFound)?,
        };
        let rows = sqlx::query(
            "SELECT id, resource_id, received_at, authenticated, client_id, event FROM events \
             WHERE resource_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(resource.as_str())
        .bind(after)
        .bind(limit(page))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let bad = |what: &str| StoreError::Backend(format!("decoding an event: {what}"));
                Ok(StoredEvent {
                    id: r.get("id"),
                    event: NewEvent {
                        resource_id: RecordId::parse(r.get::<&str, _>("resource_id"))
                            .map_err(|e| bad(&e.0))?,
                        received_at: r.get("received_at"),
                        authenticated: r.get("authenticated"),
                        client_id: r
                            .get::<Option<&str>, _>("client_id")
                            .map(ClientId::parse)
                            .transpose()
                            .map_err(|e| bad(&e.0))?,
                        event: from_doc(r.get::<&str, _>("event"))?,
                    },
                })
            })
            .collect()
    }

    async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        if path.exists() {
            return Err(StoreError::Conflict(format!(
                "{} already exists; choose a new file for the backup",
                path.display()
            )));
        }
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Backend("the backup path is not valid UTF-8".into()))?;
        // One statement, one read transaction: a snapshot of every table at one moment,
        // taken while writers go on (WAL), written compacted to a new file.
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<Vec<i64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(entries.len());
        // Chunks keep each statement under the backends' parameter limits (8 a row).
        for chunk in entries.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(audit_sql::INSERT);
            audit_sql::push_values(&mut q, chunk)?;
            let rows = q.build().fetch_all(&mut *tx).await.map_err(backend)?;
            let mut chunk_ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
            chunk_ids.sort_unstable();
            ids.extend(chunk_ids);
        }
        tx.commit().await.map_err(backend)?;
        Ok(ids)
    }

    async fn audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Vec<AuditEntry>> {
        let mut q = audit_sql::select::<Sqlite>(filter, page)?;
        let rows = q.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(audit_sql::entry).collect()
    }

    async fn insert_app(&self, app: &App) -> Result<()> {
        let doc = to_doc(app)?;
        self.write_one(
            sqlx::query("INSERT INTO apps (client_id, org_id, doc) VALUES (?, ?, ?)")
                .bind(app.client_id.as_str())
                .bind(app.org_id.as_str())
                .bind(doc),
            Change::App(app.client_id.to_string()),
        )
        .await
    }

    async fn app(&self, client_id: &ClientId) -> Result<Option<App>> {
        self.doc(sqlx::query("SELECT doc FROM apps WHERE client_id = ?").bind(client_id.as_str()))
            .await
    }

    async fn apps(&self, org: Option<&OrgId>, page: &PageRequest) -> Result<Vec<App>> {
        let after = page.after.as_deref().unwrap_or("");
        match org {
            Some(org) => {
                self.docs(
                    sqlx::query(
                        "SELECT doc FROM apps WHERE org_id = ? AND client_id > ? ORDER BY client_id LIMIT ?",
                    )
                    .bind(org.as_str())
                    .bind(after)
                    .bind(limit(page)),
                )
                .await
            }
            None => {
                self.docs(
                    sqlx::query("SELECT doc FROM apps WHERE client_id > ? ORDER BY client_id LIMIT ?")
                        .bind(after)
                        .bind(limit(page)),
                )
                .await
            }
        }
    }

    async fn update_app(&self, app: &App) -> Result<()> {
        let doc = to_doc(app)?;
        self.write_one(
            sqlx::query("UPDATE apps SET doc = ? WHERE client_id = ?")
                .bind(doc)
                .bind(app.client_id.as_str()),
            Change::App(app.client_id.to_string()),
        )
        .await
    }

    async fn delete_app(&self, client_id: &ClientId) -> Result<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM secrets WHERE client_id = ?",
            "DELETE FROM app_keys WHERE client_id = ?",
        ] {
            sqlx::query(sql)
                .bind(client_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let n = sqlx::query("DELETE FROM apps WHERE client_id = ?")
            .bind(client_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)?;
        record(&mut tx, Change::App(client_id.to_string())).await?;
        tx.commit().await.map_err(backend)
    }

    async fn insert_secret(&self, secret: &SecretRecord) -> Result<()> {
        let doc = to_doc(secret)?;
        self.write_one(
            sqlx::query("INSERT INTO secrets (id, client_id, doc) VALUES (?, ?, ?)")
                .bind(secret.id.as_str())
                .bind(secret.client_id.as_str())
                .bind(doc),
            Change::App(secret.client_id.to_string()),
        )
        .await
    }

    async fn secrets(&self, client_id: &ClientId) -> Result<Vec<(SecretRecord, Option<i64>)>> {
        let rows =
            sqlx::query("SELECT doc, last_used_at FROM secrets WHERE client_id = ? ORDER BY id")
                .bind(client_id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|r| Ok((from_doc(r.get::<&str, _>("doc"))?, r.get("last_used_at"))))
            .collect()
    }

    async fn update_secret(&self, secret: &SecretRecord) -> Result<()> {
        let doc = to_doc(secret)?;
        self.write_one(
            sqlx::query("UPDATE secrets SET doc = ? WHERE id = ? AND client_id = ?")
                .bind(doc)
                .bind(secret.id.as_str())
                .bind(secret.client_id.as_str()),
            Change::App(secret.client_id.to_string()),
        )
        .await
    }

    async fn delete_secret(&self, client_id: &ClientId, id: &RecordId) -> Result<()> {
        self.write_one(
            sqlx::query("DELETE FROM secrets WHERE id = ? AND client_id = ?")
                .bind(id.as_str())
                .bind(client_id.as_str()),
            Change::App(client_id.to_string()),
        )
        .await
    }

    async fn insert_app_key(&self, key: &AppKey) -> Result<()> {
        let doc = to_doc(key)?;
        self.write_one(
            sqlx::query("INSERT INTO app_keys (id, client_id, doc) VALUES (?, ?, ?)")
                .bind(key.id.as_str())
                .bind(key.client_id.as_str())
                .bind(doc),
            Change::App(key.client_id.to_string()),
        )
        .await
    }

    async fn app_keys(&self, client_id: &ClientId) -> Result<Vec<AppKey>> {
        let rows = sqlx::query("SELECT doc FROM app_keys WHERE client_id = ? ORDER BY id")
            .bind(client_id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| from_doc(r.get::<&str, _>("doc")))
            .collect()
    }

    async fn delete_app_key(&self, client_id: &ClientId, id: &RecordId) -> Result<()> {
        self.write_one(
            sqlx::query("DELETE FROM app_keys WHERE id = ? AND client_id = ?")
                .bind(id.as_str())
                .bind(client_id.as_str()),
            Change::App(client_id.to_string()),
        )
        .await
    }

    async fn touch_secrets(&self, used: &[(RecordId, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE secrets SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
            )
            .bind(at)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

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

    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<()> {
        let doc = to_doc(user)?;
        sqlx::query("INSERT INTO users (id, email, doc, password_hash) VALUES (?, ?, ?, ?)")
            .bind(user.id.as_str())
            .bind(&user.email)
            .bind(doc)
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn user(&self, id: &RecordId) -> Result<Option<User>> {
        self.doc(sqlx::query("SELECT doc FROM users WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>> {
        let row = sqlx::query("SELECT doc, password_hash FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| Ok((from_doc(r.get::<&str, _>("doc"))?, r.get("password_hash"))))
            .transpose()
    }

    async fn users(&self, page: &PageRequest) -> Result<Vec<User>> {
        self.docs(
            sqlx::query("SELECT doc FROM users WHERE id > ? ORDER BY id LIMIT ?")
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(limit(page)),
        )
        .await
    }

    async fn update_user(&self, user: &User, password_hash: Option<&str>) -> Result<()> {
        let doc = to_doc(user)?;
        let n = sqlx::query(
            "UPDATE users SET email = ?, doc = ?, password_hash = COALESCE(?, password_hash) WHERE id = ?",
        )
        .bind(&user.email)
        .bind(doc)
        .bind(password_hash)
        .bind(user.id.as_str())
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        expect_one(n)
    }

    async fn delete_user(&self, id: &RecordId) -> Result<()> {
        let n = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn insert_session(&self, hash: &str, user: &RecordId, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO sessions (hash, user_id, expires_at) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(user.as_str())
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn session(&self, hash: &str, now: i64) -> Result<Option<RecordId>> {
        let row = sqlx::query("SELECT user_id FROM sessions WHERE hash = ? AND expires_at > ?")
            .bind(hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.and_then(|r| RecordId::parse(r.get::<&str, _>("user_id")).ok()))
    }

    async fn delete_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE hash = ?")
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn invite_user(&self, user: &User, link: &UserLink) -> Result<()> {
        let doc = to_doc(user)?;
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO users (id, email, doc, password_hash) VALUES (?, ?, ?, ?)")
            .bind(user.id.as_str())
            .bind(&user.email)
            .bind(doc)
            .bind(crate::NO_PASSWORD)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        insert_user_link(&mut tx, link).await?;
        tx.commit().await.map_err(backend)
    }

    async fn issue_password_reset(&self, link: &UserLink) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(crate::NO_PASSWORD)
            .bind(link.user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)?;
        for sql in [
            "DELETE FROM sessions WHERE user_id = ?",
            "DELETE FROM user_links WHERE user_id = ? AND used_at IS NULL",
        ] {
            sqlx::query(sql)
                .bind(link.user_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        insert_user_link(&mut tx, link).await?;
        tx.commit().await.map_err(backend)
    }

    async fn user_link(&self, hash: &SecretHash) -> Result<Option<UserLink>> {
        let row = sqlx::query("SELECT * FROM user_links WHERE hash = ?")
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(user_link_row).transpose()
    }

    async fn use_user_link(
        &self,
        hash: &SecretHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<UserLink>> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "UPDATE user_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ? RETURNING *",
        )
        .bind(now)
        .bind(hash.to_hex())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(link) = row.as_ref().map(user_link_row).transpose()? else {
            return Ok(None);
        };
        let n = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(link.user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(link.user_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(link))
    }

    async fn revoke(&self, r: &Revocation) -> Result<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "INSERT INTO revocations (jti, client_id, exp) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&r.jti)
        .bind(r.client_id.as_str())
        .bind(r.exp)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n > 0 {
            record(&mut tx, Change::Revocation(r.jti.clone())).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn revocation(&self, jti: &str) -> Result<Option<Revocation>> {
        let row = sqlx::query("SELECT jti, client_id, exp FROM revocations WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.and_then(|r| {
            Some(Revocation {
                jti: r.get("jti"),
                client_id: ClientId::parse(r.get::<&str, _>("client_id")).ok()?,
                exp: r.get("exp"),
            })
        }))
    }

    async fn insert_feed(&self, feed: &Feed) -> Result<()> {
        sqlx::query("INSERT INTO feeds (id, client_id, doc) VALUES (?, ?, ?)")
            .bind(feed.id.as_str())
            .bind(feed.client_id.as_str())
            .bind(to_doc(feed)?)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn feed(&self, id: &RecordId) -> Result<Option<Feed>> {
        self.doc(sqlx::query("SELECT doc FROM feeds WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn feeds(&self, client_id: &ClientId, page: &PageRequest) -> Result<Vec<Feed>> {
        self.docs(
            sqlx::query("SELECT doc FROM feeds WHERE client_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(client_id.as_str())
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(limit(page)),
        )
        .await
    }

    async fn update_feed(&self, feed: &Feed) -> Result<()> {
        let n = sqlx::query("UPDATE feeds SET doc = ? WHERE id = ?")
            .bind(to_doc(feed)?)
            .bind(feed.id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn delete_feed(&self, id: &RecordId) -> Result<()> {
        let n = sqlx::query("DELETE FROM feeds WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn insert_topic(&self, topic: &Topic) -> Result<()> {
        sqlx::query("INSERT INTO topics (id, feed_id, uri, doc) VALUES (?, ?, ?, ?)")
            .bind(topic.id.as_str())
            .bind(topic.feed_id.as_str())
            .bind(&topic.uri)
            .bind(to_doc(topic)?)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn topic(&self, id: &RecordId) -> Result<Option<Topic>> {
        self.doc(sqlx::query("SELECT doc FROM topics WHERE id = ?").bind(id.as_str()))
            .await
    }

    async fn topic_by_uri(&self, uri: &str) -> Result<Option<Topic>> {
        self.doc(sqlx::query("SELECT doc FROM topics WHERE uri = ?").bind(uri))
            .await
    }

    async fn topics(&self, feed: &RecordId, page: &PageRequest) -> Result<Vec<Topic>> {
        self.docs(
            sqlx::query("SELECT doc FROM topics WHERE feed_id = ? AND id > ? ORDER BY id LIMIT ?")
                .bind(feed.as_str())
                .bind(page.after.as_deref().unwrap_or(""))
                .bind(limit(page)),
        )
        .await
    }

    async fn update_topic(&self, topic: &Topic) -> Result<()> {
        let n = sqlx::query("UPDATE topics SET doc = ? WHERE id = ?")
            .bind(to_doc(topic)?)
            .bind(topic.id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn delete_topic(&self, id: &RecordId) -> Result<()> {
        let n = sqlx::query("DELETE FROM topics WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn remember_nonce(
        &self,
        client: &ClientId,
        nonce: &str,
        timestamp: i64,
        forget_before: i64,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM oauth1_nonces WHERE timestamp < ?")
            .bind(forget_before)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let n = sqlx::query(
            "INSERT INTO oauth1_nonces (client_id, nonce, timestamp) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(client.as_str())
        .bind(nonce)
        .bind(timestamp)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        tx.commit().await.map_err(backend)?;
        Ok(n == 1)
    }

    async fn insert_request_token(&self, t: &RequestToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth1_request_tokens (hash, secret_hash, client_id, expires_at, user_id, feed_id) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(t.hash.to_hex())
        .bind(t.secret_hash.to_hex())
        .bind(t.client_id.as_str())
        .bind(t.expires_at)
        .bind(t.authorized.as_ref().map(|a| a.user_id.as_str()))
        .bind(t.authorized.as_ref().map(|a| a.feed_id.as_str()))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn request_token(&self, hash: &SecretHash, now: i64) -> Result<Option<RequestToken>> {
        let row =
            sqlx::query("SELECT * FROM oauth1_request_tokens WHERE hash = ? AND expires_at > ?")
                .bind(hash.to_hex())
                .bind(now)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.as_ref().map(request_token_row).transpose()
    }

    async fn authorize_request_token(
        &self,
        hash: &SecretHash,
        user: &RecordId,
        feed: &RecordId,
        now: i64,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE oauth1_request_tokens SET user_id = ?, feed_id = ? \
             WHERE hash = ? AND expires_at > ? AND user_id IS NULL",
        )
        .bind(user.as_str())
        .bind(feed.as_str())
        .bind(hash.to_hex())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        expect_one(n)
    }

    async fn consume_request_token(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RequestToken>> {
        let row = sqlx::query(
            "DELETE FROM oauth1_request_tokens \
             WHERE hash = ? AND expires_at > ? AND user_id IS NOT NULL RETURNING *",
        )
        .bind(hash.to_hex())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(request_token_row).transpose()
    }

    async fn insert_link_token(&self, t: &LinkToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth1_access_tokens (hash, secret_hash, client_id, feed_id, user_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(t.hash.to_hex())
        .bind(t.secret_hash.to_hex())
        .bind(t.client_id.as_str())
        .bind(t.feed_id.as_str())
        .bind(t.user_id.as_str())
        .bind(t.created_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn link_token(&self, hash: &SecretHash) -> Result<Option<LinkToken>> {
        let row = sqlx::query("SELECT * FROM oauth1_access_tokens WHERE hash = ?")
            .bind(hash.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| {
            Ok(LinkToken {
                hash: hash_col(&r, "hash")?,
                secret_hash: hash_col(&r, "secret_hash")?,
                client_id: client_col(&r)?,
                feed_id: id_col(&r, "feed_id")?,
                user_id: id_col(&r, "user_id")?,
                created_at: r.get("created_at"),
            })
        })
        .transpose()
    }

    async fn insert_api_token(
        &self,
        hash: &SecretHash,
        client: &ClientId,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO wave_api_tokens (hash, client_id, expires_at) VALUES (?, ?, ?)")
            .bind(hash.to_hex())
            .bind(client.as_str())
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn api_token(&self, hash: &SecretHash, now: i64) -> Result<Option<(ClientId, i64)>> {
        let row = sqlx::query(
            "SELECT client_id, expires_at FROM wave_api_tokens WHERE hash = ? AND expires_at > ?",
        )
        .bind(hash.to_hex())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref()
            .map(|r| Ok((client_col(r)?, r.get::<i64, _>("expires_at"))))
            .transpose()
    }

    async fn subscribe(&self, user: &RecordId, feed: &RecordId, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO subscriptions (user_id, feed_id, created_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.as_str())
        .bind(feed.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn unsubscribe(&self, user: &RecordId, feed: &RecordId) -> Result<()> {
        let n = sqlx::query("DELETE FROM subscriptions WHERE user_id = ? AND feed_id = ?")
            .bind(user.as_str())
            .bind(feed.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }

    async fn subscriptions(&self, user: &RecordId) -> Result<Vec<RecordId>> {
        let rows =
            sqlx::query("SELECT feed_id FROM subscriptions WHERE user_id = ? ORDER BY feed_id")
                .bind(user.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter().map(|r| id_col(r, "feed_id")).collect()
    }

    async fn insert_notification(&self, n: &NewNotification) -> Result<(i64, Vec<RecordId>)> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query(
            "INSERT INTO notifications (feed_id, created_at, doc) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(n.feed_id.as_str())
        .bind(n.created_at)
        .bind(to_doc(n)?)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?
        .get("id");
        let rows = match &n.to_user {
            Some(user) => sqlx::query(
                "INSERT INTO inbox (user_id, notification_id) VALUES (?, ?) RETURNING user_id",
            )
            .bind(user.as_str())
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?,
            None => sqlx::query(
                "INSERT INTO inbox (user_id, notification_id) \
                 SELECT user_id, ? FROM subscriptions WHERE feed_id = ? RETURNING user_id",
            )
            .bind(id)
            .bind(n.feed_id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?,
        };
        let recipients = rows
            .iter()
            .map(|r| id_col(r, "user_id"))
            .collect::<Result<Vec<_>>>()?;
        tx.commit().await.map_err(backend)?;
        Ok((id, recipients))
    }

    async fn inbox(
        &self,
        user: &RecordId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>> {
        let rows = sqlx::query(
            "SELECT n.id AS id, n.doc AS doc FROM inbox i JOIN notifications n ON n.id = i.notification_id \
             WHERE i.user_id = ? AND i.notification_id > ? ORDER BY i.notification_id LIMIT ?",
        )
        .bind(user.as_str())
        .bind(after)
        .bind(limit.clamp(1, 1000) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(StoredNotification {
                    id: r.get("id"),
                    notification: from_doc(r.get::<&str, _>("doc"))?,
                })
            })
            .collect()
    }

    async fn notifications_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(StoredNotification, Vec<RecordId>)>> {
        let rows =
            sqlx::query("SELECT id, doc FROM notifications WHERE id > ? ORDER BY id LIMIT ?")
                .bind(after)
                .bind(limit.clamp(1, 1000) as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok((
                    StoredNotification {
                        id: r.get("id"),
                        notification: from_doc(r.get::<&str, _>("doc"))?,
                    },
                    Vec::new(),
                ))
            })
            .collect::<Result<Vec<(StoredNotification, Vec<RecordId>)>>>()?;
        let Some(last) = out.last().map(|(n, _)| n.id) else {
            return Ok(out);
        };
        let recipients = sqlx::query(
            "SELECT notification_id, user_id FROM inbox \
             WHERE notification_id > ? AND notification_id <= ? ORDER BY notification_id",
        )
        .bind(after)
        .bind(last)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut at = 0;
        for r in &recipients {
            let id: i64 = r.get("notification_id");
            while at < out.len() && out[at].0.id < id {
                at += 1;
            }
            if at < out.len() && out[at].0.id == id {
                out[at].1.push(id_col(r, "user_id")?);
            }
        }
        Ok(out)
    }

    async fn last_notification_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM notifications")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.get("id"))
    }

    async fn prune_notifications(&self, before: i64, limit: u32) -> Result<u64> {
        self.delete_batch(
            "DELETE FROM notifications WHERE id IN \
             (SELECT id FROM notifications WHERE created_at < ? ORDER BY id LIMIT ?)",
            before,
            limit,
        )
        .await
    }

    async fn prune_request_tokens(&self, now: i64, limit: u32) -> Result<u64> {
        self.delete_batch(
            "DELETE FROM oauth1_request_tokens WHERE hash IN \
             (SELECT hash FROM oauth1_request_tokens WHERE expires_at <= ? LIMIT ?)",
            now,
            limit,
        )
        .await
    }

    async fn prune_api_tokens(&self, now: i64, limit: u32) -> Result<u64> {
        self.delete_batch(
            "DELETE FROM wave_api_tokens WHERE hash IN \
             (SELECT hash FROM wave_api_tokens WHERE expires_at <= ? LIMIT ?)",
            now,
            limit,
        )
        .await
    }

    async fn delete_request_token(&self, hash: &SecretHash) -> Result<()> {
        let n = sqlx::query("DELETE FROM oauth1_request_tokens WHERE hash = ?")
            .bind(hash.to_hex())
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        expect_one(n)
    }
}

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
