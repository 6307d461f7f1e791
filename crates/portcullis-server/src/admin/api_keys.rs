//! `POST /admin/v1/apps/{client_id}/api-keys`: a downloadable API key bundle, redeemed at
//! `POST /v1/token`.
//!
//! An API key bundle **is a client secret of the app**, packaged the way API-key redeem
//! clients expect: `{"appClientId", "appClientSecret", "encodedKey"}` with `encodedKey` = standard base64
//! of `appClientId:appClientSecret`, served as a JSON file to download. `POST /v1/token`
//! redeems the `encodedKey` (`crate::compat::redeem`), and the pair works everywhere else
//! a client id and secret do. So there is no second collection to keep: the bundle's
//! secret is listed, read, expired and deleted under `/admin/v1/apps/{client_id}/secrets`
//! (the response's `Location` names its record), and deleting it ends the API key.

use super::auth::Principal;
use super::extract::OptionalJson;
use super::secrets::{CreateSecret, issue, manageable};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The downloaded API key of the API-key redeem flow, member for member.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyBundle {
    /// The app's client id.
    pub app_client_id: String,
    /// A new client secret of the app. Store it now: it cannot be shown again.
    pub app_client_secret: String,
    /// Base64 of `appClientId:appClientSecret`: what `POST /v1/token` takes as `apiKey`.
    pub encoded_key: String,
}

impl ApiKeyBundle {
    pub fn new(client_id: &str, secret: &str) -> Self {
        Self {
            app_client_id: client_id.to_owned(),
            app_client_secret: secret.to_owned(),
            encoded_key: STANDARD.encode(format!("{client_id}:{secret}")),
        }
    }
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/api-keys", operation_id = "createApiKey", request_body = Option<CreateSecret>, tag = "api-keys",
    responses((status = 201, body = ApiKeyBundle,
        description = "the API key as a JSON file to download (`Content-Disposition: attachment`); its secret is shown once and is listed under `…/secrets` (`Location`)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    OptionalJson(body): OptionalJson<CreateSecret>,
) -> Result<Response, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let (record, secret) = issue(&state, &who, &app, body.expires_in).await?;
    let cid = app.client_id.as_str();
    let mut res = (
        StatusCode::CREATED,
        axum::Json(ApiKeyBundle::new(cid, secret.expose())),
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Client ids and record ids are lowercase hex and `_`: always valid header text.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"api-key-{cid}.json\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/admin/v1/apps/{cid}/secrets/{}", record.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok(res)
}
