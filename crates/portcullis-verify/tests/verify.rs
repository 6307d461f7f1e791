//! `portcullis-verify` in a real axum service, against a real Portcullis server behind a
//! counting proxy (so the test sees every request the verifier makes, and can cut it off):
//! a revoked token is refused within a second with no request to the server per call; the
//! refusals are the server's own problem bodies; decisions go on while the server is
//! unreachable; the stream resumes with `Last-Event-ID` and catches up.

#[path = "../../portcullis-server/tests/common/mod.rs"]
mod common;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use common::*;
use futures_util::StreamExt;
use portcullis_core::gateway::Allow;
use portcullis_verify::{Config, Verifier};
use serde_json::Value;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Each request the proxy saw: its path and query, and its `Last-Event-ID`.
type Seen = Vec<(String, Option<String>)>;

/// A reverse proxy that records each request (path, `Last-Event-ID`) and can be "down".
#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Seen>>,
    down: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Proxy {
    async fn start(upstream: &str) -> (Self, String) {
        let p = Proxy {
            upstream: upstream.to_owned(),
            http: reqwest::Client::new(),
            seen: Default::default(),
            down: Arc::new(tokio::sync::watch::Sender::new(false)),
        };
        let app = axum::Router::new().fallback(forward).with_state(p.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (p, url)
    }
    fn requests(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
    fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

async fn forward(State(p): State<Proxy>, req: Request<Body>) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|x| x.as_str().to_owned())
        .unwrap_or_default();
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    p.seen.lock().unwrap().push((path.clone(), last));
    if *p.down.borrow() {
        return Response::builder().status(502).body(Body::empty()).unwrap();
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = p.http.request(method, format!("{}{path}", p.upstream));
    for (k, v) in req.headers() {
        if k != "host" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let r = out.body(body).send().await.unwrap();
    let mut res = Response::builder().status(r.status().as_u16());
    for (k, v) in r.headers() {
        if !["transfer-encoding", "connection", "content-length"].contains(&k.as_str()) {
            res = res.header(k.as_str(), v.as_bytes());
        }
    }
    // The body streams through until the proxy goes down.
    let mut down = p.down.subscribe();
    let stream = r.bytes_stream().take_until(async move {
        let _ = down.wait_for(|d| *d).await;
    });
    res.body(Body::from_stream(stream)).unwrap()
}

/// An API service protected by the verifier's Layer; it answers with the caller's client id.
async fn service(verifier: &Verifier, resource: &str) -> String {
    let app = axum::Router::new()
        .route(
            "/data",
            axum::routing::get(|req: Request<Body>| async move {
                let allow = req.extensions().get::<Allow>().cloned().unwrap();
                allow.client_id.unwrap_or_default()
            }),
        )
        .layer(verifier.layer(resource));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    w: &GatewayWorld,
    token: &str,
) -> reqwest::Response {
    http.get(format!("{url}/data"))
        .bearer_auth(token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap()
}

async fn until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct World {
    app: TestApp,
    w: GatewayWorld,
    proxy: Proxy,
    verifier: Verifier,
    service: String,
    http: reqwest::Client,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    // The operator's app for the service's verifier: the `verify` scope, in the same org.
    let v = app.create_app(&w.org, &["verify"]).await;
    let v_id = v["client_id"].as_str().unwrap().to_owned();
    let (_, v_secret) = app.create_secret(&v_id).await;
    let (proxy, url) = Proxy::start(&app.base).await;
    let verifier = Verifier::connect(Config::new(url, v_id, v_secret))
        .await
        .expect("the verifier connects");
    let following = until(Duration::from_secs(5), || async { verifier.is_following() }).await;
    assert!(following.is_some(), "the verifier opens the event stream");
    let service = service(&verifier, &w.resource).await;
    World {
        app,
        w,
        proxy,
        verifier,
        service,
        http: reqwest::Client::new(),
    }
}

/// Requests the verifier made other than the event stream's.
fn non_stream(p: &Proxy) -> usize {
    p.requests()
        .iter()
        .filter(|(path, _)| !path.starts_with("/events/v1?") && path != "/events/v1")
        .count()
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_a_second_without_asking_the_server_per_request() {
    let World {
        app,
        w,
        proxy,
        service,
        http,
        ..
    } = world().await;
    let token = app
        .access_token(&w.client_id, &w.secret, Some("read"))
        .await;
    let before = proxy.requests().len();
    for _ in 0..20 {
        let r = call(&http, &service, &w, &token).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.unwrap(), w.client_id);
    }
    assert_eq!(
        proxy.requests().len(),
        before,
        "20 decisions made no request to the server"
    );

    assert_eq!(
        app.revoke(&w.client_id, &w.secret, &token).await.status(),
        StatusCode::OK
    );
    let calls_before = non_stream(&proxy);
    let took = until(Duration::from_secs(1), || async {
        call(&http, &service, &w, &token).await.status() == StatusCode::UNAUTHORIZED
    })
    .await
    .expect("the service refuses the revoked token within 1 s");
    println!("verifier: revocation reached the service in {took:?}");
    assert_eq!(
        non_stream(&proxy),
        calls_before,
        "the verifier learned the revocation from the stream, not from a request"
    );

    // The very body the server's gateway answers with.
    let mine: Value = call(&http, &service, &w, &token)
        .await
        .json()
        .await
        .unwrap();
    let server: Value = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .bearer_auth(&token)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine, server);
    check_problem_body(&mine, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn decisions_go_on_while_the_server_is_away_and_the_stream_resumes_with_last_event_id() {
    let World {
        app,
        w,
        proxy,
        verifier,
        service,
        http,
    } = world().await;
    let gone = app
        .access_token(&w.client_id, &w.secret, Some("read"))
        .await;
    let kept = app
        .access_token(&w.client_id, &w.secret, Some("read"))
        .await;
    app.revoke(&w.client_id, &w.secret, &gone).await;
    until(Duration::from_secs(1), || async {
        call(&http, &service, &w, &gone).await.status() == StatusCode::UNAUTHORIZED
    })
    .await
    .expect("the first revocation arrives");

    proxy.set_down(true);
    until(Duration::from_secs(5), || async {
        !verifier.is_following()
    })
    .await
    .expect("the verifier notices the stream ended");
    let resume_from = verifier.last_event_id();
    assert!(resume_from > 0);
    // Still deciding, from the last view.
    assert_eq!(
        call(&http, &service, &w, &kept).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&http, &service, &w, &gone).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A revocation while the verifier cannot hear: it arrives once the stream resumes.
    app.revoke(&w.client_id, &w.secret, &kept).await;
    assert_eq!(
        call(&http, &service, &w, &kept).await.status(),
        StatusCode::OK
    );

    proxy.set_down(false);
    let took = until(Duration::from_secs(5), || async {
        call(&http, &service, &w, &kept).await.status() == StatusCode::UNAUTHORIZED
    })
    .await
    .expect("the missed revocation arrives after the stream resumes");
    println!("verifier: caught up {took:?} after the server came back");
    let resumed = proxy
        .requests()
        .into_iter()
        .filter(|(p, _)| p == "/events/v1")
        .filter_map(|(_, last)| last)
        .collect::<Vec<_>>();
    assert!(
        resumed.contains(&resume_from.to_string()),
        "a reconnection sent Last-Event-ID {resume_from}: {resumed:?}"
    );
    assert!(verifier.last_event_id() > resume_from);
}

#[tokio::test]
async fn credentials_a_verifier_cannot_check_are_refused_with_a_problem_that_says_why() {
    let World {
        w, service, http, ..
    } = world().await;
    // An app-signed JWT (its kid is no server key), with no shared replay cache.
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("key_0123456789abcdef".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &serde_json::json!({"iat": 1, "jti": "x"}),
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    let r = call(&http, &service, &w, &jwt).await;
    let body = assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(
        body["detail"].as_str().unwrap().contains("replay cache"),
        "{body}"
    );

    let r = http
        .get(format!("{service}/data"))
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &w.secret)
        .send()
        .await
        .unwrap();
    // EXEG-0500-401, as the server's gateway answers a request it cannot take.
    let body = assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "EXEG-0500-401");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("does not accept a client id and secret"),
        "{body}"
    );
}

#[tokio::test]
async fn the_snapshot_holds_no_secret_hash_and_needs_the_verify_scope() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    // Another org's data stays out of this org's snapshot.
    let other = app.gateway_world(false).await;
    let v = app.create_app(&w.org, &["verify"]).await;
    let v_id = v["client_id"].as_str().unwrap().to_owned();
    let (_, v_secret) = app.create_secret(&v_id).await;
    let token = app.access_token(&v_id, &v_secret, Some("verify")).await;
    let r = app
        .http
        .get(app.url("/events/v1/snapshot"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains("hash"), "{text}");
    assert!(text.contains(&w.client_id) && text.contains(&w.resource));
    assert!(!text.contains(&other.client_id) && !text.contains(&other.org));

    // The app's ordinary token (no `verify` scope) may not read it, nor may nobody.
    let plain = app
        .access_token(&w.client_id, &w.secret, Some("read"))
        .await;
    for (auth, status) in [
        (Some(plain.as_str()), StatusCode::FORBIDDEN),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        for path in ["/events/v1/snapshot", "/events/v1"] {
            let mut req = app.http.get(app.url(path));
            if let Some(a) = auth {
                req = req.bearer_auth(a);
            }
            assert_problem(req.send().await.unwrap(), status).await;
        }
    }
    // A Last-Event-ID that is not a sequence is the caller's mistake.
    let r = app
        .http
        .get(app.url("/events/v1"))
        .bearer_auth(&token)
        .header("last-event-id", "soon")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
}

/// A DPoP-bound token through the verifier (with the replay cache every verifier shares;
/// without it the token is refused): a proof of its key for the service's own URL passes
/// once; its replay, a thief's key and the token as Bearer are refused with
/// the server's codes and the DPoP challenge.
#[tokio::test]
async fn a_dpop_bound_token_needs_a_fresh_proof_of_its_key_for_the_services_url() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let v = app.create_app(&w.org, &["verify"]).await;
    let v_id = v["client_id"].as_str().unwrap().to_owned();
    let (_, v_secret) = app.create_secret(&v_id).await;
    let origin = "https://api.example.com";
    // Without the shared replay cache, a DPoP-bound token is refused with a reason.
    let alone = Verifier::connect(
        Config::new(app.base.clone(), v_id.clone(), v_secret.clone()).with_public_origin(origin),
    )
    .await
    .expect("the verifier connects");
    let redis = std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let shared = match portcullis_shared::Shared::connect(&redis).await {
        Ok(s) => s.with_prefix(format!(
            "pctest:{}:",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                portcullis_core::random_bytes::<8>()
            )
        )),
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI needs Redis: {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let verifier = Verifier::connect(
        Config::new(app.base.clone(), v_id, v_secret)
            .with_public_origin(origin)
            .with_replay(shared),
    )
    .await
    .expect("the verifier connects");
    let lone = service(&alone, &w.resource).await;
    let service = service(&verifier, &w.resource).await;
    let key = common::DpopKey::new();
    let r = app
        .dpop_token(
            &w.client_id,
            &w.secret,
            Some(&key.proof("POST", &app.token_endpoint(), None, None)),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let send = |proof: String, scheme: &'static str| {
        http.get(format!("{service}/data"))
            .header("authorization", format!("{scheme} {token}"))
            .header("dpop", proof)
            .header("x-api-key", &w.client_id)
            .header("x-gw-ims-org-id", &w.org)
            .send()
    };
    let url = format!("{origin}/data");
    // The verifier learns of the app from its stream: wait with fresh proofs.
    let passed = until(Duration::from_secs(5), || async {
        let r = send(key.proof("GET", &url, Some(&token), None), "DPoP")
            .await
            .unwrap();
        r.status() == reqwest::StatusCode::OK
    })
    .await;
    assert!(passed.is_some(), "a fresh proof passes");
    let r = http
        .get(format!("{lone}/data"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &url, Some(&token), None))
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("replay cache"),
        "{body}"
    );
    let proof = key.proof("GET", &url, Some(&token), None);
    let r = send(proof.clone(), "DPoP").await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), w.client_id);

    let code = |r: &reqwest::Response| {
        (
            r.status().as_u16(),
            r.headers()["www-authenticate"].to_str().unwrap().to_owned(),
        )
    };
    let r = send(proof, "DPoP").await.unwrap();
    let (status, www) = code(&r);
    assert_eq!(status, 401);
    assert!(
        www.starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{www}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PCS-0453-401", "{body}");

    let thief = common::DpopKey::new();
    let r = send(thief.proof("GET", &url, Some(&token), None), "DPoP")
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PCS-0454-401", "{body}");
    let r = send(key.proof("GET", &url, Some(&token), None), "Bearer")
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PCS-0455-401", "{body}");
}
