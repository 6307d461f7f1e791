//! OAuth 2.0 errors (RFC 6749 section 5.2), with the HTTP status they travel with.
//!
//! `description` is for the developer reading the response: it says what was wrong and
//! how to fix it, and never contains a secret.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The RFC 6749 error code (`invalid_client`, `invalid_scope`, …).
    pub error: &'static str,
    pub description: Cow<'static, str>,
    /// 400, or 401 for `invalid_client` (which then carries `WWW-Authenticate`).
    pub status: u16,
}

impl OAuthError {
    fn new(error: &'static str, status: u16, d: impl Into<Cow<'static, str>>) -> Self {
        Self {
            error,
            description: d.into(),
            status,
        }
    }
    /// RFC 6749 section 5.2 `invalid_request`.
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_request", 400, d)
    }
    /// RFC 6749 section 5.2 `invalid_client`; sent with 401 and `WWW-Authenticate`.
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_client", 401, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_grant", 400, d)
    }
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }
    pub fn unsupported_grant_type(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }
    /// Adobe I/O's `invalid_token` (400): the service-account JWT was refused.
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_token", 400, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_scope", 400, d)
    }
    /// RFC 6750 section 3.1 `insufficient_scope`, used when an authenticated caller lacks the
    /// scope an endpoint needs (introspection).
    pub fn insufficient_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("insufficient_scope", 403, d)
    }
}
