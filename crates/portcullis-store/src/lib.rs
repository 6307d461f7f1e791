//! # portcullis-store
//!
//! Persistence behind one contract, [`Store`]: seven traits, one per area ([`SystemStore`],
//! [`FeedStore`], [`DirectoryStore`], [`UserStore`], [`LogStore`], [`WaveStore`],
//! [`UsageStore`]). The
//! SQLite implementation ([`sqlite`]) is the embedded default for one node; the PostgreSQL
//! implementation ([`postgres`]) fills the same traits for several nodes sharing one
//! database, without touching core or the server. Both are one body of SQL (`shared.rs`);
//! each backend's file holds only what differs.
//!
//! Every write of something the in-memory view holds (orgs, apps and their secrets,
//! permission groups, revocations, signing keys, settings) appends to a **change feed** in
//! the same transaction: `(seq, kind, key)`. Users and sessions are not in the view (the
//! admin API reads them from the store), so their writes do not feed it; neither do the
//! Edge intake's events, which are append-only data, not decision data, nor Wave's feeds,
//! tokens and notifications (Adobe Wave), which no hot decision reads, nor usage counts.
//! The server's in-memory view follows it, reloading only the records named, so writes by
//! this process and by another one (the CLI on the same data directory, another node on
//! the same PostgreSQL database) all reach it.

use async_trait::async_trait;
use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::model::{
    App, AppKey, AuditEntry, Group, NewAuditEntry, NewEvent, Org, Resource, Revocation,
    SecretRecord, SigningKeyRecord, StoredEvent, User, UserLink,
};
use portcullis_core::secret::SecretHash;
use portcullis_core::usage::{Subject, UsageKey};
use portcullis_core::wave::{
    Feed, LinkToken, NewNotification, RequestToken, StoredNotification, Topic,
};

mod audit_sql;
pub mod migrate;
pub mod postgres;
mod shared;
pub mod sqlite;
pub mod test_db;

/// The password hash of a user who has none yet (invited) or whose password was reset:
/// not a PHC string, so no password matches it.
pub const NO_PASSWORD: &str = "!";

/// A [`UserLink`] from its row's columns (both backends store it the same way).
#[allow(clippy::too_many_arguments)]
fn user_link_from_row(
    hash: &str,
    kind: &str,
    user_id: &str,
    org_id: Option<&str>,
    role: Option<&str>,
    created_by: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
) -> Result<UserLink> {
    let bad = |what: &str| StoreError::Backend(format!("decoding a user link: bad {what}"));
    Ok(UserLink {
        hash: SecretHash::from_hex(hash).ok_or_else(|| bad("hash"))?,
        kind: portcullis_core::model::UserLinkKind::parse(kind).ok_or_else(|| bad("kind"))?,
        user_id: RecordId::parse(user_id).map_err(|_| bad("user_id"))?,
        org_id: org_id
            .map(|o| OrgId::parse(o).map_err(|_| bad("org_id")))
            .transpose()?,
        role: role
            .map(|r| portcullis_core::model::Role::parse(r).ok_or_else(|| bad("role")))
            .transpose()?,
        created_by,
        created_at,
        expires_at,
        used_at,
    })
}

/// Errors in backend-neutral terms (a unique violation is `Conflict` on every backend).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("store unavailable: {0}")]
    Backend(String),
    /// The input cannot be stored as given: PostgreSQL refuses a NUL character in text,
    /// which SQLite keeps. The caller's input is at fault, so it is a 400, not a 503.
    #[error("invalid input: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Cursor pagination: records after `after` in id order, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: u32,
}

/// Which audit entries to list ([`LogStore::audit`]); every field narrows, `None` is any.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// Only entries of these organizations (an org admin's view); `None` is every entry,
    /// including those that concern no organization.
    pub orgs: Option<Vec<OrgId>>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    pub outcome: Option<portcullis_core::model::AuditOutcome>,
    /// Newest first: pages go down in id order (`page.after` is then the id the next
    /// page's entries are older than). Oldest first otherwise.
    pub newest_first: bool,
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
    /// Many records changed at once (a bulk load): a reader rebuilds its view from a
    /// snapshot instead of reloading records one by one.
    Resync,
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
            Change::Resync => "resync",
        }
    }
    fn key(&self) -> &str {
        match self {
            Change::Org(k)
            | Change::App(k)
            | Change::Group(k)
            | Change::Resource(k)
            | Change::Revocation(k) => k,
            Change::SigningKeys | Change::Settings | Change::Resync => "",
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
            "resync" => Change::Resync,
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

/// What [`FeedStore::snapshot_into`] hands a snapshot to, record by record, so a reader
/// (the server's view) is built straight from the rows: with a million apps, decoding
/// every record into vectors first, then grouping secrets by app, held the whole store
/// twice and was most of a start.
///
/// Calls come in this order: every org, group and resource; then every app, each with
/// its keys; then every secret (each of an app already handed over); then revocations
/// and signing keys. Secrets come last so that they can go straight into their app's
/// entry: waiting for their app in a map cost a map the size of the store's secrets.
pub trait SnapshotSink: Send {
    fn org(&mut self, org: Org);
    fn group(&mut self, group: Group);
    fn resource(&mut self, resource: Resource);
    fn app(&mut self, app: App, keys: Vec<AppKey>);
    fn secret(&mut self, secret: SecretRecord);
    fn revocation(&mut self, revocation: Revocation);
    fn signing_key(&mut self, key: SigningKeyRecord);
}

/// [`FeedStore::snapshot`]'s sink: collects every record.
impl SnapshotSink for Snapshot {
    fn org(&mut self, org: Org) {
        self.orgs.push(org);
    }
    fn group(&mut self, group: Group) {
        self.groups.push(group);
    }
    fn resource(&mut self, resource: Resource) {
        self.resources.push(resource);
    }
    fn app(&mut self, app: App, keys: Vec<AppKey>) {
        self.apps.push(app);
        self.app_keys.extend(keys);
    }
    fn secret(&mut self, secret: SecretRecord) {
        self.secrets.push(secret);
    }
    fn revocation(&mut self, revocation: Revocation) {
        self.revocations.push(revocation);
    }
    fn signing_key(&mut self, key: SigningKeyRecord) {
        self.signing_keys.push(key);
    }
}

/// App keys read ahead of their apps (few: certificates and key pairs), handed over with
/// each app as it streams past. Joining in SQL instead (`apps LEFT JOIN app_keys`) makes
/// every app row an index seek: for secrets, 3-4 times slower than scanning each table
/// once in storage order.
#[derive(Default)]
pub(crate) struct KeysByApp(std::collections::HashMap<ClientId, Vec<AppKey>>);

impl KeysByApp {
    pub(crate) fn key(&mut self, k: AppKey) {
        self.0.entry(k.client_id.clone()).or_default().push(k);
    }
    /// Hand `app` with its keys to `sink`.
    pub(crate) fn app(&mut self, app: App, sink: &mut dyn SnapshotSink) {
        let keys = self.0.remove(&app.client_id).unwrap_or_default();
        sink.app(app, keys);
    }
}

/// Decode the JSON array `docs` and hand each element to `f` as it is decoded (the
/// array is never held decoded).
pub(crate) fn each_element<T: serde::de::DeserializeOwned>(
    docs: &str,
    f: &mut impl FnMut(T),
) -> Result<()> {
    struct Each<'f, T, F>(&'f mut F, std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>, F: FnMut(T)> serde::de::Visitor<'de> for Each<'_, T, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<(), A::Error> {
            while let Some(x) = seq.next_element()? {
                (self.0)(x);
            }
            Ok(())
        }
    }
    let bad = |e: serde_json::Error| StoreError::Backend(format!("decoding a record: {e}"));
    let mut de = serde_json::Deserializer::from_str(docs);
    serde::Deserializer::deserialize_seq(&mut de, Each(f, std::marker::PhantomData))
        .map_err(bad)?;
    de.end().map_err(bad)
}

/// Records to write in bulk ([`DirectoryStore::insert_bulk`]): benchmark seeding and imports.
/// Written in the order orgs, resources, apps, secrets, so every reference points at a
/// record written before it.
#[derive(Debug, Default, Clone)]
pub struct Bulk {
    pub orgs: Vec<Org>,
    pub resources: Vec<Resource>,
    pub apps: Vec<App>,
    pub secrets: Vec<SecretRecord>,
}

/// The persistence contract, one trait per area; [`Store`] is all of them, and what the
/// server holds (`Arc<dyn Store>`). Bring the area traits into scope with
/// `use portcullis_store::prelude::*` to call their methods.
pub trait Store:
    SystemStore + FeedStore + DirectoryStore + UserStore + LogStore + WaveStore + UsageStore
{
}

impl<T> Store for T where
    T: SystemStore
        + FeedStore
        + DirectoryStore
        + UserStore
        + LogStore
        + WaveStore
        + UsageStore
        + ?Sized
{
}

/// The area traits, to call [`Store`] methods: `use portcullis_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        DirectoryStore, FeedStore, LogStore, Store, SystemStore, UsageStore, UserStore, WaveStore,
    };
}

/// What the store is, and the server's own records: its health, its settings, the
/// token-signing keys (encrypted by the caller) and a consistent copy of the whole store.
#[async_trait]
pub trait SystemStore: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;

    async fn setting(&self, name: &str) -> Result<Option<String>>;

    /// Sets `name` unless it exists; returns whether it was set.
    async fn init_setting(&self, name: &str, value: &str) -> Result<bool>;

    async fn set_setting(&self, name: &str, value: &str) -> Result<()>;

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Make `keys` the whole set of signing keys, atomically.
    async fn replace_signing_keys(&self, keys: &[SigningKeyRecord]) -> Result<()>;

    /// Write a consistent copy of the whole store to a new file at `path`, while the store
    /// keeps serving (SQLite: `VACUUM INTO`, one read transaction). Backends whose data is
    /// not a file (PostgreSQL: use `pg_dump`) refuse.
    async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        let _ = path;
        Err(StoreError::Backend(format!(
            "the {} store cannot be backed up by Portcullis; use the database's own tools (pg_dump for PostgreSQL)",
            self.backend()
        )))
    }
}

/// The change feed the in-memory view follows, and the snapshot it starts from. Methods of
/// the other traits that write view data append to the feed in the same transaction.
#[async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// A signal that changes may have been committed, possibly by another process: its
    /// value moves when the follower of the feed should look at it now rather than at its
    /// next poll. PostgreSQL bumps it on every `NOTIFY` (and on reconnecting, since
    /// notifications sent meanwhile are lost). `None` (the default, SQLite) means the poll
    /// alone finds other processes' writes. Only a hint: the poll stays the safety net.
    fn change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    async fn last_change(&self) -> Result<i64>;

    /// Changes with `seq > after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<(i64, Change)>>;

    /// Every record the view is built from, read in one transaction, handed to `sink`;
    /// returns the change sequence the records are consistent with.
    async fn snapshot_into(&self, sink: &mut dyn SnapshotSink) -> Result<i64>;

    /// [`FeedStore::snapshot_into`], collected.
    async fn snapshot(&self) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        snap.seq = self.snapshot_into(&mut snap).await?;
        Ok(snap)
    }

    /// The oldest change still kept (0 when the feed is empty). A reader whose last seen
    /// change is older than this one less has missed pruned changes and must resync from a
    /// snapshot.
    async fn oldest_change(&self) -> Result<i64>;

    /// Forget all but the newest `keep` changes (at least one is always kept). Returns how
    /// many were deleted.
    async fn prune_changes(&self, keep: u32) -> Result<u64>;
}

/// The records gateway decisions are made from: organizations, permission groups,
/// protected resources, apps with their secrets and keys (public halves only), and token
/// revocations. Every write appends to the change feed in its transaction.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    async fn insert_org(&self, org: &Org) -> Result<()>;

    async fn org(&self, id: &OrgId) -> Result<Option<Org>>;

    async fn orgs(&self, page: &PageRequest) -> Result<Vec<Org>>;

    async fn update_org(&self, org: &Org) -> Result<()>;

    /// Deletes the org with its apps, their secrets, its groups and its resources (with
    /// their events).
    async fn delete_org(&self, id: &OrgId) -> Result<()>;

    async fn insert_group(&self, group: &Group) -> Result<()>;

    async fn group(&self, id: &RecordId) -> Result<Option<Group>>;

    async fn groups(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Group>>;

    async fn update_group(&self, group: &Group) -> Result<()>;

    /// `Conflict` while apps are in the group.
    async fn delete_group(&self, id: &RecordId) -> Result<()>;

    async fn insert_resource(&self, resource: &Resource) -> Result<()>;

    async fn resource(&self, id: &RecordId) -> Result<Option<Resource>>;

    async fn resources(&self, org: &OrgId, page: &PageRequest) -> Result<Vec<Resource>>;

    async fn update_resource(&self, resource: &Resource) -> Result<()>;

    /// Deletes the resource and its events.
    async fn delete_resource(&self, id: &RecordId) -> Result<()>;

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

    async fn insert_app_key(&self, key: &AppKey) -> Result<()>;

    /// The app's keys in id order.
    async fn app_keys(&self, client_id: &ClientId) -> Result<Vec<AppKey>>;

    async fn delete_app_key(&self, client_id: &ClientId, id: &RecordId) -> Result<()>;

    /// Write every record of `bulk`: all or none on backends that override this (SQLite
    /// writes them in one transaction with one [`Change::Resync`] in the feed). The
    /// default inserts them one by one with the single-record methods, so a backend
    /// without a faster path still works (not atomically, and with one change each).
    async fn insert_bulk(&self, bulk: &Bulk) -> Result<()> {
        for o in &bulk.orgs {
            self.insert_org(o).await?;
        }
        for r in &bulk.resources {
            self.insert_resource(r).await?;
        }
        for a in &bulk.apps {
            self.insert_app(a).await?;
        }
        for s in &bulk.secrets {
            self.insert_secret(s).await?;
        }
        Ok(())
    }

    /// Idempotent.
    async fn revoke(&self, r: &Revocation) -> Result<()>;

    async fn revocation(&self, jti: &str) -> Result<Option<Revocation>>;
}

/// People: console and admin-API users, their sessions, and one-time links (invitations,
/// password resets). Not in the view: no write feeds the change feed.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
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

    /// Create `user` without a usable password ([`NO_PASSWORD`]) and its invitation
    /// `link`, in one transaction: both or neither. A user with this email is `Conflict`.
    async fn invite_user(&self, user: &User, link: &UserLink) -> Result<()>;

    /// A password reset, in one transaction: the user's password stops working
    /// ([`NO_PASSWORD`]), their sessions end, their earlier unused links are deleted, and
    /// `link` is stored. `NotFound` when the user does not exist.
    async fn issue_password_reset(&self, link: &UserLink) -> Result<()>;

    /// The link with this token hash, used, expired or not (so a page can say which).
    async fn user_link(&self, hash: &SecretHash) -> Result<Option<UserLink>>;

    /// Use a live link (unused, `expires_at > now`): mark it used, set its user's password
    /// hash and end their sessions, in one transaction. Exactly one caller gets `Some`
    /// (links are single-use); `None` when the link is unknown, used or expired.
    async fn use_user_link(
        &self,
        hash: &SecretHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<UserLink>>;
}

/// Append-only records: the Edge intake's events and the audit trail. No method changes
/// or deletes an audit entry (the schema refuses `UPDATE` and `DELETE`); neither is in the
/// view nor feeds the change feed.
#[async_trait]
pub trait LogStore: Send + Sync + 'static {
    /// Append `events` in one transaction: all are stored, or none (an event naming a
    /// resource that does not exist is `Conflict`, and nothing is written). Returns their
    /// ids, in order.
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<i64>>;

    /// The resource's events in id order (acceptance order). `page.after` is the decimal id
    /// of the last event of the previous page; a cursor that is not one is `NotFound`.
    async fn events(&self, resource: &RecordId, page: &PageRequest) -> Result<Vec<StoredEvent>>;

    /// Append `entries` in one transaction (all or none). Returns their ids, in order.
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<Vec<i64>>;

    /// Entries matching `filter` in id order (descending when `filter.newest_first`).
    /// `page.after` is the decimal id of the last entry of the previous page; a cursor
    /// that is not one is `NotFound`.
    async fn audit(&self, filter: &AuditFilter, page: &PageRequest) -> Result<Vec<AuditEntry>>;
}

/// Adobe Wave: a publisher app's feeds and topics, OAuth 1.0 request and link tokens,
/// publisher API tokens, subscriptions and notifications. Not in the view.
#[async_trait]
pub trait WaveStore: Send + Sync + 'static {
    async fn insert_feed(&self, feed: &Feed) -> Result<()>;

    async fn feed(&self, id: &RecordId) -> Result<Option<Feed>>;

    /// The app's feeds in id order.
    async fn feeds(&self, client_id: &ClientId, page: &PageRequest) -> Result<Vec<Feed>>;

    async fn update_feed(&self, feed: &Feed) -> Result<()>;

    /// Deletes the feed with its topics, tokens, subscriptions and notifications.
    async fn delete_feed(&self, id: &RecordId) -> Result<()>;

    /// A topic URI already used is `Conflict`.
    async fn insert_topic(&self, topic: &Topic) -> Result<()>;

    async fn topic(&self, id: &RecordId) -> Result<Option<Topic>>;

    async fn topic_by_uri(&self, uri: &str) -> Result<Option<Topic>>;

    async fn topics(&self, feed: &RecordId, page: &PageRequest) -> Result<Vec<Topic>>;

    async fn update_topic(&self, topic: &Topic) -> Result<()>;

    async fn delete_topic(&self, id: &RecordId) -> Result<()>;

    /// Remember a nonce of `client` at `timestamp`; false when it was already seen (a
    /// replay). Forgets nonces whose timestamp is before `forget_before` (outside the
    /// timestamp window they are refused anyway).
    async fn remember_nonce(
        &self,
        client: &ClientId,
        nonce: &str,
        timestamp: i64,
        forget_before: i64,
    ) -> Result<bool>;

    async fn insert_request_token(&self, token: &RequestToken) -> Result<()>;

    /// A live (unexpired) request token.
    async fn request_token(&self, hash: &SecretHash, now: i64) -> Result<Option<RequestToken>>;

    /// Approve a live, not yet authorized request token for `user` and `feed`; `NotFound`
    /// when there is none.
    async fn authorize_request_token(
        &self,
        hash: &SecretHash,
        user: &RecordId,
        feed: &RecordId,
        now: i64,
    ) -> Result<()>;

    /// Delete a live, authorized request token and return it: exactly one caller gets
    /// `Some` (request tokens are single-use).
    async fn consume_request_token(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Result<Option<RequestToken>>;

    async fn insert_link_token(&self, token: &LinkToken) -> Result<()>;

    async fn link_token(&self, hash: &SecretHash) -> Result<Option<LinkToken>>;

    /// `secret` is the client secret the token was obtained with.
    async fn insert_api_token(
        &self,
        hash: &SecretHash,
        client: &ClientId,
        secret: Option<&RecordId>,
        expires_at: i64,
    ) -> Result<()>;

    /// A live API token: its app, when it expires, and the client secret it was obtained
    /// with (`None` for tokens issued before that was recorded).
    async fn api_token(
        &self,
        hash: &SecretHash,
        now: i64,
    ) -> Result<Option<(ClientId, i64, Option<RecordId>)>>;

    /// Idempotent.
    async fn subscribe(&self, user: &RecordId, feed: &RecordId, now: i64) -> Result<()>;

    /// `NotFound` when the user is not subscribed.
    async fn unsubscribe(&self, user: &RecordId, feed: &RecordId) -> Result<()>;

    /// The feeds the user subscribes to.
    async fn subscriptions(&self, user: &RecordId) -> Result<Vec<RecordId>>;

    /// Store a notification and its recipients (the `to_user` of a point-to-point one,
    /// else the feed's subscribers now), in one transaction. Returns its id and the
    /// recipients.
    async fn insert_notification(&self, n: &NewNotification) -> Result<(i64, Vec<RecordId>)>;

    /// The user's notifications with id > `after`, oldest first, at most `limit`.
    async fn inbox(
        &self,
        user: &RecordId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>>;

    /// Notifications with id > `after`, oldest first, at most `limit`, each with its
    /// recipients: what every node's live fan-out reads. Ids are handed out in commit
    /// order (PostgreSQL serialises inserts for it), so a reader that moves its cursor
    /// to the last id it read never skips one committed later.
    async fn notifications_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(StoredNotification, Vec<RecordId>)>>;

    /// The id of the newest notification (0 when there is none).
    async fn last_notification_id(&self) -> Result<i64>;

    /// A signal that notifications may have been stored, possibly by another process:
    /// PostgreSQL bumps it on every `NOTIFY portcullis_notifications` (and on
    /// reconnecting). `None` (the default, SQLite): poll [`WaveStore::notifications_since`].
    fn notification_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Forget at most `limit` notifications created before `before` (the retention
    /// window), oldest first, with their inbox rows. Returns how many.
    async fn prune_notifications(&self, before: i64, limit: u32) -> Result<u64>;

    /// Forget at most `limit` request tokens expired at `now` (approved or not).
    async fn prune_request_tokens(&self, now: i64, limit: u32) -> Result<u64>;

    /// Forget at most `limit` publisher API tokens expired at `now`.
    async fn prune_api_tokens(&self, now: i64, limit: u32) -> Result<u64>;

    /// Forget a request token, authorized or not (the subscriber denied it); `NotFound`
    /// when there is none.
    async fn delete_request_token(&self, hash: &SecretHash) -> Result<()>;
}

/// Whose usage to read ([`UsageStore::usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageFilter {
    /// Every count of the organization: its apps', and those of requests without an app
    /// the view knew that named one of its resources.
    Org(OrgId),
    /// One app's counts.
    App(ClientId),
}

/// What a stored count is about: [`Subject`] as read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsageSubject {
    /// Gateway checks of this resource (`None`: of a resource the view did not have).
    Resource(Option<String>),
    /// Token requests of this grant type.
    Grant(String),
    /// Introspection requests.
    Introspection,
}

/// Which stored counts answer a read, and which a pruning forgets: per minute (kept for a
/// short window) or per hour (kept for a long one). Every count is added to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageResolution {
    Minute,
    Hour,
}

impl UsageResolution {
    /// The counts a read in buckets of `step` seconds comes from: the hour's when `step`
    /// is a whole number of hours, the minute's otherwise.
    pub fn for_step(step: i64) -> Self {
        if step > 0 && step % 3600 == 0 {
            Self::Hour
        } else {
            Self::Minute
        }
    }

    /// Seconds per stored count.
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3600,
        }
    }

    /// `"minute"` or `"hour"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
        }
    }
}

/// One app's count of one outcome over a range ([`UsageStore::usage_by_app`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAppCount {
    /// `None`: requests without an app the server knew.
    pub client_id: Option<String>,
    pub outcome: String,
    pub count: u64,
}

/// One bucket of one series of [`UsageStore::usage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    /// The bucket's first second: `(minute / step) * step`.
    pub at: i64,
    pub subject: UsageSubject,
    pub outcome: String,
    pub count: u64,
}

/// A count's row: `(minute or hour, org_id, client_id, subject, subject_id, outcome)`,
/// with '' for an absent id so that the primary key is the whole key. It borrows the
/// key's ids: a flush of many keys copies none of them.
type UsageRow<'a> = (i64, &'a str, &'a str, &'static str, &'a str, &'static str);

fn usage_row(k: &UsageKey, size: i64) -> UsageRow<'_> {
    let (subject, subject_id) = match &k.subject {
        Subject::Resource(r) => ("resource", r.as_ref().map_or("", |r| r.as_str())),
        Subject::Grant(g) => ("grant", *g),
        Subject::Introspection => ("introspection", ""),
    };
    (
        k.minute.div_euclid(size) * size,
        k.org.as_ref().map_or("", |o| o.as_str()),
        k.app.as_ref().map_or("", |a| a.as_str()),
        subject,
        subject_id,
        k.outcome,
    )
}

/// `counts` as rows of `resolution`'s table, one per key and minute or hour (counts of
/// equal rows summed), in primary-key order: two nodes adding the same rows at once then
/// lock them in the same order, so their transactions wait for each other instead of
/// deadlocking.
fn usage_rows(counts: &[(UsageKey, u64)], resolution: UsageResolution) -> Vec<(UsageRow<'_>, i64)> {
    let size = resolution.seconds();
    let mut rows: Vec<_> = counts
        .iter()
        .map(|(k, n)| (usage_row(k, size), i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.saturating_add(later.1);
        }
        same
    });
    rows
}

/// A stored subject from its two columns.
fn usage_subject(kind: &str, id: String) -> Result<UsageSubject> {
    Ok(match kind {
        "resource" => UsageSubject::Resource(Some(id).filter(|i| !i.is_empty())),
        "grant" => UsageSubject::Grant(id),
        "introspection" => UsageSubject::Introspection,
        other => {
            return Err(StoreError::Backend(format!(
                "decoding a usage count: bad subject '{other}'"
            )));
        }
    })
}

/// Usage analytics: how many gateway decisions, token requests and introspections each
/// app made per minute, by subject and outcome. Not in the view; writes do not feed the
/// change feed. Every node adds its own counts, so the stored counts are the cluster's.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// Add `counts` to the stored counts of their minutes and of their hours (adding to
    /// what is there), in one transaction: all are added, or none.
    async fn add_usage(&self, counts: &[(UsageKey, u64)]) -> Result<()>;

    /// The counts of `filter` from `from` (inclusive) to `to` (exclusive), summed per
    /// bucket of `step` seconds (`(t / step) * step`), subject and outcome; ordered by
    /// subject (grants, then introspection, then resources, each by id), outcome and
    /// bucket. `step` is at least 60; the counts come from
    /// [`UsageResolution::for_step`]`(step)`.
    async fn usage(
        &self,
        filter: &UsageFilter,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Vec<UsageBucket>>;

    /// An organization's counts from `from` to `to` (as [`Self::usage`]) per app and
    /// outcome, over every subject, from the counts of `resolution`; ordered by app
    /// (requests without an app first) and outcome.
    async fn usage_by_app(
        &self,
        org: &OrgId,
        from: i64,
        to: i64,
        resolution: UsageResolution,
    ) -> Result<Vec<UsageAppCount>>;

    /// Forget at most `limit` counts of `resolution` older than `before` (the retention
    /// window), oldest first. Returns how many.
    async fn prune_usage(
        &self,
        resolution: UsageResolution,
        before: i64,
        limit: u32,
    ) -> Result<u64>;
}
