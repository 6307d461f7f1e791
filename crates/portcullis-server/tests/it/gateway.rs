//! `/gateway/v1/check` against the real server: allow with the upstream headers, and the
//! catalogue's denials with their problem body and `x-portcullis-*` headers.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct World {
    app: TestApp,
    org: String,
    client_id: String,
    secret: String,
    resource: String,
}

async fn world(allow_unauthenticated: bool) -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org(&["events"], &["prod"]).await;
    let org = org["id"].as_str().unwrap().to_owned();
    let r = app
        .admin(
            Method::POST,
            "/admin/v1/apps",
            Some(
                json!({"org_id": org, "name": "caller", "scopes": ["read", "write"],
                "products": ["events"], "sandboxes": {"prod": "read"}}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let client_id = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, secret) = app.create_secret(&client_id).await;
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/resources"),
            Some(
                json!({"name": "datastream", "sandbox": "prod", "product": "events",
                "scopes": ["read"], "allow_unauthenticated": allow_unauthenticated}),
            ),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let resource = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        app,
        org,
        client_id,
        secret,
        resource,
    }
}

impl World {
    fn check(&self, method: Method) -> reqwest::RequestBuilder {
        self.app.http.request(
            method,
            self.app
                .url(&format!("/gateway/v1/check?resource={}", self.resource)),
        )
    }
}

async fn assert_denied(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(r.headers()["x-portcullis-code"], code);
    let detail_header = r.headers()["x-portcullis-detail"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code);
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:portcullis:error:")
    );
    assert!(!detail_header.is_empty());
    body
}

#[tokio::test]
async fn a_valid_token_is_allowed_with_the_upstream_headers() {
    let w = world(false).await;
    let token = w.app.access_token(&w.client_id, &w.secret, None).await;
    let r = w
        .check(Method::GET)
        .bearer_auth(&token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-client-id"], w.client_id.as_str());
    assert_eq!(r.headers()["x-portcullis-org"], w.org.as_str());
    assert_eq!(r.headers()["x-portcullis-scope"], "read write");
    assert_eq!(r.headers()["x-portcullis-authenticated"], "true");
    assert!(
        r.text().await.unwrap().is_empty(),
        "Envoy's HTTP mode wants an empty body"
    );

    // The resource as a path segment, the method from X-Forwarded-Method: a write.
    let r = w
        .app
        .http
        .get(
            w.app
                .url(&format!("/gateway/v1/check/{}/v1/things", w.resource)),
        )
        .bearer_auth(&token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .header("x-forwarded-method", "POST")
        .send()
        .await
        .unwrap();
    assert_denied(r, 401, "EXEG-0506-401").await;
}

#[tokio::test]
async fn adobe_ios_403003_says_whose_token_it_is() {
    let w = world(false).await;
    let token = w.app.access_token(&w.client_id, &w.secret, None).await;
    let other = w.app.create_app(&w.org, &["read"]).await;
    let other_id = other["client_id"].as_str().unwrap();
    let r = w
        .check(Method::GET)
        .bearer_auth(&token)
        .header("x-api-key", other_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = assert_denied(r, 403, "403003").await;
    assert_eq!(body["error_code"], "403003");
    assert_eq!(body["message"], "Api Key is invalid");
    assert!(body["detail"].as_str().unwrap().contains(&w.client_id));
}

#[tokio::test]
async fn revocation_is_refused_at_the_gateway_at_once() {
    let w = world(false).await;
    let token = w.app.access_token(&w.client_id, &w.secret, None).await;
    let send = || {
        w.check(Method::GET)
            .bearer_auth(&token)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        w.app.revoke(&w.client_id, &w.secret, &token).await.status(),
        StatusCode::OK
    );
    let body = assert_denied(send().await.unwrap(), 401, "EXEG-0502-401").await;
    assert!(body["detail"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn missing_credentials_typos_and_unauthenticated_resources() {
    let w = world(false).await;
    assert_denied(
        w.check(Method::GET).send().await.unwrap(),
        401,
        "EXEG-0500-401",
    )
    .await;
    let r = w
        .check(Method::GET)
        .header("Authentication", "Bearar abc")
        .send()
        .await
        .unwrap();
    let body = assert_denied(r, 401, "EXEG-0500-401").await;
    assert!(body["detail"].as_str().unwrap().contains("'Authorization'"));
    let r = w
        .app
        .http
        .get(w.app.url("/gateway/v1/check?resource=res_0000000000000000"))
        .send()
        .await
        .unwrap();
    assert_denied(r, 404, "PCS-0404-404").await;

    let open = world(true).await;
    let r = open.check(Method::POST).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-portcullis-authenticated"], "false");
    // Presented credentials are still checked.
    let r = open
        .check(Method::GET)
        .bearer_auth("a.b.c")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn resources_are_validated_against_their_org_and_deleted_with_it() {
    let w = world(false).await;
    let path = format!("/admin/v1/orgs/{}/resources", w.org);
    for (body, names) in [
        (json!({"name": "r", "sandbox": "dev"}), "'dev'"),
        (json!({"name": "r", "product": "billing"}), "'billing'"),
        (
            json!({"name": "r", "cors_origins": ["https://a.example/path"]}),
            "https://a.example/path",
        ),
        (json!({"name": "r", "scopes": ["bad scope"]}), "bad scope"),
    ] {
        let r = w.app.admin(Method::POST, &path, Some(body)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let p: Value = r.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains(names), "{p}");
    }
    let one = format!("{path}/{}", w.resource);
    let r = w
        .app
        .admin(
            Method::PATCH,
            &one,
            Some(json!({"allow_unauthenticated": true, "product": null})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["allow_unauthenticated"], true);
    assert_eq!(v["product"], Value::Null);
    // The gateway sees the change at once.
    assert_eq!(
        w.check(Method::GET).send().await.unwrap().status(),
        StatusCode::OK
    );

    let r = w
        .app
        .admin(Method::DELETE, &format!("/admin/v1/orgs/{}", w.org), None)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = w.check(Method::GET).send().await.unwrap();
    assert_denied(r, 404, "PCS-0404-404").await;
}
