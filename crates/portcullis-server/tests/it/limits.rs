//! Limits on how big and how slow a request may be, and the login lockout, against the
//! real server: raw TCP clients that dribble bytes (slowloris), oversized headers and
//! tokens, and wrong passwords under an injected clock.

use crate::common;

use common::{Options, TestApp};
use portcullis_server::config::Limits;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn short_timeouts() -> Options {
    Options {
        limits: Limits {
            header_read_timeout: Duration::from_millis(800),
            request_timeout: Duration::from_millis(800),
            idle_timeout: Duration::from_millis(800),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Send `bytes` one at a time, `every` apart, until the server closes the connection
/// or `deadline` passes; returns what the server sent and when it closed (`None`: it
/// did not close before the deadline).
async fn dribble(
    stream: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    deadline: Instant,
) -> (Vec<u8>, Option<Instant>) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(every);
    let mut pending = bytes.iter();
    loop {
        tokio::select! {
            n = stream.read(&mut buf) => match n {
                Ok(0) | Err(_) => return (received, Some(Instant::now())),
                Ok(n) => received.extend_from_slice(&buf[..n]),
            },
            _ = tick.tick() => {
                if Instant::now() > deadline {
                    return (received, None);
                }
                if let Some(b) = pending.next() {
                    // The server may already have closed: a failed write ends it too.
                    if stream.write_all(&[*b]).await.is_err() {
                        return (received, Some(Instant::now()));
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_dropped_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(short_timeouts()).await;
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let deadline = started + Duration::from_secs(10);
    let slow_client = dribble(&mut slow, head, Duration::from_millis(100), deadline);
    // While it dribbles, other clients are served.
    let others = async {
        for _ in 0..5 {
            let r = app.http.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };
    let ((received, closed), ()) = tokio::join!(slow_client, others);
    let closed = closed.expect("the server never closed the slow connection");
    let held = closed - started;
    // Closed after the timeout (0.8 s), long before the ~7 s the head would take.
    assert!(
        held >= Duration::from_millis(700) && held < Duration::from_secs(4),
        "held for {held:?}"
    );
    // Nothing was served to it.
    assert!(
        !String::from_utf8_lossy(&received).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_silent_or_idle_kept_alive_connection_is_closed_too() {
    let app = TestApp::spawn_with(short_timeouts()).await;
    let mut idle = TcpStream::connect(addr(&app)).await.unwrap();
    let started = Instant::now();
    let (_, closed) = dribble(
        &mut idle,
        b"",
        Duration::from_millis(100),
        started + Duration::from_secs(10),
    )
    .await;
    let held = closed.expect("a silent connection was kept open") - started;
    assert!(held < Duration::from_secs(4), "held for {held:?}");
    // A kept-alive connection after its request.
    let mut kept = TcpStream::connect(addr(&app)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (received, closed) = dribble(
        &mut kept,
        b"",
        Duration::from_millis(100),
        started + Duration::from_secs(10),
    )
    .await;
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"));
    let held = closed.expect("an idle kept-alive connection was kept open") - started;
    assert!(held < Duration::from_secs(4), "held for {held:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_cut_by_the_request_timeout_with_a_408_in_the_paths_format() {
    let app = TestApp::spawn_with(short_timeouts()).await;
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let body = "grant_type=client_credentials&client_id=abcdefghijklmnopqrstuvwxyz";
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (received, closed) = dribble(
        &mut slow,
        body.as_bytes(),
        Duration::from_millis(100),
        started + Duration::from_secs(10),
    )
    .await;
    let held = closed.expect("the server never closed the slow request") - started;
    assert!(held < Duration::from_secs(4), "held for {held:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // /oauth/ errors are RFC 6749 JSON.
    assert!(text.contains(r#""error":"invalid_request""#), "{text}");
    assert!(text.contains("took too long"), "{text}");

    // The same on the admin API: a problem.
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let head = format!(
        "POST /admin/v1/orgs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n",
        common::ADMIN_TOKEN
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let (received, _) = dribble(
        &mut slow,
        b"{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        Duration::from_millis(100),
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("PCS-0408-408"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn oversized_headers_and_tokens_are_refused_in_the_documented_format() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let check = app.url(&format!("/gateway/v1/check?resource={}", w.resource));

    // A 1 MB bearer token: 431, problem+json, before any handler looks at it.
    let huge = "a".repeat(1024 * 1024);
    let r = app
        .http
        .get(&check)
        .bearer_auth(&huge)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "PCS-0431-431");
    // At the OAuth endpoints, in RFC 6749's format.
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .header("authorization", format!("Bearer {huge}"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");

    // A 20 KiB token (under the header limit, over the token limit): refused as not a
    // token, with the catalogue's code.
    let big = format!("{}.{}.{}", "a".repeat(10_000), "b".repeat(10_000), "c");
    let r = app
        .http
        .get(&check)
        .bearer_auth(&big)
        .header("x-api-key", &w.client_id)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-portcullis-code"], "EXEG-0500-401");

    // A 1 MB token in a form body: the OAuth form limit (64 KiB) refuses it.
    for (path, field) in [
        ("/oauth/introspect", "token"),
        ("/oauth/token", "assertion"),
        ("/ims/exchange/jwt", "jwt_token"),
    ] {
        let r = app
            .http
            .post(app.url(path))
            .basic_auth(&w.client_id, Some(&w.secret))
            .form(&[("grant_type", "client_credentials"), (field, huge.as_str())])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }

    // More than 100 headers: hyper refuses before any handler.
    let mut req = app.http.get(app.url("/healthz"));
    for i in 0..150 {
        req = req.header(format!("x-h{i}"), "v");
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // Bodies over 1 MiB are 413 on every route, unauthenticated ones included.
    let r = app
        .http
        .post(app.url("/admin/v1/sessions"))
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn an_account_locks_after_ten_wrong_passwords_until_the_window_passes() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    let clock = app.clock.clone().unwrap();
    let password = "correct horse battery staple";
    app.create_user("ann@example.com", password, json!({}))
        .await;
    app.create_user("bob@example.com", password, json!({}))
        .await;
    for i in 0..portcullis_server::LOGIN_LOCKOUT_LIMIT {
        let r = app.sign_in("ann@example.com", "wrong password!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    // Locked: even the right password, in any spelling of the address.
    for email in ["ann@example.com", "ANN@Example.com"] {
        let r = app.sign_in(email, password).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 900, "{retry}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "PCS-0429-429");
        assert!(body["detail"].as_str().unwrap().contains("Retry-After"));
    }
    // Other accounts are not affected.
    assert_eq!(
        app.sign_in("bob@example.com", password).await.status(),
        StatusCode::CREATED
    );
    // The console says so too, with Retry-After.
    let console = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let page = console
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a csrf field")
        .to_owned();
    let r = console
        .post(app.url("/console/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ann@example.com"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // After the window, the right password works again.
    clock.advance(portcullis_server::LOGIN_LOCKOUT_WINDOW);
    assert_eq!(
        app.sign_in("ann@example.com", password).await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}
