//! RFC 7523 at `/oauth/token`, black-box: the jwt-bearer grant and `private_key_jwt`
//! client authentication, with keys from `rcgen` and JWTs from `jsonwebtoken`. fosite's
//! RFC 7523 negative matrix is the checklist: expired, over-long expiry, wrong key,
//! unknown kid, wrong aud/iss/sub, replayed jti, nbf/iat in the future, alg none, HS256
//! keyed with the public key.

use crate::common;

use common::*;
use jsonwebtoken::Algorithm::{ES256, RS256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct World {
    app: TestApp,
    org: String,
    client_id: String,
    tech: String,
    cert: TestCert,
    kid: String,
}

async fn world(alg: jsonwebtoken::Algorithm) -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = app.create_app(&org, &["read", "write"]).await;
    let client_id = a["client_id"].as_str().unwrap().to_owned();
    let tech = a["technical_account_id"].as_str().unwrap().to_owned();
    let cert = TestCert::valid(alg, app.now());
    let kid = app.certificate_id(&client_id, &cert.pem).await;
    World {
        app,
        org,
        client_id,
        tech,
        cert,
        kid,
    }
}

fn jti() -> String {
    hex::encode(
        aws_lc_rs::rand::generate::<[u8; 16]>(&aws_lc_rs::rand::SystemRandom::new())
            .unwrap()
            .expose(),
    )
}

impl World {
    fn endpoint(&self) -> String {
        format!("{}/oauth/token", self.app.issuer)
    }

    /// The grant's assertion claims (sub = technical account id).
    fn grant_claims(&self) -> Value {
        let now = self.app.now();
        json!({"iss": self.client_id, "sub": self.tech, "aud": self.endpoint(),
            "exp": now + 300, "iat": now, "jti": jti()})
    }

    /// A client assertion's claims (sub = client id).
    fn client_claims(&self) -> Value {
        let mut c = self.grant_claims();
        c["sub"] = json!(self.client_id);
        c
    }

    fn signed(&self, claims: &Value) -> String {
        self.cert.sign(Some(&self.kid), claims)
    }

    async fn grant(&self, assertion: &str) -> reqwest::Response {
        self.app
            .post_form(
                "/oauth/token",
                &[("grant_type", GRANT), ("assertion", assertion)],
            )
            .await
    }

    async fn client_credentials(&self, assertion: &str) -> reqwest::Response {
        self.app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", assertion),
                ],
            )
            .await
    }
}

#[tokio::test]
async fn discovery_advertises_the_jwt_bearer_grant_and_private_key_jwt() {
    let app = TestApp::spawn().await;
    let v = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        v["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
    assert!(
        v["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        v["token_endpoint_auth_signing_alg_values_supported"],
        json!(["ES256", "RS256"])
    );
}

#[tokio::test]
async fn the_jwt_bearer_grant_issues_a_token_once_per_jti() {
    for alg in [ES256, RS256] {
        let w = world(alg).await;
        let assertion = w.signed(&w.grant_claims());
        let r = w.grant(&assertion).await;
        assert_eq!(r.status(), StatusCode::OK, "{alg:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);
        assert_eq!(v["scope"], "read write");
        let c = claims(v["access_token"].as_str().unwrap());
        assert_eq!(c["client_id"], w.client_id.as_str());
        assert_eq!(c["sub"], w.tech.as_str());
        assert_eq!(c["cred"], w.kid.as_str(), "the key is the credential");

        // The same assertion again: its jti was used.
        let d = oauth_description(
            w.grant(&assertion).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(d.contains("was used before"), "{d}");

        // aud = the issuer is accepted too, and scope narrows.
        let mut c = w.grant_claims();
        c["aud"] = json!(w.app.issuer);
        let r = w
            .app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", GRANT),
                    ("assertion", &w.signed(&c)),
                    ("scope", "read"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["scope"], "read");
    }
}

/// fosite's RFC 7523 matrix, for the grant (`invalid_grant`, 400) and for client
/// authentication (`invalid_client`, 401): each case and a part of its description.
fn matrix(w: &World, base: &Value, other: &TestCert) -> Vec<(&'static str, String, String)> {
    let now = w.app.now();
    let with = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        w.signed(&c)
    };
    let without = |k: &str| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().remove(k);
        w.signed(&c)
    };
    let mut hs_claims = base.clone();
    hs_claims["jti"] = json!(jti());
    vec![
        ("expired", with("exp", json!(now - 120)), "expired".into()),
        (
            "over-long expiry",
            with("exp", json!(now + 86_400 + 3600)),
            "at most 86400 s".into(),
        ),
        ("no exp", without("exp"), "no 'exp' claim".into()),
        (
            "wrong key",
            other.sign(Some(&w.kid), base),
            format!("does not verify with the key '{}'", w.kid),
        ),
        (
            "unknown kid",
            other.sign(Some("key_0000000000000000"), base),
            "no key of the application has the kid 'key_0000000000000000'".into(),
        ),
        (
            "no kid, signed by no key of the app",
            other.sign(None, base),
            "none of the application's keys verifies it".into(),
        ),
        (
            "wrong aud",
            with("aud", json!("https://elsewhere.example/token")),
            format!("it must be '{}'", w.endpoint()),
        ),
        (
            "nbf in the future",
            with("nbf", json!(now + 600)),
            "not valid yet".into(),
        ),
        (
            "iat in the future",
            with("iat", json!(now + 600)),
            "iat is".into(),
        ),
        ("no jti", without("jti"), "no 'jti' claim".into()),
        (
            "alg none",
            forged_jwt(&json!({"alg": "none", "kid": w.kid}), base, b""),
            "not".into(),
        ),
        (
            "HS256 keyed with the public key",
            hs256_jwt(Some(&w.kid), &hs_claims, w.cert.pem.as_bytes()),
            "not allowed".into(),
        ),
        ("not a JWT", "a.b".into(), "not a JWT".into()),
    ]
}

#[tokio::test]
async fn the_grant_refuses_every_case_of_the_matrix_with_invalid_grant() {
    let w = world(RS256).await;
    let other = TestCert::valid(RS256, w.app.now());
    let base = w.grant_claims();
    for (what, assertion, says) in matrix(&w, &base, &other) {
        let d = oauth_description(
            w.grant(&assertion).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(
            d.to_lowercase().contains(&says.to_lowercase()),
            "{what}: {d}"
        );
    }
    // Wrong iss (another app, which has no such key) and wrong sub.
    let other_app = w.app.create_app(&w.org, &["read"]).await;
    let mut c = w.grant_claims();
    c["iss"] = other_app["client_id"].clone();
    let d = oauth_description(
        w.grant(&w.signed(&c)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("no key of the application has the kid"), "{d}");
    let mut c = w.grant_claims();
    c["sub"] = json!(w.client_id);
    let d = oauth_description(
        w.grant(&w.signed(&c)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(
        d.contains(&format!(
            "it must be the app's technical account id: '{}'",
            w.tech
        )),
        "{d}"
    );
    // A scope the app lacks.
    let r = w
        .app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", GRANT),
                ("assertion", &w.signed(&w.grant_claims())),
                ("scope", "admin"),
            ],
        )
        .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // The assertion is missing.
    let r = w
        .app
        .post_form("/oauth/token", &[("grant_type", GRANT)])
        .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn private_key_jwt_authenticates_client_credentials_and_refuses_the_matrix() {
    let w = world(ES256).await;
    let r = w.client_credentials(&w.signed(&w.client_claims())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&token)["cred"], w.kid.as_str());

    let other = TestCert::valid(ES256, w.app.now());
    let base = w.client_claims();
    for (what, assertion, says) in matrix(&w, &base, &other) {
        let r = w.client_credentials(&assertion).await;
        assert!(r.headers().contains_key("www-authenticate"), "{what}");
        let d = oauth_description(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert!(
            d.to_lowercase().contains(&says.to_lowercase()),
            "{what}: {d}"
        );
    }
    // Replayed, sub not the client id, the wrong assertion type, two methods at once.
    let assertion = w.signed(&w.client_claims());
    assert_eq!(
        w.client_credentials(&assertion).await.status(),
        StatusCode::OK
    );
    let d = oauth_description(
        w.client_credentials(&assertion).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(d.contains("was used before"), "{d}");
    let d = oauth_description(
        w.client_credentials(&w.signed(&w.grant_claims())).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
    )
    .await;
    assert!(d.contains("'sub'"), "{d}");
    let r = w
        .app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:x"),
                ("client_assertion", &w.signed(&w.client_claims())),
            ],
        )
        .await;
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = w
        .app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &w.signed(&w.client_claims())),
                ("client_secret", "pcss_x"),
            ],
        )
        .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn deleting_the_certificate_ends_the_tokens_obtained_with_it() {
    let w = world(RS256).await;
    let r = w.grant(&w.signed(&w.grant_claims())).await;
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // An introspecting app of the same org.
    let intro = w.app.create_app(&w.org, &["introspect"]).await;
    let intro_id = intro["client_id"].as_str().unwrap();
    let (_, intro_secret) = w.app.create_secret(intro_id).await;
    let active = |v: Value| v["active"].as_bool().unwrap();
    let v: Value = w
        .app
        .introspect(intro_id, &intro_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(active(v));
    let (status, _) = w
        .app
        .call(
            Method::DELETE,
            &format!("/admin/v1/apps/{}/certificates/{}", w.client_id, w.kid),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let v: Value = w
        .app
        .introspect(intro_id, &intro_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(!active(v), "the token's credential is gone");
    let d = oauth_description(
        w.grant(&w.signed(&w.grant_claims())).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(d.contains(&w.kid), "{d}");
}
