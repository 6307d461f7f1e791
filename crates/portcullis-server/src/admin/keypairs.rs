//! `/admin/v1/apps/{client_id}/keypairs`: application key pairs (like SAP Gigya's
//! application keys). The server generates an RS256 (2048-bit) or ES256 pair and answers with the private key as a
//! PKCS#8 PEM, once; only the public JWK is stored, under a server-assigned `kid`. The app
//! then signs its own bearer JWTs (header `kid`, claims `iat` and `jti`), which the gateway
//! accepts in place of `userKey` + `secret`. Deleting a key pair ends its use at
//! the next request.
//!
//! Authorization is the app's secrets' (`super::secrets`): whoever may read the app may
//! list and read its key pairs; whoever may manage its credentials may create and delete.

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::{ApiQuery, OptionalJson};
use super::secrets::manageable;
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::RecordId;
use portcullis_core::model::{App, AppKey, AppKeySource};
use portcullis_core::token::{Alg, generate_key};
use serde::{Deserialize, Serialize};

/// A key pair as listed: its public half only.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyPairBody {
    /// The `kid` to put in the header of JWTs signed with this key pair.
    pub kid: String,
    pub client_id: String,
    /// `RS256` or `ES256`: the only algorithm this key verifies.
    #[schema(example = "RS256")]
    pub alg: String,
    pub created_at: i64,
    /// The public key as a JWK (`kid`, `alg`, `use: sig`).
    #[schema(value_type = Object)]
    pub public_jwk: serde_json::Value,
}

/// The creation response: the only time the private key is shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedKeyPair {
    #[serde(flatten)]
    pub key: KeyPairBody,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Store it now: the
    /// server does not keep it.
    pub private_key_pem: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyPair {
    /// `RS256` (the default, as SAP Gigya uses; 2048-bit RSA) or `ES256` (P-256).
    #[schema(example = "RS256")]
    pub alg: Option<String>,
}

/// Key pairs an app may hold at once (enough to rotate with overlap).
const MAX_KEY_PAIRS: usize = 10;

impl KeyPairBody {
    fn new(k: &AppKey) -> Self {
        Self {
            kid: k.id.to_string(),
            client_id: k.client_id.to_string(),
            alg: k.alg.as_str().to_owned(),
            created_at: k.created_at,
            public_jwk: k.public_jwk.clone(),
        }
    }
}

/// The app's key pairs (not its certificates), in id order.
async fn key_pairs(state: &AppState, app: &App) -> Result<Vec<AppKey>, Problem> {
    Ok(state
        .store
        .app_keys(&app.client_id)
        .await?
        .into_iter()
        .filter(|k| k.source == AppKeySource::KeyPair)
        .collect())
}

async fn find(state: &AppState, app: &App, kid: &str) -> Result<AppKey, Problem> {
    let id = RecordId::parse(kid).map_err(|e| Problem::bad_request(e.0))?;
    key_pairs(state, app)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "No key pair {id} on application {}.",
                app.client_id
            ))
        })
}

/// PKCS#8 DER as PEM with 64-character lines and `\n` line ends.
fn pkcs8_pem(der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/keypairs", operation_id = "createKeyPair", request_body = Option<CreateKeyPair>, tag = "keypairs",
    responses((status = 201, body = CreatedKeyPair, description = "the key pair; the private key is shown once"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    OptionalJson(body): OptionalJson<CreateKeyPair>,
) -> Result<Response, Problem> {
    let alg = match body.alg.as_deref() {
        None | Some("RS256") => Alg::RS256,
        Some("ES256") => Alg::ES256,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "The alg '{}' is not offered for key pairs: use 'RS256' (the default) or 'ES256'.",
                other.chars().take(40).collect::<String>()
            )));
        }
    };
    let app = manageable(&state, &who, &client_id).await?;
    if key_pairs(&state, &app).await?.len() >= MAX_KEY_PAIRS {
        return Err(Problem::conflict(format!(
            "The application already has {MAX_KEY_PAIRS} key pairs; delete one it no longer uses first."
        )));
    }
    let kid = RecordId::generate("key");
    // RSA generation takes a good fraction of a second: off the async workers.
    let generated = {
        let kid = kid.to_string();
        tokio::task::spawn_blocking(move || generate_key(alg, &kid))
            .await
            .map_err(|e| Problem::internal(&e))?
            .map_err(|e| Problem::internal(&e))?
    };
    let key = AppKey {
        id: kid,
        client_id: app.client_id.clone(),
        alg,
        public_jwk: generated.public_jwk,
        source: AppKeySource::KeyPair,
        created_at: state.now(),
    };
    state.store.insert_app_key(&key).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, kid = %key.id, alg = alg.as_str(), by = %who.describe(), "key pair created");
    let mut res = (
        StatusCode::CREATED,
        axum::Json(CreatedKeyPair {
            key: KeyPairBody::new(&key),
            private_key_pem: pkcs8_pem(generated.pkcs8),
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/keypairs", operation_id = "listKeyPairs", params(PageQuery), tag = "keypairs",
    responses((status = 200, body = Page<KeyPairBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<KeyPairBody>>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let page = q.request()?;
    // At most MAX_KEY_PAIRS, in id order: paginate in memory.
    let items = key_pairs(&state, &app)
        .await?
        .iter()
        .filter(|k| page.after.as_deref().is_none_or(|a| k.id.as_str() > a))
        .take(page.limit as usize)
        .map(KeyPairBody::new)
        .collect();
    Ok(axum::Json(Page::of(
        items,
        page.limit,
        |k: &KeyPairBody| k.kid.clone(),
    )))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/keypairs/{kid}", operation_id = "readKeyPair", tag = "keypairs",
    responses((status = 200, body = KeyPairBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, kid)): Path<(String, String)>,
) -> Result<axum::Json<KeyPairBody>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let k = find(&state, &app, &kid).await?;
    Ok(axum::Json(KeyPairBody::new(&k)))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}/keypairs/{kid}", operation_id = "deleteKeyPair", tag = "keypairs",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, kid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let k = find(&state, &app, &kid).await?;
    state.store.delete_app_key(&app.client_id, &k.id).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, kid = %k.id, by = %who.describe(), "key pair deleted; JWTs it signs are refused");
    Ok(StatusCode::NO_CONTENT)
}
