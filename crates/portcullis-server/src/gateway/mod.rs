//! `/gateway/v1/check`: the decision for nginx `auth_request`, Envoy `ext_authz` (HTTP)
//! and Traefik `forwardAuth`. Reads only the in-memory view.
//!
//! - [`check`]: from the HTTP request to core's decision (failure limits, the decision,
//!   the shared `jti` record, the app's quota, the audit of a failure);
//! - [`respond`]: allowed → 200, empty body, `x-portcullis-*` headers for the upstream;
//!   denied → the catalogue's status with a problem+json body, plus `x-portcullis-code`
//!   and `x-portcullis-detail` for proxies that keep only the status and headers.
//!
//! The peer and the client's address come from [`crate::request`]; the failure limits
//! from [`crate::limits`].

mod check;
mod respond;

pub use check::{dpop_nonce, evaluate, nonce_rule};
use respond::respond;
pub use respond::{allowed, denied, denied_for};

use crate::request::Peer;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use std::collections::HashMap;
use std::net::SocketAddr;

pub const RESOURCE_HEADER: &str = "x-portcullis-resource";

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
    /// `secret` (as SAP Gigya's REST calls send them). `None` for `/gateway/v1/check`, whose own query is the proxy's:
    /// there the client's query is the one of `X-Original-URI` / `X-Forwarded-Uri`.
    pub query: Option<&'a str>,
    /// The path the client called, when this request is the client's own (a first-party
    /// API) or carries it (Envoy's path prefix); `None` takes it from `X-Original-URI` /
    /// `X-Forwarded-Uri`. A DPoP proof's `htu` must name it.
    pub path: Option<&'a str>,
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
        &state,
        evaluate(
            &state,
            &Question {
                method: &method,
                resource,
                headers: &headers,
                peer,
                always_write: false,
                query: None,
                path: None,
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
    // Envoy appends the client's path after the resource id: taken from the raw URI, as
    // the client sent it (the extracted `rest` is percent-decoded).
    let client_path = uri
        .path()
        .strip_prefix("/gateway/v1/check/")
        .and_then(|raw| raw.find('/').map(|i| &raw[i..]));
    respond(
        &state,
        evaluate(
            &state,
            &Question {
                method: &method,
                resource: first,
                headers: &headers,
                peer,
                always_write: false,
                query: uri.query(),
                path: client_path,
            },
        )
        .await,
    )
}
