//! Who is calling the admin API (API.md §4), and what they may do.
//!
//! - the **bootstrap admin token** (`pcsa_…`, or `PORTCULLIS_ADMIN_TOKEN`): everything;
//! - an **app** presenting one of its access tokens with the `admin` scope: its own org;
//! - a **signed-in user** (`pcsu_…` session token from `POST /admin/v1/sessions`): per org,
//!   by role — `admin` manages the org's apps, users and groups; `developer` manages apps
//!   and their credentials (but may not grant the `admin` scope); `subscriber` nothing.
//!
//! Only the bootstrap admin creates, changes or deletes organizations.

use crate::audit::{AuditSlot, admin_token_id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use portcullis_core::ids::OrgId;
use portcullis_core::introspect::check_live;
use portcullis_core::model::{Role, User};
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::token::verify_access_token;

/// The scope that makes an app an administrator of its org.
pub const ADMIN_SCOPE: &str = "admin";

#[derive(Debug, Clone)]
pub enum Principal {
    Root,
    App { client_id: String, org: OrgId },
    User(User),
}

impl Principal {
    pub fn is_root(&self) -> bool {
        matches!(self, Principal::Root)
    }

    fn role(&self, org: &OrgId) -> Option<Role> {
        match self {
            Principal::Root => Some(Role::Admin),
            Principal::App { org: o, .. } => (o == org).then_some(Role::Admin),
            Principal::User(u) => u.roles.get(org).copied(),
        }
    }

    /// May see the org and its apps, groups and members.
    pub fn can_read(&self, org: &OrgId) -> bool {
        matches!(self.role(org), Some(Role::Admin | Role::Developer))
    }

    /// May create and change apps and their credentials.
    pub fn can_manage_apps(&self, org: &OrgId) -> bool {
        matches!(self.role(org), Some(Role::Admin | Role::Developer))
    }

    /// May manage users' roles and permission groups, and grant the `admin` scope.
    pub fn is_org_admin(&self, org: &OrgId) -> bool {
        self.role(org) == Some(Role::Admin)
    }

    /// The orgs this caller can see; `None` means all of them.
    pub fn visible_orgs(&self) -> Option<Vec<OrgId>> {
        match self {
            Principal::Root => None,
            Principal::App { org, .. } => Some(vec![org.clone()]),
            Principal::User(u) => Some(
                u.roles
                    .iter()
                    .filter(|(_, r)| matches!(r, Role::Admin | Role::Developer))
                    .map(|(o, _)| o.clone())
                    .collect(),
            ),
        }
    }

    /// For the audit trail and logs: who, without any secret.
    pub fn describe(&self) -> String {
        match self {
            Principal::Root => "bootstrap-admin".into(),
            Principal::App { client_id, .. } => format!("app:{client_id}"),
            Principal::User(u) => format!("user:{}", u.id),
        }
    }

    pub fn require(&self, allowed: bool, what: &str) -> Result<(), Problem> {
        if allowed {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "{} may not {what}.",
                match self {
                    Principal::Root => "The bootstrap admin".to_owned(),
                    Principal::App { .. } => "This application".to_owned(),
                    Principal::User(_) => "Your account".to_owned(),
                }
            )))
        }
    }
}

const HOW: &str = "Send 'Authorization: Bearer <token>' with the bootstrap admin token, a session token from POST /admin/v1/sessions, or an access token of an app with the 'admin' scope.";

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = authenticate(parts, state).await?;
        if let Some(slot) = parts.extensions.get::<AuditSlot>() {
            slot.set(principal.1);
        }
        Ok(principal.0)
    }
}

/// The caller, and how the audit trail names it.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Principal, String), Problem> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized(format!("No credentials. {HOW}")))?
        .to_str()
        .map_err(|_| {
            Problem::unauthorized(format!("The Authorization header is not valid text. {HOW}"))
        })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            Problem::unauthorized(format!("The Authorization scheme must be Bearer. {HOW}"))
        })?;
    let now = state.now();
    let view = state.view.get();

    if token.starts_with("pcsu_") {
        let secret = Secret::parse(SecretKind::UserSession, token)
            .map_err(|e| Problem::unauthorized(format!("Bad session token: {e}.")))?;
        let hash_key = &state.hash_key()?;
        let user_id = state
                .store
                .session(&secret.hash(hash_key).to_hex(), now)
                .await?
                .ok_or_else(|| Problem::unauthorized("The session has expired or was ended; sign in again with POST /admin/v1/sessions."))?;
        let user = state.store.user(&user_id).await?.ok_or_else(|| {
            Problem::unauthorized("The account of this session no longer exists.")
        })?;
        let actor = format!("user:{}", user.id);
        return Ok((Principal::User(user), actor));
    }

    if token.matches('.').count() == 2 {
        let claims = verify_access_token(token, |kid| view.key(kid), &state.issuer, now)
            .map_err(|e| Problem::unauthorized(format!("The access token is not valid: {e}.")))?;
        check_live(&claims, &view).map_err(|e| {
            Problem::unauthorized(format!("The access token is no longer valid: {e}."))
        })?;
        if !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(Problem::forbidden(
                "The access token lacks the 'admin' scope; request a token with scope=admin for an app granted that scope.",
            ));
        }
        let org = OrgId::parse(&claims.org).map_err(|e| Problem::unauthorized(e.0))?;
        let actor = format!("app:{}", claims.client_id);
        return Ok((
            Principal::App {
                client_id: claims.client_id,
                org,
            },
            actor,
        ));
    }

    let settings = state.view.settings();
    let hash_key = &state.hash_key()?;
    match settings.admin_token_hash {
        Some(expected) if expected.ct_eq(&hash_key.hash_text(token)) => Ok((
            Principal::Root,
            format!("admin-token:{}", admin_token_id(&expected)),
        )),
        _ => Err(Problem::unauthorized(format!(
            "The token is not valid. {HOW}"
        ))),
    }
}
