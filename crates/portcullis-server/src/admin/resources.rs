//! `/admin/v1/orgs/{org_id}/resources`: protected resources (the Edge Network's
//! datastreams) — what `/gateway/v1/check` decides against. Org admins manage them;
//! members read them.

use super::auth::{Action, Principal, forbid};
use super::extract::{ApiJson, ApiQuery};
use super::groups::parse_scopes;
use super::orgs::{check_display_name, load as load_org};
use super::{Page, PageQuery, double_option};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::RecordId;
use portcullis_core::model::{Org, Resource};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceBody {
    /// `res_…`: the `?resource=` of a gateway check.
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub sandbox: String,
    pub product: Option<String>,
    /// Scopes every caller needs.
    pub scopes: Vec<String>,
    /// Requests without any credentials pass, marked unauthenticated.
    pub allow_unauthenticated: bool,
    pub cors_origins: Vec<String>,
    pub created_at: i64,
}

impl From<&Resource> for ResourceBody {
    fn from(r: &Resource) -> Self {
        Self {
            id: r.id.to_string(),
            org_id: r.org_id.to_string(),
            name: r.name.clone(),
            sandbox: r.sandbox.clone(),
            product: r.product.clone(),
            scopes: r.scopes.iter().map(|s| s.to_string()).collect(),
            allow_unauthenticated: r.allow_unauthenticated,
            cors_origins: r.cors_origins.clone(),
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResource {
    pub name: String,
    /// Default `prod` when the org has it.
    pub sandbox: Option<String>,
    pub product: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Default false: only authenticated calls pass.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateResource {
    pub name: Option<String>,
    pub sandbox: Option<String>,
    /// `null` removes the product requirement.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub product: Option<Option<String>>,
    pub scopes: Option<Vec<String>>,
    pub allow_unauthenticated: Option<bool>,
    pub cors_origins: Option<Vec<String>>,
}

fn check_origin(o: &str) -> Result<(), Problem> {
    if o == "*" {
        return Ok(());
    }
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    let ok = rest.is_some_and(|authority| {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && port.is_none_or(|p| {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
            })
    });
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "'{}' is not a CORS origin: use http(s)://host[:port] with no path, query or trailing slash, or '*'.",
            o.chars().take(100).collect::<String>()
        )))
    }
}

/// The rules a resource must meet within its org.
fn validate(org: &Org, r: &Resource) -> Result<(), Problem> {
    if !org.sandboxes.contains(&r.sandbox) {
        return Err(Problem::bad_request(format!(
            "The organization has no sandbox '{}'. Its sandboxes are: {}.",
            r.sandbox,
            org.sandboxes.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(p) = &r.product
        && !org.products.contains(p)
    {
        return Err(Problem::bad_request(format!(
            "The organization is not entitled to the product '{p}'. Its products are: {}.",
            org.products.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if r.cors_origins.len() > 50 {
        return Err(Problem::bad_request(format!(
            "At most 50 CORS origins, not {}.",
            r.cors_origins.len()
        )));
    }
    r.cors_origins.iter().try_for_each(|o| check_origin(o))
}

async fn load(
    state: &AppState,
    who: &Principal,
    org: &str,
    id: &str,
) -> Result<(Org, Resource), Problem> {
    let org = load_org(state, who, org).await?;
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    match state.store.resource(&id).await? {
        Some(r) if r.org_id == org.id => Ok((org, r)),
        _ => Err(Problem::not_found(format!(
            "No resource {id} in {}.",
            org.id
        ))),
    }
}

#[utoipa::path(post, path = "/admin/v1/orgs/{org_id}/resources", operation_id = "createResource", request_body = CreateResource, tag = "resources",
    responses((status = 201, body = ResourceBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(org): Path<String>,
    ApiJson(body): ApiJson<CreateResource>,
) -> Result<Response, Problem> {
    let org = load_org(&state, &who, &org).await?;
    who.may(Action::ManageResources, &org.id)
        .map_err(forbid(&who, "manage resources of this organization"))?;
    let sandbox = match body.sandbox {
        Some(s) => s,
        None if org.sandboxes.contains("prod") => "prod".to_owned(),
        None => {
            return Err(Problem::bad_request(
                "Name the resource's 'sandbox' (the organization has no 'prod').",
            ));
        }
    };
    let resource = Resource {
        id: RecordId::generate("res"),
        org_id: org.id.clone(),
        name: check_display_name(&body.name)?,
        sandbox,
        product: body.product,
        scopes: parse_scopes(&body.scopes)?,
        allow_unauthenticated: body.allow_unauthenticated,
        cors_origins: body.cors_origins,
        created_at: state.now(),
    };
    validate(&org, &resource)?;
    state.store.insert_resource(&resource).await?;
    state.refreshed().await?;
    tracing::info!(resource = %resource.id, org = %org.id, by = %who.describe(), "resource created");
    Ok((
        StatusCode::CREATED,
        axum::Json(ResourceBody::from(&resource)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/resources", operation_id = "listResources", params(PageQuery), tag = "resources",
    responses((status = 200, body = Page<ResourceBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<ResourceBody>>, Problem> {
    let org = load_org(&state, &who, &org).await?;
    let page = q.request()?;
    let items = state
        .store
        .resources(&org.id, &page)
        .await?
        .iter()
        .map(ResourceBody::from)
        .collect();
    Ok(axum::Json(Page::of(
        items,
        page.limit,
        |r: &ResourceBody| r.id.clone(),
    )))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/resources/{resource_id}", operation_id = "readResource", tag = "resources",
    responses((status = 200, body = ResourceBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
) -> Result<axum::Json<ResourceBody>, Problem> {
    let (_, r) = load(&state, &who, &org, &id).await?;
    Ok(axum::Json(ResourceBody::from(&r)))
}

#[utoipa::path(patch, path = "/admin/v1/orgs/{org_id}/resources/{resource_id}", operation_id = "updateResource", request_body = UpdateResource, tag = "resources",
    responses((status = 200, body = ResourceBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateResource>,
) -> Result<axum::Json<ResourceBody>, Problem> {
    let (org, mut r) = load(&state, &who, &org, &id).await?;
    who.may(Action::ManageResources, &org.id)
        .map_err(forbid(&who, "manage resources of this organization"))?;
    if let Some(n) = body.name {
        r.name = check_display_name(&n)?;
    }
    if let Some(s) = body.sandbox {
        r.sandbox = s;
    }
    if let Some(p) = body.product {
        r.product = p;
    }
    if let Some(s) = body.scopes {
        r.scopes = parse_scopes(&s)?;
    }
    if let Some(a) = body.allow_unauthenticated {
        r.allow_unauthenticated = a;
    }
    if let Some(c) = body.cors_origins {
        r.cors_origins = c;
    }
    validate(&org, &r)?;
    state.store.update_resource(&r).await?;
    state.refreshed().await?;
    Ok(axum::Json(ResourceBody::from(&r)))
}

#[utoipa::path(delete, path = "/admin/v1/orgs/{org_id}/resources/{resource_id}", operation_id = "deleteResource", tag = "resources",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (org, r) = load(&state, &who, &org, &id).await?;
    who.may(Action::ManageResources, &org.id)
        .map_err(forbid(&who, "manage resources of this organization"))?;
    state.store.delete_resource(&r.id).await?;
    state.refreshed().await?;
    Ok(StatusCode::NO_CONTENT)
}
