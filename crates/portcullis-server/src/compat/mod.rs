//! Vendor-compatible surfaces: each vendor's exact paths
//! and request/response shapes, mapped onto the same core grants and checks as the
//! standard endpoints. No rule lives only here: a handler parses the vendor's shape, calls
//! `portcullis_core`, and writes the vendor's response.

pub mod accounts;
pub mod ims;
pub mod redeem;

use crate::state::AppState;
use axum::Router;
use axum::routing::post;

/// Adobe I/O's token endpoints (the other vendors' routes are registered in `router()`).
pub fn router() -> Router<AppState> {
    Router::new()
        // The vendor's Postman collection posts to the path with a trailing slash.
        .route("/ims/exchange/jwt", post(ims::exchange_jwt))
        .route("/ims/exchange/jwt/", post(ims::exchange_jwt))
        .route("/ims/token/v3", post(ims::token_v3))
}
