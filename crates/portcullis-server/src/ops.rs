//! Operations endpoints: `/healthz` (the process is alive), `/readyz` (the store answers
//! and the view is loaded), `/metrics` (OpenMetrics, or the Prometheus text format: see
//! [`Exposition::negotiate`](crate::metrics::Exposition::negotiate)).
//!
//! A node whose store is unreachable still answers token grants and gateway checks from
//! its last view, but it is not *ready*: `/readyz` says 503, with since when, so a load
//! balancer can prefer nodes that see current data, and `portcullis_store_up` is 0.

use crate::metrics::Exposition;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let view = state.view.get();
    let (orgs, apps) = view.counts();
    let signer = view.signer().is_some();
    let ping = state.store.ping().await;
    if ping.is_ok() {
        state.view.note_store(true);
    }
    match ping {
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
            state.view.note_store(false);
            store_unreachable(&state)
        }
    }
}

/// 503 as a problem: which store, since when, and what still works.
fn store_unreachable(state: &AppState) -> Response {
    let since = state.view.store_down_since().unwrap_or_else(|| state.now());
    let at = time::OffsetDateTime::from_unix_timestamp(since)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| since.to_string());
    let backend = state.store.backend();
    let body = json!({
        "type": "urn:portcullis:error:store-unreachable",
        "status": 503,
        "title": "Store unreachable",
        "code": "PCS-0503-503",
        "detail": format!(
            "The {backend} store has been unreachable since {at} ({} s). Token grants and gateway decisions are served from the data as it was then; writes fail until the store answers again.",
            (state.now() - since).max(0)
        ),
        "store": backend,
        "store_down_since": since,
    });
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // Several Accept headers are one list (RFC 9110, section 5.3); one that is not
    // visible ASCII is ignored.
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let format = Exposition::negotiate(&accept.join(","));
    let (orgs, apps) = state.view.get().counts();
    state.metrics.view_orgs.set(orgs as i64);
    state.metrics.view_apps.set(apps as i64);
    let up = state.view.store_down_since().is_none();
    state.metrics.store_up.set(i64::from(up));
    let mut r = state.metrics.encode(format).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // The body depends on Accept: a cache in between must not answer one scraper with
    // another's format.
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    r
}
