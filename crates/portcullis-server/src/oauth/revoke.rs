//! `POST /oauth/revoke` (RFC 7009). An app revokes its own tokens; an app with the
//! `admin` scope, any token of its org. The revocation is stored, then the view is
//! refreshed before answering, so the token is refused everywhere from then on.
//!
//! A token the caller may not revoke gets the same `200` as an invalid one (RFC 7009
//! section 2.2 allows it), and nothing is revoked: a different answer would tell a caller which
//! strings are other applications' live tokens.

use super::client_auth::authenticate_request;
use super::form::OAuthForm;
use crate::problem::OAuthResponseError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::ClientId;
use portcullis_core::model::Revocation;
use portcullis_core::oauth_error::OAuthError;
use portcullis_core::token::verify_access_token;

use portcullis_core::policy::ADMIN_SCOPE;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let decided = decide(&state, &headers, &body);
    let result = match decided {
        Ok(Some(r)) => match state.store.revoke(&r).await {
            Ok(()) => state.refreshed().await.map_err(|p| p.into_response()),
            Err(e) => Err(crate::problem::Problem::from(e).into_response()),
        },
        Ok(None) => Ok(()),
        Err(e) => Err(OAuthResponseError(e).into_response()),
    };
    match result {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(r) => r,
    }
}

/// What to revoke, if anything. RFC 7009 section 2.2: an invalid or expired token is not an
/// error — there is nothing left to revoke.
fn decide(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<Revocation>, OAuthError> {
    let form = OAuthForm::parse(headers, body)?;
    let view = state.view.get();
    let now = state.now();
    let caller = authenticate_request(&view, headers, &form, now)?;
    let token = form.require("token")?;
    let Ok(claims) = verify_access_token(token, |kid| view.key(kid), &state.issuer, now) else {
        return Ok(None);
    };
    let app = &caller.entry.app;
    let own = claims.client_id == app.client_id.as_str();
    let org_admin =
        claims.org == app.org_id.as_str() && view.effective_scopes(app).contains(ADMIN_SCOPE);
    if !own && !org_admin {
        tracing::debug!(client_id = %app.client_id, "revocation of another application's token ignored");
        return Ok(None);
    }
    let client_id = ClientId::parse(&claims.client_id)
        .map_err(|_| OAuthError::invalid_request("The token names a malformed client id."))?;
    Ok(Some(Revocation {
        jti: claims.jti,
        client_id,
        exp: claims.exp,
    }))
}
