//! Application key pairs and app-signed bearer JWTs (SAP Gigya's application keys) against
//! the real server.
//!
//! The JWTs are signed by `jsonwebtoken`'s encoder from the private PEM the server
//! returned — an implementation independent of the server's signing code (aws-lc-rs
//! directly) — in the shape of SAP Gigya's C# example: header `kid` (and `typ: JWT`, as
//! .NET writes it), claims `iat` and `jti` only.

use crate::common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_core::clock::Clock;
use portcullis_server::config::GatewayConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A server with a manual clock (so `iat` can be placed exactly) that accepts
/// `userKey` + `secret` over plain HTTP, and a [`GatewayWorld`] in it.
async fn setup() -> (TestApp, GatewayWorld) {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        gateway: GatewayConfig {
            allow_secrets_over_http: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    (app, w)
}

fn now(app: &TestApp) -> i64 {
    app.clock.as_ref().expect("a manual clock").now()
}

static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A fresh jti (unique within the test process, like Gigya's `Guid.NewGuid()`).
fn jti() -> String {
    let n = JTI.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Sign `claims` with the key pair `kp` (a creation response) under its algorithm.
fn sign(kp: &Value, claims: Value) -> String {
    sign_as(kp, kp["kid"].as_str().unwrap(), claims)
}

fn sign_as(kp: &Value, kid: &str, claims: Value) -> String {
    let pem = kp["private_key_pem"].as_str().unwrap().as_bytes();
    let (key, alg) = match kp["alg"].as_str().unwrap() {
        "RS256" => (EncodingKey::from_rsa_pem(pem).unwrap(), Algorithm::RS256),
        "ES256" => (EncodingKey::from_ec_pem(pem).unwrap(), Algorithm::ES256),
        other => panic!("unexpected alg {other}"),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Gigya's bearer: iat now, a fresh jti.
fn kid_jwt(app: &TestApp, kp: &Value) -> String {
    sign(kp, json!({"iat": now(app), "jti": jti()}))
}

async fn check_bearer(app: &TestApp, w: &GatewayWorld, jwt: &str) -> reqwest::Response {
    let auth = format!("Bearer {jwt}");
    app.gateway_check(Method::GET, &w.resource, &[("authorization", &auth)])
        .await
}

/// A fresh Gigya-style JWT of `kp` is denied with `code`; the problem body.
async fn assert_fresh_jwt_denied(
    app: &TestApp,
    w: &GatewayWorld,
    kp: &Value,
    status: u16,
    code: &str,
) -> Value {
    assert_gateway_denial(check_bearer(app, w, &kid_jwt(app, kp)).await, status, code).await
}

async fn assert_allowed(r: reqwest::Response, w: &GatewayWorld) {
    let status = r.status();
    let h = r.headers().clone();
    assert_eq!(status, StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(h["x-portcullis-client-id"], w.client_id.as_str());
    assert_eq!(h["x-portcullis-org"], w.org.as_str());
    assert_eq!(h["x-portcullis-authenticated"], "true");
}

#[tokio::test]
async fn a_key_pair_is_shown_once_and_signs_gigya_bearer_jwts() {
    let (app, w) = setup().await;
    let path = format!("/admin/v1/apps/{}/keypairs", w.client_id);
    let r = app.admin(Method::POST, &path, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let kp: Value = r.json().await.unwrap();
    let kid = kp["kid"].as_str().unwrap();
    assert!(kid.starts_with("key_"), "{kp}");
    assert_eq!(kp["alg"], "RS256", "RS256 by default, like Gigya's");
    assert_eq!(kp["client_id"], w.client_id.as_str());
    let pem = kp["private_key_pem"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    assert!(pem.trim_end().ends_with("-----END PRIVATE KEY-----"));
    assert!(pem.lines().all(|l| l.len() <= 64), "64-character lines");
    let jwk = &kp["public_jwk"];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["kid"], kid);
    assert!(jwk.get("d").is_none(), "the JWK is public: {jwk}");

    // The public JWK verifies what the private key signs (the pair is one pair).
    let t = kid_jwt(&app, &kp);
    let dk =
        jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    assert!(jsonwebtoken::decode::<Value>(&t, &dk, &v).is_ok());

    // Allowed at the gateway with the app's live scopes, no x-api-key needed.
    let r = check_bearer(&app, &w, &t).await;
    let scope = r.headers()["x-portcullis-scope"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_allowed(r, &w).await;
    assert_eq!(scope, "read write");

    // The private key is in the creation response only.
    let (status, list) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (status, one) = app.call(Method::GET, &format!("{path}/{kid}"), None).await;
    assert_eq!(status, StatusCode::OK);
    for listed in [&list["items"][0], &one] {
        assert_eq!(listed["kid"], kid);
        assert_eq!(listed["public_jwk"], *jwk);
        assert!(listed.get("private_key_pem").is_none(), "{listed}");
        assert!(!listed.to_string().contains("PRIVATE KEY"));
    }

    // ES256 on request.
    let es = app.create_keypair(&w.client_id, Some("ES256")).await;
    assert_eq!(es["alg"], "ES256");
    assert_eq!(es["public_jwk"]["crv"], "P-256");
    assert_allowed(check_bearer(&app, &w, &kid_jwt(&app, &es)).await, &w).await;
}

#[tokio::test]
async fn replayed_stale_expired_and_misaddressed_jwts_are_0502() {
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let t0 = now(&app);

    // Replayed.
    let t = kid_jwt(&app, &kp);
    assert_allowed(check_bearer(&app, &w, &t).await, &w).await;
    let v = assert_gateway_denial(check_bearer(&app, &w, &t).await, 401, "EXEG-0502-401").await;
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("sign a new JWT with iat = now and a fresh jti for every request"),
        "{v}"
    );

    let denied = |claims: Value, what: &'static str| {
        let jwt = sign(&kp, claims);
        let app = &app;
        let w = &w;
        async move {
            let r = check_bearer(app, w, &jwt).await;
            let v = assert_gateway_denial(r, 401, "EXEG-0502-401").await;
            assert!(v["detail"].as_str().unwrap().contains(what), "{what}: {v}");
        }
    };
    denied(json!({"iat": t0 - 301, "jti": jti()}), "301 s ago").await;
    denied(json!({"iat": t0 + 301, "jti": jti()}), "in the future").await;
    denied(json!({"iat": t0, "jti": jti(), "exp": t0 - 61}), "expired").await;
    denied(
        json!({"iat": t0, "jti": jti(), "aud": "https://elsewhere.example"}),
        "'aud'",
    )
    .await;
    denied(json!({"iat": t0}), "'jti'").await;
    denied(json!({"jti": jti()}), "'iat'").await;
    // Addressed to this server: a token-endpoint assertion, not a bearer for an API.
    denied(
        json!({"iat": t0, "jti": jti(), "exp": t0 + 60, "aud": app.issuer}),
        "token-endpoint assertion",
    )
    .await;

    // Within the window and for this resource (or no audience): allowed.
    for claims in [
        json!({"iat": t0 - 300, "jti": jti()}),
        json!({"iat": t0, "jti": jti(), "exp": t0 + 60, "aud": w.resource}),
        json!({"iat": t0, "jti": jti(), "aud": [w.resource.as_str(), "https://other.example"]}),
    ] {
        assert_allowed(check_bearer(&app, &w, &sign(&kp, claims)).await, &w).await;
    }

    // A JWT used once stays refused while it could be accepted at all, then its iat
    // refuses it anyway.
    app.clock.as_ref().unwrap().advance(299);
    assert_gateway_denial(check_bearer(&app, &w, &t).await, 401, "EXEG-0502-401").await;
    app.clock.as_ref().unwrap().advance(2);
    let v = assert_gateway_denial(check_bearer(&app, &w, &t).await, 401, "EXEG-0502-401").await;
    assert!(v["detail"].as_str().unwrap().contains("301 s ago"), "{v}");
}

#[tokio::test]
async fn unknown_kids_alg_none_and_hs256_with_the_public_key_are_refused() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let kid = kp["kid"].as_str().unwrap();
    let claims = json!({"iat": now(&app), "jti": jti()});

    let unknown = sign_as(&kp, "key_0000000000000000", claims.clone());
    let v =
        assert_gateway_denial(check_bearer(&app, &w, &unknown).await, 401, "EXEG-0502-401").await;
    assert!(v["detail"].as_str().unwrap().contains("kid"), "{v}");

    let body = B64.encode(claims.to_string());
    let none = format!(
        "{}.{body}.",
        B64.encode(json!({"alg": "none", "kid": kid, "typ": "JWT"}).to_string())
    );
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.to_owned());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(kp["public_jwk"].to_string().as_bytes()),
    )
    .unwrap();
    for (what, t) in [("alg none", none), ("HS256", hs256)] {
        let v = assert_gateway_denial(check_bearer(&app, &w, &t).await, 401, "EXEG-0502-401").await;
        assert!(v["detail"].as_str().unwrap().contains("alg"), "{what}: {v}");
    }

    // Garbage that only looks like a JWT is not well-formed (0500).
    let garbage = format!(
        "{}.{}.x",
        B64.encode(json!({"alg": "RS256", "kid": kid}).to_string()),
        "%%%"
    );
    assert_gateway_denial(check_bearer(&app, &w, &garbage).await, 401, "EXEG-0500-401").await;
}

#[tokio::test]
async fn the_jwt_names_its_app_so_the_optional_headers_must_match() {
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let other = app.create_app(&w.org, &["read"]).await;
    let other = other["client_id"].as_str().unwrap();
    let bearer = |t: String| format!("Bearer {t}");

    let auth = bearer(kid_jwt(&app, &kp));
    let r = app
        .gateway_check(
            Method::GET,
            &w.resource,
            &[("authorization", &auth), ("x-api-key", other)],
        )
        .await;
    let v = assert_gateway_denial(r, 403, "403003").await;
    assert_eq!(v["error_code"], "403003");
    assert!(v["detail"].as_str().unwrap().contains(&w.client_id), "{v}");

    let auth = bearer(kid_jwt(&app, &kp));
    let r = app
        .gateway_check(
            Method::GET,
            &w.resource,
            &[
                ("authorization", &auth),
                ("x-gw-ims-org-id", "0000000000000000000000AA@Org"),
            ],
        )
        .await;
    assert_gateway_denial(r, 403, "PCS-0403-403").await;

    let auth = bearer(kid_jwt(&app, &kp));
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
    assert_allowed(r, &w).await;

    // A write needs write access to the sandbox, as for every presentation.
    let auth = bearer(kid_jwt(&app, &kp));
    let r = app
        .gateway_check(Method::POST, &w.resource, &[("authorization", &auth)])
        .await;
    assert_gateway_denial(r, 401, "EXEG-0506-401").await;
}

#[tokio::test]
async fn suspending_the_app_or_disabling_its_org_refuses_its_next_jwt() {
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let app_path = format!("/admin/v1/apps/{}", w.client_id);
    let (s, _) = app
        .call(
            Method::PATCH,
            &app_path,
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let v = assert_fresh_jwt_denied(&app, &w, &kp, 401, "EXEG-0502-401").await;
    assert!(v["detail"].as_str().unwrap().contains("suspended"), "{v}");
    let (s, _) = app
        .call(Method::PATCH, &app_path, Some(json!({"status": "active"})))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_allowed(check_bearer(&app, &w, &kid_jwt(&app, &kp)).await, &w).await;
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/orgs/{}", w.org),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_fresh_jwt_denied(&app, &w, &kp, 401, "PCS-0401-401").await;
}

#[tokio::test]
async fn deleting_the_key_pair_or_the_app_ends_its_use_at_the_next_request() {
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let keep = app.create_keypair(&w.client_id, Some("ES256")).await;
    let path = format!(
        "/admin/v1/apps/{}/keypairs/{}",
        w.client_id,
        kp["kid"].as_str().unwrap()
    );
    assert_allowed(check_bearer(&app, &w, &kid_jwt(&app, &kp)).await, &w).await;
    let (s, _) = app.call(Method::DELETE, &path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_fresh_jwt_denied(&app, &w, &kp, 401, "EXEG-0502-401").await;
    let (s, _) = app.call(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The app's other key pair is untouched.
    assert_allowed(check_bearer(&app, &w, &kid_jwt(&app, &keep)).await, &w).await;

    let (s, _) = app
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{}", w.client_id),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_fresh_jwt_denied(&app, &w, &keep, 401, "EXEG-0502-401").await;
}

/// An app in a group has its scopes, live — for both of Gigya's
/// credentials, the group's next edit decides the app's next request.
#[tokio::test]
async fn editing_the_permission_group_changes_what_the_apps_next_request_may_do() {
    let (app, w) = setup().await;
    let kp = app.create_keypair(&w.client_id, None).await;
    let (s, group) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{}/groups", w.org),
            Some(json!({"name": "Readers", "scopes": ["write"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{group}");
    let group_path = format!(
        "/admin/v1/orgs/{}/groups/{}",
        w.org,
        group["id"].as_str().unwrap()
    );
    let (s, v) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{}", w.client_id),
            Some(json!({"scopes": [], "group_id": group["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let key_and_secret = [
        ("x-user-key", w.client_id.as_str()),
        ("x-user-secret", w.secret.as_str()),
    ];
    let with_secret = || app.gateway_check(Method::GET, &w.resource, &key_and_secret);
    // The resource needs 'read'; the group has only 'write'.
    assert_gateway_denial(with_secret().await, 401, "EXEG-0505-401").await;
    assert_fresh_jwt_denied(&app, &w, &kp, 401, "EXEG-0505-401").await;

    let (s, _) = app
        .call(
            Method::PATCH,
            &group_path,
            Some(json!({"scopes": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = with_secret().await;
    assert_eq!(r.headers()["x-portcullis-scope"], "read");
    assert_allowed(r, &w).await;
    let r = check_bearer(&app, &w, &kid_jwt(&app, &kp)).await;
    assert_eq!(r.headers()["x-portcullis-scope"], "read");
    assert_allowed(r, &w).await;

    let (s, _) = app
        .call(
            Method::PATCH,
            &group_path,
            Some(json!({"scopes": ["write"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_gateway_denial(with_secret().await, 401, "EXEG-0505-401").await;
    assert_fresh_jwt_denied(&app, &w, &kp, 401, "EXEG-0505-401").await;
}

#[tokio::test]
async fn key_pairs_are_managed_by_who_manages_the_apps_credentials() {
    let (app, w) = setup().await;
    let other_org = app.create_org(&[], &["prod"]).await;
    app.create_user(
        "dev@example.com",
        "correct horse battery",
        json!({other_org["id"].as_str().unwrap(): "developer"}),
    )
    .await;
    let session = app
        .session("dev@example.com", "correct horse battery")
        .await;
    let path = format!("/admin/v1/apps/{}/keypairs", w.client_id);
    let (s, v) = app.call_as(&session, Method::POST, &path, None).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another org's app is not visible: {v}"
    );
    let (s, v) = app
        .call(Method::POST, &path, Some(json!({"alg": "HS256"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("RS256"), "{v}");
    let (s, list) = app.call(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn get_jwt_public_key_serves_the_keys_that_verify_portcullis_access_tokens() {
    let (app, w) = setup().await;
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    let get = |query: String| {
        app.http
            .get(app.url(&format!("/accounts.getJWTPublicKey?{query}")))
            .send()
    };
    let r = get(format!("apiKey={}&v2=true", w.client_id))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = r.json().await.unwrap();
    let well_known: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, well_known, "the same keys as /.well-known/jwks.json");

    // Gigya's client: load the JWKS, pick the key by kid, validate issuer and lifetime.
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let kid = header(&token)["kid"].as_str().unwrap().to_owned();
    let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let alg = match header(&token)["alg"].as_str().unwrap() {
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        "EdDSA" => Algorithm::EdDSA,
        other => panic!("unexpected alg {other}"),
    };
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[&app.issuer]);
    v.set_audience(&[&app.issuer]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .expect("the JWKS verifies a Portcullis access token")
    .claims;
    assert_eq!(claims["client_id"], w.client_id.as_str());

    // Parameter names in any case; v2 may be left out.
    for q in [
        format!("apikey={}&v2=true", w.client_id),
        format!("APIKey={}", w.client_id),
    ] {
        assert_eq!(get(q).await.unwrap().status(), StatusCode::OK);
    }
    let r = get("apiKey=0123456789abcdef0123456789abcdef&v2=true".into())
        .await
        .unwrap();
    let v = assert_problem(r, StatusCode::FORBIDDEN).await;
    assert_eq!(v["code"], "403003");
    assert_problem(
        get("v2=true".into()).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let v = assert_problem(
        get(format!("apiKey={}&v2=false", w.client_id))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(v["detail"].as_str().unwrap().contains("v2"), "{v}");
}
