//! `/admin/v1/orgs/{org_id}/groups`: permission groups, named org-wide sets of scopes.
//! Apps in a group have its scopes live: changing the group changes what their next
//! token (and the gateway's effective scopes) get.

use super::auth::{Action, Principal, forbid};
use super::extract::{ApiJson, ApiQuery};
use super::orgs::{check_display_name, load as load_org};
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::RecordId;
use portcullis_core::model::Group;
use portcullis_core::scope::ScopeSet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupBody {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
}

impl From<&Group> for GroupBody {
    fn from(g: &Group) -> Self {
        Self {
            id: g.id.to_string(),
            org_id: g.org_id.to_string(),
            name: g.name.clone(),
            scopes: g.scopes.iter().map(|s| s.to_string()).collect(),
            created_at: g.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    pub name: Option<String>,
    /// Replaces the whole set.
    pub scopes: Option<Vec<String>>,
}

pub fn parse_scopes(list: &[String]) -> Result<ScopeSet, Problem> {
    if list.len() > 200 {
        return Err(Problem::bad_request("At most 200 scopes."));
    }
    list.iter()
        .map(|s| portcullis_core::scope::Scope::parse(s))
        .collect::<Result<ScopeSet, _>>()
        .map_err(|e| Problem::bad_request(e.to_string()))
}

async fn load(state: &AppState, who: &Principal, org: &str, id: &str) -> Result<Group, Problem> {
    let org = load_org(state, who, org).await?;
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    match state.store.group(&id).await? {
        Some(g) if g.org_id == org.id => Ok(g),
        _ => Err(Problem::not_found(format!(
            "No permission group {id} in {}.",
            org.id
        ))),
    }
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org_id}/groups", operation_id = "createGroup", request_body = CreateGroup, tag = "groups",
    responses((status = 201, body = GroupBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<Response, Problem> {
    let org = load_org(&state, &who, &org).await?;
    who.may(Action::ManageGroups, &org.id).map_err(forbid(
        &who,
        "manage permission groups of this organization",
    ))?;
    let group = Group {
        id: RecordId::generate("grp"),
        org_id: org.id,
        name: check_display_name(&body.name)?,
        scopes: parse_scopes(&body.scopes)?,
        created_at: state.now(),
    };
    state.store.insert_group(&group).await?;
    state.refreshed().await?;
    Ok((StatusCode::CREATED, axum::Json(GroupBody::from(&group))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/groups", operation_id = "listGroups", params(PageQuery), tag = "groups",
    responses((status = 200, body = Page<GroupBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<GroupBody>>, Problem> {
    let org = load_org(&state, &who, &org).await?;
    let page = q.request()?;
    let items = state
        .store
        .groups(&org.id, &page)
        .await?
        .iter()
        .map(GroupBody::from)
        .collect();
    Ok(axum::Json(Page::of(items, page.limit, |g: &GroupBody| {
        g.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/groups/{group_id}", operation_id = "readGroup", tag = "groups",
    responses((status = 200, body = GroupBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
) -> Result<axum::Json<GroupBody>, Problem> {
    Ok(axum::Json(GroupBody::from(
        &load(&state, &who, &org, &id).await?,
    )))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org_id}/groups/{group_id}", operation_id = "updateGroup", request_body = UpdateGroup, tag = "groups",
    responses((status = 200, body = GroupBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> Result<axum::Json<GroupBody>, Problem> {
    let mut group = load(&state, &who, &org, &id).await?;
    who.may(Action::ManageGroups, &group.org_id)
        .map_err(forbid(
            &who,
            "manage permission groups of this organization",
        ))?;
    if let Some(n) = body.name {
        group.name = check_display_name(&n)?;
    }
    if let Some(s) = body.scopes {
        group.scopes = parse_scopes(&s)?;
    }
    state.store.update_group(&group).await?;
    state.refreshed().await?;
    Ok(axum::Json(GroupBody::from(&group)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org_id}/groups/{group_id}", operation_id = "deleteGroup", tag = "groups",
    responses((status = 204), (status = 409, body = Problem, content_type = "application/problem+json", description = "apps are still in the group"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let group = load(&state, &who, &org, &id).await?;
    who.may(Action::ManageGroups, &group.org_id)
        .map_err(forbid(
            &who,
            "manage permission groups of this organization",
        ))?;
    state.store.delete_group(&group.id).await?;
    state.refreshed().await?;
    Ok(StatusCode::NO_CONTENT)
}
