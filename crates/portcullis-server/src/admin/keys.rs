//! `/admin/v1/keys`: Portcullis's signing keys (public halves only) and their rotation.
//! Bootstrap admin only. The same operation as `portcullis keys rotate`.

use super::auth::{Action, Principal, forbid};
use super::extract::OptionalJson;
use crate::keys::{KeyOpError, rotate as rotate_keys};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use portcullis_core::model::KeyState;
use portcullis_core::token::Alg;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyBody {
    pub kid: String,
    /// `ES256`, `EdDSA` or `RS256`.
    pub alg: String,
    /// `next`, `current` or `retired`.
    #[schema(value_type = String)]
    pub state: KeyState,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    /// A retired key leaves the JWKS after this time.
    pub retired_until: Option<i64>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Algorithm of the new keys; default: the next key's.
    pub alg: Option<String>,
    /// Rotate even if the next key has been published for less than the JWKS max-age.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotateBody {
    pub current: String,
    pub next: String,
    pub retired: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/keys", operation_id = "listSigningKeys", tag = "keys",
    responses((status = 200, body = super::Page<KeyBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
) -> Result<axum::Json<super::Page<KeyBody>>, Problem> {
    who.may_platform(Action::ManageSigningKeys)
        .map_err(forbid(&who, "see signing keys"))?;
    let items = state
        .store
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| KeyBody {
            kid: k.kid,
            alg: k.alg.as_str().to_owned(),
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_until: k.retired_until,
        })
        .collect();
    Ok(axum::Json(super::Page { items, next: None }))
}

#[utoipa::path(post, path = "/admin/v1/keys/rotate", operation_id = "rotateSigningKeys", request_body = Option<RotateRequest>, tag = "keys",
    responses((status = 200, body = RotateBody), (status = 409, body = Problem, content_type = "application/problem+json", description = "the next key is too new; retry later or force"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn rotate(
    State(state): State<AppState>,
    who: Principal,
    OptionalJson(body): OptionalJson<RotateRequest>,
) -> Result<axum::Json<RotateBody>, Problem> {
    who.may_platform(Action::ManageSigningKeys)
        .map_err(forbid(&who, "rotate signing keys"))?;
    let alg = body
        .alg
        .as_deref()
        .map(|a| {
            Alg::parse(a)
                .ok_or_else(|| Problem::bad_request("'alg' must be ES256, EdDSA or RS256."))
        })
        .transpose()?;
    let r = rotate_keys(
        &*state.store,
        &state.master,
        alg,
        state.now(),
        state.jwks_max_age as i64,
        body.force,
    )
    .await
    .map_err(|e| match e {
        KeyOpError::TooEarly { .. } => Problem::conflict(e.to_string()),
        KeyOpError::Store(s) => s.into(),
        other => Problem::internal(&other),
    })?;
    state.refreshed().await?;
    tracing::info!(current = %r.current, next = %r.next, by = %who.describe(), "signing keys rotated");
    Ok(axum::Json(RotateBody {
        current: r.current,
        next: r.next,
        retired: r.retired,
    }))
}
