//! `private_key_jwt` client authentication (RFC 7523 section 2.2 and section 3, OpenID Connect Core
//! section 9): the client proves itself with a JWT it signed with one of its keys (an uploaded
//! certificate's or a key pair's), instead of a client secret.
//!
//! The assertion's `iss` and `sub` are the client id; `aud` the token endpoint (or the
//! issuer); `exp` at most 24 h ahead; `jti` never used before. Every failure is
//! `invalid_client` (401), with a description that names what to fix.

use super::assertion::Claims;
use super::client_auth::{AuthenticatedClient, check_active};
use crate::app_jwt::{JtiCheck, verify_any};
use crate::oauth_error::OAuthError;
use crate::view::View;

/// The one `client_assertion_type` (RFC 7523 section 2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What an RFC 7523 assertion is checked against besides the view.
#[derive(Clone, Copy)]
pub struct AssertionContext<'a> {
    pub issuer: &'a str,
    /// `<issuer>/oauth/token`: the `aud` an assertion is for.
    pub token_endpoint: &'a str,
    pub now: i64,
    /// Where `jti`s are recorded: this node's cache, or a [`crate::app_jwt::DeferredJti`]
    /// the server then checks against the store shared by every node.
    pub replay: &'a dyn JtiCheck,
}

/// Authenticate the client by `assertion`. `client_id` is the form's `client_id`, when
/// sent (it must then be the assertion's `iss`).
pub fn authenticate(
    view: &View,
    client_id: Option<&str>,
    assertion: &str,
    ctx: AssertionContext<'_>,
) -> Result<AuthenticatedClient, OAuthError> {
    let fail = |d: String| OAuthError::invalid_client(format!("Client authentication failed: {d}"));
    // A JWS using a refused feature says which; anything else is "not a JWT" below.
    if let Err(e) = crate::jose::precheck(assertion)
        && !e.is_malformed()
    {
        return Err(fail(format!("{e}.")));
    }
    let unverified = Claims::unverified(assertion).ok_or_else(|| {
        fail("the client_assertion is not a JWT (three base64url parts, JSON claims).".into())
    })?;
    let id = match client_id {
        Some(id) => id,
        None => unverified
            .string("iss")
            .map_err(|e| fail(format!("{e} Set 'iss' and 'sub' to the client id.")))?,
    };
    let entry = view.app(id).ok_or_else(|| {
        fail("no application has this client_id (the assertion's 'iss'). Check the app's client id in the console or admin API.".into())
    })?;
    let (claims, key) =
        verify_any::<Claims>(assertion, entry, ctx.now).map_err(|e| fail(format!("{e}.")))?;
    let cid = entry.app.client_id.as_str();
    claims
        .expect("iss", cid, "the client id")
        .and_then(|_| claims.expect("sub", cid, "the client id"))
        .and_then(|_| claims.expect_aud(&[ctx.token_endpoint, ctx.issuer]))
        .and_then(|_| claims.check_times(ctx.now))
        .and_then(|exp| claims.first_use(ctx.replay, cid, exp, ctx.now))
        .map_err(fail)?;
    check_active(view, entry)?;
    Ok(AuthenticatedClient {
        entry: entry.clone(),
        credential_id: key.key.id.clone(),
    })
}
