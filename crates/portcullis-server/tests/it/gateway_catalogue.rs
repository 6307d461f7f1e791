//! The gateway's whole error catalogue against the real server: every code with its
//! status, body and headers; the check order on requests that fail several checks; the
//! `userKey` + `secret` presentation; failure limits and quotas; and changes that must
//! take effect on the very next check.

use crate::common;

use common::*;
use portcullis_core::clock::Clock;
use portcullis_server::config::GatewayConfig;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// The real server with a manual clock and `gateway` settings, plus a [`GatewayWorld`].
async fn setup(gateway: GatewayConfig) -> (TestApp, GatewayWorld) {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        gateway,
        ..Default::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    (app, w)
}

fn check(app: &TestApp, resource: &str, method: Method) -> RequestBuilder {
    app.http.request(
        method,
        app.url(&format!("/gateway/v1/check?resource={resource}")),
    )
}

/// A check with the token and the two headers that go with it.
fn with_token(app: &TestApp, w: &GatewayWorld, token: &str, method: Method) -> RequestBuilder {
    check(app, &w.resource, method)
        .bearer_auth(token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
}

async fn patch(app: &TestApp, path: &str, body: Value) {
    let (status, v) = app.call(Method::PATCH, path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "PATCH {path}: {v}");
}

/// Everything a denial promises: status, problem body with the catalogue's
/// members, the same body in `x-portcullis-problem`, code and detail headers,
/// `WWW-Authenticate` on 401 and `Retry-After` on 429. Returns the body.
async fn denied(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status for {code}");
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(h["x-portcullis-code"], code);
    assert_eq!(
        h.contains_key("www-authenticate"),
        status == 401,
        "WWW-Authenticate only with 401"
    );
    assert_eq!(h.contains_key("retry-after"), status == 429);
    let text = r.text().await.unwrap();
    assert_eq!(
        h["x-portcullis-problem"].to_str().unwrap(),
        text,
        "the problem header is the body"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["code"].is_string());
    assert_eq!(body["status"], status);
    assert!(!body["title"].as_str().unwrap().is_empty());
    let slug = body["type"].as_str().unwrap();
    assert!(slug.starts_with("urn:portcullis:error:"), "{slug}");
    let detail = body["detail"].as_str().unwrap();
    assert!(!detail.is_empty());
    assert!(!h["x-portcullis-detail"].to_str().unwrap().is_empty());
    body
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap()
}

#[tokio::test]
async fn every_code_of_the_catalogue_with_its_status_body_and_headers() {
    let (app, w) = setup(GatewayConfig::default()).await;
    let clock = app.clock.clone().unwrap();
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    let ok = with_token(&app, &w, &token, Method::GET)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // EXEG-0500-401: no credentials; not Bearer; not a JWT; x-api-key missing.
    denied(
        check(&app, &w.resource, Method::GET).send().await.unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    let b = denied(
        check(&app, &w.resource, Method::GET)
            .header("authorization", format!("Bearar {token}"))
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    assert!(detail(&b).contains("'Bearer'"), "{b}");
    denied(
        with_token(&app, &w, "not-a-jwt", Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    let b = denied(
        check(&app, &w.resource, Method::GET)
            .bearer_auth(&token)
            .header("x-gw-ims-org-id", &w.org)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    assert!(detail(&b).contains("x-api-key"), "{b}");

    // EXEG-0502-401: a bad signature.
    let mut forged = token.clone().into_bytes();
    let n = forged.len() - 3;
    forged[n] = if forged[n] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    denied(
        with_token(&app, &w, &forged, Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0502-401",
    )
    .await;

    // 403003, with Adobe I/O's own members and the client the token belongs to.
    let other = app.create_app(&w.org, &["read"]).await;
    let b = denied(
        check(&app, &w.resource, Method::GET)
            .bearer_auth(&token)
            .header("x-api-key", other["client_id"].as_str().unwrap())
            .header("x-gw-ims-org-id", &w.org)
            .send()
            .await
            .unwrap(),
        403,
        "403003",
    )
    .await;
    assert_eq!(b["error_code"], "403003");
    assert_eq!(b["message"], "Api Key is invalid");
    assert!(detail(&b).contains(&w.client_id), "{b}");

    // PCS-0403-403: the org header names another org.
    denied(
        check(&app, &w.resource, Method::GET)
            .bearer_auth(&token)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", "000000000000000000000000@Org")
            .send()
            .await
            .unwrap(),
        403,
        "PCS-0403-403",
    )
    .await;

    // EXEG-0505-401: a token narrowed to `write` lacks `read`.
    let narrow = app
        .access_token(&w.client_id, &w.secret, Some("write"))
        .await;
    let b = denied(
        with_token(&app, &w, &narrow, Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0505-401",
    )
    .await;
    assert!(detail(&b).contains("'read'"), "{b}");

    // EXEG-0506-401: a write with read access.
    denied(
        with_token(&app, &w, &token, Method::DELETE)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0506-401",
    )
    .await;

    // PCS-0407-403: a resource in a sandbox the app has no access to.
    patch(
        &app,
        &format!("/admin/v1/orgs/{}", w.org),
        json!({"sandboxes": ["prod", "dev"]}),
    )
    .await;
    let dev = app
        .create_resource_id(
            &w.org,
            json!({"name": "dev stream", "sandbox": "dev", "scopes": ["read"]}),
        )
        .await;
    let b = denied(
        check(&app, &dev, Method::GET)
            .bearer_auth(&token)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
            .await
            .unwrap(),
        403,
        "PCS-0407-403",
    )
    .await;
    assert!(detail(&b).contains("'dev'"), "{b}");

    // EXEG-0504-401: the app is taken out of the product.
    patch(
        &app,
        &format!("/admin/v1/apps/{}", w.client_id),
        json!({"products": []}),
    )
    .await;
    let b = denied(
        with_token(&app, &w, &token, Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0504-401",
    )
    .await;
    assert!(detail(&b).contains("'events'"), "{b}");
    patch(
        &app,
        &format!("/admin/v1/apps/{}", w.client_id),
        json!({"products": ["events"], "quota": {"requests": 1, "per": "minute"}}),
    )
    .await;

    // PCS-0429-429: the app's quota (one request a minute).
    let minute_start = {
        let now = clock.now();
        now - now.rem_euclid(60)
    };
    clock.set(minute_start + 10);
    let t = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(
        with_token(&app, &w, &t, Method::GET)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = with_token(&app, &w, &t, Method::GET).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "50");
    let b = denied(r, 429, "PCS-0429-429").await;
    assert!(detail(&b).contains("quota"), "{b}");
    clock.advance(50);
    assert_eq!(
        with_token(&app, &w, &t, Method::GET)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the next minute has room again"
    );

    // EXEG-0503-401: past the token's exp (no leeway for our own tokens).
    let exp = claims(&t)["exp"].as_i64().unwrap();
    clock.set(exp);
    let b = denied(
        with_token(&app, &w, &t, Method::GET).send().await.unwrap(),
        401,
        "EXEG-0503-401",
    )
    .await;
    assert!(detail(&b).contains("0 s ago"), "{b}");

    // PCS-0401-401: the org is disabled (its earlier tokens stay dead for good).
    let fresh = app.access_token(&w.client_id, &w.secret, None).await;
    patch(
        &app,
        &format!("/admin/v1/orgs/{}", w.org),
        json!({"status": "disabled"}),
    )
    .await;
    denied(
        with_token(&app, &w, &fresh, Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "PCS-0401-401",
    )
    .await;
}

#[tokio::test]
async fn the_first_failing_check_answers() {
    let (app, w) = setup(GatewayConfig::default()).await;
    let clock = app.clock.clone().unwrap();
    let other = app.create_app(&w.org, &["read"]).await;
    let other = other["client_id"].as_str().unwrap().to_owned();
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    let send = |token: String, api_key: String, org: String, method: Method| {
        let r = check(&app, &w.resource, method)
            .bearer_auth(token)
            .header("x-api-key", api_key)
            .header("x-gw-ims-org-id", org);
        async move { r.send().await.unwrap() }
    };
    let wrong_org = "000000000000000000000000@Org".to_owned();

    // Well-formed before valid: a missing org header with a forged token.
    let r = check(&app, &w.resource, Method::GET)
        .bearer_auth("x.y.z")
        .header("x-api-key", &other)
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0500-401").await;
    // x-api-key before the org header.
    let r = send(token.clone(), other.clone(), wrong_org.clone(), Method::GET).await;
    denied(r, 403, "403003").await;
    // The org header before the org's state.
    patch(
        &app,
        &format!("/admin/v1/orgs/{}", w.org),
        json!({"status": "disabled"}),
    )
    .await;
    let r = send(
        token.clone(),
        w.client_id.clone(),
        wrong_org.clone(),
        Method::GET,
    )
    .await;
    denied(r, 403, "PCS-0403-403").await;
    let r = send(
        token.clone(),
        w.client_id.clone(),
        w.org.clone(),
        Method::GET,
    )
    .await;
    denied(r, 401, "PCS-0401-401").await;
    patch(
        &app,
        &format!("/admin/v1/orgs/{}", w.org),
        json!({"status": "active"}),
    )
    .await;
    // Tokens issued in the second the org was disabled stay dead: take a later one.
    clock.advance(1);

    // Product before scope before sandbox: a narrowed token for a write, app out of the
    // product.
    let narrow = app
        .access_token(&w.client_id, &w.secret, Some("write"))
        .await;
    patch(
        &app,
        &format!("/admin/v1/apps/{}", w.client_id),
        json!({"products": []}),
    )
    .await;
    let r = send(
        narrow.clone(),
        w.client_id.clone(),
        w.org.clone(),
        Method::PUT,
    )
    .await;
    denied(r, 401, "EXEG-0504-401").await;
    patch(
        &app,
        &format!("/admin/v1/apps/{}", w.client_id),
        json!({"products": ["events"]}),
    )
    .await;
    let r = send(
        narrow.clone(),
        w.client_id.clone(),
        w.org.clone(),
        Method::PUT,
    )
    .await;
    denied(r, 401, "EXEG-0505-401").await;

    // Expired (0503) comes before a wrong x-api-key (403003) and a wrong org.
    let exp = claims(&narrow)["exp"].as_i64().unwrap();
    clock.set(exp + 5);
    let r = send(narrow, other.clone(), wrong_org, Method::PUT).await;
    denied(r, 401, "EXEG-0503-401").await;
}

#[tokio::test]
async fn changes_take_effect_on_the_very_next_check() {
    let (app, w) = setup(GatewayConfig::default()).await;
    let ok = |t: &str| {
        let r = with_token(&app, &w, t, Method::GET);
        async move { r.send().await.unwrap() }
    };
    let app_path = format!("/admin/v1/apps/{}", w.client_id);

    // Deleting the secret a token was obtained with.
    let (secret_id, secret) = app.create_secret(&w.client_id).await;
    let t = app.access_token(&w.client_id, &secret, None).await;
    assert_eq!(ok(&t).await.status(), StatusCode::OK);
    let r = app
        .admin(
            Method::DELETE,
            &format!("{app_path}/secrets/{secret_id}"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let b = denied(ok(&t).await, 401, "EXEG-0502-401").await;
    assert!(detail(&b).contains("deleted"), "{b}");

    // Product removal, and back.
    let t = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(ok(&t).await.status(), StatusCode::OK);
    patch(&app, &app_path, json!({"products": []})).await;
    denied(ok(&t).await, 401, "EXEG-0504-401").await;
    patch(&app, &app_path, json!({"products": ["events"]})).await;
    assert_eq!(ok(&t).await.status(), StatusCode::OK);

    // A scope removed from the app.
    patch(&app, &app_path, json!({"scopes": ["write"]})).await;
    denied(ok(&t).await, 401, "EXEG-0505-401").await;
    patch(&app, &app_path, json!({"scopes": ["read", "write"]})).await;
    assert_eq!(ok(&t).await.status(), StatusCode::OK);

    // Suspension ends the token for good.
    patch(&app, &app_path, json!({"status": "suspended"})).await;
    denied(ok(&t).await, 401, "EXEG-0502-401").await;
    patch(&app, &app_path, json!({"status": "active"})).await;
    denied(ok(&t).await, 401, "EXEG-0502-401").await;

    // Disabling the org (with a token from after the suspension's second).
    app.clock.as_ref().unwrap().advance(1);
    let t = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(ok(&t).await.status(), StatusCode::OK);
    patch(
        &app,
        &format!("/admin/v1/orgs/{}", w.org),
        json!({"status": "disabled"}),
    )
    .await;
    denied(ok(&t).await, 401, "PCS-0401-401").await;

    // Deleting the app.
    let (status, _) = app.call(Method::DELETE, &app_path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    denied(ok(&t).await, 401, "EXEG-0502-401").await;
}

fn over_https_proxy() -> GatewayConfig {
    GatewayConfig {
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        ..Default::default()
    }
}

#[tokio::test]
async fn key_and_secret_work_over_tls_only_from_headers_or_the_original_query() {
    let (app, w) = setup(over_https_proxy()).await;
    let by_headers = || {
        check(&app, &w.resource, Method::GET)
            .header("x-user-key", &w.client_id)
            .header("x-user-secret", &w.secret)
    };
    // Plain HTTP: refused with a detail that says why.
    let b = denied(by_headers().send().await.unwrap(), 401, "EXEG-0500-401").await;
    assert!(detail(&b).contains("TLS"), "{b}");
    assert!(
        !b.to_string().contains(&w.secret),
        "the secret never echoes"
    );
    // Through the trusted proxy that terminated TLS.
    let r = by_headers()
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-client-id"], w.client_id.as_str());
    assert_eq!(r.headers()["x-portcullis-org"], w.org.as_str());
    assert_eq!(r.headers()["x-portcullis-scope"], "read write");
    // Gigya's way: the original URI's query (names in any case).
    let uri = format!(
        "/api/things?userKey={}&SECRET={}",
        w.client_id,
        w.secret.replace('_', "%5F")
    );
    let r = check(&app, &w.resource, Method::GET)
        .header("x-original-uri", uri)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The optional headers must match.
    let r = by_headers()
        .header("x-forwarded-proto", "https")
        .header("x-gw-ims-org-id", "000000000000000000000000@Org")
        .send()
        .await
        .unwrap();
    denied(r, 403, "PCS-0403-403").await;
    // A wrong secret (well-formed) and a mistyped one.
    let (_, other_secret) = {
        let other = app.create_app(&w.org, &["read"]).await;
        app.create_secret(other["client_id"].as_str().unwrap())
            .await
    };
    let r = check(&app, &w.resource, Method::GET)
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &other_secret)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0502-401").await;
    let r = check(&app, &w.resource, Method::GET)
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", format!("{}x", w.secret))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0500-401").await;
    // Writes need write access here too.
    let r = by_headers()
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-method", "POST")
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0506-401").await;
}

#[tokio::test]
async fn secrets_over_http_when_the_operator_allows_it() {
    let (app, w) = setup(GatewayConfig {
        allow_secrets_over_http: true,
        ..Default::default()
    })
    .await;
    let r = check(&app, &w.resource, Method::GET)
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &w.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // An untrusted peer's X-Forwarded-Proto is no proof of TLS.
    let (app, w) = setup(GatewayConfig::default()).await;
    let r = check(&app, &w.resource, Method::GET)
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &w.secret)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0500-401").await;
}

#[tokio::test]
async fn failure_limits_block_an_address_and_a_pair_but_never_the_app_everywhere() {
    let (app, w) = setup(GatewayConfig {
        failure_limit: 3,
        ..over_https_proxy()
    })
    .await;
    let clock = app.clock.clone().unwrap();
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    let from = |addr: &str, token: &str| {
        with_token(&app, &w, token, Method::GET).header("x-forwarded-for", addr)
    };
    let attacker = "203.0.113.9";
    for _ in 0..3 {
        let r = from(attacker, "forged.token.here").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even a valid request from that address is refused first.
    let r = from(attacker, &token).send().await.unwrap();
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let b = denied(r, 429, "PCS-0429-429").await;
    assert!(detail(&b).contains("retry in"), "{b}");
    // The partner itself, from its own address, is not locked out.
    let r = from("198.51.100.20", &token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Without a trusted proxy's X-Forwarded-For, the peer (127.0.0.1) is the address.
    let r = with_token(&app, &w, &token, Method::GET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The window passes.
    clock.advance(60);
    let r = from(attacker, &token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Expiry is not a failure: a client using its token to the end is not limited.
    let exp = claims(&token)["exp"].as_i64().unwrap();
    clock.set(exp);
    for _ in 0..5 {
        let r = from("192.0.2.44", &token).send().await.unwrap();
        denied(r, 401, "EXEG-0503-401").await;
    }
}

#[tokio::test]
async fn metrics_count_decisions_by_code_and_cache_hits() {
    let (app, w) = setup(GatewayConfig::default()).await;
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    for _ in 0..3 {
        let r = with_token(&app, &w, &token, Method::GET)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = check(&app, &w.resource, Method::GET).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(r#"portcullis_gateway_decisions_total{outcome="allow",code="none"}"#),
        3.0
    );
    assert_eq!(
        value(r#"portcullis_gateway_decisions_total{outcome="deny",code="EXEG-0500-401"}"#),
        1.0
    );
    assert_eq!(
        value(r#"portcullis_gateway_token_cache_total{result="miss"}"#),
        1.0
    );
    assert_eq!(
        value(r#"portcullis_gateway_token_cache_total{result="hit"}"#),
        2.0
    );
    assert_eq!(
        value("portcullis_gateway_decision_duration_seconds_count"),
        4.0
    );
}

#[tokio::test]
async fn header_names_are_configurable() {
    let (app, w) = setup(GatewayConfig {
        api_key_header: "x-client-id".parse().unwrap(),
        org_header: "x-org".parse().unwrap(),
        ..Default::default()
    })
    .await;
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    let r = check(&app, &w.resource, Method::GET)
        .bearer_auth(&token)
        .header("x-client-id", &w.client_id)
        .header("x-org", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The default names are not read, and the detail names the configured header.
    let b = denied(
        with_token(&app, &w, &token, Method::GET)
            .send()
            .await
            .unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    assert!(detail(&b).contains("x-client-id"), "{b}");
}

#[tokio::test]
async fn quotas_are_validated_shown_and_lifted() {
    let (app, w) = setup(GatewayConfig::default()).await;
    let path = format!("/admin/v1/apps/{}", w.client_id);
    for bad in [
        json!({"quota": {"requests": 0, "per": "minute"}}),
        json!({"quota": {"requests": 5, "per": "hour"}}),
        json!({"quota": {"requests": -1, "per": "second"}}),
        json!({"quota": {"per": "second"}}),
        json!({"quota": 5}),
    ] {
        let r = app.admin(Method::PATCH, &path, Some(bad.clone())).await;
        let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
        assert!(
            p["detail"].as_str().unwrap().contains("quota"),
            "{bad}: {p}"
        );
    }
    let (_, v) = app.call(Method::GET, &path, None).await;
    assert_eq!(v["quota"], Value::Null, "a refused change writes nothing");
    patch(
        &app,
        &path,
        json!({"quota": {"requests": 10, "per": "second"}}),
    )
    .await;
    let (_, v) = app.call(Method::GET, &path, None).await;
    assert_eq!(v["quota"], json!({"requests": 10, "per": "second"}));
    patch(&app, &path, json!({"quota": null})).await;
    let (_, v) = app.call(Method::GET, &path, None).await;
    assert_eq!(v["quota"], Value::Null);
}

#[tokio::test]
async fn credentials_that_are_not_text_are_refused_even_where_none_are_needed() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(true).await;
    let open = check(&app, &w.resource, Method::GET).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK, "no credentials pass here");
    for name in ["authorization", "x-api-key", "x-user-secret"] {
        let bytes = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
        let r = check(&app, &w.resource, Method::GET)
            .header(name, bytes)
            .send()
            .await
            .unwrap();
        let b = denied(r, 401, "EXEG-0500-401").await;
        assert!(detail(&b).contains(name), "{b}");
    }
}

#[tokio::test]
async fn envoys_path_form_carries_the_clients_query() {
    let (app, w) = setup(GatewayConfig {
        allow_secrets_over_http: true,
        ..Default::default()
    })
    .await;
    let url = |q: &str| app.url(&format!("/gateway/v1/check/{}/v1/things?{q}", w.resource));
    let q = format!("userkey={}&secret={}", w.client_id, w.secret);
    let r = app.http.get(url(&q)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-client-id"], w.client_id.as_str());
    let r = app
        .http
        .get(url("userkey=nobody&secret=x"))
        .send()
        .await
        .unwrap();
    denied(r, 401, "EXEG-0500-401").await;
}

/// `docs/reference.md` has a row for every code of the catalogue with its status and
/// title, the DPoP codes with their slug and what to do as well, and the token endpoint's
/// DPoP errors with what to do: a new code or a changed text fails here until the
/// reference says it too.
#[test]
fn the_reference_has_a_row_for_every_code() {
    use portcullis_core::gateway::Code;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let row_of = |start: &str| text.lines().find(|l| l.starts_with(start));
    for code in Code::ALL {
        let start = format!(
            "| `{}` | {} | {} |",
            code.code(),
            code.status(),
            code.title()
        );
        let row = row_of(&start)
            .unwrap_or_else(|| panic!("docs/reference.md has no row starting {start}"));
        if code.is_dpop() {
            let rest = format!(" `{}` | {} |", code.slug(), code.fix());
            assert_eq!(&row[start.len()..], rest, "the row of {}", code.code());
        }
    }
    for error in ["invalid_dpop_proof", "use_dpop_nonce"] {
        let start = format!("| `{error}` |");
        let row = row_of(&start)
            .unwrap_or_else(|| panic!("docs/reference.md has no row starting {start}"));
        let fix = portcullis_core::oauth_error::fix(error).unwrap();
        assert!(
            row.ends_with(&format!("| {fix} |")),
            "the row of {error}: {row}"
        );
    }
}
