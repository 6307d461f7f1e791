//! Who may do what, and what a token is good for — each case as an attacker with an
//! account (or a token) would try it:
//!
//! - a developer cannot mint, through an app, more power than they hold;
//! - one JWT is good for one purpose, and a `jti` spent on one path is spent on all;
//! - a one-time link is authorized again when it is used;
//! - the admin API and the event stream follow the app's live scopes and accept only
//!   tokens addressed to this server; `admin` and `verify` are granted only by name;
//! - password sign-ins are limited per address on every path;
//! - a verifier hears only of its own organization's deletions;
//! - a token issued in the second of a re-enable lives;
//! - a refused `alg` is an invalid token, not a malformed one;
//! - authlib (a client library we did not write) authenticates without a `kid`.

use crate::common;

use common::*;
use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// An org with an app holding `admin read`, a plain app, and a developer and an
/// administrator of the org (signed in): `(org, admin app, plain app, developer, admin)`.
struct Org {
    id: String,
    admin_app: String,
    plain_app: String,
    dev: String,
    admin: String,
}

async fn org_with_people(app: &TestApp) -> Org {
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_app = app.create_app(&org, &["admin", "read"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain_app = app.create_app(&org, &["read"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dev = app.user_session(&org, "developer").await;
    let admin = app.user_session(&org, "admin").await;
    Org {
        id: org,
        admin_app,
        plain_app,
        dev,
        admin,
    }
}

/// 1. The escalation: a developer used an admin app to mint an `admin` token, then made
/// themselves administrator. Every step of it is refused now; the same calls work on an
/// app that holds nothing beyond the developer's power, and for an administrator.
#[tokio::test]
async fn a_developer_cannot_mint_admin_power_through_an_app() {
    let app = TestApp::spawn().await;
    let o = org_with_people(&app).await;
    let a = &o.admin_app;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/admin/v1/apps/{a}/tokens"),
            Some(json!({"scope": "admin"})),
        ),
        (
            Method::POST,
            format!("/admin/v1/apps/{a}/tokens"),
            Some(json!({"scope": "read"})),
        ),
        (Method::POST, format!("/admin/v1/apps/{a}/secrets"), None),
        (Method::POST, format!("/admin/v1/apps/{a}/keypairs"), None),
        (Method::POST, format!("/admin/v1/apps/{a}/api-keys"), None),
        (
            Method::PATCH,
            format!("/admin/v1/apps/{a}"),
            Some(json!({"name": "mine now"})),
        ),
        (Method::DELETE, format!("/admin/v1/apps/{a}"), None),
    ];
    for (method, path, body) in &calls {
        let (status, v) = app
            .call_as(&o.dev, method.clone(), path, body.clone())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("'admin' scope"),
            "{v}"
        );
    }
    // Nor can the developer put the scope on an app, or an app in a group that has it.
    let (status, _) = app
        .call_as(
            &o.dev,
            Method::PATCH,
            &format!("/admin/v1/apps/{}", o.plain_app),
            Some(json!({"scopes": ["read", "admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Their own role stays theirs to keep.
    let me = app
        .call_as(&o.dev, Method::GET, "/admin/v1/users?limit=50", None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call_as(
            &o.dev,
            Method::PATCH,
            &format!("/admin/v1/users/{me}"),
            Some(json!({"roles": {o.id.as_str(): "admin"}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // What the developer may do: the same on an app within their power.
    let p = &o.plain_app;
    for path in [
        format!("/admin/v1/apps/{p}/tokens"),
        format!("/admin/v1/apps/{p}/secrets"),
    ] {
        let (status, v) = app.call_as(&o.dev, Method::POST, &path, None).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
    }
    // And an administrator may do it all on the admin app.
    let (status, v) = app
        .call_as(
            &o.admin,
            Method::POST,
            &format!("/admin/v1/apps/{a}/tokens"),
            Some(json!({"scope": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["scope"], "admin");
}

/// 5. A token asked for without `scope` carries neither `admin` nor `verify`; asked for by
/// name, it does.
#[tokio::test]
async fn admin_and_verify_are_granted_only_by_name() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["admin", "verify", "read", "write"]).await;
    let t = app.access_token(&cid, &secret, None).await;
    assert_eq!(claims(&t)["scope"], "read write");
    let t = app.access_token(&cid, &secret, Some("admin verify")).await;
    assert_eq!(claims(&t)["scope"], "admin verify");
    // The unscoped token is refused by the admin API (it has no admin scope).
    let (status, _) = app
        .call_as(
            &app.access_token(&cid, &secret, None).await,
            Method::GET,
            "/admin/v1/users",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// 4. and 5. The admin API and the event stream take the app's live scopes, not the
/// token's word, and only tokens addressed to this server.
#[tokio::test]
async fn admin_api_and_event_stream_follow_live_scopes_and_audience() {
    let app = TestApp::spawn().await;
    let (cid, secret, org) = app.client(&["admin", "verify"]).await;
    let admin_token = app.access_token(&cid, &secret, Some("admin")).await;
    let verify_token = app.access_token(&cid, &secret, Some("verify")).await;
    let new_user = |n: u32| json!({"email": format!("u{n}@example.com"), "password": PASSWORD, "roles": {org.as_str(): "admin"}});
    let (status, v) = app
        .call_as(
            &admin_token,
            Method::POST,
            "/admin/v1/users",
            Some(new_user(1)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let snapshot = |token: String| {
        let http = app.http.clone();
        let url = app.url("/events/v1/snapshot");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(snapshot(verify_token.clone()).await, StatusCode::OK);

    // A token for an API (RFC 8707 resource): its audience is that API, not this server.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&cid, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin verify"),
            ("resource", "https://api-x.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let foreign = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&foreign)["aud"], "https://api-x.example/");
    let (status, v) = app
        .call_as(&foreign, Method::POST, "/admin/v1/users", Some(new_user(2)))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("audience"), "{v}");
    assert_eq!(snapshot(foreign).await, StatusCode::UNAUTHORIZED);

    // The app's scopes are taken away: the tokens issued before lose their rights at once.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{cid}"),
            Some(json!({"scopes": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = app
        .call_as(
            &admin_token,
            Method::POST,
            "/admin/v1/users",
            Some(new_user(3)),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("no longer holds"),
        "{v}"
    );
    assert_eq!(snapshot(verify_token).await, StatusCode::FORBIDDEN);
}

/// An app with a key pair (`alg`) and a resource it may read: the world, its key pair's
/// `kid` and private key (PKCS#8 PEM).
async fn signing_world(app: &TestApp, alg: &str) -> (GatewayWorld, String, String, String) {
    let w = app.gateway_world(false).await;
    let kp = app.create_keypair(&w.client_id, Some(alg)).await;
    let kid = kp["kid"].as_str().unwrap().to_owned();
    let key = kp["private_key_pem"].as_str().unwrap().to_owned();
    let (_, a) = app
        .call(
            Method::GET,
            &format!("/admin/v1/apps/{}", w.client_id),
            None,
        )
        .await;
    let tech = a["technical_account_id"].as_str().unwrap().to_owned();
    (w, kid, key, tech)
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

async fn gateway_jwt(app: &TestApp, w: &GatewayWorld, jwt: &str) -> reqwest::Response {
    app.gateway_check(
        Method::GET,
        &w.resource,
        &[("authorization", &format!("Bearer {jwt}"))],
    )
    .await
}

async fn client_assertion(app: &TestApp, jwt: &str) -> reqwest::Response {
    app.post_form(
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ],
    )
    .await
}

/// 2. One JWT, one purpose: a JWT addressed to this server (an RFC 7523 assertion) is
/// refused at the gateway; one addressed to a resource is refused at the token endpoint;
/// and a `jti` spent on one path is spent on the other.
#[tokio::test]
async fn one_jwt_is_good_for_exactly_one_purpose() {
    let app = TestApp::spawn().await;
    let (w, kid, key, tech) = signing_world(&app, "ES256").await;
    let cid = w.client_id.as_str();
    let now = app.now();
    let token_endpoint = format!("{}/oauth/token", app.issuer);

    // The reported shape: iss = sub = client id, aud = the issuer. It is a client
    // assertion, so the gateway refuses it …
    let assertion = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": cid, "aud": app.issuer, "iat": now, "exp": now + 300, "jti": jti()}),
    );
    let body = assert_gateway_denial(
        gateway_jwt(&app, &w, &assertion).await,
        401,
        "EXEG-0502-401",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("token-endpoint assertion"),
        "{body}"
    );
    // … and so does it an RFC 7523 grant assertion (sub = technical account).
    let grant = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": tech, "aud": token_endpoint, "iat": now, "exp": now + 300, "jti": jti()}),
    );
    assert_gateway_denial(gateway_jwt(&app, &w, &grant).await, 401, "EXEG-0502-401").await;
    // The assertion is still good for what it is for (it was not spent by the refusals).
    let r = client_assertion(&app, &assertion).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());

    // An app-signed bearer JWT for the resource passes the gateway once …
    let spent = jti();
    let bearer = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": cid, "aud": w.resource, "iat": now, "exp": now + 300, "jti": spent}),
    );
    assert_eq!(
        gateway_jwt(&app, &w, &bearer).await.status(),
        StatusCode::OK
    );
    // … and is refused at the token endpoint: addressed to the resource, not to us.
    let e = oauth_description(
        client_assertion(&app, &bearer).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(e.contains("aud"), "{e}");
    // A client assertion reusing the jti spent at the gateway is a replay: one memory.
    let reused = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": cid, "aud": token_endpoint, "iat": now, "exp": now + 300, "jti": spent}),
    );
    let e = oauth_description(
        client_assertion(&app, &reused).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(e.contains("used before"), "{e}");
    // And the other way round: a jti spent at the token endpoint is refused at the gateway.
    let first = jti();
    let a = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": cid, "aud": token_endpoint, "iat": now, "exp": now + 300, "jti": first}),
    );
    assert_eq!(client_assertion(&app, &a).await.status(), StatusCode::OK);
    let b = es256(
        &kid,
        &key,
        &json!({"iss": cid, "sub": cid, "aud": w.resource, "iat": now, "jti": first}),
    );
    let body = assert_gateway_denial(gateway_jwt(&app, &w, &b).await, 401, "EXEG-0502-401").await;
    assert!(
        body["detail"].as_str().unwrap().contains("already used"),
        "{body}"
    );
}

/// A link the bootstrap admin token made dies with that token: after the token is
/// revoked (or rotated), whoever stole it cannot use the links it made.
#[tokio::test]
async fn a_link_made_with_the_bootstrap_token_dies_when_the_token_is_revoked() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = app
        .call(
            Method::POST,
            "/admin/v1/invitations",
            Some(json!({"email": "new-admin@example.com", "org_id": org, "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let link = v["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let info = |token: String| {
        let app = &app;
        async move {
            app.http
                .get(app.url("/admin/v1/user-links/current"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(info(link.clone()).await, StatusCode::OK);

    // `portcullis admin-token revoke`, as the CLI does it: on the store, beside the server.
    let (store, _) = portcullis_server::bootstrap::open(&app.locations(), false)
        .await
        .unwrap();
    store
        .set_setting(portcullis_server::live_view::SETTING_ADMIN_TOKEN, "revoked")
        .await
        .unwrap();
    // The server has seen the change once the token itself is refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = app.call(Method::GET, "/admin/v1/orgs", None).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the revocation never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(info(link).await, StatusCode::GONE);
}

/// 3. A one-time link is authorized again when it is used.
#[tokio::test]
async fn a_link_dies_when_its_maker_or_its_user_changes() {
    let app = TestApp::spawn().await;
    let org_a = app.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let org_b = app.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_a = app
        .create_user(
            "admin-a@example.com",
            PASSWORD,
            json!({org_a.as_str(): "admin"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_session = app.session("admin-a@example.com", PASSWORD).await;
    let member = |n: &str| {
        let app = &app;
        let org_a = org_a.clone();
        let n = n.to_owned();
        async move {
            app.create_user(
                &format!("{n}@example.com"),
                PASSWORD,
                json!({org_a.as_str(): "developer"}),
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let reset = |session: String, user: String| {
        let app = &app;
        async move {
            let (status, v) = app
                .call_as(
                    &session,
                    Method::POST,
                    &format!("/admin/v1/users/{user}/password-reset"),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["link"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        }
    };
    let link_status = |token: String| {
        let app = &app;
        async move {
            let r = app
                .http
                .get(app.url("/admin/v1/user-links/current"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A control: a link whose maker and user are unchanged works.
    let fine = reset(admin_session.clone(), member("fine").await).await;
    assert_eq!(link_status(fine).await.0, StatusCode::OK);

    // The user is made an administrator of another org after the link was made.
    let u = member("promoted").await;
    let link = reset(admin_session.clone(), u.clone()).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{u}"),
            Some(json!({"roles": {org_b.as_str(): "admin"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = link_status(link).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    assert_eq!(v["code"], "PCS-0410-REVOKED");

    // The maker is demoted after making the link (an invitation, this time).
    let (status, v) = app
        .call_as(
            &admin_session,
            Method::POST,
            "/admin/v1/invitations",
            Some(json!({"org_id": org_a, "email": "new@example.com", "name": "New", "role": "developer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let invite = v["link"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let pending = reset(admin_session.clone(), member("pending").await).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{admin_a}"),
            Some(json!({"roles": {org_a.as_str(): "developer"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for link in [invite.clone(), pending] {
        assert_eq!(link_status(link).await.0, StatusCode::GONE);
    }
    // Accepting is refused the same way, and sets no password.
    let r = app
        .http
        .post(app.url("/admin/v1/user-links/current/accept"))
        .bearer_auth(&invite)
        .json(&json!({"password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        app.sign_in("new@example.com", "a brand new password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The maker is deleted.
    app.create_user(
        "admin-c@example.com",
        PASSWORD,
        json!({org_a.as_str(): "admin"}),
    )
    .await;
    let c_session = app.session("admin-c@example.com", PASSWORD).await;
    let orphan = reset(c_session, member("orphan").await).await;
    let c_id = app
        .call(Method::GET, "/admin/v1/users?limit=100", None)
        .await
        .1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin-c@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(Method::DELETE, &format!("/admin/v1/users/{c_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(link_status(orphan).await.0, StatusCode::GONE);
}

/// 6. Password sign-ins are limited per client address on every path that takes one:
/// many accounts guessed from one address are refused after the limit.
#[tokio::test]
async fn password_sign_ins_are_limited_per_address_on_every_path() {
    // A still clock: the failures all fall in one window however long the hashing takes.
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    app.create_user("real@example.com", PASSWORD, json!({}))
        .await;
    for i in 0..portcullis_server::PASSWORD_FAILURES_PER_ADDRESS {
        let r = app
            .sign_in(&format!("guess{i}@example.com"), "wrong password")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Over the limit: the admin API refuses even the right password, with Retry-After …
    let r = app.sign_in("real@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("your address"),
        "{body}"
    );
    // … and so does Wave's Basic sign-in from the same address.
    let r = app
        .http
        .get(app.url("/notificationgateway/1.0/subscriptions"))
        .basic_auth("real@example.com", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Read server-sent events from `r` until `stop` says enough (or 10 s pass); the text.
async fn read_events(mut r: reqwest::Response, stop: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_secs(10), r.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
        if stop(&text) {
            break;
        }
    }
    text
}

/// 7. A verifier of org A hears of A's deletions and of nothing of org B's.
#[tokio::test]
async fn the_event_stream_tells_a_reader_only_its_own_deletions() {
    let app = TestApp::spawn().await;
    let (verifier, secret, org_a) = app.client(&["verify"]).await;
    let token = app.access_token(&verifier, &secret, Some("verify")).await;
    let doomed_a = app.create_app(&org_a, &["read"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let org_b = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_b = app.create_app(&org_b, &["read"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, group_b) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org_b}/groups"),
            Some(json!({"name": "g", "scopes": ["read"]})),
        )
        .await;
    let group_b = group_b["id"].as_str().unwrap().to_owned();
    let res_b = app
        .create_resource_id(&org_b, json!({"name": "r", "sandbox": "prod"}))
        .await;
    let r = app
        .http
        .get(app.url("/events/v1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for path in [
        format!("/admin/v1/apps/{app_b}"),
        format!("/admin/v1/orgs/{org_b}/groups/{group_b}"),
        format!("/admin/v1/orgs/{org_b}/resources/{res_b}"),
        format!("/admin/v1/apps/{doomed_a}"),
    ] {
        let (status, v) = app.call(Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "DELETE {path}: {v}");
    }
    let text = read_events(r, |t| t.contains(&doomed_a)).await;
    assert!(
        text.contains(&doomed_a),
        "org A's own deletion arrives: {text}"
    );
    for other in [&app_b, &group_b, &res_b, &org_b] {
        assert!(
            !text.contains(other.as_str()),
            "org B's {other} leaked: {text}"
        );
    }
}

/// 8. Suspending and reactivating within one second no longer kills the tokens issued
/// after the reactivation; a token killed by an earlier disabling is told so truly.
#[tokio::test]
async fn a_token_issued_in_the_second_of_a_re_enable_works() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let before = app.access_token(&w.client_id, &w.secret, None).await;
    let toggles = [
        (
            format!("/admin/v1/orgs/{}", w.org),
            json!({"status": "disabled"}),
            json!({"status": "active"}),
        ),
        (
            format!("/admin/v1/apps/{}", w.client_id),
            json!({"status": "suspended"}),
            json!({"status": "active"}),
        ),
    ];
    for (i, (path, off, on)) in toggles.into_iter().enumerate() {
        // The clock does not move: disable, re-enable and the new token share one second.
        for body in [off, on] {
            let (status, v) = app.call(Method::PATCH, &path, Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{v}");
        }
        let after = app.access_token(&w.client_id, &w.secret, None).await;
        let r = app.bearer_check(&w, &after).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "a token issued after re-enabling ({path})"
        );
        if i == 0 {
            // The token from before the disabling stays dead, and the detail says why:
            // the org is active again, so not "the organization is not active".
            let body =
                assert_gateway_denial(app.bearer_check(&w, &before).await, 401, "EXEG-0502-401")
                    .await;
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("issued before the organization"),
                "{detail}"
            );
            assert!(!detail.contains("is not active"), "{detail}");
        }
    }
}

/// 9. An access token whose `alg` is `none` (or unknown) is an invalid token (0502), not a
/// malformed one (0500).
#[tokio::test]
async fn a_refused_alg_is_an_invalid_token() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let real = app.access_token(&w.client_id, &w.secret, None).await;
    let c = claims(&real);
    let kid = header(&real)["kid"].as_str().unwrap().to_owned();
    for alg in ["none", "HS512", "XYZ"] {
        let forged = forged_jwt(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}), &c, b"");
        let body =
            assert_gateway_denial(app.bearer_check(&w, &forged).await, 401, "EXEG-0502-401").await;
        assert!(
            body["detail"].as_str().unwrap().contains("'alg'"),
            "{alg}: {body}"
        );
    }
}

/// The Python interpreter the authlib oracle runs on, with authlib importable; `None`
/// (after saying why) outside CI when it is missing.
fn python_with_authlib() -> Option<String> {
    let python = std::env::var("PORTCULLIS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import authlib, requests"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI needs {python} with authlib and requests (.ci/run installs them)");
    }
    eprintln!("skipped: {python} cannot import authlib and requests");
    None
}

/// 10. authlib's `private_key_jwt` client authentication and its RFC 7523 grant send no
/// `kid`; unmodified, both get tokens. With a `kid`, only that key is tried.
#[tokio::test]
async fn authlib_authenticates_without_a_kid() {
    let Some(python) = python_with_authlib() else {
        return;
    };
    let app = TestApp::spawn().await;
    // authlib's default algorithm.
    let (w, _kid, key, tech) = signing_world(&app, "RS256").await;
    let script = r#"
import json, sys, time, uuid
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, JWTBearerGrant

token_endpoint, client_id, tech, key = sys.argv[1:5]
session = OAuth2Session(client_id, key, token_endpoint_auth_method=PrivateKeyJWT(token_endpoint))
one = session.fetch_token(token_endpoint, grant_type="client_credentials", scope="read")
assertion = JWTBearerGrant.sign(key, issuer=client_id, audience=token_endpoint, subject=tech,
                                claims={"jti": str(uuid.uuid4())}, header={"alg": "RS256"})
grant = OAuth2Session(client_id).fetch_token(
    token_endpoint, grant_type=JWTBearerGrant.GRANT_TYPE, assertion=assertion)
print(json.dumps({"client_credentials": one, "jwt_bearer": grant,
                  "assertion_header": assertion.decode().split(".")[0] if isinstance(assertion, bytes) else assertion.split(".")[0]}))
"#;
    let token_endpoint = format!("{}/oauth/token", app.issuer);
    let out = tokio::process::Command::new(&python)
        .args(["-c", script, &token_endpoint, &w.client_id, &tech, &key])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "authlib failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for grant in ["client_credentials", "jwt_bearer"] {
        let t = v[grant]["access_token"].as_str().unwrap();
        assert_eq!(claims(t)["client_id"], w.client_id.as_str(), "{grant}");
    }
    // The oracle really sent no kid.
    use base64::Engine;
    let h: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v["assertion_header"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(h.get("kid").is_none(), "{h}");
}
