//! `portcullis listen` against the real server: it signs in as a subscriber, prints the
//! notifications a publisher sends to a feed it follows, and refuses a wrong password.
#[path = "../../portcullis-server/tests/common/mod.rs"]
mod common;
mod support;

use common::{Options, TestApp};
use portcullis_server::config::GatewayConfig;
use reqwest::StatusCode;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::portcullis;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const PASSWORD: &str = "correct horse battery";

/// A publisher app with a broadcast feed and topic, alice subscribed to it; the app's
/// API token and the topic URI.
async fn world(app: &TestApp) -> (String, String) {
    let (client_id, secret, _) = app.client(&[]).await;
    let feed = app
        .create_feed(&client_id, json!({"name": "News", "kind": "broadcast"}))
        .await;
    let feed = feed["id"].as_str().unwrap();
    let topic = app.create_topic(&client_id, feed, "status").await;
    app.create_user("alice@example.com", PASSWORD, json!({}))
        .await;
    app.subscribe("alice@example.com", PASSWORD, feed).await;
    let xml = app.wave_api_token_xml(&client_id, &secret).await;
    let token = xml
        .split("<apitoken>")
        .nth(1)
        .and_then(|r| r.split("</apitoken>").next())
        .unwrap_or_else(|| panic!("no apitoken in {xml}"))
        .trim()
        .to_owned();
    (token, topic)
}

fn listen(app: &TestApp, extra: &[&str]) -> tokio::process::Command {
    let mut cmd = portcullis();
    cmd.args([
        "listen",
        "--server",
        &app.base,
        "--email",
        "alice@example.com",
    ])
    .args(extra);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn listen_prints_the_notifications_of_followed_feeds_as_they_arrive() {
    let app = TestApp::spawn_with(Options {
        gateway: GatewayConfig {
            allow_secrets_over_http: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (token, topic) = world(&app).await;
    let mut child = listen(&app, &["--count", "2"])
        .env("PORTCULLIS_PASSWORD", PASSWORD)
        .spawn()
        .unwrap();
    // Wait (bounded) until it says it is listening: then the stream is open.
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), err.next_line())
        .await
        .expect("listen starts within 30 s")
        .unwrap()
        .unwrap_or_default();
    assert!(line.contains("listening as alice@example.com"), "{line}");
    for (message, link) in [
        ("Build passed", "https://ci.example/1"),
        ("Deploy done", ""),
    ] {
        let mut form = vec![
            ("X-apitoken", token.as_str()),
            ("topic", &topic),
            ("message", message),
        ];
        if !link.is_empty() {
            form.push(("link", link));
        }
        let r = app
            .http
            .post(app.url("/notificationgateway/1.0/notification"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("listen stops after --count notifications")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(status.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].ends_with(&format!("{topic}: Build passed <https://ci.example/1>")),
        "{out}"
    );
    assert!(
        lines[1].ends_with(&format!("{topic}: Deploy done")),
        "{out}"
    );
    assert!(!out.contains(PASSWORD));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_from_stdin_is_refused_with_exit_1() {
    let app = TestApp::spawn().await;
    app.create_user("alice@example.com", PASSWORD, json!({}))
        .await;
    let mut child = listen(&app, &[]).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"not the password\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("listen gives up on a refused sign-in")
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the sign-in"), "{err}");
    assert!(!err.contains("not the password"));
    app.stop().await;
}
