//! `/gateway/v1/check` (API.md §2): the decision for nginx `auth_request`, Envoy
//! `ext_authz` (HTTP) and Traefik `forwardAuth`. Reads only the in-memory view.
//!
//! Allowed → 200, empty body, `x-portcullis-*` headers for the upstream. Denied → the
//! catalogue's status with a problem+json body, plus `x-portcullis-code` and
//! `x-portcullis-detail` for proxies that keep only the status and headers.

use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::gateway::{
    API_KEY_HEADER, CheckRequest, Code, Denial, ORG_HEADER, decide_with,
};
use std::collections::HashMap;

pub const RESOURCE_HEADER: &str = "x-portcullis-resource";

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `GET|POST|… /gateway/v1/check[?resource=<id>]`
pub async fn check(
    State(state): State<AppState>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let resource = q.get("resource").map(String::as_str);
    answer(&state, &method, resource, &headers)
}

/// `/gateway/v1/check/<id>[/…]`: the resource as the first path segment (Envoy's
/// `path_prefix` appends the original path after it).
pub async fn check_path(
    State(state): State<AppState>,
    method: Method,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Response {
    let first = rest.split('/').next().filter(|s| !s.is_empty());
    answer(&state, &method, first, &headers)
}

fn answer(
    state: &AppState,
    method: &Method,
    resource: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let resource = resource.or_else(|| header_str(headers, RESOURCE_HEADER));
    let original_method = header_str(headers, "x-forwarded-method")
        .or_else(|| header_str(headers, "x-original-method"))
        .unwrap_or(method.as_str());
    let req = CheckRequest {
        resource,
        method: original_method,
        always_write: false,
        authorization: header_str(headers, header::AUTHORIZATION.as_str()),
        authentication: header_str(headers, "authentication"),
        api_key: header_str(headers, API_KEY_HEADER),
        org_header: header_str(headers, ORG_HEADER),
    };
    let view = state.view.get();
    let now = state.now();
    let verify = |token: &str| state.token_cache.verify(token, &view, &state.issuer, now);
    match decide_with(&req, &view, &state.issuer, now, &verify) {
        Ok(allow) => {
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
        Err(denial) => {
            tracing::info!(code = denial.code.code(), resource = ?req.resource, "gateway denied");
            denied(&denial)
        }
    }
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
    let status = StatusCode::from_u16(d.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert("x-portcullis-code", header_safe(d.code.code()));
    h.insert("x-portcullis-detail", header_safe(&d.detail));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}
