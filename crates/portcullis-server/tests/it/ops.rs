//! Operations endpoints: health, readiness, metrics, and clean shutdown.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["store"], app.backend());
    assert_eq!(v["view"]["apps"], 0);
    app.client(&["read"]).await;
    let v: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["view"]["apps"], 1, "the view counts the new app");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_outcome() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    for _ in 0..3 {
        app.access_token(&cid, &secret, None).await;
    }
    let bad = app.token(&cid, "pcss_nope", None).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let text = app.metrics_text().await;
    let line = |needle: &str| metric_value(&text, needle);
    assert_eq!(
        line(r#"portcullis_http_requests_total{route="/oauth/token",method="POST",outcome="2xx"}"#),
        3.0
    );
    assert_eq!(
        line(r#"portcullis_http_requests_total{route="/oauth/token",method="POST",outcome="4xx"}"#),
        1.0
    );
    assert_eq!(
        line(r#"portcullis_token_grants_total{grant="client_credentials",outcome="issued"}"#),
        3.0
    );
    assert!(text.contains("portcullis_http_request_duration_seconds_bucket{"));
    assert_eq!(line("portcullis_view_apps "), 1.0);
}

/// The gateway check has a lane of its own in the router (fewer layers): it is still
/// counted, once, by its route pattern, and still answers in the gateway's problem+json format.
#[tokio::test]
async fn the_gateway_lane_is_counted_like_every_route() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    for path in [
        format!("/gateway/v1/check?resource={}", w.resource),
        format!("/gateway/v1/check/{}/orders", w.resource),
    ] {
        let r = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // A query the handler's extractor cannot read: still a problem, not axum's text.
    let r = app
        .http
        .get(app.url("/gateway/v1/check?resource=%FF"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let text = app.metrics_text().await;
    let line = |needle: &str| metric_value(&text, needle);
    assert_eq!(
        line(
            r#"portcullis_http_requests_total{route="/gateway/v1/check",method="GET",outcome="4xx"}"#
        ),
        2.0
    );
    assert_eq!(
        line(
            r#"portcullis_http_requests_total{route="/gateway/v1/check/{*rest}",method="GET",outcome="4xx"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn stop_drains_and_returns_cleanly() {
    let app = TestApp::spawn().await;
    app.assert_ready().await;
    let base = app.base.clone();
    // `stop` panics unless the server task ends with Ok.
    app.stop().await;
    let after = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed after stop");
}
