//! The standard OAuth 2.0 surface: token, introspection, revocation,
//! discovery and JWKS. Handlers parse the request, call core, and shape the response;
//! the rules live in `portcullis_core::grant`.

pub mod client_auth;
pub mod discovery;
pub mod form;
pub mod introspect;
pub mod revoke;
pub mod token;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/introspect", post(introspect::introspect))
        .route("/oauth/revoke", post(revoke::revoke))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
}
