//! The live view follows the store's change feed, and starts over from a snapshot when
//! the feed has moved past it (changes it never saw were pruned).
//!
//! On SQLite only, in both passes of the suite: this is `LiveView`'s logic over the
//! `Store` trait, not a property of a backend (the contract suite checks that pruning
//! behaves the same on PostgreSQL).

use portcullis_core::clock::SystemClock;
use portcullis_core::ids::{OrgId, RecordId};
use portcullis_core::model::{Group, Org, OrgStatus};
use portcullis_core::scope::ScopeSet;
use portcullis_core::token::Alg;
use portcullis_server::bootstrap::{Locations, initialise, open};
use portcullis_server::live_view::LiveView;
use std::sync::Arc;

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

#[tokio::test]
async fn a_view_behind_a_pruned_feed_resyncs_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let loc = Locations {
        data_dir: dir.path().join("data"),
        database_url: None,
        master_key: None,
        master_key_file: None,
        ..Default::default()
    };
    let (store, master) = open(&loc, true).await.unwrap();
    initialise(&*store, &master, None, Alg::ES256, 0)
        .await
        .unwrap();
    let view = LiveView::load(store.clone(), master.clone(), Arc::new(SystemClock))
        .await
        .unwrap();

    // Applied incrementally.
    let first = org("first");
    store.insert_org(&first).await.unwrap();
    assert_eq!(view.refresh().await.unwrap(), 1);
    assert!(view.get().org(first.id.as_str()).is_some());

    // Two writes the view has not seen, then the older one is pruned from the feed.
    let missed = org("missed");
    store.insert_org(&missed).await.unwrap();
    let group = Group {
        id: RecordId::generate("grp"),
        org_id: first.id.clone(),
        name: "g".into(),
        scopes: ScopeSet::parse("read").unwrap(),
        created_at: 0,
    };
    store.insert_group(&group).await.unwrap();
    store.prune_changes(1).await.unwrap();

    view.refresh().await.unwrap();
    let v = view.get();
    assert!(
        v.org(missed.id.as_str()).is_some(),
        "the pruned change reached the view"
    );
    assert!(v.group(group.id.as_str()).is_some());
    assert!(
        v.hash_key().is_some() && v.signer().is_some(),
        "keys survive the resync"
    );
    assert_eq!(view.refresh().await.unwrap(), 0, "and it is caught up");
}
