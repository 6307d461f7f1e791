//! `portcullis migrate-store`'s copy (portcullis_store::migrate): a SQLite data directory
//! seeded through the API, copied into a fresh PostgreSQL database, serves there — the
//! app, its secret, a token grant and the signing keys all work — and the source is
//! untouched.
//!
//! Needs PostgreSQL (`portcullis_store::test_db`): skipped with a printed reason when it is
//! unreachable, a failure when `CI` is set.

use crate::common;

use common::*;
use portcullis_store::Store;
use portcullis_store::migrate;
use portcullis_store::postgres::{PgOptions, PostgresStore};
use portcullis_store::sqlite::SqliteStore;
use portcullis_store::test_db::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_sqlite_data_directory_copied_into_postgres_serves_there() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let a = TestApp::spawn_with(Options {
        database_url: None,
        ..Options::default()
    })
    .await;
    if a.backend() != "sqlite" {
        // PORTCULLIS_TEST_BACKEND=postgres: the source must still be SQLite.
        eprintln!(
            "source is {}, not sqlite; the copy is tested on the SQLite run",
            a.backend()
        );
    }
    let w = a.gateway_world(false).await;
    let (status, kp) = a
        .call(
            Method::POST,
            &format!("/admin/v1/apps/{}/keypairs", w.client_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kp}");
    let revoked = a.access_token(&w.client_id, &w.secret, Some("read")).await;
    a.revoke(&w.client_id, &w.secret, &revoked).await;
    let jwks_a: Value = a
        .http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let dir = a.data_dir.path().join("data");
    let source: std::sync::Arc<dyn Store> = match &a.database_url {
        Some(url) if url.starts_with("postgres") => std::sync::Arc::new(
            PostgresStore::open(url, &PgOptions::default())
                .await
                .unwrap(),
        ),
        _ => std::sync::Arc::new(SqliteStore::open(&dir.join("portcullis.db")).await.unwrap()),
    };
    let master_key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    let target = PostgresStore::open(&db.url, &PgOptions::default())
        .await
        .unwrap();
    assert!(migrate::is_empty(&target).await.unwrap());
    let now = portcullis_core::clock::Clock::now(&portcullis_core::clock::SystemClock);
    let before = migrate::count(&*source, now).await.unwrap();
    let seen = std::sync::Mutex::new((0, 0));
    let counts = migrate::copy(&*source, &target, now, &|d, t| {
        *seen.lock().unwrap() = (d, t)
    })
    .await
    .unwrap();
    assert_eq!(counts, before);
    assert_eq!(
        migrate::count(&target, now).await.unwrap(),
        counts,
        "every table's count"
    );
    let (done, total) = *seen.lock().unwrap();
    assert_eq!(done, total, "the progress reached the end");
    assert!(
        counts["apps"] >= 1
            && counts["secrets"] >= 1
            && counts["app_keys"] >= 1
            && counts["revocations"] >= 1
    );
    assert!(
        !migrate::is_empty(&target).await.unwrap(),
        "a second copy would be refused"
    );
    assert_eq!(
        migrate::count(&*source, now).await.unwrap(),
        before,
        "the source is untouched"
    );

    // A node on the copy, with the source's master key.
    let b = TestApp::spawn_with(Options {
        database_url: Some(db.url.clone()),
        master_key: Some(master_key.trim().to_owned()),
        issuer: Some(a.issuer.clone()),
        ..Options::default()
    })
    .await;
    let jwks_b: Value = b
        .http
        .get(b.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids = |j: &Value| {
        let mut k: Vec<String> = j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.to_string())
            .collect();
        k.sort();
        k
    };
    assert_eq!(kids(&jwks_a), kids(&jwks_b), "the same signing keys");
    let token = b.access_token(&w.client_id, &w.secret, Some("read")).await;
    for t in [&token, &revoked] {
        let r = b
            .http
            .get(b.url(&format!("/gateway/v1/check?resource={}", w.resource)))
            .bearer_auth(t)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
            .await
            .unwrap();
        let want = if t == &token {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            r.status(),
            want,
            "the new token passes, the revoked one stays revoked"
        );
    }
    let (status, keys) = b
        .call(
            Method::GET,
            &format!("/admin/v1/apps/{}/keypairs", w.client_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert!(
        keys.to_string().contains(kp["kid"].as_str().unwrap()),
        "{keys}"
    );
}
