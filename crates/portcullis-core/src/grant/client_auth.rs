//! Client authentication with a client secret (RFC 6749 §2.3.1): `client_secret_basic`
//! and `client_secret_post` both end here once the transport has extracted the pair.

use crate::ids::RecordId;
use crate::model::{AppStatus, OrgStatus};
use crate::oauth_error::OAuthError;
use crate::secret::{HashKey, Secret, SecretKind};
use crate::view::{AppEntry, View};
use std::sync::Arc;

/// An authenticated client: the app and the id of the secret that proved it.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub entry: Arc<AppEntry>,
    pub secret_id: RecordId,
}

/// Check `client_id` + `secret` against the view.
///
/// The secret's format and checksum are checked before any lookup; then [`match_secret`].
pub fn authenticate(
    view: &View,
    client_id: &str,
    secret: &str,
    now: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let presented = Secret::parse(SecretKind::ClientSecret, secret)
        .map_err(|e| OAuthError::invalid_client(format!("Client authentication failed: {e}.")))?;
    let entry = view.app(client_id).ok_or_else(|| {
        OAuthError::invalid_client(
            "Client authentication failed: no application has this client_id. Check the client_id (the app's API key) in the console or admin API.",
        )
    })?;
    let hash_key = view
        .hash_key()
        .ok_or_else(|| OAuthError::invalid_client("Client authentication is not available yet."))?;
    let secret_id = match_secret(entry, hash_key, &presented, now).ok_or_else(|| {
        OAuthError::invalid_client(
            "Client authentication failed: the client secret does not match any active secret of this application. It may have been deleted or expired; create a new one.",
        )
    })?;
    if entry.app.status != AppStatus::Active {
        return Err(OAuthError::invalid_client(
            "The application is suspended; an administrator of its organization can reactivate it.",
        ));
    }
    match view.org(entry.app.org_id.as_str()) {
        Some(org) if org.status == OrgStatus::Active => {}
        Some(_) => {
            return Err(OAuthError::invalid_client(
                "The application's organization is disabled.",
            ));
        }
        None => {
            return Err(OAuthError::invalid_client(
                "The application's organization no longer exists.",
            ));
        }
    }
    Ok(AuthenticatedClient {
        entry: entry.clone(),
        secret_id,
    })
}

/// The id of the app's live secret that `presented` is, if any.
///
/// The keyed hash is compared in constant time against every secret of the app, without
/// stopping early, so timing does not say which one matched (an app has a few).
pub fn match_secret(
    entry: &AppEntry,
    hash_key: &HashKey,
    presented: &Secret,
    now: i64,
) -> Option<RecordId> {
    let hash = presented.hash(hash_key);
    let mut matched: Option<&RecordId> = None;
    for s in &entry.secrets {
        let live = s.expires_at.is_none_or(|e| now < e);
        if s.hash.ct_eq(&hash) && live {
            matched = Some(&s.id);
        }
    }
    matched.cloned()
}
