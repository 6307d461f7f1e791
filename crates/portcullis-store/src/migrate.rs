//! Copy one store into another (`portcullis migrate-store`): every record the [`Store`]
//! trait can list, through the target's ordinary insert methods, then the counts of both
//! compared table by table. The source is only read.
//!
//! Copied: settings (the sealed secret-hash key and the admin token hash), signing keys
//! (still sealed under the same master key), orgs, permission groups, resources, apps,
//! client secrets (their hashes), app keys, live revocations, users with their password
//! hashes, the Edge intake's events, Wave's feeds and topics. Not copied (the trait cannot
//! list them, and each is short-lived): console sessions (users sign in again), one-time
//! user links (invitations and resets: issue new ones), Wave's request, link and API
//! tokens, subscriptions and notifications, and usage counts (kept for a retention
//! window only). Nor is the audit trail (append-only, and its ids are its order): export
//! it from the source first if it must be kept.

use crate::{PageRequest, Result, Store, StoreError};
use std::collections::BTreeMap;

/// The settings the server keeps (see `portcullis_server::live_view`).
pub const SETTINGS: [&str; 2] = ["secret_hash_key", "admin_token_hash"];

/// Records per table: the source's, and the target's after the copy.
pub type Counts = BTreeMap<&'static str, u64>;

const PAGE: u32 = 1000;

/// Whether `store` holds any org, app or user (a target must be empty unless forced).
pub async fn is_empty(store: &dyn Store) -> Result<bool> {
    let one = PageRequest {
        after: None,
        limit: 1,
    };
    Ok(store.orgs(&one).await?.is_empty()
        && store.apps(None, &one).await?.is_empty()
        && store.users(&one).await?.is_empty())
}

/// Every page of a listing, by id cursor.
macro_rules! walk {
    ($list:expr, $id:expr) => {{
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = PageRequest {
                after: after.clone(),
                limit: PAGE,
            };
            let batch = $list(&page).await?;
            let done = (batch.len() as u32) < PAGE;
            after = batch.last().map($id);
            all.extend(batch);
            if done {
                break;
            }
        }
        all
    }};
}

/// Count the records of `store` per table.
pub async fn count(store: &dyn Store, now: i64) -> Result<Counts> {
    let snap = store.snapshot().await?;
    let mut c = Counts::new();
    c.insert("orgs", snap.orgs.len() as u64);
    c.insert("groups", snap.groups.len() as u64);
    c.insert("resources", snap.resources.len() as u64);
    c.insert("apps", snap.apps.len() as u64);
    c.insert("secrets", snap.secrets.len() as u64);
    c.insert("app_keys", snap.app_keys.len() as u64);
    c.insert(
        "revocations",
        snap.revocations.iter().filter(|r| r.exp > now).count() as u64,
    );
    c.insert("signing_keys", snap.signing_keys.len() as u64);
    let users = walk!(|p| store.users(p), |u: &portcullis_core::model::User| u
        .id
        .to_string());
    c.insert("users", users.len() as u64);
    let (mut events, mut feeds, mut topics) = (0, 0, 0);
    for r in &snap.resources {
        events += walk!(
            |p| store.events(&r.id, p),
            |e: &portcullis_core::model::StoredEvent| e.id.to_string()
        )
        .len() as u64;
    }
    for a in &snap.apps {
        let fs = walk!(
            |p| store.feeds(&a.client_id, p),
            |f: &portcullis_core::wave::Feed| f.id.to_string()
        );
        feeds += fs.len() as u64;
        for f in &fs {
            topics += walk!(
                |p| store.topics(&f.id, p),
                |t: &portcullis_core::wave::Topic| t.id.to_string()
            )
            .len() as u64;
        }
    }
    c.insert("events", events);
    c.insert("feeds", feeds);
    c.insert("topics", topics);
    Ok(c)
}

/// Copy `from` into `to`, calling `progress(records copied, of total)` as it goes.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    now: i64,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Counts> {
    let counts = count(from, now).await?;
    let total: u64 = counts.values().sum();
    let mut done = 0u64;
    let mut step = |n: u64| {
        done += n;
        progress(done, total);
    };
    for name in SETTINGS {
        if let Some(v) = from.setting(name).await? {
            to.set_setting(name, &v).await?;
        }
    }
    let snap = from.snapshot().await?;
    to.replace_signing_keys(&snap.signing_keys).await?;
    step(snap.signing_keys.len() as u64);
    for o in &snap.orgs {
        to.insert_org(o).await?;
        step(1);
    }
    for g in &snap.groups {
        to.insert_group(g).await?;
        step(1);
    }
    for r in &snap.resources {
        to.insert_resource(r).await?;
        step(1);
    }
    for a in &snap.apps {
        to.insert_app(a).await?;
        step(1);
    }
    for s in &snap.secrets {
        to.insert_secret(s).await?;
        step(1);
    }
    for k in &snap.app_keys {
        to.insert_app_key(k).await?;
        step(1);
    }
    for r in snap.revocations.iter().filter(|r| r.exp > now) {
        to.revoke(r).await?;
        step(1);
    }
    let users = walk!(|p| from.users(p), |u: &portcullis_core::model::User| u
        .id
        .to_string());
    for u in &users {
        let (_, hash) = from.user_by_email(&u.email).await?.ok_or_else(|| {
            StoreError::Backend(format!("user {} vanished during the copy", u.id))
        })?;
        to.insert_user(u, &hash).await?;
        step(1);
    }
    for r in &snap.resources {
        let events = walk!(
            |p| from.events(&r.id, p),
            |e: &portcullis_core::model::StoredEvent| e.id.to_string()
        );
        for chunk in events.chunks(500) {
            let batch: Vec<_> = chunk.iter().map(|e| e.event.clone()).collect();
            to.append_events(&batch).await?;
            step(chunk.len() as u64);
        }
    }
    for a in &snap.apps {
        let feeds = walk!(
            |p| from.feeds(&a.client_id, p),
            |f: &portcullis_core::wave::Feed| f.id.to_string()
        );
        for f in &feeds {
            to.insert_feed(f).await?;
            step(1);
            let topics = walk!(
                |p| from.topics(&f.id, p),
                |t: &portcullis_core::wave::Topic| t.id.to_string()
            );
            for t in &topics {
                to.insert_topic(t).await?;
                step(1);
            }
        }
    }
    Ok(counts)
}
