//! Keeps the in-memory [`View`] in step with the store.
//!
//! Readers take the current snapshot with one atomic load ([`LiveView::get`]) and never
//! wait. Writers (the admin API) write to the store, then call [`LiveView::refresh`],
//! which reads the change feed from where it left off, reloads only the records named,
//! applies them to a clone of the view (cheap: persistent maps) and swaps it in. A
//! follower ([`LiveView::follow`]) does the same whenever the store signals a change (a
//! PostgreSQL `NOTIFY` from another node) and every 250 ms regardless, so writes made by
//! another process (the CLI on the same data directory, another node) arrive within a
//! second even when a notification is lost; every few minutes it rebuilds the whole view
//! from a snapshot, so whatever the feed missed heals. A `Resync` change (a bulk write,
//! such as `portcullis bench-seed`) or a feed pruned past this view's position rebuilds
//! the whole view from a snapshot at once.
//!
//! When the store cannot be reached the view keeps serving as it was (token grants and
//! gateway decisions read only the view), [`LiveView::store_down_since`] says since when,
//! and the follower catches up from where it left off once the store answers again.

use crate::keys::{KeyOpError, key_material};
use crate::master_key::MasterKey;
use arc_swap::ArcSwap;
use portcullis_core::clock::Clock;
use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::model::{
    App, AppKey, Group, Org, Resource, Revocation, SecretRecord, SigningKeyRecord,
};
use portcullis_core::scope::Scope;
use portcullis_core::secret::{HashKey, SecretHash};
use portcullis_core::view::{AppEntry, View};
use portcullis_store::{Change, SnapshotSink, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Setting names in the store.
pub const SETTING_HASH_KEY: &str = "secret_hash_key";
pub const SETTING_ADMIN_TOKEN: &str = "admin_token_hash";

/// How many changes the feed keeps. A reader further behind than this resyncs from a
/// snapshot; the count bounds the table, not correctness.
pub const CHANGE_FEED_KEEP: u32 = 100_000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// An app's view entry; a stored key whose JWK no longer parses is logged and left out.
fn app_entry(app: App, secrets: Vec<SecretRecord>, keys: Vec<AppKey>) -> AppEntry {
    let (entry, bad) = AppEntry::with_keys(app, secrets, keys);
    for k in bad {
        tracing::warn!(client_id = %k.client_id, key = %k.id, "stored app key does not parse; ignored");
    }
    entry
}

/// Lower the calling thread to the lowest CPU priority (Linux: nice is per thread). A
/// failure only means the rebuild competes with requests as an equal; it is logged.
fn background_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(error = %e, "could not lower the view rebuild's priority");
    }
}

/// Build a view from a snapshot of the store, as its records stream past; returns it
/// with the change sequence it is consistent with.
async fn build(store: &dyn Store, master: &MasterKey, now: i64) -> Result<(View, i64), ViewError> {
    let mut b = Builder {
        view: View::default(),
        scope_pool: HashSet::new(),
        signing_keys: Vec::new(),
        now,
    };
    let seq = store.snapshot_into(&mut b).await?;
    let (keys, signer) = key_material(&b.signing_keys, master, now)?;
    b.view.set_keys(keys, signer);
    Ok((b.view, seq))
}

/// [`build`]'s sink.
struct Builder {
    view: View,
    /// One copy of each scope's text for all the apps that have it.
    scope_pool: HashSet<Scope>,
    signing_keys: Vec<SigningKeyRecord>,
    now: i64,
}

impl SnapshotSink for Builder {
    fn org(&mut self, org: Org) {
        self.view.upsert_org(org);
    }
    fn group(&mut self, group: Group) {
        self.view.upsert_group(group);
    }
    fn resource(&mut self, resource: Resource) {
        self.view.upsert_resource(resource);
    }
    fn app(&mut self, mut app: App, keys: Vec<AppKey>) {
        app.scopes.interned(&mut self.scope_pool);
        self.view.upsert_app(app_entry(app, Vec::new(), keys));
    }
    fn secret(&mut self, secret: SecretRecord) {
        if let Err(s) = self.view.add_secret(secret) {
            tracing::warn!(client_id = %s.client_id, secret = %s.id, "stored secret of no app; ignored");
        }
    }
    fn revocation(&mut self, r: Revocation) {
        if r.exp > self.now {
            self.view.revoke(&r.jti, r.exp);
        }
    }
    fn signing_key(&mut self, key: SigningKeyRecord) {
        self.signing_keys.push(key);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyOpError),
    #[error("the store has no secret-hash key; the server has not been initialised")]
    NoHashKey,
    #[error("rebuilding the view failed: {0}")]
    Rebuild(String),
}

/// Server-wide values that are not on the hot path's `View` but change at run time.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    pub admin_token_hash: Option<SecretHash>,
}

pub struct LiveView {
    current: ArcSwap<View>,
    settings: ArcSwap<Settings>,
    /// The change sequence the current view includes; the lock serialises refreshes.
    seq: tokio::sync::Mutex<i64>,
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    /// Unix time since which the store has failed every call the follower made, or
    /// [`STORE_UP`]. Written by the follower and `/readyz`, read by `/readyz` and metrics.
    down_since: AtomicI64,
    /// The change sequence the view has applied, for followers of the event stream
    /// (`GET /events/v1`): it moves after every refresh that applied something.
    applied: tokio::sync::watch::Sender<i64>,
    /// The organization of each app, group and resource this view saw deleted (the most
    /// recent [`TOMBSTONES_KEPT`]): the event stream tells a verifier of a deletion only
    /// when it was its own organization's, and the record is gone from the store by then.
    tombstones: std::sync::Mutex<Tombstones>,
}

/// How many deletions [`LiveView::deleted_org`] remembers.
pub const TOMBSTONES_KEPT: usize = 100_000;

#[derive(Default)]
struct Tombstones {
    org: std::collections::HashMap<Box<str>, OrgId>,
    order: std::collections::VecDeque<Box<str>>,
}

impl Tombstones {
    fn bury(&mut self, id: &str, org: OrgId) {
        if self.org.insert(id.into(), org).is_none() {
            self.order.push_back(id.into());
        }
        while self.order.len() > TOMBSTONES_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.org.remove(&old);
            }
        }
    }
}

/// [`LiveView::down_since`] while the store answers.
const STORE_UP: i64 = i64::MIN;

impl LiveView {
    /// Build the view from a snapshot of the store.
    pub async fn load(
        store: Arc<dyn Store>,
        master: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ViewError> {
        let (view, seq) = build(&*store, &master, clock.now()).await?;
        let this = Self {
            current: ArcSwap::from_pointee(view),
            settings: ArcSwap::from_pointee(Settings::default()),
            seq: tokio::sync::Mutex::new(seq),
            store,
            master,
            clock,
            down_since: AtomicI64::new(STORE_UP),
            applied: tokio::sync::watch::Sender::new(seq),
            tombstones: Default::default(),
        };
        this.reload_settings().await?;
        Ok(this)
    }

    /// The organization of an app, group or resource (by id) that this view saw deleted;
    /// `None` when it did not (deleted before this process started, or long ago).
    pub fn deleted_org(&self, id: &str) -> Option<OrgId> {
        self.tombstones.lock().ok()?.org.get(id).cloned()
    }

    fn bury(&self, id: &str, org: Option<&OrgId>) {
        if let (Some(org), Ok(mut t)) = (org, self.tombstones.lock()) {
            t.bury(id, org.clone());
        }
    }

    /// The current snapshot. Never blocks.
    pub fn get(&self) -> Arc<View> {
        self.current.load_full()
    }

    /// The change sequence the view has applied; moves after each refresh that applied
    /// changes (the event stream waits on it rather than polling the store).
    pub fn applied(&self) -> tokio::sync::watch::Receiver<i64> {
        self.applied.subscribe()
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Since when (unix seconds) the store has been unreachable; `None` while it answers.
    pub fn store_down_since(&self) -> Option<i64> {
        match self.down_since.load(Ordering::Relaxed) {
            STORE_UP => None,
            t => Some(t),
        }
    }

    /// Record whether the last call to the store worked; logs the transitions once.
    pub fn note_store(&self, reachable: bool) {
        if reachable {
            let was = self.down_since.swap(STORE_UP, Ordering::Relaxed);
            if was != STORE_UP {
                tracing::info!(
                    down_for_seconds = self.clock.now() - was,
                    "the store answers again; catching up with the change feed"
                );
            }
        } else {
            let now = self.clock.now();
            if self
                .down_since
                .compare_exchange(STORE_UP, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                tracing::warn!(
                    store = self.store.backend(),
                    "the store is unreachable; serving decisions from the last view"
                );
            }
        }
    }

    /// Rebuild the whole view from a snapshot of the store, whatever the feed said.
    pub async fn resync(&self) -> Result<(), ViewError> {
        let mut seq = self.seq.lock().await;
        *seq = self.rebuild().await?;
        self.applied
            .send_if_modified(|a| std::mem::replace(a, *seq) != *seq);
        Ok(())
    }

    /// Replace the view with one built from a fresh snapshot; returns the snapshot's seq.
    /// The caller holds the `seq` lock.
    ///
    /// The snapshot is read and decoded, and the view built, on a thread of its own at the
    /// lowest CPU priority (nice 19): with a hundred thousand apps that is a second of CPU.
    /// On the runtime's worker it stopped every request for that second (a server given
    /// one core has one worker); on a blocking thread at normal priority it still took half
    /// the core while requests queued (the soak's p99 reached a second at each resync).
    /// At nice 19 it runs on what requests leave idle.
    /// A view that already holds records is reconciled with the new one rather than
    /// replaced ([`View::reconcile`]), so a resync of an unchanged store keeps the old
    /// allocations and frees the new, and the resident size does not step up at each one.
    async fn rebuild(&self) -> Result<i64, ViewError> {
        let store = self.store.clone();
        let master = self.master.clone();
        let now = self.clock.now();
        let current = self.get();
        let runtime = tokio::runtime::Handle::current();
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("view-rebuild".into())
            .spawn(move || {
                background_priority();
                let rebuilt = runtime
                    .block_on(build(&*store, &master, now))
                    .map(|(built, seq)| {
                        let view = if current.counts() == (0, 0) {
                            built
                        } else {
                            let mut view = (*current).clone();
                            drop(current);
                            view.reconcile(built);
                            view
                        };
                        (view, seq)
                    });
                let _ = done.send(rebuilt);
            })
            .map_err(|e| ViewError::Rebuild(e.to_string()))?;
        // A panic in the thread drops `done`: the last good view keeps serving.
        let (view, fresh) = result.await.map_err(|_| {
            ViewError::Rebuild("the rebuild thread stopped before it finished".into())
        })??;
        self.current.store(Arc::new(view));
        self.reload_settings().await?;
        Ok(fresh)
    }

    async fn reload_settings(&self) -> Result<(), ViewError> {
        let sealed = self
            .store
            .setting(SETTING_HASH_KEY)
            .await?
            .ok_or(ViewError::NoHashKey)?;
        let raw = self
            .master
            .open(SETTING_HASH_KEY, &sealed)
            .map_err(|e| ViewError::Keys(e.into()))?;
        let bytes: [u8; 32] = raw.try_into().map_err(|_| ViewError::NoHashKey)?;
        let admin = self
            .store
            .setting(SETTING_ADMIN_TOKEN)
            .await?
            .and_then(|h| SecretHash::from_hex(&h));
        let mut view = (*self.get()).clone();
        view.set_hash_key(HashKey::from_bytes(&bytes));
        self.current.store(Arc::new(view));
        self.settings.store(Arc::new(Settings {
            admin_token_hash: admin,
        }));
        Ok(())
    }

    /// Apply every change committed since the last refresh. Returns how many were applied.
    pub async fn refresh(&self) -> Result<usize, ViewError> {
        let mut seq = self.seq.lock().await;
        let mut applied = 0;
        loop {
            // Changes this view has not seen were pruned from the feed: start over from a
            // snapshot (rare: a process that was stopped or cut off for a long time).
            let oldest = self.store.oldest_change().await?;
            if oldest > *seq + 1 {
                tracing::warn!(
                    seen = *seq,
                    oldest,
                    "the change feed moved past this view; reloading from a snapshot"
                );
                *seq = self.rebuild().await?;
                applied += 1;
                continue;
            }
            let changes = self.store.changes_since(*seq, 10_000).await?;
            let Some(&(last, _)) = changes.last() else {
                break;
            };
            // A bulk load says "everything may have changed": a snapshot covers it and
            // every change before it, so the records named in this batch need no reload.
            if changes.iter().any(|(_, c)| *c == Change::Resync) {
                tracing::info!("a bulk load was committed; reloading from a snapshot");
                *seq = self.rebuild().await?;
                applied += 1;
                continue;
            }
            // A record changed several times in the batch is reloaded once.
            let mut seen = HashSet::new();
            let mut view = (*self.get()).clone();
            let mut settings_changed = false;
            for (_, change) in changes {
                if !seen.insert(change.clone()) {
                    continue;
                }
                applied += 1;
                match change {
                    Change::Settings => settings_changed = true,
                    other => self.apply(&mut view, other).await?,
                }
            }
            view.prune_revoked(self.clock.now());
            self.current.store(Arc::new(view));
            if settings_changed {
                self.reload_settings().await?;
            }
            *seq = last;
        }
        self.applied
            .send_if_modified(|a| std::mem::replace(a, *seq) != *seq);
        Ok(applied)
    }

    async fn apply(&self, view: &mut View, change: Change) -> Result<(), ViewError> {
        match change {
            Change::Org(id) => match OrgId::parse(&id) {
                Ok(id) => match self.store.org(&id).await? {
                    Some(org) => view.upsert_org(org),
                    None => view.remove_org(id.as_str()),
                },
                Err(_) => tracing::warn!(%id, "change feed names a malformed org id"),
            },
            Change::App(id) => match ClientId::parse(&id) {
                Ok(id) => match self.store.app(&id).await? {
                    Some(app) => {
                        let secrets = self
                            .store
                            .secrets(&id)
                            .await?
                            .into_iter()
                            .map(|(s, _)| s)
                            .collect();
                        let keys = self.store.app_keys(&id).await?;
                        view.upsert_app(app_entry(app, secrets, keys));
                    }
                    None => {
                        self.bury(id.as_str(), view.app(id.as_str()).map(|e| &e.app.org_id));
                        view.remove_app(id.as_str())
                    }
                },
                Err(_) => tracing::warn!(%id, "change feed names a malformed client id"),
            },
            Change::Group(id) => match RecordId::parse(&id) {
                Ok(id) => match self.store.group(&id).await? {
                    Some(g) => view.upsert_group(g),
                    None => {
                        self.bury(id.as_str(), view.group(id.as_str()).map(|g| &g.org_id));
                        view.remove_group(id.as_str())
                    }
                },
                Err(_) => tracing::warn!(%id, "change feed names a malformed group id"),
            },
            Change::Resource(id) => match RecordId::parse(&id) {
                Ok(id) => match self.store.resource(&id).await? {
                    Some(r) => view.upsert_resource(r),
                    None => {
                        self.bury(id.as_str(), view.resource(id.as_str()).map(|r| &r.org_id));
                        view.remove_resource(id.as_str())
                    }
                },
                Err(_) => tracing::warn!(%id, "change feed names a malformed resource id"),
            },
            Change::Revocation(jti) => {
                if let Some(r) = self.store.revocation(&jti).await? {
                    view.revoke(&r.jti, r.exp);
                }
            }
            Change::SigningKeys => {
                let records = self.store.signing_keys().await?;
                let (keys, signer) = key_material(&records, &self.master, self.clock.now())?;
                view.set_keys(keys, signer);
            }
            Change::Settings | Change::Resync => {}
        }
        Ok(())
    }

    /// Follow the change feed until `shutdown` resolves, so writes by other processes
    /// reach this view: at once when the store signals a change, every `every` anyway,
    /// and from a fresh snapshot every `resync_every`. Errors are logged and retried; the
    /// last good view keeps serving.
    pub async fn follow(
        self: Arc<Self>,
        every: Duration,
        resync_every: Duration,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signal = self.store.change_signal();
        let mut last_prune = std::time::Instant::now();
        let mut last_resync = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                alive = changed(&mut signal) => if !alive { signal = None },
                _ = shutdown.changed() => return,
            }
            let result = if last_resync.elapsed() >= resync_every {
                last_resync = std::time::Instant::now();
                self.resync().await.map(|()| 0)
            } else {
                self.refresh().await
            };
            match result {
                Ok(_) => self.note_store(true),
                Err(e) => {
                    if matches!(e, ViewError::Store(_)) {
                        self.note_store(false);
                    }
                    tracing::debug!(error = %e, "refreshing the view failed; serving the last one");
                    continue;
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = std::time::Instant::now();
                match self.store.prune_changes(CHANGE_FEED_KEEP).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(pruned = n, "pruned the change feed"),
                    Err(e) => tracing::warn!(error = %e, "pruning the change feed failed"),
                }
            }
        }
    }
}

/// Wait for the store's change signal; `false` when it has ended (never resolves when
/// the store has none).
async fn changed(signal: &mut Option<tokio::sync::watch::Receiver<u64>>) -> bool {
    match signal {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}
