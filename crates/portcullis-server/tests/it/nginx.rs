//! The shipped nginx configuration (`deploy/nginx/portcullis.conf`), run by the real
//! Debian nginx in front of a real API: what reaches the API when Portcullis allows, and
//! what the client sees when it denies — the same status, content type, headers and body
//! bytes as a direct call to `/gateway/v1/check` — and that a denied request never reaches
//! the API.
//!
//! nginx is `/usr/sbin/nginx` (`.ci/run` installs it). Without it these tests print why
//! and pass, except under CI (`CI` set), where they fail.

use crate::common;

use axum::extract::Request;
use common::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";
const UNKNOWN_RESOURCE: &str = "res_0000000000000000";
pub(crate) const API_PATH: &str = "/v1/things?page=2";

/// The API behind nginx: answers every request with the method, URI and headers it
/// received, as JSON, and counts the requests.
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Api {
    pub(crate) async fn spawn() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let echo = axum::Router::new().fallback(move |req: Request| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut headers = serde_json::Map::new();
                for (name, value) in req.headers() {
                    let seen = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    headers
                        .entry(name.as_str())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .unwrap()
                        .push(seen.into());
                }
                axum::Json(json!({
                    "method": req.method().as_str(),
                    "uri": req.uri().to_string(),
                    "headers": headers,
                }))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, echo).await });
        Self { addr, hits }
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A real nginx in a temporary prefix, one `server` per resource, each including the
/// shipped file unchanged. Killed on drop.
pub(crate) struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    /// The port of the server for each resource given to [`Nginx::start`], in order.
    ports: Vec<u16>,
}

/// Whether nginx is there; under CI its absence is a failure.
pub(crate) fn nginx_installed() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{NGINX} is missing under CI: .ci/run should have installed the Debian package nginx"
    );
    eprintln!("skipped: {NGINX} is not installed (apt-get install nginx)");
    false
}

/// A port nothing listens on right now, for nginx to take.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    pub(crate) async fn start(portcullis: &str, api: SocketAddr, resources: &[&str]) -> Self {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/nginx/portcullis.conf")
            .canonicalize()
            .expect("deploy/nginx/portcullis.conf exists");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let portcullis = portcullis.trim_start_matches("http://");
        let ports: Vec<u16> = resources.iter().map(|_| free_port()).collect();
        let servers: String = resources
            .iter()
            .zip(&ports)
            .map(|(resource, port)| {
                format!(
                    "  server {{\n    listen 127.0.0.1:{port};\n    \
                     set $portcullis_resource {resource};\n    \
                     include {};\n  }}\n",
                    shipped.display()
                )
            })
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             upstream portcullis {{ server {portcullis}; }}\n\
             upstream protected_app {{ server {api}; }}\n{servers}}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self { child, dir, ports };
        nginx.wait_until_listening().await;
        nginx
    }

    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Poll every port until it accepts, for at most 10 s; fail if nginx exits.
    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in self.ports.clone() {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    break;
                }
                if let Some(status) = self.child.try_wait().unwrap() {
                    panic!("nginx exited ({status}):\n{}", self.error_log());
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {port} within 10 s:\n{}",
                    self.error_log()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    pub(crate) fn url(&self, server: usize) -> String {
        format!("http://127.0.0.1:{}{API_PATH}", self.ports[server])
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Portcullis with a gateway world, a second resource open to unauthenticated calls, the
/// API, and nginx with servers for the protected resource (0), the open one (1) and one
/// that does not exist (2).
struct Rig {
    app: TestApp,
    w: GatewayWorld,
    /// The resource that allows unauthenticated calls.
    open: String,
    api: Api,
    nginx: Nginx,
}

impl Rig {
    async fn start() -> Option<Self> {
        if !nginx_installed() {
            return None;
        }
        // nginx reaches Portcullis from 127.0.0.1: trust it, as a deployment trusts its
        // proxy, so its X-Forwarded-For and X-Forwarded-Proto count.
        let app = TestApp::spawn_with(Options {
            manual_clock: true,
            gateway: portcullis_server::config::GatewayConfig {
                trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
                ..Default::default()
            },
            ..Options::default()
        })
        .await;
        let w = app.gateway_world(false).await;
        let open = app
            .create_resource_id(
                &w.org,
                json!({"name": "open", "sandbox": "prod", "allow_unauthenticated": true}),
            )
            .await;
        let api = Api::spawn().await;
        let nginx = Nginx::start(
            &app.base,
            api.addr,
            &[w.resource.as_str(), open.as_str(), UNKNOWN_RESOURCE],
        )
        .await;
        Some(Self {
            app,
            w,
            open,
            api,
            nginx,
        })
    }

    /// The resource nginx's server number `server` protects.
    fn resource(&self, server: usize) -> &str {
        [self.w.resource.as_str(), &self.open, UNKNOWN_RESOURCE][server]
    }

    async fn token(&self) -> String {
        self.app
            .access_token(&self.w.client_id, &self.w.secret, None)
            .await
    }

    /// The headers of a well-presented access token.
    fn credentials(&self, token: &str) -> HeaderMap {
        headers(&[
            ("authorization", &format!("Bearer {token}")),
            ("x-api-key", &self.w.client_id),
            ("x-gw-ims-org-id", &self.w.org),
        ])
    }

    async fn via_nginx(&self, server: usize, method: Method, h: &HeaderMap) -> reqwest::Response {
        self.app
            .http
            .request(method, self.nginx.url(server))
            .headers(h.clone())
            .send()
            .await
            .unwrap()
    }

    /// A direct call to the check for the resource of nginx's server `server`, with the
    /// same method and headers.
    async fn direct(&self, server: usize, method: Method, h: &HeaderMap) -> Seen {
        let resource = self.resource(server);
        let r = self
            .app
            .http
            .request(
                method,
                self.app
                    .url(&format!("/gateway/v1/check?resource={resource}")),
            )
            .headers(h.clone())
            .send()
            .await
            .unwrap();
        Seen::of(r).await
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

/// A response as far as the client can tell: what nginx must reproduce of a denial.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: Vec<String>,
    code: Vec<String>,
    detail: Vec<String>,
    www_authenticate: Vec<String>,
    retry_after: Vec<String>,
    dpop_nonce: Vec<String>,
    body: String,
}

impl Seen {
    async fn of(r: reqwest::Response) -> Self {
        let all = |name: &str| -> Vec<String> {
            r.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        Self {
            status: r.status().as_u16(),
            content_type: all("content-type"),
            code: all("x-portcullis-code"),
            detail: all("x-portcullis-detail"),
            www_authenticate: all("www-authenticate"),
            retry_after: all("retry-after"),
            dpop_nonce: all("dpop-nonce"),
            body: r.text().await.unwrap(),
        }
    }

    fn problem(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// The JSON the API echoed, after checking that nginx passed the request on.
async fn echoed(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn one_header<'a>(echo: &'a Value, name: &str) -> Option<&'a str> {
    let values = echo["headers"][name].as_array()?;
    assert_eq!(values.len(), 1, "{name} more than once: {echo}");
    values[0].as_str()
}

#[tokio::test]
async fn an_allowed_request_reaches_the_api_with_portcullis_answer_only() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let token = rig.token().await;
    let mut h = rig.credentials(&token);
    for (name, value) in [
        ("x-portcullis-client-id", "forged"),
        ("x-portcullis-org", "forged"),
        ("x-portcullis-scope", "admin"),
        ("x-portcullis-authenticated", "forged"),
        ("x-portcullis-resource", UNKNOWN_RESOURCE),
    ] {
        h.append(name, HeaderValue::from_static(value));
    }
    let echo = echoed(rig.via_nginx(0, Method::GET, &h).await).await;
    assert_eq!(rig.api.hits(), 1);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["uri"], API_PATH);
    let w = &rig.w;
    assert_eq!(
        one_header(&echo, "x-portcullis-client-id"),
        Some(w.client_id.as_str())
    );
    assert_eq!(one_header(&echo, "x-portcullis-org"), Some(w.org.as_str()));
    assert_eq!(one_header(&echo, "x-portcullis-scope"), Some("read write"));
    assert_eq!(
        one_header(&echo, "x-portcullis-authenticated"),
        Some("true")
    );
    assert_eq!(one_header(&echo, "x-portcullis-resource"), None, "{echo}");
    // The API still gets the client's own credentials, should it want them.
    assert_eq!(one_header(&echo, "x-api-key"), Some(w.client_id.as_str()));

    // The open resource lets an unauthenticated call through, and a forged client id
    // does not come along with it.
    let h = headers(&[
        ("x-portcullis-client-id", "forged"),
        ("x-portcullis-authenticated", "true"),
    ]);
    let echo = echoed(rig.via_nginx(1, Method::POST, &h).await).await;
    assert_eq!(rig.api.hits(), 2);
    assert_eq!(echo["method"], "POST");
    assert_eq!(one_header(&echo, "x-portcullis-client-id"), None, "{echo}");
    assert_eq!(one_header(&echo, "x-portcullis-org"), None, "{echo}");
    assert_eq!(
        one_header(&echo, "x-portcullis-authenticated"),
        Some("false")
    );
}

/// Send the request through nginx and directly to the check: nginx's answer must be the
/// check's, with `status` and `code`, and the API must not have been called.
async fn assert_denied_alike(
    rig: &Rig,
    what: &str,
    server: usize,
    method: Method,
    h: &HeaderMap,
    status: u16,
    code: &str,
) {
    let hits = rig.api.hits();
    let via = Seen::of(rig.via_nginx(server, method.clone(), h).await).await;
    assert_eq!(
        rig.api.hits(),
        hits,
        "{what}: the denied request reached the API"
    );
    assert_eq!(via.status, status, "{what}: {via:?}");
    assert_eq!(via.problem()["code"], code, "{what}");
    // The check ignores a client-sent x-portcullis-resource as nginx removes it.
    let mut direct_headers = h.clone();
    direct_headers.remove("x-portcullis-resource");
    // nginx names the original method itself, whatever the client claims.
    direct_headers.remove("x-forwarded-method");
    direct_headers.remove("x-original-method");
    let direct = rig.direct(server, method, &direct_headers).await;
    assert_eq!(
        via, direct,
        "{what}: nginx's answer differs from a direct call"
    );
}

#[tokio::test]
async fn a_denial_through_nginx_is_the_direct_answer_and_never_reaches_the_api() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let w = &rig.w;
    let token = rig.token().await;
    let other = rig.app.create_app(&w.org, &["read"]).await;
    let other_id = other["client_id"].as_str().unwrap();

    // A token whose signature is not the issuer's.
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let flipped: String = signature
        .char_indices()
        .map(|(i, c)| match (i, c) {
            (10, 'A') => 'B',
            (10, _) => 'A',
            _ => c,
        })
        .collect();
    let tampered = format!("{signed}.{flipped}");
    let mut wrong_key = rig.credentials(&token);
    wrong_key.insert("x-api-key", HeaderValue::from_str(other_id).unwrap());
    // A write that claims to be a read.
    let mut disguised = rig.credentials(&token);
    disguised.insert("x-forwarded-method", HeaderValue::from_static("GET"));
    disguised.insert("x-original-method", HeaderValue::from_static("GET"));
    // Bad credentials sent to the open resource's server, naming the protected resource.
    let mut renamed = rig.credentials(&tampered);
    renamed.insert(
        "x-portcullis-resource",
        HeaderValue::from_str(&w.resource).unwrap(),
    );
    // No credentials for the protected resource, naming the open one.
    let open_named = headers(&[("x-portcullis-resource", &rig.open)]);

    let cases: Vec<(&str, usize, Method, HeaderMap, u16, &str)> = vec![
        (
            "no credentials",
            0,
            Method::GET,
            HeaderMap::new(),
            401,
            "EXEG-0500-401",
        ),
        (
            "not a token",
            0,
            Method::GET,
            rig.credentials("not-a-jwt"),
            401,
            "EXEG-0500-401",
        ),
        (
            "bad signature",
            0,
            Method::GET,
            rig.credentials(&tampered),
            401,
            "EXEG-0502-401",
        ),
        ("wrong x-api-key", 0, Method::GET, wrong_key, 403, "403003"),
        (
            "a write to a read-only sandbox",
            0,
            Method::POST,
            disguised,
            401,
            "EXEG-0506-401",
        ),
        (
            "an unknown resource",
            2,
            Method::GET,
            rig.credentials(&token),
            404,
            "PCS-0404-404",
        ),
        (
            "naming the open resource",
            0,
            Method::GET,
            open_named,
            401,
            "EXEG-0500-401",
        ),
        (
            "naming the protected resource",
            1,
            Method::GET,
            renamed,
            401,
            "EXEG-0502-401",
        ),
    ];
    for (what, server, method, h, status, code) in &cases {
        assert_denied_alike(&rig, what, *server, method.clone(), h, *status, code).await;
    }
    assert_eq!(rig.api.hits(), 0);

    // Expired: the same token an hour and a second later.
    let exp = claims(&token)["exp"].as_i64().unwrap();
    rig.app.clock.as_ref().unwrap().set(exp + 1);
    let expired = rig.credentials(&token);
    assert_denied_alike(
        &rig,
        "expired",
        0,
        Method::GET,
        &expired,
        401,
        "EXEG-0503-401",
    )
    .await;
    assert_eq!(rig.api.hits(), 0);
}

#[tokio::test]
async fn nginx_refuses_when_portcullis_does_not_answer() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    let token = rig.token().await;
    let h = rig.credentials(&token);
    assert_eq!(
        rig.via_nginx(0, Method::GET, &h).await.status(),
        StatusCode::OK
    );
    assert_eq!(rig.api.hits(), 1);

    let Rig {
        app, api, nginx, ..
    } = rig;
    let http = app.http.clone();
    app.stop().await;
    let r = http.get(nginx.url(0)).headers(h).send().await.unwrap();
    let seen = Seen::of(r).await;
    assert_eq!(seen.status, 503, "{seen:?}");
    assert_eq!(seen.content_type, ["application/problem+json"]);
    let problem = seen.problem();
    check_problem_body(&problem, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "PCS-0503-503");
    assert_eq!(
        api.hits(),
        1,
        "the request went on without an answer from Portcullis"
    );
}

#[tokio::test]
async fn a_client_cannot_claim_tls_through_nginx() {
    let Some(rig) = Rig::start().await else {
        return;
    };
    // Plain HTTP to nginx, claiming X-Forwarded-Proto: https itself: nginx tells Portcullis
    // the real scheme, so the secret is refused as sent in the clear.
    let h = headers(&[
        ("x-user-key", &rig.w.client_id),
        ("x-user-secret", &rig.w.secret),
        ("x-forwarded-proto", "https"),
    ]);
    let r = rig.via_nginx(0, Method::GET, &h).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "EXEG-0500-401", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("TLS"), "{body}");
    assert_eq!(rig.api.hits(), 0);
}
