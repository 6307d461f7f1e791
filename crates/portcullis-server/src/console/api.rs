//! The console's client of the admin API: requests go in process (`tower::ServiceExt::
//! oneshot`) to the router [`crate::admin::router`] builds, with the signed-in user's
//! session token as `Authorization: Bearer pcsu_…`, and the JSON answers are parsed here.
//! So every rule and permission the console shows is the admin API's.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

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

    /// One admin request; the parsed JSON answer (`Null` for an empty one) or the
    /// problem's status and detail.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
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
        let bytes = axum::body::to_bytes(res.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| internal(&e))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| internal(&e))?
        };
        if status.is_success() {
            Ok(value)
        } else {
            let detail = value["detail"]
                .as_str()
                .unwrap_or("The admin API refused the request.")
                .to_owned();
            Err(ApiError { status, detail })
        }
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

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
        self.call(Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.call(Method::DELETE, path, None).await
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "console: the admin API's answer could not be read");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: "The console could not read the admin API's answer; it has been logged.".into(),
    }
}
