//! Client authentication with a client secret (RFC 6749 section 2.3.1): `client_secret_basic`
//! and `client_secret_post` both end here once the transport has extracted the pair.
//! (`private_key_jwt` is `client_assertion.rs`; both end in [`check_active`].)

use crate::ids::RecordId;
use crate::model::{AppStatus, OrgStatus};
use crate::oauth_error::OAuthError;
use crate::secret::{HashKey, Secret, SecretKind};
use crate::view::{AppEntry, View};
use std::sync::Arc;

/// An authenticated client: the app and the id of the credential that proved it.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub entry: Arc<AppEntry>,
    /// A client secret's id (`sec_…`), or an app key's (`key_…`) for a JWT the app signed.
    /// Tokens carry it as `cred`, so deleting the credential ends them.
    pub credential_id: RecordId,
}

impl AuthenticatedClient {
    /// The client secret's id, when a secret proved the client.
    pub fn secret_id(&self) -> Option<&RecordId> {
        self.entry
            .secrets
            .iter()
            .any(|s| s.id == self.credential_id)
            .then_some(&self.credential_id)
    }
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
    check_active(view, entry)?;
    Ok(AuthenticatedClient {
        entry: entry.clone(),
        credential_id: secret_id,
    })
}

/// The app and its organization are active (`invalid_client` otherwise).
pub fn check_active(view: &View, entry: &AppEntry) -> Result<(), OAuthError> {
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
    Ok(())
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
