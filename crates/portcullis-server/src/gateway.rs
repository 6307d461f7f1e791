//! `/gateway/v1/check` (API.md §2): the decision for nginx `auth_request`, Envoy
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
use portcullis_core::gateway::{
    API_KEY_HEADER, Allow, CheckRequest, Code, Denial, ORG_HEADER, decide_with,
};
use std::collections::HashMap;
use std::net::SocketAddr;

pub const RESOURCE_HEADER: &str = "x-portcullis-resource";

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
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
    respond(evaluate(
        &state,
        &Question {
            method: &method,
            resource,
            headers: &headers,
            peer,
            always_write: false,
        },
    ))
}

/// `/gateway/v1/check/<id>[/…]`: the resource as the first path segment (Envoy's
/// `path_prefix` appends the original path after it).
pub async fn check_path(
    State(state): State<AppState>,
    Peer(peer): Peer,
    method: Method,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let first = rest.split('/').next().filter(|s| !s.is_empty());
    respond(evaluate(
        &state,
        &Question {
            method: &method,
            resource: first,
            headers: &headers,
            peer,
            always_write: false,
        },
    ))
}

/// The gateway's answer to `q`, from the in-memory view only.
pub fn evaluate(state: &AppState, q: &Question<'_>) -> Result<Allow, Denial> {
    let headers = q.headers;
    let resource = q.resource.or_else(|| header_str(headers, RESOURCE_HEADER));
    let original_method = header_str(headers, "x-forwarded-method")
        .or_else(|| header_str(headers, "x-original-method"))
        .unwrap_or(q.method.as_str());
    let req = CheckRequest {
        resource,
        method: original_method,
        always_write: q.always_write,
        authorization: header_str(headers, header::AUTHORIZATION.as_str()),
        authentication: header_str(headers, "authentication"),
        api_key: header_str(headers, API_KEY_HEADER),
        org_header: header_str(headers, ORG_HEADER),
        ..Default::default()
    };
    let view = state.view.get();
    let now = state.now();
    let verify = |token: &str| state.token_cache.verify(token, &view, &state.issuer, now);
    let result = decide_with(&req, &view, &state.issuer, now, &verify);
    if let Err(denial) = &result {
        tracing::info!(code = denial.code.code(), resource = ?req.resource, "gateway denied");
    }
    result
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
    let mut body = serde_json::json!({
        "type": format!("urn:portcullis:error:{}", d.code.slug()),
        "status": d.code.status(),
        "title": d.code.title(),
        "code": d.code.code(),
        "detail": d.detail,
    });
    if d.code == Code::InvalidApiKey {
        // The Adobe I/O seed's own members.
        body["error_code"] = "403003".into();
        body["message"] = "Api Key is invalid".into();
    }
    let text = ascii_json(&body);
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
}
