//! `/identity/1.0/oauth/requesttoken` and `/identity/1.0/oauth/accesstoken` (RFC 5849 as
//! Adobe Wave uses it). The consumer is a publisher app; PLAINTEXT is the only signature
//! method (core's `oauth1` module says why), so both endpoints require TLS.
//!
//! Every request is checked in this order: TLS, the protocol parameters (400), the
//! timestamp window (401), the consumer key and secret against the view (401), the nonce
//! against the replay cache (401). Token values and secrets are random, shown once, and
//! stored as keyed hashes.

use super::{WaveError, form_body, form_pairs, no_store, require_tls};
use crate::request::Peer;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::client_auth::{AuthenticatedClient, authenticate};
use portcullis_core::oauth1::{self, OAuth1Error, OAuth1Request, TIMESTAMP_WINDOW};
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::wave::{LinkToken, RequestToken};

/// How long a request token may wait for the subscriber's approval and the exchange.
pub const REQUEST_TOKEN_TTL: i64 = 600;

fn oauth_error(e: OAuth1Error) -> WaveError {
    match e {
        OAuth1Error::BadRequest(d) => crate::problem::Problem::bad_request(d).into(),
        OAuth1Error::Unauthorized(d) => WaveError::unauthorized(d, "OAuth"),
    }
}

/// A checked, authenticated OAuth 1.0 request whose nonce was unused.
async fn signed(
    state: &AppState,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
    with_token: bool,
) -> Result<(OAuth1Request, AuthenticatedClient), WaveError> {
    require_tls(state, peer, headers)?;
    let query = match query {
        Some(q) => form_pairs(q.as_bytes()).ok_or_else(|| {
            crate::problem::Problem::bad_request("The query is not valid UTF-8 once decoded.")
        })?,
        None => Vec::new(),
    };
    let form = form_body(headers, body)?;
    let from_header = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| {
                crate::problem::Problem::bad_request("The Authorization header is not valid text.")
            })?;
            oauth1::header_params(v).map_err(oauth_error)?
        }
        None => Vec::new(),
    };
    let params = oauth1::merge([query.as_slice(), form.as_slice(), from_header.as_slice()])
        .map_err(oauth_error)?;
    let now = state.now();
    let req = oauth1::parse(&params, with_token, now).map_err(oauth_error)?;
    let client = authenticate(
        &state.view.get(),
        &req.consumer_key,
        &req.consumer_secret,
        now,
    )
    .map_err(|e| {
        tracing::info!("OAuth 1.0 consumer authentication refused");
        WaveError::unauthorized(
            format!(
                "The consumer key or secret is not valid (the consumer key is the publisher app's client_id, the consumer secret one of its client secrets): {}",
                e.description
            ),
            "OAuth",
        )
    })?;
    // With a shared store every node sees the nonce at once (one SET NX); without one,
    // the database remembers it (shared too, when the nodes share PostgreSQL). Either way
    // an unreachable record refuses the request (fail closed: a replay could pass).
    let fresh = match &state.shared {
        Some(shared) => shared
            .first_use_nonce(
                client.entry.app.client_id.as_str(),
                req.timestamp,
                &req.nonce,
                2 * TIMESTAMP_WINDOW,
            )
            .await
            .map_err(|e| crate::problem::Problem::unavailable(&e))?,
        None => {
            state
                .store
                .remember_nonce(
                    &client.entry.app.client_id,
                    &req.nonce,
                    req.timestamp,
                    now - 2 * TIMESTAMP_WINDOW,
                )
                .await?
        }
    };
    if !fresh {
        return Err(WaveError::unauthorized(
            "This oauth_nonce was already used with this oauth_timestamp: a replayed request. Send a fresh nonce with every request.",
            "OAuth",
        ));
    }
    if let Some(id) = client.secret_id() {
        state.note_secret_use(id, now);
    }
    Ok((req, client))
}

fn form_response(pairs: &[(&str, &str)]) -> Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    no_store(res)
}

/// `GET|POST /identity/1.0/oauth/requesttoken`: a request token and its secret, for the
/// publisher to hand to the subscriber's client (the Initiation API's response).
pub async fn request_token(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, WaveError> {
    let (_, client) = signed(&state, peer, &headers, query.as_deref(), &body, false).await?;
    let hash_key = state.hash_key()?;
    let token = Secret::generate(SecretKind::OAuth1Token);
    let secret = Secret::generate(SecretKind::OAuth1TokenSecret);
    state
        .store
        .insert_request_token(&RequestToken {
            hash: token.hash(&hash_key),
            secret_hash: secret.hash(&hash_key),
            client_id: client.entry.app.client_id.clone(),
            expires_at: state.now() + REQUEST_TOKEN_TTL,
            authorized: None,
        })
        .await?;
    tracing::info!(app = %client.entry.app.client_id, "OAuth 1.0 request token issued");
    Ok(form_response(&[
        ("oauth_token", token.expose()),
        ("oauth_token_secret", secret.expose()),
    ]))
}

fn refused(detail: &str) -> WaveError {
    WaveError::unauthorized(detail, "OAuth")
}

/// `GET|POST /identity/1.0/oauth/accesstoken`: exchange an authorized request token
/// (once) for the access token that links the subscriber to the feed.
pub async fn access_token(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, WaveError> {
    let (req, client) = signed(&state, peer, &headers, query.as_deref(), &body, true).await?;
    let hash_key = state.hash_key()?;
    let now = state.now();
    let presented = req.token.as_deref().unwrap_or_default();
    let token = Secret::parse(SecretKind::OAuth1Token, presented)
        .map_err(|e| refused(&format!("oauth_token is not a request token: {e}.")))?;
    let hash = token.hash(&hash_key);
    let stored = state
        .store
        .request_token(&hash, now)
        .await?
        .filter(|t| t.client_id == client.entry.app.client_id)
        .ok_or_else(|| {
            refused("oauth_token is not a live request token of this consumer: it is unknown, expired, or was already exchanged.")
        })?;
    if !stored
        .secret_hash
        .ct_eq(&hash_key.hash_text(&req.token_secret))
    {
        return Err(refused(
            "The request token secret in oauth_signature ('consumer_secret&token_secret') is wrong.",
        ));
    }
    if stored.authorized.is_none() {
        return Err(refused(
            "The request token is not authorized yet: the subscriber approves it on /identity/1.0/oauth/authorize first.",
        ));
    }
    let consumed = state
        .store
        .consume_request_token(&hash, now)
        .await?
        .and_then(|t| t.authorized)
        .ok_or_else(|| refused("The request token was already exchanged."))?;
    let access = Secret::generate(SecretKind::OAuth1Token);
    let secret = Secret::generate(SecretKind::OAuth1TokenSecret);
    state
        .store
        .insert_link_token(&LinkToken {
            hash: access.hash(&hash_key),
            secret_hash: secret.hash(&hash_key),
            client_id: client.entry.app.client_id.clone(),
            feed_id: consumed.feed_id.clone(),
            user_id: consumed.user_id.clone(),
            created_at: now,
        })
        .await?;
    tracing::info!(app = %client.entry.app.client_id, feed = %consumed.feed_id, user = %consumed.user_id, "account linked");
    Ok(form_response(&[
        ("oauth_token", access.expose()),
        ("oauth_token_secret", secret.expose()),
    ]))
}
