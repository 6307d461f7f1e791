//! The in-memory view: everything a hot path (token grants, introspection, the gateway)
//! needs, as an immutable snapshot.
//!
//! The maps are persistent (`imbl`): cloning a view is O(1) and an update copies only the
//! path to the changed entry, so the server applies each change from the store's change
//! feed to a clone and swaps it in atomically, without reloading the whole store and
//! without blocking readers.

use crate::ids::{ClientId, OrgId, RecordId};
use crate::model::{App, AppKey, Group, Org, Resource, SecretRecord};
use crate::scope::ScopeSet;
use crate::secret::HashKey;
use crate::token::{Signer, VerifyKey};
use std::sync::Arc;

/// The view's maps: persistent, and hashed with foldhash (seeded per process) rather than
/// SipHash, which was a quarter of a cached gateway decision's instructions. Every key is
/// an id the server generated, so nobody outside chooses what collides.
type HashMap<K, V> =
    imbl::GenericHashMap<K, V, foldhash::fast::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// An app with the hashes of its client secrets and its public keys.
///
/// Boxed slices rather than vectors: without the two capacity words the entry in its
/// `Arc` fits a 256-byte allocation instead of a 320-byte one (64 bytes an app; a
/// million apps are held at once).
#[derive(Debug, Clone)]
pub struct AppEntry {
    pub app: App,
    pub secrets: Box<[SecretRecord]>,
    /// Certificates and key pairs, their JWKs parsed once (see [`AppEntry::with_keys`]).
    pub keys: Box<[AppKeyEntry]>,
}

/// An app key with its verifying key ready for use.
#[derive(Debug, Clone)]
pub struct AppKeyEntry {
    pub key: AppKey,
    pub verify: Arc<VerifyKey>,
}

impl AppEntry {
    /// An entry with `keys` parsed into verifying keys. A key whose JWK does not parse is
    /// left out (it cannot verify anything) and returned, so the caller can log it.
    pub fn with_keys(
        app: App,
        secrets: Vec<SecretRecord>,
        keys: Vec<AppKey>,
    ) -> (Self, Vec<AppKey>) {
        let mut parsed = Vec::with_capacity(keys.len());
        let mut bad = Vec::new();
        for key in keys {
            match VerifyKey::from_jwk(key.alg, key.public_jwk.clone()) {
                Ok(v) => parsed.push(AppKeyEntry {
                    key,
                    verify: Arc::new(v),
                }),
                Err(_) => bad.push(key),
            }
        }
        (
            Self {
                app,
                secrets: secrets.into(),
                keys: parsed.into(),
            },
            bad,
        )
    }

    /// The key with this id (`kid`).
    pub fn key(&self, kid: &str) -> Option<&AppKeyEntry> {
        self.keys.iter().find(|k| k.key.id.as_str() == kid)
    }
}

/// The immutable snapshot. Build one with [`View::default`] and the `upsert_*` methods.
#[derive(Clone, Default)]
pub struct View {
    orgs: HashMap<OrgId, Arc<Org>>,
    apps: HashMap<ClientId, Arc<AppEntry>>,
    /// Which app each app key (`kid`) belongs to: an app-signed JWT names only its key.
    app_key_owner: HashMap<Arc<str>, ClientId>,
    groups: HashMap<RecordId, Arc<Group>>,
    resources: HashMap<RecordId, Arc<Resource>>,
    /// Revoked token ids and the `exp` after which they can be forgotten.
    revoked: HashMap<Arc<str>, i64>,
    /// Published verifying keys by kid: the current, the next and retired ones.
    keys: HashMap<Arc<str>, Arc<VerifyKey>>,
    /// The key that signs new tokens.
    signer: Option<Arc<Signer>>,
    /// The first segment of access tokens signed by each published key (see
    /// [`crate::token::access_header_b64`]).
    access_headers: Vec<Arc<str>>,
    /// The key of the client-secret hash.
    hash_key: Option<HashKey>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("orgs", &self.orgs.len())
            .field("apps", &self.apps.len())
            .field("groups", &self.groups.len())
            .field("revoked", &self.revoked.len())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl View {
    pub fn org(&self, id: &str) -> Option<&Arc<Org>> {
        self.orgs.get(id)
    }
    pub fn app(&self, client_id: &str) -> Option<&Arc<AppEntry>> {
        self.apps.get(client_id)
    }
    /// Every app, in no particular order.
    pub fn apps(&self) -> impl Iterator<Item = &Arc<AppEntry>> {
        self.apps.values()
    }
    /// The app owning the key `kid`, with that key.
    pub fn app_key(&self, kid: &str) -> Option<(&Arc<AppEntry>, &AppKeyEntry)> {
        let owner = self.app_key_owner.get(kid)?;
        let entry = self.apps.get(owner.as_str())?;
        Some((entry, entry.key(kid)?))
    }
    pub fn group(&self, id: &str) -> Option<&Arc<Group>> {
        self.groups.get(id)
    }
    pub fn resource(&self, id: &str) -> Option<&Arc<Resource>> {
        self.resources.get(id)
    }
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.contains_key(jti)
    }
    pub fn key(&self, kid: &str) -> Option<&VerifyKey> {
        self.keys.get(kid).map(|k| &**k)
    }
    pub fn keys(&self) -> impl Iterator<Item = &Arc<VerifyKey>> {
        self.keys.values()
    }
    /// Whether `segment` is the header of an access token one of our published keys signs
    /// (a string comparison: no decoding).
    pub fn is_access_token_header(&self, segment: &str) -> bool {
        self.access_headers.iter().any(|h| &**h == segment)
    }
    pub fn signer(&self) -> Option<&Arc<Signer>> {
        self.signer.as_ref()
    }
    pub fn hash_key(&self) -> Option<&HashKey> {
        self.hash_key.as_ref()
    }
    pub fn counts(&self) -> (usize, usize) {
        (self.orgs.len(), self.apps.len())
    }

    /// The app's scopes as they are now: its permission group's, if it is in one.
    /// A group that no longer exists grants nothing.
    pub fn effective_scopes(&self, app: &App) -> ScopeSet {
        self.scopes_of(app).clone()
    }

    /// [`View::effective_scopes`], borrowed (the gateway's per-request form).
    pub fn scopes_of<'a>(&'a self, app: &'a App) -> &'a ScopeSet {
        match &app.group_id {
            Some(g) => self
                .groups
                .get(g.as_str())
                .map_or(ScopeSet::empty(), |g| &g.scopes),
            None => &app.scopes,
        }
    }

    pub fn upsert_org(&mut self, org: Org) {
        self.orgs.insert(org.id.clone(), Arc::new(org));
    }
    pub fn remove_org(&mut self, id: &str) {
        self.orgs.remove(id);
    }
    pub fn upsert_app(&mut self, mut entry: AppEntry) {
        // One copy of each id string for all the records that name it (a million apps
        // otherwise hold a million copies of their orgs' ids and of their own).
        if let Some((org_id, _)) = self.orgs.get_key_value(entry.app.org_id.as_str()) {
            entry.app.org_id = org_id.clone();
        }
        for s in &mut entry.secrets {
            if s.client_id == entry.app.client_id {
                s.client_id = entry.app.client_id.clone();
            }
        }
        let client_id = entry.app.client_id.clone();
        let owned: Vec<Arc<str>> = entry
            .keys
            .iter()
            .map(|k| Arc::from(k.key.id.as_str()))
            .collect();
        // One walk of the map: the entry replaced (if any) says which keys to forget.
        if let Some(old) = self.apps.insert(client_id.clone(), Arc::new(entry)) {
            for k in &old.keys {
                self.app_key_owner.remove(k.key.id.as_str());
            }
        }
        for kid in owned {
            self.app_key_owner.insert(kid, client_id.clone());
        }
    }
    /// Add a secret to its app's entry, after the others (building from a snapshot,
    /// where the secrets follow the apps); a secret of no app in the view is returned.
    pub fn add_secret(&mut self, mut secret: SecretRecord) -> Result<(), SecretRecord> {
        let Some(entry) = self.apps.get_mut(secret.client_id.as_str()) else {
            return Err(secret);
        };
        // Not shared while a view is built, so changed in place.
        let entry = Arc::make_mut(entry);
        secret.client_id = entry.app.client_id.clone();
        let mut secrets = std::mem::take(&mut entry.secrets).into_vec();
        secrets.reserve_exact(1);
        secrets.push(secret);
        entry.secrets = secrets.into_boxed_slice();
        Ok(())
    }
    pub fn remove_app(&mut self, client_id: &str) {
        self.forget_app_keys(client_id);
        self.apps.remove(client_id);
    }
    fn forget_app_keys(&mut self, client_id: &str) {
        if let Some(old) = self.apps.get(client_id) {
            for k in &old.keys {
                self.app_key_owner.remove(k.key.id.as_str());
            }
        }
    }
    pub fn upsert_group(&mut self, group: Group) {
        self.groups.insert(group.id.clone(), Arc::new(group));
    }
    pub fn remove_group(&mut self, id: &str) {
        self.groups.remove(id);
    }
    pub fn upsert_resource(&mut self, r: Resource) {
        self.resources.insert(r.id.clone(), Arc::new(r));
    }
    pub fn remove_resource(&mut self, id: &str) {
        self.resources.remove(id);
    }
    pub fn revoke(&mut self, jti: &str, exp: i64) {
        self.revoked.insert(Arc::from(jti), exp);
    }
    /// Forget revocations of tokens that have expired anyway.
    pub fn prune_revoked(&mut self, now: i64) {
        self.revoked.retain(|_, exp| *exp > now);
    }
    pub fn set_keys(&mut self, keys: Vec<VerifyKey>, signer: Option<Signer>) {
        self.access_headers = keys
            .iter()
            .map(|k| Arc::from(crate::token::access_header_b64(k.alg, &k.kid)))
            .collect();
        self.keys = keys
            .into_iter()
            .map(|k| (k.kid.clone(), Arc::new(k)))
            .collect();
        self.signer = signer.map(Arc::new);
    }
    pub fn set_hash_key(&mut self, key: HashKey) {
        self.hash_key = Some(key);
    }

    /// Make this view hold exactly what `fresh` holds, keeping each record that did not
    /// change as it is (its allocation and the map nodes around it) and taking from `fresh`
    /// only what differs. A periodic resync of a store that did not change then leaves no
    /// second copy of the view behind: `fresh` is dropped whole, and it was allocated last.
    /// The hash key is kept (it is set from the store's settings, not from a snapshot).
    pub fn reconcile(&mut self, fresh: View) {
        let View {
            orgs,
            apps,
            app_key_owner: _,
            groups,
            resources,
            revoked,
            keys,
            signer,
            access_headers,
            hash_key: _,
        } = fresh;
        // Orgs first: an app that changed takes its org id from the map (see upsert_app).
        merge(&mut self.orgs, orgs);
        let stale: Vec<ClientId> = self
            .apps
            .keys()
            .filter(|id| !apps.contains_key(id.as_str()))
            .cloned()
            .collect();
        for id in stale {
            self.remove_app(id.as_str());
        }
        for (id, entry) in apps {
            if self
                .apps
                .get(id.as_str())
                .is_some_and(|e| same_entry(e, &entry))
            {
                continue;
            }
            self.upsert_app(Arc::unwrap_or_clone(entry));
        }
        merge(&mut self.groups, groups);
        merge(&mut self.resources, resources);
        if self.revoked != revoked {
            self.revoked = revoked;
        }
        self.keys = keys;
        self.signer = signer;
        self.access_headers = access_headers;
    }
}

/// Make `into` hold `from`'s entries, keeping its own where they are equal.
fn merge<K, V>(into: &mut HashMap<K, Arc<V>>, from: HashMap<K, Arc<V>>)
where
    K: std::hash::Hash + Eq + Clone + std::borrow::Borrow<str>,
    V: PartialEq,
{
    into.retain(|k, _| from.contains_key(k.borrow()));
    for (k, v) in from {
        if into.get(k.borrow()).is_some_and(|old| **old == *v) {
            continue;
        }
        into.insert(k, v);
    }
}

/// Whether two app entries hold the same records (the parsed keys follow from them).
fn same_entry(a: &AppEntry, b: &AppEntry) -> bool {
    a.app == b.app
        && a.secrets == b.secrets
        && a.keys.len() == b.keys.len()
        && a.keys.iter().zip(&b.keys).all(|(x, y)| x.key == y.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TechAccountId;
    use crate::model::{AppStatus, OrgStatus};

    fn org(name: &str) -> Org {
        Org {
            id: OrgId::generate(),
            name: name.into(),
            status: OrgStatus::Active,
            products: Default::default(),
            sandboxes: Default::default(),
            created_at: 0,
            tokens_invalid_before: None,
        }
    }

    fn app(org: &Org, name: &str) -> App {
        App {
            client_id: ClientId::generate(),
            org_id: org.id.clone(),
            name: name.into(),
            status: AppStatus::Active,
            technical_account_id: TechAccountId::generate(),
            products: Default::default(),
            scopes: Default::default(),
            group_id: None,
            sandboxes: Default::default(),
            token_ttl_seconds: None,
            quota: None,
            dpop_bound_access_tokens: false,
            created_at: 0,
            tokens_invalid_before: None,
        }
    }

    fn view_of(orgs: &[Org], apps: &[App]) -> View {
        let mut v = View::default();
        for o in orgs {
            v.upsert_org(o.clone());
        }
        for a in apps {
            v.upsert_app(AppEntry::with_keys(a.clone(), Vec::new(), Vec::new()).0);
        }
        v.revoke("jti-1", 100);
        v
    }

    fn secret_of(client_id: &str) -> SecretRecord {
        SecretRecord {
            id: RecordId::generate("sec"),
            // A copy of the id's text, as a decoded row has.
            client_id: ClientId::parse(client_id).unwrap(),
            prefix: "pcss_x".into(),
            hash: crate::secret::SecretHash([7; 32]),
            created_at: 0,
            expires_at: None,
        }
    }

    #[test]
    fn secrets_added_after_their_app_join_it_in_order_and_share_its_id() {
        let o = org("one");
        let a = app(&o, "a");
        let mut view = view_of(std::slice::from_ref(&o), std::slice::from_ref(&a));
        let (s1, s2) = (
            secret_of(a.client_id.as_str()),
            secret_of(a.client_id.as_str()),
        );
        view.add_secret(s1.clone()).unwrap();
        view.add_secret(s2.clone()).unwrap();
        let entry = view.app(a.client_id.as_str()).unwrap();
        assert_eq!(&*entry.secrets, &[s1, s2]);
        assert_eq!(entry.secrets.len(), 2);
        for s in &entry.secrets {
            assert_eq!(
                s.client_id.as_str().as_ptr(),
                entry.app.client_id.as_str().as_ptr()
            );
        }
        let stray = secret_of(ClientId::generate().as_str());
        assert_eq!(view.add_secret(stray.clone()), Err(stray));
    }

    #[test]
    fn reconcile_keeps_unchanged_records_and_takes_every_difference() {
        let (o1, o2) = (org("one"), org("two"));
        let (same, changed, gone) = (app(&o1, "same"), app(&o1, "changed"), app(&o2, "gone"));
        let mut current = view_of(
            &[o1.clone(), o2.clone()],
            &[same.clone(), changed.clone(), gone.clone()],
        );
        let kept_app = current.app(same.client_id.as_str()).unwrap().clone();
        let kept_org = current.org(o1.id.as_str()).unwrap().clone();

        let mut renamed = changed.clone();
        renamed.name = "renamed".into();
        let added = app(&o1, "added");
        let mut fresh = view_of(
            std::slice::from_ref(&o1),
            &[same.clone(), renamed, added.clone()],
        );
        fresh.revoke("jti-2", 200);
        current.reconcile(fresh);

        // Unchanged records are the very same allocations.
        assert!(Arc::ptr_eq(
            current.app(same.client_id.as_str()).unwrap(),
            &kept_app
        ));
        assert!(Arc::ptr_eq(current.org(o1.id.as_str()).unwrap(), &kept_org));
        // Everything that differs is the snapshot's.
        assert_eq!(
            current.app(changed.client_id.as_str()).unwrap().app.name,
            "renamed"
        );
        assert!(current.app(added.client_id.as_str()).is_some());
        assert!(current.app(gone.client_id.as_str()).is_none());
        assert!(current.org(o2.id.as_str()).is_none());
        assert_eq!(current.counts(), (1, 3));
        assert!(current.is_revoked("jti-1") && current.is_revoked("jti-2"));
    }
}
