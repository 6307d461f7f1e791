//! `POST /v1/token` (API-key redeem): redeem an API key bundle's `encodedKey` for a short-lived
//! access token.
//!
//! `{"apiKey": "<base64 of client_id:client_secret>"}` → `{"token": "...",
//! "expirationTime": 300}`. The key is the app's client id and one of its client secrets
//! (`crate::admin::api_keys`), so this is the client credentials grant with the pair
//! carried the vendor's way: the same authentication (`grant::client_auth`), the same
//! claims (`grant::client_credentials`, the app's live scopes), an ordinary Portcullis
//! access token, 300 s unless the app has its own `token_ttl_seconds`.
//!
//! Errors are `{"error", "error_description"}` with `Cache-Control: no-store`: a key
//! that is not well-formed (not base64, no `:`, a secret failing its format or checksum)
//! is 400 `invalid_request`, found before any lookup; a well-formed key that is wrong, of
//! a suspended app or of a disabled organization is 401 `invalid_client`.

use crate::problem::OAuthResponseError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use portcullis_core::grant::client_auth::authenticate;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::ids::ClientId;
use portcullis_core::oauth_error::OAuthError;
use portcullis_core::secret::{Secret, SecretKind};
use serde::{Deserialize, Serialize};

/// The lifetime of `/v1/token`'s tokens when the app has none of its own.
pub const API_KEY_DEFAULT_TTL: u32 = 300;

/// The grant's name in metrics.
const GRANT: &str = "api_key";

/// Standard base64, padded or not (clients differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    #[serde(rename = "apiKey")]
    api_key: String,
}

/// the API-key redeem flow's success response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeemResponse {
    pub token: String,
    /// Seconds until the token expires.
    pub expiration_time: i64,
}

pub async fn redeem(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body) {
        Ok(res) => {
            state.metrics.grant(GRANT, true);
            let mut r = Json(res).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => {
            state.metrics.grant(GRANT, false);
            OAuthResponseError(e).into_response()
        }
    }
}

fn ill_formed(why: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "The apiKey is not well-formed: {why}. Send the encodedKey of the downloaded API key file unchanged."
    ))
}

/// The client id and secret inside an `encodedKey`, checked for form only.
fn decode_key(encoded: &str) -> Result<(ClientId, Secret), OAuthError> {
    let encoded = encoded.trim();
    if encoded.is_empty() {
        return Err(ill_formed("it is empty"));
    }
    if encoded.len() > 1024 {
        return Err(ill_formed("it is far longer than an API key"));
    }
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| ill_formed("it is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| ill_formed("it does not decode to text"))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or_else(|| ill_formed("it does not decode to 'appClientId:appClientSecret'"))?;
    let id = ClientId::parse(id).map_err(|_| ill_formed("its appClientId is not a client id"))?;
    let secret = Secret::parse(SecretKind::ClientSecret, secret)
        .map_err(|e| ill_formed(&format!("its appClientSecret is not one: {e}")))?;
    Ok((id, secret))
}

fn issue(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<RedeemResponse, OAuthError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_type {
        return Err(OAuthError {
            error: "invalid_request",
            description: "Send the body as JSON (Content-Type: application/json): {\"apiKey\": \"<encodedKey>\"}.".into(),
            status: 415,
        });
    }
    let req: RedeemRequest = serde_json::from_slice(body).map_err(|_| {
        OAuthError::invalid_request(
            "The body must be the JSON object {\"apiKey\": \"<encodedKey from the downloaded API key>\"}.",
        )
    })?;
    let (client_id, secret) = decode_key(&req.api_key)?;
    let view = state.view.get();
    let now = state.now();
    let client = authenticate(&view, client_id.as_str(), secret.expose(), now).map_err(|e| {
        OAuthError::invalid_client(format!(
            "The API key was not accepted: {} Create a new API key if it was deleted.",
            e.description
        ))
    })?;
    let claims = grant(
        &view,
        &client,
        None,
        GrantContext {
            issuer: &state.issuer,
            now,
            default_ttl: API_KEY_DEFAULT_TTL,
        },
    )?;
    let token = crate::oauth::token::sign(&view, &claims)?;
    state.note_secret_use(&client.credential_id, now);
    tracing::debug!(client_id = %claims.client_id, jti = %claims.jti, "redeemed an API key");
    Ok(RedeemResponse {
        token,
        expiration_time: claims.exp - claims.iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_key_decodes_padded_or_not_and_ill_formed_ones_say_why() {
        let secret = Secret::generate(SecretKind::ClientSecret);
        let id = ClientId::generate();
        let padded =
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", secret.expose()));
        let (got_id, got_secret) = decode_key(&padded).unwrap();
        assert_eq!(got_id, id);
        assert_eq!(got_secret.expose(), secret.expose());
        assert!(decode_key(padded.trim_end_matches('=')).is_ok());
        for (bad, why) in [
            ("", "empty"),
            ("!!!", "not base64"),
            ("bm9jb2xvbg==", "appClientId:appClientSecret"),
            ("eDpwY3NzX3g=", "not a client id"),
        ] {
            let e = decode_key(bad).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.description.contains(why), "{bad}: {}", e.description);
        }
    }
}
