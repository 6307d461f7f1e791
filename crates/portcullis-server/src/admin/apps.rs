//! `/admin/v1/apps`: applications — the things that call APIs. An app belongs to one org,
//! holds products, scopes (or a permission group), sandbox access and a token lifetime.
//! Its `client_id` is its public API key.

use super::auth::{Action, Principal, forbid};
use super::extract::{ApiJson, ApiQuery};
use super::groups::parse_scopes;
use super::orgs::{check_display_name, load as load_org, parse_org_id};
use super::{Page, PageQuery, double_option};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::MAX_TTL;
use portcullis_core::grant::client_credentials::ends_tokens_of;
use portcullis_core::ids::{ClientId, RecordId, TechAccountId};
use portcullis_core::model::{App, AppStatus, Org, Quota, SandboxAccess};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppBody {
    /// The public API key; the OAuth `client_id`.
    pub client_id: String,
    pub org_id: String,
    pub name: String,
    #[schema(value_type = String, example = "active")]
    pub status: AppStatus,
    /// The `sub` of this app's tokens.
    pub technical_account_id: String,
    pub products: BTreeSet<String>,
    /// The app's own scopes (empty when it is in a permission group).
    pub scopes: Vec<String>,
    pub group_id: Option<String>,
    /// The scopes the app has now: its group's, or its own.
    pub effective_scopes: Vec<String>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub sandboxes: BTreeMap<String, SandboxAccess>,
    pub token_ttl_seconds: Option<u32>,
    /// The cap on the app's allowed gateway requests, if any.
    #[schema(value_type = Option<QuotaDoc>)]
    pub quota: Option<Quota>,
    /// Every token of the app is bound to the client's key (DPoP): the token endpoint
    /// refuses a token request without a DPoP proof, and the gateway a token sent as Bearer.
    pub dpop_bound_access_tokens: bool,
    pub created_at: i64,
}

/// The OpenAPI shape of a quota: `{"requests": 100, "per": "minute"}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct QuotaDoc {
    /// Allowed requests per period, 1 to 1,000,000.
    requests: u32,
    /// `second` or `minute`.
    #[schema(example = "minute")]
    per: String,
}

impl AppBody {
    fn new(app: &App, state: &AppState) -> Self {
        let effective = state.view.get().effective_scopes(app);
        Self {
            client_id: app.client_id.to_string(),
            org_id: app.org_id.to_string(),
            name: app.name.clone(),
            status: app.status,
            technical_account_id: app.technical_account_id.to_string(),
            products: app.products.to_set(),
            scopes: app.scopes.iter().map(|s| s.to_string()).collect(),
            group_id: app.group_id.as_ref().map(|g| g.to_string()),
            effective_scopes: effective.iter().map(|s| s.to_string()).collect(),
            sandboxes: app.sandboxes.to_map(),
            token_ttl_seconds: app.token_ttl_seconds,
            quota: app.quota,
            dpop_bound_access_tokens: app.dpop_bound_access_tokens,
            created_at: app.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub org_id: String,
    pub name: String,
    #[serde(default)]
    pub products: BTreeSet<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub group_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub sandboxes: BTreeMap<String, SandboxAccess>,
    pub token_ttl_seconds: Option<u32>,
    /// Gateway request quota: `{"requests": 100, "per": "second" | "minute"}`.
    #[schema(value_type = Option<QuotaDoc>)]
    pub quota: Option<Quota>,
    /// Require DPoP-bound tokens (default false).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    #[schema(value_type = Option<String>)]
    pub status: Option<AppStatus>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub status: Option<AppStatus>,
    pub products: Option<BTreeSet<String>>,
    pub scopes: Option<Vec<String>>,
    /// `null` takes the app out of its group.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub group_id: Option<Option<String>>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub sandboxes: Option<BTreeMap<String, SandboxAccess>>,
    /// `null` returns to the endpoint's default lifetime.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub token_ttl_seconds: Option<Option<u32>>,
    /// `null` removes the quota.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<QuotaDoc>)]
    pub quota: Option<Option<Quota>>,
    /// `true`: every token of the app must be DPoP-bound from now on (tokens issued as
    /// bearer tokens before stop working at the gateway).
    pub dpop_bound_access_tokens: Option<bool>,
}

/// The largest quota one app may be given, per period.
const MAX_QUOTA: u32 = 1_000_000;

pub fn parse_client_id(s: &str) -> Result<ClientId, Problem> {
    ClientId::parse(s).map_err(|e| Problem::bad_request(e.0))
}

/// Read an app the caller may see, with its org; 404 otherwise.
pub async fn load(state: &AppState, who: &Principal, client_id: &str) -> Result<App, Problem> {
    let id = parse_client_id(client_id)?;
    match state.store.app(&id).await? {
        Some(a) if who.may(Action::ReadOrg, &a.org_id).is_ok() => Ok(a),
        _ => Err(Problem::not_found(format!(
            "No application {id} that you can see."
        ))),
    }
}

/// Read an app the caller may change — and whose credentials and tokens it may make:
/// [`Action::ManageApps`] in its org, and every one of the app's live scopes one the
/// caller could grant. `what` completes "… may not …" in the refusal.
pub async fn load_managed(
    state: &AppState,
    who: &Principal,
    client_id: &str,
    what: &str,
) -> Result<App, Problem> {
    let app = load(state, who, client_id).await?;
    check_managed(state, who, &app, what)?;
    Ok(app)
}

/// [`load_managed`]'s check, for an app already loaded.
pub fn check_managed(
    state: &AppState,
    who: &Principal,
    app: &App,
    what: &str,
) -> Result<(), Problem> {
    let scopes = state.view.get().effective_scopes(app);
    who.may_manage_app(&app.org_id, &scopes)
        .map_err(forbid(who, what))
}

/// The rules an app's settings must meet within its org.
async fn validate(state: &AppState, who: &Principal, org: &Org, app: &App) -> Result<(), Problem> {
    if let Some(p) = app.products.iter().find(|p| !org.products.contains(*p)) {
        return Err(Problem::bad_request(format!(
            "The organization is not entitled to the product '{p}'. Its products are: {}. Add the entitlement to the organization first (PATCH /admin/v1/orgs/{}).",
            org.products.iter().cloned().collect::<Vec<_>>().join(", "),
            org.id
        )));
    }
    if let Some(s) = app.sandboxes.keys().find(|s| !org.sandboxes.contains(*s)) {
        return Err(Problem::bad_request(format!(
            "The organization has no sandbox '{s}'. Its sandboxes are: {}.",
            org.sandboxes.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(g) = &app.group_id {
        if !app.scopes.is_empty() {
            return Err(Problem::bad_request(
                "An app takes its scopes either from 'scopes' or from a permission group ('group_id'), not both.",
            ));
        }
        match state.store.group(g).await? {
            Some(group) if group.org_id == org.id => {
                who.may_grant(&org.id, &group.scopes)
                    .map_err(forbid(who, "put apps in this permission group"))?;
            }
            _ => {
                return Err(Problem::bad_request(format!(
                    "No permission group {g} in {}.",
                    org.id
                )));
            }
        }
    }
    if let Some(ttl) = app.token_ttl_seconds
        && !(60..=MAX_TTL).contains(&ttl)
    {
        return Err(Problem::bad_request(format!(
            "'token_ttl_seconds' must be between 60 and {MAX_TTL}."
        )));
    }
    if let Some(q) = &app.quota
        && !(1..=MAX_QUOTA).contains(&q.requests)
    {
        return Err(Problem::bad_request(format!(
            "'quota.requests' must be between 1 and {MAX_QUOTA}; to lift the quota, set 'quota' to null."
        )));
    }
    who.may_grant(&org.id, &app.scopes)
        .map_err(forbid(who, "give an application these scopes"))?;
    Ok(())
}

#[utoipa::path(post, path = "/admin/v1/apps", operation_id = "createApp", request_body = CreateApp, tag = "apps",
    responses((status = 201, body = AppBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ApiJson(body): ApiJson<CreateApp>,
) -> Result<Response, Problem> {
    let org = load_org(&state, &who, parse_org_id(&body.org_id)?.as_str()).await?;
    who.may(Action::ManageApps, &org.id)
        .map_err(forbid(&who, "create applications in this organization"))?;
    let app = App {
        client_id: ClientId::generate(),
        org_id: org.id.clone(),
        name: check_display_name(&body.name)?,
        status: body.status.unwrap_or(AppStatus::Active),
        technical_account_id: TechAccountId::generate(),
        products: body.products.into(),
        scopes: parse_scopes(&body.scopes)?,
        group_id: body
            .group_id
            .map(|g| RecordId::parse(&g).map_err(|e| Problem::bad_request(e.0)))
            .transpose()?,
        sandboxes: body.sandboxes.into(),
        token_ttl_seconds: body.token_ttl_seconds,
        quota: body.quota,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        created_at: state.now(),
        tokens_invalid_before: None,
    };
    validate(&state, &who, &org, &app).await?;
    state.store.insert_app(&app).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, org = %org.id, by = %who.describe(), "app created");
    Ok((StatusCode::CREATED, axum::Json(AppBody::new(&app, &state))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/apps", operation_id = "listApps", params(PageQuery), tag = "apps",
    responses((status = 200, body = Page<AppBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<AppBody>>, Problem> {
    let page = q.request()?;
    let apps = match (&q.org, who.is_root()) {
        (Some(org), _) => {
            let org = load_org(&state, &who, org).await?;
            state.store.apps(Some(&org.id), &page).await?
        }
        (None, true) => state.store.apps(None, &page).await?,
        (None, false) => {
            return Err(Problem::bad_request(
                "Name the organization whose apps to list: GET /admin/v1/apps?org=<org id>.",
            ));
        }
    };
    let items = apps.iter().map(|a| AppBody::new(a, &state)).collect();
    Ok(axum::Json(Page::of(items, page.limit, |a: &AppBody| {
        a.client_id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}", operation_id = "readApp", tag = "apps",
    responses((status = 200, body = AppBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<AppBody>, Problem> {
    let app = load(&state, &who, &id).await?;
    Ok(axum::Json(AppBody::new(&app, &state)))
}

#[utoipa::path(patch, path = "/admin/v1/apps/{client_id}", operation_id = "updateApp", request_body = UpdateApp, tag = "apps",
    responses((status = 200, body = AppBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateApp>,
) -> Result<axum::Json<AppBody>, Problem> {
    let mut app = load_managed(&state, &who, &id, "change this application").await?;
    let org =
        state.store.org(&app.org_id).await?.ok_or_else(|| {
            Problem::not_found("The application's organization no longer exists.")
        })?;
    if let Some(n) = body.name {
        app.name = check_display_name(&n)?;
    }
    if let Some(s) = body.status {
        if s == AppStatus::Suspended && app.status != AppStatus::Suspended {
            // Suspension ends every token issued so far, for good (also those dated a
            // second ahead because they were minted in the second of a reactivation).
            app.tokens_invalid_before = Some(ends_tokens_of(&state.view.get(), &app, state.now()));
        }
        app.status = s;
    }
    if let Some(p) = body.products {
        app.products = p.into();
    }
    if let Some(s) = body.scopes {
        app.scopes = parse_scopes(&s)?;
    }
    if let Some(g) = body.group_id {
        app.group_id = g
            .map(|g| RecordId::parse(&g).map_err(|e| Problem::bad_request(e.0)))
            .transpose()?;
    }
    if let Some(s) = body.sandboxes {
        app.sandboxes = s.into();
    }
    if let Some(t) = body.token_ttl_seconds {
        app.token_ttl_seconds = t;
    }
    if let Some(q) = body.quota {
        app.quota = q;
    }
    if let Some(d) = body.dpop_bound_access_tokens {
        app.dpop_bound_access_tokens = d;
    }
    validate(&state, &who, &org, &app).await?;
    state.store.update_app(&app).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, by = %who.describe(), "app updated");
    Ok(axum::Json(AppBody::new(&app, &state)))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}", operation_id = "deleteApp", tag = "apps",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let app = load_managed(&state, &who, &id, "delete this application").await?;
    state.store.delete_app(&app.client_id).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, by = %who.describe(), "app deleted");
    Ok(StatusCode::NO_CONTENT)
}
