//! `/admin/v1/apps/{client_id}/certificates`: X.509 certificates an app uploads so that
//! JWTs signed with the certificate's private key prove it (Adobe I/O's service-account
//! JWT exchange, RFC 7523 at `/oauth/token`). Portcullis keeps the public key as a JWK (an
//! [`AppKey`] whose `kid` is the certificate's id), its fingerprint, subject and expiry;
//! never a private key — one pasted by mistake is refused and not stored.
//!
//! Upload the PEM as the body with `Content-Type: application/x-pem-file`, or as JSON
//! `{"pem": "..."}`. Several certificates per app, for rotation: upload the new one, move
//! the signer over, delete the old one. The rules are `portcullis_core::certificate`'s.

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::ApiQuery;
use super::secrets::manageable;
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::certificate;
use portcullis_core::ids::RecordId;
use portcullis_core::model::{App, AppKey, AppKeySource};
use portcullis_core::token::VerifyKey;
use serde::{Deserialize, Serialize};

/// The media type of a PEM upload.
pub const PEM_MEDIA_TYPE: &str = "application/x-pem-file";
/// The most certificates one app may hold.
pub const MAX_CERTIFICATES: usize = 10;

/// A certificate as recorded. There is no secret in it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateBody {
    /// `key_…`: the `kid` JWTs signed with this certificate's key may name.
    pub id: String,
    pub client_id: String,
    /// The one JWS algorithm it verifies: `RS256` (RSA) or `ES256` (P-256).
    pub alg: String,
    /// SHA-256 of the certificate's DER, lowercase hex (`openssl x509 -noout -fingerprint
    /// -sha256` prints the same bytes, uppercase with colons).
    pub fingerprint_sha256: String,
    pub subject: String,
    /// Unix seconds; after it, JWTs signed with its key are refused.
    pub not_after: i64,
    pub created_at: i64,
    /// The public key as a JWK (`kid` = `id`).
    #[schema(value_type = Object)]
    pub public_jwk: serde_json::Value,
}

impl CertificateBody {
    fn new(k: &AppKey) -> Option<Self> {
        let AppKeySource::Certificate {
            fingerprint_sha256,
            subject,
            not_after,
        } = &k.source
        else {
            return None;
        };
        Some(Self {
            id: k.id.to_string(),
            client_id: k.client_id.to_string(),
            alg: k.alg.as_str().to_owned(),
            fingerprint_sha256: fingerprint_sha256.clone(),
            subject: subject.clone(),
            not_after: *not_after,
            created_at: k.created_at,
            public_jwk: k.public_jwk.clone(),
        })
    }
}

/// The JSON form of an upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadCertificate {
    /// The certificate PEM (`-----BEGIN CERTIFICATE-----` …). Never a private key.
    pub pem: String,
}

/// The PEM text of the request, from either body form.
fn pem_of(headers: &HeaderMap, body: &Bytes) -> Result<Vec<u8>, Problem> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        PEM_MEDIA_TYPE => Ok(body.to_vec()),
        "application/json" => serde_json::from_slice::<UploadCertificate>(body)
            .map(|u| u.pem.into_bytes())
            .map_err(|e| {
                Problem::bad_request(format!(
                    "The JSON body must be {{\"pem\": \"-----BEGIN CERTIFICATE-----...\"}}: {e}"
                ))
            }),
        _ => Err(Problem::unsupported_media_type(format!(
            "Send the certificate PEM as the body with 'Content-Type: {PEM_MEDIA_TYPE}', or as JSON {{\"pem\": \"...\"}} with 'Content-Type: application/json'."
        ))),
    }
}

async fn certificates(state: &AppState, app: &App) -> Result<Vec<AppKey>, Problem> {
    Ok(state
        .store
        .app_keys(&app.client_id)
        .await?
        .into_iter()
        .filter(|k| matches!(k.source, AppKeySource::Certificate { .. }))
        .collect())
}

async fn find(state: &AppState, app: &App, id: &str) -> Result<AppKey, Problem> {
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    certificates(state, app)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "No certificate {id} on application {}.",
                app.client_id
            ))
        })
}

fn body_of(k: &AppKey) -> Result<CertificateBody, Problem> {
    CertificateBody::new(k).ok_or_else(|| Problem::internal(&"a key pair listed as a certificate"))
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/certificates", operation_id = "createCertificate", tag = "certificates",
    request_body(content(
        (String = "application/x-pem-file"),
        (UploadCertificate = "application/json"),
    ), description = "One X.509 certificate: RSA ≥ 2048 bits or EC P-256, valid now. Never a private key."),
    responses((status = 201, body = CertificateBody, description = "the certificate as recorded"), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let pem = pem_of(&headers, &body)?;
    let now = state.now();
    let parsed = certificate::parse(&pem, now).map_err(|e| Problem::bad_request(e.to_string()))?;
    let existing = certificates(&state, &app).await?;
    if let Some(same) = existing.iter().find(|k| {
        matches!(&k.source, AppKeySource::Certificate { fingerprint_sha256, .. }
            if *fingerprint_sha256 == parsed.fingerprint_sha256)
    }) {
        return Err(Problem::conflict(format!(
            "This certificate is already uploaded to the application as {}.",
            same.id
        )));
    }
    if existing.len() >= MAX_CERTIFICATES {
        return Err(Problem::conflict(format!(
            "The application already has {MAX_CERTIFICATES} certificates; delete one it no longer uses first."
        )));
    }
    let id = RecordId::generate("key");
    let jwk = parsed.jwk_with_kid(id.as_str());
    // The view parses the JWK the same way; a key it could not use is refused here.
    VerifyKey::from_jwk(parsed.alg, jwk.clone()).map_err(|e| Problem::internal(&e))?;
    let key = AppKey {
        id,
        client_id: app.client_id.clone(),
        alg: parsed.alg,
        public_jwk: jwk,
        source: AppKeySource::Certificate {
            fingerprint_sha256: parsed.fingerprint_sha256,
            subject: parsed.subject,
            not_after: parsed.not_after,
        },
        created_at: now,
    };
    state.store.insert_app_key(&key).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, key = %key.id, alg = key.alg.as_str(), by = %who.describe(), "certificate uploaded");
    Ok((StatusCode::CREATED, axum::Json(body_of(&key)?)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/certificates", operation_id = "listCertificates", params(PageQuery), tag = "certificates",
    responses((status = 200, body = Page<CertificateBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<CertificateBody>>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let page = q.request()?;
    // At most MAX_CERTIFICATES, in id order: paginate in memory.
    let items = certificates(&state, &app)
        .await?
        .iter()
        .filter(|k| page.after.as_deref().is_none_or(|a| k.id.as_str() > a))
        .take(page.limit as usize)
        .map(body_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(Page::of(
        items,
        page.limit,
        |c: &CertificateBody| c.id.clone(),
    )))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/certificates/{certificate_id}", operation_id = "readCertificate", tag = "certificates",
    responses((status = 200, body = CertificateBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<axum::Json<CertificateBody>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    Ok(axum::Json(body_of(&find(&state, &app, &id).await?)?))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}/certificates/{certificate_id}", operation_id = "deleteCertificate", tag = "certificates",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let app = manageable(&state, &who, &client_id).await?;
    let k = find(&state, &app, &id).await?;
    state.store.delete_app_key(&app.client_id, &k.id).await?;
    state.refreshed().await?;
    tracing::info!(client_id = %app.client_id, key = %k.id, by = %who.describe(), "certificate deleted; JWTs signed with its key are refused");
    Ok(StatusCode::NO_CONTENT)
}
