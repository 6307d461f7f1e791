//! One-time user links: invitations and password resets, with no mail server.
//!
//! - `POST /admin/v1/invitations` — an org admin invites an email with a role: the user is
//!   created without a usable password, and the answer carries a link
//!   (`<issuer>/console/invite/pcsl_…`) shown this once, for the admin to pass on;
//! - `POST /admin/v1/users/{user_id}/password-reset` — an admin of every org the user is
//!   in (or the bootstrap admin) resets the password: the old one stops working at once,
//!   the user's sessions end, and the answer carries a link (`…/console/reset/pcsl_…`);
//! - `GET /admin/v1/user-links/current` and `POST /admin/v1/user-links/current/accept`,
//!   with the link's token as `Authorization: Bearer pcsl_…`: what the link is for, and
//!   setting the password with it (argon2id). A link works once, for [`LINK_TTL`]; a used
//!   or expired one is `410`, an unknown one `401`.
//!
//! Only the keyed hash of a link's token is stored (as for client secrets), so looking a
//! link up is a lookup of its hash: no comparison of the token itself ever happens.

use super::auth::{Action, Principal};
use super::extract::ApiJson;
use super::orgs::parse_org_id;
use super::password;
use super::users::{self, UserBody, normalise_email};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::{OrgId, RecordId};
use portcullis_core::model::{Role, User, UserLink, UserLinkKind};
use portcullis_core::secret::{Secret, SecretKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a link works: 24 hours.
pub const LINK_TTL: i64 = 24 * 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub email: String,
    /// The organization the person joins; you must be one of its admins.
    pub org_id: String,
    /// `admin`, `developer` or `subscriber`.
    #[schema(value_type = String)]
    pub role: Role,
    #[serde(default)]
    pub name: String,
}

/// A new one-time link: shown in this answer only.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkBody {
    /// `invite` or `reset`.
    pub kind: String,
    pub user_id: String,
    pub email: String,
    /// The organization an invitation is to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The role an invitation gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Give this to the person: they open it and choose their password. It works once,
    /// until `expires_at`; Portcullis keeps only a keyed hash of it.
    pub link: String,
    pub expires_at: i64,
}

/// What a live link is for (`GET /admin/v1/user-links/current`).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkInfo {
    /// `invite` or `reset`.
    pub kind: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub expires_at: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptLink {
    /// At least 10 characters. Stored as an argon2id hash.
    pub password: String,
}

/// The answer to using a link: whose password is now set.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    pub kind: String,
    pub user_id: String,
    pub user: UserBody,
}

/// A fresh link for `user`: its token (to show once) and its record (to store).
fn new_link(
    state: &AppState,
    who: &Principal,
    user: &RecordId,
    kind: UserLinkKind,
    grant: Option<(OrgId, Role)>,
) -> Result<(Secret, UserLink), Problem> {
    let token = Secret::generate(SecretKind::UserLink);
    let now = state.now();
    let (org_id, role) = grant.unzip();
    let link = UserLink {
        hash: token.hash(&state.hash_key()?),
        kind,
        user_id: user.clone(),
        org_id,
        role,
        created_by: maker_of(state, who),
        created_at: now,
        expires_at: now + LINK_TTL,
        used_at: None,
    };
    Ok((token, link))
}

/// The 201 answer that shows a link once.
fn created(state: &AppState, user: &User, link: &UserLink, token: &Secret) -> Response {
    let body = LinkBody {
        kind: link.kind.as_str().to_owned(),
        user_id: user.id.to_string(),
        email: user.email.clone(),
        org_id: link.org_id.as_ref().map(|o| o.to_string()),
        role: link.role.map(|r| r.as_str().to_owned()),
        link: format!(
            "{}/console/{}/{}",
            state.issuer.trim_end_matches('/'),
            link.kind.as_str(),
            token.expose()
        ),
        expires_at: link.expires_at,
    };
    let mut res = (StatusCode::CREATED, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(post, path = "/admin/v1/invitations", operation_id = "createInvitation", request_body = CreateInvitation, tag = "users",
    responses((status = 201, body = LinkBody, description = "The invited user exists (without a password); the link is shown this once"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn invite(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(body): ApiJson<CreateInvitation>,
) -> Result<Response, Problem> {
    let org = parse_org_id(&body.org_id)?;
    users::check_roles(&state, &who, std::iter::once(&org)).await?;
    let user = User {
        id: RecordId::generate("usr"),
        email: normalise_email(&body.email)?,
        name: body.name.trim().chars().take(200).collect(),
        roles: BTreeMap::from([(org.clone(), body.role)]),
        platform_admin: false,
        created_at: state.now(),
    };
    let (token, link) = new_link(
        &state,
        &who,
        &user.id,
        UserLinkKind::Invite,
        Some((org, body.role)),
    )?;
    state
        .store
        .invite_user(&user, &link)
        .await
        .map_err(users::email_conflict)?;
    tracing::info!(user = %user.id, by = %who.describe(), "user invited");
    Ok(created(&state, &user, &link, &token))
}

#[utoipa::path(post, path = "/admin/v1/users/{user_id}/password-reset", operation_id = "createPasswordReset", tag = "users",
    responses((status = 201, body = LinkBody, description = "The old password no longer works and the user's sessions have ended; the link is shown this once"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn reset(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let user = users::load(&state, &who, &id).await?;
    if !who.administers(&user) {
        return Err(Problem::forbidden(
            "You may not reset this user's password: they have roles in organizations you do not administer.",
        ));
    }
    let (token, link) = new_link(&state, &who, &user.id, UserLinkKind::Reset, None)?;
    state.store.issue_password_reset(&link).await?;
    tracing::info!(user = %user.id, by = %who.describe(), "password reset issued");
    Ok(created(&state, &user, &link, &token))
}

const HOW: &str =
    "Send the link's token (the pcsl_… part of the link) as 'Authorization: Bearer <token>'.";

fn gone(slug: &str, code: &'static str, title: &'static str, detail: &str) -> Problem {
    Problem::new(410, slug, code, title, detail.to_owned())
}

/// The live link the caller presents, and its user; why not, as a problem.
async fn live_link(state: &AppState, headers: &HeaderMap) -> Result<(UserLink, User), Problem> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::unauthorized(format!("No link token. {HOW}")))?;
    let token = Secret::parse(SecretKind::UserLink, value.trim())
        .map_err(|e| Problem::unauthorized(format!("This is not a valid link: {e}.")))?;
    let unknown = || {
        Problem::unauthorized(
            "This is not a valid link: it may be incomplete, or an administrator replaced it with a newer one. Ask them for a new link.",
        )
    };
    let link = state
        .store
        .user_link(&token.hash(&state.hash_key()?))
        .await?
        .ok_or_else(unknown)?;
    if link.used_at.is_some() {
        return Err(gone(
            "link-used",
            "PCS-0410-USED",
            "Link already used",
            "This link was already used: each link works once. Sign in with the password you chose, or ask an administrator for a new link.",
        ));
    }
    if link.expires_at <= state.now() {
        return Err(gone(
            "link-expired",
            "PCS-0410-EXPIRED",
            "Link expired",
            "This link has expired (links work for 24 hours). Ask an administrator for a new one.",
        ));
    }
    let user = state.store.user(&link.user_id).await?.ok_or_else(unknown)?;
    still_authorized(state, &link, &user).await?;
    Ok((link, user))
}

/// A link is authorized again when it is used, not only when it was made: the principal
/// who made it must still exist and still administer the user as the user is now. So a
/// link dies when its maker is deleted or demoted, or when its user has since been given
/// a role in an organization the maker does not administer.
async fn still_authorized(state: &AppState, link: &UserLink, user: &User) -> Result<(), Problem> {
    let maker = maker(state, &link.created_by).await?;
    let allowed = maker.is_some_and(|m| {
        m.administers(user)
            && link
                .org_id
                .as_ref()
                .is_none_or(|o| m.may(Action::ManageMembers, o).is_ok())
    });
    if allowed {
        Ok(())
    } else {
        Err(gone(
            "link-revoked",
            "PCS-0410-REVOKED",
            "Link no longer authorized",
            "This link no longer works: whoever made it can no longer manage this account (their rights changed, or the account's did). Ask a current administrator of your organization for a new link.",
        ))
    }
}

/// What a link records as its maker: the principal, and for the bootstrap admin which
/// token it was (`bootstrap-admin:<token id>`, as in the audit trail), so that rotating or
/// revoking that token also ends the links made with it.
fn maker_of(state: &AppState, who: &Principal) -> String {
    match (who, current_admin_token(state)) {
        (Principal::Root, Some(id)) => format!("{}:{id}", who.describe()),
        _ => who.describe(),
    }
}

/// The id of the bootstrap admin token in force, if there is one.
fn current_admin_token(state: &AppState) -> Option<String> {
    state
        .view
        .settings()
        .admin_token_hash
        .as_ref()
        .map(crate::audit::admin_token_id)
}

/// The principal a link's `created_by` names, as it is now; `None` when it no longer
/// exists or no longer holds the rights it had (an app without its live `admin` scope, a
/// bootstrap admin token since rotated or revoked).
async fn maker(state: &AppState, created_by: &str) -> Result<Option<Principal>, Problem> {
    if created_by == Principal::OPERATOR_CLI {
        return Ok(Some(Principal::Root));
    }
    if let Some(token) = created_by
        .strip_prefix(&Principal::Root.describe())
        .and_then(|rest| rest.strip_prefix(':'))
    {
        let current = current_admin_token(state);
        return Ok((current.as_deref() == Some(token)).then_some(Principal::Root));
    }
    if let Some(id) = created_by.strip_prefix("user:") {
        let Ok(id) = RecordId::parse(id) else {
            return Ok(None);
        };
        return Ok(state.store.user(&id).await?.map(Principal::User));
    }
    if let Some(client_id) = created_by.strip_prefix("app:") {
        let view = state.view.get();
        return Ok(view.app(client_id).and_then(|e| {
            let live = e.app.status == portcullis_core::model::AppStatus::Active
                && view.scopes_of(&e.app).contains(super::auth::ADMIN_SCOPE);
            live.then(|| Principal::App {
                client_id: client_id.to_owned(),
                org: e.app.org_id.clone(),
            })
        }));
    }
    Ok(None)
}

#[utoipa::path(get, path = "/admin/v1/user-links/current", operation_id = "readUserLink", tag = "users",
    responses((status = 200, body = LinkInfo), (status = 401, body = Problem, content_type = "application/problem+json", description = "Unknown link"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "The link was used or has expired"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<LinkInfo>, Problem> {
    let (link, user) = live_link(&state, &headers).await?;
    Ok(axum::Json(LinkInfo {
        kind: link.kind.as_str().to_owned(),
        user_id: user.id.to_string(),
        email: user.email,
        name: user.name,
        expires_at: link.expires_at,
    }))
}

#[utoipa::path(post, path = "/admin/v1/user-links/current/accept", operation_id = "acceptUserLink", request_body = AcceptLink, tag = "users",
    responses((status = 200, body = Accepted, description = "The password is set, the link is dead, the user's sessions have ended"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Unknown link"),
        (status = 410, body = Problem, content_type = "application/problem+json", description = "The link was used or has expired"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AcceptLink>,
) -> Result<Response, Problem> {
    let (link, user) = live_link(&state, &headers).await?;
    password::check_policy(&body.password).map_err(Problem::bad_request)?;
    let hash = password::hash(body.password)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let Some(used) = state
        .store
        .use_user_link(&link.hash, state.now(), &hash)
        .await?
    else {
        // Used (or expired) meanwhile, by a request that won the race: say which.
        live_link(&state, &headers).await?;
        return Err(Problem::conflict(
            "The link was used at the same time; reload the page.",
        ));
    };
    state.logins.clear(&user.email);
    tracing::info!(user = %user.id, kind = used.kind.as_str(), "password set with a one-time link");
    let mut res = axum::Json(Accepted {
        kind: used.kind.as_str().to_owned(),
        user_id: user.id.to_string(),
        user: UserBody::from(&user),
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
