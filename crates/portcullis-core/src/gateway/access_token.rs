//! A Portcullis access token at the gateway: `Authorization: Bearer` with `x-api-key` and
//! the org header. Checks the headers that go with it, the token (through the verified-
//! token cache: signature, issuer, expiry), its audience and live state, that `x-api-key`
//! is the client it was issued to and the org header its org, then [`super::authorize`].
//! A DPoP-bound token (`cnf.jkt`) passes only as `Authorization: DPoP` with a proof
//! signed by its key ([`proof_of_possession`]).

use super::app_signed::three_segments;
use super::authorize::authorize;
use super::*;
use crate::dpop::{Expected, ProofError, verify_proof};

/// The token as the request presents it.
pub(super) struct Presented<'a> {
    pub token: &'a str,
    pub scheme: Scheme,
    /// Where a DPoP proof's `jti` is spent.
    pub replay: &'a dyn JtiCheck,
}

/// The replay scope of DPoP proofs of `client_id`'s tokens, apart from its app-signed
/// JWTs' (a `jti` of one kind never collides with the other's).
pub fn dpop_replay_scope(client_id: &str) -> String {
    format!("{DPOP_SCOPE_PREFIX}{client_id}")
}

/// What [`dpop_replay_scope`] starts with.
pub const DPOP_SCOPE_PREFIX: &str = "dpop:";

/// The refusal of a DPoP proof whose `jti` was seen before (by this node, another node,
/// or a verifier sharing the replay store).
pub fn dpop_replayed() -> Denial {
    deny(
        Code::DpopReplayed,
        "The DPoP proof was used before; a proof is accepted once. Make a new proof, with a fresh jti, for every request.",
    )
}

/// The catalogue's code for a proof refused by [`verify_proof`], and its detail.
pub fn proof_denial(e: ProofError) -> Denial {
    let code = match &e {
        ProofError::Malformed(_) | ProofError::MissingClaim(_) => Code::DpopProofMalformed,
        ProofError::WrongType => Code::DpopProofType,
        ProofError::AlgNotAllowed => Code::DpopAlgNotAllowed,
        ProofError::NoKey | ProofError::BadKey => Code::DpopKeyInvalid,
        ProofError::PrivateKey => Code::DpopPrivateKey,
        ProofError::BadSignature => Code::DpopBadSignature,
        ProofError::WrongMethod { .. } => Code::DpopWrongMethod,
        ProofError::WrongUri { .. } => Code::DpopWrongUri,
        ProofError::Stale { .. } | ProofError::Future => Code::DpopStale,
        ProofError::WrongAth => Code::DpopWrongAth,
        ProofError::WrongNonce => Code::DpopNonceRequired,
    };
    deny(code, e.sentence())
}

/// The checks of a token's binding: a bound token only as `DPoP` with a proof of its key
/// for this request, spent once; an unbound one only as `Bearer`.
fn proof_of_possession(
    req: &CheckRequest<'_>,
    claims: &AccessClaims,
    p: &Presented<'_>,
    now: i64,
) -> Result<(), Denial> {
    let bound = claims.cnf.as_ref().map(|c| c.jkt.as_str());
    let (Scheme::DPoP, Some(jkt)) = (p.scheme, bound) else {
        return match (p.scheme, bound) {
            (Scheme::Bearer, Some(_)) => Err(deny(
                Code::DpopDowngrade,
                "The token is bound to the client's key (DPoP): send it as 'Authorization: DPoP <token>' with a DPoP proof signed by that key, not as Bearer.",
            )),
            (Scheme::DPoP, None) => Err(deny(
                Code::DpopKeyMismatch,
                "The token is not bound to a key, so no DPoP proof can go with it: send it as 'Authorization: Bearer <token>', or get a bound token by sending a DPoP proof to the token endpoint.",
            )),
            _ => Ok(()),
        };
    };
    if req.dpop_repeated {
        return Err(deny(
            Code::DpopProofMissing,
            "The request has more than one DPoP header; send exactly one proof.",
        ));
    }
    let proof = req.dpop.filter(|p| !p.is_empty()).ok_or_else(|| {
        deny(
            Code::DpopProofMissing,
            "The request has 'Authorization: DPoP' but no DPoP header: send a DPoP proof made for this request, signed by the token's key.",
        )
    })?;
    let htu = req.htu.ok_or_else(|| {
        deny(
            Code::DpopWrongUri,
            "The gateway cannot tell the URL this request was made to, so no DPoP proof can match it; the operator should forward the original URI (X-Original-URI) and set the gateway's public origin.",
        )
    })?;
    let rules = &req.dpop_rules;
    let want = Expected {
        htm: req.method,
        htu,
        now,
        max_age: rules.max_age,
        leeway: rules.leeway,
        access_token: Some(p.token),
        nonce: rules.nonces,
    };
    let proof = verify_proof(proof, &want).map_err(proof_denial)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        proof.jkt.as_bytes(),
        jkt.as_bytes(),
    )) {
        return Err(deny(
            Code::DpopKeyMismatch,
            "The DPoP proof is signed by another key than the one the token was issued to: sign proofs with the key the token was obtained with.",
        ));
    }
    // Remembered until the proof's iat leaves the accepted window: no later replay can pass.
    let scope = dpop_replay_scope(&claims.client_id);
    match p
        .replay
        .first_use(&scope, &proof.jti, proof.iat + rules.max_age, now)
    {
        Ok(()) => Ok(()),
        Err(Replay::Replayed) => Err(dpop_replayed()),
        Err(Replay::Full) => Err(Denial {
            code: Code::RateLimited,
            detail: "Too many DPoP proofs of this application are being remembered against replay right now; retry shortly.".into(),
            retry_after: Some(5),
        }),
    }
}

pub(super) fn access_token(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    presented: Presented<'_>,
    issuer: &str,
    now: i64,
    verify: &Verify<'_>,
) -> Result<Allow, Denial> {
    let token = presented.token;
    let (akh, orgh) = (req.names.api_key, req.names.org);
    // Well-formed: the headers that go with an access token.
    let api_key = req.api_key.filter(|k| !k.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {akh} header is missing: send your application's client id (API key) with the access token."))
    })?;
    let org_header = req.org_header.filter(|o| !o.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {orgh} header is missing: send your organization id (like 4F2A9C1B7D3E5A6B8C0D1E2F@Org) with the access token."))
    })?;
    if !three_segments(token) {
        return Err(deny(
            Code::InvalidRequest,
            "The bearer token is not a well-formed JWT (three base64url parts separated by dots).",
        ));
    }

    // Valid.
    let claims = verify(token).map_err(|e| match e {
        TokenError::Malformed | TokenError::Refused(_) => deny(
            Code::InvalidRequest,
            format!("The bearer token is not well-formed: {e}."),
        ),
        TokenError::Expired(exp) => deny(
            Code::TokenExpired,
            format!(
                "The token expired at {}, {} s ago. Request a new token.",
                rfc3339(exp),
                now.abs_diff(exp)
            ),
        ),
        other => deny(
            Code::InvalidToken,
            format!(
                "The token is not valid: {other}. Request a new token from {issuer}/oauth/token."
            ),
        ),
    })?;
    if claims.aud != issuer && claims.aud != resource.id.as_str() {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The token's audience '{}' is neither this server nor this resource; request a token without 'resource' or for this one.",
                short(&claims.aud)
            ),
        ));
    }
    proof_of_possession(req, &claims, &presented, now)?;
    let mut org_inactive = None;
    match check_live(&claims, view) {
        Ok(()) => {}
        Err(e @ (Inactive::OrgDisabled | Inactive::IssuedBeforeOrgDisabled)) => {
            org_inactive = Some(e)
        }
        Err(e) => {
            return Err(deny(
                Code::InvalidToken,
                format!("The token is no longer valid: {e}."),
            ));
        }
    }

    // x-api-key names the client the token was issued to.
    if api_key != claims.client_id {
        let detail = if view.app(api_key).is_none() {
            format!(
                "The {akh} '{}' is not the API key of any application. The token was issued to client '{}'; send that as {akh}.",
                short(api_key),
                claims.client_id
            )
        } else {
            format!(
                "The {akh} '{}' is another application's API key: the token was issued to client '{}'. Send the client id the token belongs to, or a token of '{}'.",
                short(api_key),
                claims.client_id,
                short(api_key)
            )
        };
        return Err(deny(Code::InvalidApiKey, detail));
    }
    if org_header != claims.org {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The {orgh} header '{}' differs from the token's organization '{}'.",
                short(org_header),
                claims.org
            ),
        ));
    }
    if resource.org_id.as_str() != claims.org {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The resource belongs to organization '{}', not to the token's '{}'.",
                resource.org_id, claims.org
            ),
        ));
    }
    match (org_inactive, view.org(&claims.org)) {
        (None, _) => {}
        // The org is active again: the token died with the earlier disabling.
        (Some(Inactive::IssuedBeforeOrgDisabled), Some(o)) if o.status == OrgStatus::Active => {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The token was issued before the organization '{}' was disabled{}; disabling ends every token issued until then, and re-enabling does not bring them back. Request a new token from {issuer}/oauth/token.",
                    claims.org,
                    o.tokens_invalid_before
                        .map(|t| format!(" (at {})", rfc3339(t)))
                        .unwrap_or_default()
                ),
            ));
        }
        (Some(e), _) => {
            return Err(deny(
                Code::OrgDisabled,
                format!("The organization '{}' is not active: {e}.", claims.org),
            ));
        }
    }
    // check_live passed or only the org failed, so the app and the org exist.
    let entry = view.app(&claims.client_id).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            "The application of the token no longer exists.",
        )
    })?;
    if entry.app.dpop_bound_access_tokens && claims.cnf.is_none() {
        return Err(deny(
            Code::DpopDowngrade,
            format!(
                "The application '{}' requires DPoP, and this token is not bound to a key: get a new token with a DPoP proof, and send it as 'Authorization: DPoP <token>'.",
                claims.client_id
            ),
        ));
    }
    let org = active_org(view, &claims.org)?;
    authorize(req, view, resource, entry, org, Some(&claims.scope), None)
}
