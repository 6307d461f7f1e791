//! `POST /oauth/token` (RFC 6749 §4.4, client credentials). Reads only the in-memory
//! view: no SQL on this path.

use super::client_auth::authenticate_request;
use super::form::OAuthForm;
use crate::problem::OAuthResponseError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::OAUTH_DEFAULT_TTL;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::oauth_error::OAuthError;
use serde::Serialize;

/// RFC 6749 §5.1.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

pub const CLIENT_CREDENTIALS: &str = "client_credentials";

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body) {
        Ok(res) => {
            state.metrics.grant(CLIENT_CREDENTIALS, true);
            let mut r = Json(res).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => {
            state.metrics.grant(CLIENT_CREDENTIALS, false);
            OAuthResponseError(e).into_response()
        }
    }
}

fn issue(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<TokenResponse, OAuthError> {
    let form = OAuthForm::parse(headers, body)?;
    let grant_type = form.require("grant_type")?;
    if grant_type != CLIENT_CREDENTIALS {
        return Err(OAuthError::unsupported_grant_type(format!(
            "The grant type '{}' is not supported here; use 'client_credentials'.",
            grant_type.chars().take(80).collect::<String>()
        )));
    }
    let view = state.view.get();
    let now = state.now();
    let client = authenticate_request(&view, headers, &form, now)?;
    let mut claims = grant(
        &view,
        &client,
        form.get("scope"),
        GrantContext {
            issuer: &state.issuer,
            now,
            default_ttl: OAUTH_DEFAULT_TTL,
        },
    )?;
    if let Some(resource) = form.get("resource") {
        claims.aud = check_resource(resource)?.to_owned();
    }
    let signer = view.signer().ok_or_else(|| OAuthError {
        error: "temporarily_unavailable",
        description: "The server has no signing key yet; try again shortly.".into(),
        status: 503,
    })?;
    let access_token = signer.sign(&claims);
    state.note_secret_use(&client.secret_id, now);
    tracing::debug!(client_id = %claims.client_id, jti = %claims.jti, "issued access token");
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        scope: claims.scope,
    })
}

/// RFC 8707 §2: the resource must be an absolute URI without a fragment.
fn check_resource(r: &str) -> Result<&str, OAuthError> {
    let ok = (r.starts_with("https://") || r.starts_with("http://"))
        && !r.contains('#')
        && r.len() <= 2048
        && !r.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(r)
    } else {
        Err(OAuthError {
            error: "invalid_target",
            description:
                "The 'resource' must be an absolute http(s) URI without a fragment (RFC 8707)."
                    .into(),
            status: 400,
        })
    }
}
