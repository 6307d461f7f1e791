//! `/admin/v1/users`: people, with an argon2id password and a role per org.
//!
//! The bootstrap admin manages everyone. An org admin sees the users who have a role in
//! an org they administer and may grant or remove roles in those orgs only. Every user
//! may read and change their own name and password. Only the bootstrap admin or a
//! platform administrator makes someone a platform administrator (`platform_admin`).

use super::auth::{Action, Principal, forbid};
use super::extract::{ApiJson, ApiQuery};
use super::orgs::parse_org_id;
use super::password;
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::{OrgId, RecordId};
use portcullis_core::model::{Role, User};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Org id → `admin` | `developer` | `subscriber`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub roles: BTreeMap<OrgId, Role>,
    /// A platform administrator may create organizations and change any organization.
    pub platform_admin: bool,
    pub created_at: i64,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles: u.roles.clone(),
            platform_admin: u.platform_admin,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    /// At least 10 characters. Stored as an argon2id hash.
    pub password: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub roles: BTreeMap<String, Role>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<String>,
    /// Org id → role, or `null` to remove the role in that org. Orgs not named keep
    /// their role.
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    pub roles: Option<BTreeMap<String, Option<Role>>>,
    /// Make the user a platform administrator (`true`) or stop them being one (`false`).
    /// Only the bootstrap admin or a platform administrator may.
    pub platform_admin: Option<bool>,
}

pub fn normalise_email(e: &str) -> Result<String, Problem> {
    let e = e.trim();
    let ok = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && e.matches('@').count() == 1
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e.to_lowercase())
    } else {
        Err(Problem::bad_request(format!(
            "'{}' is not an email address.",
            e.chars().take(64).collect::<String>()
        )))
    }
}

/// A unique violation on users can only be the email.
pub(super) fn email_conflict(e: portcullis_store::StoreError) -> Problem {
    match e {
        portcullis_store::StoreError::Conflict(_) => {
            Problem::conflict("A user with this email already exists.")
        }
        e => e.into(),
    }
}

fn is_self(who: &Principal, user: &User) -> bool {
    matches!(who, Principal::User(u) if u.id == user.id)
}

pub(super) async fn load(state: &AppState, who: &Principal, id: &str) -> Result<User, Problem> {
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    match state.store.user(&id).await? {
        Some(u) if who.sees_user(&u) => Ok(u),
        _ => Err(Problem::not_found(format!(
            "No user {id} that you can see."
        ))),
    }
}

pub(super) async fn check_roles(
    state: &AppState,
    who: &Principal,
    orgs: impl Iterator<Item = &OrgId>,
) -> Result<(), Problem> {
    for org in orgs {
        who.may(Action::ManageMembers, org)
            .map_err(forbid(who, &format!("grant or remove roles in {org}")))?;
        if state.store.org(org).await?.is_none() {
            return Err(Problem::bad_request(format!("No organization {org}.")));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/admin/v1/users", operation_id = "createUser", request_body = CreateUser, tag = "users",
    responses((status = 201, body = UserBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response, Problem> {
    let roles = body
        .roles
        .into_iter()
        .map(|(o, r)| Ok((parse_org_id(&o)?, r)))
        .collect::<Result<BTreeMap<_, _>, Problem>>()?;
    if roles.is_empty() && !who.is_root() {
        return Err(Problem::forbidden(
            "Only the bootstrap admin may create users without a role; give the user a role in an organization you administer.",
        ));
    }
    check_roles(&state, &who, roles.keys()).await?;
    password::check_policy(&body.password).map_err(Problem::bad_request)?;
    let user = User {
        id: RecordId::generate("usr"),
        email: normalise_email(&body.email)?,
        name: body.name.trim().chars().take(200).collect(),
        roles,
        platform_admin: false,
        created_at: state.now(),
    };
    let hash = password::hash(body.password)
        .await
        .map_err(|e| Problem::internal(&e))?;
    state
        .store
        .insert_user(&user, &hash)
        .await
        .map_err(email_conflict)?;
    tracing::info!(user = %user.id, by = %who.describe(), "user created");
    Ok((StatusCode::CREATED, axum::Json(UserBody::from(&user))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/users", operation_id = "listUsers", params(PageQuery), tag = "users",
    responses((status = 200, body = Page<UserBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<UserBody>>, Problem> {
    let mut page = q.request()?;
    let limit = page.limit;
    let mut items = Vec::new();
    // Non-root callers see a filtered listing; read on until the page is full.
    loop {
        let batch = state.store.users(&page).await?;
        let done = (batch.len() as u32) < page.limit;
        page.after = batch.last().map(|u| u.id.to_string());
        items.extend(
            batch
                .iter()
                .filter(|u| who.sees_user(u))
                .map(UserBody::from),
        );
        if done || items.len() as u32 >= limit {
            break;
        }
    }
    items.truncate(limit as usize);
    Ok(axum::Json(Page::of(items, limit, |u: &UserBody| {
        u.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/users/{user_id}", operation_id = "readUser", tag = "users",
    responses((status = 200, body = UserBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<UserBody>, Problem> {
    Ok(axum::Json(UserBody::from(&load(&state, &who, &id).await?)))
}

#[utoipa::path(patch, path = "/admin/v1/users/{user_id}", operation_id = "updateUser", request_body = UpdateUser, tag = "users",
    responses((status = 200, body = UserBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<axum::Json<UserBody>, Problem> {
    let mut user = load(&state, &who, &id).await?;
    let own = is_self(&who, &user);
    if (body.email.is_some() || body.name.is_some() || body.password.is_some())
        && !(who.is_root() || own)
    {
        return Err(Problem::forbidden(
            "Only the bootstrap admin may change another user's email, name or password; an administrator resets a password with POST /admin/v1/users/{user_id}/password-reset.",
        ));
    }
    if let Some(p) = body.platform_admin {
        who.may_platform(Action::ManagePlatformAdmins)
            .map_err(forbid(
                &who,
                "make people platform administrators or stop them being ones",
            ))?;
        user.platform_admin = p;
    }
    if let Some(e) = body.email {
        user.email = normalise_email(&e)?;
    }
    if let Some(n) = body.name {
        user.name = n.trim().chars().take(200).collect();
    }
    if let Some(roles) = body.roles {
        let parsed = roles
            .into_iter()
            .map(|(o, r)| Ok((parse_org_id(&o)?, r)))
            .collect::<Result<Vec<_>, Problem>>()?;
        check_roles(&state, &who, parsed.iter().map(|(o, _)| o)).await?;
        for (org, role) in parsed {
            match role {
                Some(r) => user.roles.insert(org, r),
                None => user.roles.remove(&org),
            };
        }
    }
    let hash = match body.password {
        Some(p) => {
            password::check_policy(&p).map_err(Problem::bad_request)?;
            Some(password::hash(p).await.map_err(|e| Problem::internal(&e))?)
        }
        None => None,
    };
    state
        .store
        .update_user(&user, hash.as_deref())
        .await
        .map_err(email_conflict)?;
    Ok(axum::Json(UserBody::from(&user)))
}

#[utoipa::path(delete, path = "/admin/v1/users/{user_id}", operation_id = "deleteUser", tag = "users",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let user = load(&state, &who, &id).await?;
    if !who.administers(&user) {
        return Err(Problem::forbidden(
            "You may not delete this user: they have roles in organizations you do not administer.",
        ));
    }
    state.store.delete_user(&user.id).await?;
    tracing::info!(user = %user.id, by = %who.describe(), "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
