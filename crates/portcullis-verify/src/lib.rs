//! # portcullis-verify
//!
//! Verify Portcullis credentials inside a Rust API service, without a call to the server
//! per request: [`Verifier::connect`] fetches a snapshot of the decision data
//! (`GET /events/v1/snapshot`: orgs, apps, groups, resources, revocations and the server's
//! public keys — the JWKS), then follows the server's event stream (`GET /events/v1`,
//! server-sent events, resumed with `Last-Event-ID` after any disconnection), and decides
//! each request with `portcullis-core`'s own gateway decision
//! ([`portcullis_core::gateway::decide_with`]), answering refusals with the same
//! problem+json bodies as the server's `/gateway/v1/check`.
//!
//! Use it as a tower [`Layer`] ([`VerifyLayer`], which puts the [`Allow`] in the request's
//! extensions) or as a plain function ([`Verifier::verify`]).
//!
//! **Credentials it accepts**: Portcullis access tokens (`Authorization: Bearer` with the
//! `x-api-key` and org headers), and DPoP-bound ones as `Authorization: DPoP` with the
//! client's `DPoP` proof for this request ([`Config::public_origin`] names the origin the
//! proof's `htu` must have) when given the shared replay cache, so that a proof is
//! single-use across every verifier and node. App-signed JWTs only when given the replay cache every
//! node and verifier shares ([`Config::replay`], Redis), since a JWT's `jti` must be
//! single-use across all of them; without one they are refused with a problem saying so.
//! Client secrets (`userKey` + `secret`) never: a verifier holds no secret hashes.
//!
//! **Its credential**: the client id and a secret of an app granted the `verify` scope
//! (in the org whose resources the service serves); the verifier obtains its own access
//! tokens with `client_credentials` and `scope=verify`, and sees only that org's data.
//!
//! **When the server goes away** the verifier keeps deciding from its last view, and
//! reconnects (with `Last-Event-ID`) until the server answers again; revocations made
//! meanwhile apply as soon as the stream resumes. Failure limits and quotas are the
//! server's gateway's, not the verifier's.

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, header};
use portcullis_core::app_jwt::DeferredJti;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::decision_feed::{FeedEvent, FeedSnapshot};
use portcullis_core::gateway::{
    API_KEY_HEADER, Allow, CheckRequest, Code, Denial, HeaderNames, NotText, ORG_HEADER,
    decide_with, is_app_signed, is_dpop_scheme,
};
use portcullis_core::token_cache::VerifiedTokenCache;
use portcullis_core::view::View;
use portcullis_shared::Shared;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Where the server is and who the verifier is.
#[derive(Clone)]
pub struct Config {
    /// The server's base URL (the load balancer's), e.g. `https://auth.example.com`.
    pub server: String,
    /// An app with the `verify` scope: its client id and one of its client secrets.
    pub client_id: String,
    pub client_secret: String,
    /// The `x-api-key` and org header names, if the server's are not the defaults.
    pub api_key_header: String,
    pub org_header: String,
    /// The replay cache every node and verifier shares; without it, app-signed JWTs and
    /// DPoP-bound tokens are refused.
    pub replay: Option<Shared>,
    /// The scheme and host clients call this service at (`https://api.example.com`): a
    /// DPoP proof must name it and the request's path. `None`: the request URI's own,
    /// when it is absolute.
    pub public_origin: Option<String>,
    /// The clock decisions use (tests inject one).
    pub clock: Arc<dyn Clock>,
}

impl Config {
    pub fn new(
        server: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            server: server.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            api_key_header: API_KEY_HEADER.into(),
            org_header: ORG_HEADER.into(),
            replay: None,
            public_origin: None,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_replay(mut self, shared: Shared) -> Self {
        self.replay = Some(shared);
        self
    }

    /// The origin DPoP proofs name (see [`Config::public_origin`]).
    pub fn with_public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into().trim_end_matches('/').to_owned());
        self
    }
}

/// Why [`Verifier::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the Portcullis server at {0} cannot be reached: {1}")]
    Unreachable(String, String),
    #[error(
        "the Portcullis server refused the verifier's credential ({0}): give it the client id and a secret of an app granted the 'verify' scope"
    )]
    Refused(String),
    #[error("the Portcullis server's answer is not what a verifier expects: {0}")]
    Protocol(String),
}

/// Decides requests from a local copy of the decision data. Cheap to clone; the stream
/// follower stops when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    _follower: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    cfg: Config,
    issuer: String,
    http: reqwest::Client,
    view: ArcSwap<View>,
    tokens: VerifiedTokenCache,
    /// The change sequence the view includes (the `Last-Event-ID` to resume with).
    seq: AtomicI64,
    connected: AtomicBool,
    /// The verifier's own access token and its expiry.
    credential: tokio::sync::Mutex<Option<(String, i64)>>,
}

/// How many verified access tokens are remembered (their signature is checked once).
const TOKEN_CACHE: usize = 100_000;
/// A stream that carries nothing (not even the 15 s keep-alive) this long is dead.
const IDLE: Duration = Duration::from_secs(45);

impl Verifier {
    /// Fetch the snapshot and start following the event stream.
    pub async fn connect(cfg: Config) -> Result<Self, ConnectError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        let discovery: serde_json::Value = http
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                cfg.server
            ))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(cfg.server.clone(), e.to_string()))?
            .json()
            .await
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        let issuer = discovery["issuer"]
            .as_str()
            .ok_or_else(|| ConnectError::Protocol("discovery has no issuer".into()))?
            .to_owned();
        let inner = Arc::new(Inner {
            cfg,
            issuer,
            http,
            view: ArcSwap::from_pointee(View::default()),
            tokens: VerifiedTokenCache::new(TOKEN_CACHE),
            seq: AtomicI64::new(0),
            connected: AtomicBool::new(false),
            credential: tokio::sync::Mutex::new(None),
        });
        inner.load_snapshot().await?;
        let follower = tokio::spawn(inner.clone().follow());
        Ok(Self {
            inner,
            _follower: Arc::new(AbortOnDrop(follower)),
        })
    }

    /// The server's issuer (its tokens' `iss`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The change sequence the local view includes: the `Last-Event-ID` of a resumed stream.
    pub fn last_event_id(&self) -> i64 {
        self.inner.seq.load(Ordering::Relaxed)
    }

    /// Whether the event stream is open now (decisions go on either way).
    pub fn is_following(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Decide a request for `resource` (a resource id of the verifier's org) from its
    /// method, URI and headers, locally.
    pub async fn verify(
        &self,
        resource: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Allow, Denial> {
        let i = &*self.inner;
        let mut req = CheckRequest::from_headers(
            |name| {
                if headers.get_all(name).iter().any(|v| v.to_str().is_err()) {
                    return Err(NotText);
                }
                Ok(headers.get(name).and_then(|v| v.to_str().ok()))
            },
            HeaderNames {
                api_key: &i.cfg.api_key_header,
                org: &i.cfg.org_header,
            },
        )?;
        let authorization = req.authorization;
        let secret_in_query = uri.query().is_some_and(|q| {
            q.split('&').any(|kv| {
                let k = kv.split('=').next().unwrap_or("");
                k.eq_ignore_ascii_case("userkey") || k.eq_ignore_ascii_case("secret")
            })
        });
        if authorization.is_none()
            && (req.user_key.is_some() || req.user_secret.is_some() || secret_in_query)
        {
            return Err(denial(
                Code::InvalidRequest,
                format!(
                    "This API verifies credentials in-process and does not accept a client id and secret (userKey + secret): only the Portcullis server checks secrets. Request an access token (POST {}/oauth/token) and send 'Authorization: Bearer <token>' with the {} and {} headers.",
                    i.issuer, i.cfg.api_key_header, i.cfg.org_header
                ),
            ));
        }
        let view = i.view.load_full();
        let now = i.cfg.clock.now();
        if i.cfg.replay.is_none()
            && let Some(token) = authorization.and_then(bearer_token)
            && is_app_signed(token, &view)
        {
            return Err(denial(
                Code::InvalidToken,
                format!(
                    "This API accepts app-signed JWTs only with a replay cache shared by every verifier (Redis), and it has none: a JWT's jti must be single-use across all of them. Exchange your JWT for a Portcullis access token (POST {}/oauth/token), or ask the API's operator to give its verifier the shared replay cache.",
                    i.issuer
                ),
            ));
        }
        if i.cfg.replay.is_none() && authorization.is_some_and(is_dpop_scheme) {
            return Err(denial(
                Code::InvalidRequest,
                "This API accepts DPoP-bound tokens only with a replay cache shared by every verifier (Redis), and it has none: a DPoP proof must be single-use across all of them. Ask the API's operator to give its verifier the shared replay cache.".into(),
            ));
        }
        req.resource = Some(resource);
        req.method = method.as_str();
        // DPoP: the URL this request was made to, as the client's proof must name it.
        let origin = i
            .cfg
            .public_origin
            .clone()
            .or_else(|| Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?)));
        let htu = origin.map(|o| format!("{o}{}", uri.path()));
        req.htu = htu.as_deref();
        req.dpop_repeated = headers.get_all("dpop").iter().nth(1).is_some();
        // Secrets are refused above: only the Portcullis server checks them.
        req.user_key = None;
        req.user_secret = None;
        let verify = |token: &str| i.tokens.verify(token, &view, &i.issuer, now);
        let jti = DeferredJti::new();
        let result = decide_with(&req, &view, &i.issuer, now, &verify, &jti);
        match &i.cfg.replay {
            Some(shared) => shared.settle_decision(&jti, result, now).await,
            // App-signed JWTs and DPoP proofs are refused above: no jti was reached.
            None => result,
        }
    }

    /// A [`VerifyLayer`] protecting every request of a service as `resource`.
    pub fn layer(&self, resource: impl Into<String>) -> VerifyLayer {
        VerifyLayer {
            verifier: self.clone(),
            resource: Arc::from(resource.into()),
        }
    }
}

fn denial(code: Code, detail: String) -> Denial {
    Denial {
        code,
        detail,
        retry_after: None,
    }
}

/// The token of `Bearer <token>`, if the header is that.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The response for a refusal: the catalogue's status, the problem+json body the
/// server's gateway answers with, `WWW-Authenticate` on 401 and `Retry-After` when known.
pub fn problem_response<B: From<String>>(d: &Denial) -> Response<B> {
    let status = StatusCode::from_u16(d.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut r = Response::new(B::from(d.problem().to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_str(&d.code.challenge())
                .unwrap_or_else(|_| http::HeaderValue::from_static("Bearer")),
        );
    }
    if let Some(retry) = d.retry_after {
        h.insert(header::RETRY_AFTER, http::HeaderValue::from(retry.max(1)));
    }
    r
}

impl Inner {
    /// The verifier's access token, granted anew when it has less than a minute left.
    async fn credential(&self) -> Result<String, ConnectError> {
        let now = self.cfg.clock.now();
        let mut cred = self.credential.lock().await;
        if let Some((token, exp)) = &*cred
            && *exp - 60 > now
        {
            return Ok(token.clone());
        }
        let r = self
            .http
            .post(format!("{}/oauth/token", self.cfg.server))
            .basic_auth(&self.cfg.client_id, Some(&self.cfg.client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "verify")])
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(self.cfg.server.clone(), e.to_string()))?;
        if !r.status().is_success() {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            return Err(ConnectError::Refused(format!("{status}: {body}")));
        }
        let v: serde_json::Value = r
            .json()
            .await
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        let token = v["access_token"]
            .as_str()
            .ok_or_else(|| ConnectError::Protocol("the token response has no access_token".into()))?
            .to_owned();
        let ttl = v["expires_in"].as_i64().unwrap_or(300);
        *cred = Some((token.clone(), now + ttl));
        Ok(token)
    }

    async fn load_snapshot(&self) -> Result<(), ConnectError> {
        let token = self.credential().await?;
        let r = self
            .http
            .get(format!("{}/events/v1/snapshot", self.cfg.server))
            .bearer_auth(token)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(self.cfg.server.clone(), e.to_string()))?;
        if !r.status().is_success() {
            let status = r.status();
            return Err(ConnectError::Refused(format!(
                "{status}: {}",
                r.text().await.unwrap_or_default()
            )));
        }
        let snap: FeedSnapshot = r
            .json()
            .await
            .map_err(|e| ConnectError::Protocol(e.to_string()))?;
        let seq = snap.seq;
        self.view
            .store(Arc::new(snap.into_view(self.cfg.clock.now())));
        self.seq.store(seq, Ordering::Relaxed);
        Ok(())
    }

    /// Follow the event stream for ever, reconnecting with `Last-Event-ID`.
    async fn follow(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.stream_once().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::debug!(error = %e, "event stream interrupted; deciding from the last view");
                }
            }
            self.connected.store(false, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// One connection of the stream, until it ends.
    async fn stream_once(&self) -> Result<(), ConnectError> {
        let token = self.credential().await?;
        let r = self
            .http
            .get(format!("{}/events/v1", self.cfg.server))
            .bearer_auth(&token)
            .header(
                "last-event-id",
                self.seq.load(Ordering::Relaxed).to_string(),
            )
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| ConnectError::Unreachable(self.cfg.server.clone(), e.to_string()))?;
        if r.status() == StatusCode::UNAUTHORIZED {
            // Perhaps our token lapsed early (revoked): get a new one next time.
            *self.credential.lock().await = None;
        }
        if !r.status().is_success() {
            return Err(ConnectError::Refused(r.status().to_string()));
        }
        self.connected.store(true, Ordering::Relaxed);
        let mut body = r.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(IDLE, body.next()).await {
                Err(_) => return Err(ConnectError::Protocol("the stream went silent".into())),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => {
                    return Err(ConnectError::Unreachable(
                        self.cfg.server.clone(),
                        e.to_string(),
                    ));
                }
                Ok(Some(Ok(c))) => c,
            };
            buf.extend(chunk.iter().filter(|b| **b != b'\r'));
            while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = buf.drain(..end + 2).collect();
                self.handle(&String::from_utf8_lossy(&block)).await?;
            }
        }
    }

    /// One SSE event block: `id`, `event` and `data` lines (comments are keep-alives).
    async fn handle(&self, block: &str) -> Result<(), ConnectError> {
        let (mut id, mut data) = (None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse::<i64>().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        let Some(id) = id else { return Ok(()) };
        let event: FeedEvent = serde_json::from_str(&data)
            .map_err(|e| ConnectError::Protocol(format!("event {id}: {e}")))?;
        if matches!(event, FeedEvent::Resync) {
            return self.load_snapshot().await;
        }
        let mut view = (**self.view.load()).clone();
        event.apply(&mut view, self.cfg.clock.now());
        self.view.store(Arc::new(view));
        self.seq.store(id, Ordering::Relaxed);
        Ok(())
    }
}

/// Protects a service: every request is decided for one resource; allowed ones reach the
/// inner service with the [`Allow`] in their extensions, refused ones are answered with
/// [`problem_response`].
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
    resource: Arc<str>,
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
            resource: self.resource.clone(),
        }
    }
}

#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
    resource: Arc<str>,
}

impl<S, B, RB> tower::Service<Request<B>> for VerifyService<S>
where
    S: tower::Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: From<String>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The clone is the one that is ready (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let resource = self.resource.clone();
        Box::pin(async move {
            let decision = verifier
                .verify(&resource, req.method(), req.uri(), req.headers())
                .await;
            match decision {
                Ok(allow) => {
                    req.extensions_mut().insert(allow);
                    inner.call(req).await
                }
                Err(d) => Ok(problem_response(&d)),
            }
        })
    }
}
