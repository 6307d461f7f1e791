//! The two error models on the wire, one per format (STYLE.md):
//!
//! - **RFC 9457 problem+json** ([`Problem`]) for the admin API (and, next, the gateway):
//!   `{"type", "status", "title", "code", "detail"}`. `detail` tells a person what was
//!   wrong and what to do; it never contains a secret.
//! - **RFC 6749 §5.2 JSON** ([`OAuthResponseError`]) for the OAuth endpoints:
//!   `{"error", "error_description"}`, with `WWW-Authenticate` on 401.
//!
//! A 5xx body says nothing about the cause; the cause is logged once, here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::oauth_error::OAuthError;
use portcullis_store::StoreError;
use serde::Serialize;
use std::borrow::Cow;

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:portcullis:error:<slug>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: u16,
    pub title: Cow<'static, str>,
    /// A stable code, always a string.
    pub code: Cow<'static, str>,
    pub detail: String,
}

impl Problem {
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
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", "PCS-0400-400", "Bad request", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", "PCS-0401-AUTH", "Authentication required", detail)
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
        Self::new(415, "unsupported-media-type", "PCS-0415-415", "Unsupported media type", detail)
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
        res
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Problem::not_found("No such record (it may have just been deleted)."),
            StoreError::Conflict(what) => Problem::conflict(format!("The change conflicts with existing data: {what}.")),
            StoreError::Backend(_) => Problem::unavailable(&e),
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
