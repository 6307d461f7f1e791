//! `userKey` + `secret` at the gateway (the SAP Gigya application keys' way): the
//! credential names the app, so `x-api-key` and the org header are optional but must
//! match; over TLS only; the effective scopes are the app's live scopes.

use super::authorize::authorize;
use super::*;

/// `userKey` + `secret` (SAP Gigya's application keys): the credential names the app;
/// `x-api-key` and the org header are optional but must match when present.
pub(super) fn key_and_secret(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    now: i64,
) -> Result<Allow, Denial> {
    // Well-formed.
    let (Some(user_key), Some(secret)) = (
        req.user_key.filter(|k| !k.is_empty()),
        req.user_secret.filter(|s| !s.is_empty()),
    ) else {
        return Err(deny(
            Code::InvalidRequest,
            format!(
                "userKey and secret go together: send your client id in {USER_KEY_HEADER} and one of its client secrets in {USER_SECRET_HEADER}."
            ),
        ));
    };
    if !req.secrets_allowed {
        return Err(deny(
            Code::InvalidRequest,
            "A client secret may only be sent over TLS: call this API over https (the secret you sent in plain text may have been seen; consider rotating it).",
        ));
    }
    let presented = Secret::parse(SecretKind::ClientSecret, secret).map_err(|e| {
        deny(
            Code::InvalidRequest,
            format!("The secret is not well-formed: {e}."),
        )
    })?;

    // Valid.
    let entry = view.app(user_key).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!(
                "No application has the client id (userKey) '{}'; check it in the console or the admin API.",
                short(user_key)
            ),
        )
    })?;
    let hash_key = view
        .hash_key()
        .ok_or_else(|| deny(Code::InvalidToken, "Client secrets cannot be checked yet."))?;
    let secret_id = match_secret(entry, hash_key, &presented, now).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!(
                "The secret does not match any active secret of the application '{}'. It may have been deleted or expired; create a new one.",
                entry.app.client_id
            ),
        )
    })?;
    active_app(entry)?;
    let org = named_app(req, view, resource, entry, "the userKey names")?;
    authorize(req, view, resource, entry, org, None, Some(secret_id))
}
