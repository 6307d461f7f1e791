//! The console's client of the admin API: requests go in process (`tower::ServiceExt::
//! oneshot`) to the router [`crate::admin::router`] builds, with the signed-in user's
//! session token as `Authorization: Bearer pcsu_…`, and the JSON answers are read here
//! into the admin API's own response types ([`crate::admin::apps::AppBody`],
//! [`crate::admin::Page`], …): the console reads the same fields the API documents, with
//! their types. So every rule and permission the console shows is the admin API's.

use crate::problem::Problem;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;
use tower::ServiceExt;

/// An answer the console does not read: only that the admin API accepted the request.
pub type Ignored = IgnoredAny;

/// Largest admin answer the console reads (listings are at most 100 items a page).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// A refusal of the admin API, with the problem's `detail` for the person.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

/// The admin API as one user sees it.
#[derive(Clone)]
pub struct Api {
    /// The router called: the admin API's (or Wave's, for notifications).
    admin: Router,
    token: Option<String>,
    /// The browser's address, for the audit trail of what the console does.
    client: Option<std::net::IpAddr>,
}

/// Percent-encode one path segment (ids come from the console's own URLs).
pub fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Api {
    pub fn new(admin: Router, token: Option<String>, client: Option<std::net::IpAddr>) -> Self {
        Self {
            admin,
            token,
            client,
        }
    }

    /// One admin request; its answer read as `T` (the admin API's own response type, or
    /// [`Ignored`]; an empty answer reads as `null`), or the problem's status and detail.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        let req = Request::builder().method(method).uri(path);
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .map_err(|e| internal(&e))?;
        let res = self.send(req).await;
        let status = res.status();
        if !status.is_success() {
            return Err(self.refused(status, res.into_body()).await);
        }
        let bytes = axum::body::to_bytes(res.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| internal(&e))?;
        let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(bytes).map_err(|e| internal(&e))
    }

    /// A `GET` whose answer is a file to pass on as it is (the usage CSV): its status,
    /// `Content-Type` and `Content-Disposition`, and its body streamed, not read here; a
    /// refusal is the problem's status and detail, as for [`Api::call`].
    pub async fn download(&self, path: &str) -> Result<axum::response::Response, ApiError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Body::empty())
            .map_err(|e| internal(&e))?;
        let res = self.send(req).await;
        let status = res.status();
        if !status.is_success() {
            return Err(self.refused(status, res.into_body()).await);
        }
        let (parts, body) = res.into_parts();
        let mut out = axum::response::Response::new(body);
        *out.status_mut() = status;
        for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
            if let Some(v) = parts.headers.get(&name) {
                out.headers_mut().insert(name, v.clone());
            }
        }
        Ok(out)
    }

    /// One request as this caller; the raw answer (a stream stays a stream).
    pub async fn send(&self, mut req: Request<Body>) -> axum::response::Response {
        if let Some(t) = &self.token
            && let Ok(v) = axum::http::HeaderValue::from_str(&format!("Bearer {t}"))
        {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        req.extensions_mut()
            .insert(crate::audit::ForwardedClient(self.client));
        match self.admin.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        self.call(Method::POST, path, body).await
    }

    /// A change whose answer the console does not show (it goes back to a page that
    /// reads the record again).
    pub async fn patch(&self, path: &str, body: Value) -> Result<(), ApiError> {
        self.call::<Ignored>(Method::PATCH, path, Some(body))
            .await
            .map(drop)
    }

    pub async fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.call::<Ignored>(Method::DELETE, path, None)
            .await
            .map(drop)
    }
}

/// What a signed-in person is told when the admin API refuses their session: its own
/// detail names `POST /admin/v1/sessions`, a script's way to sign in; a person's is the
/// sign-in page, which the 401 page links to.
pub const SESSION_ENDED: &str = "Your session has ended (it expired, you signed out, or your password was changed). Sign in again.";

impl Api {
    /// A refusal as the person reads it; as a session (not a one-time link), a 401 means
    /// the session no longer works, and says so in the console's words.
    async fn refused(&self, status: StatusCode, body: Body) -> ApiError {
        let session = self
            .token
            .as_deref()
            .is_some_and(|t| t.starts_with("pcsu_"));
        if status == StatusCode::UNAUTHORIZED && session {
            return ApiError {
                status,
                detail: SESSION_ENDED.to_owned(),
            };
        }
        refused(status, body).await
    }
}

/// A refusal's answer as the person reads it: its status and the problem's `detail`.
async fn refused(status: StatusCode, body: Body) -> ApiError {
    let detail = match axum::body::to_bytes(body, MAX_ANSWER).await {
        Ok(b) if b.is_empty() => refusal_detail(b"null"),
        Ok(b) => refusal_detail(&b),
        Err(e) => Err(internal(&e)),
    };
    match detail {
        Ok(detail) => ApiError { status, detail },
        Err(e) => e,
    }
}

/// What a person reads of a refusal: the problem's `detail`, or a general sentence when
/// the answer is JSON but not a problem.
fn refusal_detail(bytes: &[u8]) -> Result<String, ApiError> {
    match serde_json::from_slice::<Problem>(bytes) {
        Ok(p) => Ok(p.detail),
        Err(e) if e.is_data() => Ok("The admin API refused the request.".to_owned()),
        Err(e) => Err(internal(&e)),
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "console: the admin API's answer could not be read");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "The console could not read the admin API's answer; it has been logged.".into(),
    }
}
