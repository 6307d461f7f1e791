//! `/admin/v1/apps/{client_id}/tokens` and `/admin/v1/apps/{client_id}/revoke`: a person
//! who manages an app gets an access token for it, or revokes one of its tokens, with
//! their own admin rights instead of the app's secret.
//!
//! The console's "Generate access token" needs the first: a throwaway secret
//! would not do, because deleting the secret a token was obtained with ends the token
//! (its `cred` claim), and leaving one behind uses up the app's few secret slots. A token
//! issued here has the claims `client_credentials` would give (the same grant rule), with
//! no `cred`: it ends when it expires, is revoked, or its app or org is suspended,
//! disabled or deleted. The second is RFC 7009's revocation for callers who are not the
//! app (`/oauth/revoke` authenticates an app).

use super::apps::load_managed;
use super::auth::Principal;
use super::extract::{ApiJson, OptionalJson};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::OAUTH_DEFAULT_TTL;
use portcullis_core::grant::client_auth::AuthenticatedClient;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::ids::RecordId;
use portcullis_core::model::{AppStatus, OrgStatus, Revocation};
use portcullis_core::token::verify_access_token;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueToken {
    /// Narrows the app's scopes (space-separated), like `scope` on `/oauth/token`.
    pub scope: Option<String>,
}

/// An access token for the app, shown once.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// Unix seconds.
    pub expires_at: i64,
    pub scope: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeToken {
    /// The access token to revoke; it must have been issued to this app.
    pub token: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokeResult {
    /// `false` when there was nothing to revoke: the token is not a valid token of this
    /// server (malformed, expired, or signed by a key no longer published) — RFC 7009 section 2.2.
    pub revoked: bool,
    /// The revoked token's id, when `revoked`.
    pub jti: Option<String>,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/tokens", operation_id = "issueAppToken", request_body = Option<IssueToken>, tag = "apps",
    responses((status = 201, body = IssuedToken, description = "an access token for the app, shown once"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    OptionalJson(body): OptionalJson<IssueToken>,
) -> Result<Response, Problem> {
    let app = load_managed(
        &state,
        &who,
        &client_id,
        "issue tokens for this application",
    )
    .await?;
    let view = state.view.get();
    let entry = view
        .app(app.client_id.as_str())
        .ok_or_else(|| Problem::not_found(format!("No application {}.", app.client_id)))?;
    if entry.app.status != AppStatus::Active {
        return Err(Problem::conflict(
            "The application is suspended; reactivate it before issuing tokens.",
        ));
    }
    if view
        .org(app.org_id.as_str())
        .is_none_or(|o| o.status != OrgStatus::Active)
    {
        return Err(Problem::conflict(
            "The application's organization is disabled.",
        ));
    }
    if app.dpop_bound_access_tokens {
        return Err(Problem::conflict(
            "The application requires DPoP-bound tokens, and a token made here would be a bearer token the gateway refuses: the app's client obtains its own tokens at POST /oauth/token with a DPoP proof of its key.",
        ));
    }
    // The grant rule wants the credential that authenticated the client; this token has
    // none (`cred` is cleared below), so the id is only a placeholder.
    let client = AuthenticatedClient {
        entry: entry.clone(),
        credential_id: RecordId::generate("adm"),
    };
    let now = state.now();
    let mut claims = grant(
        &view,
        &client,
        body.scope.as_deref(),
        GrantContext {
            issuer: &state.issuer,
            now,
            default_ttl: OAUTH_DEFAULT_TTL,
        },
    )
    .map_err(|e| Problem::bad_request(e.description.into_owned()))?;
    claims.cred = None;
    let signer = view.signer().ok_or_else(|| {
        Problem::unavailable(&"the server has no signing key yet; try again shortly")
    })?;
    let access_token = signer.sign(&claims);
    tracing::info!(client_id = %app.client_id, jti = %claims.jti, by = %who.describe(), "access token issued by a manager");
    Ok(no_store(
        (
            StatusCode::CREATED,
            axum::Json(IssuedToken {
                access_token,
                token_type: "Bearer".to_owned(),
                expires_in: claims.exp - claims.iat,
                expires_at: claims.exp,
                scope: claims.scope,
            }),
        )
            .into_response(),
    ))
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/revoke", operation_id = "revokeAppToken", request_body = RevokeToken, tag = "apps",
    responses((status = 200, body = RevokeResult), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<RevokeToken>,
) -> Result<Response, Problem> {
    let app = load_managed(&state, &who, &client_id, "revoke this application's tokens").await?;
    let view = state.view.get();
    let Ok(claims) = verify_access_token(
        body.token.trim(),
        |kid| view.key(kid),
        &state.issuer,
        state.now(),
    ) else {
        return Ok(no_store(
            axum::Json(RevokeResult {
                revoked: false,
                jti: None,
            })
            .into_response(),
        ));
    };
    if claims.client_id != app.client_id.as_str() {
        return Err(Problem::bad_request(
            "This token was issued to another application; revoke it from that application.",
        ));
    }
    let jti = claims.jti.clone();
    state
        .store
        .revoke(&Revocation {
            jti: claims.jti,
            client_id: app.client_id.clone(),
            exp: claims.exp,
        })
        .await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, %jti, by = %who.describe(), "access token revoked");
    Ok(no_store(
        axum::Json(RevokeResult {
            revoked: true,
            jti: Some(jti),
        })
        .into_response(),
    ))
}
