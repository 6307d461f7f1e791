//! Two real nodes on one PostgreSQL database with one master key: what one node
//! writes, the other serves; a refusal decided on one reaches the other within a second;
//! a node that loses the database keeps deciding from its view, says so, and catches up.
//!
//! PostgreSQL only: the test database comes from `portcullis_store::test_db` (skipped with
//! a printed reason when the server is unreachable, a failure when `CI` is set). Run with
//! `-- --nocapture` to see the measured propagation times.

use crate::common;

use base64::Engine;
use common::*;
use portcullis_core::ids::ClientId;
use portcullis_core::model::Revocation;
use portcullis_server::bootstrap;
use portcullis_store::postgres::PgOptions;
use portcullis_store::test_db::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

/// What the issue asks of propagation between nodes.
const WITHIN: Duration = Duration::from_secs(1);
const ISSUER: &str = "https://auth.cluster.test";

/// One master key for the whole cluster, as an operator would set PORTCULLIS_MASTER_KEY.
pub(crate) fn cluster_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(portcullis_core::random_bytes::<32>())
}

pub(crate) async fn node(url: &str, key: &str, pool: PgOptions) -> TestApp {
    TestApp::spawn_with(Options {
        database_url: Some(url.to_owned()),
        master_key: Some(key.to_owned()),
        database_pool: pool,
        issuer: Some(ISSUER.to_owned()),
        ..Options::default()
    })
    .await
}

/// Poll `check` until it holds or `limit` passes; how long it took.
async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `/gateway/v1/check` on `app` for the world's resource with `token`: the status.
async fn check(app: &TestApp, w: &GatewayWorld, token: &str) -> StatusCode {
    app.http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .bearer_auth(token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap()
        .status()
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    metric_value(&app.metrics_text().await, &format!("{name} "))
}

async fn ready_status(app: &TestApp) -> StatusCode {
    app.http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn what_node_a_writes_node_b_serves_and_refusals_reach_b_within_a_second() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let key = cluster_key();
    let a = node(&db.url, &key, PgOptions::default()).await;
    let b = node(&db.url, &key, PgOptions::default()).await;
    let mut took = Vec::new();

    // An org, an app, a secret and a resource, all made on A: B grants a token with the
    // secret, and lets a token from A through to the resource.
    let w = a.gateway_world(false).await;
    let revoked = a.access_token(&w.client_id, &w.secret, None).await;
    let t = time_until(WITHIN, || async {
        b.token(&w.client_id, &w.secret, None).await.status() == StatusCode::OK
            && check(&b, &w, &revoked).await == StatusCode::OK
    })
    .await;
    took.push(("new org, app, secret and resource usable on B", t));

    // That token from A, revoked on A.
    assert_eq!(
        a.revoke(&w.client_id, &w.secret, &revoked).await.status(),
        StatusCode::OK
    );
    let t = time_until(WITHIN, || async {
        check(&b, &w, &revoked).await == StatusCode::UNAUTHORIZED
    })
    .await;
    took.push(("revoked token refused by B", t));

    // A second secret, a token obtained with it, then the secret deleted on A.
    let (secret_id, second) = a.create_secret(&w.client_id).await;
    let with_second = a.access_token(&w.client_id, &second, None).await;
    let t = time_until(WITHIN, || async {
        check(&b, &w, &with_second).await == StatusCode::OK
    })
    .await;
    assert!(t.is_some(), "B never allowed the second secret's token");
    let (status, _) = a
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{}/secrets/{secret_id}", w.client_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let t = time_until(WITHIN, || async {
        check(&b, &w, &with_second).await == StatusCode::UNAUTHORIZED
    })
    .await;
    took.push(("deleted secret's token refused by B", t));

    // The org disabled on A.
    let before = a.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(check(&b, &w, &before).await, StatusCode::OK);
    let (status, _) = a
        .call(
            Method::PATCH,
            &format!("/admin/v1/orgs/{}", w.org),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let t = time_until(WITHIN, || async {
        let s = check(&b, &w, &before).await;
        s.is_client_error() && s != StatusCode::NOT_FOUND
    })
    .await;
    took.push(("disabled org's token refused by B", t));

    for (what, t) in &took {
        match t {
            Some(t) => println!("propagation A → B: {what}: {:.1} ms", t.as_secs_f64() * 1e3),
            None => println!("propagation A → B: {what}: not within {WITHIN:?}"),
        }
    }
    for (what, t) in took {
        assert!(t.is_some(), "{what}: not within {WITHIN:?}");
    }
    drop((a, b));
    drop(db);
}

#[tokio::test]
async fn a_node_that_loses_the_database_serves_from_its_view_says_so_and_catches_up() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let key = cluster_key();
    let a = node(&db.url, &key, PgOptions::default()).await;
    // B names itself, so its sessions alone can be ended; a short timeout makes its
    // readiness answer quickly while the database refuses it.
    let b_url = format!("{}?application_name=portcullis_node_b", db.url);
    let b = node(
        &b_url,
        &key,
        PgOptions {
            pool_size: 4,
            timeout: Duration::from_secs(1),
        },
    )
    .await;
    let w = a.gateway_world(false).await;
    let token = a.access_token(&w.client_id, &w.secret, None).await;
    let allowed = time_until(WITHIN, || async {
        check(&b, &w, &token).await == StatusCode::OK
    })
    .await;
    assert!(allowed.is_some(), "B never allowed A's token");
    assert_eq!(metric(&b, "portcullis_store_up").await, 1.0);
    // Another writer that stays connected through B's outage (opened before it).
    let loc = bootstrap::Locations {
        master_key: Some(key.clone()),
        ..a.locations()
    };
    let (writer, _) = bootstrap::open(&loc, false).await.unwrap();

    // The database refuses new connections, and B's sessions end.
    let name = db.name().to_owned();
    db.admin_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
    ))
    .await;
    db.admin_sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND application_name = 'portcullis_node_b'"
    ))
    .await;

    let noticed = time_until(Duration::from_secs(5), || async {
        ready_status(&b).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(
        noticed.is_some(),
        "B's /readyz never said the store is down"
    );
    let r = b.http.get(b.url("/readyz")).send().await.unwrap();
    let problem = assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["type"], "urn:portcullis:error:store-unreachable");
    assert_eq!(problem["store"], "postgres");
    assert!(problem["store_down_since"].is_i64(), "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("unreachable since"), "{detail}");
    assert_eq!(metric(&b, "portcullis_store_up").await, 0.0);

    // B keeps deciding from its view: the token passes, a new one is granted.
    assert_eq!(check(&b, &w, &token).await, StatusCode::OK);
    assert_eq!(
        b.token(&w.client_id, &w.secret, None).await.status(),
        StatusCode::OK
    );

    // Meanwhile the token is revoked through the other writer: B cannot know yet.
    let claims: Value = claims(&token);
    writer
        .revoke(&Revocation {
            jti: claims["jti"].as_str().unwrap().to_owned(),
            client_id: ClientId::parse(&w.client_id).unwrap(),
            exp: claims["exp"].as_i64().unwrap(),
        })
        .await
        .expect("the other writer is still connected");
    assert_eq!(
        check(&b, &w, &token).await,
        StatusCode::OK,
        "B serves its last view while the store is away"
    );

    // The database comes back: B is ready again and has caught up.
    db.admin_sql(&format!(
        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
    ))
    .await;
    let back = time_until(Duration::from_secs(10), || async {
        ready_status(&b).await == StatusCode::OK
    })
    .await;
    let caught_up = time_until(Duration::from_secs(10), || async {
        check(&b, &w, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    println!(
        "store down on B: noticed by /readyz after {:?}; ready again after {back:?}; revocation applied {caught_up:?} later",
        noticed.unwrap()
    );
    assert!(back.is_some(), "B's /readyz did not recover");
    assert!(
        caught_up.is_some(),
        "B did not catch up with the change feed"
    );
    assert_eq!(metric(&b, "portcullis_store_up").await, 1.0);
    drop((writer, a, b));
    drop(db);
}
