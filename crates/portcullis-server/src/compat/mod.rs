//! Seed-compatible surfaces (API.md §3, DESIGN.md's compat layer): each seed's exact paths
//! and request/response shapes, mapped onto the same core grants as the standard
//! endpoints. No rule lives only here: a handler parses the seed's shape, calls
//! `portcullis_core::grant`, and writes the seed's response.

pub mod ims;

use crate::state::AppState;
use axum::Router;
use axum::routing::post;

pub fn router() -> Router<AppState> {
    Router::new()
        // The seed's Postman collection posts to the path with a trailing slash.
        .route("/ims/exchange/jwt", post(ims::exchange_jwt))
        .route("/ims/exchange/jwt/", post(ims::exchange_jwt))
        .route("/ims/token/v3", post(ims::token_v3))
}
