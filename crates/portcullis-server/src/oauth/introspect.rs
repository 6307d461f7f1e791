//! `POST /oauth/introspect` (RFC 7662). The caller is an app with the `introspect` scope
//! and answers only for tokens of its own org; anything else is `{"active": false}`. The
//! `scope` it reports is what the token may do now: its scopes the app still holds.

use super::client_auth::{authenticate_request, claimed_client_id};
use super::form::OAuthForm;
use crate::problem::OAuthResponseError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::introspect::check_live;
use portcullis_core::oauth_error::OAuthError;
use serde_json::json;

pub const INTROSPECT_SCOPE: &str = "introspect";

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = OAuthForm::parse(&headers, &body);
    let result = match &form {
        Ok(f) => answer(&state, &headers, f),
        Err(e) => Err(e.clone()),
    };
    if state.usage.enabled() {
        let outcome = match &result {
            Ok(v) if v["active"] == true => "active",
            Ok(_) => "inactive",
            Err(e) => e.error,
        };
        // The caller (authenticated, or else as claimed), if the view has it.
        let view = state.view.get();
        let claimed = form
            .as_ref()
            .ok()
            .and_then(|f| claimed_client_id(&headers, f));
        let app = claimed.as_deref().and_then(|c| view.app(c));
        state
            .usage
            .introspection(state.now(), app.map(|e| &e.app), outcome);
    }
    match result {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => OAuthResponseError(e).into_response(),
    }
}

fn answer(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<serde_json::Value, OAuthError> {
    let view = state.view.get();
    let now = state.now();
    let caller = authenticate_request(&view, headers, form, now)?;
    if !view
        .effective_scopes(&caller.entry.app)
        .contains(INTROSPECT_SCOPE)
    {
        return Err(OAuthError::insufficient_scope(
            "This application may not introspect tokens: it needs the 'introspect' scope.",
        ));
    }
    let token = form.require("token")?;
    let inactive = json!({"active": false});
    // The gateway's cache of verified tokens: a token introspected (or checked) before
    // costs a lookup, not an ECDSA verification, which was most of an introspection's CPU.
    // What changes after signing (revocation, suspension) is checked below either way.
    let claims = match state.token_cache.verify(token, &view, &state.issuer, now) {
        Ok(c) => c,
        Err(_) => return Ok(inactive),
    };
    if claims.org != caller.entry.app.org_id.as_str() || check_live(&claims, &view).is_err() {
        return Ok(inactive);
    }
    // An unbound token of an app that requires DPoP is good nowhere (the gateway refuses
    // it): a resource server that introspects must not accept it either.
    if claims.cnf.is_none()
        && view
            .app(&claims.client_id)
            .is_some_and(|e| e.app.dpop_bound_access_tokens)
    {
        return Ok(inactive);
    }
    // What the token may do now: its scopes the app still holds, as the gateway narrows
    // them. A token left with none of the scopes it was issued with is good for nothing.
    let live = view.app(&claims.client_id).map(|e| view.scopes_of(&e.app));
    let scope: Vec<&str> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty() && live.is_some_and(|l| l.contains(s)))
        .collect();
    if scope.is_empty() && !claims.scope.trim().is_empty() {
        return Ok(inactive);
    }
    let mut answer = json!({
        "active": true,
        "scope": scope.join(" "),
        "client_id": claims.client_id,
        "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
        "exp": claims.exp,
        "iat": claims.iat,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
        "org": claims.org,
    });
    // A DPoP-bound token's key (RFC 9449 section 6.2): the resource server checks the
    // proof that comes with it against this thumbprint.
    if let Some(cnf) = &claims.cnf {
        answer["cnf"] = json!({"jkt": cnf.jkt});
    }
    Ok(answer)
}
