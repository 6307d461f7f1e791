//! Adobe Wave against the real server: the publisher is a real HTTP server on
//! loopback (its Initiation and Callback APIs sign OAuth 1.0 PLAINTEXT requests with the
//! `oauth1-request` crate, which nobody here wrote), the subscriber a cookie-keeping HTTP
//! client; then notifications reach the subscribers' Server-Sent Event streams.

use crate::apitoken;
use crate::common;

use apitoken::*;
use axum::extract::{Query, State as AxState};
use common::*;
use oauth1_request as oauth;
use portcullis_server::config::{GatewayConfig, WaveConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

fn dev() -> Options {
    Options {
        gateway: GatewayConfig {
            allow_secrets_over_http: true,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A publisher app with a secret, a point-to-point feed and a broadcast feed (a topic in
/// each), and two users, alice and bob.
struct World {
    org: String,
    client_id: String,
    secret: String,
    p2p_feed: Value,
    p2p_topic: String,
    news_feed: String,
    news_topic: String,
}

async fn world(app: &TestApp, callback_base: &str) -> World {
    let (client_id, secret, org) = app.client(&[]).await;
    let p2p_feed = app
        .create_feed(
            &client_id,
            json!({"name": "Order updates", "kind": "point_to_point",
                "initiation_url": format!("{callback_base}/initiation"),
                "callback_url": format!("{callback_base}/callback")}),
        )
        .await;
    let news = app
        .create_feed(&client_id, json!({"name": "News", "kind": "broadcast"}))
        .await;
    let p2p_topic = app
        .create_topic(&client_id, p2p_feed["id"].as_str().unwrap(), "status")
        .await;
    let news_feed = news["id"].as_str().unwrap().to_owned();
    let news_topic = app.create_topic(&client_id, &news_feed, "status").await;
    for who in ["alice", "bob"] {
        app.create_user(&format!("{who}@example.com"), PASSWORD, json!({}))
            .await;
    }
    World {
        org,
        client_id,
        secret,
        news_feed,
        p2p_feed,
        p2p_topic,
        news_topic,
    }
}

// --- the publisher: a real HTTP server on loopback ---------------------------------

#[derive(Clone)]
struct Publisher {
    portcullis: String,
    client_id: String,
    secret: String,
    /// Request token → its secret (Wave's publisher guide: "persist a mapping").
    pending: Arc<Mutex<HashMap<String, String>>>,
    /// The publisher's session (`sessId` of invokeArgs) → the subscriber's access token.
    linked: Arc<Mutex<HashMap<String, String>>>,
    /// The query of every callback call, as received.
    callbacks: Arc<Mutex<Vec<String>>>,
}

fn form_map(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Initiation API: get a request token (signed by `oauth1-request`, in the
/// `Authorization` header), remember its secret, return `oauth_token=…`.
async fn initiation(
    AxState(p): AxState<Publisher>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let uri = format!("{}/identity/1.0/oauth/requesttoken", p.portcullis);
    let header = oauth::Builder::<_, _, &str>::new(
        oauth::Credentials::new(p.client_id.as_str(), p.secret.as_str()),
        oauth::PLAINTEXT,
    )
    .authorize("POST", &uri, &());
    let r = reqwest::Client::new()
        .post(&uri)
        .header("authorization", header)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ct, "application/x-www-form-urlencoded");
    let m = form_map(&body);
    let token = m["oauth_token"].clone();
    p.pending
        .lock()
        .unwrap()
        .insert(token.clone(), m["oauth_token_secret"].clone());
    (
        StatusCode::OK,
        [("content-type", "application/x-www-form-urlencoded")],
        format!("oauth_token={token}"),
    )
}

/// Callback API: exchange the authorized request token for the access token (signed by
/// `oauth1-request`) and keep it for the session.
async fn callback(
    AxState(p): AxState<Publisher>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    p.callbacks.lock().unwrap().push(raw.unwrap_or_default());
    let token = q["oauth_token"].clone();
    let token_secret = p.pending.lock().unwrap()[&token].clone();
    let uri = format!("{}/identity/1.0/oauth/accesstoken", p.portcullis);
    let mut b = oauth::Builder::new(
        oauth::Credentials::new(p.client_id.as_str(), p.secret.as_str()),
        oauth::PLAINTEXT,
    );
    b.token(oauth::Credentials::new(
        token.as_str(),
        token_secret.as_str(),
    ));
    // In the header: this library leaves the PLAINTEXT '&' unescaped in query form, which
    // Wave's documentation says must be %26.
    let signed = b.authorize("GET", &uri, &());
    let r = reqwest::Client::new()
        .get(&uri)
        .header("authorization", &signed)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    if status != StatusCode::OK {
        return (StatusCode::BAD_GATEWAY, format!("{signed}: {body}"));
    }
    let m = form_map(&body);
    p.linked
        .lock()
        .unwrap()
        .insert(q["sessId"].clone(), m["oauth_token"].clone());
    (StatusCode::OK, "<p>Your account is linked.</p>".into())
}

async fn spawn_publisher(p: Publisher, listener: tokio::net::TcpListener) {
    let router = axum::Router::new()
        .route("/initiation", axum::routing::get(initiation))
        .route("/callback", axum::routing::get(callback))
        .with_state(p);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
}

// --- the subscriber's streams ------------------------------------------------------

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// Reads Server-Sent Events from a response.
struct Sse {
    body: ByteStream,
    buf: String,
}

#[derive(Debug)]
struct SseEvent {
    id: String,
    event: String,
    data: Value,
}

impl Sse {
    fn new(r: reqwest::Response) -> Self {
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped), waiting at most `wait`.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some(SseEvent {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

async fn open_stream(app: &TestApp, email: &str, last_id: Option<&str>) -> Sse {
    let mut req = app
        .http
        .get(app.url("/notificationgateway/1.0/stream"))
        .basic_auth(email, Some(PASSWORD));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    Sse::new(req.send().await.unwrap())
}

// --- the publisher's API token and notifications -----------------------------------

async fn notify(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.url("/notificationgateway/1.0/notification"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn subscribe(app: &TestApp, email: &str, feed: &str) {
    app.subscribe(email, PASSWORD, feed).await;
}

const WAIT: Duration = Duration::from_secs(10);

/// A linking transaction played through: the publisher's initiation, the subscriber's
/// approval in a browser-like client, the callback and the exchange. Returns the access
/// token the publisher keeps for session `sess`.
async fn link(
    app: &TestApp,
    publisher: &Publisher,
    pub_base: &str,
    w: &World,
    email: &str,
    sess: &str,
) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    // The desktop client calls the Initiation API.
    let init = browser
        .get(format!("{pub_base}/initiation"))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let token = form_map(&init.text().await.unwrap())["oauth_token"].clone();
    // The subscriber opens the authorize page.
    let feed_id = w.p2p_feed["id"].as_str().unwrap();
    let page_url = format!(
        "{}?{}",
        app.url("/identity/1.0/oauth/authorize"),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("oauth_token", &token)
            .append_pair("feedId", feed_id)
            .append_pair("invokeArgs", &format!("sessId={sess}"))
            .finish()
    );
    let page = browser.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<label for="email">"#), "{html}");
    assert!(html.contains(r#"<label for="password">"#), "{html}");
    let csrf = hidden(&html, "csrf");
    // Approve: the server redirects the browser to the publisher's callback.
    let done = browser
        .post(app.url("/identity/1.0/oauth/authorize"))
        .form(&[
            ("oauth_token", token.as_str()),
            ("feedId", feed_id),
            ("invokeArgs", &format!("sessId={sess}")),
            ("csrf", &csrf),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let status = done.status();
    let body = done.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("linked"), "{body}");
    publisher.linked.lock().unwrap()[sess].clone()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn with_publisher(app: &TestApp) -> (World, Publisher, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pub_base = format!("http://{}", listener.local_addr().unwrap());
    let w = world(app, &pub_base).await;
    let publisher = Publisher {
        portcullis: app.base.clone(),
        client_id: w.client_id.clone(),
        secret: w.secret.clone(),
        pending: Default::default(),
        linked: Default::default(),
        callbacks: Default::default(),
    };
    spawn_publisher(publisher.clone(), listener).await;
    (w, publisher, pub_base)
}

#[tokio::test]
async fn linking_then_a_point_to_point_notification_reaches_only_the_linked_subscriber() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, publisher, pub_base) = with_publisher(&app).await;
    let access = link(
        &app,
        &publisher,
        &pub_base,
        &w,
        "alice@example.com",
        "123412876443",
    )
    .await;

    // The callback URL as Wave builds it: base ? feedId & companyId & invokeArgs & oauth_token.
    let cb = publisher.callbacks.lock().unwrap()[0].clone();
    let names: Vec<String> = form_map_ordered(&cb).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        ["feedId", "companyId", "sessId", "oauth_token"],
        "{cb}"
    );
    let m = form_map(&cb);
    assert_eq!(m["feedId"], w.p2p_feed["id"].as_str().unwrap());
    assert_eq!(m["companyId"], w.p2p_feed["company_id"].as_str().unwrap());
    assert_eq!(m["sessId"], "123412876443");

    // Both subscribe to the broadcast feed and listen.
    subscribe(&app, "alice@example.com", &w.news_feed).await;
    subscribe(&app, "bob@example.com", &w.news_feed).await;
    let mut alice = open_stream(&app, "alice@example.com", None).await;
    let mut bob = open_stream(&app, "bob@example.com", None).await;

    let api = api_token(&app, &w.client_id, &w.secret).await;
    let r = notify(
        &app,
        &[
            ("X-apitoken", &api),
            ("topic", &w.p2p_topic),
            ("message", "Your order shipped"),
            ("link", "https://shop.example/orders/1"),
            ("accesstoken", &access),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    let e = alice.next(WAIT).await.expect("alice gets her notification");
    assert_eq!(e.event, "notification");
    assert_eq!(e.data["message"], "Your order shipped");
    assert_eq!(e.data["topic"], w.p2p_topic.as_str());
    assert_eq!(
        e.data["topic_name"], "status",
        "the topic's name, for people"
    );
    assert_eq!(e.data["link"], "https://shop.example/orders/1");
    assert_eq!(e.id, e.data["id"].to_string());

    // Then a broadcast: bob's first event is it, so the point-to-point one never reached him.
    let r = notify(
        &app,
        &[
            ("X-apitoken", &api),
            ("topic", &w.news_topic),
            ("message", "Sale today"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let b = bob.next(WAIT).await.expect("bob gets the broadcast");
    assert_eq!(b.data["message"], "Sale today");
    let a = alice.next(WAIT).await.expect("alice gets the broadcast");
    assert_eq!(a.data["message"], "Sale today");
    assert!(b.id.parse::<i64>().unwrap() > e.id.parse::<i64>().unwrap());

    // Reconnecting after the first event resumes with the second, from the store.
    let mut again = open_stream(&app, "alice@example.com", Some(&e.id)).await;
    let r = again.next(WAIT).await.expect("the missed notification");
    assert_eq!(r.data["message"], "Sale today");
    app.stop().await;
}

fn form_map_ordered(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A hand-made PLAINTEXT request: `(name, value)` query parameters over the defaults.
fn oauth_query(w: &World, overrides: &[(&str, &str)]) -> String {
    let ts = now().to_string();
    let nonce = hex_nonce();
    let sig = format!("{}&", w.secret);
    let mut params: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), w.client_id.clone()),
        ("oauth_signature_method".into(), "PLAINTEXT".into()),
        ("oauth_signature".into(), sig),
        ("oauth_timestamp".into(), ts),
        ("oauth_nonce".into(), nonce),
        ("oauth_version".into(), "1.0".into()),
    ];
    for (k, v) in overrides {
        params.retain(|(n, _)| n != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn hex_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("n{}x{}", now(), N.fetch_add(1, Ordering::Relaxed))
}

async fn request_token_with(app: &TestApp, query: &str) -> reqwest::Response {
    app.http
        .get(format!(
            "{}?{query}",
            app.url("/identity/1.0/oauth/requesttoken")
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_oauth_endpoints_answer_waves_status_codes() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, _publisher, _) = with_publisher(&app).await;

    // 200: Wave's own form (signature = the consumer secret alone), as a POST form.
    let r = app
        .http
        .post(app.url("/identity/1.0/oauth/requesttoken"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(oauth_query(&w, &[("oauth_signature", &w.secret)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m = form_map(&r.text().await.unwrap());
    let (token, token_secret) = (m["oauth_token"].clone(), m["oauth_token_secret"].clone());

    // 400: a missing parameter, another signature method, a bad version.
    let r = request_token_with(&app, &oauth_query(&w, &[("oauth_nonce", "")])).await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let r = request_token_with(
        &app,
        &oauth_query(&w, &[("oauth_signature_method", "HMAC-SHA1")]),
    )
    .await;
    let p = assert_problem(r, StatusCode::BAD_REQUEST).await;
    assert!(p["detail"].as_str().unwrap().contains("PLAINTEXT"), "{p}");
    let r = request_token_with(&app, &oauth_query(&w, &[("oauth_version", "2.0")])).await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;

    // 401: a wrong secret, an unknown consumer — with an OAuth challenge.
    let (_, other_secret, _) = app.client(&[]).await;
    let wrong = format!("{other_secret}&");
    let r = request_token_with(&app, &oauth_query(&w, &[("oauth_signature", &wrong)])).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("OAuth")
    );
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let r = request_token_with(
        &app,
        &oauth_query(
            &w,
            &[("oauth_consumer_key", "00000000000000000000000000000000")],
        ),
    )
    .await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    // A stale timestamp, and a replayed nonce.
    let stale = (now() - 301).to_string();
    let r = request_token_with(&app, &oauth_query(&w, &[("oauth_timestamp", &stale)])).await;
    let p = assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(p["detail"].as_str().unwrap().contains("timestamp"), "{p}");
    let once = oauth_query(&w, &[]);
    assert_eq!(
        request_token_with(&app, &once).await.status(),
        StatusCode::OK
    );
    let p = assert_problem(
        request_token_with(&app, &once).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("nonce"), "{p}");

    // The access token endpoint: an unauthorized request token cannot be exchanged.
    let sig = format!("{}&{}", w.secret, token_secret);
    let access = |extra: Vec<(&'static str, String)>| {
        let mut o: Vec<(&str, String)> = vec![
            ("oauth_token", token.clone()),
            ("oauth_signature", sig.clone()),
        ];
        o.extend(extra);
        let app = &app;
        let w = &w;
        async move {
            let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.http
                .post(format!(
                    "{}?{}",
                    app.url("/identity/1.0/oauth/accesstoken"),
                    oauth_query(w, &o)
                ))
                .send()
                .await
                .unwrap()
        }
    };
    let p = assert_problem(access(vec![]).await, StatusCode::UNAUTHORIZED).await;
    assert!(
        p["detail"].as_str().unwrap().contains("not authorized"),
        "{p}"
    );
    let r = access(vec![("oauth_token", String::new())]).await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let r = access(vec![("oauth_signature", format!("{}&wrong", w.secret))]).await;
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn request_tokens_are_single_use_and_the_csrf_token_is_checked() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, publisher, pub_base) = with_publisher(&app).await;
    let _ = link(&app, &publisher, &pub_base, &w, "alice@example.com", "s1").await;
    // Exchanging the same request token again fails.
    let cb = publisher.callbacks.lock().unwrap()[0].clone();
    let token = form_map(&cb)["oauth_token"].clone();
    let secret = publisher.pending.lock().unwrap()[&token].clone();
    let sig = format!("{}&{secret}", w.secret);
    let q = oauth_query(&w, &[("oauth_token", &token), ("oauth_signature", &sig)]);
    let r = app
        .http
        .get(format!(
            "{}?{q}",
            app.url("/identity/1.0/oauth/accesstoken")
        ))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;

    // A form posted without the page's cookie (another site) is refused.
    let init = reqwest::get(format!("{pub_base}/initiation"))
        .await
        .unwrap();
    let token = form_map(&init.text().await.unwrap())["oauth_token"].clone();
    let feed_id = w.p2p_feed["id"].as_str().unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = browser
        .get(format!(
            "{}?oauth_token={token}&feedId={feed_id}",
            app.url("/identity/1.0/oauth/authorize")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf");
    let form = [
        ("oauth_token", token.as_str()),
        ("feedId", feed_id),
        ("csrf", csrf.as_str()),
        ("email", "alice@example.com"),
        ("password", PASSWORD),
    ];
    let r = app
        .http
        .post(app.url("/identity/1.0/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN).await;
    // With the cookie but a wrong password: the page again, 401, nothing authorized.
    let mut bad = form;
    bad[4] = ("password", "not the password");
    let r = browser
        .post(app.url("/identity/1.0/oauth/authorize"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("wrong"));
    // A broadcast feed cannot be linked.
    let r = browser
        .get(format!(
            "{}?oauth_token={token}&feedId={}",
            app.url("/identity/1.0/oauth/authorize"),
            w.news_feed
        ))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    app.stop().await;
}

#[tokio::test]
async fn secrets_in_the_clear_need_tls_through_a_trusted_proxy() {
    let app = TestApp::spawn_with(Options {
        gateway: GatewayConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (w, _, _) = with_publisher(&app).await;
    let r = request_token_with(&app, &oauth_query(&w, &[])).await;
    let p = assert_problem(r, StatusCode::FORBIDDEN).await;
    assert!(p["detail"].as_str().unwrap().contains("HTTPS"), "{p}");
    let r = app
        .http
        .post(app.url("/identity/1.0/auth/apitoken.xml"))
        .basic_auth(&w.client_id, Some(&w.secret))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::FORBIDDEN).await;
    // Through the (trusted) TLS proxy, it is served.
    let r = app
        .http
        .get(format!(
            "{}?{}",
            app.url("/identity/1.0/oauth/requesttoken"),
            oauth_query(&w, &[])
        ))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn apitoken_xml_answers_waves_status_codes() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, _, _) = with_publisher(&app).await;
    let url = app.url("/identity/1.0/auth/apitoken.xml");
    // 200 by Basic (checked in api_token) and by username/password in the query, as Wave's examples do.
    let t1 = api_token(&app, &w.client_id, &w.secret).await;
    let r = app
        .http
        .post(format!(
            "{url}?username={}&password={}",
            w.client_id, w.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t2 = parse_apitoken(&r.text().await.unwrap());
    assert_ne!(t1, t2);
    assert!(t1.starts_with("pcwa_"));
    // And as a form body.
    let r = app
        .http
        .post(&url)
        .form(&[("username", &w.client_id), ("password", &w.secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // 400: both ways at once; nothing; half.
    let r = app
        .http
        .post(format!(
            "{url}?username={}&password={}",
            w.client_id, w.secret
        ))
        .basic_auth(&w.client_id, Some(&w.secret))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let r = app.http.post(&url).send().await.unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let r = app
        .http
        .post(format!("{url}?username={}", w.client_id))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    // 401: a wrong secret.
    let r = app
        .http
        .post(&url)
        .basic_auth(&w.client_id, Some("pcss_nottherightsecret"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    // 405: GET; 404: a path that is not there.
    let r = app.http.get(&url).send().await.unwrap();
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED).await;
    let r = app
        .http
        .post(app.url("/identity/1.0/auth/nothing.xml"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::NOT_FOUND).await;
    app.stop().await;
}

/// A PNG of `w`×`h`, base64.
fn png_b64(w: u32, h: u32) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(png(w, h))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([0, 120, 200, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn the_notification_answers_waves_status_codes() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, publisher, pub_base) = with_publisher(&app).await;
    let access = link(&app, &publisher, &pub_base, &w, "alice@example.com", "s").await;
    let api = api_token(&app, &w.client_id, &w.secret).await;
    subscribe(&app, "bob@example.com", &w.news_feed).await;
    let mut bob = open_stream(&app, "bob@example.com", None).await;
    let url = app.url("/notificationgateway/1.0/notification");

    // 204, with the parameters in the query as in Wave's example.
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("X-apitoken", &api)
        .append_pair("topic", &w.news_topic)
        .append_pair("message", "Test message 2485")
        .append_pair("link", "http://www.adobe.com")
        .finish();
    let r = app.http.post(format!("{url}?{q}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        bob.next(WAIT).await.unwrap().data["message"],
        "Test message 2485"
    );

    // 204, multipart with a base64 image (Wave's form) and with a file part: stored as PNG.
    let jpeg = {
        let img = image::RgbImage::from_pixel(30, 20, image::Rgb([9, 9, 9]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    };
    let parts = [
        reqwest::multipart::Form::new()
            .text("X-apitoken", api.clone())
            .text("topic", w.news_topic.clone())
            .text("message", "with a picture")
            .text("imagetype", "image/png")
            .text("image", png_b64(40, 40)),
        reqwest::multipart::Form::new()
            .text("X-apitoken", api.clone())
            .text("topic", w.news_topic.clone())
            .text("message", "with a file")
            .text("imagetype", "image/jpeg")
            .part(
                "image",
                reqwest::multipart::Part::bytes(jpeg).file_name("t.jpg"),
            ),
    ];
    for form in parts {
        let r = app.http.post(&url).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
        let e = bob.next(WAIT).await.unwrap();
        let img = e.data["image"].as_str().unwrap();
        let b64 = img.strip_prefix("data:image/png;base64,").unwrap();
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            image::guess_format(&bytes).unwrap(),
            image::ImageFormat::Png
        );
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert!(decoded.width() <= 40 && decoded.height() <= 40);
    }

    // 400: no topic, no message; a link that is not http(s); p2p without accesstoken.
    let base = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("X-apitoken", api.clone()),
            ("topic", w.news_topic.clone()),
            ("message", "m".into()),
        ];
        for (k, val) in extra {
            v.retain(|(n, _)| n != k);
            if !val.is_empty() {
                v.push((k, val.clone()));
            }
        }
        v
    };
    let send = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            notify(app, &f).await
        }
    };
    for extra in [
        vec![("topic", String::new())],
        vec![("message", String::new())],
        vec![("link", "javascript:alert(1)".into())],
        vec![("link", "ftp://files.example/x".into())],
        vec![("topic", w.p2p_topic.clone())],
        vec![("accesstoken", access.clone())],
    ] {
        let r = send(base(&extra)).await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }
    // 401: no token, a corrupt token — with a challenge.
    let r = send(base(&[("X-apitoken", String::new())])).await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let r = send(base(&[("X-apitoken", "pcwa_corrupt".into())])).await;
    assert!(r.headers().contains_key("www-authenticate"));
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    // 403: another publisher's topic; an unknown topic; an access token of another feed.
    let (other_id, other_secret, _) = app.client(&[]).await;
    let other_api = api_token(&app, &other_id, &other_secret).await;
    let r = send(base(&[("X-apitoken", other_api.clone())])).await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    let r = send(base(&[("topic", "company_1/feed_2/nothing".into())])).await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    let r = send(base(&[
        ("topic", w.p2p_topic.clone()),
        ("accesstoken", "pcwt_notatoken".into()),
    ]))
    .await;
    assert_problem(r, StatusCode::FORBIDDEN).await;
    // 415: a 41×41 image, bytes that are no image, an unsupported imagetype.
    for (ty, img) in [
        ("image/png", png_b64(41, 41)),
        ("image/png", "aGVsbG8gd29ybGQ=".to_owned()),
        ("image/gif", png_b64(10, 10)),
    ] {
        let r = send(base(&[("imagetype", ty.into()), ("image", img)])).await;
        assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    // 415: an image URL on loopback (SSRF), refused before any connection.
    let r = send(base(&[("imageurl", "http://127.0.0.1:9/x.png".into())])).await;
    let p = assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("not a public address"),
        "{p}"
    );
    let r = send(base(&[("imageurl", "http://localhost:9/x.png".into())])).await;
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // None of the refused notifications was delivered.
    let r = send(base(&[("message", "last".into())])).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(bob.next(WAIT).await.unwrap().data["message"], "last");
    app.stop().await;
}

#[tokio::test]
async fn an_image_url_is_fetched_when_private_addresses_are_allowed() {
    let app = TestApp::spawn_with(Options {
        wave: WaveConfig {
            allow_private_image_urls: true,
            ..Default::default()
        },
        ..dev()
    })
    .await;
    let (w, _, _) = with_publisher(&app).await;
    // An image server on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let img_base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route(
            "/thumb.png",
            axum::routing::get(|| async { ([("content-type", "image/png")], png(16, 16)) }),
        )
        .route(
            "/big.png",
            axum::routing::get(|| async { ([("content-type", "image/png")], png(41, 41)) }),
        )
        .route(
            "/page.html",
            axum::routing::get(|| async { ([("content-type", "text/html")], png(16, 16)) }),
        )
        .route(
            "/moved",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/thumb.png") }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    subscribe(&app, "bob@example.com", &w.news_feed).await;
    let mut bob = open_stream(&app, "bob@example.com", None).await;
    let api = api_token(&app, &w.client_id, &w.secret).await;
    let send = |path: &str| {
        let url = format!("{img_base}{path}");
        let (app, api, topic) = (&app, api.clone(), w.news_topic.clone());
        async move {
            notify(
                app,
                &[
                    ("X-apitoken", &api),
                    ("topic", &topic),
                    ("message", "pic"),
                    ("imageurl", &url),
                ],
            )
            .await
        }
    };
    assert_eq!(send("/thumb.png").await.status(), StatusCode::NO_CONTENT);
    let e = bob.next(WAIT).await.unwrap();
    assert!(
        e.data["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    for path in ["/big.png", "/page.html", "/moved", "/missing"] {
        assert_problem(send(path).await, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn feeds_and_topics_are_managed_under_the_publisher_app() {
    let app = TestApp::spawn().await;
    let w = world(&app, "https://publisher.example").await;
    let feeds = format!("/admin/v1/apps/{}/feeds", w.client_id);
    let items = app.walk_pages(&feeds, 1).await;
    assert_eq!(items.len(), 2);
    let feed = format!("{feeds}/{}", w.p2p_feed["id"].as_str().unwrap());
    let (s, f) = app.call(Method::GET, &feed, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f["kind"], "point_to_point");
    assert_eq!(f["company_id"], format!("company_{}", w.client_id));
    let (s, f) = app
        .call(
            Method::PATCH,
            &feed,
            Some(json!({"name": "Renamed", "callback_url": "http://cb.example/x?a=1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["name"], "Renamed");
    // Validation: URLs are http(s); point-to-point needs both; broadcast takes none.
    for body in [
        json!({"name": "x", "kind": "point_to_point", "initiation_url": "ftp://a.example/", "callback_url": "https://a.example/"}),
        json!({"name": "x", "kind": "point_to_point", "initiation_url": "https://a.example/"}),
        json!({"name": "x", "kind": "broadcast", "callback_url": "https://a.example/"}),
        json!({"name": "x", "kind": "multicast"}),
        json!({"name": "", "kind": "broadcast"}),
    ] {
        let (s, p) = app.call(Method::POST, &feeds, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {p}");
        check_problem_body(&p, s);
    }
    let (s, _) = app
        .call(Method::PATCH, &feed, Some(json!({"callback_url": null})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Topics.
    let topics = format!("{feed}/topics");
    let listed = app.walk_pages(&topics, 10).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["uri"], w.p2p_topic.as_str());
    let topic = format!("{topics}/{}", listed[0]["id"].as_str().unwrap());
    let (s, t) = app
        .call(Method::PATCH, &topic, Some(json!({"name": "shipping"})))
        .await;
    assert_eq!((s, t["name"].as_str()), (StatusCode::OK, Some("shipping")));
    // A subscriber has no admin rights over them.
    app.create_user(
        "sub@example.com",
        PASSWORD,
        json!({w.org.clone(): "subscriber"}),
    )
    .await;
    let sub = app.session("sub@example.com", PASSWORD).await;
    let (s, _) = app
        .call_as(
            &sub,
            Method::POST,
            &feeds,
            Some(json!({"name": "x", "kind": "broadcast"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleting the feed deletes its topics.
    let (s, _) = app.call(Method::DELETE, &feed, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.call(Method::GET, &topic, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.call(Method::GET, &feed, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn the_stream_needs_a_subscriber_and_subscriptions_are_for_broadcast_feeds() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, _, _) = with_publisher(&app).await;
    let stream = app.url("/notificationgateway/1.0/stream");
    let r = app.http.get(&stream).send().await.unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let r = app
        .http
        .get(&stream)
        .basic_auth("alice@example.com", Some("wrong password"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    let r = app
        .http
        .get(&stream)
        .basic_auth("alice@example.com", Some(PASSWORD))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    // A session token works too; a point-to-point feed is not subscribed by PUT.
    let session = app.session("alice@example.com", PASSWORD).await;
    let r = app
        .http
        .get(&stream)
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(r);
    let p2p = w.p2p_feed["id"].as_str().unwrap();
    let r = app
        .http
        .put(app.url(&format!("/notificationgateway/1.0/subscriptions/{p2p}")))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    subscribe(&app, "alice@example.com", &w.news_feed).await;
    let r = app
        .http
        .get(app.url("/notificationgateway/1.0/subscriptions"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["feeds"], json!([w.news_feed]));
    let r = app
        .http
        .delete(app.url(&format!(
            "/notificationgateway/1.0/subscriptions/{}",
            w.news_feed
        )))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

// --- https image URLs -------------------------------------------------------------

/// A CA and a certificate for `localhost` / 127.0.0.1 it signed: the CA's PEM and a TLS
/// server configuration presenting the certificate.
fn tls_identity() -> (String, Arc<tokio_rustls::rustls::ServerConfig>) {
    use tokio_rustls::rustls;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Each CA its own name, so an untrusted one is an unknown issuer, not a namesake.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Portcullis test CA {n}"));
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (ca.pem(), Arc::new(config))
}

/// axum over TLS: a TCP listener whose connections are accepted through rustls (a
/// failed handshake, such as a client refusing the certificate, is skipped).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.tls.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// An https image server on loopback presenting `config`'s certificate; its base URL
/// (by name, so the fetch resolves, pins and checks the certificate's name).
async fn https_image_server(config: Arc<tokio_rustls::rustls::ServerConfig>) -> String {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let router = axum::Router::new().route(
        "/thumb.png",
        axum::routing::get(|| async { ([("content-type", "image/png")], png(16, 16)) }),
    );
    let listener = TlsListener {
        tcp,
        tls: tokio_rustls::TlsAcceptor::from(config),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn an_https_image_url_is_fetched_when_its_ca_is_trusted_and_refused_when_not() {
    let (trusted_ca, trusted) = tls_identity();
    let (_, untrusted) = tls_identity();
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, trusted_ca).unwrap();
    let app = TestApp::spawn_with(Options {
        wave: WaveConfig {
            allow_private_image_urls: true,
            image_fetch_ca_file: Some(ca_file),
            ..Default::default()
        },
        ..dev()
    })
    .await;
    let (w, _, _) = with_publisher(&app).await;
    let good = https_image_server(trusted).await;
    let bad = https_image_server(untrusted).await;
    subscribe(&app, "bob@example.com", &w.news_feed).await;
    let mut bob = open_stream(&app, "bob@example.com", None).await;
    let api = api_token(&app, &w.client_id, &w.secret).await;
    let send = |url: String| {
        let (app, api, topic) = (&app, api.clone(), w.news_topic.clone());
        async move {
            notify(
                app,
                &[
                    ("X-apitoken", &api),
                    ("topic", &topic),
                    ("message", "pic"),
                    ("imageurl", &url),
                ],
            )
            .await
        }
    };
    let r = send(format!("{good}/thumb.png")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{:?}", r.text().await);
    let e = bob
        .next(WAIT)
        .await
        .expect("the notification with its image");
    let image = e.data["image"].as_str().unwrap();
    let decoded = base64_decode(image.strip_prefix("data:image/png;base64,").unwrap());
    let img = image::load_from_memory(&decoded).unwrap();
    assert_eq!((img.width(), img.height()), (16, 16));

    // A certificate from a CA nobody trusts: refused, and the problem says why.
    let body = assert_problem(
        send(format!("{bad}/thumb.png")).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("TLS"), "{detail}");
    assert!(detail.contains("certificate"), "{detail}");
    app.stop().await;
}

#[tokio::test]
async fn an_https_image_url_with_a_certificate_of_an_unknown_ca_is_refused_by_default() {
    // No extra CA: only the Mozilla roots, which do not include the test's.
    let app = TestApp::spawn_with(Options {
        wave: WaveConfig {
            allow_private_image_urls: true,
            ..Default::default()
        },
        ..dev()
    })
    .await;
    let (w, _, _) = with_publisher(&app).await;
    let (_, config) = tls_identity();
    let base = https_image_server(config).await;
    let api = api_token(&app, &w.client_id, &w.secret).await;
    let r = notify(
        &app,
        &[
            ("X-apitoken", &api),
            ("topic", &w.news_topic),
            ("message", "pic"),
            ("imageurl", &format!("{base}/thumb.png")),
        ],
    )
    .await;
    let body = assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert!(body["detail"].as_str().unwrap().contains("TLS"), "{body}");
    app.stop().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

// --- denying on the authorize page -------------------------------------------------

#[tokio::test]
async fn denying_sends_the_browser_to_the_callback_with_user_refused_and_kills_the_token() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, publisher, pub_base) = with_publisher(&app).await;
    let init = reqwest::get(format!("{pub_base}/initiation"))
        .await
        .unwrap();
    let token = form_map(&init.text().await.unwrap())["oauth_token"].clone();
    let feed_id = w.p2p_feed["id"].as_str().unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page_url = format!(
        "{}?oauth_token={token}&feedId={feed_id}&invokeArgs=sessId%3D77",
        app.url("/identity/1.0/oauth/authorize")
    );
    let html = browser
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"name="decision" value="deny" formnovalidate"#),
        "{html}"
    );
    let csrf = hidden(&html, "csrf");
    let deny = |csrf: String, client: reqwest::Client| {
        let (url, token) = (app.url("/identity/1.0/oauth/authorize"), token.clone());
        async move {
            client
                .post(url)
                .form(&[
                    ("oauth_token", token.as_str()),
                    ("feedId", feed_id),
                    ("invokeArgs", "sessId=77"),
                    ("csrf", csrf.as_str()),
                    ("decision", "deny"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // Without the page's cookie (another site's form), denying is refused like approving.
    assert_problem(
        deny(csrf.clone(), no_redirects()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = deny(csrf, browser.clone()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, format!("{pub_base}/callback"));
    let names: Vec<String> = form_map_ordered(query)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        [
            "feedId",
            "companyId",
            "sessId",
            "oauth_problem",
            "oauth_token"
        ],
        "{location}"
    );
    let m = form_map(query);
    assert_eq!(m["oauth_problem"], "user_refused");
    assert_eq!(m["oauth_token"], token);
    assert!(!m.contains_key("oauth_verifier"));

    // The request token is dead: the page refuses it, and so does the access-token step.
    let r = browser.get(&page_url).send().await.unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let secret = publisher.pending.lock().unwrap()[&token].clone();
    let sig = format!("{}&{secret}", w.secret);
    let q = oauth_query(&w, &[("oauth_token", &token), ("oauth_signature", &sig)]);
    let r = app
        .http
        .get(format!(
            "{}?{q}",
            app.url("/identity/1.0/oauth/accesstoken")
        ))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert!(publisher.linked.lock().unwrap().is_empty());
    app.stop().await;
}

// --- pruning ----------------------------------------------------------------------

/// Poll `check` until it holds; fail after [`WAIT`].
async fn eventually(what: &str, check: impl AsyncFn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn expired_tokens_and_notifications_past_retention_are_pruned_and_live_ones_kept() {
    use portcullis_core::secret::{Secret, SecretKind};
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        wave: WaveConfig {
            retention: Duration::from_secs(3600),
            prune_interval: Duration::from_millis(50),
            ..Default::default()
        },
        ..dev()
    })
    .await;
    let clock = app.clock.clone().unwrap();
    let (w, _, _) = with_publisher(&app).await;
    // A second handle on the store, and the key tokens are hashed under.
    let (store, master) = portcullis_server::bootstrap::open(&app.locations(), false)
        .await
        .unwrap();
    let view = portcullis_server::live_view::LiveView::load(store.clone(), master, clock.clone())
        .await
        .unwrap();
    let key = view.get().hash_key().cloned().unwrap();
    let hash = |kind, text: &str| Secret::parse(kind, text).unwrap().hash(&key);
    let request_token = |skew: i64| {
        let q = oauth_query(
            &w,
            &[("oauth_timestamp", &(now() as i64 + skew).to_string())],
        );
        let app = &app;
        async move {
            let r = request_token_with(app, &q).await;
            assert_eq!(r.status(), StatusCode::OK);
            form_map(&r.text().await.unwrap())["oauth_token"].clone()
        }
    };
    let carol = app
        .create_user("carol@example.com", PASSWORD, json!({}))
        .await;
    let carol_id = portcullis_core::ids::RecordId::parse(carol["id"].as_str().unwrap()).unwrap();
    subscribe(&app, "carol@example.com", &w.news_feed).await;
    let old_api = api_token(&app, &w.client_id, &w.secret).await;
    let old_req = hash(SecretKind::OAuth1Token, &request_token(0).await);
    let r = notify(
        &app,
        &[
            ("X-apitoken", &old_api),
            ("topic", &w.news_topic),
            ("message", "old"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(store.inbox(&carol_id, 0, 10).await.unwrap().len(), 1);

    // Past the request token's 10 minutes: it goes, a fresh one stays.
    clock.advance(700);
    let live_req = hash(SecretKind::OAuth1Token, &request_token(700).await);
    eventually("the expired request token", async || {
        store.request_token(&old_req, 0).await.unwrap().is_none()
    })
    .await;
    assert!(store.request_token(&live_req, 0).await.unwrap().is_some());
    assert_eq!(
        store.inbox(&carol_id, 0, 10).await.unwrap().len(),
        1,
        "within retention"
    );

    // Past the API token's 12 hours and the hour of retention.
    clock.advance(12 * 3600);
    let old_api_hash = hash(SecretKind::WaveApiToken, &old_api);
    let new_api = api_token(&app, &w.client_id, &w.secret).await;
    let r = notify(
        &app,
        &[
            ("X-apitoken", &new_api),
            ("topic", &w.news_topic),
            ("message", "new"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    eventually(
        "the expired API token and the old notification",
        async || {
            store.api_token(&old_api_hash, 0).await.unwrap().is_none()
                && store.inbox(&carol_id, 0, 10).await.unwrap().len() == 1
        },
    )
    .await;
    let kept = store.inbox(&carol_id, 0, 10).await.unwrap();
    assert_eq!(kept[0].notification.message, "new");
    let new_api_hash = hash(SecretKind::WaveApiToken, &new_api);
    assert!(store.api_token(&new_api_hash, 0).await.unwrap().is_some());
    assert!(
        store.request_token(&live_req, 0).await.unwrap().is_none(),
        "expired by now"
    );
    app.stop().await;
}

// --- live delivery across nodes ----------------------------------------------------

/// Two real nodes on one PostgreSQL database with one master key, as in `cluster.rs`:
/// a subscriber streaming from node B receives, live, a point-to-point notification
/// accepted by node A (PostgreSQL `NOTIFY` wakes B's fan-out). Run with `--nocapture`
/// to see the measured delay.
#[tokio::test]
async fn a_stream_on_node_b_receives_live_what_node_a_accepted() {
    use base64::Engine;
    let Some(db) = portcullis_store::test_db::TestDatabase::create().await else {
        return;
    };
    let key =
        base64::engine::general_purpose::STANDARD.encode(portcullis_core::random_bytes::<32>());
    let node = || {
        TestApp::spawn_with(Options {
            database_url: Some(db.url.clone()),
            master_key: Some(key.clone()),
            issuer: Some("https://wave.cluster.test".to_owned()),
            ..dev()
        })
    };
    let a = node().await;
    let b = node().await;
    let (w, publisher, pub_base) = with_publisher(&a).await;
    let access = link(&a, &publisher, &pub_base, &w, "alice@example.com", "s1").await;
    subscribe(&a, "bob@example.com", &w.news_feed).await;
    let mut alice = open_stream(&b, "alice@example.com", None).await;
    let mut bob = open_stream(&b, "bob@example.com", None).await;
    let api = api_token(&a, &w.client_id, &w.secret).await;
    let mut delays = Vec::new();
    for i in 0..5 {
        let message = format!("order {i} shipped");
        let sent = std::time::Instant::now();
        let r = notify(
            &a,
            &[
                ("X-apitoken", &api),
                ("topic", &w.p2p_topic),
                ("message", &message),
                ("accesstoken", &access),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let e = alice
            .next(WAIT)
            .await
            .expect("node B delivers node A's notification live");
        delays.push(sent.elapsed());
        assert_eq!(e.data["message"], message.as_str());
    }
    // Point-to-point: bob, on the same node, got none of them; his first event is the
    // broadcast sent after them.
    let r = notify(
        &a,
        &[
            ("X-apitoken", &api),
            ("topic", &w.news_topic),
            ("message", "sale"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(bob.next(WAIT).await.unwrap().data["message"], "sale");
    delays.sort();
    println!(
        "node A accepted -> node B's stream delivered (5 notifications, POST included): min {:?}, median {:?}, max {:?}",
        delays[0], delays[2], delays[4]
    );
    assert!(
        delays[2] < super_fast(),
        "the median delay {:?} is the poll's, not NOTIFY's",
        delays[2]
    );
    b.stop().await;
    a.stop().await;
}

/// Well under the fan-out's fallback poll (1 s): only a `NOTIFY` wake-up is this fast.
fn super_fast() -> Duration {
    portcullis_server::wave::fanout::POLL / 2
}

/// A notification stored by another process on the same database (here a second,
/// independent store handle, as the CLI opens one) reaches an open stream live: on
/// SQLite by the fan-out's poll, on PostgreSQL by `NOTIFY`.
#[tokio::test]
async fn a_notification_stored_by_another_process_reaches_open_streams() {
    let app = TestApp::spawn_with(dev()).await;
    let (w, _, _) = with_publisher(&app).await;
    subscribe(&app, "bob@example.com", &w.news_feed).await;
    let mut bob = open_stream(&app, "bob@example.com", None).await;
    let (store, _) = portcullis_server::bootstrap::open(&app.locations(), false)
        .await
        .unwrap();
    let topic = store.topic_by_uri(&w.news_topic).await.unwrap().unwrap();
    let (id, to) = store
        .insert_notification(&portcullis_core::wave::NewNotification {
            topic_id: topic.id.clone(),
            topic: topic.uri.clone(),
            topic_name: None,
            feed_id: topic.feed_id.clone(),
            client_id: topic.client_id.clone(),
            to_user: None,
            message: "from elsewhere".into(),
            link: None,
            image_png: None,
            created_at: app.now(),
        })
        .await
        .unwrap();
    assert_eq!(to.len(), 1);
    let e = bob
        .next(WAIT)
        .await
        .expect("delivered without reconnecting");
    assert_eq!(e.data["message"], "from elsewhere");
    assert_eq!(e.id, id.to_string());
    app.stop().await;
}
