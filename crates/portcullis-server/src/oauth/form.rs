//! `application/x-www-form-urlencoded` request bodies for the OAuth endpoints.
//!
//! RFC 6749 section 3.2: parameters without a value are treated as omitted, and a parameter
//! must not be included more than once (we refuse duplicates rather than pick one).

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use portcullis_core::oauth_error::OAuthError;
use std::collections::HashMap;

/// Largest OAuth form body we read (client assertions included).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct OAuthForm(HashMap<String, String>);

impl OAuthForm {
    pub fn parse(headers: &HeaderMap, body: &Bytes) -> Result<Self, OAuthError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "The request body must be application/x-www-form-urlencoded (RFC 6749 section 4.4.2).",
            ));
        }
        if body.len() > MAX_FORM_BYTES {
            return Err(OAuthError::invalid_request(
                "The request body is too large.",
            ));
        }
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "The parameter '{}' appears more than once (RFC 6749 section 3.2).",
                    k.chars().take(40).collect::<String>()
                )));
            }
        }
        Ok(Self(map))
    }

    /// Every parameter, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.as_str())
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("The '{name}' parameter is missing."))
        })
    }
}
