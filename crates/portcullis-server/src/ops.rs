//! Operations endpoints: `/healthz` (the process is alive), `/readyz` (the store answers
//! and the view is loaded), `/metrics` (Prometheus text format).

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let view = state.view.get();
    let (orgs, apps) = view.counts();
    let signer = view.signer().is_some();
    match state.store.ping().await {
        Ok(()) if signer => Json(json!({
            "status": "ready",
            "store": state.store.backend(),
            "view": {"orgs": orgs, "apps": apps},
        }))
        .into_response(),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "no signing key loaded"})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "reason": "store unreachable"})),
            )
                .into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let (orgs, apps) = state.view.get().counts();
    state.metrics.view_orgs.set(orgs as i64);
    state.metrics.view_apps.set(apps as i64);
    let mut r = state.metrics.encode().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
