//! The admin API (API.md §4), JSON under `/admin/v1`.
use crate::state::AppState;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
}
