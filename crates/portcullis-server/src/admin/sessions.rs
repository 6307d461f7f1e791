//! `/admin/v1/sessions`: a user signs in with email and password and gets a session
//! token (`pcsu_…`, 12 hours) for the admin API; the console uses the same API.

use super::extract::ApiJson;
use super::password;
use super::users::UserBody;
use crate::audit::ClientAddr;
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::secret::{Secret, SecretKind};
use serde::{Deserialize, Serialize};

pub const SESSION_TTL: i64 = 12 * 3600;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionBody {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: i64,
    pub user: UserBody,
}

/// The account's sign-ins are locked for `retry` seconds (too many wrong passwords).
pub fn locked(retry: u64) -> Problem {
    Problem::new(
        429,
        "too-many-sign-ins",
        "PCS-0429-429",
        "Too many failed sign-ins",
        format!(
            "Too many wrong passwords for this account; sign-ins to it are refused for {retry} s (see Retry-After). Then try again with the right password, or ask an administrator to reset it."
        ),
    )
    .with_retry_after(retry)
}

#[utoipa::path(post, path = "/admin/v1/sessions", operation_id = "createSession", request_body = Login, tag = "sessions",
    responses((status = 201, body = SessionBody), (status = 401, body = Problem, content_type = "application/problem+json"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, Problem> {
    let user = password::sign_in(&state, client, &body.email, &body.password)
        .await?
        .map_err(password::Refused::problem)?;
    let token = Secret::generate(SecretKind::UserSession);
    let hash_key = state.hash_key()?;
    let expires_at = state.now() + SESSION_TTL;
    state
        .store
        .insert_session(&token.hash(&hash_key).to_hex(), &user.id, expires_at)
        .await?;
    tracing::info!(user = %user.id, "signed in");
    let mut res = (
        StatusCode::CREATED,
        axum::Json(SessionBody {
            token: token.expose().to_owned(),
            expires_at,
            user: UserBody::from(&user),
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[utoipa::path(get, path = "/admin/v1/sessions/current", operation_id = "readCurrentSession", tag = "sessions",
    responses((status = 200, body = UserBody, description = "The signed-in user, as stored now"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn current(who: super::auth::Principal) -> Result<axum::Json<UserBody>, Problem> {
    match who {
        super::auth::Principal::User(u) => Ok(axum::Json(UserBody::from(&u))),
        _ => Err(Problem::bad_request(
            "Only a person's session token has a signed-in user; this is the bootstrap admin token or an app's access token. Sign in with POST /admin/v1/sessions first.",
        )),
    }
}

#[utoipa::path(delete, path = "/admin/v1/sessions/current", operation_id = "deleteCurrentSession", tag = "sessions",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Problem::unauthorized("Send the session token as 'Authorization: Bearer <token>'.")
        })?;
    let secret = Secret::parse(SecretKind::UserSession, token.trim())
        .map_err(|e| Problem::unauthorized(format!("Bad session token: {e}.")))?;
    let hash_key = state.hash_key()?;
    state
        .store
        .delete_session(&secret.hash(&hash_key).to_hex())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
