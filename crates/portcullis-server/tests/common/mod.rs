//! Test harness: the real application on `127.0.0.1:0` with a fresh data directory, and
//! one method per endpoint so tests read as user stories.
//!
//! The store is the data directory's SQLite file, or, with `PORTCULLIS_TEST_BACKEND=postgres`,
//! a fresh PostgreSQL database per `TestApp` (`portcullis_store::test_db`), dropped with
//! it. CI runs the whole suite both ways (`.ci/run`).
#![allow(dead_code)]

use portcullis_core::clock::{Clock, ManualClock, SystemClock};
use portcullis_server::Application;
use portcullis_server::bootstrap::Locations;
use portcullis_server::config::ServerConfig;
use portcullis_store::test_db::TestDatabase;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";

pub struct TestApp {
    pub base: String,
    pub issuer: String,
    pub http: Client,
    pub data_dir: tempfile::TempDir,
    pub clock: Option<Arc<ManualClock>>,
    /// The database URL the server was given (`None`: SQLite in the data directory).
    pub database_url: Option<String>,
    /// The PostgreSQL database this app created, dropped with it.
    database: Option<TestDatabase>,
    /// The running server's state: what tests reach past HTTP (a usage flush now).
    pub state: portcullis_server::state::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Options {
    pub manual_clock: bool,
    pub jwks_max_age: u64,
    /// Gateway settings (header names, trusted proxies, failure limit).
    pub gateway: portcullis_server::config::GatewayConfig,
    /// A database to use instead of a fresh one (several nodes on one database); the
    /// caller keeps it alive.
    pub database_url: Option<String>,
    /// The master key (base64), for nodes that must share one.
    pub master_key: Option<String>,
    /// PostgreSQL pool size and timeout.
    pub database_pool: portcullis_store::postgres::PgOptions,
    /// `iss` of tokens (nodes of one cluster share one); default the bound address.
    pub issuer: Option<String>,
    /// Adobe Wave settings (private image URLs).
    pub wave: portcullis_server::config::WaveConfig,
    /// Serve HTTPS with these files; `http` must then trust their CA.
    pub tls: Option<portcullis_server::config::TlsFiles>,
    /// The client the harness's methods use (default: a plain `Client::new()`).
    pub http: Option<Client>,
    /// Request sizes and timeouts.
    pub limits: portcullis_server::config::Limits,
    /// Redis shared by the nodes of a test, and the prefix that keeps its keys apart.
    pub redis: Option<(String, String)>,
    /// Usage analytics settings.
    pub usage: portcullis_server::config::UsageConfig,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            manual_clock: false,
            jwks_max_age: 3600,
            gateway: Default::default(),
            database_url: None,
            master_key: None,
            database_pool: Default::default(),
            issuer: None,
            wave: Default::default(),
            tls: None,
            http: None,
            limits: Default::default(),
            redis: None,
            usage: Default::default(),
        }
    }
}

/// Whether this run of the suite is against PostgreSQL (`PORTCULLIS_TEST_BACKEND=postgres`).
pub fn postgres_requested() -> bool {
    std::env::var("PORTCULLIS_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let mut config = ServerConfig::new(data_dir.path().join("data"));
        // Outside CI an unreachable PostgreSQL falls back to SQLite (said on stderr); in
        // CI `TestDatabase::create` fails the test instead.
        let database = match opts.database_url {
            None if postgres_requested() => TestDatabase::create().await,
            _ => None,
        };
        config.database_url = opts
            .database_url
            .or_else(|| database.as_ref().map(|d| d.url.clone()));
        config.master_key = opts.master_key;
        config.database_pool = opts.database_pool;
        config.issuer = opts.issuer;
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        config.jwks_max_age = opts.jwks_max_age;
        config.gateway = opts.gateway;
        config.wave = opts.wave;
        config.tls = opts.tls;
        config.limits = opts.limits;
        config.usage = opts.usage;
        if let Some((url, prefix)) = opts.redis {
            config.redis_url = Some(url);
            config.redis_prefix = prefix;
        }
        let manual = opts
            .manual_clock
            .then(|| Arc::new(ManualClock::new(SystemClock.now())));
        if let Some(c) = &manual {
            config.clock = c.clone();
        }
        let database_url = config.database_url.clone();
        let app = Application::build(config).await.expect("the app builds");
        let addr = app.local_addr();
        let scheme = if app.serves_tls() { "https" } else { "http" };
        let issuer = app.issuer().to_owned();
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        Self {
            base: format!("{scheme}://{addr}"),
            issuer,
            http: opts.http.unwrap_or_default(),
            data_dir,
            clock: manual,
            database_url,
            database,
            state,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stop the server and wait until it has drained.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// `"sqlite"` or `"postgres"`: the store this app runs on.
    pub fn backend(&self) -> &'static str {
        match &self.database_url {
            Some(_) => "postgres",
            None => "sqlite",
        }
    }

    /// Where the server's data is, as the CLI would be told: its data directory and
    /// database URL. Opening it gives a second, independent handle on the same store.
    pub fn locations(&self) -> Locations {
        Locations {
            data_dir: self.data_dir.path().join("data"),
            database_url: self.database_url.clone(),
            ..Locations::default()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        self.admin_as(ADMIN_TOKEN, method, path, body).await
    }

    pub async fn admin_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    pub async fn create_org(&self, products: &[&str], sandboxes: &[&str]) -> Value {
        let r = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/orgs",
                Some(json!({"name": "Acme", "products": products, "sandboxes": sandboxes})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    pub async fn create_app(&self, org_id: &str, scopes: &[&str]) -> Value {
        let r = self
            .admin(
                reqwest::Method::POST,
                "/admin/v1/apps",
                Some(json!({"org_id": org_id, "name": "Partner app", "scopes": scopes})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        r.json().await.unwrap()
    }

    /// `POST /admin/v1/apps` with `body` as the bootstrap admin; the created app.
    pub async fn create_app_with(&self, body: Value) -> Value {
        let (status, v) = self
            .call(reqwest::Method::POST, "/admin/v1/apps", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    /// `POST /admin/v1/orgs/{org}/resources` with `body` as the bootstrap admin; the
    /// created resource.
    pub async fn create_resource(&self, org_id: &str, body: Value) -> Value {
        let path = format!("/admin/v1/orgs/{org_id}/resources");
        let (status, v) = self.call(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v
    }

    /// A fresh secret of the app: `(secret id, secret)`.
    pub async fn create_secret(&self, client_id: &str) -> (String, String) {
        let r = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/v1/apps/{client_id}/secrets"),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// An org, an app with `scopes`, and a secret: `(client_id, secret, org_id)`.
    pub async fn client(&self, scopes: &[&str]) -> (String, String, String) {
        let org = self.create_org(&[], &["prod"]).await;
        let org_id = org["id"].as_str().unwrap().to_owned();
        let app = self.create_app(&org_id, scopes).await;
        let client_id = app["client_id"].as_str().unwrap().to_owned();
        let (_, secret) = self.create_secret(&client_id).await;
        (client_id, secret, org_id)
    }

    /// `POST /oauth/token` with client_secret_basic.
    pub async fn token(&self, client_id: &str, secret: &str, scope: Option<&str>) -> Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.http
            .post(self.url("/oauth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn access_token(&self, client_id: &str, secret: &str, scope: Option<&str>) -> String {
        let r = self.token(client_id, secret, scope).await;
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Response {
        self.http
            .post(self.url("/oauth/introspect"))
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    pub async fn revoke(&self, client_id: &str, secret: &str, token: &str) -> Response {
        self.http
            .post(self.url("/oauth/revoke"))
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// An admin call as the bootstrap admin: `(status, body)`; the body is `Value::Null`
    /// when it is empty.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(ADMIN_TOKEN, method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.admin_as(token, method, path, body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text}"))
        };
        (status, v)
    }

    /// Create a user as the bootstrap admin; returns the user object.
    pub async fn create_user(&self, email: &str, password: &str, roles: Value) -> Value {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                "/admin/v1/users",
                Some(json!({"email": email, "password": password, "name": "Test User", "roles": roles})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    }

    /// `POST /admin/v1/sessions`; the raw response.
    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.http
            .post(self.url("/admin/v1/sessions"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Sign in and return the session token.
    pub async fn session(&self, email: &str, password: &str) -> String {
        let r = self.sign_in(email, password).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// Walk a listing page by page (`limit` per page, following `next`) and return every
    /// item. Panics if a page is larger than `limit` or the walk does not end.
    pub async fn walk_pages(&self, path: &str, limit: u32) -> Vec<Value> {
        self.walk_pages_of(path, limit, "items").await
    }

    /// [`TestApp::walk_pages`] for a listing whose items are under `key` (the events
    /// listing's `events`); a `next` of `null` ends it like an absent one.
    pub async fn walk_pages_of(&self, path: &str, limit: u32, key: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let url = match &after {
                Some(a) => format!("{path}{sep}limit={limit}&after={a}"),
                None => format!("{path}{sep}limit={limit}"),
            };
            let (status, page) = self.call(reqwest::Method::GET, &url, None).await;
            assert_eq!(status, StatusCode::OK, "GET {url}: {page}");
            let batch = page[key]
                .as_array()
                .unwrap_or_else(|| panic!("a page has {key}: {page}"))
                .clone();
            assert!(
                batch.len() <= limit as usize,
                "GET {url} returned {} items",
                batch.len()
            );
            items.extend(batch);
            match page.get("next").and_then(Value::as_str) {
                Some(n) => after = Some(n.to_owned()),
                None => return items,
            }
        }
        panic!("the listing {path} did not end after 1000 pages");
    }

    /// `GET /metrics` as a scraper with no preference (`Accept: */*`): the Prometheus text
    /// format.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn assert_ready(&self) {
        let r = self.http.get(self.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "server not ready");
    }
}

/// The value of the first metric line of `text` starting with `needle` (a series name
/// and its labels, or a name and a space). Panics, showing `text`, when there is none.
pub fn metric_value(text: &str, needle: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(needle))
        .unwrap_or_else(|| panic!("no metric line starting with {needle} in:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap()
}

/// Decode a JWT's payload without verifying (for looking at claims in tests).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

/// Check that `r` is an RFC 9457 problem in Portcullis's format with `status`; return it.
pub async fn assert_problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status, "unexpected status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert_eq!(ct, "application/problem+json", "content type of: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    check_problem_body(&v, status);
    v
}

/// The members every problem body has: `type` (a Portcullis URN), `status` equal to the
/// HTTP status, a string `code`, and a `detail` for people.
pub fn check_problem_body(v: &Value, status: StatusCode) {
    let ty = v["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no 'type' in {v}"));
    assert!(ty.starts_with("urn:portcullis:error:"), "type {ty} in {v}");
    assert!(
        ty.len() > "urn:portcullis:error:".len(),
        "empty slug in {v}"
    );
    assert_eq!(
        v["status"].as_u64(),
        Some(status.as_u16() as u64),
        "status member of {v}"
    );
    assert!(v["code"].is_string(), "code must be a string: {v}");
    let detail = v["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no 'detail' in {v}"));
    assert!(!detail.trim().is_empty(), "empty detail in {v}");
}

/// Check that `r` is an RFC 6749 section 5.2 error with `status` and `error`; return the body.
pub async fn assert_oauth_error(r: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(r.status(), status, "unexpected status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert!(
        ct.starts_with("application/json"),
        "content type {ct} of: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(v["error"], error, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty()),
        "error_description missing in {v}"
    );
    v
}

/// Ids of listed items under `key`.
pub fn ids(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

/// What a gateway test needs: an org with product `events` and sandbox `prod`, an app in
/// it (scopes `read` and `write`, product `events`, `read` access to `prod`) with a secret,
/// and a resource in `prod` that needs product `events` and scope `read`.
pub struct GatewayWorld {
    pub org: String,
    pub client_id: String,
    pub secret: String,
    pub resource: String,
}

impl TestApp {
    /// Build a [`GatewayWorld`] through the admin API.
    pub async fn gateway_world(&self, allow_unauthenticated: bool) -> GatewayWorld {
        let org = self.create_org(&["events"], &["prod"]).await;
        let org = org["id"].as_str().unwrap().to_owned();
        let (status, app) = self
            .call(
                reqwest::Method::POST,
                "/admin/v1/apps",
                Some(
                    json!({"org_id": org, "name": "caller", "scopes": ["read", "write"],
                    "products": ["events"], "sandboxes": {"prod": "read"}}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        let client_id = app["client_id"].as_str().unwrap().to_owned();
        let (_, secret) = self.create_secret(&client_id).await;
        let resource = self
            .create_resource_id(
                &org,
                json!({"name": "datastream", "sandbox": "prod", "product": "events",
                    "scopes": ["read"], "allow_unauthenticated": allow_unauthenticated}),
            )
            .await;
        GatewayWorld {
            org,
            client_id,
            secret,
            resource,
        }
    }

    /// [`TestApp::create_resource`], returning only the new resource's id.
    pub async fn create_resource_id(&self, org: &str, body: Value) -> String {
        self.create_resource(org, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A certificate and its private key made with `rcgen` (independent of the server), with
/// a `jsonwebtoken` encoder for JWTs signed by that key (the server never signs with
/// `jsonwebtoken`).
pub struct TestCert {
    pub pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    pub alg: jsonwebtoken::Algorithm,
}

impl TestCert {
    /// An RSA-2048 (RS256) or P-256 (ES256) certificate valid from `from` to `to` (unix s).
    pub fn new(alg: jsonwebtoken::Algorithm, from: i64, to: i64) -> Self {
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => {
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
            jsonwebtoken::Algorithm::ES256 => {
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            }
            other => panic!("no test certificates for {other:?}"),
        }
        .expect("key generation");
        let mut p = rcgen::CertificateParams::new(vec!["service.example".into()]).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Billing service account");
        p.not_before = ::time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        p.not_after = ::time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        let cert = p.self_signed(&key).expect("self-signed certificate");
        Self {
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            alg,
        }
    }

    /// Valid from an hour ago for a year.
    pub fn valid(alg: jsonwebtoken::Algorithm, now: i64) -> Self {
        Self::new(alg, now - 3600, now + 365 * 86_400)
    }

    /// A JWT over `claims` signed with this certificate's key; `kid` in the header when given.
    pub fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let key = match self.alg {
            jsonwebtoken::Algorithm::RS256 => {
                jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes())
            }
            _ => jsonwebtoken::EncodingKey::from_ec_pem(self.key_pem.as_bytes()),
        }
        .expect("the private key loads");
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key).expect("signs")
    }
}

/// An unsigned (`alg: none`) or forged JWT with this header and claims, by hand.
pub fn forged_jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b.encode(header.to_string()),
        b.encode(claims.to_string()),
        b.encode(signature)
    )
}

/// An HS256 JWT keyed with `secret` (the classic confusion: a public key as HMAC key).
pub fn hs256_jwt(kid: Option<&str>, claims: &Value, secret: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

impl TestApp {
    /// `POST /admin/v1/apps/{client_id}/certificates` with the PEM as
    /// `application/x-pem-file`: `(status, body)`.
    pub async fn upload_certificate(&self, client_id: &str, pem: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(&format!("/admin/v1/apps/{client_id}/certificates")))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/x-pem-file")
            .body(pem.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Upload and return the new certificate's id (its `kid`).
    pub async fn certificate_id(&self, client_id: &str, pem: &str) -> String {
        let (status, v) = self.upload_certificate(client_id, pem).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// `POST <path>` with a form body and nothing else.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The server's clock now (the manual clock when there is one).
    pub fn now(&self) -> i64 {
        match &self.clock {
            Some(c) => c.now(),
            None => SystemClock.now(),
        }
    }
}

/// [`assert_oauth_error`], returning only the `error_description`.
pub async fn oauth_description(r: Response, status: StatusCode, error: &str) -> String {
    let v = assert_oauth_error(r, status, error).await;
    v["error_description"].as_str().unwrap().to_owned()
}

impl TestApp {
    /// `GET <path>` without credentials, as JSON (asserting 200).
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }
}

impl TestApp {
    /// `POST /admin/v1/apps/{client_id}/keypairs` (with `{"alg": alg}` when given) as the
    /// bootstrap admin; the created key pair, private key included.
    pub async fn create_keypair(&self, client_id: &str, alg: Option<&str>) -> Value {
        let path = format!("/admin/v1/apps/{client_id}/keypairs");
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                &path,
                alg.map(|a| json!({ "alg": a })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v
    }

    /// `GET /gateway/v1/check?resource=<resource>` with `headers`.
    pub async fn gateway_check(
        &self,
        method: reqwest::Method,
        resource: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self.http.request(
            method,
            self.url(&format!("/gateway/v1/check?resource={resource}")),
        );
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }
}

/// Check that `r` is the gateway's denial `code` with `status` (problem body and
/// `x-portcullis-code`); return the body.
pub async fn assert_gateway_denial(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        r.headers()
            .get("x-portcullis-code")
            .and_then(|v| v.to_str().ok()),
        Some(code),
        "x-portcullis-code (status {})",
        r.status()
    );
    let v = assert_problem(r, StatusCode::from_u16(status).unwrap()).await;
    assert_eq!(v["code"], code, "{v}");
    v
}

/// The console as a browser without JavaScript sees it: a client that does not follow
/// redirects, the session cookie, and the session's CSRF token.
pub struct ConsoleSession {
    pub http: Client,
    /// `pcs_console=<token>`, for the `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

/// A client that does not follow redirects (to see the console's 303s).
pub fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The whole `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// `name=value` of a `Set-Cookie` header line.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The value of the hidden input `name` in a page (the first one).
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_owned())
}

impl TestApp {
    /// `GET /console/login`: the sign-in cookie (`name=value`) and the form's CSRF token.
    pub async fn console_login_form(&self, http: &Client) -> (String, String) {
        let r = http.get(self.url("/console/login")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let cookie = cookie_pair(&set_cookie(&r, "pcs_console_login").expect("sign-in cookie"));
        let html = r.text().await.unwrap();
        (cookie, hidden_field(&html, "csrf").expect("a CSRF field"))
    }

    /// Sign in through the console's form; the raw answer.
    pub async fn console_post_login(&self, http: &Client, email: &str, password: &str) -> Response {
        let (cookie, csrf) = self.console_login_form(http).await;
        http.post(self.url("/console/login"))
            .header("cookie", cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Sign in through the console and read the CSRF token off the organizations page.
    pub async fn console_session(&self, email: &str, password: &str) -> ConsoleSession {
        let http = no_redirects();
        let r = self.console_post_login(&http, email, password).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in refused");
        let cookie = cookie_pair(&set_cookie(&r, "pcs_console").expect("session cookie"));
        let page = http
            .get(self.url("/console/orgs"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = hidden_field(&page.text().await.unwrap(), "csrf").expect("sign-out form's CSRF");
        ConsoleSession { http, cookie, csrf }
    }

    /// A user `<role>@example.com` with `role` in `org`, signed in to the admin API: the
    /// session token.
    pub async fn user_session(&self, org: &str, role: &str) -> String {
        let email = format!("{role}@example.com");
        self.create_user(&email, "correct horse battery", json!({org: role}))
            .await;
        self.session(&email, "correct horse battery").await
    }

    /// A user with `role` in `org`, signed in to the console.
    pub async fn console_user(&self, org: &str, role: &str) -> ConsoleSession {
        let email = format!("{role}-{}@example.com", &org[..8].to_lowercase());
        self.create_user(&email, "correct horse battery", json!({org: role}))
            .await;
        self.console_session(&email, "correct horse battery").await
    }

    /// `/gateway/v1/check` for `world`'s resource with a bearer token and the app's headers.
    pub async fn bearer_check(&self, world: &GatewayWorld, token: &str) -> Response {
        let bearer = format!("Bearer {token}");
        self.gateway_check(
            reqwest::Method::GET,
            &world.resource,
            &[
                ("authorization", &bearer),
                ("x-api-key", &world.client_id),
                ("x-gw-ims-org-id", &world.org),
            ],
        )
        .await
    }
}

impl ConsoleSession {
    pub async fn get(&self, app: &TestApp, path: &str) -> Response {
        self.http
            .get(app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// POST a form with this session's cookie and CSRF token added.
    pub async fn post(&self, app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        self.http
            .post(app.url(path))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

/// Adobe Wave through its own endpoints.
impl TestApp {
    /// `POST /admin/v1/apps/{client_id}/feeds` as the bootstrap admin; the created feed.
    pub async fn create_feed(&self, client_id: &str, body: Value) -> Value {
        let path = format!("/admin/v1/apps/{client_id}/feeds");
        let (status, v) = self.call(reqwest::Method::POST, &path, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v
    }

    /// A topic named `name` in the feed; its `uri`.
    pub async fn create_topic(&self, client_id: &str, feed_id: &str, name: &str) -> String {
        let path = format!("/admin/v1/apps/{client_id}/feeds/{feed_id}/topics");
        let (status, v) = self
            .call(reqwest::Method::POST, &path, Some(json!({"name": name})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {v}");
        v["uri"].as_str().unwrap().to_owned()
    }

    /// `POST /identity/1.0/auth/apitoken.xml` with HTTP Basic; the XML it answered (200,
    /// `application/xml`).
    pub async fn wave_api_token_xml(&self, client_id: &str, secret: &str) -> String {
        let r = self
            .http
            .post(self.url("/identity/1.0/auth/apitoken.xml"))
            .basic_auth(client_id, Some(secret))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/xml"), "{ct}");
        r.text().await.unwrap()
    }

    /// Subscribe the user to a broadcast feed (`PUT /notificationgateway/1.0/subscriptions/…`).
    pub async fn subscribe(&self, email: &str, password: &str, feed_id: &str) {
        let r = self
            .http
            .put(self.url(&format!("/notificationgateway/1.0/subscriptions/{feed_id}")))
            .basic_auth(email, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// A Python interpreter (`PORTCULLIS_TEST_PYTHON`, else `python3`) that can import every
/// module of `modules` (comma-separated, as in `import a, b`); `None` (after saying why)
/// when it cannot, except under `CI`, where that fails the test.
pub fn python_with(modules: &str) -> Option<String> {
    let python = std::env::var("PORTCULLIS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI needs {python} able to import {modules} (.ci/run installs them)");
    }
    eprintln!("skipped: {python} cannot import {modules}");
    None
}

/// A DPoP client's key pair: P-256, its proofs signed with `jsonwebtoken` (a library the
/// server does not sign with), the public JWK in their header as a client sends it.
pub struct DpopKey {
    pkcs8: Vec<u8>,
    pub jwk: Value,
}

impl Default for DpopKey {
    fn default() -> Self {
        Self::new()
    }
}

impl DpopKey {
    pub fn new() -> Self {
        let k = portcullis_core::token::generate_key(portcullis_core::token::Alg::ES256, "dpop")
            .expect("a P-256 key");
        let mut jwk = k.public_jwk;
        for member in ["kid", "use", "alg"] {
            jwk.as_object_mut().unwrap().remove(member);
        }
        Self {
            pkcs8: k.pkcs8,
            jwk,
        }
    }

    /// The key's RFC 7638 thumbprint: a bound token's `cnf.jkt`.
    pub fn jkt(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk.clone()).unwrap();
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap()
    }

    /// A fresh proof (new `jti`, `iat` now) for `htm` `htu`, with `ath` for `token` and
    /// `nonce` when given.
    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>, nonce: Option<&str>) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = json!({
            "jti": base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                portcullis_core::random_bytes::<12>()
            ),
            "htm": htm,
            "htu": htu,
            "iat": now,
        });
        if let Some(t) = token {
            claims["ath"] = portcullis_core::dpop::ath(t).into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        self.sign(&claims)
    }

    /// A proof with exactly `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
        )
        .unwrap()
    }
}

impl TestApp {
    /// `POST /oauth/token` (client_credentials, secret in the form) with a DPoP proof.
    pub async fn dpop_token(&self, client_id: &str, secret: &str, proof: Option<&str>) -> Response {
        let mut req = self.http.post(format!("{}/oauth/token", self.base)).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ]);
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send().await.expect("request")
    }

    /// The token endpoint's URL as a proof names it.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.issuer)
    }
}
