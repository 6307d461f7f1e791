//! Authorization server metadata (RFC 8414, also served as `openid-configuration`) and
//! the JWKS (RFC 7517): the current signing key, the next one (published ahead of use),
//! and retired ones until their last token expires.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::jwt_bearer;
use serde_json::json;

pub async fn metadata(State(state): State<AppState>) -> Response {
    let iss = &state.issuer;
    let algs: Vec<&str> = {
        let view = state.view.get();
        let mut a: Vec<&str> = view.keys().map(|k| k.alg.as_str()).collect();
        a.sort_unstable();
        a.dedup();
        a
    };
    Json(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "grant_types_supported": ["client_credentials", jwt_bearer::GRANT_TYPE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        // The algorithms of app keys: RSA certificates and key pairs (RS256), P-256 (ES256).
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
        "dpop_signing_alg_values_supported": portcullis_core::dpop::ALG_NAMES,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "access_token_signing_alg_values_supported": algs,
    }))
    .into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    jwks_response(&state)
}

/// The JWKS document with its `Cache-Control`: served here and, for SAP Gigya's clients,
/// at `/accounts.getJWTPublicKey` (`crate::compat::accounts`).
pub fn jwks_response(state: &AppState) -> Response {
    let keys: Vec<serde_json::Value> = state.view.get().keys().map(|k| k.jwk.clone()).collect();
    let mut r = Json(json!({ "keys": keys })).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", state.jwks_max_age)) {
        r.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    r
}
