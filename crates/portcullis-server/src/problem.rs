//! The two error models on the wire, one per format:
//!
//! - **RFC 9457 problem+json** ([`Problem`]) for the admin API and the gateway's denials:
//!   `{"type", "status", "title", "code", "detail"}`. `detail` tells a person what was
//!   wrong and what to do; it never contains a secret.
//! - **RFC 6749 section 5.2 JSON** ([`OAuthResponseError`]) for the OAuth endpoints:
//!   `{"error", "error_description"}`, with `WWW-Authenticate` on 401.
//!
//! A 5xx body says nothing about the cause; the cause is logged once, here.
//!
//! Some refusals are made before a handler runs: axum's 405 for a route without that
//! method, its path and body rejections, tower-http's 413 for an oversized body. They come
//! as plain text; [`documented_errors`] rewrites them into the format of the endpoint.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::oauth_error::OAuthError;
use portcullis_store::StoreError;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:portcullis:error:<slug>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: u16,
    pub title: Cow<'static, str>,
    /// A stable code, always a string.
    pub code: Cow<'static, str>,
    pub detail: String,
    /// Sent as `Retry-After` (seconds), not in the body.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// The same problem, answered with `Retry-After: seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn new(
        status: u16,
        slug: &str,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            type_: format!("urn:portcullis:error:{slug}"),
            status,
            title: Cow::Borrowed(title),
            code: Cow::Borrowed(code),
            detail: detail.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", "PCS-0400-400", "Bad request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            401,
            "unauthorized",
            "PCS-0401-AUTH",
            "Authentication required",
            detail,
        )
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", "PCS-0403-ADMIN", "Not allowed", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", "PCS-0404-404", "Not found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, "conflict", "PCS-0409-409", "Conflict", detail)
    }
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            415,
            "unsupported-media-type",
            "PCS-0415-415",
            "Unsupported media type",
            detail,
        )
    }
    /// A failure of ours. The body reveals nothing; `cause` goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            500,
            "internal",
            "PCS-0500-500",
            "Internal error",
            "The server failed to handle the request. It has been logged; try again later.",
        )
    }
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "store unavailable");
        Self::new(
            503,
            "unavailable",
            "PCS-0503-503",
            "Service unavailable",
            "The server cannot reach its store right now; try again shortly.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(&self)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        res
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => {
                Problem::not_found("No such record (it may have just been deleted).")
            }
            StoreError::Conflict(what) => {
                Problem::conflict(format!("The change conflicts with existing data: {what}."))
            }
            StoreError::Backend(_) => Problem::unavailable(&e),
            StoreError::Invalid(what) => Problem::bad_request(format!(
                "The request holds text that cannot be stored: {what}. Remove it and send the request again."
            )),
        }
    }
}

/// An OAuth error as an HTTP response.
#[derive(Debug)]
pub struct OAuthResponseError(pub OAuthError);

impl From<OAuthError> for OAuthResponseError {
    fn from(e: OAuthError) -> Self {
        Self(e)
    }
}

#[derive(Serialize)]
struct OAuthBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthResponseError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut res = (
            status,
            Json(OAuthBody {
                error: e.error,
                error_description: &e.description,
            }),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
            );
        }
        res
    }
}

/// Whether the endpoint at `path` answers errors in RFC 6749 JSON: `/oauth/*`, and the API-key
/// redeem's `/v1/token`.
fn oauth_format(path: &str) -> bool {
    path.starts_with("/oauth/") || path.starts_with("/ims/") || path == "/v1/token"
}

/// The most bytes of header names and values a request may carry ([`header_limit`]).
#[derive(Clone, Copy)]
pub struct HeaderLimit(pub usize);

/// Middleware: a request whose header names and values exceed the [`HeaderLimit`] is
/// answered `431` before any handler (and so before any token in them is looked at);
/// [`documented_errors`] gives it the path's error format.
pub async fn header_limit(
    axum::extract::State(HeaderLimit(max)): axum::extract::State<HeaderLimit>,
    req: Request,
    next: Next,
) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if size > max {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            [(header::CONNECTION, HeaderValue::from_static("close"))],
        )
            .into_response();
    }
    next.run(req).await
}

/// Middleware: an error response whose body is not JSON (nor a console page; a rejection made outside our
/// handlers) is rewritten as an RFC 6749 error under `/oauth/` and `/ims/` and at `/v1/token`, and as a problem
/// everywhere else. The status and an `Allow` header are kept.
pub async fn documented_errors(req: Request, next: Next) -> Response {
    let oauth = oauth_format(req.uri().path());
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json")
                || ct.starts_with("application/problem+json")
                // The console's own error pages, for people.
                || ct.starts_with("text/html")
        });
    if is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    // axum's rejection texts explain the problem without echoing secrets; keep them.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (slug, code, title, detail): (&str, &'static str, &'static str, String) = match status
        .as_u16()
    {
        405 => (
            "method-not-allowed",
            "PCS-0405-405",
            "Method not allowed",
            "This endpoint does not support this HTTP method; see the Allow header.".into(),
        ),
        408 => (
            "request-timeout",
            "PCS-0408-408",
            "Request timeout",
            "The request (its body included) took too long to arrive; send it again, faster."
                .into(),
        ),
        413 => (
            "payload-too-large",
            "PCS-0413-413",
            "Payload too large",
            "The request body is larger than 1 MiB.".into(),
        ),
        431 => (
            "header-fields-too-large",
            "PCS-0431-431",
            "Request header fields too large",
            "The request's headers are too large (a token of this size is not one Portcullis issued or accepts): send at most 32 KiB of headers, and tokens of at most 8 KiB."
                .into(),
        ),
        414 => (
            "uri-too-long",
            "PCS-0414-414",
            "URI too long",
            "The request URI is too long.".into(),
        ),
        415 => (
            "unsupported-media-type",
            "PCS-0415-415",
            "Unsupported media type",
            if text.is_empty() {
                "This content type is not accepted here.".into()
            } else {
                text
            },
        ),
        s if s >= 500 => {
            tracing::error!(status = s, body = %text, "an error response was made outside the handlers");
            (
                "internal",
                "PCS-0500-500",
                "Internal error",
                "The server failed to handle the request. It has been logged; try again later."
                    .into(),
            )
        }
        400 => (
            "bad-request",
            "PCS-0400-400",
            "Bad request",
            if text.is_empty() {
                "The request is malformed.".into()
            } else {
                text
            },
        ),
        404 => (
            "not-found",
            "PCS-0404-404",
            "Not found",
            "There is nothing at this path.".into(),
        ),
        422 => (
            "unprocessable-content",
            "PCS-0422-422",
            "Unprocessable content",
            if text.is_empty() {
                "The request body does not match what this endpoint takes.".into()
            } else {
                text
            },
        ),
        _ => (
            "request-refused",
            "PCS-0400-4XX",
            "Request refused",
            if text.is_empty() {
                format!("The request was refused ({status}).")
            } else {
                text
            },
        ),
    };
    let mut out = if oauth {
        let error = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request"
        };
        OAuthResponseError(OAuthError {
            error,
            description: detail.into(),
            status: status.as_u16(),
        })
        .into_response()
    } else {
        Problem::new(status.as_u16(), slug, code, title, detail).into_response()
    };
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
