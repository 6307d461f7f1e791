//! A newcomer's mistakes, answered so they can act: a wrongly shaped JSON field in any
//! admin API body gets a problem whose detail names the field, the shape it must have and
//! an example (never serde's internal wording or a position); `GET /` says where the
//! console is.

use crate::common;

use common::*;
use reqwest::Method;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn refused(app: &TestApp, method: Method, path: &str, body: Value) -> String {
    let r = app.admin(method, path, Some(body)).await;
    let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
    let detail = p["detail"].as_str().unwrap().to_owned();
    for serde_wording in [
        "invalid type",
        "expected a map",
        "expected a sequence",
        "line 1",
    ] {
        assert!(
            !detail.contains(serde_wording),
            "{path}: serde's wording '{serde_wording}' reached the client: {detail}"
        );
    }
    detail
}

#[tokio::test]
async fn the_sandboxes_guess_of_a_newcomer_gets_the_shape_and_an_example() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&["orders"], &["prod"]).await;
    let org = org["id"].as_str().unwrap();
    // The guess from the issue: a list where the app's sandbox access is a map.
    let d = refused(
        &app,
        Method::POST,
        "/admin/v1/apps",
        json!({"org_id": org, "name": "x", "sandboxes": ["prod"]}),
    )
    .await;
    assert!(
        d.starts_with("`sandboxes` must be an object, not an array."),
        "{d}"
    );
    assert!(d.contains(r#""sandboxes": {"prod": "read""#), "{d}");
    // The follow-up guess: a wrong access level.
    let d = refused(
        &app,
        Method::POST,
        "/admin/v1/apps",
        json!({"org_id": org, "name": "x", "sandboxes": {"prod": "readwrite"}}),
    )
    .await;
    assert!(
        d.starts_with(r#"`sandboxes.prod` must be one of "read", "write", not "readwrite"."#),
        "{d}"
    );
    // The right shape then works.
    let (status, created) = app
        .call(
            Method::POST,
            "/admin/v1/apps",
            Some(json!({"org_id": org, "name": "x", "sandboxes": {"prod": "read"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn every_admin_body_words_its_shape_errors_alike() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&["orders"], &["prod"]).await;
    let org = org["id"].as_str().unwrap().to_owned();
    let app_body = app.create_app(&org, &["read"]).await;
    let client_id = app_body["client_id"].as_str().unwrap().to_owned();

    // (method, path, body, the start of the detail, an example it must show)
    let cases: Vec<(Method, String, Value, &str, &str)> = vec![
        (
            Method::POST,
            "/admin/v1/orgs".into(),
            json!({"name": "A", "sandboxes": {"prod": "read"}}),
            "`sandboxes` must be an array, not an object.",
            r#""sandboxes": ["prod", "stage"]"#,
        ),
        (
            Method::PATCH,
            format!("/admin/v1/orgs/{org}"),
            json!({"products": "orders"}),
            "`products` must be an array, not the string orders.",
            r#""products": ["orders"]"#,
        ),
        (
            Method::POST,
            format!("/admin/v1/orgs/{org}/resources"),
            json!({"name": "Orders API", "scopes": "orders.read"}),
            "`scopes` must be an array, not the string orders.read.",
            r#""scopes": ["orders.read", "orders.write"]"#,
        ),
        (
            Method::POST,
            format!("/admin/v1/orgs/{org}/resources"),
            json!({"name": "Orders API", "cors_origins": "https://shop.example"}),
            "`cors_origins` must be an array",
            r#""cors_origins": ["https://shop.example"]"#,
        ),
        (
            Method::POST,
            format!("/admin/v1/orgs/{org}/resources"),
            json!({"sandbox": "prod"}),
            "`name` is required.",
            r#""name": "Orders API""#,
        ),
        (
            Method::PATCH,
            format!("/admin/v1/apps/{client_id}"),
            json!({"quota": {"requests": 10, "per": "hour"}}),
            "`quota.per` must be one of",
            r#""quota": {"requests": 100, "per": "minute"}"#,
        ),
        (
            Method::PATCH,
            format!("/admin/v1/apps/{client_id}"),
            json!({"token_ttl_seconds": "1h"}),
            "`token_ttl_seconds` must be a whole number, not the string 1h.",
            r#""token_ttl_seconds": 3600"#,
        ),
        (
            Method::POST,
            format!("/admin/v1/orgs/{org}/groups"),
            json!({"name": "Partners", "scopes": [1, 2]}),
            "`scopes[0]` must be a string, not the number 1.",
            r#""scopes": ["orders.read""#,
        ),
        (
            Method::POST,
            "/admin/v1/invitations".into(),
            json!({"email": "a@example.com", "org_id": org, "role": "owner"}),
            r#"`role` must be one of "admin", "developer", "subscriber", not "owner"."#,
            r#""role": "developer""#,
        ),
        (
            Method::POST,
            format!("/admin/v1/apps/{client_id}/feeds"),
            json!({"name": "Orders", "kind": "multicast"}),
            "`kind` must be one of",
            r#""kind": "broadcast""#,
        ),
    ];
    for (method, path, body, start, example) in cases {
        let d = refused(&app, method, &path, body).await;
        assert!(d.starts_with(start), "{path}: {d}");
        assert!(
            d.contains(&format!("For example: {example}")),
            "{path}: {d}"
        );
    }

    // A misspelt member names itself and the members there are.
    let d = refused(
        &app,
        Method::POST,
        &format!("/admin/v1/orgs/{org}/resources"),
        json!({"name": "Orders API", "scope": ["a"]}),
    )
    .await;
    assert!(
        d.starts_with("`scope` is not a field in this body: the fields are "),
        "{d}"
    );
    assert!(d.contains("scopes") && d.contains("cors_origins"), "{d}");

    // Not JSON at all, and JSON with trailing garbage: said as such.
    for raw in ["{\"name\": ", "{\"name\": \"A\"} x"] {
        let r = app
            .http
            .post(app.url("/admin/v1/orgs"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
        assert!(
            p["detail"]
                .as_str()
                .unwrap()
                .starts_with("The body is not valid JSON"),
            "{p}"
        );
    }
    // The content type still matters, and `+json` types are JSON.
    let r = app
        .http
        .post(app.url("/admin/v1/orgs"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body(r#"{"name": "A"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let r = app
        .http
        .post(app.url("/admin/v1/orgs"))
        .bearer_auth(ADMIN_TOKEN)
        .header(
            "content-type",
            "application/merge-patch+json; charset=utf-8",
        )
        .body(r#"{"name": "A"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_root_says_where_the_console_is() {
    let app = TestApp::spawn().await;
    // A browser goes to the console.
    let r = no_redirects()
        .get(app.url("/"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/");
    // A program is told where things are.
    let r = app.http.get(app.url("/")).send().await.unwrap();
    let p = assert_problem(r, StatusCode::NOT_FOUND).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("/console/"), "{detail}");
    assert!(detail.contains("/admin/v1/openapi.json"), "{detail}");
}
