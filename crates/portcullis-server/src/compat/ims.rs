//! Adobe I/O's token endpoints.
//!
//! - `POST /ims/exchange/jwt`: the service-account exchange. Form fields `client_id`,
//!   `client_secret`, `jwt_token`; answers `{"token_type": "bearer", "access_token",
//!   "expires_in"}` with `expires_in` in **milliseconds**, as the vendor documents. The rules are
//!   `grant::service_account`'s.
//! - `POST /ims/token/v3`: the OAuth server-to-server variant, an ordinary client
//!   credentials grant (`expires_in` in seconds); `scope` may be separated by commas, as
//!   Adobe's clients send it, or by spaces.
//!
//! Both issue ordinary Portcullis access tokens, 24 h unless the app sets its own
//! lifetime. Errors are RFC 6749 JSON: `invalid_client` 401, the others 400.

use crate::oauth::client_auth::authenticate_request;
use crate::oauth::form::OAuthForm;
use crate::oauth::token::{CLIENT_CREDENTIALS, TokenResponse, no_store, sign};
use crate::problem::OAuthResponseError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use portcullis_core::grant::IMS_DEFAULT_TTL;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::grant::service_account::exchange;
use portcullis_core::oauth_error::OAuthError;
use serde::Serialize;

/// Adobe I/O's exchange response.
#[derive(Debug, Serialize)]
pub struct ExchangeResponse {
    pub token_type: &'static str,
    pub access_token: String,
    /// Milliseconds (the vendor's unit).
    pub expires_in: i64,
}

fn answer<T: Serialize>(state: &AppState, grant: &str, r: Result<T, OAuthError>) -> Response {
    state.metrics.grant(grant, r.is_ok());
    match r {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => OAuthResponseError(e).into_response(),
    }
}

fn context(state: &AppState) -> GrantContext<'_> {
    GrantContext {
        issuer: &state.issuer,
        now: state.now(),
        default_ttl: IMS_DEFAULT_TTL,
    }
}

/// `POST /ims/exchange/jwt`.
pub async fn exchange_jwt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| {
        let form = OAuthForm::parse(&headers, &body)?;
        let view = state.view.get();
        let ctx = context(&state);
        let client = authenticate_request(&view, &headers, &form, ctx.now)?;
        let jwt = form.get("jwt_token").ok_or_else(|| {
            OAuthError::invalid_token(
                "The jwt_token form field is missing: send the JWT signed with your certificate's private key.",
            )
        })?;
        let claims = exchange(&view, &client, jwt, ctx)?;
        let access_token = sign(&view, &claims)?;
        if let Some(id) = client.secret_id() {
            state.note_secret_use(id, ctx.now);
        }
        Ok(ExchangeResponse {
            token_type: "bearer",
            access_token,
            expires_in: (claims.exp - claims.iat) * 1000,
        })
    })();
    answer(&state, "ims_jwt_exchange", r)
}

/// `POST /ims/token/v3`.
pub async fn token_v3(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let r = (|| {
        let form = OAuthForm::parse(&headers, &body)?;
        let grant_type = form.require("grant_type")?;
        if grant_type != CLIENT_CREDENTIALS {
            return Err(OAuthError::unsupported_grant_type(
                "This endpoint takes grant_type=client_credentials only; for a service-account JWT use POST /ims/exchange/jwt.",
            ));
        }
        let view = state.view.get();
        let ctx = context(&state);
        let client = authenticate_request(&view, &headers, &form, ctx.now)?;
        // Adobe's clients separate scopes with commas ("openid,AdobeID"); OAuth with spaces.
        let scope = form.get("scope").map(|s| s.replace(',', " "));
        let claims = grant(&view, &client, scope.as_deref(), ctx)?;
        let access_token = sign(&view, &claims)?;
        if let Some(id) = client.secret_id() {
            state.note_secret_use(id, ctx.now);
        }
        Ok(TokenResponse::new(access_token, claims))
    })();
    answer(&state, "ims_client_credentials", r)
}
