//! Extractors whose rejections are problem+json, so malformed input gets the documented
//! body format instead of axum's plain-text rejections.

use crate::problem::Problem;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body; a missing or wrong content type is 415, a body that is not JSON 400, and
/// one of the wrong shape 400 with a detail that names the field, the shape it must have
/// and an example ([`json_errors`](super::json_errors)). Every admin API body is read
/// through this (or [`OptionalJson`]), so every endpoint words these errors alike.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !json_content_type(req.headers()) {
            return Err(Problem::unsupported_media_type(
                "Send the body as JSON with 'Content-Type: application/json'.",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| too_large())?;
        parse(&bytes).map(Self)
    }
}

/// `application/json`, or any `application/…+json`, parameters aside.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as `T`, or the problem that says what is wrong with it.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let (path, inner) = (e.path().clone(), e.into_inner());
        if inner.is_data() {
            Problem::bad_request(super::json_errors::describe(&path, &inner))
        } else {
            Problem::bad_request(format!("The body is not valid JSON: {inner}."))
        }
    })?;
    de.end()
        .map_err(|e| Problem::bad_request(format!("The body is not valid JSON: {e}.")))?;
    Ok(value)
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
            .map_err(|e| Problem::bad_request(query_refusal(&e.body_text(), parts.uri.query())))
    }
}

/// What a refused query string gets: the parser's reason, except that a number that is
/// not one is said in words, with the value given.
fn query_refusal(reason: &str, query: Option<&str>) -> String {
    let reason = reason
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(reason);
    if let Some((field, why)) = reason.split_once(": ")
        && [
            "invalid digit found in string",
            "cannot parse integer from empty string",
            "number too large to fit in target type",
            "number too small to fit in target type",
        ]
        .contains(&why)
    {
        let given = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.chars().take(40).collect::<String>())
            .unwrap_or_default();
        return format!("Bad query string: '{field}' must be a whole number, not '{given}'.");
    }
    format!("Bad query string: {reason}")
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
