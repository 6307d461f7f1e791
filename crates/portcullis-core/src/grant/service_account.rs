//! Adobe I/O's service-account JWT exchange (`/ims/exchange/jwt`): an app that
//! authenticated with its client secret presents a JWT signed with the private key of a
//! certificate it uploaded, and gets an access token for its technical account.
//!
//! The JWT's claims, in Adobe I/O's names: `exp` (required, not past, at most 24 h
//! ahead), `iss` = the app's org id, `sub` = its technical account id, `aud` =
//! `<issuer>/c/<client_id>`, and one meta-scope claim `"<issuer>/s/<scope>": true` per
//! scope asked for; each must be granted to the app, and they become the token's
//! `scope`. As in Adobe I/O's flow, the JWT carries no `kid` (it is tried against the app's
//! certificates) and no `jti` (the same JWT may be exchanged until it expires).
//!
//! Only certificate keys count here, as with Adobe I/O; key pairs serve the standard RFC 7523
//! grant at `/oauth/token` and SAP Gigya-style app-signed bearer JWTs.
//!
//! Every refusal says what was wrong and how to fix it, never a bare "invalid".

use super::assertion::Claims;
use super::client_auth::AuthenticatedClient;
use super::client_credentials::{GrantContext, grant};
use crate::app_jwt::{AppJwtError, kid_of, verify_with, verify_without_kid};
use crate::model::AppKeySource;
use crate::oauth_error::OAuthError;
use crate::scope::Scope;
use crate::token::AccessClaims;
use crate::view::{AppKeyEntry, View};
use serde_json::Value;

fn is_certificate(k: &AppKeyEntry) -> bool {
    matches!(k.key.source, AppKeySource::Certificate { .. })
}

/// Decide the token for `client` (authenticated by its secret) and its `jwt`.
pub fn exchange(
    view: &View,
    client: &AuthenticatedClient,
    jwt: &str,
    ctx: GrantContext<'_>,
) -> Result<AccessClaims, OAuthError> {
    let entry = &client.entry;
    let app = &entry.app;
    let bad = |d: String| OAuthError::invalid_token(d);
    let certs: Vec<&str> = entry
        .keys
        .iter()
        .filter(|k| is_certificate(k))
        .map(|k| k.key.id.as_str())
        .collect();
    if certs.is_empty() {
        return Err(bad(format!(
            "The application has no certificate to verify the JWT with. Upload the certificate whose private key signs your JWTs (POST /admin/v1/apps/{}/certificates).",
            app.client_id
        )));
    }
    let verified = match kid_of(jwt) {
        Err(AppJwtError::NoKid) => {
            verify_without_kid::<Claims>(jwt, entry, ctx.now, is_certificate)
        }
        _ => verify_with::<Claims>(jwt, entry, ctx.now),
    };
    let (claims, key) = verified.map_err(|e| {
        bad(match e {
            AppJwtError::NoKid => format!(
                "The JWT's signature does not verify with any certificate of the application ({}). Sign it (RS256 for an RSA certificate, ES256 for P-256) with the private key of a certificate uploaded to this app.",
                certs.join(", ")
            ),
            AppJwtError::Malformed => "The jwt_token is not a signed JWT (three base64url parts with JSON header and claims).".into(),
            e => format!("{}.", capitalise(&e.to_string())),
        })
    })?;
    if !is_certificate(key) {
        return Err(bad(format!(
            "The JWT names the key pair '{}'; this exchange takes certificates only. Upload a certificate, or use the key pair with the RFC 7523 jwt-bearer grant at /oauth/token.",
            key.key.id
        )));
    }
    claims.check_times(ctx.now).map_err(bad)?;
    claims
        .expect("iss", app.org_id.as_str(), "the app's organization id")
        .and_then(|_| {
            claims.expect(
                "sub",
                app.technical_account_id.as_str(),
                "the app's technical account id",
            )
        })
        .map_err(bad)?;
    let aud = format!("{}/c/{}", ctx.issuer, app.client_id);
    claims.expect_aud(&[&aud]).map_err(bad)?;
    let scopes = meta_scopes(&claims, ctx.issuer)?;
    let granted = view.effective_scopes(app);
    if let Some(missing) = scopes.iter().find(|s| !granted.contains(s.as_str())) {
        return Err(OAuthError::invalid_scope(format!(
            "The meta-scope '{missing}' is not granted to this app (its scopes: '{}'); add it to the app's scopes (PATCH /admin/v1/apps/{}) or its permission group, or remove the claim '{}/s/{missing}'.",
            granted.to_text(),
            app.client_id,
            ctx.issuer
        )));
    }
    let text: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    grant(view, client, Some(&text.join(" ")), ctx)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The scopes of the `"<issuer>/s/<scope>": true` claims.
fn meta_scopes(claims: &Claims, issuer: &str) -> Result<Vec<Scope>, OAuthError> {
    let prefix = format!("{issuer}/s/");
    let mut out = Vec::new();
    let mut foreign = None;
    for (name, value) in &claims.0 {
        let Some(scope) = name.strip_prefix(&prefix) else {
            if name.contains("/s/") && name.starts_with("http") {
                foreign = Some(name);
            }
            continue;
        };
        if value != &Value::Bool(true) {
            return Err(OAuthError::invalid_token(format!(
                "The meta-scope claim '{name}' must have the value true."
            )));
        }
        let scope = Scope::parse(scope).map_err(|e| {
            OAuthError::invalid_scope(format!(
                "The meta-scope claim '{name}' names no valid scope: {e}."
            ))
        })?;
        out.push(scope);
    }
    if out.is_empty() {
        let hint = match foreign {
            Some(f) => format!(
                " The claim '{}' is a meta-scope of another server; on this one they are '{prefix}<scope>'.",
                f.chars().take(120).collect::<String>()
            ),
            None => String::new(),
        };
        return Err(OAuthError::invalid_scope(format!(
            "The JWT asks for no scope: add a claim \"{prefix}<scope>\": true for each scope the token needs.{hint}"
        )));
    }
    out.sort();
    out.dedup();
    Ok(out)
}
