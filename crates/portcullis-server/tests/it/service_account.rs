//! Certificates under an app and Adobe I/O's service-account JWT exchange, black-box: keys and
//! certificates from `rcgen`, JWTs signed by `jsonwebtoken` (the server signs with
//! aws-lc-rs directly), requests in Adobe I/O's shape (form fields `client_id`,
//! `client_secret`, `jwt_token`; Adobe I/O's claim names).

use crate::common;

use common::*;
use jsonwebtoken::Algorithm::{ES256, RS256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const META: &str = "ent_smartcontent_sdk";

/// An org with product `events` and sandbox `prod`, an app in it with Adobe I/O's
/// meta-scope and `read`, a secret, and a resource that needs the meta-scope.
struct World {
    app: TestApp,
    org: String,
    client_id: String,
    secret: String,
    tech: String,
    resource: String,
}

async fn world_with(app: TestApp) -> World {
    let org = app.create_org(&["events"], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = app
        .create_app_with(
            json!({"org_id": org, "name": "Target sync", "scopes": [META, "read"],
            "products": ["events"], "sandboxes": {"prod": "read"}}),
        )
        .await;
    let client_id = a["client_id"].as_str().unwrap().to_owned();
    let tech = a["technical_account_id"].as_str().unwrap().to_owned();
    let (_, secret) = app.create_secret(&client_id).await;
    let resource = app
        .create_resource_id(
            &org,
            json!({"name": "Target admin API", "sandbox": "prod", "product": "events", "scopes": [META]}),
        )
        .await;
    World {
        app,
        org,
        client_id,
        secret,
        tech,
        resource,
    }
}

async fn world() -> World {
    world_with(TestApp::spawn().await).await
}

impl World {
    /// Adobe I/O's JWT payload for this app.
    fn claims(&self) -> Value {
        json!({
            "exp": self.app.now() + 300,
            "iss": self.org,
            "sub": self.tech,
            "aud": format!("{}/c/{}", self.app.issuer, self.client_id),
            format!("{}/s/{META}", self.app.issuer): true,
        })
    }

    async fn exchange(&self, jwt: &str) -> reqwest::Response {
        self.exchange_as(&self.secret, jwt).await
    }

    async fn exchange_as(&self, secret: &str, jwt: &str) -> reqwest::Response {
        self.app
            .post_form(
                "/ims/exchange/jwt",
                &[
                    ("client_id", &self.client_id),
                    ("client_secret", secret),
                    ("jwt_token", jwt),
                ],
            )
            .await
    }

    /// The exchange refuses `jwt` with `error` (400: the secret was right); the description.
    async fn refused(&self, jwt: &str, error: &str) -> String {
        let status = StatusCode::BAD_REQUEST;
        let v = assert_oauth_error(self.exchange(jwt).await, status, error).await;
        v["error_description"].as_str().unwrap().to_owned()
    }

    async fn check(&self, token: &str, api_key: &str) -> reqwest::Response {
        self.app
            .http
            .get(
                self.app
                    .url(&format!("/gateway/v1/check?resource={}", self.resource)),
            )
            .bearer_auth(token)
            .header("x-api-key", api_key)
            .header("x-gw-ims-org-id", &self.org)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn certificates_are_uploaded_listed_read_and_deleted() {
    let w = world().await;
    let now = w.app.now();
    let rsa = TestCert::valid(RS256, now);
    let (status, created) = w.app.upload_certificate(&w.client_id, &rsa.pem).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &rsa.der);
    assert_eq!(created["fingerprint_sha256"], hex::encode(digest.as_ref()));
    assert_eq!(created["alg"], "RS256");
    assert_eq!(created["not_after"], now + 365 * 86_400);
    assert!(
        created["subject"]
            .as_str()
            .unwrap()
            .contains("Billing service account")
    );
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["public_jwk"]["kid"], created["id"]);
    assert_eq!(created["public_jwk"]["kty"], "RSA");
    assert!(created.get("pem").is_none() && created.get("secret").is_none());

    // The JSON form, for an EC P-256 certificate.
    let ec = TestCert::valid(ES256, now);
    let (status, second) = w
        .app
        .call(
            Method::POST,
            &format!("/admin/v1/apps/{}/certificates", w.client_id),
            Some(json!({"pem": ec.pem})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["alg"], "ES256");
    assert_eq!(second["public_jwk"]["crv"], "P-256");

    // The same certificate twice is a conflict.
    let (status, _) = w.app.upload_certificate(&w.client_id, &ec.pem).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let path = format!("/admin/v1/apps/{}/certificates", w.client_id);
    let listed = w.app.walk_pages(&path, 1).await;
    assert_eq!(listed.len(), 2);
    for c in &listed {
        assert_eq!(c["fingerprint_sha256"].as_str().unwrap().len(), 64);
        assert!(c["not_after"].as_i64().unwrap() > now);
    }
    let id = created["id"].as_str().unwrap();
    let (status, read) = w.app.call(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);
    let (status, _) = w
        .app
        .call(Method::DELETE, &format!("{path}/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = w
        .app
        .admin(Method::GET, &format!("{path}/{id}"), None)
        .await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    assert_eq!(
        ids(&w.app.walk_pages(&path, 10).await, "id"),
        vec![second["id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn uploads_that_are_not_one_valid_certificate_are_refused_with_what_to_do() {
    let w = world().await;
    let now = w.app.now();
    let good = TestCert::valid(ES256, now);
    let other = TestCert::valid(RS256, now);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            TestCert::new(ES256, now - 7200, now - 60).pem,
            "expired at",
        ),
        (
            "not yet valid",
            TestCert::new(ES256, now + 3600, now + 7200).pem,
            "not valid before",
        ),
        (
            "a private key",
            good.key_pem.clone(),
            "Never send a private key",
        ),
        (
            "a certificate and its key",
            format!("{}{}", good.pem, good.key_pem),
            "Never send a private key",
        ),
        (
            "two certificates",
            format!("{}{}", good.pem, other.pem),
            "one at a time",
        ),
        (
            "garbage",
            "hello, this is my certificate".into(),
            "No PEM certificate",
        ),
        (
            "broken base64",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".into(),
            "could not be parsed",
        ),
        ("empty", String::new(), "No PEM certificate"),
    ];
    for (what, pem, says) in cases {
        // The first line of base64 inside the upload, if any: never echoed back.
        let inner = pem.lines().nth(1).unwrap_or("").to_owned();
        let r = w
            .app
            .http
            .post(
                w.app
                    .url(&format!("/admin/v1/apps/{}/certificates", w.client_id)),
            )
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/x-pem-file")
            .body(pem)
            .send()
            .await
            .unwrap();
        let v = assert_problem(r, StatusCode::BAD_REQUEST).await;
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{what}: {detail}");
        assert!(
            inner.len() < 8 || !detail.contains(&inner),
            "{what}: the detail echoes no PEM: {detail}"
        );
    }
    // Nothing was stored by any refusal.
    let path = format!("/admin/v1/apps/{}/certificates", w.client_id);
    assert!(w.app.walk_pages(&path, 10).await.is_empty());
    // The wrong media type is 415 and says which ones to use.
    let r = w
        .app
        .http
        .post(w.app.url(&path))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body(good.pem.clone())
        .send()
        .await
        .unwrap();
    let v = assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("application/x-pem-file")
    );
}

#[tokio::test]
async fn adobe_io_exchange_field_for_field_and_the_token_works_at_the_gateway() {
    let w = world().await;
    let cert = TestCert::valid(RS256, w.app.now());
    w.app.certificate_id(&w.client_id, &cert.pem).await;
    // Adobe I/O's JWT: header {"typ": "JWT", "alg": "RS256"}, no kid, no jti.
    let jwt = cert.sign(None, &w.claims());
    assert!(header(&jwt).get("kid").is_none());
    let r = w.exchange(&jwt).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 86_400_000, "milliseconds, 24 h");
    let token = v["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["scope"], META);
    assert_eq!(c["client_id"], w.client_id.as_str());
    assert_eq!(c["sub"], w.tech.as_str());
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        86_400
    );

    // The same JWT may be exchanged again until it expires (Adobe I/O's clients reuse it).
    assert_eq!(w.exchange(&jwt).await.status(), StatusCode::OK);

    // An ordinary access token at the gateway.
    let r = w.check(token, &w.client_id).await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);

    // A known Adobe I/O confusion: the same token with another app's API key is 403003, and
    // the detail says which client the token was issued to.
    let other = w.app.create_app(&w.org, &["read"]).await;
    let r = w.check(token, other["client_id"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["x-portcullis-code"], "403003");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_code"], "403003");
    assert_eq!(body["message"], "Api Key is invalid");
    assert!(
        body["detail"].as_str().unwrap().contains(&w.client_id),
        "{body}"
    );
}

#[tokio::test]
async fn an_es256_certificate_a_kid_and_the_apps_own_lifetime_work_too() {
    let w = world().await;
    let (status, _) = w
        .app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{}", w.client_id),
            Some(json!({"token_ttl_seconds": 600})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cert = TestCert::valid(ES256, w.app.now());
    let kid = w.app.certificate_id(&w.client_id, &cert.pem).await;
    let mut claims = w.claims();
    claims[format!("{}/s/read", w.app.issuer)] = json!(true);
    let r = w.exchange(&cert.sign(Some(&kid), &claims)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 600_000);
    assert_eq!(
        common::claims(v["access_token"].as_str().unwrap())["scope"],
        format!("{META} read")
    );
}

#[tokio::test]
async fn every_refusal_of_the_exchange_says_what_was_wrong_and_how_to_fix_it() {
    let w = world().await;
    let now = w.app.now();
    let cert = TestCert::valid(RS256, now);
    let kid = w.app.certificate_id(&w.client_id, &cert.pem).await;
    let stranger = TestCert::valid(RS256, now);
    let iss = w.app.issuer.clone();
    let with = |k: &str, v: Value| {
        let mut c = w.claims();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = w.claims();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let bad = |c: &Value| cert.sign(None, c);
    let t = StatusCode::BAD_REQUEST;

    // Claims: each wrong one, and the exact description it gets (or a part of it).
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "wrong aud",
            with("aud", json!("https://ims-na1.adobelogin.com/c/x")),
            format!(
                "The JWT's aud is 'https://ims-na1.adobelogin.com/c/x'; it must be '{iss}/c/{}'.",
                w.client_id
            ),
        ),
        (
            "wrong iss",
            with("iss", json!("0000@AdobeOrg")),
            format!(
                "The JWT's 'iss' is '0000@AdobeOrg'; it must be the app's organization id: '{}'.",
                w.org
            ),
        ),
        (
            "wrong sub",
            with("sub", json!("x@techacct.adobe.com")),
            format!(
                "The JWT's 'sub' is 'x@techacct.adobe.com'; it must be the app's technical account id: '{}'.",
                w.tech
            ),
        ),
        (
            "expired",
            with("exp", json!(now - 120)),
            "sign a new one".into(),
        ),
        (
            "over-long expiry",
            with("exp", json!(now + 2 * 86_400)),
            "at most 86400 s (24 h) is accepted".into(),
        ),
        (
            "no exp",
            without("exp"),
            "The JWT has no 'exp' claim".into(),
        ),
        (
            "nbf in the future",
            with("nbf", json!(now + 600)),
            "The JWT is not valid yet".into(),
        ),
        (
            "iat in the future",
            with("iat", json!(now + 600)),
            "The JWT's iat is".into(),
        ),
    ];
    for (what, c, says) in cases {
        let d = w.refused(&bad(&c), "invalid_token").await;
        assert!(d.contains(&says), "{what}: {d}");
    }

    // Scopes: one the app lacks, and the forum user's claim for another server.
    let d = w
        .refused(
            &bad(&with(
                &format!("{iss}/s/ent_analytics_bulk_ingest_sdk"),
                json!(true),
            )),
            "invalid_scope",
        )
        .await;
    assert!(
        d.starts_with("The meta-scope 'ent_analytics_bulk_ingest_sdk' is not granted to this app")
            && d.contains(&format!("PATCH /admin/v1/apps/{}", w.client_id)),
        "{d}"
    );
    let mut forum = without(&format!("{iss}/s/{META}"));
    forum["https://ims-na1.adobelogin.com/s/example_sdk"] = json!(true);
    let d = w.refused(&bad(&forum), "invalid_scope").await;
    assert!(
        d.contains("https://ims-na1.adobelogin.com/s/example_sdk")
            && d.contains(&format!("{iss}/s/<scope>")),
        "{d}"
    );
    let d = w
        .refused(
            &bad(&with(&format!("{iss}/s/{META}"), json!(false))),
            "invalid_token",
        )
        .await;
    assert!(d.contains("must have the value true"), "{d}");

    // Keys and algorithms.
    let d = w
        .refused(&stranger.sign(None, &w.claims()), "invalid_token")
        .await;
    assert!(
        d.contains("does not verify with any certificate") && d.contains(&kid),
        "{d}"
    );
    let d = w
        .refused(&stranger.sign(Some(&kid), &w.claims()), "invalid_token")
        .await;
    assert_eq!(
        d,
        format!("The JWT's signature does not verify with the key '{kid}'.")
    );
    let d = w
        .refused(
            &stranger.sign(Some("key_0000000000000000"), &w.claims()),
            "invalid_token",
        )
        .await;
    assert_eq!(
        d,
        "No key of the application has the kid 'key_0000000000000000'."
    );
    for kid in [None, Some(kid.as_str())] {
        let mut h = json!({"alg": "none", "typ": "JWT"});
        if let Some(k) = kid {
            h["kid"] = json!(k);
        }
        let d = w
            .refused(&forged_jwt(&h, &w.claims(), b""), "invalid_token")
            .await;
        assert!(!d.is_empty());
        let d = w
            .refused(
                &hs256_jwt(kid, &w.claims(), cert.pem.as_bytes()),
                "invalid_token",
            )
            .await;
        assert!(
            d.contains("not allowed") || d.contains("does not verify"),
            "{d}"
        );
    }
    let d = w.refused("not-a-jwt", "invalid_token").await;
    assert!(d.contains("not a signed JWT"), "{d}");

    // The client secret comes first: a wrong one is invalid_client with WWW-Authenticate.
    let r = w.exchange_as("pcss_wrong", &bad(&w.claims())).await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = w
        .app
        .post_form(
            "/ims/exchange/jwt",
            &[("client_id", &w.client_id), ("client_secret", &w.secret)],
        )
        .await;
    let v = assert_oauth_error(r, t, "invalid_token").await;
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("jwt_token")
    );
}

#[tokio::test]
async fn a_deleted_or_expired_certificate_ends_the_exchange() {
    let w = world_with(
        TestApp::spawn_with(Options {
            manual_clock: true,
            ..Default::default()
        })
        .await,
    )
    .await;
    let now = w.app.now();
    // No certificate yet: the description says how to upload one.
    let cert = TestCert::new(RS256, now - 60, now + 3600);
    let d = w
        .refused(&cert.sign(None, &w.claims()), "invalid_token")
        .await;
    assert!(
        d.contains(&format!("POST /admin/v1/apps/{}/certificates", w.client_id)),
        "{d}"
    );

    let kid = w.app.certificate_id(&w.client_id, &cert.pem).await;
    assert_eq!(
        w.exchange(&cert.sign(None, &w.claims())).await.status(),
        StatusCode::OK
    );

    // Past the certificate's not_after, its key verifies nothing.
    w.app.clock.as_ref().unwrap().advance(3601);
    let d = w
        .refused(&cert.sign(None, &w.claims()), "invalid_token")
        .await;
    assert!(
        d.contains(&kid) && d.contains("past its expiry date"),
        "{d}"
    );

    // Deleted: the next exchange fails.
    w.app.clock.as_ref().unwrap().set(now);
    let second = TestCert::new(ES256, now - 60, now + 3600);
    let kid2 = w.app.certificate_id(&w.client_id, &second.pem).await;
    assert_eq!(
        w.exchange(&second.sign(Some(&kid2), &w.claims()))
            .await
            .status(),
        StatusCode::OK
    );
    let (status, _) = w
        .app
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{}/certificates/{kid2}", w.client_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let d = w
        .refused(&second.sign(Some(&kid2), &w.claims()), "invalid_token")
        .await;
    assert_eq!(
        d,
        format!("No key of the application has the kid '{kid2}'.")
    );
}

#[tokio::test]
async fn ims_token_v3_is_client_credentials_for_24_hours() {
    let w = world().await;
    let r = w
        .app
        .post_form(
            "/ims/token/v3",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &w.client_id),
                ("client_secret", &w.secret),
                ("scope", &format!("read,{META}")),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 86_400, "seconds");
    assert_eq!(v["scope"], format!("{META} read"));
    let token = v["access_token"].as_str().unwrap();
    assert_eq!(w.check(token, &w.client_id).await.status(), StatusCode::OK);

    let r = w
        .app
        .post_form(
            "/ims/token/v3",
            &[
                ("grant_type", "password"),
                ("client_id", &w.client_id),
                ("client_secret", &w.secret),
            ],
        )
        .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let r = w
        .app
        .post_form(
            "/ims/token/v3",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &w.client_id),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}
