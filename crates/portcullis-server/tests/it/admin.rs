//! Black-box tests of the admin API, driven the way an operator (the bootstrap
//! admin token), a signed-in user and an app with the `admin` scope drive it.

use crate::common;

use common::*;
use portcullis_core::grant::MAX_TTL;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const PASSWORD: &str = "correct horse battery staple";

/// Walk a listing `limit` at a time and check it holds exactly the `expected` ids, each
/// once, over more than one page.
async fn assert_lists_exactly(
    app: &TestApp,
    path: &str,
    key: &str,
    limit: u32,
    expected: &[String],
) {
    assert!(
        expected.len() > limit as usize,
        "the test must create more than one page of records"
    );
    let items = app.walk_pages(path, limit).await;
    let got = ids(&items, key);
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "{path} listed a record twice: {got:?}"
    );
    let want: BTreeSet<&String> = expected.iter().collect();
    assert_eq!(unique, want, "{path} must list exactly the records created");
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, v) = app.call(Method::POST, path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
    v
}

async fn org_with(app: &TestApp, products: &[&str], sandboxes: &[&str]) -> String {
    s(&app.create_org(products, sandboxes).await["id"])
}

/// An app and one of its secrets: `(client_id, secret)`.
async fn app_with_secret(app: &TestApp, org: &str, scopes: &[&str]) -> (String, String) {
    let cid = s(&app.create_app(org, scopes).await["client_id"]);
    let (_, secret) = app.create_secret(&cid).await;
    (cid, secret)
}

// --- CRUD of every collection -------------------------------------------------------

#[tokio::test]
async fn an_operator_creates_reads_updates_lists_and_deletes_orgs() {
    let app = TestApp::spawn().await;
    let org = create(
        &app,
        "/admin/v1/orgs",
        json!({"name": "Acme", "products": ["events"], "sandboxes": ["prod", "dev"]}),
    )
    .await;
    let id = s(&org["id"]);
    assert!(id.ends_with("@Org"), "{id}");
    assert_eq!(org["name"], "Acme");
    assert_eq!(org["status"], "active");
    assert_eq!(org["products"], json!(["events"]));
    assert_eq!(org["sandboxes"], json!(["dev", "prod"]));

    let plain = create(&app, "/admin/v1/orgs", json!({"name": "Plain"})).await;
    assert_eq!(
        plain["sandboxes"],
        json!(["prod"]),
        "an org gets a prod sandbox by default"
    );
    assert_eq!(plain["products"], json!([]));

    let path = format!("/admin/v1/orgs/{id}");
    let (status, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, org, "reading returns what creating returned");

    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "Acme Corp", "products": ["events", "notifications"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Acme Corp");
    assert_eq!(patched["products"], json!(["events", "notifications"]));
    assert_eq!(
        patched["sandboxes"], org["sandboxes"],
        "fields not named stay as they were"
    );
    let (_, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(read, patched);

    let mut all = vec![id.clone(), s(&plain["id"])];
    for i in 0..5 {
        all.push(s(&create(
            &app,
            "/admin/v1/orgs",
            json!({"name": format!("Org {i}")}),
        )
        .await["id"]));
    }
    assert_lists_exactly(&app, "/admin/v1/orgs", "id", 3, &all).await;

    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::PATCH, &path, Some(json!({"name": "Ghost"})))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    all.retain(|o| o != &id);
    assert_lists_exactly(&app, "/admin/v1/orgs", "id", 3, &all).await;
}

#[tokio::test]
async fn an_operator_manages_the_permission_groups_of_an_org() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let other = org_with(&app, &[], &["prod"]).await;
    let base = format!("/admin/v1/orgs/{org}/groups");

    let group = create(
        &app,
        &base,
        json!({"name": "Readers", "scopes": ["read", "list"]}),
    )
    .await;
    let gid = s(&group["id"]);
    assert!(gid.starts_with("grp_"), "{gid}");
    assert_eq!(group["org_id"], org.as_str());
    assert_eq!(group["name"], "Readers");
    assert_eq!(group["scopes"], json!(["list", "read"]));

    let path = format!("{base}/{gid}");
    let (status, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, group);

    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "Writers", "scopes": ["write"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Writers");
    assert_eq!(patched["scopes"], json!(["write"]));
    assert_eq!(app.call(Method::GET, &path, None).await.1, patched);

    // A group is addressed under its own org only.
    assert_problem(
        app.admin(
            Method::GET,
            &format!("/admin/v1/orgs/{other}/groups/{gid}"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let elsewhere = create(
        &app,
        &format!("/admin/v1/orgs/{other}/groups"),
        json!({"name": "Elsewhere", "scopes": ["read"]}),
    )
    .await;

    let mut all = vec![gid.clone()];
    for i in 0..4 {
        all.push(s(&create(
            &app,
            &base,
            json!({"name": format!("Group {i}"), "scopes": ["read"]}),
        )
        .await["id"]));
    }
    assert_lists_exactly(&app, &base, "id", 2, &all).await;
    assert!(!all.contains(&s(&elsewhere["id"])));

    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn an_operator_creates_reads_updates_lists_and_deletes_apps() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &["events"], &["prod", "dev"]).await;
    let other = org_with(&app, &[], &["prod"]).await;

    let created = create(
        &app,
        "/admin/v1/apps",
        json!({
            "org_id": org, "name": "Partner", "products": ["events"], "scopes": ["read", "write"],
            "sandboxes": {"prod": "read", "dev": "write"}, "token_ttl_seconds": 600
        }),
    )
    .await;
    let cid = s(&created["client_id"]);
    assert_eq!(cid.len(), 32);
    assert!(
        cid.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{cid}"
    );
    assert!(s(&created["technical_account_id"]).ends_with("@techacct.portcullis"));
    assert_eq!(created["org_id"], org.as_str());
    assert_eq!(created["status"], "active");
    assert_eq!(created["products"], json!(["events"]));
    assert_eq!(created["scopes"], json!(["read", "write"]));
    assert_eq!(created["effective_scopes"], json!(["read", "write"]));
    assert_eq!(
        created["sandboxes"],
        json!({"prod": "read", "dev": "write"})
    );
    assert_eq!(created["token_ttl_seconds"], 600);
    assert_eq!(created["group_id"], Value::Null);

    let path = format!("/admin/v1/apps/{cid}");
    let (status, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);

    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "Partner v2", "scopes": ["read"], "token_ttl_seconds": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Partner v2");
    assert_eq!(patched["effective_scopes"], json!(["read"]));
    assert_eq!(
        patched["token_ttl_seconds"],
        Value::Null,
        "null returns to the default lifetime"
    );
    assert_eq!(patched["sandboxes"], created["sandboxes"]);
    assert_eq!(app.call(Method::GET, &path, None).await.1, patched);

    let mut all = vec![cid.clone()];
    for _ in 0..4 {
        all.push(s(&app.create_app(&org, &["read"]).await["client_id"]));
    }
    let foreign = s(&app.create_app(&other, &["read"]).await["client_id"]);
    assert_lists_exactly(
        &app,
        &format!("/admin/v1/apps?org={org}"),
        "client_id",
        2,
        &all,
    )
    .await;
    let mut everything = all.clone();
    everything.push(foreign);
    assert_lists_exactly(&app, "/admin/v1/apps", "client_id", 2, &everything).await;

    // Deleting is immediate everywhere: the secret stops working at once.
    let (_, secret) = app.create_secret(&cid).await;
    assert_eq!(
        app.token(&cid, &secret, None).await.status(),
        StatusCode::OK
    );
    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn a_secret_is_shown_once_at_creation_and_never_in_listings_or_reads() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let cid = s(&app.create_app(&org, &["read"]).await["client_id"]);
    let base = format!("/admin/v1/apps/{cid}/secrets");

    let r = app.admin(Method::POST, &base, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let first: Value = r.json().await.unwrap();
    let secret = s(&first["secret"]);
    let sid = s(&first["id"]);
    assert!(
        secret.starts_with("pcss_"),
        "a client secret has its prefix"
    );
    assert!(
        secret.starts_with(&s(&first["prefix"])),
        "the prefix is the secret's beginning"
    );
    assert_eq!(first["client_id"], cid.as_str());
    assert_eq!(
        app.token(&cid, &secret, None).await.status(),
        StatusCode::OK
    );

    let mut all = vec![sid.clone()];
    let mut secrets = vec![secret.clone()];
    for _ in 0..6 {
        let (id, sec) = app.create_secret(&cid).await;
        all.push(id);
        secrets.push(sec);
    }

    let path = format!("{base}/{sid}");
    let r = app.admin(Method::GET, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let read: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(read["id"], sid.as_str());
    assert!(
        read.get("secret").is_none(),
        "a read never shows the secret: {read}"
    );
    assert!(!text.contains(&secret));

    let listed = app.walk_pages(&base, 3).await;
    for item in &listed {
        assert!(
            item.get("secret").is_none(),
            "a listing never shows the secret: {item}"
        );
        let text = item.to_string();
        assert!(secrets.iter().all(|sec| !text.contains(sec.as_str())));
    }
    assert_lists_exactly(&app, &base, "id", 3, &all).await;

    // PATCH the expiry into the past: the secret stops working; back to never: it works.
    let created_at = first["created_at"].as_i64().unwrap();
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"expires_at": created_at - 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["expires_at"], created_at - 1);
    assert!(patched.get("secret").is_none());
    assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    let (status, patched) = app
        .call(Method::PATCH, &path, Some(json!({"expires_at": null})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["expires_at"], Value::Null);
    assert_eq!(
        app.token(&cid, &secret, None).await.status(),
        StatusCode::OK
    );

    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_eq!(
        app.token(&cid, &secrets[1], None).await.status(),
        StatusCode::OK,
        "other secrets still work"
    );
}

#[tokio::test]
async fn an_operator_creates_reads_updates_lists_and_deletes_users() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;

    let r = app
        .admin(
            Method::POST,
            "/admin/v1/users",
            Some(json!({"email": "Dev@Example.COM", "password": PASSWORD, "name": "Dev", "roles": {org.clone(): "developer"}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let text = r.text().await.unwrap();
    assert!(!text.contains(PASSWORD), "the password is never echoed");
    assert!(!text.contains("argon2"), "the password hash is never shown");
    let user: Value = serde_json::from_str(&text).unwrap();
    let uid = s(&user["id"]);
    assert!(uid.starts_with("usr_"), "{uid}");
    assert_eq!(
        user["email"], "dev@example.com",
        "emails are compared in lower case"
    );
    assert_eq!(user["name"], "Dev");
    assert_eq!(user["roles"], json!({org.clone(): "developer"}));

    let path = format!("/admin/v1/users/{uid}");
    let (status, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, user);

    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "Developer", "roles": {org.clone(): "admin"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Developer");
    assert_eq!(patched["roles"], json!({org.clone(): "admin"}));
    assert_eq!(app.call(Method::GET, &path, None).await.1, patched);

    // The email is unique, whatever its case.
    assert_problem(
        app.admin(
            Method::POST,
            "/admin/v1/users",
            Some(json!({"email": "DEV@example.com", "password": PASSWORD, "roles": {org.clone(): "developer"}})),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;

    let mut all = vec![uid.clone()];
    for i in 0..4 {
        all.push(s(&app
            .create_user(&format!("user{i}@example.com"), PASSWORD, json!({}))
            .await["id"]));
    }
    assert_lists_exactly(&app, "/admin/v1/users", "id", 2, &all).await;

    assert_eq!(
        app.sign_in("dev@example.com", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let (status, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.sign_in("dev@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn deleting_an_org_deletes_its_apps_and_their_credentials_stop_working() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let keep = org_with(&app, &[], &["prod"]).await;
    let (cid, secret) = app_with_secret(&app, &org, &["read"]).await;
    let (kept_cid, kept_secret) = app_with_secret(&app, &keep, &["read"]).await;
    let group = create(
        &app,
        &format!("/admin/v1/orgs/{org}/groups"),
        json!({"name": "G", "scopes": ["read"]}),
    )
    .await;
    assert_eq!(
        app.token(&cid, &secret, None).await.status(),
        StatusCode::OK
    );

    let (status, _) = app
        .call(Method::DELETE, &format!("/admin/v1/orgs/{org}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert_problem(
        app.admin(Method::GET, &format!("/admin/v1/apps/{cid}"), None)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/groups/{}", s(&group["id"])),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let listed = ids(&app.walk_pages("/admin/v1/apps", 50).await, "client_id");
    assert_eq!(
        listed,
        vec![kept_cid.clone()],
        "only the other org's app is left"
    );
    assert_eq!(
        app.token(&kept_cid, &kept_secret, None).await.status(),
        StatusCode::OK
    );
}

// --- permission groups ---------------------------------------------------------------

#[tokio::test]
async fn an_app_in_a_permission_group_gets_the_groups_scopes_live() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let group = create(
        &app,
        &format!("/admin/v1/orgs/{org}/groups"),
        json!({"name": "Readers", "scopes": ["read"]}),
    )
    .await;
    let gid = s(&group["id"]);
    let member = create(
        &app,
        "/admin/v1/apps",
        json!({"org_id": org, "name": "Member", "group_id": gid}),
    )
    .await;
    let cid = s(&member["client_id"]);
    assert_eq!(member["group_id"], gid.as_str());
    assert_eq!(member["scopes"], json!([]));
    assert_eq!(member["effective_scopes"], json!(["read"]));
    let (_, secret) = app.create_secret(&cid).await;
    let first = app.access_token(&cid, &secret, None).await;
    assert_eq!(claims(&first)["scope"], "read");

    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/orgs/{org}/groups/{gid}"),
            Some(json!({"scopes": ["read", "write"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let next = app.access_token(&cid, &secret, None).await;
    assert_eq!(
        claims(&next)["scope"],
        "read write",
        "the group's new scopes reach the next token"
    );
    let (_, read) = app
        .call(Method::GET, &format!("/admin/v1/apps/{cid}"), None)
        .await;
    assert_eq!(read["effective_scopes"], json!(["read", "write"]));
    // Asking for a scope the group no longer grants is refused.
    app.call(
        Method::PATCH,
        &format!("/admin/v1/orgs/{org}/groups/{gid}"),
        Some(json!({"scopes": ["write"]})),
    )
    .await;
    assert_oauth_error(
        app.token(&cid, &secret, Some("read")).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_group_that_still_has_apps_is_refused_until_they_leave() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let gid = s(&create(
        &app,
        &format!("/admin/v1/orgs/{org}/groups"),
        json!({"name": "Readers", "scopes": ["read"]}),
    )
    .await["id"]);
    let cid = s(&create(
        &app,
        "/admin/v1/apps",
        json!({"org_id": org, "name": "Member", "group_id": gid}),
    )
    .await["client_id"]);
    let path = format!("/admin/v1/orgs/{org}/groups/{gid}");

    let p = assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(
        s(&p["detail"]).contains("move them out"),
        "the detail says what to do: {p}"
    );
    assert_eq!(
        app.call(Method::GET, &path, None).await.0,
        StatusCode::OK,
        "the group is still there"
    );

    let (status, moved) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"group_id": null, "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["group_id"], Value::Null);
    assert_eq!(
        app.call(Method::DELETE, &path, None).await.0,
        StatusCode::NO_CONTENT
    );
}

// --- validation ----------------------------------------------------------------------

#[tokio::test]
async fn an_app_cannot_have_a_product_its_org_is_not_entitled_to() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &["events"], &["prod"]).await;
    let p = assert_problem(
        app.admin(
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "A", "products": ["events", "analytics"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        s(&p["detail"]).contains("analytics"),
        "the detail names the product: {p}"
    );

    let cid = s(&app.create_app(&org, &["read"]).await["client_id"]);
    let p = assert_problem(
        app.admin(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"products": ["billing"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(s(&p["detail"]).contains("billing"), "{p}");
    let (_, read) = app
        .call(Method::GET, &format!("/admin/v1/apps/{cid}"), None)
        .await;
    assert_eq!(
        read["products"],
        json!([]),
        "a refused PATCH changes nothing"
    );
}

#[tokio::test]
async fn an_app_cannot_have_access_to_a_sandbox_its_org_does_not_have() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let p = assert_problem(
        app.admin(
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "A", "sandboxes": {"staging": "write"}})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(s(&p["detail"]).contains("staging"), "{p}");
}

#[tokio::test]
async fn an_app_takes_its_scopes_either_directly_or_from_a_group_not_both() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let gid = s(&create(
        &app,
        &format!("/admin/v1/orgs/{org}/groups"),
        json!({"name": "G", "scopes": ["read"]}),
    )
    .await["id"]);
    assert_problem(
        app.admin(
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "A", "scopes": ["write"], "group_id": gid})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let listed = app
        .walk_pages(&format!("/admin/v1/apps?org={org}"), 50)
        .await;
    assert!(listed.is_empty(), "nothing was created: {listed:?}");
}

#[tokio::test]
async fn token_lifetimes_outside_a_minute_to_a_day_are_refused() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    for ttl in [0, 59, MAX_TTL + 1] {
        let p = assert_problem(
            app.admin(
                Method::POST,
                "/admin/v1/apps",
                Some(json!({"org_id": org, "name": "A", "token_ttl_seconds": ttl})),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(s(&p["detail"]).contains("token_ttl_seconds"), "{p}");
    }
    assert_problem(
        app.admin(
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "A", "token_ttl_seconds": -5})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    for ttl in [60, MAX_TTL] {
        create(
            &app,
            "/admin/v1/apps",
            json!({"org_id": org, "name": "A", "token_ttl_seconds": ttl}),
        )
        .await;
    }
}

#[tokio::test]
async fn an_app_with_a_two_minute_lifetime_gets_two_minute_tokens() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let cid = s(&create(
        &app,
        "/admin/v1/apps",
        json!({"org_id": org, "name": "Short", "scopes": ["read"], "token_ttl_seconds": 120}),
    )
    .await["client_id"]);
    let (_, secret) = app.create_secret(&cid).await;
    let r = app.token(&cid, &secret, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let c = claims(s(&body["access_token"]).as_str());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 120);
}

// --- status --------------------------------------------------------------------------

#[tokio::test]
async fn a_suspended_app_gets_no_tokens_and_its_earlier_tokens_turn_inactive() {
    // A manual clock: tokens issued in the second of the suspension count as earlier.
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let org = org_with(&app, &[], &["prod"]).await;
    let (introspector, introspector_secret) = app_with_secret(&app, &org, &["introspect"]).await;
    let (cid, secret) = app_with_secret(&app, &org, &["read"]).await;
    let earlier = app.access_token(&cid, &secret, None).await;
    let active: Value = app
        .introspect(&introspector, &introspector_secret, &earlier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);

    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["status"], "suspended");

    let e = assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(s(&e["error_description"]).contains("suspended"), "{e}");
    let r = app
        .introspect(&introspector, &introspector_secret, &earlier)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"active": false}));

    // Reactivated: new tokens work, but the tokens from before the suspension stay dead.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"status": "active"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = app
        .introspect(&introspector, &introspector_secret, &earlier)
        .await;
    assert_eq!(
        after.json::<Value>().await.unwrap(),
        json!({"active": false})
    );
    app.clock.as_ref().unwrap().advance(1);
    let fresh = app.access_token(&cid, &secret, None).await;
    let r = app
        .introspect(&introspector, &introspector_secret, &fresh)
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn a_disabled_orgs_apps_get_no_tokens_and_their_earlier_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let (cid, secret) = app_with_secret(&app, &org, &["read"]).await;
    let (admin_cid, admin_secret) = app_with_secret(&app, &org, &["admin", "introspect"]).await;
    let earlier = app.access_token(&cid, &secret, None).await;
    let admin_token = app
        .access_token(&admin_cid, &admin_secret, Some("admin"))
        .await;
    let r = app.introspect(&admin_cid, &admin_secret, &earlier).await;
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let path = format!("/admin/v1/apps/{cid}");
    assert_eq!(
        app.call_as(&admin_token, Method::GET, &path, None).await.0,
        StatusCode::OK
    );

    let (status, patched) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/orgs/{org}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["status"], "disabled");

    let e = assert_oauth_error(
        app.token(&cid, &secret, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(s(&e["error_description"]).contains("disabled"), "{e}");
    // Nobody in the org can introspect any more, and the earlier admin token is refused.
    assert_oauth_error(
        app.introspect(&admin_cid, &admin_secret, &earlier).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    let p = assert_problem(
        app.admin_as(&admin_token, Method::GET, &path, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(s(&p["detail"]).contains("disabled"), "{p}");
}

// --- callers -------------------------------------------------------------------------

#[tokio::test]
async fn a_call_without_valid_credentials_is_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/admin/v1/orgs"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().contains_key("www-authenticate"),
        "401 carries WWW-Authenticate"
    );
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    let wrong = format!("{ADMIN_TOKEN}x");
    let r = app
        .admin_as(&wrong, Method::GET, "/admin/v1/orgs", None)
        .await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    let r = app
        .http
        .get(app.url("/admin/v1/orgs"))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(
        s(&p["detail"]).contains("Bearer"),
        "the detail says which scheme to use: {p}"
    );

    for bogus in ["pcsu_notasession", "a.b.c", "pcsa_guess"] {
        assert_problem(
            app.admin_as(bogus, Method::GET, "/admin/v1/orgs", None)
                .await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
}

#[tokio::test]
async fn a_developer_signs_in_and_manages_apps_only_in_their_org() {
    let app = TestApp::spawn().await;
    let org_a = org_with(&app, &[], &["prod"]).await;
    let org_b = org_with(&app, &[], &["prod"]).await;
    let b_app = s(&app.create_app(&org_b, &["read"]).await["client_id"]);
    app.create_user(
        "dev@example.com",
        PASSWORD,
        json!({org_a.clone(): "developer"}),
    )
    .await;

    let r = app.sign_in("dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let session: Value = r.json().await.unwrap();
    let token = s(&session["token"]);
    assert!(token.starts_with("pcsu_"), "a session token has its prefix");
    assert_eq!(session["user"]["email"], "dev@example.com");

    let (status, created) = app
        .call_as(
            &token,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org_a, "name": "Mine", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let mine = s(&created["client_id"]);
    let (status, _) = app
        .call_as(
            &token,
            Method::POST,
            &format!("/admin/v1/apps/{mine}/secrets"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a developer manages the app's credentials"
    );

    let (status, orgs) = app
        .call_as(&token, Method::GET, "/admin/v1/orgs", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(orgs["items"].as_array().unwrap(), "id"),
        vec![org_a.clone()],
        "only their org is listed"
    );

    for path in [
        format!("/admin/v1/orgs/{org_b}"),
        format!("/admin/v1/apps/{b_app}"),
        format!("/admin/v1/apps?org={org_b}"),
        format!("/admin/v1/orgs/{org_b}/groups"),
    ] {
        assert_problem(
            app.admin_as(&token, Method::GET, &path, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_problem(
        app.admin_as(
            &token,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org_b, "name": "Theirs"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin_as(
            &token,
            Method::POST,
            "/admin/v1/orgs",
            Some(json!({"name": "Mine now"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = assert_problem(
        app.admin_as(
            &token,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org_a, "name": "Root", "scopes": ["read", "admin"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(s(&p["detail"]).contains("admin"), "{p}");
    assert_problem(
        app.admin_as(
            &token,
            Method::PATCH,
            &format!("/admin/v1/apps/{mine}"),
            Some(json!({"scopes": ["admin"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test]
async fn an_org_admin_user_may_grant_the_admin_scope() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    app.create_user("boss@example.com", PASSWORD, json!({org.clone(): "admin"}))
        .await;
    let token = app.session("boss@example.com", PASSWORD).await;
    let (status, created) = app
        .call_as(
            &token,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "Automation", "scopes": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["scopes"], json!(["admin"]));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_are_refused_alike() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    app.create_user("dev@example.com", PASSWORD, json!({org: "developer"}))
        .await;
    let wrong_password = assert_problem(
        app.sign_in("dev@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = assert_problem(
        app.sign_in("nobody@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        wrong_password, unknown_email,
        "the answer does not reveal whether the account exists"
    );
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    app.create_user(
        "dev@example.com",
        PASSWORD,
        json!({org.clone(): "developer"}),
    )
    .await;
    let token = app.session("dev@example.com", PASSWORD).await;
    let path = format!("/admin/v1/orgs/{org}");
    assert_eq!(
        app.call_as(&token, Method::GET, &path, None).await.0,
        StatusCode::OK
    );

    let (status, _) = app
        .call_as(&token, Method::DELETE, "/admin/v1/sessions/current", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_problem(
        app.admin_as(&token, Method::GET, &path, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Other sessions of the same user are not affected.
    let again = app.session("dev@example.com", PASSWORD).await;
    assert_ne!(again, token);
    assert_eq!(
        app.call_as(&again, Method::GET, &path, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_app_with_the_admin_scope_manages_its_own_orgs_apps_only() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let other = org_with(&app, &[], &["prod"]).await;
    let (admin_cid, admin_secret) = app_with_secret(&app, &org, &["admin", "read"]).await;
    let foreign = s(&app.create_app(&other, &["read"]).await["client_id"]);
    let token = app
        .access_token(&admin_cid, &admin_secret, Some("admin"))
        .await;

    let (status, created) = app
        .call_as(
            &token,
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "Made by automation", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let made = s(&created["client_id"]);
    let (status, listed) = app
        .call_as(
            &token,
            Method::GET,
            &format!("/admin/v1/apps?org={org}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = ids(listed["items"].as_array().unwrap(), "client_id");
    assert!(
        listed.contains(&made) && listed.contains(&admin_cid),
        "{listed:?}"
    );
    let (status, _) = app
        .call_as(
            &token,
            Method::PATCH,
            &format!("/admin/v1/apps/{made}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call_as(
            &token,
            Method::DELETE,
            &format!("/admin/v1/apps/{made}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for method in [Method::GET, Method::DELETE] {
        assert_problem(
            app.admin_as(&token, method, &format!("/admin/v1/apps/{foreign}"), None)
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    assert_eq!(
        app.call(Method::GET, &format!("/admin/v1/apps/{foreign}"), None)
            .await
            .0,
        StatusCode::OK
    );

    // A token of the same app without the admin scope, and an app without it: 403.
    let narrow = app
        .access_token(&admin_cid, &admin_secret, Some("read"))
        .await;
    let (plain_cid, plain_secret) = app_with_secret(&app, &org, &["read"]).await;
    let plain = app.access_token(&plain_cid, &plain_secret, None).await;
    for t in [narrow, plain] {
        let p = assert_problem(
            app.admin_as(
                &t,
                Method::GET,
                &format!("/admin/v1/apps/{plain_cid}"),
                None,
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(s(&p["detail"]).contains("admin"), "{p}");
    }
}
