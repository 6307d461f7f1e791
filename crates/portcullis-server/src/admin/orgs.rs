//! `/admin/v1/orgs`: tenants, their status, product entitlements and sandboxes.
//! The bootstrap admin and platform administrators create, change or delete orgs (a
//! platform administrator becomes an administrator of an org they create) and see every
//! org; members see theirs.

use super::auth::{Action, Principal, forbid};
use super::extract::{ApiJson, ApiQuery};
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::client_credentials::ends_tokens_of_org;
use portcullis_core::ids::{OrgId, check_name};
use portcullis_core::model::{Org, OrgStatus, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrgBody {
    /// Like `4F2A9C1B7D3E5A6B8C0D1E2F@Org`.
    pub id: String,
    pub name: String,
    /// `active` or `disabled`; a disabled org's apps are refused everywhere.
    #[schema(value_type = String, example = "active")]
    pub status: OrgStatus,
    pub products: BTreeSet<String>,
    pub sandboxes: BTreeSet<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&Org> for OrgBody {
    fn from(o: &Org) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.clone(),
            status: o.status,
            products: o.products.clone(),
            sandboxes: o.sandboxes.clone(),
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub name: String,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub status: Option<OrgStatus>,
    #[serde(default)]
    pub products: BTreeSet<String>,
    /// Default `["prod"]`.
    #[serde(default)]
    pub sandboxes: Option<BTreeSet<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub status: Option<OrgStatus>,
    /// Replaces the whole set.
    pub products: Option<BTreeSet<String>>,
    /// Replaces the whole set.
    pub sandboxes: Option<BTreeSet<String>>,
}

pub fn parse_org_id(s: &str) -> Result<OrgId, Problem> {
    OrgId::parse(s).map_err(|e| Problem::bad_request(e.0))
}

pub(super) fn check_display_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "'name' must be 1-200 characters without control characters.",
        ));
    }
    Ok(name.to_owned())
}

fn check_names(kind: &str, names: &BTreeSet<String>) -> Result<(), Problem> {
    if names.len() > 100 {
        return Err(Problem::bad_request(format!("At most 100 {kind}s.")));
    }
    names
        .iter()
        .try_for_each(|n| check_name(kind, n))
        .map_err(|e| Problem::bad_request(e.0))
}

/// Read an org whose contents the caller may see (a member's), or 404 (also when it
/// exists but is not theirs, so org ids cannot be probed).
pub async fn load(state: &AppState, who: &Principal, id: &str) -> Result<Org, Problem> {
    let id = parse_org_id(id)?;
    match state.store.org(&id).await? {
        Some(o) if who.may(Action::ReadOrg, &o.id).is_ok() => Ok(o),
        _ => Err(Problem::not_found(format!(
            "No organization {id} that you can see."
        ))),
    }
}

/// Read the org record itself: for its members, and for platform administrators, who
/// may change any org (but see its contents only where they hold a role).
async fn load_record(state: &AppState, who: &Principal, id: &str) -> Result<Org, Problem> {
    let id = parse_org_id(id)?;
    match state.store.org(&id).await? {
        Some(o) if who.sees_org(&o.id) => Ok(o),
        _ => Err(Problem::not_found(format!(
            "No organization {id} that you can see."
        ))),
    }
}

#[utoipa::path(post, path = "/admin/v1/orgs", operation_id = "createOrg", request_body = CreateOrg, tag = "orgs",
    responses((status = 201, body = OrgBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(body): ApiJson<CreateOrg>,
) -> Result<Response, Problem> {
    who.may_platform(Action::ManageOrgs)
        .map_err(forbid(&who, "create organizations"))?;
    let sandboxes = body
        .sandboxes
        .unwrap_or_else(|| BTreeSet::from(["prod".to_owned()]));
    check_names("product", &body.products)?;
    check_names("sandbox", &sandboxes)?;
    let org = Org {
        id: OrgId::generate(),
        name: check_display_name(&body.name)?,
        status: body.status.unwrap_or(OrgStatus::Active),
        products: body.products,
        sandboxes,
        created_at: state.now(),
        tokens_invalid_before: None,
    };
    state.store.insert_org(&org).await?;
    // A platform administrator who makes an organization administers it, so that they can
    // invite its first members.
    if let Principal::User(u) = &who
        && let Some(mut user) = state.store.user(&u.id).await?
    {
        user.roles.insert(org.id.clone(), Role::Admin);
        state.store.update_user(&user, None).await?;
    }
    state.refreshed().await?;
    tracing::info!(org = %org.id, by = %who.describe(), "org created");
    Ok((StatusCode::CREATED, axum::Json(OrgBody::from(&org))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/orgs", operation_id = "listOrgs", params(PageQuery), tag = "orgs",
    responses((status = 200, body = Page<OrgBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<OrgBody>>, Problem> {
    let page = q.request()?;
    let all = who.may_platform(Action::ManageOrgs).is_ok();
    let orgs = match who.orgs_where(Action::ReadOrg) {
        _ if all => state.store.orgs(&page).await?,
        None => state.store.orgs(&page).await?,
        Some(mut ids) => {
            ids.sort();
            let mut out = Vec::new();
            for id in ids
                .into_iter()
                .filter(|i| page.after.as_deref().is_none_or(|a| i.as_str() > a))
                .take(page.limit as usize)
            {
                if let Some(o) = state.store.org(&id).await? {
                    out.push(o);
                }
            }
            out
        }
    };
    let items = orgs.iter().map(OrgBody::from).collect();
    Ok(axum::Json(Page::of(items, page.limit, |o: &OrgBody| {
        o.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}", operation_id = "readOrg", tag = "orgs",
    responses((status = 200, body = OrgBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<OrgBody>, Problem> {
    Ok(axum::Json(OrgBody::from(
        &load_record(&state, &who, &id).await?,
    )))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org_id}", operation_id = "updateOrg", request_body = UpdateOrg, tag = "orgs",
    responses((status = 200, body = OrgBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> Result<axum::Json<OrgBody>, Problem> {
    let mut org = load_record(&state, &who, &id).await?;
    who.may_platform(Action::ManageOrgs)
        .map_err(forbid(&who, "change organizations"))?;
    if let Some(n) = body.name {
        org.name = check_display_name(&n)?;
    }
    if let Some(s) = body.status {
        if s == OrgStatus::Disabled && org.status != OrgStatus::Disabled {
            // Disabling ends every token of the org's apps issued so far, for good (also
            // those dated a second ahead because they were minted in the second of a
            // reactivation).
            org.tokens_invalid_before = Some(ends_tokens_of_org(
                &state.view.get(),
                org.id.as_str(),
                state.now(),
            ));
        }
        org.status = s;
    }
    if let Some(p) = body.products {
        check_names("product", &p)?;
        org.products = p;
    }
    if let Some(s) = body.sandboxes {
        check_names("sandbox", &s)?;
        org.sandboxes = s;
    }
    state.store.update_org(&org).await?;
    state.refreshed().await?;
    tracing::info!(org = %org.id, by = %who.describe(), "org updated");
    Ok(axum::Json(OrgBody::from(&org)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org_id}", operation_id = "deleteOrg", tag = "orgs",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let org = load_record(&state, &who, &id).await?;
    who.may_platform(Action::ManageOrgs)
        .map_err(forbid(&who, "delete organizations"))?;
    state.store.delete_org(&org.id).await?;
    state.refreshed().await?;
    tracing::info!(org = %org.id, by = %who.describe(), "org deleted with its apps and groups");
    Ok(StatusCode::NO_CONTENT)
}
