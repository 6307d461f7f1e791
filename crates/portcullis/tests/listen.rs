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

/// A CA of our own, and a certificate for 127.0.0.1 it signed: (CA PEM, cert PEM, key PEM).
fn private_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Against a server whose certificate a private CA signed: without `--ca-file` it stops at
/// once (exit 1) with the TLS verifier's own reason; with the CA it signs in.
#[tokio::test]
async fn a_private_ca_is_trusted_with_ca_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_pki();
    let files = portcullis_server::config::TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let trusting = {
        let ca = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap()
    };
    let app = TestApp::spawn_with(Options {
        tls: Some(files),
        http: Some(trusting),
        ..Default::default()
    })
    .await;
    assert!(app.base.starts_with("https://"), "{}", app.base);
    app.create_user("alice@example.com", PASSWORD, json!({}))
        .await;

    let out = tokio::time::timeout(
        Duration::from_secs(30),
        listen(&app, &[])
            .env("PORTCULLIS_PASSWORD", PASSWORD)
            .output(),
    )
    .await
    .expect("listen gives up on a certificate it cannot verify")
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot verify the TLS certificate"), "{err}");
    // The verifier's reason, not just "error sending request".
    assert!(
        err.contains("invalid peer certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(err.contains("--ca-file"), "{err}");

    let mut child = listen(&app, &["--ca-file", ca_file.to_str().unwrap()])
        .env("PORTCULLIS_PASSWORD", PASSWORD)
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), err.next_line())
        .await
        .expect("listen starts within 30 s")
        .unwrap()
        .unwrap_or_default();
    assert!(line.contains("listening as alice@example.com"), "{line}");
    child.kill().await.unwrap();

    let out = tokio::time::timeout(
        Duration::from_secs(30),
        listen(
            &app,
            &["--ca-file", dir.path().join("cert.pem").to_str().unwrap()],
        )
        .env("PORTCULLIS_PASSWORD", PASSWORD)
        .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the server's own leaf is not a CA: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not vouch for it"));
    app.stop().await;
}
