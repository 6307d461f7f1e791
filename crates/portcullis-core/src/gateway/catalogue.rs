//! The denial catalogue as one table: each code's stable text, HTTP status, title and
//! `type` slug, read by every answer (the gateway, `portcullis-verify`, metrics, docs).
//! A new code is a variant, its row in the table, its place in [`Code::ALL`] (the array
//! lengths grow by one), the detail written where its check fails (core's `gateway/`
//! modules, or the server's `gateway/check.rs` and `edge.rs`), and its row in the
//! reference's table of codes (`docs/reference.md`).

/// A denial code of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidToken,
    TokenExpired,
    MissingProductContext,
    InsufficientScope,
    SandboxNotWritable,
    InvalidApiKey,
    OrgDisabled,
    OrgMismatch,
    SandboxNotAccessible,
    /// Over a failure limit or the app's request quota; `Retry-After` says when to retry.
    RateLimited,
    /// Not in the vendors' catalogues: the proxy named a resource this server does not know.
    UnknownResource,
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub code: Code,
    /// The stable code, always a string.
    pub text: &'static str,
    pub status: u16,
    pub title: &'static str,
    /// `type` is `urn:portcullis:error:<slug>`.
    pub slug: &'static str,
    /// A failed authentication, counted by the failure limits: the credential was
    /// malformed, wrong, or not the one named. Expiry is not counted (clients
    /// legitimately use a token until it expires), nor are authorization refusals.
    pub auth_failure: bool,
}

const fn row(
    code: Code,
    text: &'static str,
    status: u16,
    title: &'static str,
    slug: &'static str,
    auth_failure: bool,
) -> Entry {
    Entry {
        code,
        text,
        status,
        title,
        slug,
        auth_failure,
    }
}

const INVALID: &str = "Invalid authorization token";

/// The catalogue, in its order (and the order of [`Code`]'s variants).
pub const CATALOGUE: [Entry; 12] = [
    row(
        Code::InvalidRequest,
        "EXEG-0500-401",
        401,
        INVALID,
        "invalid-request",
        true,
    ),
    row(
        Code::InvalidToken,
        "EXEG-0502-401",
        401,
        INVALID,
        "invalid-token",
        true,
    ),
    row(
        Code::TokenExpired,
        "EXEG-0503-401",
        401,
        INVALID,
        "token-expired",
        false,
    ),
    row(
        Code::MissingProductContext,
        "EXEG-0504-401",
        401,
        "Required product context is missing",
        "missing-product-context",
        false,
    ),
    row(
        Code::InsufficientScope,
        "EXEG-0505-401",
        401,
        "Required authorization token scope is missing",
        "insufficient-scope",
        false,
    ),
    row(
        Code::SandboxNotWritable,
        "EXEG-0506-401",
        401,
        "Sandbox not accessible for write",
        "sandbox-not-writable",
        false,
    ),
    row(
        Code::InvalidApiKey,
        "403003",
        403,
        "Api Key is invalid",
        "invalid-api-key",
        true,
    ),
    row(
        Code::OrgDisabled,
        "PCS-0401-401",
        401,
        "Organization is not active",
        "org-disabled",
        false,
    ),
    row(
        Code::OrgMismatch,
        "PCS-0403-403",
        403,
        "Organization mismatch",
        "org-mismatch",
        false,
    ),
    row(
        Code::SandboxNotAccessible,
        "PCS-0407-403",
        403,
        "Sandbox not accessible",
        "sandbox-not-accessible",
        false,
    ),
    row(
        Code::RateLimited,
        "PCS-0429-429",
        429,
        "Too many requests",
        "rate-limited",
        false,
    ),
    row(
        Code::UnknownResource,
        "PCS-0404-404",
        404,
        "Unknown resource",
        "unknown-resource",
        false,
    ),
];

impl Code {
    /// This code's row of [`CATALOGUE`].
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[self as usize]
    }
    /// The stable code, always a string.
    pub fn code(self) -> &'static str {
        self.entry().text
    }
    pub fn status(self) -> u16 {
        self.entry().status
    }
    pub fn title(self) -> &'static str {
        self.entry().title
    }
    /// `type` is `urn:portcullis:error:<slug>`.
    pub fn slug(self) -> &'static str {
        self.entry().slug
    }
    /// A failed authentication, counted by the failure limits (see [`Entry::auth_failure`]).
    pub fn is_auth_failure(self) -> bool {
        self.entry().auth_failure
    }

    /// Every code, in the catalogue's order (for metrics and docs).
    pub const ALL: [Code; 12] = [
        Code::InvalidRequest,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::MissingProductContext,
        Code::InsufficientScope,
        Code::SandboxNotWritable,
        Code::InvalidApiKey,
        Code::OrgDisabled,
        Code::OrgMismatch,
        Code::SandboxNotAccessible,
        Code::RateLimited,
        Code::UnknownResource,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_codes_own() {
        for (i, e) in CATALOGUE.iter().enumerate() {
            assert_eq!(e.code as usize, i, "{:?} is out of place", e.code);
            assert_eq!(Code::ALL[i], e.code);
        }
    }
}
