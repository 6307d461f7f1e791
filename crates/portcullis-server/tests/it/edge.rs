//! The Edge Network intake against the real server:
//! `POST /ee/v2/interact` and `/ee/v2/collect` checked by the gateway decision as writes,
//! events stored append-only and listed by `GET /admin/v1/resources/{id}/events`, the
//! body limits and shapes, and CORS.

use crate::common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SHOP: &str = "https://shop.example";
const PASSWORD: &str = "correct horse battery staple";

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// An app of the world and the access token it sends.
struct Caller {
    client_id: String,
    token: String,
}

struct World {
    app: TestApp,
    org: String,
    /// Has `write` access to the resources' sandbox.
    writer: Caller,
    /// Has only `read` access to it.
    reader: Caller,
    /// Needs credentials; CORS for [`SHOP`].
    closed: String,
    /// Lets unauthenticated events in; CORS for [`SHOP`].
    open: String,
}

async fn caller(app: &TestApp, org: &str, access: &str) -> Caller {
    let a = app
        .create_app_with(json!({"org_id": org, "name": format!("{access} app"),
            "scopes": ["read", "write"], "products": ["events"], "sandboxes": {"prod": access}}))
        .await;
    let client_id = s(&a["client_id"]);
    let (_, secret) = app.create_secret(&client_id).await;
    let token = app.access_token(&client_id, &secret, None).await;
    Caller { client_id, token }
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = s(&app.create_org(&["events"], &["prod"]).await["id"]);
    let writer = caller(&app, &org, "write").await;
    let reader = caller(&app, &org, "read").await;
    let resource = |open: bool| {
        json!({"name": "datastream", "sandbox": "prod", "product": "events", "scopes": ["read"],
            "allow_unauthenticated": open, "cors_origins": [SHOP, "http://localhost:8080"]})
    };
    let closed = s(&app.create_resource(&org, resource(false)).await["id"]);
    let open = s(&app.create_resource(&org, resource(true)).await["id"]);
    World {
        app,
        org,
        writer,
        reader,
        closed,
        open,
    }
}

impl World {
    /// `POST /ee/v2/<endpoint>?datastreamId=<resource>` with a JSON body, no credentials.
    fn post(&self, endpoint: &str, resource: &str, body: &Value) -> reqwest::RequestBuilder {
        self.app
            .http
            .post(
                self.app
                    .url(&format!("/ee/v2/{endpoint}?datastreamId={resource}")),
            )
            .json(body)
    }

    /// The same, with the Edge Network's three authentication headers for `c`.
    fn post_as(
        &self,
        c: &Caller,
        endpoint: &str,
        resource: &str,
        body: &Value,
    ) -> reqwest::RequestBuilder {
        self.post(endpoint, resource, body)
            .bearer_auth(&c.token)
            .header("x-api-key", &c.client_id)
            .header("x-gw-ims-org-id", &self.org)
    }

    fn preflight(&self, endpoint: &str, resource: &str, origin: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(
                Method::OPTIONS,
                self.app
                    .url(&format!("/ee/v2/{endpoint}?datastreamId={resource}")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    }

    /// Every stored event of `resource`, as the bootstrap admin lists them.
    async fn events(&self, resource: &str) -> Vec<Value> {
        self.app
            .walk_pages_of(
                &format!("/admin/v1/resources/{resource}/events"),
                100,
                "events",
            )
            .await
    }
}

/// A denial from the gateway decision: status, code in body and header.
async fn assert_denied(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(
        r.headers()
            .get("x-portcullis-code")
            .map(|v| v.to_str().unwrap()),
        Some(code)
    );
    let p = assert_problem(r, status).await;
    assert_eq!(p["code"], code, "{p}");
    p
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn an_authenticated_interact_is_stored_and_listed_with_its_client() {
    let w = world().await;
    let event = json!({"xdm": {"eventType": "web.webpagedetails.pageViews",
        "web": {"webPageDetails": {"name": "Home"}}}, "data": {"n": 1.5, "ok": true}});
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let r = w
        .post_as(&w.writer, "interact", &w.closed, &json!({"event": event}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    let id = s(&body["requestId"]);
    assert!(is_uuid(&id), "requestId {id}");

    let events = w.events(&w.closed).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event"], event);
    assert_eq!(e["authenticated"], true);
    assert_eq!(e["client_id"], w.writer.client_id.as_str());
    assert!(e["id"].is_i64(), "{e}");
    let at = e["received_at"].as_i64().unwrap();
    assert!((before..before + 60).contains(&at), "received_at {at}");

    // Two requests get two request ids.
    let r = w
        .post_as(&w.writer, "interact", &w.closed, &json!({"event": {}}))
        .send()
        .await
        .unwrap();
    let second: Value = r.json().await.unwrap();
    assert_ne!(second["requestId"], body["requestId"]);
    assert_eq!(w.events(&w.closed).await.len(), 2);
}

#[tokio::test]
async fn the_intake_is_a_write_so_read_access_is_not_enough() {
    let w = world().await;
    for endpoint in ["interact", "collect"] {
        let body = if endpoint == "interact" {
            json!({"event": {"a": 1}})
        } else {
            json!({"events": [{"a": 1}]})
        };
        let r = w
            .post_as(&w.reader, endpoint, &w.closed, &body)
            .send()
            .await
            .unwrap();
        let p = assert_denied(r, StatusCode::UNAUTHORIZED, "EXEG-0506-401").await;
        assert_eq!(p["title"], "Sandbox not accessible for write");
    }
    assert!(w.events(&w.closed).await.is_empty());
    // The reader's token is otherwise fine: the gateway lets it read.
    let r = w
        .app
        .http
        .get(
            w.app
                .url(&format!("/gateway/v1/check?resource={}", w.closed)),
        )
        .bearer_auth(&w.reader.token)
        .header("x-api-key", &w.reader.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unauthenticated_events_pass_only_where_the_resource_allows_them() {
    let w = world().await;
    let r = w
        .post(
            "interact",
            &w.open,
            &json!({"event": {"visitor": "anonymous"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let events = w.events(&w.open).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["authenticated"], false);
    assert_eq!(events[0]["client_id"], Value::Null);
    assert_eq!(events[0]["event"], json!({"visitor": "anonymous"}));

    let r = w
        .post(
            "interact",
            &w.closed,
            &json!({"event": {"visitor": "anonymous"}}),
        )
        .send()
        .await
        .unwrap();
    assert_denied(r, StatusCode::UNAUTHORIZED, "EXEG-0500-401").await;
    assert!(w.events(&w.closed).await.is_empty());

    // Presented credentials are always checked, even where none are needed.
    let r = w
        .post("interact", &w.open, &json!({"event": {}}))
        .bearer_auth("not-a-token")
        .header("x-api-key", &w.writer.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(w.events(&w.open).await.len(), 1);
}

#[tokio::test]
async fn collect_stores_every_event_or_none() {
    let w = world().await;
    let batch = json!({"events": [{"n": 0}, {"n": 1, "xdm": {"a": [1, 2]}}, {"n": 2}]});
    let r = w
        .post_as(&w.writer, "collect", &w.closed, &batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.text().await.unwrap().is_empty());
    let events = w.events(&w.closed).await;
    let sent: Vec<Value> = events.iter().map(|e| e["event"].clone()).collect();
    assert_eq!(
        sent,
        batch["events"].as_array().unwrap().clone(),
        "in order"
    );
    assert!(
        events
            .iter()
            .all(|e| e["client_id"] == w.writer.client_id.as_str())
    );

    // One bad element: nothing of the batch is stored, and the detail names it.
    let r = w
        .post_as(
            &w.writer,
            "collect",
            &w.closed,
            &json!({"events": [{"n": 3}, "not an event", {"n": 4}]}),
        )
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
    let detail = s(&p["detail"]);
    assert!(detail.contains("events[1]"), "{detail}");
    for bad in [
        json!({"events": []}),
        json!({"events": {"n": 1}}),
        json!({"event": {}}),
    ] {
        let r = w
            .post_as(&w.writer, "collect", &w.closed, &bad)
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
        assert!(s(&p["detail"]).contains("{\"events\""), "{bad}: {p}");
    }
    assert_eq!(w.events(&w.closed).await.len(), 3);
}

#[tokio::test]
async fn bodies_that_are_too_large_malformed_or_not_json_are_refused() {
    let w = world().await;
    let url = w
        .app
        .url(&format!("/ee/v2/interact?datastreamId={}", w.open));
    let huge = format!(
        "{{\"event\": {{\"pad\": \"{}\"}}}}",
        "a".repeat(1024 * 1024)
    );
    let send = |ct: Option<&'static str>, body: Vec<u8>| {
        let mut req = w.app.http.post(&url).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let p = assert_problem(
        send(Some("application/json"), huge.into_bytes())
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(p["code"], "PCS-0413-413");
    let p = assert_problem(
        send(Some("application/json"), b"{\"event\": {".to_vec())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(s(&p["detail"]).contains("not valid JSON"), "{p}");
    for ct in [Some("text/plain"), None] {
        let p = assert_problem(
            send(ct, b"{\"event\": {}}".to_vec()).await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        assert!(s(&p["detail"]).contains("application/json"), "{p}");
    }
    let p = assert_problem(
        send(Some("application/json"), b"{\"event\": [1]}".to_vec())
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(s(&p["detail"]).contains("{\"event\""), "{p}");
    // Just under the limit is fine.
    let big = format!(
        "{{\"event\": {{\"pad\": \"{}\"}}}}",
        "a".repeat(1000 * 1024)
    );
    let r = send(Some("application/json"), big.into_bytes())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(w.events(&w.open).await.len(), 1);
}

#[tokio::test]
async fn the_datastream_is_named_in_any_case_and_must_be_named() {
    let w = world().await;
    for name in [
        "datastreamId",
        "datastreamid",
        "DatastreamId",
        "DATASTREAMID",
    ] {
        let r = w
            .app
            .http
            .post(w.app.url(&format!("/ee/v2/interact?{name}={}", w.open)))
            .json(&json!({"event": {"name": name}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}");
    }
    let names: Vec<Value> = w
        .events(&w.open)
        .await
        .iter()
        .map(|e| e["event"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![
            json!("datastreamId"),
            json!("datastreamid"),
            json!("DatastreamId"),
            json!("DATASTREAMID")
        ]
    );
    for q in ["", "?configId=x", "?datastreamId="] {
        let r = w
            .app
            .http
            .post(w.app.url(&format!("/ee/v2/collect{q}")))
            .json(&json!({"events": [{}]}))
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
        assert!(s(&p["detail"]).contains("datastreamId"), "{q}: {p}");
    }
    let r = w
        .post("interact", "res_0000000000000000", &json!({"event": {}}))
        .send()
        .await
        .unwrap();
    assert_denied(r, StatusCode::NOT_FOUND, "PCS-0404-404").await;
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_the_cors_headers() {
    let w = world().await;
    for endpoint in ["interact", "collect"] {
        let r = w.preflight(endpoint, &w.closed, SHOP).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{endpoint}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], SHOP);
        assert_eq!(h["vary"], "Origin");
        assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
        assert_eq!(
            h["access-control-allow-headers"],
            "authorization, content-type, x-api-key, x-gw-ims-org-id"
        );
        let max_age: u32 = h["access-control-max-age"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(max_age > 0);
    }

    // Not listed: no allow-origin, and a 403 problem.
    for origin in ["https://evil.example", "http://shop.example", "null"] {
        let r = w
            .preflight("interact", &w.closed, origin)
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert_eq!(r.headers()["vary"], "Origin");
        let p = assert_problem(r, StatusCode::FORBIDDEN).await;
        assert!(s(&p["detail"]).contains("cors_origins"), "{p}");
    }

    // `*` allows any origin, answered as `*`.
    let star = s(&w
        .app
        .create_resource(
            &w.org,
            json!({"name": "any", "sandbox": "prod", "allow_unauthenticated": true, "cors_origins": ["*"]}),
        )
        .await["id"]);
    let r = w
        .preflight("collect", &star, "https://anyone.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // A preflight is not a credentialed request: no credentials needed, even on a
    // resource that needs them for the POST (checked above on `closed`), and an
    // unknown datastream is the gateway's 404.
    let r = w
        .preflight("interact", "res_0000000000000000", SHOP)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn posts_carry_the_allow_origin_for_allowed_origins_allowed_or_denied() {
    let w = world().await;
    // Allowed request from an allowed origin.
    let r = w
        .post("interact", &w.open, &json!({"event": {}}))
        .header("origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_eq!(r.headers()["vary"], "Origin");

    // Denied (no credentials where they are needed): the browser can still read why.
    let r = w
        .post("interact", &w.closed, &json!({"event": {}}))
        .header("origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_denied(r, StatusCode::UNAUTHORIZED, "EXEG-0500-401").await;

    // A malformed body from an allowed origin, too.
    let r = w
        .post("collect", &w.open, &json!({"events": []}))
        .header("origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_problem(r, StatusCode::BAD_REQUEST).await;

    // Refusals made before the handler runs: an oversized body, a wrong method.
    let url = w
        .app
        .url(&format!("/ee/v2/collect?datastreamId={}", w.open));
    let r = w
        .app
        .http
        .post(&url)
        .header("origin", SHOP)
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    let r = w
        .app
        .http
        .get(&url)
        .header("origin", SHOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED).await;

    // Another origin gets no allow-origin (the browser hides the answer), though the
    // request itself is decided as usual.
    let r = w
        .post("interact", &w.open, &json!({"event": {}}))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_events_listing_pages_and_is_limited_to_readers_of_the_org() {
    let w = world().await;
    let batch: Vec<Value> = (0..5).map(|n| json!({"n": n})).collect();
    let r = w
        .post_as(&w.writer, "collect", &w.closed, &json!({"events": batch}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let path = format!("/admin/v1/resources/{}/events", w.closed);
    let walked = w.app.walk_pages_of(&path, 2, "events").await;
    let ns: Vec<Value> = walked.iter().map(|e| e["event"]["n"].clone()).collect();
    assert_eq!(ns, (0..5).map(|n| json!(n)).collect::<Vec<_>>());
    let ids: Vec<i64> = walked.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "{ids:?}");

    let (status, first) = w
        .app
        .call(Method::GET, &format!("{path}?limit=2"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    assert_eq!(first["next"], ids[1].to_string());
    let (_, last) = w
        .app
        .call(Method::GET, &format!("{path}?after={}", ids[4]), None)
        .await;
    assert_eq!(last, json!({"events": [], "next": null}));
    for q in ["after=abc", "limit=0", "colour=blue"] {
        let r = w.app.admin(Method::GET, &format!("{path}?{q}"), None).await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }

    // A developer of the org reads them; someone of another org does not see them.
    w.app
        .create_user(
            "dev@example.com",
            PASSWORD,
            json!({w.org.clone(): "developer"}),
        )
        .await;
    let dev = w.app.session("dev@example.com", PASSWORD).await;
    let (status, v) = w.app.call_as(&dev, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 5);
    let other = s(&w.app.create_org(&[], &["prod"]).await["id"]);
    w.app
        .create_user("stranger@example.com", PASSWORD, json!({other: "admin"}))
        .await;
    let stranger = w.app.session("stranger@example.com", PASSWORD).await;
    let r = w.app.admin_as(&stranger, Method::GET, &path, None).await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    // An app's access token without the admin scope is not an admin caller.
    let r = w
        .app
        .admin_as(&w.writer.token, Method::GET, &path, None)
        .await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    let r = w.app.http.get(w.app.url(&path)).send().await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    // An app with the admin scope in the org reads them.
    let admin_app = w
        .app
        .create_app_with(json!({"org_id": w.org, "name": "ops", "scopes": ["admin"]}))
        .await;
    let cid = s(&admin_app["client_id"]);
    let (_, secret) = w.app.create_secret(&cid).await;
    let token = w.app.access_token(&cid, &secret, Some("admin")).await;
    let (status, v) = w.app.call_as(&token, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 5);

    let r = w
        .app
        .admin(
            Method::GET,
            "/admin/v1/resources/res_0000000000000000/events",
            None,
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn deleting_the_resource_ends_its_intake_and_its_events() {
    let w = world().await;
    let r = w
        .post_as(&w.writer, "interact", &w.closed, &json!({"event": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = w
        .app
        .call(
            Method::DELETE,
            &format!("/admin/v1/orgs/{}/resources/{}", w.org, w.closed),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = w
        .post_as(&w.writer, "interact", &w.closed, &json!({"event": {}}))
        .send()
        .await
        .unwrap();
    assert_denied(r, StatusCode::NOT_FOUND, "PCS-0404-404").await;
    let r = w
        .app
        .admin(
            Method::GET,
            &format!("/admin/v1/resources/{}/events", w.closed),
            None,
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    // The other resource is untouched.
    let r = w
        .post_as(&w.writer, "interact", &w.open, &json!({"event": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
