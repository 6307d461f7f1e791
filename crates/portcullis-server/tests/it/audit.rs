//! The audit trail, black-box: admin changes and credential creation and deletion are
//! recorded with who, what, when and from where; failed authentications at the admin API,
//! the sign-in, the token endpoint and the gateway are too (through the background
//! queue); the trail is read-only over HTTP, filtered, paged, exported as NDJSON, scoped
//! to an org admin's organizations, and never holds a secret.

use crate::common;

use common::{ADMIN_TOKEN, Options, TestApp, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Every audit entry the bootstrap admin can see, through the paged listing.
async fn all_entries(app: &TestApp, query: &str) -> Vec<Value> {
    app.walk_pages_of(&format!("/admin/v1/audit{query}"), 7, "entries")
        .await
}

/// Poll (with a deadline) until `want` entries match `query`: failed authentications are
/// written by a background task.
async fn wait_for_entries(app: &TestApp, query: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = all_entries(app, query).await;
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn behind_proxy() -> Options {
    Options {
        gateway: portcullis_server::config::GatewayConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn admin_changes_and_credentials_are_recorded_with_who_what_when_and_where() {
    let app = TestApp::spawn().await;
    let started = chrono_now();
    let (client_id, secret, org) = app.client(&["read"]).await;
    let (secret_id, second_secret) = app.create_secret(&client_id).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{client_id}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{client_id}/secrets/{secret_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // An org admin signs in and creates an app.
    let user = app
        .create_user(
            "owner@example.com",
            "correct horse battery",
            json!({ &org: "admin" }),
        )
        .await;
    let session = app
        .session("owner@example.com", "correct horse battery")
        .await;
    let (status, created) = app
        .call_as(
            &session,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "By the owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // Reads are not changes.
    let (status, _) = app
        .call(Method::GET, &format!("/admin/v1/apps/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let entries = all_entries(&app, "").await;
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "orgs.create",
            "apps.create",
            "apps.secrets.create",
            "apps.secrets.create",
            "apps.update",
            "apps.secrets.delete",
            "users.create",
            "sessions.create",
            "apps.create",
        ],
        "{entries:#?}"
    );
    let root = entries[0]["actor"].as_str().unwrap();
    assert!(
        root.starts_with("admin-token:") && root.len() == "admin-token:".len() + 12,
        "{root}"
    );
    for e in &entries {
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["address"], "127.0.0.1");
        assert!(e["at"].as_i64().unwrap() >= started, "{e}");
        assert!(e["id"].as_i64().is_some());
    }
    assert_eq!(entries[0]["target"], org);
    assert_eq!(entries[1]["target"], client_id);
    assert_eq!(entries[1]["org_id"], org);
    assert_eq!(entries[3]["target"], secret_id);
    assert_eq!(entries[3]["org_id"], org);
    assert_eq!(entries[4]["details"]["fields"], json!(["name"]));
    // A deleted credential: the org is known even though the record is gone.
    assert_eq!(entries[5]["target"], secret_id);
    assert_eq!(entries[5]["org_id"], org);
    assert_eq!(entries[5]["details"]["method"], "DELETE");
    let user_actor = format!("user:{}", user["id"].as_str().unwrap());
    assert_eq!(entries[7]["actor"], user_actor);
    assert_eq!(entries[8]["actor"], user_actor);
    assert_eq!(entries[8]["target"], created["client_id"]);

    // No secret, password or token anywhere in the trail.
    let (_, raw) = export(&app, "").await;
    for secret_text in [
        secret.as_str(),
        second_secret.as_str(),
        session.as_str(),
        ADMIN_TOKEN,
        "correct horse battery",
    ] {
        assert!(!raw.contains(secret_text), "the audit trail holds a secret");
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn export(app: &TestApp, query: &str) -> (reqwest::header::HeaderMap, String) {
    let r = app
        .http
        .get(app.url(&format!("/admin/v1/audit/export{query}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

#[tokio::test]
async fn failed_authentications_are_recorded_from_every_surface_with_the_forwarded_address() {
    let app = TestApp::spawn_with(behind_proxy()).await;
    let world = app.gateway_world(false).await;
    let client_ip = "203.0.113.9";

    // The admin API with a wrong token.
    let r = app
        .http
        .get(app.url("/admin/v1/apps"))
        .bearer_auth("not-the-admin-token-but-long-enough-000000")
        .header("x-forwarded-for", client_ip)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    // A sign-in with a wrong password.
    let r = app
        .http
        .post(app.url("/admin/v1/sessions"))
        .header("x-forwarded-for", client_ip)
        .json(&json!({"email": "Nobody@Example.com", "password": "guess"}))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    // The token endpoint with a wrong secret.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("x-forwarded-for", client_ip)
        .basic_auth(&world.client_id, Some("pcss_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The gateway with a forged token.
    let r = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={}", world.resource)))
        .header("x-forwarded-for", client_ip)
        .header("authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
        .header("x-api-key", &world.client_id)
        .header("x-gw-ims-org-id", &world.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let failures = wait_for_entries(&app, "?action=auth.failed", 4).await;
    assert_eq!(failures.len(), 4, "{failures:#?}");
    for f in &failures {
        assert_eq!(f["outcome"], "failure");
        assert_eq!(f["address"], client_ip, "{f}");
    }
    let by_surface = |s: &str| {
        failures
            .iter()
            .find(|f| {
                f["details"]["surface"] == s
                    && (s != "admin" || f["details"]["attempted"] == "apps.read")
            })
            .unwrap_or_else(|| panic!("no {s} failure in {failures:#?}"))
    };
    assert_eq!(by_surface("admin")["actor"], "anonymous");
    let sign_in = failures
        .iter()
        .find(|f| f["details"]["attempted"] == "sessions.create")
        .expect("the failed sign-in");
    assert_eq!(sign_in["actor"], "email:nobody@example.com");
    let token = by_surface("token");
    assert_eq!(token["actor"], format!("client:{}", world.client_id));
    assert_eq!(token["org_id"], world.org);
    assert_eq!(token["details"]["code"], "invalid_client");
    let gateway = by_surface("gateway");
    assert_eq!(gateway["actor"], format!("client:{}", world.client_id));
    assert_eq!(gateway["target"], world.resource);
    // A token that is not well-formed: EXEG-0500 (counted as a failed authentication).
    assert_eq!(gateway["details"]["code"], "EXEG-0500-401");
    // The forged secret is not in the trail.
    let (_, raw) = export(&app, "").await;
    assert!(!raw.contains("pcss_wrong") && !raw.contains("guess"));
}

#[tokio::test]
async fn the_trail_is_read_only_filtered_paged_and_exported() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.client(&["read"]).await;
    }
    let entries = all_entries(&app, "").await;
    assert_eq!(entries.len(), 9, "three orgs, apps and secrets");

    // No way to change or delete an entry.
    for method in [Method::POST, Method::PATCH, Method::PUT, Method::DELETE] {
        let r = app
            .admin(method.clone(), "/admin/v1/audit", Some(json!({})))
            .await;
        assert_problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
        let path = format!("/admin/v1/audit/{}", entries[0]["id"]);
        let r = app.admin(method, &path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // Filters.
    let target = entries[1]["target"].as_str().unwrap();
    let by_target = all_entries(&app, &format!("?target={target}")).await;
    assert_eq!(by_target.len(), 1);
    assert_eq!(by_target[0]["action"], "apps.create");
    assert_eq!(all_entries(&app, "?action=orgs.create").await.len(), 3);
    let actor = entries[0]["actor"].as_str().unwrap();
    assert_eq!(all_entries(&app, &format!("?actor={actor}")).await.len(), 9);
    assert_eq!(all_entries(&app, "?actor=user:nobody").await.len(), 0);
    let at = entries[0]["at"].as_i64().unwrap();
    assert_eq!(all_entries(&app, &format!("?since={at}")).await.len(), 9);
    assert_eq!(all_entries(&app, &format!("?until={at}")).await.len(), 0);
    let org = entries[0]["target"].as_str().unwrap();
    assert_eq!(all_entries(&app, &format!("?org={org}")).await.len(), 3);
    assert_eq!(all_entries(&app, "?outcome=success").await.len(), 9);
    assert_eq!(all_entries(&app, "?outcome=failure").await.len(), 0);
    // Newest first: the same entries, the other way round, page by page.
    let mut newest = all_entries(&app, "?order=desc").await;
    newest.reverse();
    assert_eq!(newest, entries);
    let paged = app
        .walk_pages_of("/admin/v1/audit?order=desc", 2, "entries")
        .await;
    assert_eq!(paged.len(), 9);
    assert!(
        paged
            .windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64())
    );

    // The export: the same entries, one JSON object a line.
    let (headers, body) = export(&app, "").await;
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, entries);
    let r = app
        .http
        .get(app.url("/admin/v1/audit?format=ndjson&action=orgs.create"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap().lines().count(), 3);

    // Bad input is a 400 problem.
    for q in [
        "?limit=0",
        "?limit=1001",
        "?after=abc",
        "?format=xml",
        "?since=10&until=5",
        "?since=yesterday",
        "?org=not-an-org",
        "?colour=blue",
        "?outcome=maybe",
        "?order=up",
    ] {
        let r = app
            .admin(Method::GET, &format!("/admin/v1/audit{q}"), None)
            .await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }
    // And without credentials, a 401.
    let r = app
        .http
        .get(app.url("/admin/v1/audit"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn org_admins_read_only_their_organizations_entries() {
    let app = TestApp::spawn().await;
    let (_, _, mine) = app.client(&["read"]).await;
    let (_, _, theirs) = app.client(&["read"]).await;
    app.create_user(
        "admin@example.com",
        "a long password 1",
        json!({ &mine: "admin" }),
    )
    .await;
    app.create_user(
        "dev@example.com",
        "a long password 2",
        json!({ &mine: "developer" }),
    )
    .await;
    let admin = app.session("admin@example.com", "a long password 1").await;
    let dev = app.session("dev@example.com", "a long password 2").await;

    let (status, page) = app
        .call_as(&admin, Method::GET, "/admin/v1/audit?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let seen = page["entries"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "{page:#}");
    assert!(seen.iter().all(|e| e["org_id"] == mine));
    let (status, _) = app
        .call_as(
            &admin,
            Method::GET,
            &format!("/admin/v1/audit?org={theirs}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call_as(&dev, Method::GET, "/admin/v1/audit", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = app
        .http
        .get(app.url("/admin/v1/audit/export"))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN).await;
}
