//! Who is calling the admin API. What they may do is decided by one rule,
//! [`portcullis_core::policy`]; this module only authenticates:
//!
//! - the **bootstrap admin token** (`pcsa_…`, or `PORTCULLIS_ADMIN_TOKEN`);
//! - an **app** presenting one of its access tokens: the token's audience must be this
//!   server (not an API's `resource`), and the `admin` scope must be both in the token and
//!   in the app's live scopes — taking the scope away ends every token's admin rights at
//!   once;
//! - a **signed-in user** (`pcsu_…` session token from `POST /admin/v1/sessions`), with
//!   the roles stored now.

use crate::audit::{AuditSlot, admin_token_id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use portcullis_core::ids::OrgId;
use portcullis_core::introspect::check_live;
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::token::verify_access_token;

pub use portcullis_core::policy::{ADMIN_SCOPE, Action, Principal, Refusal};

/// The answer to a refused action: who is refused, what they tried, and why (from the
/// policy), as a 403 problem. `what` completes "… may not …".
pub fn forbid(who: &Principal, what: &str) -> impl FnOnce(Refusal) -> Problem {
    let subject = match who {
        Principal::Root => "The bootstrap admin",
        Principal::App { .. } => "This application",
        Principal::User(_) => "Your account",
    };
    let what = what.to_owned();
    move |why| Problem::forbidden(format!("{subject} may not {what}: {why}."))
}

const HOW: &str = "Send 'Authorization: Bearer <token>' with the bootstrap admin token, a session token from POST /admin/v1/sessions, or an access token of an app with the 'admin' scope.";

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = authenticate(parts, state).await?;
        if let Some(slot) = parts.extensions.get::<AuditSlot>() {
            slot.set(principal.1);
        }
        Ok(principal.0)
    }
}

/// The caller, and how the audit trail names it.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<(Principal, String), Problem> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized(format!("No credentials. {HOW}")))?
        .to_str()
        .map_err(|_| {
            Problem::unauthorized(format!("The Authorization header is not valid text. {HOW}"))
        })?;
    // `DPoP` only for a DPoP-bound access token (checked below).
    let (token, dpop_scheme) = crate::sender::credentials(value, HOW)?;
    let now = state.now();
    let view = state.view.get();

    if token.starts_with("pcsu_") {
        let secret = Secret::parse(SecretKind::UserSession, token)
            .map_err(|e| Problem::unauthorized(format!("Bad session token: {e}.")))?;
        let hash_key = &state.hash_key()?;
        let user_id = state
                .store
                .session(&secret.hash(hash_key).to_hex(), now)
                .await?
                .ok_or_else(|| Problem::unauthorized("The session has expired or was ended; sign in again with POST /admin/v1/sessions."))?;
        let user = state.store.user(&user_id).await?.ok_or_else(|| {
            Problem::unauthorized("The account of this session no longer exists.")
        })?;
        let actor = format!("user:{}", user.id);
        return Ok((Principal::User(user), actor));
    }

    if token.matches('.').count() == 2 {
        let claims = verify_access_token(token, |kid| view.key(kid), &state.issuer, now)
            .map_err(|e| Problem::unauthorized(format!("The access token is not valid: {e}.")))?;
        check_live(&claims, &view).map_err(|e| {
            Problem::unauthorized(format!("The access token is no longer valid: {e}."))
        })?;
        crate::sender::check(state, parts, token, dpop_scheme, &claims).await?;
        if claims.aud != state.issuer {
            return Err(Problem::unauthorized(format!(
                "The access token is for another audience ('{}'): it was requested with a 'resource' and is good only there. Request a token without 'resource' (its audience is then this server, '{}').",
                claims.aud.chars().take(200).collect::<String>(),
                state.issuer
            )));
        }
        if !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(Problem::forbidden(
                "The access token lacks the 'admin' scope; request a token with scope=admin for an app granted that scope.",
            ));
        }
        // The app's live scopes, not only what the token says: a scope taken away ends
        // the admin rights of every token issued before.
        let live_admin = view
            .app(&claims.client_id)
            .is_some_and(|e| view.scopes_of(&e.app).contains(ADMIN_SCOPE));
        if !live_admin {
            return Err(Problem::forbidden(
                "The application no longer holds the 'admin' scope; tokens issued before it was taken away have no admin rights.",
            ));
        }
        let org = OrgId::parse(&claims.org).map_err(|e| Problem::unauthorized(e.0))?;
        let actor = format!("app:{}", claims.client_id);
        return Ok((
            Principal::App {
                client_id: claims.client_id,
                org,
            },
            actor,
        ));
    }

    let settings = state.view.settings();
    let hash_key = &state.hash_key()?;
    match settings.admin_token_hash {
        Some(expected) if expected.ct_eq(&hash_key.hash_text(token)) => Ok((
            Principal::Root,
            format!("admin-token:{}", admin_token_id(&expected)),
        )),
        _ => Err(Problem::unauthorized(format!(
            "The token is not valid. {HOW}"
        ))),
    }
}
