//! Is a verified token still good *now*? The live checks shared by introspection
//! (RFC 7662), revocation and the admin API's app callers: the token is not revoked, its
//! app exists and is active, its org is active, and the credential it was obtained with
//! still exists.

use crate::model::{AppStatus, OrgStatus};
use crate::token::AccessClaims;
use crate::view::View;

/// Why a token with a valid signature is not active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Inactive {
    #[error("the token was revoked")]
    Revoked,
    #[error("the application the token was issued to no longer exists")]
    AppDeleted,
    #[error("the application the token was issued to is suspended")]
    AppSuspended,
    #[error("the organization of the token is disabled")]
    OrgDisabled,
    #[error("the credential the token was obtained with was deleted")]
    CredentialDeleted,
}

pub fn check_live(claims: &AccessClaims, view: &View) -> Result<(), Inactive> {
    if view.is_revoked(&claims.jti) {
        return Err(Inactive::Revoked);
    }
    let entry = view.app(&claims.client_id).ok_or(Inactive::AppDeleted)?;
    if entry.app.status != AppStatus::Active {
        return Err(Inactive::AppSuspended);
    }
    match view.org(&claims.org) {
        Some(o) if o.status == OrgStatus::Active && o.id == entry.app.org_id => {}
        _ => return Err(Inactive::OrgDisabled),
    }
    if let Some(cred) = &claims.cred
        && !entry.secrets.iter().any(|s| s.id.as_str() == cred)
    {
        return Err(Inactive::CredentialDeleted);
    }
    Ok(())
}
