//! From one HTTP question to the gateway's answer: the failure limits, core's decision
//! (with the shared `jti` record when there is one), the audit of a failed
//! authentication, then the app's quota. Reads only the in-memory view.

use super::{Question, RESOURCE_HEADER};
use crate::limits::{blocked, record_failure};
use crate::request::{client_facts, header_str, header_text};
use crate::state::AppState;
use portcullis_core::app_jwt::DeferredJti;
use portcullis_core::dpop::Nonces;
use portcullis_core::gateway::{
    Allow, CheckRequest, Code, Denial, DpopRules, HeaderNames, decide_with, is_dpop_scheme,
};
use portcullis_core::model::{QuotaPeriod, Resource};
use portcullis_core::view::{AppEntry, View};
use std::sync::Arc;
use std::time::Instant;

/// What a gateway question was about, as far as the view knows it: for the usage counts.
#[derive(Default)]
struct Asked {
    /// The app the request authenticated as, or else the one its api key names.
    app: Option<Arc<AppEntry>>,
    resource: Option<Arc<Resource>>,
}

/// `userKey` and `secret` from a query string, names matched case-insensitively (the
/// vendors' documents spell them several ways).
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
/// The URL the client called, without its query: the public origin and the client's
/// path (the request's own, or the original URI the proxy forwarded).
fn client_url(
    state: &AppState,
    q: &Question<'_>,
    headers: &axum::http::HeaderMap,
) -> Option<String> {
    let origin = crate::request::public_origin(&state.gateway, q.peer, headers)?;
    let path = q.path.or_else(|| {
        header_str(headers, "x-original-uri").or_else(|| header_str(headers, "x-forwarded-uri"))
    })?;
    let path = portcullis_core::dpop::htu_of(path);
    path.starts_with('/').then(|| format!("{origin}{path}"))
}

/// How DPoP nonces are made and checked, when the server requires them.
pub fn nonce_rule<'v>(state: &AppState, view: &'v View) -> Option<Nonces<'v>> {
    if !state.gateway.dpop_nonce {
        return None;
    }
    view.hash_key().map(|key| Nonces {
        key,
        period: DPOP_NONCE_PERIOD,
    })
}

/// The nonce a DPoP client should use now, as a `DPoP-Nonce` value; `None` unless the
/// server requires nonces.
pub fn dpop_nonce(state: &AppState) -> Option<axum::http::HeaderValue> {
    let view = state.view.get();
    let nonces = nonce_rule(state, &view)?;
    axum::http::HeaderValue::from_str(&nonces.current(state.now())).ok()
}

/// Seconds per DPoP nonce window: a nonce is accepted for one to two of them.
pub const DPOP_NONCE_PERIOD: i64 = 300;

/// The gateway's answer to `q`, from the in-memory view only: failure limits, then core's
/// decision, then the app's quota. Every answer is counted once in the usage counts.
///
/// With a shared store (`--redis-url`) the failure limits and an app-signed JWT's `jti`
/// are checked there: one round trip each (see `portcullis_shared`).
pub async fn evaluate(state: &AppState, q: &Question<'_>) -> Result<Allow, Denial> {
    let started = Instant::now();
    let view = state.view.get();
    let now = state.now();
    let mut asked = Asked::default();
    let result = evaluate_inner(state, q, &view, now, &mut asked).await;
    state.metrics.decision(&result, started.elapsed());
    let outcome = match &result {
        Ok(_) => "allowed",
        Err(denial) => {
            tracing::info!(code = denial.code.code(), "gateway denied");
            denial.code.code()
        }
    };
    let app = asked.app.as_deref().map(|e| &e.app);
    state
        .usage
        .gateway(now, app, asked.resource.as_deref(), outcome);
    result
}

/// [`evaluate`]'s work; fills `asked` with the resource and the app the request names, as
/// soon as they are known, for the usage counts.
async fn evaluate_inner(
    state: &AppState,
    q: &Question<'_>,
    view: &View,
    now: i64,
    asked: &mut Asked,
) -> Result<Allow, Denial> {
    let headers = q.headers;
    let cfg = &state.gateway;
    let resource = q.resource.or_else(|| header_str(headers, RESOURCE_HEADER));
    // A resource the view does not have is counted as none: made-up ids make no keys.
    if state.usage.enabled() {
        asked.resource = resource.and_then(|r| view.resource(r)).cloned();
    }
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
    // An app the view does not have is counted as none.
    let named_entry = named_app.and_then(|a| view.app(a));
    asked.app = named_entry.cloned();
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

    // A first-party API (always a write) is the client's own request: its method is the
    // one a DPoP proof names, whatever a forwarded-method header claims.
    let original_method = if q.always_write {
        q.method.as_str()
    } else {
        header_str(headers, "x-forwarded-method")
            .or_else(|| header_str(headers, "x-original-method"))
            .unwrap_or(q.method.as_str())
    };
    req.resource = resource;
    req.method = original_method;
    req.always_write = q.always_write;
    req.user_key = user_key.as_deref();
    req.user_secret = user_secret.as_deref();
    req.secrets_allowed = secrets_allowed;
    // DPoP: the URL the client called and the proof's rules, worked out only for a
    // request that uses it (a bearer check never reads them).
    let dpop = req.authorization.is_some_and(is_dpop_scheme);
    let htu = dpop.then(|| client_url(state, q, headers)).flatten();
    if dpop {
        req.htu = htu.as_deref();
        req.dpop_repeated = headers.get_all("dpop").iter().nth(1).is_some();
        req.dpop_rules = DpopRules {
            nonces: nonce_rule(state, view),
            ..DpopRules::default()
        };
    }
    let verify = |token: &str| {
        let (result, hit) = state
            .token_cache
            .verify_traced(token, view, &state.issuer, now);
        state.metrics.token_cache(hit);
        result
    };
    let decided = match &state.shared {
        None => decide_with(&req, view, &state.issuer, now, &verify, &state.jtis),
        Some(shared) => {
            let jti = DeferredJti::new();
            let decided = decide_with(&req, view, &state.issuer, now, &verify, &jti);
            shared.settle_decision(&jti, decided, now).await
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
                        named_entry.map(|e| e.app.org_id.clone()),
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
    // From here on, the app that authenticated (none for an unauthenticated call) is
    // the one counted, allowed or over its quota.
    asked.app = allow.app.clone();
    // The app's request quota comes last: only requests that would pass count.
    if let Some(entry) = &allow.app
        && let Some(quota) = entry.app.quota
        && let client_id = entry.app.client_id.as_str()
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
