//! `/admin/v1/apps/{client_id}/secrets`: client secrets. An app may have several, for
//! rotation with overlap: create the new one, move clients over, then delete the old one
//! (or PATCH it to expire). The secret is in the creation response only; the store keeps
//! its keyed hash.

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::{ApiJson, ApiQuery, OptionalJson};
use super::{Page, PageQuery, double_option};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::RecordId;
use portcullis_core::model::{App, SecretRecord};
use portcullis_core::secret::{Secret, SecretKind};
use serde::{Deserialize, Serialize};

/// A secret as listed: never the secret itself.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretBody {
    pub id: String,
    pub client_id: String,
    /// The first characters of the secret, to tell secrets apart.
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// Unix seconds of the last successful use (recorded within a few seconds).
    pub last_used_at: Option<i64>,
}

/// The creation response: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedSecret {
    #[serde(flatten)]
    pub record: SecretBody,
    /// The client secret. Store it now: it cannot be shown again.
    pub secret: String,
}

impl SecretBody {
    fn new(s: &SecretRecord, last_used_at: Option<i64>) -> Self {
        Self {
            id: s.id.to_string(),
            client_id: s.client_id.to_string(),
            prefix: s.prefix.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_used_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    /// Optional lifetime in seconds.
    pub expires_in: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSecret {
    /// Unix seconds after which the secret stops working; `null` for never.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub expires_at: Option<Option<i64>>,
}

const MAX_SECRETS: usize = 10;

/// The app, if `who` may manage its credentials (secrets, certificates, key pairs, API
/// keys).
pub(super) async fn manageable(
    state: &AppState,
    who: &Principal,
    client_id: &str,
) -> Result<App, Problem> {
    super::apps::load_managed(
        state,
        who,
        client_id,
        "manage this application's credentials",
    )
    .await
}

async fn find(
    state: &AppState,
    app: &App,
    id: &str,
) -> Result<(SecretRecord, Option<i64>), Problem> {
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    state
        .store
        .secrets(&app.client_id)
        .await?
        .into_iter()
        .find(|(s, _)| s.id == id)
        .ok_or_else(|| {
            Problem::not_found(format!("No secret {id} on application {}.", app.client_id))
        })
}

/// Create, store and return a new client secret of `app` (for `POST …/secrets` and
/// `POST …/api-keys`): its record and the secret, to show once.
pub(super) async fn issue(
    state: &AppState,
    who: &Principal,
    app: &App,
    expires_in: Option<u32>,
) -> Result<(SecretRecord, Secret), Problem> {
    let existing = state.store.secrets(&app.client_id).await?;
    if existing.len() >= MAX_SECRETS {
        return Err(Problem::conflict(format!(
            "The application already has {MAX_SECRETS} secrets (API keys are secrets too); delete one it no longer uses first."
        )));
    }
    let now = state.now();
    let hash_key = state.hash_key()?;
    let secret = Secret::generate(SecretKind::ClientSecret);
    let expires_at = expires_in.map(|s| now + s as i64);
    let record = SecretRecord::of(&secret, &app.client_id, &hash_key, now, expires_at);
    state.store.insert_secret(&record).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, secret_id = %record.id, by = %who.describe(), "client secret created");
    Ok((record, secret))
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/secrets", operation_id = "createSecret", request_body = Option<CreateSecret>, tag = "secrets",
    responses((status = 201, body = CreatedSecret, description = "the secret, shown once"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    OptionalJson(body): OptionalJson<CreateSecret>,
) -> Result<Response, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let (record, secret) = issue(&state, &who, &app, body.expires_in).await?;
    let mut res = (
        StatusCode::CREATED,
        axum::Json(CreatedSecret {
            record: SecretBody::new(&record, None),
            secret: secret.expose().to_owned(),
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/secrets", operation_id = "listSecrets", params(PageQuery), tag = "secrets",
    responses((status = 200, body = Page<SecretBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<SecretBody>>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let page = q.request()?;
    // Last-use times are batched in memory; write them out so the listing is current.
    state.flush_secret_usage().await;
    // An app has at most MAX_SECRETS secrets, in id order: paginate in memory.
    let items = state
        .store
        .secrets(&app.client_id)
        .await?
        .iter()
        .filter(|(s, _)| page.after.as_deref().is_none_or(|a| s.id.as_str() > a))
        .take(page.limit as usize)
        .map(|(s, used)| SecretBody::new(s, *used))
        .collect();
    Ok(axum::Json(Page::of(items, page.limit, |s: &SecretBody| {
        s.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/secrets/{secret_id}", operation_id = "readSecret", tag = "secrets",
    responses((status = 200, body = SecretBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<axum::Json<SecretBody>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let (s, used) = find(&state, &app, &id).await?;
    Ok(axum::Json(SecretBody::new(&s, used)))
}

#[utoipa::path(patch, path = "/admin/v1/apps/{client_id}/secrets/{secret_id}", operation_id = "updateSecret", request_body = UpdateSecret, tag = "secrets",
    responses((status = 200, body = SecretBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateSecret>,
) -> Result<axum::Json<SecretBody>, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let (mut s, used) = find(&state, &app, &id).await?;
    if let Some(e) = body.expires_at {
        s.expires_at = e;
    }
    state.store.update_secret(&s).await?;
    state.refreshed().await?;
    Ok(axum::Json(SecretBody::new(&s, used)))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}/secrets/{secret_id}", operation_id = "deleteSecret", tag = "secrets",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let (s, _) = find(&state, &app, &id).await?;
    state.store.delete_secret(&app.client_id, &s.id).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, secret_id = %s.id, by = %who.describe(), "client secret deleted; its tokens are inactive");
    Ok(StatusCode::NO_CONTENT)
}
