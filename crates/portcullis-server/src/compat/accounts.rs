//! `GET /accounts.getJWTPublicKey?apiKey=<client_id>&v2=true` (SAP Gigya application keys): the keys that
//! verify tokens Portcullis issued — the same JWKS as `/.well-known/jwks.json`, found
//! the way SAP Gigya's clients look for it (its C# example loads this URL into a
//! `JsonWebKeySet`).
//!
//! Parameter names match in any case (the vendor writes both `apiKey` and `apikey`).
//! `apiKey` must be a client id known to this server: a missing one is 400, an unknown
//! one 403 with the catalogue's `403003` ("Api Key is invalid"), as at the gateway. Only
//! the `v2` (JWKS) form is served: `v2` absent or `true` gets it, any other value 400.
//! Errors are problem+json.

use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};

pub async fn jwt_public_key(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    match check(&state, q.as_deref().unwrap_or("")) {
        Ok(()) => crate::oauth::discovery::jwks_response(&state),
        Err(p) => p.into_response(),
    }
}

fn check(state: &AppState, query: &str) -> Result<(), Problem> {
    let (mut api_key, mut v2) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = if k.eq_ignore_ascii_case("apikey") {
            &mut api_key
        } else if k.eq_ignore_ascii_case("v2") {
            &mut v2
        } else {
            continue;
        };
        if slot.replace(v).is_some() {
            return Err(Problem::bad_request(format!(
                "The parameter '{}' is given twice; give it once.",
                k.chars().take(20).collect::<String>()
            )));
        }
    }
    if let Some(v) = v2
        && !v.eq_ignore_ascii_case("true")
    {
        return Err(Problem::bad_request(
            "Only the v2 form (a JWKS) is served here: pass v2=true or leave it out.",
        ));
    }
    let api_key = api_key.filter(|k| !k.is_empty()).ok_or_else(|| {
        Problem::bad_request(
            "The apiKey parameter is missing: pass your application's client id as apiKey.",
        )
    })?;
    if state.view.get().app(&api_key).is_none() {
        return Err(Problem::new(
            403,
            "invalid-api-key",
            "403003",
            "Api Key is invalid",
            format!(
                "The apiKey '{}' is not the client id of any application on this server.",
                api_key.chars().take(64).collect::<String>()
            ),
        ));
    }
    Ok(())
}
