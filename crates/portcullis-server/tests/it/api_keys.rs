//! API key bundles against the real server: the downloadable
//! `{appClientId, appClientSecret, encodedKey}` and `POST /v1/token`, field for field, and
//! every error status.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `POST /admin/v1/apps/{client_id}/api-keys`: the response's headers and body.
async fn create_api_key(app: &TestApp, client_id: &str) -> (reqwest::header::HeaderMap, Value) {
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/apps/{client_id}/api-keys"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let h = r.headers().clone();
    (h, r.json().await.unwrap())
}

/// `POST /v1/token` with `{"apiKey": key}`.
async fn redeem(app: &TestApp, key: &str) -> reqwest::Response {
    app.http
        .post(app.url("/v1/token"))
        .json(&json!({ "apiKey": key }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_key_is_a_downloadable_secret_redeemed_for_a_300_second_token() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let (h, bundle) = create_api_key(&app, &w.client_id).await;
    assert_eq!(h["cache-control"], "no-store");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.ends_with(".json\""),
        "{disposition}"
    );
    let members: Vec<&String> = bundle.as_object().unwrap().keys().collect();
    assert_eq!(
        members,
        ["appClientId", "appClientSecret", "encodedKey"],
        "{bundle}"
    );
    assert_eq!(bundle["appClientId"], w.client_id.as_str());
    let secret = bundle["appClientSecret"].as_str().unwrap();
    let decoded = STANDARD
        .decode(bundle["encodedKey"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        format!("{}:{secret}", w.client_id)
    );

    // The bundle's secret is one of the app's client secrets.
    let location = h["location"].to_str().unwrap().to_owned();
    let (s, record) = app.call(Method::GET, &location, None).await;
    assert_eq!(s, StatusCode::OK, "{record}");
    assert!(secret.starts_with(record["prefix"].as_str().unwrap()));
    assert_eq!(
        app.token(&w.client_id, secret, None).await.status(),
        StatusCode::OK,
        "the pair works as a client id and secret too"
    );

    // The API-key redeem flow's request and response.
    let r = redeem(&app, bundle["encodedKey"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    let members: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(members, ["expirationTime", "token"], "{v}");
    assert_eq!(v["expirationTime"], 300);
    let token = v["token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["client_id"], w.client_id.as_str());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert_eq!(header(token)["typ"], "at+jwt");

    // An ordinary access token at the gateway.
    let auth = format!("Bearer {token}");
    let r = app
        .gateway_check(
            Method::GET,
            &w.resource,
            &[
                ("authorization", &auth),
                ("x-api-key", &w.client_id),
                ("x-gw-ims-org-id", &w.org),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-scope"], "read write");

    // The app's own lifetime wins over the 300 s default.
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{}", w.client_id),
            Some(json!({"token_ttl_seconds": 120})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = redeem(&app, bundle["encodedKey"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["expirationTime"], 120);

    // Deleting the bundle's secret ends the API key.
    let (s, _) = app.call(Method::DELETE, &location, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_oauth_error(
        redeem(&app, bundle["encodedKey"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn ill_formed_keys_are_400_and_wrong_keys_or_disabled_orgs_401() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let (_, bundle) = create_api_key(&app, &w.client_id).await;
    let good = bundle["encodedKey"].as_str().unwrap().to_owned();
    let enc = |s: &str| STANDARD.encode(s);
    let (_, other_secret) = {
        let other = app.create_app(&w.org, &["read"]).await;
        app.create_secret(other["client_id"].as_str().unwrap())
            .await
    };

    for (what, key) in [
        ("not base64", "!!! not base64 !!!".to_owned()),
        ("no colon", enc(&w.client_id)),
        (
            "a secret of the wrong format",
            enc(&format!("{}:hunter2", w.client_id)),
        ),
        (
            "a secret failing its checksum",
            enc(&format!("{}:{}", w.client_id, mistyped(&w.secret))),
        ),
        (
            "a client id that is not one",
            enc(&format!("nobody:{}", w.secret)),
        ),
        ("empty", String::new()),
    ] {
        let v = assert_oauth_error(
            redeem(&app, &key).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            v["error_description"].as_str().unwrap().contains("apiKey"),
            "{what}: {v}"
        );
    }
    for (what, key) in [
        (
            "another app's secret",
            enc(&format!("{}:{other_secret}", w.client_id)),
        ),
        (
            "an unknown client id",
            enc(&format!("0123456789abcdef0123456789abcdef:{}", w.secret)),
        ),
    ] {
        let r = redeem(&app, &key).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // Bodies that are not {"apiKey": "..."}.
    for body in [r#"{"apikey": "x"}"#, r#"{"apiKey": 1}"#, "[]", "{", ""] {
        let r = app
            .http
            .post(app.url("/v1/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }

    // A disabled organization: 401, and back once it is active again.
    assert_eq!(redeem(&app, &good).await.status(), StatusCode::OK);
    let org_path = format!("/admin/v1/orgs/{}", w.org);
    let (s, _) = app
        .call(
            Method::PATCH,
            &org_path,
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let v = assert_oauth_error(
        redeem(&app, &good).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{v}"
    );
    let (s, _) = app
        .call(Method::PATCH, &org_path, Some(json!({"status": "active"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(redeem(&app, &good).await.status(), StatusCode::OK);
}

/// `secret` with its last character changed (never to itself: a secret ending in the
/// replacement would otherwise stay valid, one run in 58).
fn mistyped(secret: &str) -> String {
    let (head, last) = secret.split_at(secret.len() - 1);
    format!("{head}{}", if last == "x" { 'y' } else { 'x' })
}
