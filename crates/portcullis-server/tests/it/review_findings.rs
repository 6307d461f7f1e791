//! Holes found by reviewing the trust rules as an attacker with the source: each test is
//! the attack, and what the server must answer instead.

use crate::apitoken;
use crate::common;

use common::*;
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

async fn patch(app: &TestApp, path: &str, body: Value) {
    let (status, v) = app.call(Method::PATCH, path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "PATCH {path}: {v}");
}

/// A token minted in the second of a reactivation is dated one second later so that it
/// lives; a second suspension in that same second must still end it. Otherwise the
/// suspension (or the org's disabling) leaves it alive, and it works again as soon as the
/// app (or org) is reactivated.
#[tokio::test]
async fn a_suspension_in_the_same_second_ends_a_token_minted_after_a_reactivation() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let app_path = format!("/admin/v1/apps/{}", w.client_id);
    let org_path = format!("/admin/v1/orgs/{}", w.org);
    let clock = app.clock.clone().unwrap();

    // In one second: the app is suspended and reactivated, a token minted, then the app
    // suspended again (or the org disabled). Both end every token issued so far.
    for (killer, off, on) in [
        (&app_path, "suspended", "active"),
        (&org_path, "disabled", "active"),
    ] {
        clock.advance(5);
        patch(&app, &app_path, json!({"status": "suspended"})).await;
        patch(&app, &app_path, json!({"status": "active"})).await;
        let minted = app.access_token(&w.client_id, &w.secret, None).await;
        patch(&app, killer, json!({ "status": off })).await;
        clock.advance(5);
        patch(&app, killer, json!({ "status": on })).await;
        let r = app.bearer_check(&w, &minted).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "a token issued before {killer} was switched off came back to life: {}",
            r.text().await.unwrap()
        );
        let fresh = app.access_token(&w.client_id, &w.secret, None).await;
        assert_eq!(app.bearer_check(&w, &fresh).await.status(), StatusCode::OK);
    }
}

/// Count the answers with each status of `n` sign-ins sent at once.
async fn concurrent_sign_ins(app: &TestApp, n: u32, email: impl Fn(u32) -> String) -> (u32, u32) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let http = app.http.clone();
            let url = app.url("/admin/v1/sessions");
            let body = json!({"email": email(i), "password": "wrong password"});
            tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let (mut wrong, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    (wrong, limited)
}

/// The per-address limit counts a guess before the password is checked: guesses sent at
/// once all passed the "blocked?" test before the first failure was recorded, so one
/// burst of concurrent requests got every guess checked.
#[tokio::test]
async fn concurrent_guesses_from_one_address_are_limited_too() {
    let app = TestApp::spawn().await;
    let limit = portcullis_server::PASSWORD_FAILURES_PER_ADDRESS;
    let (wrong, limited) =
        concurrent_sign_ins(&app, limit * 3, |i| format!("g{i}@example.com")).await;
    assert!(
        wrong <= limit,
        "{wrong} guesses were checked from one address (limit {limit}); {limited} refused"
    );
}

/// The same for one account's lockout: a burst at one account checks every guess.
#[tokio::test]
async fn concurrent_guesses_at_one_account_are_limited_too() {
    let app = TestApp::spawn().await;
    app.create_user("victim@example.com", PASSWORD, json!({}))
        .await;
    let limit = portcullis_server::LOGIN_LOCKOUT_LIMIT;
    // Fewer than the per-address limit, so only the account's lockout applies.
    let n = (limit * 2).min(portcullis_server::PASSWORD_FAILURES_PER_ADDRESS - 1);
    let (wrong, limited) = concurrent_sign_ins(&app, n, |_| "victim@example.com".into()).await;
    assert!(
        wrong <= limit,
        "{wrong} guesses at one account were checked (lockout after {limit}); {limited} refused"
    );
    // The right password still works for the owner once the window has passed is the
    // lockout's own test; here the owner is locked out, as for sequential guesses.
    assert_eq!(
        app.sign_in("victim@example.com", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Introspection tells a resource server what a token may do. After a scope is taken
/// from the app, the gateway stops honouring it at once (it intersects with the live
/// scopes); introspection went on reporting the token's old scope as active.
#[tokio::test]
async fn introspection_reports_the_live_scopes() {
    let app = TestApp::spawn().await;
    let (cid, secret, _org) = app.client(&["read", "write", "introspect"]).await;
    let token = app.access_token(&cid, &secret, Some("read write")).await;
    // The app's scopes set to `scopes`, what introspection says of the token.
    let after = |scopes: Value| {
        let (app, cid, secret, token) = (&app, &cid, &secret, &token);
        async move {
            patch(
                app,
                &format!("/admin/v1/apps/{cid}"),
                json!({ "scopes": scopes }),
            )
            .await;
            let r = app.introspect(cid, secret, token).await;
            r.json::<Value>().await.unwrap()
        }
    };
    let v = after(json!(["read", "write", "introspect"])).await;
    assert_eq!(
        (&v["active"], &v["scope"]),
        (&json!(true), &json!("read write")),
        "{v}"
    );
    let v = after(json!(["read", "introspect"])).await;
    assert_eq!(
        (&v["active"], &v["scope"]),
        (&json!(true), &json!("read")),
        "the 'write' scope was taken from the app: {v}"
    );
    // With none of its scopes left, the token is good for nothing.
    let v = after(json!(["introspect"])).await;
    assert_eq!(v["active"], false, "{v}");
}

fn es256(kid: &str, key_pem: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(key_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn jti() -> String {
    hex::encode(portcullis_core::random_bytes::<12>())
}

/// An app-signed bearer JWT (or a client assertion) whose times are at the ends of the
/// integer range: answered (an invalid token, or — for a far `exp` on a fresh JWT, whose
/// freshness the gateway judges by `iat` — allowed), never an arithmetic overflow (a
/// panic in debug builds: a dropped connection for the caller).
#[tokio::test]
async fn jwts_with_extreme_times_are_answered_not_crashed() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let kp = app.create_keypair(&w.client_id, Some("ES256")).await;
    let kid = kp["kid"].as_str().unwrap();
    let key = kp["private_key_pem"].as_str().unwrap();
    let now = app.now();
    let cid = w.client_id.as_str();
    let gateway = |jwt: String| {
        let app = &app;
        let resource = w.resource.clone();
        async move {
            app.gateway_check(
                Method::GET,
                &resource,
                &[("authorization", &format!("Bearer {jwt}"))],
            )
            .await
        }
    };
    let far = es256(
        kid,
        key,
        &json!({"iss": cid, "sub": cid, "iat": now, "exp": i64::MAX, "jti": jti()}),
    );
    assert_eq!(gateway(far).await.status(), StatusCode::OK);
    for claims in [
        json!({"iss": cid, "sub": cid, "iat": now, "exp": i64::MIN, "jti": jti()}),
        json!({"iss": cid, "sub": cid, "iat": i64::MIN, "exp": now + 60, "jti": jti()}),
        json!({"iss": cid, "sub": cid, "iat": now, "nbf": i64::MAX, "jti": jti()}),
        json!({"iss": cid, "sub": cid, "iat": -1e300, "jti": jti()}),
    ] {
        let r = gateway(es256(kid, key, &claims)).await;
        assert_gateway_denial(r, 401, "EXEG-0502-401").await;
    }
    // The token endpoint's client assertion, expired since the beginning of time.
    let token_endpoint = format!("{}/oauth/token", app.issuer);
    let assertion = es256(
        kid,
        key,
        &json!({"iss": cid, "sub": cid, "aud": token_endpoint, "exp": i64::MIN, "jti": jti()}),
    );
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    let e = oauth_description(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(e.contains("expired"), "{e}");
}

/// A Wave publisher: an app with a secret and a broadcast feed with one topic.
struct Publisher {
    client_id: String,
    secret: String,
    org: String,
    feed: String,
    topic: String,
}

/// A server that takes Wave's secrets over plain HTTP (loopback), and a [`Publisher`].
async fn wave_publisher() -> (TestApp, Publisher) {
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            allow_secrets_over_http: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (client_id, secret, org) = app.client(&[]).await;
    let feed = app
        .create_feed(&client_id, json!({"name": "News", "kind": "broadcast"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let topic = app.create_topic(&client_id, &feed, "status").await;
    let p = Publisher {
        client_id,
        secret,
        org,
        feed,
        topic,
    };
    (app, p)
}

/// Publish `message` to `topic` with the API token `api`; the status.
async fn publish(app: &TestApp, api: &str, topic: &str, message: &str) -> StatusCode {
    app.http
        .post(app.url("/notificationgateway/1.0/notification"))
        .form(&[("X-apitoken", api), ("topic", topic), ("message", message)])
        .send()
        .await
        .unwrap()
        .status()
}

/// Read a server-sent event stream until `stop` says enough, it ends, or 10 s pass; the
/// text, and whether it ended.
async fn read_stream(r: &mut reqwest::Response, stop: impl Fn(&str) -> bool) -> (String, bool) {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(_) => return (text, true),
            Err(_) => return (text, false),
        }
        if stop(&text) {
            return (text, false);
        }
    }
}

/// A Wave subscriber's notification stream is authorized once, when it opens. It must
/// not outlive the sign-in it was opened with: after the session is ended (or the
/// password reset by an administrator, which ends every session), the stream went on
/// delivering the account's notifications to whoever held it open.
#[tokio::test]
async fn a_notification_stream_ends_with_the_sign_in_it_was_opened_with() {
    let (app, p) = wave_publisher().await;
    let api = apitoken::api_token(&app, &p.client_id, &p.secret).await;
    let notify = |message: &'static str| {
        let (app, api, topic) = (&app, api.clone(), p.topic.clone());
        async move {
            assert_eq!(
                publish(app, &api, &topic, message).await,
                StatusCode::NO_CONTENT
            );
        }
    };
    let user = app
        .create_user("alice@example.com", PASSWORD, json!({}))
        .await;
    app.subscribe("alice@example.com", PASSWORD, &p.feed).await;
    let stream = app.url("/notificationgateway/1.0/stream");

    // A session's stream, then the session is ended.
    let session = app.session("alice@example.com", PASSWORD).await;
    let mut r = app
        .http
        .get(&stream)
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    notify("first").await;
    let (text, _) = read_stream(&mut r, |t| t.contains("first")).await;
    assert!(text.contains("first"), "the stream works: {text}");
    let (status, v) = app
        .call_as(&session, Method::DELETE, "/admin/v1/sessions/current", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    notify("after sign-out").await;
    let (text, ended) = read_stream(&mut r, |t| t.contains("after sign-out")).await;
    assert!(
        !text.contains("after sign-out") && ended,
        "the stream of an ended session went on: {text}"
    );

    // A Basic stream, then an administrator resets the password.
    let mut r = app
        .http
        .get(&stream)
        .basic_auth("alice@example.com", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    notify("second").await;
    let (text, _) = read_stream(&mut r, |t| t.contains("second")).await;
    assert!(text.contains("second"), "the stream works: {text}");
    let id = user["id"].as_str().unwrap();
    let (status, v) = app
        .call(
            Method::POST,
            &format!("/admin/v1/users/{id}/password-reset"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    notify("after reset").await;
    let (text, ended) = read_stream(&mut r, |t| t.contains("after reset")).await;
    assert!(
        !text.contains("after reset") && ended,
        "the stream went on after a password reset: {text}"
    );
}

/// Suspending an app (or disabling its organization) ends every access token issued so
/// far, for good. A Wave publisher's API token (12 h) only stopped working while the app
/// was suspended: reactivated, the old API token published again.
#[tokio::test]
async fn a_suspension_ends_the_wave_api_tokens_issued_before_it() {
    let (app, p) = wave_publisher().await;
    let (cid, secret, org) = (&p.client_id, &p.secret, &p.org);
    for (path, off, on) in [
        (
            format!("/admin/v1/apps/{cid}"),
            json!({"status": "suspended"}),
            json!({"status": "active"}),
        ),
        (
            format!("/admin/v1/orgs/{org}"),
            json!({"status": "disabled"}),
            json!({"status": "active"}),
        ),
    ] {
        let old = apitoken::api_token(&app, cid, secret).await;
        assert_eq!(
            publish(&app, &old, &p.topic, "hello").await,
            StatusCode::NO_CONTENT
        );
        patch(&app, &path, off).await;
        patch(&app, &path, on).await;
        assert_eq!(
            publish(&app, &old, &p.topic, "hello").await,
            StatusCode::UNAUTHORIZED,
            "an API token issued before {path} was switched off works again"
        );
        // One issued after the reactivation (in the same second, too) works.
        let new = apitoken::api_token(&app, cid, secret).await;
        assert_eq!(
            publish(&app, &new, &p.topic, "hello").await,
            StatusCode::NO_CONTENT
        );
    }
}

/// Deleting a client secret ends the access tokens obtained with it at once (their
/// `cred`); a Wave publisher API token obtained with it went on publishing to every
/// subscriber for up to 12 h. The store now keeps the secret with the token, and
/// deleting a leaked secret ends what was obtained with it.
#[tokio::test]
async fn deleting_a_secret_ends_the_wave_api_tokens_obtained_with_it() {
    let (app, p) = wave_publisher().await;
    let (leaked_id, leaked) = app.create_secret(&p.client_id).await;
    let api = apitoken::api_token(&app, &p.client_id, &leaked).await;
    assert_eq!(
        publish(&app, &api, &p.topic, "hello").await,
        StatusCode::NO_CONTENT
    );
    let (status, v) = app
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{}/secrets/{leaked_id}", p.client_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        publish(&app, &api, &p.topic, "phishing").await,
        StatusCode::UNAUTHORIZED,
        "the API token of a deleted secret still publishes"
    );
}
