//! Writes made by another process (the CLI on the same data directory) reach a running
//! server's view within 1 s. "Another process" is a second, independent store
//! handle on the server's database (its SQLite file, or its PostgreSQL database): the
//! server learns of its writes only through the change feed, as it would from a separate
//! process.

use crate::common;

use common::*;
use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{App, AppStatus, Org, OrgStatus, SecretRecord};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_server::bootstrap;
use portcullis_server::live_view::SETTING_HASH_KEY;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(1);

/// Ask for a token until it gets `want` or `WITHIN` passes; how long it took.
async fn time_until_token_status(
    app: &TestApp,
    cid: &str,
    secret: &str,
    want: StatusCode,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if app.token(cid, secret, None).await.status() == want {
            return Some(start.elapsed());
        }
        if start.elapsed() > WITHIN {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_app_suspended_by_another_process_is_refused_within_a_second() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    assert_eq!(
        app.token(&cid, &secret, None).await.status(),
        StatusCode::OK
    );

    let (other, _) = bootstrap::open(&app.locations(), false)
        .await
        .expect("a second handle on the server's database");
    let mut record = other
        .app(&ClientId::parse(&cid).unwrap())
        .await
        .unwrap()
        .expect("the app is in the database");
    record.status = AppStatus::Suspended;
    other.update_app(&record).await.unwrap();

    let took = time_until_token_status(&app, &cid, &secret, StatusCode::UNAUTHORIZED).await;
    assert!(
        took.is_some(),
        "the suspension did not reach the server within {WITHIN:?}"
    );
}

#[tokio::test]
async fn an_app_created_by_another_process_gets_tokens_within_a_second() {
    let app = TestApp::spawn().await;
    app.assert_ready().await;

    // Open the data directory the way the CLI does: store and master key, never creating.
    let (store, master) = bootstrap::open(&app.locations(), false)
        .await
        .expect("the CLI opens the data directory");
    let sealed = store
        .setting(SETTING_HASH_KEY)
        .await
        .unwrap()
        .expect("an initialised store");
    let raw: [u8; 32] = master
        .open(SETTING_HASH_KEY, &sealed)
        .unwrap()
        .try_into()
        .unwrap();
    let hash_key = HashKey::from_bytes(&raw);

    let org = Org {
        id: OrgId::generate(),
        name: "Made by the CLI".into(),
        status: OrgStatus::Active,
        products: Default::default(),
        sandboxes: ["prod".to_owned()].into(),
        created_at: 0,
        tokens_invalid_before: None,
    };
    let record = App {
        client_id: ClientId::generate(),
        org_id: org.id.clone(),
        name: "CLI app".into(),
        status: AppStatus::Active,
        technical_account_id: TechAccountId::generate(),
        products: Default::default(),
        scopes: ScopeSet::parse("read").unwrap(),
        group_id: None,
        sandboxes: Default::default(),
        token_ttl_seconds: None,
        quota: None,
        dpop_bound_access_tokens: false,
        created_at: 0,
        tokens_invalid_before: None,
    };
    let secret = Secret::generate(SecretKind::ClientSecret);
    let secret_record = SecretRecord {
        id: RecordId::generate("sec"),
        client_id: record.client_id.clone(),
        prefix: secret.display_prefix(),
        hash: secret.hash(&hash_key),
        created_at: 0,
        expires_at: None,
    };
    let cid = record.client_id.to_string();
    assert_eq!(
        app.token(&cid, secret.expose(), None).await.status(),
        StatusCode::UNAUTHORIZED,
        "unknown before the write"
    );
    store.insert_org(&org).await.unwrap();
    store.insert_app(&record).await.unwrap();
    store.insert_secret(&secret_record).await.unwrap();

    let took = time_until_token_status(&app, &cid, secret.expose(), StatusCode::OK).await;
    assert!(
        took.is_some(),
        "the new app did not reach the server within {WITHIN:?}"
    );
    let token = app.access_token(&cid, secret.expose(), None).await;
    assert_eq!(claims(&token)["org"], org.id.as_str());
}
