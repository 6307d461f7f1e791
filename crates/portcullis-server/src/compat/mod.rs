//! Seed-compatible surfaces (API.md §3, DESIGN.md's compat layer): each seed's exact paths
//! and request/response shapes, mapped onto the same core grants and checks as the
//! standard endpoints. No rule lives only here: a handler parses the seed's shape, calls
//! `portcullis_core`, and writes the seed's response.

pub mod accounts;
pub mod ims;
pub mod redeem;

use crate::state::AppState;
use axum::Router;
use axum::routing::post;

/// Seed 000's token endpoints (the other seeds' routes are registered in `router()`).
pub fn router() -> Router<AppState> {
    Router::new()
        // The seed's Postman collection posts to the path with a trailing slash.
        .route("/ims/exchange/jwt", post(ims::exchange_jwt))
        .route("/ims/exchange/jwt/", post(ims::exchange_jwt))
        .route("/ims/token/v3", post(ims::token_v3))
}
