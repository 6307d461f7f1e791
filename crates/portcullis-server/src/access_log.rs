//! The access log (`--access-log`, off by default): one `info` event per request, with the
//! target `access`, written by the logging set up for the server (text or JSON on stderr).
//!
//! Fields: `method`, `route` (the route pattern, such as `/admin/v1/apps/{client_id}`,
//! or `unmatched` — never the request's own path or query, which may carry a one-time
//! link's token or a credential), `status`, `latency_ms`, `client_id` (the app the answer
//! names, from its `x-portcullis-client-id` header; `-` when none) and `code` (the denial
//! code from `x-portcullis-code`; `-` when none). No header value the client sent is
//! logged. The time is the log line's own timestamp.

use axum::response::Response;
use std::time::Duration;

/// The target of access-log events, for log filters (`access=info`).
pub const TARGET: &str = "access";

/// Logs one request.
pub fn record(route: &str, method: &str, response: &Response, latency: Duration) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or("-")
    };
    tracing::info!(
        target: TARGET,
        method,
        route,
        status = response.status().as_u16(),
        latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        client_id = header("x-portcullis-client-id"),
        code = header("x-portcullis-code"),
        "request"
    );
}
