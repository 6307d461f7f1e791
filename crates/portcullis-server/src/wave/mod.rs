//! Adobe Wave: the identity service's OAuth 1.0 account linking
//! and API tokens, and the notification gateway with live delivery to subscribers.
//!
//! - [`oauth1`]: `/identity/1.0/oauth/requesttoken` and `/accesstoken` (PLAINTEXT only);
//! - [`authorize`]: the page where a subscriber signs in and approves a request token,
//!   then goes to the publisher's callback URL;
//! - [`apitoken`]: `/identity/1.0/auth/apitoken.xml`, the publisher's API token;
//! - [`notify`]: `/notificationgateway/1.0/notification`, with [`image`] for thumbnails
//!   and [`fetch`] for `imageurl` (SSRF-safe);
//! - [`stream`]: `/notificationgateway/1.0/stream` (Server-Sent Events) and the
//!   subscriptions of broadcast feeds;
//! - [`fanout`]: the per-node task that reads new notifications from the store (woken by
//!   PostgreSQL `NOTIFY`, or polling) and hands them to this node's streams;
//! - [`prune`]: the periodic task that forgets expired tokens and old notifications.
//!
//! The publisher is an app: its client id and secret are the OAuth consumer key and
//! secret, checked against the in-memory view. Feeds, topics, tokens and notifications
//! live in the store (`admin::feeds` manages feeds and topics). Errors are problem+json;
//! a 401 carries the challenge of the credentials the endpoint takes.

pub mod apitoken;
pub mod authorize;
pub mod fanout;
pub mod fetch;
pub mod image;
pub mod notify;
pub mod oauth1;
pub mod prune;
pub mod state;
pub mod stream;

pub use state::{ApiToken, Delivery, WaveState};

use crate::problem::Problem;
use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_store::StoreError;
use std::net::SocketAddr;

/// The realm of Wave's challenges.
pub const REALM: &str = "portcullis-wave";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/identity/1.0/oauth/requesttoken",
            get(oauth1::request_token).post(oauth1::request_token),
        )
        .route(
            "/identity/1.0/oauth/accesstoken",
            get(oauth1::access_token).post(oauth1::access_token),
        )
        .route(
            "/identity/1.0/oauth/authorize",
            get(authorize::page).post(authorize::approve),
        )
        .route("/identity/1.0/auth/apitoken.xml", post(apitoken::issue))
        .route("/notificationgateway/1.0/notification", post(notify::send))
        .route("/notificationgateway/1.0/stream", get(stream::stream))
        .route("/notificationgateway/1.0/notifications", get(stream::inbox))
        .route(
            "/notificationgateway/1.0/subscriptions",
            get(stream::subscriptions),
        )
        .route(
            "/notificationgateway/1.0/subscriptions/{feed_id}",
            axum::routing::put(stream::subscribe).delete(stream::unsubscribe),
        )
}

/// A refusal: a problem, and for a 401 the challenge to send with it (boxed: it travels
/// in every `Result` of the handlers).
#[derive(Debug)]
pub struct WaveError {
    pub problem: Box<Problem>,
    pub challenge: Option<String>,
}

impl WaveError {
    pub fn unauthorized(detail: impl Into<String>, scheme: &str) -> Self {
        Self {
            problem: Box::new(Problem::unauthorized(detail)),
            challenge: Some(format!("{scheme} realm=\"{REALM}\"")),
        }
    }
}

impl From<Problem> for WaveError {
    fn from(problem: Problem) -> Self {
        Self {
            problem: Box::new(problem),
            challenge: None,
        }
    }
}

impl From<StoreError> for WaveError {
    fn from(e: StoreError) -> Self {
        Problem::from(e).into()
    }
}

impl IntoResponse for WaveError {
    fn into_response(self) -> Response {
        let mut res = self.problem.into_response();
        if let Some(c) = self.challenge
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}

/// Refuse a request that carries a secret in the clear unless it came over TLS (see
/// [`crate::request::secrets_allowed`]).
pub fn require_tls(
    state: &AppState,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), WaveError> {
    if crate::request::secrets_allowed(&state.gateway, peer, headers) {
        Ok(())
    } else {
        Err(Problem::new(
            403,
            "tls-required",
            "PCS-0403-TLS",
            "TLS required",
            "This endpoint takes secrets in the clear (OAuth 1.0 PLAINTEXT, client secrets), so it is served over HTTPS only: call it through the TLS proxy (which must be a --trusted-proxy and send X-Forwarded-Proto: https).",
        )
        .into())
    }
}

/// An http(s) URL with a host and no credentials or fragment, at most 2,000 characters.
pub fn check_http_url(field: &str, text: &str) -> Result<String, Problem> {
    let refuse = |why: &str| {
        Problem::bad_request(format!(
            "'{field}' must be an http or https URL{why}: '{}' is not.",
            text.chars().take(100).collect::<String>()
        ))
    };
    if text.len() > 2000 {
        return Err(refuse(" of at most 2,000 characters"));
    }
    let url = reqwest::Url::parse(text).map_err(|_| refuse(""))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(refuse(""));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(" without user name or password"));
    }
    if url.fragment().is_some() {
        return Err(refuse(" without a fragment"));
    }
    Ok(text.to_owned())
}

/// `name=value` pairs of a form-urlencoded text; `None` when a name or value is not
/// UTF-8 once decoded.
pub fn form_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    // form_urlencoded replaces invalid UTF-8 with U+FFFD; refuse instead of guessing.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let lossy = pairs
        .iter()
        .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'));
    (!lossy).then_some(pairs)
}

/// The media type of a request, lower case, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// A form-urlencoded body's pairs; an empty body has none. Another media type is 415.
pub fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, WaveError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if media_type(headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(Problem::unsupported_media_type(
            "Send parameters in the query or as an application/x-www-form-urlencoded body.",
        )
        .into());
    }
    form_pairs(body).ok_or_else(|| {
        Problem::bad_request("The form body is not valid UTF-8 once decoded.").into()
    })
}

/// The user with this email and password, or `None` — in the same time either way (a
/// missing account is checked against a dummy hash). Over the per-address or per-account
/// limit of [`crate::admin::password::sign_in`], a 429.
pub async fn sign_in(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    email: &str,
    password: &str,
) -> Result<Option<portcullis_core::model::User>, WaveError> {
    use crate::admin::password::{Refused, sign_in};
    match sign_in(state, client, email, password).await? {
        Ok(user) => Ok(Some(user)),
        Err(Refused::Wrong) => Ok(None),
        Err(limited) => Err(limited.problem().into()),
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
