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
    /// RFC 9449 section 5 `invalid_dpop_proof`: the `DPoP` header of a token request was
    /// refused (or missing, for an app that requires one).
    pub fn invalid_dpop_proof(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("invalid_dpop_proof", 400, d)
    }
    /// RFC 9449 section 8 `use_dpop_nonce`: sign the proof again with the nonce of the
    /// response's `DPoP-Nonce` header.
    pub fn use_dpop_nonce(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("use_dpop_nonce", 400, d)
    }
    /// RFC 6750 section 3.1 `insufficient_scope`, used when an authenticated caller lacks the
    /// scope an endpoint needs (introspection).
    pub fn insufficient_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new("insufficient_scope", 403, d)
    }
}

/// What the app's developer or operator does about an OAuth error of the token endpoint
/// (or introspection), in a sentence: the console shows it beside the error's count, as
/// the gateway catalogue's [`crate::gateway::catalogue::Entry::fix`] for its codes.
/// `None` for a name this server never answers.
pub fn fix(error: &str) -> Option<&'static str> {
    Some(match error {
        "invalid_client" => {
            "Check the client id and secret the app sends (or its signed client assertion): the secret may be mistyped, expired or deleted (add a new one), or the app or its organization suspended."
        }
        "invalid_grant" => {
            "Sign a fresh JWT assertion with one of the app's keys: the one sent was expired, used before, for another audience, or signed with a key the app does not have."
        }
        "invalid_scope" => {
            "Request only scopes the app holds (its own scopes or its permission group's), or give the app the scope first."
        }
        "unauthorized_client" => {
            "The app may not use this grant: check which grants and credentials it has, and that it is active."
        }
        "invalid_request" => {
            "Send a well-formed token request: a POST of application/x-www-form-urlencoded with grant_type, and the client's credentials once (HTTP Basic or the form, not both)."
        }
        "unsupported_grant_type" => {
            "Use a grant type this server supports: client_credentials, or urn:ietf:params:oauth:grant-type:jwt-bearer."
        }
        "invalid_target" => {
            "Send 'resource' as an absolute http(s) URI without a fragment, or leave it out."
        }
        "invalid_token" => {
            "Sign a fresh service-account JWT with a certificate uploaded to the app, with the claims the token exchange expects; the refusal's description says which one failed."
        }
        "insufficient_scope" => {
            "Give the calling app the 'introspect' scope: only such apps may introspect tokens."
        }
        "temporarily_unavailable" => {
            "Retry shortly: the server could not decide right now (no signing key yet, or the shared store unreachable)."
        }
        "server_error" => "Retry; if it persists, the server's log says what failed.",
        "invalid_dpop_proof" => {
            "Send one DPoP header with a fresh proof for POST to the token endpoint, signed with the client's own key pair; the description names the check that failed."
        }
        "use_dpop_nonce" => {
            "Sign the DPoP proof again with the nonce from the DPoP-Nonce response header and retry; DPoP client libraries do this by themselves."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_this_server_answers_says_what_to_do() {
        let made = [
            OAuthError::invalid_request(""),
            OAuthError::invalid_client(""),
            OAuthError::invalid_grant(""),
            OAuthError::unauthorized_client(""),
            OAuthError::unsupported_grant_type(""),
            OAuthError::invalid_token(""),
            OAuthError::invalid_scope(""),
            OAuthError::insufficient_scope(""),
            OAuthError::invalid_dpop_proof(""),
            OAuthError::use_dpop_nonce(""),
        ];
        for e in made.iter().map(|e| e.error).chain([
            "invalid_target",
            "temporarily_unavailable",
            "server_error",
        ]) {
            let fix = fix(e).unwrap_or_else(|| panic!("no fix for {e}"));
            assert!(fix.ends_with('.') && fix.len() < 300, "{e}: {fix}");
        }
        assert_eq!(fix("allowed"), None);
        assert_eq!(fix("403003"), None);
    }
}
