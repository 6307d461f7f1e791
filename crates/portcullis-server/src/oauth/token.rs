//! `POST /oauth/token`: the client credentials grant (RFC 6749 section 4.4) and the JWT bearer
//! grant (RFC 7523 section 2.1); clients authenticate with a secret or with `private_key_jwt`
//! (RFC 7523 section 2.2). Reads only the in-memory view: no SQL on this path.
//!
//! A request with a `DPoP` proof header (RFC 9449) gets a token bound to the proof's key
//! (`cnf.jkt`, `token_type: DPoP`); an app set to `dpop_bound_access_tokens` gets no token
//! without one.

use super::client_auth::{authenticate_token_client, claimed_client_id, has_client_auth};
use super::form::OAuthForm;
use crate::problem::OAuthResponseError;
use crate::request::Peer;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::app_jwt::{DeferredJti, Replay};
use portcullis_core::dpop::{Expected, Proof, verify_proof};
use portcullis_core::gateway::{DPOP_LEEWAY, DPOP_MAX_AGE, DPOP_SCOPE_PREFIX, dpop_replay_scope};
use portcullis_core::grant::OAUTH_DEFAULT_TTL;
use portcullis_core::grant::client_assertion::AssertionContext;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::grant::jwt_bearer;
use portcullis_core::oauth_error::OAuthError;
use portcullis_core::token::{AccessClaims, Confirmation};
use portcullis_core::view::View;
use serde::Serialize;

/// RFC 6749 section 5.1.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// The app the token was issued to (not sent: for the usage counts).
    #[serde(skip)]
    pub client_id: String,
}

impl TokenResponse {
    /// The response for a token signed from `claims`: a `DPoP` token when it is bound.
    pub fn new(access_token: String, claims: AccessClaims) -> Self {
        Self {
            access_token,
            token_type: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: claims.exp - claims.iat,
            scope: claims.scope,
            client_id: claims.client_id,
        }
    }
}

pub const CLIENT_CREDENTIALS: &str = "client_credentials";

pub async fn token(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // With a store shared by every node, assertion jtis are recorded there once the
    // grant has otherwise succeeded (the grant itself is synchronous).
    let deferred = state.shared.as_ref().map(|_| DeferredJti::new());
    // Parsed once: the grant, the shared jti check and the audit entry all read it.
    let form = OAuthForm::parse(&headers, &body);
    let (grant, mut result) = match &form {
        Ok(f) => issue(&state, &headers, f, deferred.as_ref()),
        Err(e) => ("invalid", Err(e.clone())),
    };
    if let (Ok(_), Ok(form), Some(shared), Some(deferred)) =
        (&result, &form, &state.shared, &deferred)
    {
        let client_asserted = form.get("client_assertion").is_some();
        if let Err(e) =
            first_use_everywhere(shared, deferred.take(), client_asserted, state.now()).await
        {
            result = Err(e);
        }
    }
    state.metrics.grant(grant, result.is_ok());
    count_usage(&state, &headers, form.as_ref().ok(), grant, &result);
    let nonce = (headers.contains_key("dpop")
        || result.as_ref().is_err_and(|e| e.error == "use_dpop_nonce"))
    .then(|| crate::gateway::dpop_nonce(&state))
    .flatten();
    let mut res = match result {
        Ok(res) => no_store(Json(res).into_response()),
        Err(e) => {
            if e.error == "invalid_client" {
                audit_client_failure(&state, peer, &headers, form.as_ref().ok(), &e);
            }
            OAuthResponseError(e).into_response()
        }
    };
    // With nonces required, every answer to a DPoP request carries the one to use next.
    if let Some(n) = nonce {
        res.headers_mut().insert("dpop-nonce", n);
    }
    res
}

/// The token request's `DPoP` proof, checked (RFC 9449 section 4.3) for a POST to this
/// endpoint; `None` without one. Its `jti` is spent once the client is known
/// ([`bind`]).
fn token_request_proof(
    state: &AppState,
    view: &View,
    headers: &HeaderMap,
    endpoint: &str,
) -> Result<Option<Proof>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof(
            "The request has more than one DPoP header; send exactly one proof.",
        ));
    }
    let proof = first.to_str().map_err(|_| {
        OAuthError::invalid_dpop_proof(
            "The DPoP header is not valid text: send the proof as a compact JWS.",
        )
    })?;
    let want = Expected {
        htm: "POST",
        htu: endpoint,
        now: state.now(),
        max_age: DPOP_MAX_AGE,
        leeway: DPOP_LEEWAY,
        access_token: None,
        nonce: crate::gateway::nonce_rule(state, view),
    };
    verify_proof(proof, &want).map(Some).map_err(|e| {
        let text = e.sentence();
        match e {
            portcullis_core::dpop::ProofError::WrongNonce => OAuthError::use_dpop_nonce(text),
            _ => OAuthError::invalid_dpop_proof(text),
        }
    })
}

/// Bind the token of `claims` to the proof's key, spending the proof's `jti` with the
/// app's other `jti`s; without a proof, refuse an app that requires one.
fn bind(r: &Request<'_>, claims: &mut AccessClaims) -> Result<(), OAuthError> {
    let Some(proof) = r.proof else {
        if r.view
            .app(&claims.client_id)
            .is_some_and(|e| e.app.dpop_bound_access_tokens)
        {
            return Err(OAuthError::invalid_dpop_proof(format!(
                "The application '{}' requires DPoP-bound tokens: send a DPoP header with a proof signed by the client's key (RFC 9449).",
                claims.client_id
            )));
        }
        return Ok(());
    };
    let scope = dpop_replay_scope(&claims.client_id);
    match r
        .ctx
        .replay
        .first_use(&scope, &proof.jti, proof.iat + DPOP_MAX_AGE, r.ctx.now)
    {
        Ok(()) => {}
        Err(Replay::Replayed) => return Err(proof_replayed()),
        Err(Replay::Full) => {
            return Err(OAuthError {
                error: "temporarily_unavailable",
                description: "Too many DPoP proofs of this application are being remembered against replay right now; retry shortly.".into(),
                status: 503,
            });
        }
    }
    claims.cnf = Some(Confirmation {
        jkt: proof.jkt.clone(),
    });
    Ok(())
}

fn proof_replayed() -> OAuthError {
    OAuthError::invalid_dpop_proof(
        "The DPoP proof was used before; a proof is accepted once. Make a new proof, with a fresh jti, for every request.",
    )
}

/// Count the token request: for the app the token went to, or else the one the request
/// claimed (if the view has it); `"issued"` or the OAuth error.
fn count_usage(
    state: &AppState,
    headers: &HeaderMap,
    form: Option<&OAuthForm>,
    grant: &'static str,
    result: &Result<TokenResponse, OAuthError>,
) {
    if !state.usage.enabled() {
        return;
    }
    let view = state.view.get();
    let (client_id, outcome) = match result {
        Ok(t) => (Some(t.client_id.clone()), "issued"),
        Err(e) => (form.and_then(|f| claimed_client_id(headers, f)), e.error),
    };
    let app = client_id.as_deref().and_then(|c| view.app(c));
    state
        .usage
        .grant(state.now(), app.map(|e| &e.app), grant, outcome);
}

/// Queue the audit entry of a failed client authentication at the token endpoint: the
/// client id it claimed (Basic, the form's `client_id`, or a client assertion's
/// unverified `iss`), never the secret.
fn audit_client_failure(
    state: &AppState,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    form: Option<&OAuthForm>,
    e: &OAuthError,
) {
    let claimed = form.and_then(|f| claimed_client_id(headers, f));
    let view = state.view.get();
    let org = claimed
        .as_deref()
        .and_then(|c| view.app(c))
        .map(|a| a.app.org_id.clone());
    let address = crate::request::client_facts(&state.gateway, peer, headers).0;
    let mut entry = crate::audit::failed_auth(
        state.now(),
        crate::audit::claimed_client(claimed.as_deref()),
        "token",
        "/oauth/token".into(),
        org,
        address,
        e.error,
    );
    entry.details.insert(
        "reason".into(),
        serde_json::Value::String(e.description.chars().take(300).collect()),
    );
    state.audit.failure(&state.metrics, entry);
}

/// `Cache-Control: no-store` and `Pragma: no-cache` on a token response (RFC 6749 section 5.1).
pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// Record the assertion `jti`s a grant reached in the shared store; the first one already
/// there makes the request a replay. The client's own assertion comes first when the
/// client authenticated with one (client authentication runs before any grant), and its
/// replay is `invalid_client`, as on a single node; a JWT-bearer assertion's is
/// `invalid_grant`. Without the shared store the request is refused (fail closed).
async fn first_use_everywhere(
    shared: &portcullis_shared::Shared,
    pending: Vec<portcullis_core::app_jwt::PendingJti>,
    client_asserted: bool,
    now: i64,
) -> Result<(), OAuthError> {
    match shared.confirm_first_use(&pending, now).await {
        Ok(None) => Ok(()),
        Ok(Some(i)) if pending[i].scope.starts_with(DPOP_SCOPE_PREFIX) => Err(proof_replayed()),
        Ok(Some(i)) => {
            let text = portcullis_core::grant::assertion::replayed(&pending[i].jti);
            Err(if i == 0 && client_asserted {
                OAuthError::invalid_client(text)
            } else {
                OAuthError::invalid_grant(text)
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "shared store unreachable; refusing an RFC 7523 assertion");
            Err(OAuthError {
                error: "temporarily_unavailable",
                description: "JWT assertions cannot be checked against replay right now (the shared store is unreachable); retry shortly, or authenticate with a client secret.".into(),
                status: 503,
            })
        }
    }
}

/// The grant's metrics label (a fixed set: never the client's text) and the outcome.
fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
    deferred: Option<&DeferredJti>,
) -> (&'static str, Result<TokenResponse, OAuthError>) {
    let grant_type = match form.require("grant_type") {
        Ok(g) => g,
        Err(e) => return ("invalid", Err(e)),
    };
    let view = state.view.get();
    let endpoint = format!("{}/oauth/token", state.issuer);
    let label = match grant_type {
        CLIENT_CREDENTIALS => CLIENT_CREDENTIALS,
        jwt_bearer::GRANT_TYPE => "jwt_bearer",
        _ => "unsupported",
    };
    let proof = match token_request_proof(state, &view, headers, &endpoint) {
        Ok(p) => p,
        Err(e) => return (label, Err(e)),
    };
    let req = Request {
        state,
        view: &view,
        headers,
        form,
        ctx: assertion_context(state, &endpoint, deferred),
        proof: proof.as_ref(),
    };
    match grant_type {
        CLIENT_CREDENTIALS => (CLIENT_CREDENTIALS, client_credentials(req)),
        jwt_bearer::GRANT_TYPE => ("jwt_bearer", jwt_bearer_grant(req)),
        other => (
            "unsupported",
            Err(OAuthError::unsupported_grant_type(format!(
                "The grant type '{}' is not supported here; use 'client_credentials' or '{}'.",
                other.chars().take(80).collect::<String>(),
                jwt_bearer::GRANT_TYPE
            ))),
        ),
    }
}

/// What RFC 7523 assertions are checked against on this server: this node's jti cache,
/// or `deferred` when the jtis go to the shared store afterwards.
pub fn assertion_context<'a>(
    state: &'a AppState,
    token_endpoint: &'a str,
    deferred: Option<&'a DeferredJti>,
) -> AssertionContext<'a> {
    AssertionContext {
        issuer: &state.issuer,
        token_endpoint,
        now: state.now(),
        replay: match deferred {
            Some(d) => d,
            None => &state.jtis,
        },
    }
}

/// One token request, parsed, with what every grant reads.
#[derive(Clone, Copy)]
struct Request<'a> {
    state: &'a AppState,
    view: &'a View,
    headers: &'a HeaderMap,
    form: &'a OAuthForm,
    ctx: AssertionContext<'a>,
    /// The request's DPoP proof, checked; its `jti` not yet spent.
    proof: Option<&'a Proof>,
}

fn client_credentials(r: Request<'_>) -> Result<TokenResponse, OAuthError> {
    let client = authenticate_token_client(r.view, r.headers, r.form, r.ctx)?;
    let claims = grant(
        r.view,
        &client,
        r.form.get("scope"),
        grant_context(r.state, r.ctx.now),
    )?;
    respond(r, claims, client.secret_id())
}

fn jwt_bearer_grant(r: Request<'_>) -> Result<TokenResponse, OAuthError> {
    let assertion = r.form.require("assertion")?;
    // RFC 7523 section 3.1: client authentication is optional; when present it must succeed.
    let client = if has_client_auth(r.headers, r.form) {
        Some(authenticate_token_client(r.view, r.headers, r.form, r.ctx)?)
    } else {
        None
    };
    let proven = jwt_bearer::authorize(r.view, assertion, client.as_ref(), r.ctx)?;
    let claims = grant(
        r.view,
        &proven,
        r.form.get("scope"),
        grant_context(r.state, r.ctx.now),
    )?;
    respond(r, claims, client.as_ref().and_then(|c| c.secret_id()))
}

fn grant_context(state: &AppState, now: i64) -> GrantContext<'_> {
    GrantContext {
        issuer: &state.issuer,
        now,
        default_ttl: OAUTH_DEFAULT_TTL,
    }
}

fn respond(
    r: Request<'_>,
    mut claims: AccessClaims,
    secret_used: Option<&portcullis_core::ids::RecordId>,
) -> Result<TokenResponse, OAuthError> {
    if let Some(resource) = r.form.get("resource") {
        claims.aud = check_resource(resource)?.to_owned();
    }
    bind(&r, &mut claims)?;
    let access_token = sign(r.view, &claims)?;
    if let Some(id) = secret_used {
        r.state.note_secret_use(id, claims.iat);
    }
    Ok(TokenResponse::new(access_token, claims))
}

/// Sign `claims` with the current signing key. A bearer token (no `cnf`) of an app that
/// requires DPoP is refused: every surface but this endpoint with a proof makes those,
/// and the gateway would refuse it anyway.
pub fn sign(view: &View, claims: &AccessClaims) -> Result<String, OAuthError> {
    if claims.cnf.is_none()
        && view
            .app(&claims.client_id)
            .is_some_and(|e| e.app.dpop_bound_access_tokens)
    {
        return Err(OAuthError::invalid_dpop_proof(format!(
            "The application '{}' requires DPoP-bound tokens: obtain them at POST /oauth/token with a DPoP header holding a proof of the client's key.",
            claims.client_id
        )));
    }
    let signer = view.signer().ok_or_else(|| OAuthError {
        error: "temporarily_unavailable",
        description: "The server has no signing key yet; try again shortly.".into(),
        status: 503,
    })?;
    let token = signer.sign(claims);
    tracing::debug!(client_id = %claims.client_id, jti = %claims.jti, "issued access token");
    Ok(token)
}

/// RFC 8707 section 2: the resource must be an absolute URI without a fragment.
fn check_resource(r: &str) -> Result<&str, OAuthError> {
    let ok = (r.starts_with("https://") || r.starts_with("http://"))
        && !r.contains('#')
        && r.len() <= 2048
        && !r.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(r)
    } else {
        Err(OAuthError {
            error: "invalid_target",
            description:
                "The 'resource' must be an absolute http(s) URI without a fragment (RFC 8707)."
                    .into(),
            status: 400,
        })
    }
}
