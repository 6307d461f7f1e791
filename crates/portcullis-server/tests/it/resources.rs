//! Black-box tests of `/admin/v1/orgs/{org_id}/resources`: what the
//! gateway decides against. Org admins manage resources; developers read them.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

async fn org_with(app: &TestApp, products: &[&str], sandboxes: &[&str]) -> String {
    s(&app.create_org(products, sandboxes).await["id"])
}

async fn create(app: &TestApp, org: &str, body: Value) -> Value {
    let path = format!("/admin/v1/orgs/{org}/resources");
    let (status, v) = app.call(Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
    v
}

/// `method path body` as the bootstrap admin must be a 400 problem whose detail holds
/// every one of `names`; returns the detail.
async fn assert_refused(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Value,
    names: &[&str],
) -> String {
    let p = assert_problem(
        app.admin(method.clone(), path, Some(body.clone())).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let detail = s(&p["detail"]);
    for n in names {
        assert!(
            detail.contains(n),
            "{method} {path} {body}: the detail names {n:?}: {detail}"
        );
    }
    detail
}

#[tokio::test]
async fn an_org_admin_creates_reads_updates_lists_and_deletes_resources() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &["events", "analytics"], &["prod", "dev"]).await;
    let base = format!("/admin/v1/orgs/{org}/resources");

    // Every field given.
    let full = create(
        &app,
        &org,
        json!({
            "name": "Datastream",
            "sandbox": "dev",
            "product": "events",
            "scopes": ["write", "read"],
            "allow_unauthenticated": true,
            "cors_origins": ["https://shop.example", "http://localhost:8080"],
        }),
    )
    .await;
    let rid = s(&full["id"]);
    assert!(
        rid.starts_with("res_") && rid.len() == 20,
        "a resource id is res_ and 16 hex digits: {rid}"
    );
    assert!(rid[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{rid}");
    assert_eq!(full["org_id"], org.as_str());
    assert_eq!(full["name"], "Datastream");
    assert_eq!(full["sandbox"], "dev");
    assert_eq!(full["product"], "events");
    assert_eq!(full["scopes"], json!(["read", "write"]));
    assert_eq!(full["allow_unauthenticated"], true);
    assert_eq!(
        full["cors_origins"],
        json!(["https://shop.example", "http://localhost:8080"])
    );
    assert!(full["created_at"].as_i64().is_some_and(|t| t > 0), "{full}");

    // Readable at once (the view is refreshed before the answer).
    let path = format!("{base}/{rid}");
    let (status, read) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, full);

    // Only the name: the defaults are the safe ones.
    let plain = create(&app, &org, json!({"name": "  Plain  "})).await;
    assert_eq!(plain["name"], "Plain", "the name is trimmed");
    assert_eq!(plain["sandbox"], "prod", "the default sandbox is prod");
    assert_eq!(plain["product"], Value::Null);
    assert_eq!(plain["scopes"], json!([]));
    assert_eq!(
        plain["allow_unauthenticated"], false,
        "only authenticated calls pass unless asked otherwise"
    );
    assert_eq!(plain["cors_origins"], json!([]));

    // PATCH changes what it names and leaves the rest.
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"name": "Renamed", "scopes": ["read"], "cors_origins": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Renamed");
    assert_eq!(patched["scopes"], json!(["read"]));
    assert_eq!(patched["cors_origins"], json!(["*"]));
    assert_eq!(patched["sandbox"], "dev");
    assert_eq!(patched["product"], "events");
    assert_eq!(patched["allow_unauthenticated"], true);
    assert_eq!(patched["id"], full["id"]);
    assert_eq!(patched["created_at"], full["created_at"]);
    assert_eq!(app.call(Method::GET, &path, None).await.1, patched);

    // `product: null` removes the product; an absent one leaves it.
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"product": null, "sandbox": "prod", "allow_unauthenticated": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["product"], Value::Null);
    assert_eq!(patched["sandbox"], "prod");
    assert_eq!(patched["allow_unauthenticated"], false);
    let (status, patched) = app
        .call(Method::PATCH, &path, Some(json!({"product": "analytics"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["product"], "analytics");
    let (status, patched) = app.call(Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["product"], "analytics",
        "an empty PATCH changes nothing"
    );
    assert_eq!(app.call(Method::GET, &path, None).await.1, patched);

    // The listing pages through exactly this org's resources.
    let other = org_with(&app, &[], &["prod"]).await;
    let elsewhere = create(&app, &other, json!({"name": "Elsewhere"})).await;
    let mut all = vec![rid.clone(), s(&plain["id"])];
    for i in 0..3 {
        all.push(s(
            &create(&app, &org, json!({"name": format!("R{i}")})).await["id"]
        ));
    }
    let mut listed = ids(&app.walk_pages(&base, 2).await, "id");
    listed.sort();
    all.sort();
    assert_eq!(listed, all);
    assert!(!listed.contains(&s(&elsewhere["id"])));

    // Deleting is immediate.
    let (status, body) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_problem(
        app.admin(Method::GET, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::PATCH, &path, Some(json!({"name": "Back"})))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.admin(Method::DELETE, &path, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        !ids(&app.walk_pages(&base, 100).await, "id").contains(&rid),
        "a deleted resource is not listed"
    );
}

#[tokio::test]
async fn invalid_resources_are_refused_with_a_detail_that_names_the_value() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &["events", "analytics"], &["prod", "dev"]).await;
    let base = format!("/admin/v1/orgs/{org}/resources");
    let post = |body: Value| (Method::POST, base.clone(), body);

    // The name.
    for name in ["", "   ", "a\u{7}b"] {
        let (m, p, b) = post(json!({"name": name}));
        assert_refused(&app, m, &p, b, &["name"]).await;
    }
    let (m, p, b) = post(json!({"name": "x".repeat(201)}));
    assert_refused(&app, m, &p, b, &["name"]).await;

    // The sandbox must be one of the org's; the detail lists them.
    let (m, p, b) = post(json!({"name": "R", "sandbox": "staging"}));
    assert_refused(&app, m, &p, b, &["staging", "prod", "dev"]).await;

    // The product must be one the org is entitled to; the detail lists them.
    let (m, p, b) = post(json!({"name": "R", "product": "billing"}));
    assert_refused(&app, m, &p, b, &["billing", "events", "analytics"]).await;

    // Scopes.
    let (m, p, b) = post(json!({"name": "R", "scopes": ["read", "bad scope\""]}));
    assert_refused(&app, m, &p, b, &["bad scope"]).await;

    // CORS origins: an origin or `*`, nothing more.
    for bad in [
        "https://shop.example/",
        "https://shop.example/path",
        "https://shop.example?x=1",
        "https://shop.example#top",
        "shop.example",
        "ftp://shop.example",
        "https://",
        "https://:443",
        "https://shop.example:",
        "https://shop.example:http",
        "https://shop.example:99999",
        "https://user@shop.example",
        "https://shop example",
        "**",
        "",
    ] {
        let (m, p, b) = post(json!({"name": "R", "cors_origins": ["https://ok.example", bad]}));
        let detail = assert_refused(&app, m, &p, b, &[]).await;
        assert!(
            detail.contains(&format!("'{bad}'")),
            "the detail names the origin {bad:?}: {detail}"
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("https://s{i}.example")).collect();
    let (m, p, b) = post(json!({"name": "R", "cors_origins": many}));
    assert_refused(&app, m, &p, b, &["50", "51"]).await;
    let fifty: Vec<String> = (0..50)
        .map(|i| format!("https://s{i}.example:{}", 8000 + i))
        .collect();
    let ok = create(&app, &org, json!({"name": "Fifty", "cors_origins": fifty})).await;
    assert_eq!(ok["cors_origins"].as_array().unwrap().len(), 50);

    // Unknown fields and wrong types.
    let (m, p, b) = post(json!({"name": "R", "allow_anonymous": true}));
    assert_refused(&app, m, &p, b, &["allow_anonymous"]).await;
    let (m, p, b) = post(json!({"name": "R", "allow_unauthenticated": "yes"}));
    assert_refused(&app, m, &p, b, &[]).await;

    // An org without `prod` must be told which sandbox.
    let no_prod = org_with(&app, &[], &["dev"]).await;
    let detail = assert_refused(
        &app,
        Method::POST,
        &format!("/admin/v1/orgs/{no_prod}/resources"),
        json!({"name": "R"}),
        &["sandbox"],
    )
    .await;
    assert!(detail.contains("prod"), "{detail}");
    let in_dev = create(&app, &no_prod, json!({"name": "R", "sandbox": "dev"})).await;
    assert_eq!(in_dev["sandbox"], "dev");

    // The same rules on PATCH, and a refused PATCH changes nothing.
    let r = create(&app, &org, json!({"name": "Kept", "product": "events"})).await;
    let path = format!("{base}/{}", s(&r["id"]));
    for (body, names) in [
        (json!({"name": ""}), vec!["name"]),
        (json!({"sandbox": "staging"}), vec!["staging"]),
        (json!({"product": "billing"}), vec!["billing"]),
        (json!({"scopes": ["bad scope\""]}), vec!["bad scope"]),
        (
            json!({"cors_origins": ["https://a.example/"]}),
            vec!["https://a.example/"],
        ),
        (json!({"name": "New", "cors_origins": ["x"]}), vec!["'x'"]),
        (json!({"org_id": "elsewhere"}), vec!["org_id"]),
    ] {
        assert_refused(&app, Method::PATCH, &path, body, &names).await;
    }
    assert_eq!(
        app.call(Method::GET, &path, None).await.1,
        r,
        "refused PATCHes change nothing"
    );

    // Nothing refused was written.
    let names: Vec<String> = app
        .walk_pages(&base, 100)
        .await
        .iter()
        .map(|r| s(&r["name"]))
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec!["Fifty", "Kept"]);
}

#[tokio::test]
async fn a_developer_reads_resources_but_only_an_org_admin_changes_them() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let other = org_with(&app, &[], &["prod"]).await;
    app.create_user(
        "dev@example.com",
        PASSWORD,
        json!({org.clone(): "developer"}),
    )
    .await;
    app.create_user("boss@example.com", PASSWORD, json!({org.clone(): "admin"}))
        .await;
    let dev = app.session("dev@example.com", PASSWORD).await;
    let boss = app.session("boss@example.com", PASSWORD).await;
    let base = format!("/admin/v1/orgs/{org}/resources");

    // An org admin manages them.
    let (status, r) = app
        .call_as(&boss, Method::POST, &base, Some(json!({"name": "Mine"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let path = format!("{base}/{}", s(&r["id"]));
    let (status, r) = app
        .call_as(
            &boss,
            Method::PATCH,
            &path,
            Some(json!({"scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");

    // A developer reads them...
    let (status, read) = app.call_as(&dev, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, r);
    let (status, page) = app.call_as(&dev, Method::GET, &base, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        ids(page["items"].as_array().unwrap(), "id"),
        vec![s(&r["id"])]
    );

    // ...but may not create, change or delete them.
    for (m, p, body) in [
        (
            Method::POST,
            base.clone(),
            Some(json!({"name": "Not mine"})),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"name": "Not mine"})),
        ),
        (Method::DELETE, path.clone(), None),
    ] {
        let problem = assert_problem(
            app.admin_as(&dev, m.clone(), &p, body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert!(s(&problem["detail"]).contains("resources"), "{problem}");
    }
    assert_eq!(app.call(Method::GET, &path, None).await.1, r);
    assert_eq!(app.walk_pages(&base, 100).await.len(), 1);

    // Another org's resources do not exist for them.
    let theirs = create(&app, &other, json!({"name": "Theirs"})).await;
    let theirs_path = format!("/admin/v1/orgs/{other}/resources/{}", s(&theirs["id"]));
    for token in [&dev, &boss] {
        for (m, p) in [
            (Method::GET, theirs_path.clone()),
            (Method::DELETE, theirs_path.clone()),
            (Method::GET, format!("/admin/v1/orgs/{other}/resources")),
        ] {
            assert_problem(
                app.admin_as(token, m, &p, None).await,
                StatusCode::NOT_FOUND,
            )
            .await;
        }
    }
    assert_eq!(app.call(Method::GET, &theirs_path, None).await.1, theirs);
}

#[tokio::test]
async fn a_resource_is_addressed_under_its_own_org_only() {
    let app = TestApp::spawn().await;
    let org = org_with(&app, &[], &["prod"]).await;
    let other = org_with(&app, &[], &["prod"]).await;
    let r = create(&app, &org, json!({"name": "R"})).await;
    let rid = s(&r["id"]);
    let wrong = format!("/admin/v1/orgs/{other}/resources/{rid}");
    for (m, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "Stolen"}))),
        (Method::DELETE, None),
    ] {
        let p = assert_problem(app.admin(m, &wrong, body).await, StatusCode::NOT_FOUND).await;
        assert!(s(&p["detail"]).contains(&rid), "{p}");
    }
    let (status, still) = app
        .call(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/resources/{rid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still, r);
    // A well-formed id that was never created is 404 too.
    assert_problem(
        app.admin(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/resources/res_0123456789abcdef"),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn deleting_an_org_deletes_its_resources() {
    let app = TestApp::spawn().await;
    let doomed = org_with(&app, &[], &["prod"]).await;
    let kept = org_with(&app, &[], &["prod"]).await;
    let gone = create(&app, &doomed, json!({"name": "Gone"})).await;
    let stays = create(&app, &kept, json!({"name": "Stays"})).await;

    let (status, body) = app
        .call(Method::DELETE, &format!("/admin/v1/orgs/{doomed}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    for p in [
        format!("/admin/v1/orgs/{doomed}/resources/{}", s(&gone["id"])),
        format!("/admin/v1/orgs/{doomed}/resources"),
    ] {
        assert_problem(
            app.admin(Method::GET, &p, None).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let (status, read) = app
        .call(
            Method::GET,
            &format!("/admin/v1/orgs/{kept}/resources/{}", s(&stays["id"])),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read, stays);
    app.assert_ready().await;
}
