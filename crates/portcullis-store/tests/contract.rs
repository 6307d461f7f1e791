//! The [`Store`] contract, written once against `&dyn Store` and run on every backend.
//!
//! Each behaviour is a function in [`cases`] taking the store. [`store_contract!`] turns
//! the whole list into `#[tokio::test]`s for one backend, given an async constructor that
//! returns a fresh, empty store and a guard that keeps it alive (a temporary directory,
//! a database to drop), or `None` when the backend is not there (PostgreSQL outside CI;
//! see `portcullis_store::test_db`). Both backends run here.

use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{
    App, AppStatus, AuditOutcome, Group, KeyState, NewAuditEntry, NewEvent, Org, OrgStatus,
    Resource, Revocation, Role, SecretRecord, SigningKeyRecord, StoredEvent, User, UserLink,
    UserLinkKind,
};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::SecretHash;
use portcullis_core::token::Alg;
use portcullis_core::wave::{
    Authorization, Feed, FeedKind, LinkToken, NewNotification, RequestToken, Topic,
};
use portcullis_store::postgres::{PgOptions, PostgresStore};
use portcullis_store::prelude::*;
use portcullis_store::sqlite::SqliteStore;
use portcullis_store::test_db::TestDatabase;
use portcullis_store::{AuditFilter, Bulk, Change, PageRequest, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// Instantiate every contract case as a test of one backend.
macro_rules! store_contract {
    ($backend:ident, $open:ident) => {
        store_contract!(@cases $backend, $open;
            orgs_are_inserted_read_updated_and_deleted,
            groups_are_inserted_read_updated_and_deleted,
            resources_are_inserted_read_updated_and_deleted,
            apps_are_inserted_read_updated_and_deleted,
            secrets_are_inserted_listed_updated_touched_and_deleted,
            app_keys_are_inserted_listed_and_deleted_with_their_app,
            users_are_inserted_read_updated_and_deleted,
            updating_or_deleting_a_missing_record_is_not_found,
            inserting_a_duplicate_id_is_a_conflict,
            a_duplicate_user_email_is_a_conflict,
            listings_page_in_id_order_with_cursors,
            deleting_an_org_deletes_its_apps_secrets_groups_and_resources,
            a_group_cannot_be_deleted_while_an_app_uses_it,
            revoking_is_idempotent,
            a_nul_in_text_is_kept_or_refused_as_invalid_never_a_backend_error,
            sessions_expire_by_now_and_end_on_delete,
            an_invitation_creates_the_user_and_its_link_together,
            user_links_are_used_once_and_not_after_they_expire,
            a_password_reset_ends_the_password_sessions_and_older_links,
            every_write_appends_a_change_naming_the_record,
            changes_since_is_ordered_and_limited,
            pruning_keeps_the_newest_changes_and_moves_the_oldest,
            a_snapshot_holds_everything_at_the_last_change,
            a_streamed_snapshot_hands_over_apps_with_their_keys_then_secrets,
            init_setting_sets_a_value_only_once,
            replacing_signing_keys_replaces_the_whole_set,
            events_are_appended_and_listed_in_order,
            events_page_with_cursors,
            an_append_writes_all_events_or_none,
            deleting_a_resource_or_its_org_deletes_its_events,
            appending_events_does_not_feed_the_view,
            feeds_and_topics_are_inserted_read_updated_and_deleted,
            deleting_an_app_deletes_its_feeds_topics_and_tokens,
            request_tokens_are_authorized_once_and_consumed_once,
            nonces_are_refused_when_reused_and_forgotten_after_the_window,
            api_tokens_expire,
            notifications_reach_subscribers_or_the_linked_user_and_are_pruned,
            notifications_since_reads_in_id_order_with_recipients,
            expired_wave_tokens_are_pruned_in_batches_and_live_ones_kept,
            a_denied_request_token_is_deleted,
            wave_writes_do_not_feed_the_view,
            a_reader_never_skips_a_change_of_concurrent_writers,
            a_bulk_insert_writes_every_record_and_feeds_the_view,
            audit_entries_are_appended_filtered_and_paged,
            audit_appends_do_not_feed_the_view_and_outlive_their_org,
            usage_counts_add_up_and_are_read_in_buckets,
            usage_adds_many_keys_in_one_call_and_does_not_feed_the_view,
            usage_is_pruned_in_batches_before_the_cutoff,
        );
    };
    (@cases $backend:ident, $open:ident; $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some((store, _guard)) = super::$open().await else {
                        return;
                    };
                    super::cases::$case(&*store).await;
                }
            )*
        }
    };
}

/// A fresh SQLite store in its own temporary directory.
async fn open_sqlite() -> Option<(Box<dyn Store>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("contract.db"))
        .await
        .expect("the store opens");
    Some((Box::new(store), dir))
}

/// A fresh PostgreSQL database of its own (dropped with the guard), migrated by the
/// store as it opens.
async fn open_postgres() -> Option<(Box<dyn Store>, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let store = PostgresStore::open(&db.url, &PgOptions::default())
        .await
        .expect("the store opens");
    Some((Box::new(store), db))
}

store_contract!(sqlite, open_sqlite);
store_contract!(postgres, open_postgres);

// --- records -------------------------------------------------------------------------

fn org() -> Org {
    Org {
        id: OrgId::generate(),
        name: "Acme".into(),
        status: OrgStatus::Active,
        products: BTreeSet::from(["events".to_owned()]),
        sandboxes: BTreeSet::from(["prod".to_owned(), "dev".to_owned()]),
        created_at: 1_700_000_000,
        tokens_invalid_before: Some(1_700_000_000),
    }
}

fn app_in(org: &OrgId) -> App {
    App {
        client_id: ClientId::generate(),
        org_id: org.clone(),
        name: "Partner".into(),
        status: AppStatus::Active,
        technical_account_id: TechAccountId::generate(),
        products: ["events".to_owned()].into(),
        scopes: ScopeSet::parse("read write").unwrap(),
        group_id: None,
        sandboxes: [(
            "prod".to_owned(),
            portcullis_core::model::SandboxAccess::Read,
        )]
        .into(),
        token_ttl_seconds: Some(600),
        quota: Some(portcullis_core::model::Quota {
            requests: 50,
            per: portcullis_core::model::QuotaPeriod::Minute,
        }),
        dpop_bound_access_tokens: true,
        created_at: 1_700_000_001,
        tokens_invalid_before: None,
    }
}

fn group_in(org: &OrgId) -> Group {
    Group {
        id: RecordId::generate("grp"),
        org_id: org.clone(),
        name: "Readers".into(),
        scopes: ScopeSet::parse("read").unwrap(),
        created_at: 1_700_000_002,
    }
}

fn resource_in(org: &OrgId) -> Resource {
    Resource {
        id: RecordId::generate("res"),
        org_id: org.clone(),
        name: "Datastream".into(),
        sandbox: "prod".into(),
        product: Some("events".into()),
        scopes: ScopeSet::parse("read").unwrap(),
        allow_unauthenticated: false,
        cors_origins: vec!["https://shop.example".into()],
        created_at: 1_700_000_006,
    }
}

fn secret_of(app: &ClientId) -> SecretRecord {
    SecretRecord {
        id: RecordId::generate("sec"),
        client_id: app.clone(),
        prefix: "pcss_abcdef".into(),
        hash: SecretHash(portcullis_core::random_bytes::<32>()),
        created_at: 1_700_000_003,
        expires_at: None,
    }
}

fn user(email: &str) -> User {
    User {
        id: RecordId::generate("usr"),
        email: email.into(),
        name: "Someone".into(),
        roles: BTreeMap::new(),
        platform_admin: true,
        created_at: 1_700_000_004,
    }
}

fn signing_key(kid: &str, state: KeyState) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: Alg::ES256,
        state,
        public_jwk: serde_json::json!({"kty": "EC", "kid": kid}),
        encrypted_private_key: "c2VhbGVk".into(),
        created_at: 1_700_000_005,
        activated_at: None,
        retired_until: None,
    }
}

fn event_for(resource: &RecordId, n: u32, client: Option<&ClientId>) -> NewEvent {
    let serde_json::Value::Object(event) = serde_json::json!({
        "xdm": {"eventType": "web.webpagedetails.pageViews", "n": n},
        "data": {"text": "caf\u{e9} \u{1F600}", "list": [1, 2.5, null, true]},
    }) else {
        unreachable!("an object literal")
    };
    NewEvent {
        resource_id: resource.clone(),
        received_at: 1_700_000_100 + i64::from(n),
        authenticated: client.is_some(),
        client_id: client.cloned(),
        event,
    }
}

fn audit_entry(at: i64, actor: &str, action: &str, org: Option<&OrgId>) -> NewAuditEntry {
    let mut details = serde_json::Map::new();
    details.insert("fields".into(), serde_json::json!(["name"]));
    NewAuditEntry {
        at,
        actor: actor.into(),
        action: action.into(),
        target: format!("target-{at}"),
        outcome: if action == "auth.failed" {
            AuditOutcome::Failure
        } else {
            AuditOutcome::Success
        },
        org_id: org.cloned(),
        address: Some("192.0.2.7".into()),
        details,
    }
}

fn page(after: Option<&str>, limit: u32) -> PageRequest {
    PageRequest {
        after: after.map(str::to_owned),
        limit,
    }
}

fn feed_of(app: &App, kind: FeedKind) -> Feed {
    Feed {
        id: RecordId::generate("feed"),
        client_id: app.client_id.clone(),
        org_id: app.org_id.clone(),
        name: "Orders".into(),
        kind,
        initiation_url: Some("https://publisher.example/init".into()),
        callback_url: Some("https://publisher.example/cb".into()),
        created_at: 1_700_000_200,
    }
}

fn topic_of(feed: &Feed) -> Topic {
    Topic {
        id: RecordId::generate("top"),
        feed_id: feed.id.clone(),
        client_id: feed.client_id.clone(),
        uri: Topic::new_uri(feed),
        name: "status".into(),
        created_at: 1_700_000_201,
    }
}

fn link_for(user: &RecordId, kind: UserLinkKind, org: Option<&OrgId>, expires_at: i64) -> UserLink {
    UserLink {
        hash: hash(),
        kind,
        user_id: user.clone(),
        org_id: org.cloned(),
        role: org.map(|_| Role::Developer),
        created_by: "user:usr_admin".into(),
        created_at: 1_000,
        expires_at,
        used_at: None,
    }
}

fn hash() -> SecretHash {
    SecretHash(portcullis_core::random_bytes::<32>())
}

fn notification(feed: &Feed, topic: &Topic, to: Option<&RecordId>, at: i64) -> NewNotification {
    NewNotification {
        topic_id: topic.id.clone(),
        topic: topic.uri.clone(),
        topic_name: Some(topic.name.clone()),
        feed_id: feed.id.clone(),
        client_id: feed.client_id.clone(),
        to_user: to.cloned(),
        message: format!("caf\u{e9} at {at}"),
        link: Some("https://publisher.example/x".into()),
        image_png: Some("iVBORw0KGgo=".into()),
        created_at: at,
    }
}

mod cases {
    pub use super::usage_cases::*;

    pub async fn audit_entries_are_appended_filtered_and_paged(store: &dyn Store) {
        let (a, b) = (OrgId::generate(), OrgId::generate());
        let entries = vec![
            audit_entry(100, "user:u1", "apps.create", Some(&a)),
            audit_entry(200, "admin-token:x", "orgs.create", Some(&b)),
            audit_entry(300, "client:c1", "auth.failed", None),
            audit_entry(400, "user:u1", "apps.secrets.delete", Some(&a)),
        ];
        let ids = store.append_audit(&entries).await.unwrap();
        assert_eq!(ids.len(), 4);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert_eq!(store.append_audit(&[]).await.unwrap(), Vec::<i64>::new());

        let all = store
            .audit(&AuditFilter::default(), &page(None, 100))
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| &e.entry).collect::<Vec<_>>(),
            entries.iter().collect::<Vec<_>>()
        );
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), ids);

        let actions = |f: AuditFilter| async move {
            store
                .audit(&f, &page(None, 100))
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.entry.action)
                .collect::<Vec<_>>()
        };
        let by_actor = AuditFilter {
            actor: Some("user:u1".into()),
            ..Default::default()
        };
        assert_eq!(
            actions(by_actor).await,
            ["apps.create", "apps.secrets.delete"]
        );
        let by_action = AuditFilter {
            action: Some("auth.failed".into()),
            ..Default::default()
        };
        assert_eq!(actions(by_action).await, ["auth.failed"]);
        let by_target = AuditFilter {
            target: Some("target-200".into()),
            ..Default::default()
        };
        assert_eq!(actions(by_target).await, ["orgs.create"]);
        // since is inclusive, until exclusive.
        let window = AuditFilter {
            since: Some(200),
            until: Some(400),
            ..Default::default()
        };
        assert_eq!(actions(window).await, ["orgs.create", "auth.failed"]);
        let of_a = AuditFilter {
            orgs: Some(vec![a.clone()]),
            ..Default::default()
        };
        assert_eq!(actions(of_a).await, ["apps.create", "apps.secrets.delete"]);
        let of_none = AuditFilter {
            orgs: Some(vec![]),
            ..Default::default()
        };
        assert!(actions(of_none).await.is_empty());
        let combined = AuditFilter {
            actor: Some("user:u1".into()),
            orgs: Some(vec![a.clone(), b.clone()]),
            since: Some(101),
            ..Default::default()
        };
        assert_eq!(actions(combined).await, ["apps.secrets.delete"]);
        let failures = AuditFilter {
            outcome: Some(AuditOutcome::Failure),
            ..Default::default()
        };
        assert_eq!(actions(failures).await, ["auth.failed"]);
        let successes = AuditFilter {
            outcome: Some(AuditOutcome::Success),
            newest_first: true,
            ..Default::default()
        };
        assert_eq!(
            actions(successes).await,
            ["apps.secrets.delete", "orgs.create", "apps.create"]
        );

        // Cursor pages: the id of the last entry of a page starts the next.
        let first = store
            .audit(&AuditFilter::default(), &page(None, 3))
            .await
            .unwrap();
        assert_eq!(first.len(), 3);
        let cursor = first[2].id.to_string();
        let rest = store
            .audit(&AuditFilter::default(), &page(Some(&cursor), 3))
            .await
            .unwrap();
        assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[3]]);
        assert!(matches!(
            store
                .audit(&AuditFilter::default(), &page(Some("nope"), 3))
                .await,
            Err(StoreError::NotFound)
        ));
        // Newest first, the cursor goes down.
        let newest = AuditFilter {
            newest_first: true,
            ..Default::default()
        };
        let first = store.audit(&newest, &page(None, 3)).await.unwrap();
        assert_eq!(
            first.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ids[3], ids[2], ids[1]]
        );
        let cursor = first[2].id.to_string();
        let rest = store.audit(&newest, &page(Some(&cursor), 3)).await.unwrap();
        assert_eq!(rest.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[0]]);
    }

    pub async fn audit_appends_do_not_feed_the_view_and_outlive_their_org(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let before = store.last_change().await.unwrap();
        store
            .append_audit(&[audit_entry(1, "cli", "orgs.update", Some(&o.id))])
            .await
            .unwrap();
        assert_eq!(store.last_change().await.unwrap(), before);
        store.delete_org(&o.id).await.unwrap();
        let left = store
            .audit(
                &AuditFilter {
                    orgs: Some(vec![o.id.clone()]),
                    ..Default::default()
                },
                &page(None, 10),
            )
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "an entry outlives the org it names");
    }
    use super::*;

    /// An org and an app in it, stored.
    async fn publisher(store: &dyn Store) -> App {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let a = app_in(&o.id);
        store.insert_app(&a).await.unwrap();
        a
    }

    pub async fn feeds_and_topics_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let a = publisher(store).await;
        let mut f = feed_of(&a, FeedKind::PointToPoint);
        store.insert_feed(&f).await.unwrap();
        let b = feed_of(&a, FeedKind::Broadcast);
        store.insert_feed(&b).await.unwrap();
        assert_eq!(store.feed(&f.id).await.unwrap(), Some(f.clone()));
        let all = store.feeds(&a.client_id, &page(None, 10)).await.unwrap();
        let mut ids = vec![f.id.clone(), b.id.clone()];
        ids.sort();
        assert_eq!(all.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), ids);
        let first = store.feeds(&a.client_id, &page(None, 1)).await.unwrap();
        let rest = store
            .feeds(&a.client_id, &page(Some(first[0].id.as_str()), 10))
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        f.name = "Renamed".into();
        store.update_feed(&f).await.unwrap();
        assert_eq!(store.feed(&f.id).await.unwrap().unwrap().name, "Renamed");

        let mut t = topic_of(&f);
        store.insert_topic(&t).await.unwrap();
        assert_eq!(store.topic(&t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(store.topic_by_uri(&t.uri).await.unwrap(), Some(t.clone()));
        let mut same_uri = topic_of(&f);
        same_uri.uri = t.uri.clone();
        assert!(matches!(
            store.insert_topic(&same_uri).await,
            Err(StoreError::Conflict(_))
        ));
        t.name = "shipping".into();
        store.update_topic(&t).await.unwrap();
        assert_eq!(
            store.topics(&f.id, &page(None, 10)).await.unwrap(),
            vec![t.clone()]
        );
        store.delete_topic(&t.id).await.unwrap();
        assert_eq!(store.topic(&t.id).await.unwrap(), None);
        assert!(matches!(
            store.delete_topic(&t.id).await,
            Err(StoreError::NotFound)
        ));

        let t2 = topic_of(&f);
        store.insert_topic(&t2).await.unwrap();
        store.delete_feed(&f.id).await.unwrap();
        assert_eq!(store.feed(&f.id).await.unwrap(), None);
        assert_eq!(
            store.topic(&t2.id).await.unwrap(),
            None,
            "topics go with their feed"
        );
        assert!(matches!(
            store.delete_feed(&f.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.update_feed(&f).await,
            Err(StoreError::NotFound)
        ));
        let orphan = feed_of(&app_in(&a.org_id), FeedKind::Broadcast);
        assert!(matches!(
            store.insert_feed(&orphan).await,
            Err(StoreError::Conflict(_))
        ));
    }

    pub async fn deleting_an_app_deletes_its_feeds_topics_and_tokens(store: &dyn Store) {
        let a = publisher(store).await;
        let f = feed_of(&a, FeedKind::PointToPoint);
        store.insert_feed(&f).await.unwrap();
        let t = topic_of(&f);
        store.insert_topic(&t).await.unwrap();
        let u = user("sub@example.com");
        store.insert_user(&u, "h").await.unwrap();
        let api = hash();
        store
            .insert_api_token(&api, &a.client_id, None, 9_999)
            .await
            .unwrap();
        let link = LinkToken {
            hash: hash(),
            secret_hash: hash(),
            client_id: a.client_id.clone(),
            feed_id: f.id.clone(),
            user_id: u.id.clone(),
            created_at: 1,
        };
        store.insert_link_token(&link).await.unwrap();
        store.delete_app(&a.client_id).await.unwrap();
        assert_eq!(store.feed(&f.id).await.unwrap(), None);
        assert_eq!(store.topic_by_uri(&t.uri).await.unwrap(), None);
        assert_eq!(store.api_token(&api, 0).await.unwrap(), None);
        assert_eq!(store.link_token(&link.hash).await.unwrap(), None);
    }

    pub async fn request_tokens_are_authorized_once_and_consumed_once(store: &dyn Store) {
        let a = publisher(store).await;
        let f = feed_of(&a, FeedKind::PointToPoint);
        store.insert_feed(&f).await.unwrap();
        let u = user("sub@example.com");
        store.insert_user(&u, "h").await.unwrap();
        let t = RequestToken {
            hash: hash(),
            secret_hash: hash(),
            client_id: a.client_id.clone(),
            expires_at: 1_000,
            authorized: None,
        };
        store.insert_request_token(&t).await.unwrap();
        assert_eq!(
            store.request_token(&t.hash, 999).await.unwrap(),
            Some(t.clone())
        );
        assert_eq!(
            store.request_token(&t.hash, 1_000).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            store.consume_request_token(&t.hash, 10).await.unwrap(),
            None,
            "an unauthorized token cannot be consumed"
        );
        store
            .authorize_request_token(&t.hash, &u.id, &f.id, 10)
            .await
            .unwrap();
        assert!(matches!(
            store
                .authorize_request_token(&t.hash, &u.id, &f.id, 10)
                .await,
            Err(StoreError::NotFound)
        ));
        let approved = Authorization {
            user_id: u.id.clone(),
            feed_id: f.id.clone(),
        };
        assert_eq!(
            store
                .request_token(&t.hash, 10)
                .await
                .unwrap()
                .unwrap()
                .authorized,
            Some(approved.clone())
        );
        let consumed = store.consume_request_token(&t.hash, 10).await.unwrap();
        assert_eq!(consumed.unwrap().authorized, Some(approved));
        assert_eq!(
            store.consume_request_token(&t.hash, 10).await.unwrap(),
            None
        );
        assert_eq!(store.request_token(&t.hash, 10).await.unwrap(), None);

        let late = RequestToken {
            hash: hash(),
            expires_at: 1_000,
            ..t.clone()
        };
        store.insert_request_token(&late).await.unwrap();
        assert!(matches!(
            store
                .authorize_request_token(&late.hash, &u.id, &f.id, 1_000)
                .await,
            Err(StoreError::NotFound)
        ));
    }

    pub async fn nonces_are_refused_when_reused_and_forgotten_after_the_window(store: &dyn Store) {
        let a = publisher(store).await;
        let other = ClientId::generate();
        assert!(
            store
                .remember_nonce(&a.client_id, "n1", 100, 0)
                .await
                .unwrap()
        );
        assert!(
            !store
                .remember_nonce(&a.client_id, "n1", 100, 0)
                .await
                .unwrap()
        );
        assert!(
            store
                .remember_nonce(&a.client_id, "n1", 101, 0)
                .await
                .unwrap()
        );
        assert!(store.remember_nonce(&other, "n1", 100, 0).await.unwrap());
        // Past the window the old ones are forgotten (and refused by the timestamp check).
        assert!(
            store
                .remember_nonce(&a.client_id, "n2", 900, 500)
                .await
                .unwrap()
        );
        assert!(
            store
                .remember_nonce(&a.client_id, "n1", 100, 0)
                .await
                .unwrap()
        );
    }

    pub async fn api_tokens_expire(store: &dyn Store) {
        let a = publisher(store).await;
        let (h, s) = (hash(), RecordId::generate("sec"));
        store
            .insert_api_token(&h, &a.client_id, Some(&s), 1_000)
            .await
            .unwrap();
        assert_eq!(
            store.api_token(&h, 999).await.unwrap(),
            Some((a.client_id.clone(), 1_000, Some(s)))
        );
        assert_eq!(store.api_token(&h, 1_000).await.unwrap(), None);
        assert_eq!(store.api_token(&hash(), 0).await.unwrap(), None);
    }

    pub async fn notifications_since_reads_in_id_order_with_recipients(store: &dyn Store) {
        let a = publisher(store).await;
        let news = feed_of(&a, FeedKind::Broadcast);
        store.insert_feed(&news).await.unwrap();
        let tn = topic_of(&news);
        store.insert_topic(&tn).await.unwrap();
        let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
        store.insert_user(&alice, "h").await.unwrap();
        store.insert_user(&bob, "h").await.unwrap();
        assert_eq!(store.last_notification_id().await.unwrap(), 0);
        store.subscribe(&alice.id, &news.id, 1).await.unwrap();
        let (n1, _) = store
            .insert_notification(&notification(&news, &tn, None, 10))
            .await
            .unwrap();
        store.subscribe(&bob.id, &news.id, 1).await.unwrap();
        let (n2, _) = store
            .insert_notification(&notification(&news, &tn, None, 11))
            .await
            .unwrap();
        let (n3, _) = store
            .insert_notification(&notification(&news, &tn, Some(&bob.id), 12))
            .await
            .unwrap();
        assert_eq!(store.last_notification_id().await.unwrap(), n3);
        let sorted = |mut v: Vec<RecordId>| {
            v.sort();
            v
        };
        let all = store.notifications_since(0, 10).await.unwrap();
        let got: Vec<(i64, Vec<RecordId>)> =
            all.into_iter().map(|(n, r)| (n.id, sorted(r))).collect();
        assert_eq!(
            got,
            vec![
                (n1, vec![alice.id.clone()]),
                (n2, sorted(vec![alice.id.clone(), bob.id.clone()])),
                (n3, vec![bob.id.clone()]),
            ]
        );
        let page = store.notifications_since(n1, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].0.id, n2);
        assert_eq!(page[0].0.notification.created_at, 11);
        assert!(store.notifications_since(n3, 10).await.unwrap().is_empty());
    }

    pub async fn expired_wave_tokens_are_pruned_in_batches_and_live_ones_kept(store: &dyn Store) {
        let a = publisher(store).await;
        let token = |expires_at| RequestToken {
            hash: hash(),
            secret_hash: hash(),
            client_id: a.client_id.clone(),
            expires_at,
            authorized: None,
        };
        let (old1, old2, live) = (token(100), token(200), token(1_000));
        for t in [&old1, &old2, &live] {
            store.insert_request_token(t).await.unwrap();
        }
        let (api_old, api_live) = (hash(), hash());
        store
            .insert_api_token(&api_old, &a.client_id, None, 200)
            .await
            .unwrap();
        store
            .insert_api_token(&api_live, &a.client_id, None, 1_000)
            .await
            .unwrap();
        // Bounded: one at a time, then nothing left to prune at 500.
        assert_eq!(store.prune_request_tokens(500, 1).await.unwrap(), 1);
        assert_eq!(store.prune_request_tokens(500, 10).await.unwrap(), 1);
        assert_eq!(store.prune_request_tokens(500, 10).await.unwrap(), 0);
        assert_eq!(store.prune_api_tokens(500, 10).await.unwrap(), 1);
        // Gone, even to a reader whose clock is earlier; the live ones stay.
        for t in [&old1, &old2] {
            assert_eq!(store.request_token(&t.hash, 0).await.unwrap(), None);
        }
        assert!(
            store
                .request_token(&live.hash, 500)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.api_token(&api_old, 0).await.unwrap(), None);
        assert_eq!(
            store.api_token(&api_live, 500).await.unwrap(),
            Some((a.client_id.clone(), 1_000, None))
        );
    }

    pub async fn a_denied_request_token_is_deleted(store: &dyn Store) {
        let a = publisher(store).await;
        let t = RequestToken {
            hash: hash(),
            secret_hash: hash(),
            client_id: a.client_id.clone(),
            expires_at: 1_000,
            authorized: None,
        };
        store.insert_request_token(&t).await.unwrap();
        store.delete_request_token(&t.hash).await.unwrap();
        assert_eq!(store.request_token(&t.hash, 0).await.unwrap(), None);
        assert!(matches!(
            store.delete_request_token(&t.hash).await,
            Err(StoreError::NotFound)
        ));
    }

    pub async fn notifications_reach_subscribers_or_the_linked_user_and_are_pruned(
        store: &dyn Store,
    ) {
        let a = publisher(store).await;
        let news = feed_of(&a, FeedKind::Broadcast);
        let p2p = feed_of(&a, FeedKind::PointToPoint);
        store.insert_feed(&news).await.unwrap();
        store.insert_feed(&p2p).await.unwrap();
        let (tn, tp) = (topic_of(&news), topic_of(&p2p));
        store.insert_topic(&tn).await.unwrap();
        store.insert_topic(&tp).await.unwrap();
        let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
        store.insert_user(&alice, "h").await.unwrap();
        store.insert_user(&bob, "h").await.unwrap();
        store.subscribe(&alice.id, &news.id, 1).await.unwrap();
        store.subscribe(&alice.id, &news.id, 2).await.unwrap();
        store.subscribe(&bob.id, &news.id, 1).await.unwrap();
        assert_eq!(
            store.subscriptions(&alice.id).await.unwrap(),
            vec![news.id.clone()]
        );

        let (b1, mut to) = store
            .insert_notification(&notification(&news, &tn, None, 100))
            .await
            .unwrap();
        to.sort();
        let mut both = vec![alice.id.clone(), bob.id.clone()];
        both.sort();
        assert_eq!(to, both);
        let p = notification(&p2p, &tp, Some(&alice.id), 200);
        let (p1, to) = store.insert_notification(&p).await.unwrap();
        assert_eq!(to, vec![alice.id.clone()]);
        assert!(p1 > b1);
        store.unsubscribe(&bob.id, &news.id).await.unwrap();
        assert!(matches!(
            store.unsubscribe(&bob.id, &news.id).await,
            Err(StoreError::NotFound)
        ));
        let (b2, to) = store
            .insert_notification(&notification(&news, &tn, None, 300))
            .await
            .unwrap();
        assert_eq!(to, vec![alice.id.clone()]);

        let ids = |v: Vec<portcullis_core::wave::StoredNotification>| {
            v.into_iter().map(|n| n.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store.inbox(&alice.id, 0, 10).await.unwrap()),
            vec![b1, p1, b2]
        );
        assert_eq!(
            ids(store.inbox(&alice.id, b1, 10).await.unwrap()),
            vec![p1, b2]
        );
        assert_eq!(ids(store.inbox(&alice.id, 0, 1).await.unwrap()), vec![b1]);
        assert_eq!(ids(store.inbox(&bob.id, 0, 10).await.unwrap()), vec![b1]);
        let got = store.inbox(&alice.id, b1, 1).await.unwrap().remove(0);
        assert_eq!(got.notification, p);

        assert_eq!(store.prune_notifications(201, 1).await.unwrap(), 1);
        assert_eq!(store.prune_notifications(201, 10).await.unwrap(), 1);
        assert_eq!(ids(store.inbox(&alice.id, 0, 10).await.unwrap()), vec![b2]);
        store.delete_user(&alice.id).await.unwrap();
        assert!(store.inbox(&alice.id, 0, 10).await.unwrap().is_empty());
        assert!(store.subscriptions(&alice.id).await.unwrap().is_empty());
    }

    pub async fn wave_writes_do_not_feed_the_view(store: &dyn Store) {
        let a = publisher(store).await;
        let before = store.last_change().await.unwrap();
        let f = feed_of(&a, FeedKind::Broadcast);
        store.insert_feed(&f).await.unwrap();
        let t = topic_of(&f);
        store.insert_topic(&t).await.unwrap();
        store
            .insert_api_token(&hash(), &a.client_id, None, 5)
            .await
            .unwrap();
        store.remember_nonce(&a.client_id, "n", 1, 0).await.unwrap();
        store
            .insert_notification(&notification(&f, &t, None, 1))
            .await
            .unwrap();
        assert_eq!(store.last_change().await.unwrap(), before);
    }

    /// The changes appended since `before`.
    async fn changes_after(store: &dyn Store, before: i64) -> Vec<Change> {
        store
            .changes_since(before, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, c)| c)
            .collect()
    }

    fn assert_not_found<T: std::fmt::Debug>(r: portcullis_store::Result<T>, what: &str) {
        assert!(
            matches!(r, Err(StoreError::NotFound)),
            "{what}: expected NotFound, got {r:?}"
        );
    }

    fn assert_conflict<T: std::fmt::Debug>(r: portcullis_store::Result<T>, what: &str) {
        assert!(
            matches!(r, Err(StoreError::Conflict(_))),
            "{what}: expected Conflict, got {r:?}"
        );
    }

    pub async fn orgs_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let mut o = org();
        assert_eq!(store.org(&o.id).await.unwrap(), None);
        store.insert_org(&o).await.unwrap();
        assert_eq!(store.org(&o.id).await.unwrap(), Some(o.clone()));
        o.name = "Acme Corp".into();
        o.status = OrgStatus::Disabled;
        o.products.insert("notifications".into());
        store.update_org(&o).await.unwrap();
        assert_eq!(store.org(&o.id).await.unwrap(), Some(o.clone()));
        store.delete_org(&o.id).await.unwrap();
        assert_eq!(store.org(&o.id).await.unwrap(), None);
    }

    pub async fn groups_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let mut g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        assert_eq!(store.group(&g.id).await.unwrap(), Some(g.clone()));
        g.name = "Writers".into();
        g.scopes = ScopeSet::parse("write admin").unwrap();
        store.update_group(&g).await.unwrap();
        assert_eq!(store.group(&g.id).await.unwrap(), Some(g.clone()));
        store.delete_group(&g.id).await.unwrap();
        assert_eq!(store.group(&g.id).await.unwrap(), None);
    }

    pub async fn resources_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let (o, other) = (org(), org());
        store.insert_org(&o).await.unwrap();
        store.insert_org(&other).await.unwrap();
        let mut r = resource_in(&o.id);
        assert_eq!(store.resource(&r.id).await.unwrap(), None);
        store.insert_resource(&r).await.unwrap();
        assert_eq!(store.resource(&r.id).await.unwrap(), Some(r.clone()));
        let elsewhere = resource_in(&other.id);
        store.insert_resource(&elsewhere).await.unwrap();
        assert_eq!(
            store.resources(&o.id, &page(None, 10)).await.unwrap(),
            vec![r.clone()],
            "a listing holds only the org's resources"
        );

        r.name = "Renamed".into();
        r.sandbox = "dev".into();
        r.product = None;
        r.scopes = ScopeSet::parse("read write").unwrap();
        r.allow_unauthenticated = true;
        r.cors_origins = vec!["*".into(), "http://localhost:8080".into()];
        store.update_resource(&r).await.unwrap();
        assert_eq!(store.resource(&r.id).await.unwrap(), Some(r.clone()));

        assert_conflict(store.insert_resource(&r).await, "resource");
        store.delete_resource(&r.id).await.unwrap();
        assert_eq!(store.resource(&r.id).await.unwrap(), None);
        assert!(
            store
                .resources(&o.id, &page(None, 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_not_found(store.update_resource(&r).await, "update_resource");
        assert_not_found(store.delete_resource(&r.id).await, "delete_resource");
        assert_eq!(
            store.resource(&elsewhere.id).await.unwrap(),
            Some(elsewhere)
        );
    }

    pub async fn apps_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        let mut a = app_in(&o.id);
        store.insert_app(&a).await.unwrap();
        assert_eq!(store.app(&a.client_id).await.unwrap(), Some(a.clone()));
        a.status = AppStatus::Suspended;
        a.scopes = ScopeSet::default();
        a.group_id = Some(g.id.clone());
        a.token_ttl_seconds = None;
        store.update_app(&a).await.unwrap();
        assert_eq!(store.app(&a.client_id).await.unwrap(), Some(a.clone()));
        let s = secret_of(&a.client_id);
        store.insert_secret(&s).await.unwrap();
        store.delete_app(&a.client_id).await.unwrap();
        assert_eq!(store.app(&a.client_id).await.unwrap(), None);
        assert!(
            store.secrets(&a.client_id).await.unwrap().is_empty(),
            "an app's secrets go with it"
        );
    }

    pub async fn app_keys_are_inserted_listed_and_deleted_with_their_app(store: &dyn Store) {
        use portcullis_core::model::{AppKey, AppKeySource};
        let o = org();
        store.insert_org(&o).await.unwrap();
        let (a, b) = (app_in(&o.id), app_in(&o.id));
        store.insert_app(&a).await.unwrap();
        store.insert_app(&b).await.unwrap();
        let key = |client: &ClientId, source: AppKeySource| AppKey {
            id: RecordId::generate("key"),
            client_id: client.clone(),
            alg: portcullis_core::token::Alg::ES256,
            public_jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}),
            source,
            created_at: 1_700_000_009,
        };
        let cert = key(
            &a.client_id,
            AppKeySource::Certificate {
                fingerprint_sha256: "ab".repeat(32),
                subject: "CN=partner".into(),
                not_after: 1_800_000_000,
            },
        );
        let pair = key(&a.client_id, AppKeySource::KeyPair);
        let before = store.last_change().await.unwrap();
        store.insert_app_key(&cert).await.unwrap();
        store.insert_app_key(&pair).await.unwrap();
        store
            .insert_app_key(&key(&b.client_id, AppKeySource::KeyPair))
            .await
            .unwrap();
        let mut mine = vec![cert.clone(), pair.clone()];
        mine.sort_by(|x, y| x.id.as_str().cmp(y.id.as_str()));
        assert_eq!(store.app_keys(&a.client_id).await.unwrap(), mine);
        assert!(
            changes_after(store, before)
                .await
                .contains(&Change::App(a.client_id.to_string())),
            "a key change is the app's change"
        );
        assert_conflict(store.insert_app_key(&cert).await, "app key");
        let orphan = key(&ClientId::generate(), AppKeySource::KeyPair);
        assert!(
            store.insert_app_key(&orphan).await.is_err(),
            "a key needs its app"
        );
        store.delete_app_key(&a.client_id, &pair.id).await.unwrap();
        assert_eq!(store.app_keys(&a.client_id).await.unwrap(), vec![cert]);
        assert_not_found(
            store.delete_app_key(&b.client_id, &pair.id).await,
            "delete_app_key",
        );
        assert_eq!(store.snapshot().await.unwrap().app_keys.len(), 2);
        store.delete_app(&a.client_id).await.unwrap();
        assert!(store.app_keys(&a.client_id).await.unwrap().is_empty());
        store.delete_org(&o.id).await.unwrap();
        assert!(store.snapshot().await.unwrap().app_keys.is_empty());
    }

    pub async fn secrets_are_inserted_listed_updated_touched_and_deleted(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let a = app_in(&o.id);
        let b = app_in(&o.id);
        store.insert_app(&a).await.unwrap();
        store.insert_app(&b).await.unwrap();
        let mut s1 = secret_of(&a.client_id);
        let s2 = secret_of(&a.client_id);
        let other = secret_of(&b.client_id);
        for s in [&s1, &s2, &other] {
            store.insert_secret(s).await.unwrap();
        }
        let mut want = vec![(s1.clone(), None), (s2.clone(), None)];
        want.sort_by(|x, y| x.0.id.cmp(&y.0.id));
        assert_eq!(
            store.secrets(&a.client_id).await.unwrap(),
            want,
            "an app's secrets, in id order"
        );

        s1.expires_at = Some(1_800_000_000);
        store.update_secret(&s1).await.unwrap();
        let listed = store.secrets(&a.client_id).await.unwrap();
        assert_eq!(listed.iter().find(|(s, _)| s.id == s1.id).unwrap().0, s1);

        // Last use only moves forward, and is not a change the view follows.
        let before = store.last_change().await.unwrap();
        store.touch_secrets(&[(s1.id.clone(), 500)]).await.unwrap();
        store
            .touch_secrets(&[(s1.id.clone(), 400), (s2.id.clone(), 450)])
            .await
            .unwrap();
        store.touch_secrets(&[]).await.unwrap();
        assert_eq!(
            store.last_change().await.unwrap(),
            before,
            "touch_secrets does not feed the view"
        );
        let used: BTreeMap<_, _> = store
            .secrets(&a.client_id)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, u)| (s.id, u))
            .collect();
        assert_eq!(used[&s1.id], Some(500));
        assert_eq!(used[&s2.id], Some(450));

        store.delete_secret(&a.client_id, &s1.id).await.unwrap();
        let left: Vec<_> = store
            .secrets(&a.client_id)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s.id)
            .collect();
        assert_eq!(left, vec![s2.id.clone()]);
        // A secret is addressed through its own app only.
        assert_not_found(
            store.delete_secret(&a.client_id, &other.id).await,
            "another app's secret",
        );
        assert_eq!(store.secrets(&b.client_id).await.unwrap().len(), 1);
    }

    pub async fn users_are_inserted_read_updated_and_deleted(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let mut u = user("someone@example.com");
        u.roles.insert(o.id.clone(), Role::Developer);
        store.insert_user(&u, "hash-1").await.unwrap();
        assert_eq!(store.user(&u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(
            store.user_by_email("someone@example.com").await.unwrap(),
            Some((u.clone(), "hash-1".to_owned()))
        );
        assert_eq!(
            store.user_by_email("nobody@example.com").await.unwrap(),
            None
        );

        u.email = "renamed@example.com".into();
        u.roles.insert(o.id.clone(), Role::Admin);
        store.update_user(&u, None).await.unwrap();
        assert_eq!(store.user(&u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(
            store.user_by_email("someone@example.com").await.unwrap(),
            None,
            "the old email is free"
        );
        assert_eq!(
            store
                .user_by_email("renamed@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some("hash-1".to_owned()),
            "no new hash keeps the password"
        );
        store.update_user(&u, Some("hash-2")).await.unwrap();
        assert_eq!(
            store
                .user_by_email("renamed@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some("hash-2".to_owned())
        );
        store.delete_user(&u.id).await.unwrap();
        assert_eq!(store.user(&u.id).await.unwrap(), None);
        assert_eq!(
            store.user_by_email("renamed@example.com").await.unwrap(),
            None
        );
    }

    pub async fn updating_or_deleting_a_missing_record_is_not_found(store: &dyn Store) {
        let o = org();
        assert_not_found(store.update_org(&o).await, "update_org");
        assert_not_found(store.delete_org(&o.id).await, "delete_org");
        store.insert_org(&o).await.unwrap();
        let g = group_in(&o.id);
        assert_not_found(store.update_group(&g).await, "update_group");
        assert_not_found(store.delete_group(&g.id).await, "delete_group");
        let a = app_in(&o.id);
        assert_not_found(store.update_app(&a).await, "update_app");
        assert_not_found(store.delete_app(&a.client_id).await, "delete_app");
        store.insert_app(&a).await.unwrap();
        let s = secret_of(&a.client_id);
        assert_not_found(store.update_secret(&s).await, "update_secret");
        assert_not_found(
            store.delete_secret(&a.client_id, &s.id).await,
            "delete_secret",
        );
        let u = user("ghost@example.com");
        assert_not_found(store.update_user(&u, None).await, "update_user");
        assert_not_found(store.delete_user(&u.id).await, "delete_user");
    }

    pub async fn inserting_a_duplicate_id_is_a_conflict(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        assert_conflict(store.insert_org(&o).await, "org");
        let g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        assert_conflict(store.insert_group(&g).await, "group");
        let a = app_in(&o.id);
        store.insert_app(&a).await.unwrap();
        assert_conflict(store.insert_app(&a).await, "app");
        let s = secret_of(&a.client_id);
        store.insert_secret(&s).await.unwrap();
        assert_conflict(store.insert_secret(&s).await, "secret");
        let u = user("one@example.com");
        store.insert_user(&u, "h").await.unwrap();
        let mut same_id = u.clone();
        same_id.email = "two@example.com".into();
        assert_conflict(store.insert_user(&same_id, "h").await, "user id");
        // The first records are intact.
        assert_eq!(store.org(&o.id).await.unwrap(), Some(o));
        assert_eq!(store.user(&u.id).await.unwrap(), Some(u));
        assert_eq!(store.secrets(&a.client_id).await.unwrap().len(), 1);
    }

    pub async fn a_duplicate_user_email_is_a_conflict(store: &dyn Store) {
        let first = user("taken@example.com");
        store.insert_user(&first, "h").await.unwrap();
        assert_conflict(
            store.insert_user(&user("taken@example.com"), "h").await,
            "insert",
        );
        let mut second = user("free@example.com");
        store.insert_user(&second, "h").await.unwrap();
        second.email = "taken@example.com".into();
        assert_conflict(store.update_user(&second, None).await, "update");
        assert_eq!(
            store.user(&second.id).await.unwrap().unwrap().email,
            "free@example.com",
            "a refused update changes nothing"
        );
    }

    /// Walk a listing with `limit`-sized pages; return the ids in the order listed.
    async fn walk<F, Fut>(limit: u32, mut list: F) -> Vec<String>
    where
        F: FnMut(PageRequest) -> Fut,
        Fut: std::future::Future<Output = Vec<String>>,
    {
        let mut out: Vec<String> = Vec::new();
        loop {
            let batch = list(page(out.last().map(String::as_str), limit)).await;
            assert!(
                batch.len() <= limit as usize,
                "a page is at most `limit` long"
            );
            let done = batch.len() < limit as usize;
            out.extend(batch);
            if done {
                return out;
            }
            assert!(out.len() < 10_000, "the listing does not end");
        }
    }

    fn assert_walked(got: &[String], want: &[String], what: &str) {
        let mut sorted = want.to_vec();
        sorted.sort();
        assert_eq!(
            got,
            sorted.as_slice(),
            "{what}: every record once, in id order"
        );
    }

    pub async fn listings_page_in_id_order_with_cursors(store: &dyn Store) {
        let (o1, o2) = (org(), org());
        let mut org_ids = vec![o1.id.to_string(), o2.id.to_string()];
        store.insert_org(&o1).await.unwrap();
        store.insert_org(&o2).await.unwrap();
        for _ in 0..5 {
            let o = org();
            org_ids.push(o.id.to_string());
            store.insert_org(&o).await.unwrap();
        }
        let (mut apps1, mut apps2, mut groups1, mut users) = (vec![], vec![], vec![], vec![]);
        for i in 0..7 {
            let a = app_in(if i % 3 == 0 { &o2.id } else { &o1.id });
            let list = if i % 3 == 0 { &mut apps2 } else { &mut apps1 };
            list.push(a.client_id.to_string());
            store.insert_app(&a).await.unwrap();
            let g = group_in(&o1.id);
            groups1.push(g.id.to_string());
            store.insert_group(&g).await.unwrap();
            let u = user(&format!("user{i}@example.com"));
            users.push(u.id.to_string());
            store.insert_user(&u, "h").await.unwrap();
        }
        store.insert_group(&group_in(&o2.id)).await.unwrap();

        let o1_id = &o1.id;
        let got = walk(3, |p| async move {
            store
                .orgs(&p)
                .await
                .unwrap()
                .iter()
                .map(|o| o.id.to_string())
                .collect()
        })
        .await;
        assert_walked(&got, &org_ids, "orgs");
        let got = walk(2, |p| async move {
            store
                .apps(Some(o1_id), &p)
                .await
                .unwrap()
                .iter()
                .map(|a| a.client_id.to_string())
                .collect()
        })
        .await;
        assert_walked(&got, &apps1, "apps of one org");
        let all_apps: Vec<String> = apps1.iter().chain(&apps2).cloned().collect();
        let got = walk(3, |p| async move {
            store
                .apps(None, &p)
                .await
                .unwrap()
                .iter()
                .map(|a| a.client_id.to_string())
                .collect()
        })
        .await;
        assert_walked(&got, &all_apps, "all apps");
        let got = walk(3, |p| async move {
            store
                .groups(o1_id, &p)
                .await
                .unwrap()
                .iter()
                .map(|g| g.id.to_string())
                .collect()
        })
        .await;
        assert_walked(&got, &groups1, "groups of one org");
        let got = walk(2, |p| async move {
            store
                .users(&p)
                .await
                .unwrap()
                .iter()
                .map(|u| u.id.to_string())
                .collect()
        })
        .await;
        assert_walked(&got, &users, "users");

        // A page of exactly `limit`, and a cursor past the end.
        assert_eq!(store.orgs(&page(None, 7)).await.unwrap().len(), 7);
        let last = org_ids.iter().max().unwrap();
        assert!(store.orgs(&page(Some(last), 7)).await.unwrap().is_empty());
    }

    pub async fn deleting_an_org_deletes_its_apps_secrets_groups_and_resources(store: &dyn Store) {
        let (doomed, kept) = (org(), org());
        store.insert_org(&doomed).await.unwrap();
        store.insert_org(&kept).await.unwrap();
        let g = group_in(&doomed.id);
        store.insert_group(&g).await.unwrap();
        let mut in_group = app_in(&doomed.id);
        in_group.scopes = ScopeSet::default();
        in_group.group_id = Some(g.id.clone());
        let plain = app_in(&doomed.id);
        let survivor = app_in(&kept.id);
        let kept_group = group_in(&kept.id);
        store.insert_group(&kept_group).await.unwrap();
        let res = resource_in(&doomed.id);
        store.insert_resource(&res).await.unwrap();
        let kept_res = resource_in(&kept.id);
        store.insert_resource(&kept_res).await.unwrap();
        for a in [&in_group, &plain, &survivor] {
            store.insert_app(a).await.unwrap();
            store.insert_secret(&secret_of(&a.client_id)).await.unwrap();
        }
        let before = store.last_change().await.unwrap();

        store.delete_org(&doomed.id).await.unwrap();

        assert_eq!(store.org(&doomed.id).await.unwrap(), None);
        for a in [&in_group, &plain] {
            assert_eq!(store.app(&a.client_id).await.unwrap(), None);
            assert!(store.secrets(&a.client_id).await.unwrap().is_empty());
        }
        assert_eq!(store.group(&g.id).await.unwrap(), None);
        assert_eq!(store.org(&kept.id).await.unwrap(), Some(kept.clone()));
        assert_eq!(
            store.app(&survivor.client_id).await.unwrap(),
            Some(survivor.clone())
        );
        assert_eq!(store.secrets(&survivor.client_id).await.unwrap().len(), 1);
        assert_eq!(store.group(&kept_group.id).await.unwrap(), Some(kept_group));
        assert_eq!(store.resource(&res.id).await.unwrap(), None);
        assert!(
            store
                .resources(&doomed.id, &page(None, 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.resource(&kept_res.id).await.unwrap(),
            Some(kept_res.clone())
        );
        let changes: std::collections::HashSet<_> =
            changes_after(store, before).await.into_iter().collect();
        for c in [
            Change::Org(doomed.id.to_string()),
            Change::App(in_group.client_id.to_string()),
            Change::App(plain.client_id.to_string()),
            Change::Group(g.id.to_string()),
            Change::Resource(res.id.to_string()),
        ] {
            assert!(changes.contains(&c), "the feed names {c:?}: {changes:?}");
        }
        assert!(!changes.contains(&Change::App(survivor.client_id.to_string())));
        assert!(!changes.contains(&Change::Resource(kept_res.id.to_string())));
    }

    pub async fn a_group_cannot_be_deleted_while_an_app_uses_it(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        let mut a = app_in(&o.id);
        a.scopes = ScopeSet::default();
        a.group_id = Some(g.id.clone());
        store.insert_app(&a).await.unwrap();
        let before = store.last_change().await.unwrap();
        assert_conflict(store.delete_group(&g.id).await, "a group in use");
        assert_eq!(store.group(&g.id).await.unwrap(), Some(g.clone()));
        assert_eq!(
            store.last_change().await.unwrap(),
            before,
            "a refused delete appends nothing"
        );
        a.group_id = None;
        store.update_app(&a).await.unwrap();
        store.delete_group(&g.id).await.unwrap();
        assert_eq!(store.group(&g.id).await.unwrap(), None);
    }

    pub async fn revoking_is_idempotent(store: &dyn Store) {
        let r = Revocation {
            jti: "jti-1".into(),
            client_id: ClientId::generate(),
            exp: 1_900_000_000,
        };
        assert_eq!(store.revocation(&r.jti).await.unwrap(), None);
        let before = store.last_change().await.unwrap();
        store.revoke(&r).await.unwrap();
        store.revoke(&r).await.unwrap();
        assert_eq!(store.revocation(&r.jti).await.unwrap(), Some(r.clone()));
        assert_eq!(
            changes_after(store, before).await,
            vec![Change::Revocation(r.jti.clone())],
            "revoking twice is one change"
        );
    }

    /// PostgreSQL refuses a NUL in a text parameter, SQLite keeps it: either is fine, but
    /// the refusal must read as the caller's bad input (a 400), not as the store being down
    /// (a 503), and must write nothing.
    pub async fn a_nul_in_text_is_kept_or_refused_as_invalid_never_a_backend_error(
        store: &dyn Store,
    ) {
        let a = publisher(store).await;
        let before = store.last_change().await.unwrap();
        match store.remember_nonce(&a.client_id, "n\0x", 100, 0).await {
            Ok(fresh) => assert!(fresh, "a new nonce"),
            Err(StoreError::Invalid(_)) => {}
            Err(e) => panic!("a NUL in a nonce: {e:?}"),
        }
        let r = Revocation {
            jti: "jti\0nul".into(),
            client_id: a.client_id.clone(),
            exp: 1_900_000_000,
        };
        match store.revoke(&r).await {
            Ok(()) => assert_eq!(store.revocation(&r.jti).await.unwrap(), Some(r.clone())),
            Err(StoreError::Invalid(_)) => {
                assert_eq!(store.revocation("jti").await.unwrap(), None);
                assert_eq!(
                    changes_after(store, before).await,
                    Vec::<Change>::new(),
                    "a refused write appends no change"
                );
            }
            Err(e) => panic!("a NUL in a jti: {e:?}"),
        }
    }

    pub async fn an_invitation_creates_the_user_and_its_link_together(store: &dyn Store) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let mut u = user("invited@example.com");
        u.roles.insert(o.id.clone(), Role::Developer);
        let link = link_for(&u.id, UserLinkKind::Invite, Some(&o.id), 5_000);
        store.invite_user(&u, &link).await.unwrap();
        assert_eq!(
            store.user_by_email("invited@example.com").await.unwrap(),
            Some((u.clone(), portcullis_store::NO_PASSWORD.to_owned())),
            "an invited user has no usable password"
        );
        assert_eq!(
            store.user_link(&link.hash).await.unwrap(),
            Some(link.clone())
        );
        assert_eq!(store.user_link(&hash()).await.unwrap(), None);

        // The same email again: a conflict, and neither the user nor the link is written.
        let again = user("invited@example.com");
        let link2 = link_for(&again.id, UserLinkKind::Invite, Some(&o.id), 5_000);
        assert!(matches!(
            store.invite_user(&again, &link2).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.user(&again.id).await.unwrap(), None);
        assert_eq!(store.user_link(&link2.hash).await.unwrap(), None);

        store.delete_user(&u.id).await.unwrap();
        assert_eq!(
            store.user_link(&link.hash).await.unwrap(),
            None,
            "deleting the user deletes their links"
        );
    }

    pub async fn user_links_are_used_once_and_not_after_they_expire(store: &dyn Store) {
        let u = user("someone@example.com");
        let link = link_for(&u.id, UserLinkKind::Invite, None, 5_000);
        store.invite_user(&u, &link).await.unwrap();
        store.insert_session("sess", &u.id, 9_000).await.unwrap();
        assert_eq!(
            store.use_user_link(&hash(), 2_000, "new").await.unwrap(),
            None,
            "an unknown link"
        );
        let used = store
            .use_user_link(&link.hash, 2_000, "phc-1")
            .await
            .unwrap()
            .expect("a live link is used");
        assert_eq!(used.user_id, u.id);
        assert_eq!(used.used_at, Some(2_000));
        assert_eq!(
            store
                .user_by_email("someone@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some("phc-1".to_owned())
        );
        assert_eq!(
            store.session("sess", 0).await.unwrap(),
            None,
            "sessions end"
        );
        assert_eq!(
            store
                .user_link(&link.hash)
                .await
                .unwrap()
                .and_then(|l| l.used_at),
            Some(2_000),
            "the link is kept, marked used"
        );
        assert_eq!(
            store
                .use_user_link(&link.hash, 2_001, "phc-2")
                .await
                .unwrap(),
            None,
            "a used link is dead"
        );
        assert_eq!(
            store
                .user_by_email("someone@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some("phc-1".to_owned()),
            "and changes nothing"
        );

        let late = link_for(&u.id, UserLinkKind::Reset, None, 3_000);
        store.issue_password_reset(&late).await.unwrap();
        assert_eq!(
            store
                .use_user_link(&late.hash, 3_000, "phc-3")
                .await
                .unwrap(),
            None,
            "expired at expires_at"
        );
        assert_eq!(
            store
                .user_by_email("someone@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some(portcullis_store::NO_PASSWORD.to_owned())
        );

        // Two racing uses of one link: exactly one wins.
        let race = link_for(&u.id, UserLinkKind::Reset, None, 9_000);
        store.issue_password_reset(&race).await.unwrap();
        let (a, b) = tokio::join!(
            store.use_user_link(&race.hash, 4_000, "phc-a"),
            store.use_user_link(&race.hash, 4_000, "phc-b")
        );
        let wins = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|r| r.is_some())
            .count();
        assert_eq!(wins, 1);
    }

    pub async fn a_password_reset_ends_the_password_sessions_and_older_links(store: &dyn Store) {
        let u = user("someone@example.com");
        store.insert_user(&u, "old-phc").await.unwrap();
        store.insert_session("sess", &u.id, 9_000).await.unwrap();
        let first = link_for(&u.id, UserLinkKind::Reset, None, 9_000);
        store.issue_password_reset(&first).await.unwrap();
        assert_eq!(
            store
                .user_by_email("someone@example.com")
                .await
                .unwrap()
                .map(|(_, h)| h),
            Some(portcullis_store::NO_PASSWORD.to_owned()),
            "the old password stops working"
        );
        assert_eq!(store.session("sess", 0).await.unwrap(), None);
        let second = link_for(&u.id, UserLinkKind::Reset, None, 9_000);
        store.issue_password_reset(&second).await.unwrap();
        assert_eq!(
            store.user_link(&first.hash).await.unwrap(),
            None,
            "a new reset replaces an unused older link"
        );
        assert!(store.user_link(&second.hash).await.unwrap().is_some());
        let nobody = link_for(&RecordId::generate("usr"), UserLinkKind::Reset, None, 9_000);
        assert!(matches!(
            store.issue_password_reset(&nobody).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.user_link(&nobody.hash).await.unwrap(), None);
    }

    pub async fn sessions_expire_by_now_and_end_on_delete(store: &dyn Store) {
        let u = user("someone@example.com");
        store.insert_user(&u, "h").await.unwrap();
        store.insert_session("hash-a", &u.id, 1_000).await.unwrap();
        store.insert_session("hash-b", &u.id, 2_000).await.unwrap();
        assert_eq!(
            store.session("hash-a", 999).await.unwrap(),
            Some(u.id.clone())
        );
        assert_eq!(
            store.session("hash-a", 1_000).await.unwrap(),
            None,
            "expired at expires_at"
        );
        assert_eq!(store.session("hash-a", 5_000).await.unwrap(), None);
        assert_eq!(store.session("unknown", 0).await.unwrap(), None);

        store.delete_session("hash-b").await.unwrap();
        assert_eq!(store.session("hash-b", 0).await.unwrap(), None);
        store.delete_session("hash-b").await.unwrap();

        store.insert_session("hash-c", &u.id, 2_000).await.unwrap();
        store.delete_user(&u.id).await.unwrap();
        assert_eq!(
            store.session("hash-c", 0).await.unwrap(),
            None,
            "deleting a user ends their sessions"
        );
    }

    pub async fn every_write_appends_a_change_naming_the_record(store: &dyn Store) {
        let o = org();
        let g = group_in(&o.id);
        let mut a = app_in(&o.id);
        let mut s = secret_of(&a.client_id);
        let mut o2 = o.clone();
        o2.name = "Renamed".into();
        let mut g2 = g.clone();
        g2.name = "Renamed".into();
        let mut res = resource_in(&o.id);
        let r = Revocation {
            jti: "jti-9".into(),
            client_id: a.client_id.clone(),
            exp: 2_000_000_000,
        };
        let org_c = Change::Org(o.id.to_string());
        let app_c = Change::App(a.client_id.to_string());
        let group_c = Change::Group(g.id.to_string());
        let res_c = Change::Resource(res.id.to_string());

        let mut seen = store.last_change().await.unwrap();
        // Run a write; expect exactly the listed changes after it.
        macro_rules! step {
            ($what:literal, $write:expr, [$($want:expr),*]) => {{
                $write.unwrap_or_else(|e| panic!("{}: {e}", $what));
                let got = changes_after(store, seen).await;
                assert_eq!(got, vec![$($want.clone()),*], "changes after {}", $what);
                seen = store.last_change().await.unwrap();
            }};
        }
        step!("insert_org", store.insert_org(&o).await, [org_c]);
        step!("update_org", store.update_org(&o2).await, [org_c]);
        step!("insert_group", store.insert_group(&g).await, [group_c]);
        step!("update_group", store.update_group(&g2).await, [group_c]);
        step!(
            "insert_resource",
            store.insert_resource(&res).await,
            [res_c]
        );
        res.allow_unauthenticated = true;
        step!(
            "update_resource",
            store.update_resource(&res).await,
            [res_c]
        );
        step!(
            "delete_resource",
            store.delete_resource(&res.id).await,
            [res_c]
        );
        step!("insert_app", store.insert_app(&a).await, [app_c]);
        a.name = "Renamed".into();
        step!("update_app", store.update_app(&a).await, [app_c]);
        step!("insert_secret", store.insert_secret(&s).await, [app_c]);
        s.expires_at = Some(1);
        step!("update_secret", store.update_secret(&s).await, [app_c]);
        step!(
            "delete_secret",
            store.delete_secret(&a.client_id, &s.id).await,
            [app_c]
        );
        step!(
            "revoke",
            store.revoke(&r).await,
            [Change::Revocation(r.jti.clone())]
        );
        step!(
            "replace_signing_keys",
            store
                .replace_signing_keys(&[signing_key("k1", KeyState::Current)])
                .await,
            [Change::SigningKeys]
        );
        step!(
            "set_setting",
            store.set_setting("s", "v").await,
            [Change::Settings]
        );
        step!(
            "init_setting",
            store.init_setting("t", "v").await.map(|_| ()),
            [Change::Settings]
        );
        step!("delete_app", store.delete_app(&a.client_id).await, [app_c]);
        step!("delete_group", store.delete_group(&g.id).await, [group_c]);
        step!("delete_org", store.delete_org(&o.id).await, [org_c]);

        // Reads append nothing.
        store.org(&o.id).await.unwrap();
        store.apps(None, &page(None, 10)).await.unwrap();
        store.resource(&res.id).await.unwrap();
        store.resources(&o.id, &page(None, 10)).await.unwrap();
        store.snapshot().await.unwrap();
        store.setting("s").await.unwrap();
        assert!(
            changes_after(store, seen).await.is_empty(),
            "a read appended a change"
        );
    }

    pub async fn changes_since_is_ordered_and_limited(store: &dyn Store) {
        assert_eq!(
            store.last_change().await.unwrap(),
            0,
            "a fresh store has no changes"
        );
        assert!(store.changes_since(0, 10).await.unwrap().is_empty());
        let orgs: Vec<Org> = (0..5).map(|_| org()).collect();
        for o in &orgs {
            store.insert_org(o).await.unwrap();
        }
        let all = store.changes_since(0, 100).await.unwrap();
        assert_eq!(all.len(), 5);
        assert!(
            all.windows(2).all(|w| w[0].0 < w[1].0),
            "seqs increase: {all:?}"
        );
        let named: Vec<Change> = all.iter().map(|(_, c)| c.clone()).collect();
        let want: Vec<Change> = orgs.iter().map(|o| Change::Org(o.id.to_string())).collect();
        assert_eq!(named, want, "oldest first, in commit order");
        assert_eq!(store.last_change().await.unwrap(), all[4].0);

        let two = store.changes_since(all[1].0, 2).await.unwrap();
        assert_eq!(two, all[2..4].to_vec(), "after a seq, at most `limit`");
        assert!(store.changes_since(all[4].0, 10).await.unwrap().is_empty());
    }

    pub async fn pruning_keeps_the_newest_changes_and_moves_the_oldest(store: &dyn Store) {
        assert_eq!(store.oldest_change().await.unwrap(), 0, "empty feed");
        for _ in 0..5 {
            store.insert_org(&org()).await.unwrap();
        }
        let all = store.changes_since(0, 100).await.unwrap();
        assert_eq!(store.oldest_change().await.unwrap(), all[0].0);
        assert_eq!(store.prune_changes(2).await.unwrap(), 3);
        assert_eq!(store.oldest_change().await.unwrap(), all[3].0);
        assert_eq!(
            store.changes_since(0, 100).await.unwrap(),
            all[3..].to_vec()
        );
        assert_eq!(
            store.last_change().await.unwrap(),
            all[4].0,
            "the last seq stays"
        );
        assert_eq!(
            store.prune_changes(0).await.unwrap(),
            1,
            "at least one change is kept"
        );
        assert_eq!(store.oldest_change().await.unwrap(), all[4].0);
        // New changes continue the sequence.
        store.insert_org(&org()).await.unwrap();
        assert!(store.last_change().await.unwrap() > all[4].0);
    }

    pub async fn a_streamed_snapshot_hands_over_apps_with_their_keys_then_secrets(
        store: &dyn Store,
    ) {
        use portcullis_core::model as m;
        use portcullis_store::SnapshotSink;
        /// Each call, in order, as text.
        #[derive(Default)]
        struct Calls(Vec<String>);
        impl SnapshotSink for Calls {
            fn org(&mut self, o: m::Org) {
                self.0.push(format!("org {}", o.id));
            }
            fn group(&mut self, g: m::Group) {
                self.0.push(format!("group {}", g.id));
            }
            fn resource(&mut self, r: m::Resource) {
                self.0.push(format!("resource {}", r.id));
            }
            fn app(&mut self, a: m::App, keys: Vec<m::AppKey>) {
                let keys: Vec<_> = keys.iter().map(|k| k.id.to_string()).collect();
                self.0
                    .push(format!("app {} keys [{}]", a.client_id, keys.join(",")));
            }
            fn secret(&mut self, s: m::SecretRecord) {
                self.0.push(format!("secret {} of {}", s.id, s.client_id));
            }
            fn revocation(&mut self, r: m::Revocation) {
                self.0.push(format!("revocation {}", r.jti));
            }
            fn signing_key(&mut self, k: m::SigningKeyRecord) {
                self.0.push(format!("signing key {}", k.kid));
            }
        }
        let o = org();
        store.insert_org(&o).await.unwrap();
        let g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        let res = resource_in(&o.id);
        store.insert_resource(&res).await.unwrap();
        let (a, b) = (app_in(&o.id), app_in(&o.id));
        store.insert_app(&a).await.unwrap();
        let (a1, b1, a2) = (
            secret_of(&a.client_id),
            secret_of(&b.client_id),
            secret_of(&a.client_id),
        );
        store.insert_secret(&a1).await.unwrap();
        store.insert_app(&b).await.unwrap();
        store.insert_secret(&b1).await.unwrap();
        store.insert_secret(&a2).await.unwrap();
        let key = m::AppKey {
            id: RecordId::generate("key"),
            client_id: a.client_id.clone(),
            alg: Alg::ES256,
            public_jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}),
            source: m::AppKeySource::KeyPair,
            created_at: 1_700_000_009,
        };
        store.insert_app_key(&key).await.unwrap();
        store
            .revoke(&m::Revocation {
                jti: "jti-stream".into(),
                client_id: a.client_id.clone(),
                exp: 2_000_000_000,
            })
            .await
            .unwrap();
        store
            .replace_signing_keys(&[signing_key("k1", KeyState::Current)])
            .await
            .unwrap();

        let mut calls = Calls::default();
        let seq = store.snapshot_into(&mut calls).await.unwrap();
        assert_eq!(seq, store.last_change().await.unwrap());
        let at = |line: &str| {
            calls
                .0
                .iter()
                .position(|c| c == line)
                .unwrap_or_else(|| panic!("no {line:?} in {:?}", calls.0))
        };
        let (app_a, app_b) = (
            at(&format!("app {} keys [{}]", a.client_id, key.id)),
            at(&format!("app {} keys []", b.client_id)),
        );
        let secret = |s: &m::SecretRecord| at(&format!("secret {} of {}", s.id, s.client_id));
        let first_app = app_a.min(app_b);
        for before in [
            at(&format!("org {}", o.id)),
            at(&format!("group {}", g.id)),
            at(&format!("resource {}", res.id)),
        ] {
            assert!(before < first_app, "{:?}", calls.0);
        }
        // Every app (with its keys) before any secret; an app's secrets in the order
        // they were added.
        let last_app = app_a.max(app_b);
        assert!(last_app < secret(&a1).min(secret(&b1)), "{:?}", calls.0);
        assert!(secret(&a1) < secret(&a2), "{:?}", calls.0);
        assert!(secret(&a2) < at("revocation jti-stream"));
        assert!(at("revocation jti-stream") < at("signing key k1"));
        assert_eq!(calls.0.len(), 10, "{:?}", calls.0);
    }

    pub async fn a_snapshot_holds_everything_at_the_last_change(store: &dyn Store) {
        let empty = store.snapshot().await.unwrap();
        assert_eq!(empty.seq, store.last_change().await.unwrap());
        assert!(empty.orgs.is_empty() && empty.apps.is_empty());

        let o = org();
        store.insert_org(&o).await.unwrap();
        let g = group_in(&o.id);
        store.insert_group(&g).await.unwrap();
        let a = app_in(&o.id);
        store.insert_app(&a).await.unwrap();
        let res = resource_in(&o.id);
        store.insert_resource(&res).await.unwrap();
        let s = secret_of(&a.client_id);
        store.insert_secret(&s).await.unwrap();
        let r = Revocation {
            jti: "jti-snap".into(),
            client_id: a.client_id.clone(),
            exp: 2_000_000_000,
        };
        store.revoke(&r).await.unwrap();
        let k = signing_key("k1", KeyState::Current);
        store
            .replace_signing_keys(std::slice::from_ref(&k))
            .await
            .unwrap();

        let snap = store.snapshot().await.unwrap();
        assert_eq!(snap.seq, store.last_change().await.unwrap());
        assert!(snap.seq > empty.seq);
        assert_eq!(snap.orgs, vec![o]);
        assert_eq!(snap.groups, vec![g]);
        assert_eq!(snap.resources, vec![res]);
        assert_eq!(snap.apps, vec![a]);
        assert_eq!(snap.secrets, vec![s]);
        assert_eq!(snap.revocations, vec![r]);
        assert_eq!(snap.signing_keys, vec![k]);
    }

    pub async fn init_setting_sets_a_value_only_once(store: &dyn Store) {
        assert_eq!(store.setting("hash_key").await.unwrap(), None);
        assert!(store.init_setting("hash_key", "first").await.unwrap());
        let seq = store.last_change().await.unwrap();
        assert!(!store.init_setting("hash_key", "second").await.unwrap());
        assert_eq!(
            store.setting("hash_key").await.unwrap().as_deref(),
            Some("first")
        );
        assert_eq!(
            store.last_change().await.unwrap(),
            seq,
            "a refused init appends nothing"
        );
        store.set_setting("hash_key", "third").await.unwrap();
        assert_eq!(
            store.setting("hash_key").await.unwrap().as_deref(),
            Some("third")
        );
        assert!(!store.init_setting("hash_key", "fourth").await.unwrap());
    }

    pub async fn replacing_signing_keys_replaces_the_whole_set(store: &dyn Store) {
        assert!(store.signing_keys().await.unwrap().is_empty());
        let first = vec![
            signing_key("a", KeyState::Current),
            signing_key("b", KeyState::Next),
        ];
        store.replace_signing_keys(&first).await.unwrap();
        assert_eq!(store.signing_keys().await.unwrap(), first);
        let mut retired = signing_key("a", KeyState::Retired);
        retired.retired_until = Some(1_900_000_000);
        let second = vec![
            retired,
            signing_key("b", KeyState::Current),
            signing_key("c", KeyState::Next),
        ];
        store.replace_signing_keys(&second).await.unwrap();
        assert_eq!(store.signing_keys().await.unwrap(), second);
        store.replace_signing_keys(&second[1..]).await.unwrap();
        assert_eq!(
            store.signing_keys().await.unwrap(),
            second[1..].to_vec(),
            "a key left out is gone"
        );
    }
    /// An org with one resource, stored.
    async fn resource_stored(store: &dyn Store) -> (Org, Resource) {
        let o = org();
        store.insert_org(&o).await.unwrap();
        let r = resource_in(&o.id);
        store.insert_resource(&r).await.unwrap();
        (o, r)
    }

    /// How many events the resource has (one page of up to 1000).
    async fn event_count(store: &dyn Store, resource: &RecordId) -> usize {
        store
            .events(resource, &page(None, 1000))
            .await
            .unwrap()
            .len()
    }

    fn bodies(events: &[StoredEvent]) -> Vec<NewEvent> {
        events.iter().map(|e| e.event.clone()).collect()
    }

    pub async fn events_are_appended_and_listed_in_order(store: &dyn Store) {
        let (o, r) = resource_stored(store).await;
        let other = resource_in(&o.id);
        store.insert_resource(&other).await.unwrap();
        let app = ClientId::generate();
        assert_eq!(event_count(store, &r.id).await, 0);

        let first = vec![event_for(&r.id, 0, Some(&app))];
        let ids1 = store.append_events(&first).await.unwrap();
        store
            .append_events(&[event_for(&other.id, 9, None)])
            .await
            .unwrap();
        let second = vec![event_for(&r.id, 1, None), event_for(&r.id, 2, Some(&app))];
        let ids2 = store.append_events(&second).await.unwrap();
        assert_eq!((ids1.len(), ids2.len()), (1, 2));
        assert!(
            ids1[0] < ids2[0] && ids2[0] < ids2[1],
            "ids grow with every append: {ids1:?} {ids2:?}"
        );
        assert!(store.append_events(&[]).await.unwrap().is_empty());

        let listed = store.events(&r.id, &page(None, 10)).await.unwrap();
        let want: Vec<NewEvent> = first.into_iter().chain(second).collect();
        assert_eq!(bodies(&listed), want, "every field round-trips, in order");
        assert_eq!(
            listed.iter().map(|e| e.id).collect::<Vec<_>>(),
            [ids1, ids2].concat(),
            "the listed ids are the appended ones"
        );
        assert_eq!(
            bodies(&store.events(&other.id, &page(None, 10)).await.unwrap()),
            vec![event_for(&other.id, 9, None)],
            "a listing holds only that resource's events"
        );
    }

    pub async fn events_page_with_cursors(store: &dyn Store) {
        let (_, r) = resource_stored(store).await;
        let batch: Vec<NewEvent> = (0..7).map(|n| event_for(&r.id, n, None)).collect();
        let ids = store.append_events(&batch).await.unwrap();
        let r_id = &r.id;
        let got = walk(3, |p| async move {
            store
                .events(r_id, &p)
                .await
                .unwrap()
                .iter()
                .map(|e| e.id.to_string())
                .collect()
        })
        .await;
        assert_eq!(
            got,
            ids.iter().map(i64::to_string).collect::<Vec<_>>(),
            "every event once, in id order"
        );
        let last = ids.last().unwrap().to_string();
        assert!(
            store
                .events(&r.id, &page(Some(&last), 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert_not_found(
            store.events(&r.id, &page(Some("evt_x"), 10)).await,
            "a cursor that is not an event id",
        );
    }

    pub async fn an_append_writes_all_events_or_none(store: &dyn Store) {
        let (_, r) = resource_stored(store).await;
        let missing = RecordId::generate("res");
        let batch = vec![
            event_for(&r.id, 0, None),
            event_for(&r.id, 1, None),
            event_for(&missing, 2, None),
        ];
        assert_conflict(
            store.append_events(&batch).await,
            "an event for a resource that does not exist",
        );
        assert_eq!(
            event_count(store, &r.id).await,
            0,
            "the events before the bad one were not kept"
        );
        store.append_events(&batch[..2]).await.unwrap();
        assert_eq!(event_count(store, &r.id).await, 2);
    }

    pub async fn deleting_a_resource_or_its_org_deletes_its_events(store: &dyn Store) {
        let (o, r) = resource_stored(store).await;
        let sibling = resource_in(&o.id);
        store.insert_resource(&sibling).await.unwrap();
        let (other_org, elsewhere) = resource_stored(store).await;
        for res in [&r, &sibling, &elsewhere] {
            store
                .append_events(&[event_for(&res.id, 0, None), event_for(&res.id, 1, None)])
                .await
                .unwrap();
        }

        store.delete_resource(&r.id).await.unwrap();
        assert_eq!(event_count(store, &r.id).await, 0);
        assert_eq!(event_count(store, &sibling.id).await, 2);
        // A resource recreated with the same id starts with no events.
        store.insert_resource(&r).await.unwrap();
        assert_eq!(event_count(store, &r.id).await, 0);

        store.delete_org(&o.id).await.unwrap();
        assert_eq!(event_count(store, &sibling.id).await, 0);
        assert_eq!(
            event_count(store, &elsewhere.id).await,
            2,
            "another org's events stay"
        );
        assert!(store.org(&other_org.id).await.unwrap().is_some());
    }

    pub async fn appending_events_does_not_feed_the_view(store: &dyn Store) {
        let (_, r) = resource_stored(store).await;
        let before = store.last_change().await.unwrap();
        store
            .append_events(&[event_for(&r.id, 0, None)])
            .await
            .unwrap();
        assert_eq!(store.last_change().await.unwrap(), before);
        assert!(changes_after(store, before).await.is_empty());
    }

    /// Writers racing each other on several connections, and a reader following the feed
    /// as they go: the reader must see every change, each exactly once, with no gaps in
    /// `seq` at any moment. A change committed behind a higher seq the reader has already
    /// passed would be skipped for good (and the walk would time out or see a gap).
    pub async fn a_reader_never_skips_a_change_of_concurrent_writers(store: &dyn Store) {
        const WRITERS: usize = 4;
        const EACH: usize = 25;
        let start = store.last_change().await.unwrap();
        let write = |_: usize| async move {
            for _ in 0..EACH {
                store.insert_org(&org()).await.unwrap();
            }
        };
        let read = async {
            let mut cursor = start;
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen.len() < WRITERS * EACH {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the reader saw {} of {} changes",
                    seen.len(),
                    WRITERS * EACH
                );
                for (seq, change) in store.changes_since(cursor, 1000).await.unwrap() {
                    assert_eq!(seq, cursor + 1, "a gap in the feed after {cursor}");
                    cursor = seq;
                    seen.push(change);
                }
                tokio::task::yield_now().await;
            }
            seen
        };
        let (seen, ..) = tokio::join!(read, write(0), write(1), write(2), write(3));
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), WRITERS * EACH, "every change exactly once");
        assert_eq!(
            store.last_change().await.unwrap(),
            start + (WRITERS * EACH) as i64
        );
    }

    pub async fn a_bulk_insert_writes_every_record_and_feeds_the_view(store: &dyn Store) {
        let before = store.last_change().await.unwrap();
        let orgs = vec![org(), org()];
        let resources: Vec<Resource> = orgs.iter().map(|o| resource_in(&o.id)).collect();
        // More apps than one multi-row statement holds, so chunking is exercised.
        let apps: Vec<App> = (0..2_500).map(|i| app_in(&orgs[i % 2].id)).collect();
        let secrets: Vec<SecretRecord> = apps.iter().map(|a| secret_of(&a.client_id)).collect();
        let bulk = Bulk {
            orgs: orgs.clone(),
            resources: resources.clone(),
            apps: apps.clone(),
            secrets: secrets.clone(),
        };
        store.insert_bulk(&bulk).await.unwrap();
        assert!(
            store.last_change().await.unwrap() > before,
            "a bulk insert feeds the view"
        );
        let snap = store.snapshot().await.unwrap();
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(snap.orgs.iter().map(|o| o.id.to_string()).collect()),
            sorted(orgs.iter().map(|o| o.id.to_string()).collect())
        );
        assert_eq!(snap.apps.len(), apps.len());
        assert_eq!(snap.secrets.len(), secrets.len());
        assert_eq!(snap.resources.len(), resources.len());
        let probe = &apps[1_234];
        assert_eq!(
            store.app(&probe.client_id).await.unwrap().as_ref(),
            Some(probe)
        );
        let stored: Vec<SecretRecord> = store
            .secrets(&probe.client_id)
            .await
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(stored, vec![secrets[1_234].clone()]);
        assert_eq!(
            store.resource(&resources[1].id).await.unwrap().as_ref(),
            Some(&resources[1])
        );
    }
}

mod usage_cases {
    use super::*;
    use portcullis_core::usage::{Subject, UsageKey};
    use portcullis_store::{
        UsageAppCount, UsageBucket, UsageFilter, UsageResolution, UsageSubject,
    };

    fn key(
        minute: i64,
        org: Option<&OrgId>,
        app: Option<&ClientId>,
        subject: Subject,
        outcome: &'static str,
    ) -> UsageKey {
        UsageKey {
            minute,
            org: org.cloned(),
            app: app.cloned(),
            subject,
            outcome,
        }
    }

    fn bucket(at: i64, subject: UsageSubject, outcome: &str, count: u64) -> UsageBucket {
        UsageBucket {
            at,
            subject,
            outcome: outcome.to_owned(),
            count,
        }
    }

    pub async fn usage_counts_add_up_and_are_read_in_buckets(store: &dyn Store) {
        let (o1, o2) = (OrgId::generate(), OrgId::generate());
        let (a1, a2, a3) = (
            ClientId::generate(),
            ClientId::generate(),
            ClientId::generate(),
        );
        let r = RecordId::generate("res");
        let res = |r: &RecordId| Subject::Resource(Some(r.clone()));
        // Two flushes (two nodes, or one node twice) of overlapping keys add up.
        store
            .add_usage(&[
                (key(600, Some(&o1), Some(&a1), res(&r), "allowed"), 5),
                (key(600, Some(&o1), Some(&a1), res(&r), "403003"), 1),
                (key(660, Some(&o1), Some(&a2), res(&r), "allowed"), 2),
                (
                    key(
                        660,
                        Some(&o1),
                        Some(&a1),
                        Subject::Grant("client_credentials"),
                        "issued",
                    ),
                    3,
                ),
                (key(900, Some(&o1), None, res(&r), "403003"), 4),
                (key(600, Some(&o2), Some(&a3), res(&r), "allowed"), 100),
                (key(600, None, None, Subject::Resource(None), "403003"), 7),
            ])
            .await
            .unwrap();
        store
            .add_usage(&[
                (key(600, Some(&o1), Some(&a1), res(&r), "allowed"), 10),
                (
                    key(720, Some(&o1), Some(&a1), Subject::Introspection, "active"),
                    1,
                ),
            ])
            .await
            .unwrap();
        store.add_usage(&[]).await.unwrap();

        let rs = || UsageSubject::Resource(Some(r.to_string()));
        let by_app = store
            .usage(&UsageFilter::App(a1.clone()), 0, 3600, 60)
            .await
            .unwrap();
        // Ordered by subject (grants, introspection, resources), outcome, bucket.
        let want = vec![
            bucket(
                660,
                UsageSubject::Grant("client_credentials".into()),
                "issued",
                3,
            ),
            bucket(720, UsageSubject::Introspection, "active", 1),
            bucket(600, rs(), "403003", 1),
            bucket(600, rs(), "allowed", 15),
        ];
        assert_eq!(by_app, want);

        // The org's: every app of it, and the count without an app; another org's not.
        let by_org = store
            .usage(&UsageFilter::Org(o1.clone()), 0, 3600, 300)
            .await
            .unwrap();
        let allowed: Vec<_> = by_org
            .iter()
            .filter(|b| b.subject == rs() && b.outcome == "allowed")
            .collect();
        assert_eq!(allowed, vec![&bucket(600, rs(), "allowed", 17)]);
        let denied: Vec<_> = by_org
            .iter()
            .filter(|b| b.subject == rs() && b.outcome == "403003")
            .map(|b| (b.at, b.count))
            .collect();
        assert_eq!(denied, vec![(600, 1), (900, 4)]);
        let total: u64 = by_org.iter().map(|b| b.count).sum();
        assert_eq!(total, 15 + 1 + 2 + 3 + 4 + 1);

        // `from` is inclusive, `to` exclusive, by minute.
        let window = store
            .usage(&UsageFilter::App(a1.clone()), 660, 720, 60)
            .await
            .unwrap();
        assert_eq!(
            window,
            vec![bucket(
                660,
                UsageSubject::Grant("client_credentials".into()),
                "issued",
                3
            )]
        );
        assert!(
            store
                .usage(&UsageFilter::App(ClientId::generate()), 0, 3600, 60)
                .await
                .unwrap()
                .is_empty()
        );

        // By the hour (and the day): the hour counts, the same sums.
        for step in [3600, 86_400] {
            let hourly = store
                .usage(&UsageFilter::App(a1.clone()), 0, 86_400, step)
                .await
                .unwrap();
            let want: Vec<_> = want
                .iter()
                .map(|b| bucket(0, b.subject.clone(), &b.outcome, b.count))
                .collect();
            assert_eq!(hourly, want, "step {step}");
        }

        // Per app and outcome, over every subject; requests without an app first.
        let apps = store
            .usage_by_app(&o1, 0, 3600, UsageResolution::Minute)
            .await
            .unwrap();
        let count = |c: Option<&ClientId>, o: &str, n: u64| UsageAppCount {
            client_id: c.map(|c| c.to_string()),
            outcome: o.to_owned(),
            count: n,
        };
        let mut want_apps = vec![
            count(Some(&a1), "403003", 1),
            count(Some(&a1), "active", 1),
            count(Some(&a1), "allowed", 15),
            count(Some(&a1), "issued", 3),
            count(Some(&a2), "allowed", 2),
        ];
        want_apps.sort_by(|x, y| (&x.client_id, &x.outcome).cmp(&(&y.client_id, &y.outcome)));
        want_apps.insert(0, count(None, "403003", 4));
        assert_eq!(apps, want_apps);
        let hourly_apps = store
            .usage_by_app(&o1, 0, 3600, UsageResolution::Hour)
            .await
            .unwrap();
        assert_eq!(hourly_apps, want_apps);
        // The range by minute: only minute 660's.
        let window = store
            .usage_by_app(&o1, 660, 720, UsageResolution::Minute)
            .await
            .unwrap();
        let mut want_window = vec![
            count(Some(&a1), "issued", 3),
            count(Some(&a2), "allowed", 2),
        ];
        want_window.sort_by(|x, y| x.client_id.cmp(&y.client_id));
        assert_eq!(window, want_window);
    }

    pub async fn usage_adds_many_keys_in_one_call_and_does_not_feed_the_view(store: &dyn Store) {
        let org = OrgId::generate();
        let app = ClientId::generate();
        let before = store.last_change().await.unwrap();
        // More keys than one multi-row statement takes.
        let counts: Vec<_> = (0..1_234)
            .map(|i| {
                (
                    key(
                        i * 60,
                        Some(&org),
                        Some(&app),
                        Subject::Resource(None),
                        "allowed",
                    ),
                    2,
                )
            })
            .collect();
        store.add_usage(&counts).await.unwrap();
        store.add_usage(&counts).await.unwrap();
        let got = store
            .usage(&UsageFilter::App(app.clone()), 0, 1_234 * 60, 3600)
            .await
            .unwrap();
        assert_eq!(got.len(), 21);
        assert_eq!(got.iter().map(|b| b.count).sum::<u64>(), 1_234 * 4);
        assert!(got.iter().all(|b| b.at % 3600 == 0));
        assert_eq!(got[0].count, 60 * 4);
        assert_eq!(store.last_change().await.unwrap(), before);
    }

    pub async fn usage_is_pruned_in_batches_before_the_cutoff(store: &dyn Store) {
        let org = OrgId::generate();
        let counts: Vec<_> = (0..10)
            .map(|i| {
                (
                    key(i * 60, Some(&org), None, Subject::Resource(None), "403003"),
                    1,
                )
            })
            .collect();
        store.add_usage(&counts).await.unwrap();
        let minute = UsageResolution::Minute;
        // Minutes 0..=360 are before 420: 7 rows, removed 3, 3, then 1.
        assert_eq!(store.prune_usage(minute, 420, 3).await.unwrap(), 3);
        assert_eq!(store.prune_usage(minute, 420, 3).await.unwrap(), 3);
        assert_eq!(store.prune_usage(minute, 420, 3).await.unwrap(), 1);
        assert_eq!(store.prune_usage(minute, 420, 3).await.unwrap(), 0);
        let left: Vec<i64> = store
            .usage(&UsageFilter::Org(org.clone()), 0, 3600, 60)
            .await
            .unwrap()
            .iter()
            .map(|b| b.at)
            .collect();
        assert_eq!(left, vec![420, 480, 540]);
        // The hour's count holds all ten until the hour itself is pruned.
        let hours = || async {
            store
                .usage(&UsageFilter::Org(org.clone()), 0, 7200, 3600)
                .await
                .unwrap()
                .iter()
                .map(|b| (b.at, b.count))
                .collect::<Vec<_>>()
        };
        assert_eq!(hours().await, vec![(0, 10)]);
        let hour = UsageResolution::Hour;
        assert_eq!(store.prune_usage(hour, 3599, 3).await.unwrap(), 1);
        assert_eq!(hours().await, vec![]);
        assert_eq!(store.prune_usage(hour, 3600, 3).await.unwrap(), 0);
    }
}

/// SQLite's bulk insert is one transaction with one resync change: all or nothing.
#[tokio::test]
async fn sqlite_bulk_insert_is_atomic_and_one_resync_change() {
    let (store, _guard) = open_sqlite().await.expect("SQLite always opens");
    let o = org();
    let before = store.last_change().await.unwrap();
    let apps: Vec<App> = (0..3).map(|_| app_in(&o.id)).collect();
    store
        .insert_bulk(&Bulk {
            orgs: vec![o.clone()],
            apps: apps.clone(),
            ..Bulk::default()
        })
        .await
        .unwrap();
    let changes = store.changes_since(before, 100).await.unwrap();
    assert_eq!(
        changes.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
        vec![Change::Resync]
    );
    // An app of an org that does not exist fails the whole batch: nothing is written.
    let before = store.last_change().await.unwrap();
    let good = app_in(&o.id);
    let orphan = app_in(&org().id);
    let err = store
        .insert_bulk(&Bulk {
            apps: vec![good.clone(), orphan],
            secrets: vec![secret_of(&good.client_id)],
            ..Bulk::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.app(&good.client_id).await.unwrap(), None);
    assert_eq!(store.last_change().await.unwrap(), before);
}

/// The audit table refuses UPDATE and DELETE below the API too (SQLite triggers).
#[tokio::test]
async fn sqlite_audit_rows_cannot_be_updated_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .append_audit(&[audit_entry(1, "cli", "keys.rotate", None)])
        .await
        .unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit SET actor = 'someone else'",
        "DELETE FROM audit",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let left = store
        .audit(&AuditFilter::default(), &page(None, 10))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].entry.actor, "cli");
}

/// The same on PostgreSQL (a trigger for UPDATE, DELETE and TRUNCATE).
#[tokio::test]
async fn postgres_audit_rows_cannot_be_updated_or_deleted() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::open(&db.url, &PgOptions::default())
        .await
        .unwrap();
    store
        .append_audit(&[audit_entry(1, "cli", "keys.rotate", None)])
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    for sql in [
        "UPDATE audit SET actor = 'someone else'",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    pool.close().await;
    let left = store
        .audit(&AuditFilter::default(), &page(None, 10))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
}
