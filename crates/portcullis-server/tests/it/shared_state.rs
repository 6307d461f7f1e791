//! Two real nodes on one database and one real Redis (`--redis-url`): what one
//! node has seen, the other refuses — an app-signed JWT's `jti`, a DPoP proof, an OAuth 1.0
//! nonce — and
//! failed authentications on both count against one limit.
//!
//! Needs Redis at 127.0.0.1:6379 (or `PORTCULLIS_TEST_REDIS_URL`): skipped with a printed
//! reason when it is unreachable, a failure when `CI` is set. Runs on SQLite (both nodes
//! on one file) and, with `PORTCULLIS_TEST_BACKEND=postgres`, on PostgreSQL.

use crate::common;

use base64::Engine;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_server::config::GatewayConfig;
use portcullis_store::test_db::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Instant;

fn redis_url() -> String {
    std::env::var("PORTCULLIS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Redis, or `None` (after saying why) outside CI.
async fn redis() -> Option<portcullis_shared::Shared> {
    match portcullis_shared::Shared::connect(&redis_url()).await {
        Ok(s) => Some(s),
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI needs Redis: {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

struct Cluster {
    a: TestApp,
    b: TestApp,
    prefix: String,
    _db: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

/// Two nodes on one store (a PostgreSQL test database, or one SQLite file), one master
/// key, one Redis under a prefix of their own.
async fn cluster(failure_limit: u32) -> Option<Cluster> {
    redis().await?;
    let prefix = format!(
        "pctest:{}:",
        hex::encode(portcullis_core::random_bytes::<8>())
    );
    let dir = tempfile::tempdir().unwrap();
    let db = if postgres_requested() {
        TestDatabase::create().await
    } else {
        None
    };
    let url = match &db {
        Some(d) => d.url.clone(),
        None => format!("sqlite://{}", dir.path().join("shared.db").display()),
    };
    let key =
        base64::engine::general_purpose::STANDARD.encode(portcullis_core::random_bytes::<32>());
    let node = || Options {
        database_url: Some(url.clone()),
        master_key: Some(key.clone()),
        issuer: Some("https://auth.shared.test".into()),
        gateway: GatewayConfig {
            allow_secrets_over_http: true,
            failure_limit,
            // Both nodes behind one name, as a DPoP proof names it.
            public_origin: Some(API_ORIGIN.into()),
            ..Default::default()
        },
        redis: Some((redis_url(), prefix.clone())),
        ..Options::default()
    };
    let a = TestApp::spawn_with(node()).await;
    let b = TestApp::spawn_with(node()).await;
    Some(Cluster {
        a,
        b,
        prefix,
        _db: db,
        _dir: dir,
    })
}

/// The origin clients call the cluster's APIs at.
const API_ORIGIN: &str = "https://api.shared.test";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn check(app: &TestApp, w: &GatewayWorld, auth: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .header("authorization", auth)
        .send()
        .await
        .unwrap()
}

/// Wait (with a deadline) until node `b` accepts the throwaway `jwt`: then it knows the
/// resource, the app and its key pair `kid` (the nodes share a store, and B's view follows
/// it). Any other answer, such as an unknown resource, means B has not caught up yet.
async fn until_known(b: &TestApp, w: &GatewayWorld, jwt: &str) {
    let start = Instant::now();
    loop {
        let r = check(b, w, &format!("Bearer {jwt}")).await;
        let ok = r.status() == StatusCode::OK;
        let body: Value = r.json().await.unwrap_or_default();
        if ok {
            return;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "node B never learned the key: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn fresh_nonce() -> String {
    format!("n{}", hex::encode(portcullis_core::random_bytes::<8>()))
}

fn sign(kp: &Value, claims: Value) -> String {
    let pem = kp["private_key_pem"].as_str().unwrap().as_bytes();
    let (key, alg) = match kp["alg"].as_str().unwrap() {
        "RS256" => (EncodingKey::from_rsa_pem(pem).unwrap(), Algorithm::RS256),
        _ => (EncodingKey::from_ec_pem(pem).unwrap(), Algorithm::ES256),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kp["kid"].as_str().unwrap().to_owned());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn an_app_signed_jwt_used_on_node_a_is_refused_on_node_b() {
    let Some(c) = cluster(1000).await else { return };
    let w = c.a.gateway_world(false).await;
    let (status, kp) =
        c.a.call(
            Method::POST,
            &format!("/admin/v1/apps/{}/keypairs", w.client_id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kp}");
    // A throwaway JWT first, so B has the key before the real one is spent on A.
    let warm = sign(
        &kp,
        json!({"iat": now(), "jti": format!("warm-{}", c.prefix)}),
    );
    until_known(&c.b, &w, &warm).await;

    let jwt = sign(
        &kp,
        json!({"iat": now(), "jti": format!("once-{}", c.prefix)}),
    );
    let started = Instant::now();
    let r = check(&c.a, &w, &format!("Bearer {jwt}")).await;
    let one = started.elapsed();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = check(&c.b, &w, &format!("Bearer {jwt}")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "EXEG-0502-401");
    assert!(
        p["detail"].as_str().unwrap().contains("already used"),
        "{p}"
    );
    println!("shared jti: a first use on node A took {one:?} end to end (one SET NX)");
    // What the shared store adds per check, measured (not asserted: timing is the
    // machine's): one SET NX, and one failure-limit read, each a round trip.
    let shared = redis().await.unwrap().with_prefix(c.prefix.clone());
    let n = 500;
    let t = Instant::now();
    for i in 0..n {
        assert!(
            shared
                .first_use_jti("bench", &format!("j{i}"), now() + 60, now())
                .await
                .unwrap()
        );
    }
    let jti = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        shared
            .failures("127.0.0.2", Some("bench"), 10)
            .await
            .unwrap();
    }
    println!(
        "shared store round trips: jti SET NX {jti:?}, failure-limit read {:?} (mean of {n})",
        t.elapsed() / n
    );
}

#[tokio::test]
async fn an_oauth1_nonce_used_on_node_a_is_refused_on_node_b() {
    let Some(c) = cluster(1000).await else { return };
    let (client_id, secret, _) = c.a.client(&[]).await;
    let query_with = |nonce: &str, ts: &str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("oauth_consumer_key", client_id.as_str()),
                ("oauth_signature_method", "PLAINTEXT"),
                ("oauth_signature", &format!("{secret}&")),
                ("oauth_timestamp", ts),
                ("oauth_nonce", nonce),
                ("oauth_version", "1.0"),
            ])
            .finish()
    };
    let ask = |app: &TestApp, query: String| {
        app.http
            .get(format!(
                "{}?{query}",
                app.url("/identity/1.0/oauth/requesttoken")
            ))
            .send()
    };
    // Both nodes learn the app through the shared store: poll with throwaway nonces.
    for app in [&c.a, &c.b] {
        let start = Instant::now();
        while ask(app, query_with(&fresh_nonce(), &now().to_string()))
            .await
            .unwrap()
            .status()
            != StatusCode::OK
        {
            assert!(
                start.elapsed().as_secs() < 5,
                "the node never learned the app"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let nonce = fresh_nonce();
    let ts = now().to_string();
    let query = query_with(&nonce, &ts);
    let r = ask(&c.a, query.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = ask(&c.b, query).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let text = r.text().await.unwrap();
    assert!(text.contains("nonce"), "{text}");
    // And it was Redis that said so.
    let shared = redis().await.unwrap().with_prefix(c.prefix.clone());
    assert!(
        !shared
            .first_use_nonce(&client_id, ts.parse().unwrap(), &nonce, 60)
            .await
            .unwrap(),
        "the nonce is recorded in Redis"
    );
}

#[tokio::test]
async fn failed_authentications_on_two_nodes_count_against_one_limit() {
    let Some(c) = cluster(4).await else { return };
    let w = c.a.gateway_world(false).await;
    let token =
        c.a.access_token(&w.client_id, &w.secret, Some("read"))
            .await;
    let good = |app: &TestApp| {
        app.http
            .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
            .bearer_auth(&token)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
    };
    let start = Instant::now();
    while good(&c.b).await.unwrap().status() != StatusCode::OK {
        assert!(
            start.elapsed().as_secs() < 5,
            "node B never learned the app"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Two failures on each node: four in all, the limit.
    for app in [&c.a, &c.a, &c.b, &c.b] {
        let r = check(app, &w, "Bearer not-a-token").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Each node alone has seen two; together they refuse even valid credentials.
    for app in [&c.a, &c.b] {
        let r = good(app).await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key("retry-after"));
    }
}

/// RFC 7523 assertions (the jwt-bearer grant and `private_key_jwt`) have `jti`s too: with
/// `--redis-url` one spent on node A is refused on node B, with the error a single node
/// gives (`invalid_grant` for the grant's assertion, `invalid_client` for the client's).
#[tokio::test]
async fn an_rfc_7523_assertion_used_on_node_a_is_refused_on_node_b() {
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    const CLIENT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let Some(c) = cluster(1000).await else { return };
    let org = c.a.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = c.a.create_app(&org, &["read"]).await;
    let cid = app["client_id"].as_str().unwrap().to_owned();
    let tech = app["technical_account_id"].as_str().unwrap().to_owned();
    let cert = TestCert::valid(Algorithm::ES256, now());
    let kid = c.a.certificate_id(&cid, &cert.pem).await;
    let aud = format!("{}/oauth/token", c.a.issuer);
    let claims = |sub: &str, jti: String| json!({"iss": cid, "sub": sub, "aud": aud, "exp": now() + 300, "iat": now(), "jti": jti});
    /// Spend `assertion` at node's token endpoint: as the jwt-bearer grant's assertion, or
    /// (`as_client`) as the client's own (`private_key_jwt`) in client_credentials.
    async fn spend(node: &TestApp, as_client: bool, assertion: &str) -> reqwest::Response {
        let form: &[(&str, &str)] = if as_client {
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT),
                ("client_assertion", assertion),
            ]
        } else {
            &[("grant_type", GRANT), ("assertion", assertion)]
        };
        node.post_form("/oauth/token", form).await
    }
    // Wait (with a deadline) until node B knows the certificate, with throwaway jtis.
    let start = Instant::now();
    loop {
        let warm = cert.sign(Some(&kid), &claims(&tech, fresh_nonce()));
        let r = spend(&c.b, false, &warm).await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "node B never learned the certificate"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The grant's assertion (sub = technical account), then the client's (sub = client id).
    for (as_client, sub, status, error) in [
        (false, &tech, StatusCode::BAD_REQUEST, "invalid_grant"),
        (true, &cid, StatusCode::UNAUTHORIZED, "invalid_client"),
    ] {
        let assertion = cert.sign(Some(&kid), &claims(sub, format!("{error}-{}", c.prefix)));
        let r = spend(&c.a, as_client, &assertion).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let r = spend(&c.b, as_client, &assertion).await;
        assert_eq!(r.status(), status, "{error}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], error, "{e}");
        let text = e["error_description"].as_str().unwrap();
        assert!(text.contains("used before"), "{e}");
    }
}

/// One `jti` memory for every path, across nodes: a `jti` an app spent at node A's
/// gateway is refused at node B's token endpoint, and the other way round.
#[tokio::test]
async fn a_jti_spent_on_one_path_of_node_a_is_spent_on_every_path_of_node_b() {
    const CLIENT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let Some(c) = cluster(1000).await else { return };
    let w = c.a.gateway_world(false).await;
    let (status, kp) =
        c.a.call(
            Method::POST,
            &format!("/admin/v1/apps/{}/keypairs", w.client_id),
            Some(json!({"alg": "ES256"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{kp}");
    let warm = sign(&kp, json!({"iat": now(), "jti": fresh_nonce()}));
    until_known(&c.b, &w, &warm).await;
    let cid = w.client_id.as_str();
    let endpoint = format!("{}/oauth/token", c.a.issuer);
    let assertion = |jti: &str| {
        sign(
            &kp,
            json!({"iss": cid, "sub": cid, "aud": endpoint, "iat": now(), "exp": now() + 300, "jti": jti}),
        )
    };
    let bearer = |jti: &str| sign(&kp, json!({"iat": now(), "aud": w.resource, "jti": jti}));
    let token = |node: &TestApp, jwt: String| {
        let node = node.url("/oauth/token");
        async move {
            reqwest::Client::new()
                .post(node)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", CLIENT),
                    ("client_assertion", jwt.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };

    // Gateway on A, then the token endpoint on B.
    let jti = fresh_nonce();
    let r = check(&c.a, &w, &format!("Bearer {}", bearer(&jti))).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = token(&c.b, assertion(&jti)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{e}"
    );

    // The token endpoint on A, then the gateway on B.
    let jti = fresh_nonce();
    let r = token(&c.a, assertion(&jti)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = check(&c.b, &w, &format!("Bearer {}", bearer(&jti))).await;
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "EXEG-0502-401", "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("already used"),
        "{p}"
    );
}

/// A gateway check of `w`'s resource with a DPoP-bound token and `proof`.
async fn dpop_check(
    app: &TestApp,
    w: &GatewayWorld,
    token: &str,
    proof: &str,
) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .header("x-original-uri", "/orders/7")
        .send()
        .await
        .unwrap()
}

/// A DPoP proof spent on one node — at the token endpoint or the gateway — is a replay
/// on the other.
#[tokio::test]
async fn a_dpop_proof_spent_on_one_node_is_a_replay_on_the_other() {
    let Some(c) = cluster(1000).await else {
        return;
    };
    let w = c.a.gateway_world(false).await;
    let key = DpopKey::new();
    let endpoint = c.a.token_endpoint();
    assert_eq!(endpoint, c.b.token_endpoint(), "one issuer");
    let url = format!("{API_ORIGIN}/orders/7");

    let spent = key.proof("POST", &endpoint, None, None);
    let r = c.a.dpop_token(&w.client_id, &w.secret, Some(&spent)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Node B follows the store: wait (fresh proofs each time) until it passes a proof.
    let start = Instant::now();
    loop {
        let r = dpop_check(
            &c.b,
            &w,
            &token,
            &key.proof("GET", &url, Some(&token), None),
        )
        .await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "node B never learned the app"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = c.b.dpop_token(&w.client_id, &w.secret, Some(&spent)).await;
    let v = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("used before"),
        "{v}"
    );

    let proof = key.proof("GET", &url, Some(&token), None);
    assert_eq!(
        dpop_check(&c.a, &w, &token, &proof).await.status(),
        StatusCode::OK
    );
    let r = dpop_check(&c.b, &w, &token, &proof).await;
    assert_gateway_denial(r, 401, "PCS-0453-401").await;
}
