//! Extractors whose rejections are problem+json, so malformed input gets the documented
//! body format instead of axum's plain-text rejections.

use crate::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; a missing or wrong content type is 415, anything unparsable is 400 with
/// serde's explanation (which names the field).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        use axum::extract::rejection::JsonRejection as J;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(J::MissingJsonContentType(_)) => Err(Problem::unsupported_media_type(
                "Send the body as JSON with 'Content-Type: application/json'.",
            )),
            Err(J::JsonDataError(e)) => Err(Problem::bad_request(format!(
                "The JSON body does not match what this endpoint takes: {}",
                e.body_text()
            ))),
            Err(J::JsonSyntaxError(e)) => Err(Problem::bad_request(format!(
                "The body is not valid JSON: {}",
                e.body_text()
            ))),
            Err(J::BytesRejection(_)) => Err(too_large()),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}

fn too_large() -> Problem {
    Problem::new(
        413,
        "payload-too-large",
        "PCS-0413-413",
        "Payload too large",
        "The request body could not be read or is larger than 1 MiB.",
    )
}

/// Query parameters; unknown or malformed ones are 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| Problem::bad_request(format!("Bad query string: {}", e.body_text())))
    }
}

/// A JSON body that may be left out entirely: an empty body means `T::default()`
/// (whatever the headers say); any other body is read as [`ApiJson`], content type
/// included, so a body is never silently ignored.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, crate::config::MAX_BODY_BYTES)
            .await
            .map_err(|_| too_large())?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|j| Self(j.0))
    }
}
