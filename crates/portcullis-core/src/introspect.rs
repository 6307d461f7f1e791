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
    #[error("the application was suspended after the token was issued")]
    IssuedBeforeSuspension,
    #[error("the organization was disabled after the token was issued")]
    IssuedBeforeOrgDisabled,
}

pub fn check_live(claims: &AccessClaims, view: &View) -> Result<(), Inactive> {
    if view.is_revoked(&claims.jti) {
        return Err(Inactive::Revoked);
    }
    let entry = view.app(&claims.client_id).ok_or(Inactive::AppDeleted)?;
    if entry.app.status != AppStatus::Active {
        return Err(Inactive::AppSuspended);
    }
    if entry
        .app
        .tokens_invalid_before
        .is_some_and(|t| claims.iat <= t)
    {
        return Err(Inactive::IssuedBeforeSuspension);
    }
    match view.org(&claims.org) {
        Some(o) if o.status == OrgStatus::Active && o.id == entry.app.org_id => {
            if o.tokens_invalid_before.is_some_and(|t| claims.iat <= t) {
                return Err(Inactive::IssuedBeforeOrgDisabled);
            }
        }
        _ => return Err(Inactive::OrgDisabled),
    }
    // The credential is a client secret, or the app key of a JWT the app signed.
    if let Some(cred) = &claims.cred
        && !entry.secrets.iter().any(|s| s.id.as_str() == cred)
        && entry.key(cred).is_none()
    {
        return Err(Inactive::CredentialDeleted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, OrgId, RecordId, TechAccountId};
    use crate::model::{App, Org, SecretRecord};
    use crate::secret::SecretHash;
    use crate::view::AppEntry;

    fn setup() -> (View, AccessClaims) {
        let org = Org {
            id: OrgId::generate(),
            name: "o".into(),
            status: OrgStatus::Active,
            products: Default::default(),
            sandboxes: Default::default(),
            created_at: 0,
            tokens_invalid_before: None,
        };
        let app = App {
            client_id: ClientId::generate(),
            org_id: org.id.clone(),
            name: "a".into(),
            status: AppStatus::Active,
            technical_account_id: TechAccountId::generate(),
            products: Default::default(),
            scopes: Default::default(),
            group_id: None,
            sandboxes: Default::default(),
            token_ttl_seconds: None,
            quota: None,
            dpop_bound_access_tokens: false,
            created_at: 0,
            tokens_invalid_before: None,
        };
        let secret = SecretRecord {
            id: RecordId::generate("sec"),
            client_id: app.client_id.clone(),
            prefix: "pcss_x".into(),
            hash: SecretHash([0; 32]),
            created_at: 0,
            expires_at: None,
        };
        let claims = AccessClaims {
            iss: "i".into(),
            sub: app.technical_account_id.to_string(),
            aud: "i".into(),
            client_id: app.client_id.to_string(),
            org: org.id.to_string(),
            scope: String::new(),
            iat: 100,
            exp: 200,
            jti: "j".into(),
            cred: Some(secret.id.to_string()),
            cnf: None,
        };
        let mut view = View::default();
        view.upsert_org(org);
        view.upsert_app(AppEntry {
            app,
            secrets: vec![secret].into(),
            keys: Box::default(),
        });
        (view, claims)
    }

    #[test]
    fn a_live_token_passes() {
        let (view, claims) = setup();
        assert_eq!(check_live(&claims, &view), Ok(()));
    }

    #[test]
    fn tokens_issued_up_to_a_suspension_stay_inactive_after_reactivation() {
        let (mut view, claims) = setup();
        let mut entry = (**view.app(&claims.client_id).unwrap()).clone();
        entry.app.tokens_invalid_before = Some(100);
        view.upsert_app(entry.clone());
        assert_eq!(
            check_live(&claims, &view),
            Err(Inactive::IssuedBeforeSuspension)
        );
        let later = AccessClaims {
            iat: 101,
            ..claims.clone()
        };
        assert_eq!(check_live(&later, &view), Ok(()));
    }

    #[test]
    fn tokens_issued_up_to_an_org_disable_stay_inactive() {
        let (mut view, claims) = setup();
        let mut org = (**view.org(&claims.org).unwrap()).clone();
        org.tokens_invalid_before = Some(150);
        view.upsert_org(org.clone());
        assert_eq!(
            check_live(&claims, &view),
            Err(Inactive::IssuedBeforeOrgDisabled)
        );
        org.status = OrgStatus::Disabled;
        view.upsert_org(org);
        let later = AccessClaims { iat: 151, ..claims };
        assert_eq!(check_live(&later, &view), Err(Inactive::OrgDisabled));
    }

    #[test]
    fn revoked_deleted_and_credential_gone() {
        let (mut view, claims) = setup();
        let no_cred = AccessClaims {
            cred: Some("sec_0000000000000000".into()),
            cnf: None,
            ..claims.clone()
        };
        assert_eq!(
            check_live(&no_cred, &view),
            Err(Inactive::CredentialDeleted)
        );
        view.revoke(&claims.jti, claims.exp);
        assert_eq!(check_live(&claims, &view), Err(Inactive::Revoked));
        view.remove_app(&claims.client_id);
        let other = AccessClaims {
            jti: "k".into(),
            ..claims
        };
        assert_eq!(check_live(&other, &view), Err(Inactive::AppDeleted));
    }
}
