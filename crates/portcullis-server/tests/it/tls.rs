//! `--tls-cert` / `--tls-key`: the server terminates TLS itself (rustls), and then counts
//! every request as TLS for the secrets-over-TLS rules. The client is reqwest with rustls,
//! trusting only a CA made here with rcgen.

use crate::common;

use common::{Options, TestApp};
use portcullis_server::config::{ServerConfig, TlsFiles};
use portcullis_server::{Application, StartError};
use reqwest::StatusCode;
use std::path::Path;
use std::sync::Arc;

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
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
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn write_files(dir: &Path, cert: &str, key: &str) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key).unwrap();
    files
}

/// reqwest over rustls (aws-lc-rs), trusting `ca_pem` only.
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

async fn tls_app(dir: &Path) -> TestApp {
    let pki = pki();
    let files = write_files(dir, &pki.cert_pem, &pki.key_pem);
    TestApp::spawn_with(Options {
        tls: Some(files),
        http: Some(client_trusting(&pki.ca_pem)),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_token_grant_works_over_tls_and_the_issuer_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let app = tls_app(dir.path()).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    assert!(app.issuer.starts_with("https://"), "{}", app.issuer);
    let (client_id, secret, _org) = app.client(&["read"]).await;
    let r = app.token(&client_id, &secret, Some("read")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() > 20));
    let discovery: serde_json::Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["token_endpoint"].as_str().unwrap(),
        format!("{}/oauth/token", app.issuer)
    );

    // A client that does not trust the CA is refused by its own TLS stack.
    let stranger = client_trusting(&pki().ca_pem);
    assert!(stranger.get(app.url("/healthz")).send().await.is_err());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(app.url("/healthz").replace("https://", "http://"))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != StatusCode::OK,
        "plain HTTP must not be served on the TLS port"
    );
    app.stop().await;
}

#[tokio::test]
async fn under_tls_the_server_itself_counts_as_tls_for_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let app = tls_app(dir.path()).await;
    let w = app.gateway_world(false).await;
    // userKey + secret, no proxy, no --allow-secrets-over-http: allowed, since the
    // connection itself is TLS.
    let r = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &w.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The console's cookies are Secure.
    let r = app
        .http
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
    app.stop().await;

    // The same on plain HTTP is still refused.
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let r = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={}", w.resource)))
        .header("x-user-key", &w.client_id)
        .header("x-user-secret", &w.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["x-portcullis-code"], "EXEG-0500-401");
    let r = app
        .http
        .get(app.url("/console/login"))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Secure"), "{cookie}");
    app.stop().await;
}

async fn start_error(dir: &Path, files: TlsFiles) -> String {
    let mut config = ServerConfig::new(dir.join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.tls = Some(files);
    match Application::build(config).await {
        Err(e @ StartError::Tls(_)) => e.to_string(),
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("the server started with bad TLS files"),
    }
}

#[tokio::test]
async fn bad_tls_files_fail_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (pki(), pki());
    // A key that is not the certificate's.
    let files = write_files(dir.path(), &a.cert_pem, &b.key_pem);
    let e = start_error(dir.path(), files).await;
    assert!(e.contains("cannot be used together"), "{e}");
    assert!(e.contains("cert.pem") && e.contains("key.pem"), "{e}");
    // Not PEM at all.
    let files = write_files(dir.path(), "hello", &a.key_pem);
    let e = start_error(dir.path(), files).await;
    assert!(e.contains("holds no certificate"), "{e}");
    let files = write_files(dir.path(), &a.cert_pem, "not a key");
    let e = start_error(dir.path(), files).await;
    assert!(e.contains("cannot read a private key"), "{e}");
    // A missing file.
    let e = start_error(
        dir.path(),
        TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("key.pem"),
        },
    )
    .await;
    assert!(e.contains("missing.pem"), "{e}");
    // Nothing was created: the check comes before the data directory is opened.
    assert!(!dir.path().join("data").exists());
}
