//! The client credentials grant (RFC 6749 section 4.4): an authenticated app asks for a token
//! for itself. The optional `scope` narrows the app's live scopes (section 3.3); asking for a
//! scope the app does not have is `invalid_scope`. Without `scope`, the token carries the
//! app's scopes except `admin` and `verify` ([`BY_NAME_ONLY`]), which a token carries only
//! when they are asked for by name (section 3.3 lets the server choose a default).

use super::client_auth::AuthenticatedClient;
use crate::model::App;
use crate::oauth_error::OAuthError;
use crate::policy::BY_NAME_ONLY;
use crate::scope::ScopeSet;
use crate::token::{AccessClaims, new_jti};
use crate::view::View;

/// Everything the grant needs besides the view.
#[derive(Debug, Clone, Copy)]
pub struct GrantContext<'a> {
    pub issuer: &'a str,
    pub now: i64,
    /// The surface's default lifetime, used when the app has none of its own.
    pub default_ttl: u32,
}

/// Decide the claims of the token to mint. Signing is the caller's (it holds the key).
pub fn grant(
    view: &View,
    client: &AuthenticatedClient,
    requested_scope: Option<&str>,
    ctx: GrantContext<'_>,
) -> Result<AccessClaims, OAuthError> {
    let app = &client.entry.app;
    let granted = view.effective_scopes(app);
    let scope = match requested_scope {
        None => granted.without(BY_NAME_ONLY),
        Some(text) => {
            let asked =
                ScopeSet::parse(text).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            let missing = asked.missing_from(&granted);
            if !missing.is_empty() {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(OAuthError::invalid_scope(format!(
                    "The application is not granted the scope(s) '{}'. Its scopes are '{}'; ask an administrator of its organization to add the missing ones to the app or its permission group.",
                    names.join(" "),
                    granted.to_text()
                )));
            }
            asked
        }
    };
    let ttl = app.token_ttl_seconds.unwrap_or(ctx.default_ttl) as i64;
    let iat = issued_at(view, app, ctx.now);
    Ok(AccessClaims {
        iss: ctx.issuer.to_owned(),
        sub: app.technical_account_id.to_string(),
        aud: ctx.issuer.to_owned(),
        client_id: app.client_id.to_string(),
        org: app.org_id.to_string(),
        scope: scope.to_text(),
        iat,
        exp: iat + ttl,
        jti: new_jti(),
        cred: Some(client.credential_id.to_string()),
        cnf: None,
    })
}

/// The `iat` of a token minted at `now`. Suspending an app (or disabling an org) ends
/// every token with `iat` at or before that second ([`crate::introspect::check_live`]).
/// A token minted in that same second after reactivation would share it and die with
/// them, so it is dated one second later: `iat` is a whole second, and the token must
/// not be mistaken for one issued before the suspension.
pub fn issued_at(view: &View, app: &App, now: i64) -> i64 {
    let org = view
        .org(app.org_id.as_str())
        .and_then(|o| o.tokens_invalid_before);
    match app.tokens_invalid_before.max(org) {
        Some(t) if now <= t => t + 1,
        _ => now,
    }
}

/// The `tokens_invalid_before` that ends every token of `app` minted until `now`: `now`,
/// or later when tokens minted in this second were dated after an earlier suspension
/// ([`issued_at`]) — a suspension in the same second must end those too.
pub fn ends_tokens_of(view: &View, app: &App, now: i64) -> i64 {
    issued_at(view, app, now)
}

/// The `tokens_invalid_before` that ends every token of the organization `org` minted
/// until `now` (the latest [`ends_tokens_of`] of its apps, at least `now`).
pub fn ends_tokens_of_org(view: &View, org: &str, now: i64) -> i64 {
    view.apps()
        .filter(|e| e.app.org_id.as_str() == org)
        .map(|e| ends_tokens_of(view, &e.app, now))
        .fold(now, i64::max)
}
