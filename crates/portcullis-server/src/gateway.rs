//! `/gateway/v1/check`: the decision for nginx `auth_request`, Envoy
//! `ext_authz` (HTTP) and Traefik `forwardAuth`. Reads only the in-memory view.
//!
//! Allowed → 200, empty body, `x-portcullis-*` headers for the upstream. Denied → the
//! catalogue's status with a problem+json body, plus `x-portcullis-code` and
//! `x-portcullis-detail` for proxies that keep only the status and headers.

use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use portcullis_core::app_jwt::DeferredJti;
use portcullis_core::gateway::{
    Allow, CheckRequest, Code, Denial, HeaderNames, NotText, decide_with, replayed,
};
use portcullis_core::model::QuotaPeriod;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub const RESOURCE_HEADER: &str = "x-portcullis-resource";

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A header's first value as text; [`NotText`] when any of its values is not text (for
/// [`CheckRequest::from_headers`]).
pub fn header_text<'a>(h: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, NotText> {
    if h.get_all(name).iter().any(|v| v.to_str().is_err()) {
        return Err(NotText);
    }
    Ok(header_str(h, name))
}

/// The TCP peer of the request, when the server was started with connection info (it
/// always is; a router driven without a listener has none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// One gateway question as HTTP delivered it: to `/gateway/v1/check`, or to a first-party
/// API (the Edge intake) that asks the same decision for its own requests.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The method of this request; `X-Forwarded-Method` / `X-Original-Method` override it.
    pub method: &'a Method,
    /// The resource id, if the caller named it outside the headers (query or path).
    pub resource: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub peer: Option<SocketAddr>,
    /// Always a write, whatever the method (the Edge intake endpoints).
    pub always_write: bool,
    /// The query of a first-party API's own request, which may carry `userKey` and
    /// `secret` (SAP Gigya's application keys). `None` for `/gateway/v1/check`, whose own
    /// query is the proxy's: there the client's query is the one of `X-Original-URI` / `X-Forwarded-Uri`.
    pub query: Option<&'a str>,
}

/// `GET|POST|… /gateway/v1/check[?resource=<id>]`
pub async fn check(
    State(state): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let resource = q.get("resource").map(String::as_str);
    respond(
        evaluate(
            &state,
            &Question {
                method: &method,
                resource,
                headers: &headers,
                peer,
                always_write: false,
                query: None,
            },
        )
        .await,
    )
}

/// `/gateway/v1/check/<id>[/…]`: the resource as the first path segment (Envoy's
/// `path_prefix` appends the original path and query after it, so the query here is the
/// client's own).
pub async fn check_path(
    State(state): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    Path(rest): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let first = rest.split('/').next().filter(|s| !s.is_empty());
    respond(
        evaluate(
            &state,
            &Question {
                method: &method,
                resource: first,
                headers: &headers,
                peer,
                always_write: false,
                query: uri.query(),
            },
        )
        .await,
    )
}

/// `userKey` and `secret` from a query string, names matched case-insensitively (the
/// vendor's examples spell them several ways).
fn key_and_secret_in(query: &str) -> (Option<String>, Option<String>) {
    let (mut key, mut secret) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k.eq_ignore_ascii_case("userkey") {
            key = Some(v.into_owned());
        } else if k.eq_ignore_ascii_case("secret") {
            secret = Some(v.into_owned());
        }
    }
    (key, secret)
}

/// The gateway's answer to `q`, from the in-memory view only: failure limits, then core's
/// decision, then the app's quota.
///
/// With a shared store (`--redis-url`) the failure limits and an app-signed JWT's `jti`
/// are checked there: one round trip each (see `portcullis_shared`).
pub async fn evaluate(state: &AppState, q: &Question<'_>) -> Result<Allow, Denial> {
    let started = Instant::now();
    let result = evaluate_inner(state, q).await;
    state.metrics.decision(&result, started.elapsed());
    if let Err(denial) = &result {
        tracing::info!(code = denial.code.code(), "gateway denied");
    }
    result
}

async fn evaluate_inner(state: &AppState, q: &Question<'_>) -> Result<Allow, Denial> {
    let headers = q.headers;
    let cfg = &state.gateway;
    let mut req = CheckRequest::from_headers(
        |name| header_text(headers, name),
        HeaderNames {
            api_key: cfg.api_key_header.as_str(),
            org: cfg.org_header.as_str(),
        },
    )?;
    let (client, over_tls) = client_facts(cfg, q.peer, headers);
    let secrets_allowed = cfg.allow_secrets_over_http || over_tls;

    // userKey + secret: headers first, then the client's own query.
    let original_query = header_str(headers, "x-original-uri")
        .or_else(|| header_str(headers, "x-forwarded-uri"))
        .and_then(|u| u.split_once('?').map(|(_, q)| q));
    let (mut user_key, mut user_secret) = (
        req.user_key.map(str::to_owned),
        req.user_secret.map(str::to_owned),
    );
    if user_key.is_none()
        && user_secret.is_none()
        && let Some(query) = q.query.or(original_query)
    {
        (user_key, user_secret) = key_and_secret_in(query);
    }

    let api_key = req.api_key;
    // The app the request names, for the (app, address) failure limit.
    let named_app = user_key.as_deref().or(api_key);
    let now = state.now();
    if let Some(ip) = client
        && let Some(retry) = blocked(state, ip, named_app, now).await
    {
        return Err(Denial {
            code: Code::RateLimited,
            detail: format!(
                "Too many failed authentications from this address; retry in {retry} s, with valid credentials."
            ),
            retry_after: Some(retry),
        });
    }

    let original_method = header_str(headers, "x-forwarded-method")
        .or_else(|| header_str(headers, "x-original-method"))
        .unwrap_or(q.method.as_str());
    req.resource = q.resource.or_else(|| header_str(headers, RESOURCE_HEADER));
    req.method = original_method;
    req.always_write = q.always_write;
    req.user_key = user_key.as_deref();
    req.user_secret = user_secret.as_deref();
    req.secrets_allowed = secrets_allowed;
    let view = state.view.get();
    let verify = |token: &str| {
        let (result, hit) = state
            .token_cache
            .verify_traced(token, &view, &state.issuer, now);
        state.metrics.token_cache(hit);
        result
    };
    let decided = match &state.shared {
        None => decide_with(&req, &view, &state.issuer, now, &verify, &state.jtis),
        Some(shared) => {
            let jti = DeferredJti::new();
            let decided = decide_with(&req, &view, &state.issuer, now, &verify, &jti);
            // The decision reached an app-signed JWT's jti: its first use on any node or
            // verifier, or a replay (which the decision would have found first).
            let pending = jti.take();
            match pending.first() {
                Some(_) => match shared
                    .spend_jtis(&pending.iter().map(|p| p.parts()).collect::<Vec<_>>(), now)
                    .await
                {
                    Ok(None) => decided,
                    Ok(Some(_)) => Err(replayed()),
                    Err(e) => {
                        // Fail closed: without the shared record a replay could pass.
                        tracing::warn!(error = %e, "shared store unreachable; refusing an app-signed JWT");
                        Err(Denial {
                            code: Code::RateLimited,
                            detail: "App-signed JWTs cannot be checked against replay right now (the shared store is unreachable); retry shortly, or use an access token.".into(),
                            retry_after: Some(5),
                        })
                    }
                },
                None => decided,
            }
        }
    };
    let allow = match decided {
        Ok(a) => a,
        Err(d) => {
            if d.code.is_auth_failure() {
                if let Some(ip) = client {
                    record_failure(state, ip, named_app, now).await;
                }
                // Queued, never written here: the decision does not wait on the store.
                state.audit.failure(
                    &state.metrics,
                    crate::audit::failed_auth(
                        now,
                        crate::audit::claimed_client(named_app),
                        "gateway",
                        req.resource.unwrap_or_default().chars().take(100).collect(),
                        named_app
                            .and_then(|a| view.app(a))
                            .map(|e| e.app.org_id.clone()),
                        client,
                        d.code.code(),
                    ),
                );
            }
            return Err(d);
        }
    };
    if let Some(id) = &allow.secret_id {
        state.note_secret_use(id, now);
    }
    // The app's request quota comes last: only requests that would pass count.
    if let Some(client_id) = &allow.client_id
        && let Some(quota) = view.app(client_id).and_then(|e| e.app.quota)
        && let Err(retry) = state.quotas.admit(client_id, &quota, now)
    {
        return Err(Denial {
            code: Code::RateLimited,
            detail: format!(
                "The application '{client_id}' is over its quota of {} requests per {}; retry in {retry} s.",
                quota.requests,
                match quota.per {
                    QuotaPeriod::Second => "second",
                    QuotaPeriod::Minute => "minute",
                }
            ),
            retry_after: Some(retry),
        });
    }
    Ok(allow)
}

/// Whether `ip` (or `ip` with `app`) is over the failure limit: in the shared store when
/// there is one (counted by every node), else on this node. A shared store that does not
/// answer fails open to this node's own counts: the limit slows guessing, it does not
/// authenticate, and refusing everyone while Redis is away would be an outage.
///
/// The shared store's answer is remembered for [`SHARED_VERDICT_FRESH`] (see
/// [`SharedVerdicts`]), so a client making many requests costs one Redis read a second on
/// each node, not one per request.
async fn blocked(state: &AppState, ip: IpAddr, app: Option<&str>, now: i64) -> Option<u64> {
    let limit = state.gateway.failure_limit;
    if let Some(shared) = &state.shared
        && limit > 0
    {
        if let Some(known) = state.shared_verdicts.get(ip, app, Instant::now()) {
            return known;
        }
        match shared.failures(&ip.to_string(), app, limit).await {
            Ok(blocked) => {
                state.shared_verdicts.put(ip, app, blocked, Instant::now());
                return blocked;
            }
            Err(e) => {
                tracing::debug!(error = %e, "shared failure limits unreachable; using this node's")
            }
        }
    }
    state.failures.blocked(ip, app, now)
}

/// How long a node trusts the shared store's failure-limit answer for one address (and
/// app): another node's failures reach this node's decisions at most this late.
pub const SHARED_VERDICT_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The shared store's recent failure-limit answers on this node, per address and app. A
/// failure this node records forgets its address's answers, so its own next check asks
/// again; failures on other nodes show up within [`SHARED_VERDICT_FRESH`].
#[derive(Debug, Default)]
pub struct SharedVerdicts(std::sync::Mutex<HashMap<IpAddr, Vec<Verdict>>>);

/// One remembered answer: the app it was about (`None`: the address alone), when it was
/// given, and `Some(retry_after)` when the limit was reached.
type Verdict = (Option<Box<str>>, Instant, Option<u64>);

impl SharedVerdicts {
    /// Addresses remembered at most; past it the memory starts over.
    const CAPACITY: usize = 100_000;

    /// The remembered answer (`Some(retry_after)` when blocked), if still fresh.
    fn get(&self, ip: IpAddr, app: Option<&str>, now: Instant) -> Option<Option<u64>> {
        let map = self.0.lock().ok()?;
        let (_, at, verdict) = map.get(&ip)?.iter().find(|(a, ..)| a.as_deref() == app)?;
        let age = now.saturating_duration_since(*at);
        (age < SHARED_VERDICT_FRESH)
            .then(|| verdict.map(|retry| retry.saturating_sub(age.as_secs()).max(1)))
    }

    fn put(&self, ip: IpAddr, app: Option<&str>, verdict: Option<u64>, now: Instant) {
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= Self::CAPACITY && !map.contains_key(&ip) {
            map.clear();
        }
        let entries = map.entry(ip).or_default();
        entries.retain(|(a, ..)| a.as_deref() != app);
        entries.push((app.map(Box::from), now, verdict));
    }

    /// Forget every answer about `ip` (it has just failed again).
    fn forget(&self, ip: IpAddr) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&ip);
        }
    }
}

/// Count a failed authentication on this node and, when there is one, in the shared store.
async fn record_failure(state: &AppState, ip: IpAddr, app: Option<&str>, now: i64) {
    state.failures.record(ip, app, now);
    state.shared_verdicts.forget(ip);
    if let Some(shared) = &state.shared
        && state.gateway.failure_limit > 0
        && let Err(e) = shared
            .record_failure(&ip.to_string(), app, FAILURE_WINDOW)
            .await
    {
        tracing::debug!(error = %e, "recording a failure in the shared store failed");
    }
}

/// The failure limits' window, seconds.
pub const FAILURE_WINDOW: i64 = 60;

/// The client's address (see [`client_address`]) and whether the request came over TLS:
/// it did when Portcullis terminates TLS itself (`--tls-cert`), or when a `--trusted-proxy`
/// says `X-Forwarded-Proto: https`. Shared with the console (its `Secure` cookies
/// and its sign-in failure limit).
pub(crate) fn client_facts(
    cfg: &crate::config::GatewayConfig,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> (Option<IpAddr>, bool) {
    let peer_trusted =
        peer.is_some_and(|p| cfg.trusted_proxies.iter().any(|n| n.contains(&p.ip())));
    let client = client_address(peer, peer_trusted, headers, &cfg.trusted_proxies);
    let tls = cfg.server_tls
        || (peer_trusted
            && header_str(headers, "x-forwarded-proto")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    (client, tls)
}

/// Whether a request may carry a secret that travels in the clear (`userKey` + `secret`,
/// Wave's OAuth 1.0 PLAINTEXT and `apitoken.xml`): it came over TLS (see [`client_facts`])
/// or the server allows secrets over plain HTTP (development).
pub fn secrets_allowed(
    cfg: &crate::config::GatewayConfig,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> bool {
    cfg.allow_secrets_over_http || client_facts(cfg, peer, headers).1
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// untrusted address in `X-Forwarded-For` (walking from the right, since only the
/// entries our proxies appended can be believed).
fn client_address(
    peer: Option<SocketAddr>,
    peer_trusted: bool,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !peer_trusted {
        return Some(peer);
    }
    let mut nearest = peer;
    // Several X-Forwarded-For headers are one list, in order.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // Garbage: stop at the last address we could believe.
            return Some(nearest);
        };
        nearest = ip;
        if !trusted.iter().any(|n| n.contains(&ip)) {
            return Some(ip);
        }
    }
    Some(nearest)
}

fn respond(result: Result<Allow, Denial>) -> Response {
    match result {
        Ok(allow) => allowed(&allow),
        Err(denial) => denied(&denial),
    }
}

/// 200, empty body, and the `x-portcullis-*` headers for the upstream.
pub fn allowed(allow: &Allow) -> Response {
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if let Some(c) = &allow.client_id {
        set("x-portcullis-client-id", c);
    }
    if let Some(o) = &allow.org {
        set("x-portcullis-org", o);
    }
    set("x-portcullis-scope", &allow.scope);
    set(
        "x-portcullis-authenticated",
        if allow.authenticated { "true" } else { "false" },
    );
    res
}

/// A header value must be visible ASCII: replace anything else.
fn header_safe(s: &str) -> HeaderValue {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The catalogue's status, the problem+json body, and `x-portcullis-code` / `-detail` /
/// `-problem`.
///
/// `x-portcullis-problem` carries the whole body (ASCII JSON, so it is a valid header
/// value): nginx `auth_request` keeps only the status and headers of the check, and the
/// shipped nginx configuration answers the client with this header as the body, so the
/// client sees the same bytes as from a direct call.
pub fn denied(d: &Denial) -> Response {
    let text = ascii_json(&d.problem());
    let status = StatusCode::from_u16(d.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let problem = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("{}"));
    let mut res = (status, text).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert("x-portcullis-code", header_safe(d.code.code()));
    h.insert("x-portcullis-detail", header_safe(&d.detail));
    h.insert("x-portcullis-problem", problem);
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(retry) = d.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
    }
    res
}

/// `v` as JSON text with every non-ASCII character escaped (`\uXXXX`, surrogate pairs
/// beyond the BMP): the same JSON value, in bytes that are also a valid header value.
fn ascii_json(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_json_is_the_same_value_in_ascii() {
        let v = serde_json::json!({"detail": "caf\u{e9} \u{1F600} \"q\" \\ \n"});
        let a = ascii_json(&v);
        assert!(a.is_ascii(), "{a}");
        assert!(HeaderValue::from_str(&a).is_ok());
        assert_eq!(serde_json::from_str::<serde_json::Value>(&a).unwrap(), v);
    }

    #[test]
    fn shared_verdicts_are_kept_a_second_per_address_and_app_and_forgotten_on_failure() {
        let v = SharedVerdicts::default();
        let (ip, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(v.get(ip, None, t0), None, "nothing known yet");
        v.put(ip, None, None, t0);
        v.put(ip, Some("app"), Some(30), t0);
        assert_eq!(v.get(ip, None, t0), Some(None), "known clean");
        assert_eq!(v.get(ip, Some("app"), t0), Some(Some(30)), "known blocked");
        assert_eq!(v.get(ip, Some("other-app"), t0), None);
        assert_eq!(v.get(other, None, t0), None);
        // Retry-After counts down with the answer's age; the answer expires after a second.
        let later = t0 + std::time::Duration::from_millis(999);
        assert_eq!(v.get(ip, Some("app"), later), Some(Some(30)));
        assert_eq!(v.get(ip, None, t0 + SHARED_VERDICT_FRESH), None, "stale");
        // A new answer replaces the old one; a failure forgets the whole address.
        v.put(ip, None, Some(5), t0);
        assert_eq!(v.get(ip, None, t0), Some(Some(5)));
        v.forget(ip);
        assert_eq!(v.get(ip, None, t0), None);
        assert_eq!(v.get(ip, Some("app"), t0), None);
    }
}
