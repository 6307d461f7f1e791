//! The JWT bearer grant (RFC 7523 section 2.1 and section 3): an app trades a JWT it signed with one of
//! its keys for an access token. `iss` is its client id, `sub` its technical account id
//! (the subject the token is for), `aud` the token endpoint (or the issuer), `exp` at
//! most 24 h ahead, `jti` never used before. Assertion failures are `invalid_grant`.
//!
//! Client authentication is optional with this grant (RFC 7523 section 3.1); when the request
//! has it, it must be the assertion's app. The token's claims are then decided exactly as
//! for client credentials (scope narrowing included), with the verifying key as `cred`.

use super::assertion::Claims;
use super::client_assertion::AssertionContext;
use super::client_auth::{AuthenticatedClient, check_active};
use crate::app_jwt::verify_any;
use crate::oauth_error::OAuthError;
use crate::view::View;

/// The grant type (RFC 7523 section 2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Check `assertion`; the app it proves, with its key as the credential. `client` is the
/// request's client authentication, if it had any.
pub fn authorize(
    view: &View,
    assertion: &str,
    client: Option<&AuthenticatedClient>,
    ctx: AssertionContext<'_>,
) -> Result<AuthenticatedClient, OAuthError> {
    let fail = |d: String| OAuthError::invalid_grant(format!("The assertion was refused: {d}"));
    // A JWS using a refused feature says which; anything else is "not a JWT" below.
    if let Err(e) = crate::jose::precheck(assertion)
        && !e.is_malformed()
    {
        return Err(fail(format!("{e}.")));
    }
    let unverified = Claims::unverified(assertion)
        .ok_or_else(|| fail("it is not a JWT (three base64url parts, JSON claims).".into()))?;
    let iss = unverified
        .string("iss")
        .map_err(|e| fail(format!("{e} Set 'iss' to the client id.")))?;
    if let Some(c) = client
        && c.entry.app.client_id.as_str() != iss
    {
        return Err(fail(format!(
            "its iss is another client than the one that authenticated ('{}'); a client may present only its own assertions.",
            c.entry.app.client_id
        )));
    }
    let entry = view.app(iss).ok_or_else(|| {
        fail(
            "no application has the client id in its 'iss'. Set 'iss' to your app's client id."
                .into(),
        )
    })?;
    let (claims, key) =
        verify_any::<Claims>(assertion, entry, ctx.now).map_err(|e| fail(format!("{e}.")))?;
    let app = &entry.app;
    claims
        .expect(
            "sub",
            app.technical_account_id.as_str(),
            "the app's technical account id",
        )
        .and_then(|_| claims.expect_aud(&[ctx.token_endpoint, ctx.issuer]))
        .and_then(|_| claims.check_times(ctx.now))
        .and_then(|exp| claims.first_use(ctx.replay, app.client_id.as_str(), exp, ctx.now))
        .map_err(fail)?;
    check_active(view, entry).map_err(|e| OAuthError::invalid_grant(e.description))?;
    Ok(AuthenticatedClient {
        entry: entry.clone(),
        credential_id: key.key.id.clone(),
    })
}
