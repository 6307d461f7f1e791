//! # portcullis-store
//!
//! Persistence behind one trait, [`Store`]. The SQLite implementation ([`sqlite`]) is the
//! embedded default for one node; the PostgreSQL implementation ([`postgres`]) fills the
//! same trait for several nodes sharing one database, without touching core or the server.
//!
//! Every write of something the in-memory view holds (orgs, apps and their secrets,
//! permission groups, revocations, signing keys, settings) appends to a **change feed** in
//! the same transaction: `(seq, kind, key)`. Users and sessions are not in the view (the
//! admin API reads them from the store), so their writes do not feed it; neither do the
//! Edge intake's events, which are append-only data, not decision data.
//! The server's in-memory view follows it, reloading only the records named, so writes by
//! this process and by another one (the CLI on the same data directory, another node on
//! the same PostgreSQL database) all reach it.

use async_trait::async_trait;
use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::model::{
    App, AppKey, Group, NewEvent, Org, Resource, Revocation, SecretRecord, SigningKeyRecord,
    StoredEvent, User,
};

pub mod postgres;
pub mod sqlite;
pub mod test_db;

/// Errors in backend-neutral terms (a unique violation is `Conflict` on every backend).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Cursor pagination: records after `after` in id order, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

/// What changed; the key names the record. The view reloads that record (an app's
/// change covers its secrets too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    Org(String),
    App(String),
    Group(String),
    Resource(String),
    Revocation(String),
    SigningKeys,
    Settings,
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Org(_) => "org",
            Change::App(_) => "app",
            Change::Group(_) => "group",
            Change::Resource(_) => "resource",
            Change::Revocation(_) => "revocation",
            Change::SigningKeys => "keys",
            Change::Settings => "settings",
        }
    }
    fn key(&self) -> &str {
        match self {
            Change::Org(k)
            | Change::App(k)
            | Change::Group(k)
            | Change::Resource(k)
            | Change::Revocation(k) => k,
            Change::SigningKeys | Change::Settings => "",
        }
    }
    fn from_row(kind: &str, key: String) -> Option<Self> {
        Some(match kind {
            "org" => Change::Org(key),
            "app" => Change::App(key),
            "group" => Change::Group(key),
            "resource" => Change::Resource(key),
            "revocation" => Change::Revocation(key),
            "keys" => Change::SigningKeys,
            "settings" => Change::Settings,
            _ => return None,
        })
    }
}

/// Everything the view is built from, read at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The change sequence the snapshot is consistent with.
    pub seq: i64,
    pub orgs: Vec<Org>,
    pub apps: Vec<App>,
    pub secrets: Vec<SecretRecord>,
    pub app_keys: Vec<AppKey>,
    pub groups: Vec<Group>,
    pub resources: Vec<Resource>,
    pub revocations: Vec<Revocation>,
    pub signing_keys: Vec<SigningKeyRecord>,
}

/// The persistence contract. Methods that write view data append to the change feed in
/// the same transaction; user and session writes, and reads, never do.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;

    /// A signal that changes may have been committed, possibly by another process: its
    /// value moves when the follower of the feed should look at it now rather than at its
    /// next poll. PostgreSQL bumps it on every `NOTIFY` (and on reconnecting, since
    /// notifications sent meanwhile are lost). `None` (the default, SQLite) means the poll
    /// alone finds other processes' writes. Only a hint: the poll stays the safety net.
    fn change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    // --- change feed and snapshot ---
    async fn last_change(&self) -> Result<i64>;
    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<(i64, Change)>>;
    async fn snapshot(&self) -> Result<Snapshot>;
    /// The oldest change still kept (0 when the feed is empty). A reader whose last seen
    /// change is older than this one less has missed pruned changes and must resync from a
    /// snapshot.
    async fn oldest_change(&self) -> Result<i64>;
    /// Forget all but the newest `keep` changes (at least one is always kept). Returns how
    /// many were deleted.
    async fn prune_changes(&self, keep: u32) -> Result<u64>;

    // --- settings ---
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Sets `name` unless it exists; returns whether it was set.
    async fn init_setting(&self, name: &str, value: &str) -> Result<bool>;
    async fn set_setting(&self, name: &str, value: &str) -> Result<()>;

    // --- signing keys ---
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Make `keys` the whole set of signing keys, atomically.
    async fn replace_signing_keys(&self, keys: &[SigningKeyRecord]) -> Result<()>;

    // --- orgs ---
    async fn insert_org(&self, org: &Org) -> Result<()>;
    async fn org(&self, id: &OrgId) -> Result<Option<Org>>;
    async fn orgs(&self, page: &PageRequest) -> Result<Vec<Org>>;
    async fn update_org(&self, org: &Org) -> Result<()>;
    /// Deletes the org with its apps, their secrets, its groups and its resources (with
    /// their events).
    async fn delete_org(&self, id: &OrgId) -> Result<()>;

    // --- permission groups ---
    async fn insert_group(&self, group: &Group) -> Result<()>;
    async fn group(&self, id: &RecordId) -> Result<Option<Group>>;
    async fn groups(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Group>>;
    async fn update_group(&self, group: &Group) -> Result<()>;
    /// `Conflict` while apps are in the group.
    async fn delete_group(&self, id: &RecordId) -> Result<()>;

    // --- protected resources ---
    async fn insert_resource(&self, resource: &Resource) -> Result<()>;
    async fn resource(&self, id: &RecordId) -> Result<Option<Resource>>;
    async fn resources(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Resource>>;
    async fn update_resource(&self, resource: &Resource) -> Result<()>;
    /// Deletes the resource and its events.
    async fn delete_resource(&self, id: &RecordId) -> Result<()>;

    // --- Edge intake events (append-only; not in the view, no change feed) ---
    /// Append `events` in one transaction: all are stored, or none (an event naming a
    /// resource that does not exist is `Conflict`, and nothing is written). Returns their
    /// ids, in order.
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>>;
    /// The resource's events in id order (acceptance order). `page.after` is the decimal id
    /// of the last event of the previous page; a cursor that is not one is `NotFound`.
    async fn events(&self, resource: &RecordId, page: &PageRequest) -> Result<Vec<StoredEvent>>;

    // --- apps and their secrets ---
    async fn insert_app(&self, app: &App) -> Result<()>;
    async fn app(&self, client_id: &ClientId) -> Result<Option<App>>;
    async fn apps(&self, org: Option<&OrgId>, page: &PageRequest) -> Result<Vec<App>>;
    async fn update_app(&self, app: &App) -> Result<()>;
    async fn delete_app(&self, client_id: &ClientId) -> Result<()>;
    async fn insert_secret(&self, secret: &SecretRecord) -> Result<()>;
    /// The app's secrets with their last-used time.
    async fn secrets(&self, client_id: &ClientId) -> Result<Vec<(SecretRecord, Option<i64>)>>;
    /// Replace a secret's record (its expiry); the hash never changes.
    async fn update_secret(&self, secret: &SecretRecord) -> Result<()>;
    async fn delete_secret(&self, client_id: &ClientId, id: &RecordId) -> Result<()>;
    /// Record last use, in a batch; does not feed the view.
    async fn touch_secrets(&self, used: &[(RecordId, i64)]) -> Result<()>;

    // --- app keys (certificates, key pairs): public halves only; feed the view as the app ---
    async fn insert_app_key(&self, key: &AppKey) -> Result<()>;
    /// The app's keys in id order.
    async fn app_keys(&self, client_id: &ClientId) -> Result<Vec<AppKey>>;
    async fn delete_app_key(&self, client_id: &ClientId, id: &RecordId) -> Result<()>;

    // --- users and sessions ---
    async fn insert_user(&self, user: &User, password_hash: &str) -> Result<()>;
    async fn user(&self, id: &RecordId) -> Result<Option<User>>;
    /// The user and their password hash.
    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>>;
    async fn users(&self, page: &PageRequest) -> Result<Vec<User>>;
    async fn update_user(&self, user: &User, password_hash: Option<&str>) -> Result<()>;
    async fn delete_user(&self, id: &RecordId) -> Result<()>;
    async fn insert_session(&self, hash: &str, user: &RecordId, expires_at: i64) -> Result<()>;
    /// The user of a live session.
    async fn session(&self, hash: &str, now: i64) -> Result<Option<RecordId>>;
    async fn delete_session(&self, hash: &str) -> Result<()>;

    // --- revocations ---
    /// Idempotent.
    async fn revoke(&self, r: &Revocation) -> Result<()>;
    async fn revocation(&self, jti: &str) -> Result<Option<Revocation>>;
}
