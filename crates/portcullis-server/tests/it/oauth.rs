//! Black-box tests of the OAuth 2.0 surface against the real server.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn client_secret_basic_and_post_both_issue_tokens() {
    let app = TestApp::spawn().await;
    let (cid, secret, org) = app.client(&["read", "write"]).await;

    let basic = app.token(&cid, &secret, None).await;
    assert_eq!(basic.status(), StatusCode::OK);
    assert_eq!(basic.headers()["cache-control"], "no-store");
    let body: Value = basic.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap();
    let h = header(token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    let c = claims(token);
    assert_eq!(c["client_id"], cid);
    assert_eq!(c["org"], org);
    assert_eq!(c["iss"], app.issuer);
    assert_eq!(c["aud"], app.issuer);
    assert!(c["sub"].as_str().unwrap().ends_with("@techacct.portcullis"));
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );

    let post = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cid.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let body: Value = post.json().await.unwrap();
    assert_ne!(
        body["access_token"].as_str().unwrap(),
        token,
        "each token has its own jti"
    );
}

#[tokio::test]
async fn scope_narrows_and_unknown_scope_is_invalid_scope() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read", "write"]).await;
    let r = app.token(&cid, &secret, Some("read")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scope"],
        "read"
    );

    let r = app.token(&cid, &secret, Some("read delete")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("delete")
    );
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    // A well-formed secret that is not this app's.
    let (other_cid, other_secret, _) = app.client(&["read"]).await;
    let r = app.token(&cid, &other_secret, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // A typo is refused by the checksum, and the description says so.
    let mut typo = secret.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let r = app.token(&cid, &typo, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains("checksum") || d.contains("base58"), "{d}");
    assert!(
        !d.contains(&typo),
        "the description must not echo the secret"
    );

    // Unknown client.
    let r = app
        .token("0123456789abcdef0123456789abcdef", &secret, None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let _ = other_cid;
}

#[tokio::test]
async fn introspection_answers_for_own_org_and_revocation_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await;
    let org_id = org["id"].as_str().unwrap();
    let caller = app.create_app(org_id, &["introspect"]).await;
    let caller_id = caller["client_id"].as_str().unwrap();
    let (_, caller_secret) = app.create_secret(caller_id).await;
    let client = app.create_app(org_id, &["read"]).await;
    let cid = client["client_id"].as_str().unwrap();
    let (_, secret) = app.create_secret(cid).await;
    let token = app.access_token(cid, &secret, None).await;

    let r = app.introspect(caller_id, &caller_secret, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], cid);
    assert_eq!(body["scope"], "read");

    // An app without the introspect scope: 403.
    let r = app.introspect(cid, &secret, &token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Another org's introspector sees nothing.
    let (other_cid, other_secret, _) = app.client(&["introspect"]).await;
    let body: Value = app
        .introspect(&other_cid, &other_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));

    // Revoke: inactive at once.
    let r = app.revoke(cid, &secret, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = app
        .introspect(caller_id, &caller_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn deleting_the_secret_makes_its_tokens_inactive() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await;
    let org_id = org["id"].as_str().unwrap();
    let caller = app.create_app(org_id, &["introspect"]).await;
    let caller_id = caller["client_id"].as_str().unwrap();
    let (_, caller_secret) = app.create_secret(caller_id).await;
    let client = app.create_app(org_id, &["read"]).await;
    let cid = client["client_id"].as_str().unwrap();
    let (sid, secret) = app.create_secret(cid).await;
    let (_, second) = app.create_secret(cid).await;
    let token = app.access_token(cid, &secret, None).await;
    let token2 = app.access_token(cid, &second, None).await;

    let r = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/v1/apps/{cid}/secrets/{sid}"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let body: Value = app
        .introspect(caller_id, &caller_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);
    // The other secret (rotation with overlap) and its token still work.
    let body: Value = app
        .introspect(caller_id, &caller_secret, &token2)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(
        app.token(cid, &secret, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.token(cid, &second, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_app_cannot_revoke_another_apps_token_without_admin() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await;
    let org_id = org["id"].as_str().unwrap();
    let a = app.create_app(org_id, &["read"]).await;
    let a_id = a["client_id"].as_str().unwrap();
    let (_, a_secret) = app.create_secret(a_id).await;
    let b = app.create_app(org_id, &["read"]).await;
    let b_id = b["client_id"].as_str().unwrap();
    let (_, b_secret) = app.create_secret(b_id).await;
    let admin = app.create_app(org_id, &["admin", "introspect"]).await;
    let admin_id = admin["client_id"].as_str().unwrap();
    let (_, admin_secret) = app.create_secret(admin_id).await;

    let token = app.access_token(a_id, &a_secret, None).await;
    // Another app's live token gets the answer garbage gets (RFC 7009 section 2.2), so the
    // answer does not tell live tokens apart; nothing is revoked.
    let r = app.revoke(b_id, &b_secret, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    let body: Value = app
        .introspect(admin_id, &admin_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);

    let r = app.revoke(admin_id, &admin_secret, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = app
        .introspect(admin_id, &admin_secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);

    // Revoking garbage is not an error (RFC 7009 section 2.2).
    assert_eq!(
        app.revoke(a_id, &a_secret, "not-a-token").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_tokens_are_inactive_exactly_at_exp() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let (cid, secret, _) = app.client(&["introspect"]).await;
    let token = app.access_token(&cid, &secret, None).await;
    let clock = app.clock.clone().unwrap();
    clock.advance(3599);
    let body: Value = app
        .introspect(&cid, &secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
    clock.advance(1);
    let body: Value = app
        .introspect(&cid, &secret, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], false);
}

#[tokio::test]
async fn key_rotation_old_tokens_verify_new_tokens_use_the_new_key() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["introspect"]).await;
    let old = app.access_token(&cid, &secret, None).await;
    let old_kid = header(&old)["kid"].as_str().unwrap().to_owned();

    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "current and next key are published");
    let next_kid = kids.iter().find(|k| **k != old_kid).unwrap().to_string();

    // Too early without force: the next key was only just published.
    let r = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/keys/rotate",
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let r = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/keys/rotate",
            Some(serde_json::json!({"force": true})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rot: Value = r.json().await.unwrap();
    assert_eq!(
        rot["current"],
        next_kid.as_str(),
        "the published next key becomes current"
    );
    assert_eq!(rot["retired"], old_kid.as_str());

    let new = app.access_token(&cid, &secret, None).await;
    assert_eq!(header(&new)["kid"], next_kid.as_str());
    for t in [&old, &new] {
        let body: Value = app.introspect(&cid, &secret, t).await.json().await.unwrap();
        assert_eq!(body["active"], true);
    }
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        3,
        "retired, current, next"
    );
}

#[tokio::test]
async fn discovery_lists_the_endpoints() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let v: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["issuer"], app.issuer);
        assert_eq!(v["token_endpoint"], format!("{}/oauth/token", app.issuer));
        assert!(
            v["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"client_credentials".into())
        );
        assert!(
            v["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&"client_secret_post".into())
        );
    }
}

#[tokio::test]
async fn secret_listing_shows_last_use_and_never_the_secret() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    let list: Value = app
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/apps/{cid}/secrets"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"][0]["last_used_at"],
        Value::Null,
        "not used yet"
    );
    app.access_token(&cid, &secret, None).await;
    let list: Value = app
        .admin(
            reqwest::Method::GET,
            &format!("/admin/v1/apps/{cid}/secrets"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let item = &list["items"][0];
    assert!(item["last_used_at"].as_i64().unwrap() >= item["created_at"].as_i64().unwrap());
    assert!(secret.starts_with(item["prefix"].as_str().unwrap()));
    assert!(!list.to_string().contains(&secret));
}
