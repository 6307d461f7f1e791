//! A Portcullis access token on the server's own APIs (the admin API, the decision feed):
//! its sender constraint, as the gateway checks it. A DPoP-bound token (`cnf.jkt`) is
//! good only as `Authorization: DPoP` with a proof of its key for this very request (the
//! server's own URL: the issuer and the path), spent once with the app's other `jti`s;
//! an unbound token is good only as `Bearer`, and not at all for an app that requires
//! DPoP. Without this, a stolen bound token would be a bearer token here.

use crate::problem::Problem;
use crate::state::AppState;
use axum::http::request::Parts;
use portcullis_core::app_jwt::Replay;
use portcullis_core::dpop::{Expected, verify_proof};
use portcullis_core::gateway::{DPOP_LEEWAY, DPOP_MAX_AGE, dpop_replay_scope};
use portcullis_core::token::AccessClaims;

/// The token of `Authorization: Bearer <token>`, or `DPoP <token>` for an access token
/// (a JWT), and whether it came with the DPoP scheme; refusals end with `how` (what to
/// send instead).
pub fn credentials<'a>(value: &'a str, how: &str) -> Result<(&'a str, bool), Problem> {
    let parsed = value.trim().split_once(' ').and_then(|(scheme, token)| {
        let token = token.trim();
        match () {
            _ if token.is_empty() => None,
            _ if scheme.eq_ignore_ascii_case("bearer") => Some((token, false)),
            _ if scheme.eq_ignore_ascii_case("dpop") => Some((token, true)),
            _ => None,
        }
    });
    let (token, dpop) = parsed.ok_or_else(|| {
        Problem::unauthorized(format!("The Authorization scheme must be Bearer. {how}"))
    })?;
    if dpop && token.matches('.').count() != 2 {
        return Err(Problem::unauthorized(format!(
            "Only a DPoP-bound access token is sent with the DPoP scheme. {how}"
        )));
    }
    Ok((token, dpop))
}

/// Check the binding of `claims` (the verified `token`, sent with the DPoP scheme or not)
/// on the request `parts`.
pub async fn check(
    state: &AppState,
    parts: &Parts,
    token: &str,
    dpop_scheme: bool,
    claims: &AccessClaims,
) -> Result<(), Problem> {
    let view = state.view.get();
    let Some(cnf) = &claims.cnf else {
        if dpop_scheme {
            return Err(Problem::unauthorized(
                "The token is not bound to a key, so no DPoP proof can go with it: send it as 'Authorization: Bearer <token>'.",
            ));
        }
        if view
            .app(&claims.client_id)
            .is_some_and(|e| e.app.dpop_bound_access_tokens)
        {
            return Err(Problem::unauthorized(format!(
                "The application '{}' requires DPoP, and this token is not bound to a key: get a new token with a DPoP proof and send it as 'Authorization: DPoP <token>'.",
                claims.client_id
            )));
        }
        return Ok(());
    };
    if !dpop_scheme {
        return Err(Problem::unauthorized(
            "The token is bound to the client's key (DPoP): send it as 'Authorization: DPoP <token>' with a DPoP proof signed by that key, not as Bearer.",
        ));
    }
    let mut proofs = parts.headers.get_all("dpop").iter();
    let (Some(proof), None) = (proofs.next(), proofs.next()) else {
        return Err(Problem::unauthorized(
            "A DPoP-bound token needs exactly one DPoP header with a proof made for this request.",
        ));
    };
    let proof = proof
        .to_str()
        .map_err(|_| Problem::unauthorized("The DPoP header is not valid text."))?;
    // The path as the client sent it: a nested router's own `uri` lacks its prefix.
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(parts.uri.path(), |o| o.0.path());
    let htu = format!("{}{path}", state.issuer);
    let now = state.now();
    let want = Expected {
        htm: parts.method.as_str(),
        htu: &htu,
        now,
        max_age: DPOP_MAX_AGE,
        leeway: DPOP_LEEWAY,
        access_token: Some(token),
        nonce: crate::gateway::nonce_rule(state, &view),
    };
    let proof = verify_proof(proof, &want).map_err(|e| Problem::unauthorized(e.sentence()))?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        proof.jkt.as_bytes(),
        cnf.jkt.as_bytes(),
    )) {
        return Err(Problem::unauthorized(
            "The DPoP proof is signed by another key than the one the token was issued to.",
        ));
    }
    let scope = dpop_replay_scope(&claims.client_id);
    let until = proof.iat + DPOP_MAX_AGE;
    let first = match &state.shared {
        Some(shared) => shared
            .first_use_jti(&scope, &proof.jti, until, now)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "shared store unreachable; refusing a DPoP proof");
                busy("DPoP proofs cannot be checked against replay right now (the shared store is unreachable); retry shortly.")
            })?,
        None => match state.jtis.first_use(&scope, &proof.jti, until, now) {
            Ok(()) => true,
            Err(Replay::Replayed) => false,
            Err(Replay::Full) => {
                return Err(busy(
                    "Too many DPoP proofs of this application are being remembered against replay right now; retry shortly.",
                ));
            }
        },
    };
    if !first {
        return Err(Problem::unauthorized(
            "The DPoP proof was used before; make a new proof, with a fresh jti, for every request.",
        ));
    }
    Ok(())
}

fn busy(detail: &str) -> Problem {
    Problem::new(
        503,
        "unavailable",
        "PCS-0503-503",
        "Service unavailable",
        detail.to_owned(),
    )
}
