//! The gateway decision (API.md §2): may this request reach this resource, and if not,
//! exactly why and how to fix it.
//!
//! [`decide`] is a pure function of the request's credentials, the [`View`] and the
//! clock. The first failing check answers, in the order API.md fixes: well-formed (0500)
//! → token valid (0502, then 0503 for a valid but expired token) → `x-api-key` (403003) →
//! org header (PCS-0403) → org active (PCS-0401) → product (0504) → scope (0505) →
//! sandbox (0506 for writes, PCS-0407 for reads). Failure limits (before everything) and
//! request quotas (after everything) wrap this function: see [`crate::limits`].
//!
//! Presentations: a Portcullis access token (`Authorization: Bearer` + `x-api-key` + org
//! header), `userKey` + `secret` (over TLS only), an app-signed JWT (`Authorization:
//! Bearer` with a JWT the app signed with one of its key pairs, seed 003), or none at all
//! on a resource that allows unauthenticated calls.
//!
//! **Which bearer is which.** Portcullis's access tokens always carry `typ: at+jwt` and a
//! `kid` of the server's signing keys. A bearer JWT whose header has another (or no)
//! `typ` and whose `kid` is not a signing key is app-signed: its `kid` names an app key
//! ([`crate::app_jwt::verify_by_kid`] finds the app, checks the key's one algorithm and
//! the signature). Its claims: `iat` required, within ±[`APP_JWT_MAX_SKEW`] s of now;
//! `jti` required and never seen before (the [`ReplayCache`] passed in, per app, held
//! until the JWT could not be accepted anyway); `exp` and `nbf` optional, checked with
//! [`APP_JWT_LEEWAY`] s leeway; `aud` optional, but when present the issuer or the
//! resource id. The credential names the app, so `x-api-key` and the org header are
//! optional and must match when present, as with `userKey` + `secret`; the effective
//! scopes are the app's live scopes. App-signed JWTs are single-use, so they never go
//! through the verified-token cache.

use crate::app_jwt::{AppJwtError, JtiCheck, Replay, ReplayCache, verify_by_kid};
use crate::grant::client_auth::match_secret;
use crate::ids::RecordId;
use crate::introspect::{Inactive, check_live};
use crate::model::{AppStatus, Org, OrgStatus, Resource, SandboxAccess};
use crate::secret::{Secret, SecretKind};
use crate::token::{AccessClaims, TokenError, verify_access_token};
use crate::view::AppEntry;
use crate::view::View;
use std::sync::Arc;

/// A denial code of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidRequest,
    InvalidToken,
    TokenExpired,
    MissingProductContext,
    InsufficientScope,
    SandboxNotWritable,
    InvalidApiKey,
    OrgDisabled,
    OrgMismatch,
    SandboxNotAccessible,
    /// Over a failure limit or the app's request quota; `Retry-After` says when to retry.
    RateLimited,
    /// Not in the seeds' catalogue: the proxy named a resource this server does not know.
    UnknownResource,
}

impl Code {
    /// The stable code, always a string.
    pub fn code(self) -> &'static str {
        match self {
            Code::InvalidRequest => "EXEG-0500-401",
            Code::InvalidToken => "EXEG-0502-401",
            Code::TokenExpired => "EXEG-0503-401",
            Code::MissingProductContext => "EXEG-0504-401",
            Code::InsufficientScope => "EXEG-0505-401",
            Code::SandboxNotWritable => "EXEG-0506-401",
            Code::InvalidApiKey => "403003",
            Code::OrgDisabled => "PCS-0401-401",
            Code::OrgMismatch => "PCS-0403-403",
            Code::SandboxNotAccessible => "PCS-0407-403",
            Code::RateLimited => "PCS-0429-429",
            Code::UnknownResource => "PCS-0404-404",
        }
    }
    pub fn status(self) -> u16 {
        match self {
            Code::InvalidApiKey | Code::OrgMismatch | Code::SandboxNotAccessible => 403,
            Code::UnknownResource => 404,
            Code::RateLimited => 429,
            _ => 401,
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Code::InvalidRequest | Code::InvalidToken | Code::TokenExpired => {
                "Invalid authorization token"
            }
            Code::MissingProductContext => "Required product context is missing",
            Code::InsufficientScope => "Required authorization token scope is missing",
            Code::SandboxNotWritable => "Sandbox not accessible for write",
            Code::InvalidApiKey => "Api Key is invalid",
            Code::OrgDisabled => "Organization is not active",
            Code::OrgMismatch => "Organization mismatch",
            Code::SandboxNotAccessible => "Sandbox not accessible",
            Code::RateLimited => "Too many requests",
            Code::UnknownResource => "Unknown resource",
        }
    }
    /// `type` is `urn:portcullis:error:<slug>`.
    pub fn slug(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid-request",
            Code::InvalidToken => "invalid-token",
            Code::TokenExpired => "token-expired",
            Code::MissingProductContext => "missing-product-context",
            Code::InsufficientScope => "insufficient-scope",
            Code::SandboxNotWritable => "sandbox-not-writable",
            Code::InvalidApiKey => "invalid-api-key",
            Code::OrgDisabled => "org-disabled",
            Code::OrgMismatch => "org-mismatch",
            Code::SandboxNotAccessible => "sandbox-not-accessible",
            Code::RateLimited => "rate-limited",
            Code::UnknownResource => "unknown-resource",
        }
    }

    /// A failed authentication, counted by the failure limits: the credential was
    /// malformed, wrong, or not the one named. Expiry is not counted (clients legitimately
    /// use a token until it expires), nor are authorization refusals.
    pub fn is_auth_failure(self) -> bool {
        matches!(
            self,
            Code::InvalidRequest | Code::InvalidToken | Code::InvalidApiKey
        )
    }

    /// Every code, in the catalogue's order (for metrics and docs).
    pub const ALL: [Code; 12] = [
        Code::InvalidRequest,
        Code::InvalidToken,
        Code::TokenExpired,
        Code::MissingProductContext,
        Code::InsufficientScope,
        Code::SandboxNotWritable,
        Code::InvalidApiKey,
        Code::OrgDisabled,
        Code::OrgMismatch,
        Code::SandboxNotAccessible,
        Code::RateLimited,
        Code::UnknownResource,
    ];
}

/// A refusal: the code and a detail for people (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: Code,
    pub detail: String,
    /// Seconds until a retry can succeed (rate limits only).
    pub retry_after: Option<u64>,
}

impl Denial {
    /// The problem+json body (API.md §1) every surface answers this denial with: the
    /// gateway, and `portcullis-verify` in API services.
    pub fn problem(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "type": format!("urn:portcullis:error:{}", self.code.slug()),
            "status": self.code.status(),
            "title": self.code.title(),
            "code": self.code.code(),
            "detail": self.detail,
        });
        if self.code == Code::InvalidApiKey {
            // The Adobe I/O seed's own members.
            body["error_code"] = "403003".into();
            body["message"] = "Api Key is invalid".into();
        }
        body
    }
}

pub(crate) fn deny(code: Code, detail: impl Into<String>) -> Denial {
    Denial {
        code,
        detail: detail.into(),
        retry_after: None,
    }
}

/// What passes upstream when the request is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub client_id: Option<String>,
    pub org: Option<String>,
    /// The effective scopes, space-separated.
    pub scope: String,
    pub authenticated: bool,
    /// The client secret that authenticated a `userKey` + `secret` call, so the server
    /// can record its last use.
    pub secret_id: Option<RecordId>,
}

/// The credentials and context of one request, as the proxy forwarded them.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckRequest<'a> {
    pub resource: Option<&'a str>,
    /// The original method (from `X-Forwarded-Method` or the request itself).
    pub method: &'a str,
    /// Always a write, whatever the method (the Edge intake endpoints).
    pub always_write: bool,
    pub authorization: Option<&'a str>,
    /// An `Authentication:` header was sent (seed 002's typo for `Authorization:`).
    pub authentication: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub org_header: Option<&'a str>,
    /// `userKey` (the app's client id), from the `x-user-key` header, a form field or the
    /// original URI's query.
    pub user_key: Option<&'a str>,
    /// `secret` (one of the app's client secrets), from wherever `user_key` came from.
    pub user_secret: Option<&'a str>,
    /// The request came over TLS (or through a trusted proxy that says so), or the operator
    /// allowed secrets over plain HTTP: `userKey` + `secret` may be used.
    pub secrets_allowed: bool,
    /// The names of the `x-api-key` and org headers on this server (configurable), for
    /// details that tell people what to send.
    pub names: HeaderNames<'a>,
}

/// The configurable header names of API.md §2.
#[derive(Debug, Clone, Copy)]
pub struct HeaderNames<'a> {
    pub api_key: &'a str,
    pub org: &'a str,
}

impl Default for HeaderNames<'_> {
    fn default() -> Self {
        Self {
            api_key: API_KEY_HEADER,
            org: ORG_HEADER,
        }
    }
}

impl CheckRequest<'_> {
    /// API.md §2: a write is any method but GET, HEAD and OPTIONS.
    pub fn is_write(&self) -> bool {
        self.always_write
            || !["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|m| self.method.eq_ignore_ascii_case(m))
    }
}

/// Header names, for details that tell people what to send (the server's defaults).
pub const API_KEY_HEADER: &str = "x-api-key";
pub const ORG_HEADER: &str = "x-gw-ims-org-id";
pub const USER_KEY_HEADER: &str = "x-user-key";
pub const USER_SECRET_HEADER: &str = "x-user-secret";

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Unix seconds as RFC 3339 text, for messages.
pub(crate) fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Decide one request. `issuer` is this server's; `now` unix seconds.
///
/// For one-off questions (the CLI's `explain`, tests): it remembers no app-signed JWT's
/// `jti` across calls, so it cannot tell a replay. Servers use [`decide_with`].
pub fn decide(
    req: &CheckRequest<'_>,
    view: &View,
    issuer: &str,
    now: i64,
) -> Result<Allow, Denial> {
    let replay = ReplayCache::new(1);
    decide_with(
        req,
        view,
        issuer,
        now,
        &|token| verify_access_token(token, |kid| view.key(kid), issuer, now).map(Arc::new),
        &replay,
    )
}

/// How an access token's signature, issuer and expiry are checked: directly, or through a
/// [`crate::token_cache::VerifiedTokenCache`].
pub type Verify<'a> = dyn Fn(&str) -> Result<Arc<AccessClaims>, TokenError> + 'a;

/// [`decide`] with the access-token verification supplied (the server passes its
/// verified-token cache) and the `jti`s of app-signed JWTs remembered in `replay` (the
/// server's, shared by all its requests).
pub fn decide_with(
    req: &CheckRequest<'_>,
    view: &View,
    issuer: &str,
    now: i64,
    verify: &Verify<'_>,
    replay: &dyn JtiCheck,
) -> Result<Allow, Denial> {
    let resource_id = req.resource.ok_or_else(|| {
        deny(
            Code::UnknownResource,
            "No resource named: pass ?resource=<id>, the x-portcullis-resource header, or /gateway/v1/check/<id>.",
        )
    })?;
    let resource = view.resource(resource_id).ok_or_else(|| {
        deny(
            Code::UnknownResource,
            format!(
                "No resource '{}' on this server; check the proxy's configuration.",
                short(resource_id)
            ),
        )
    })?;

    let (akh, orgh) = (req.names.api_key, req.names.org);
    let key_presented = req.user_key.is_some() || req.user_secret.is_some();
    match (req.authorization, key_presented) {
        (Some(_), true) => Err(deny(
            Code::InvalidRequest,
            "The request presents both an Authorization header and userKey/secret; send one credential.",
        )),
        (Some(authorization), false) => {
            let token = bearer(authorization)?;
            if is_app_signed(token, view) {
                app_signed(req, view, resource, token, issuer, now, replay)
            } else {
                access_token(req, view, resource, token, issuer, now, verify)
            }
        }
        (None, true) => key_and_secret(req, view, resource, now),
        (None, false) => {
            if let Some(value) = req.authentication {
                let hint = if value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("bearar ")
                {
                    " and the scheme is spelled 'Bearer'"
                } else {
                    ""
                };
                return Err(deny(
                    Code::InvalidRequest,
                    format!(
                        "The request has an 'Authentication' header; the header is 'Authorization'{hint}: send 'Authorization: Bearer <token>'."
                    ),
                ));
            }
            if resource.allow_unauthenticated {
                return Ok(Allow {
                    client_id: None,
                    org: None,
                    scope: String::new(),
                    authenticated: false,
                    secret_id: None,
                });
            }
            Err(deny(
                Code::InvalidRequest,
                format!(
                    "This resource needs credentials: send 'Authorization: Bearer <access token>' with the {akh} and {orgh} headers, or your client id and secret in the {USER_KEY_HEADER} and {USER_SECRET_HEADER} headers (over TLS)."
                ),
            ))
        }
    }
}

/// The token of `Bearer <token>`, or why the header is not that.
fn bearer(value: &str) -> Result<&str, Denial> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        let t = rest.trim();
        if t.is_empty() {
            return Err(deny(
                Code::InvalidRequest,
                "The Authorization header has no token after 'Bearer'.",
            ));
        }
        return Ok(t);
    }
    if scheme.eq_ignore_ascii_case("bearar") {
        return Err(deny(
            Code::InvalidRequest,
            "The Authorization scheme is misspelled 'Bearar'; it is 'Bearer': send 'Authorization: Bearer <token>'.",
        ));
    }
    Err(deny(
        Code::InvalidRequest,
        format!(
            "The Authorization scheme '{}' is not supported; send 'Authorization: Bearer <token>'.",
            short(scheme)
        ),
    ))
}

fn access_token(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    token: &str,
    issuer: &str,
    now: i64,
    verify: &Verify<'_>,
) -> Result<Allow, Denial> {
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
    let org = active_org(view, &claims.org)?;
    authorize(req, view, resource, entry, org, Some(&claims.scope), None)
}

/// `userKey` + `secret` (seed 003): the credential names the app; `x-api-key` and the org
/// header are optional but must match when present.
fn key_and_secret(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    now: i64,
) -> Result<Allow, Denial> {
    // Well-formed.
    let (Some(user_key), Some(secret)) = (
        req.user_key.filter(|k| !k.is_empty()),
        req.user_secret.filter(|s| !s.is_empty()),
    ) else {
        return Err(deny(
            Code::InvalidRequest,
            format!(
                "userKey and secret go together: send your client id in {USER_KEY_HEADER} and one of its client secrets in {USER_SECRET_HEADER}."
            ),
        ));
    };
    if !req.secrets_allowed {
        return Err(deny(
            Code::InvalidRequest,
            "A client secret may only be sent over TLS: call this API over https (the secret you sent in plain text may have been seen; consider rotating it).",
        ));
    }
    let presented = Secret::parse(SecretKind::ClientSecret, secret).map_err(|e| {
        deny(
            Code::InvalidRequest,
            format!("The secret is not well-formed: {e}."),
        )
    })?;

    // Valid.
    let entry = view.app(user_key).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!(
                "No application has the client id (userKey) '{}'; check it in the console or the admin API.",
                short(user_key)
            ),
        )
    })?;
    let hash_key = view
        .hash_key()
        .ok_or_else(|| deny(Code::InvalidToken, "Client secrets cannot be checked yet."))?;
    let secret_id = match_secret(entry, hash_key, &presented, now).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!(
                "The secret does not match any active secret of the application '{}'. It may have been deleted or expired; create a new one.",
                entry.app.client_id
            ),
        )
    })?;
    active_app(entry)?;
    let org = named_app(req, view, resource, entry, "the userKey names")?;
    authorize(req, view, resource, entry, org, None, Some(secret_id))
}

/// 0502 unless the app is active.
fn active_app(entry: &AppEntry) -> Result<(), Denial> {
    if entry.app.status == AppStatus::Active {
        return Ok(());
    }
    Err(deny(
        Code::InvalidToken,
        format!(
            "The application '{}' is suspended; an administrator of its organization can reactivate it.",
            entry.app.client_id
        ),
    ))
}

/// For credentials that name their app (`userKey` + `secret`, an app-signed JWT): the
/// optional `x-api-key` (403003) and org header (PCS-0403) must name the same app and
/// org, the resource must be in that org (PCS-0403), and the org active (PCS-0401).
/// `credential` says, for the detail, what named the app.
fn named_app<'v>(
    req: &CheckRequest<'_>,
    view: &'v View,
    resource: &Resource,
    entry: &AppEntry,
    credential: &str,
) -> Result<&'v Org, Denial> {
    let (akh, orgh) = (req.names.api_key, req.names.org);
    if let Some(api_key) = req.api_key.filter(|k| !k.is_empty())
        && api_key != entry.app.client_id.as_str()
    {
        return Err(deny(
            Code::InvalidApiKey,
            format!(
                "The {akh} '{}' is not the client id '{}' that {credential}; send that client id as {akh}, or leave {akh} out.",
                short(api_key),
                entry.app.client_id
            ),
        ));
    }
    let app_org = entry.app.org_id.as_str();
    if let Some(org_header) = req.org_header.filter(|o| !o.is_empty())
        && org_header != app_org
    {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The {orgh} header '{}' differs from the application's organization '{app_org}'.",
                short(org_header)
            ),
        ));
    }
    if resource.org_id.as_str() != app_org {
        return Err(deny(
            Code::OrgMismatch,
            format!(
                "The resource belongs to organization '{}', not to the application's '{app_org}'.",
                resource.org_id
            ),
        ));
    }
    active_org(view, app_org)
}

/// How far an app-signed JWT's `iat` may be from now, either way (API.md §2, Time).
pub const APP_JWT_MAX_SKEW: i64 = 300;
/// Leeway on an app-signed JWT's `exp` and `nbf` (API.md §2, Time).
pub const APP_JWT_LEEWAY: i64 = 60;

const FRESH_JWT: &str = "sign a new JWT with iat = now and a fresh jti for every request";

/// The JOSE header of a compact JWS, if its first part is base64url JSON (nothing is
/// verified: this only tells the presentations apart, and names what is wrong).
fn raw_header(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let first = token.split('.').next()?;
    if first.len() > crate::app_jwt::MAX_LEN {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A bearer JWT is app-signed when its header does not say `typ: at+jwt` and its `kid`
/// is not one of the server's signing keys. A bearer whose header is not JSON stays on
/// the access-token path, which explains it.
/// Whether `token` has the three dot-separated parts of a JWS compact serialization
/// (two `memchr` passes over the token; it runs on every bearer request).
fn three_segments(token: &str) -> bool {
    token
        .split_once('.')
        .and_then(|(_, rest)| rest.split_once('.'))
        .is_some_and(|(_, last)| !last.contains('.'))
}

pub fn is_app_signed(token: &str, view: &View) -> bool {
    // The common case, answered without decoding: a header exactly as our signer writes
    // it is one of our access tokens (whose shape access_token checks).
    if token
        .split_once('.')
        .is_some_and(|(h, _)| view.is_access_token_header(h))
    {
        return false;
    }
    if !three_segments(token) {
        return false;
    }
    let Some(h) = raw_header(token) else {
        return false;
    };
    let typ = h.get("typ").and_then(|t| t.as_str()).unwrap_or("");
    let access_typ =
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt");
    let server_kid = h
        .get("kid")
        .and_then(|k| k.as_str())
        .is_some_and(|k| view.key(k).is_some());
    !access_typ && !server_kid
}

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds, fractions dropped.
fn numeric_date(claims: &serde_json::Value, name: &str) -> Result<Option<i64>, Denial> {
    match claims.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| {
                deny(
                    Code::InvalidRequest,
                    format!("The JWT's '{name}' claim is not a number of seconds since 1970 (RFC 7519 NumericDate)."),
                )
            }),
    }
}

/// An app-signed bearer JWT (seed 003): the key its `kid` names says which app it is.
fn app_signed(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    token: &str,
    issuer: &str,
    now: i64,
    replay: &dyn JtiCheck,
) -> Result<Allow, Denial> {
    // Well-formed and signed by the app key it names, under that key's algorithm only.
    let alg = raw_header(token)
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if !["RS256", "ES256"].contains(&alg.as_str()) {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The JWT's alg '{}' is not allowed: sign app JWTs with your key pair's algorithm (RS256 or ES256).",
                short(&alg)
            ),
        ));
    }
    let (claims, entry, _key) =
        verify_by_kid::<serde_json::Value>(token, view, now).map_err(|e| match e {
            AppJwtError::Malformed => deny(
                Code::InvalidRequest,
                "The bearer JWT is not well-formed: a JWS of base64url JSON header and claims, signed with your key pair's private key.",
            ),
            AppJwtError::NoKid => deny(
                Code::InvalidRequest,
                "The bearer JWT's header has no 'kid': set it to the kid of the application key pair that signs it (or, for a Portcullis access token, send it unchanged).",
            ),
            AppJwtError::UnknownKid(kid) => deny(
                Code::InvalidToken,
                format!(
                    "No application key has the kid '{kid}': it may have been deleted (with its app); create a key pair and sign with its private key, setting the header's kid to its kid."
                ),
            ),
            other => deny(
                Code::InvalidToken,
                format!("The app-signed JWT is not valid: {other}."),
            ),
        })?;
    if !claims.is_object() {
        return Err(deny(
            Code::InvalidRequest,
            "The bearer JWT's claims are not a JSON object.",
        ));
    }
    let client_id = entry.app.client_id.as_str();

    // Valid: fresh, in its time window, for us, and never seen.
    let iat = numeric_date(&claims, "iat")?.ok_or_else(|| {
        deny(
            Code::InvalidToken,
            format!("The app-signed JWT has no 'iat' claim: {FRESH_JWT}."),
        )
    })?;
    if now.abs_diff(iat) > APP_JWT_MAX_SKEW.unsigned_abs() {
        let when = if iat > now {
            format!("{} s in the future", iat.abs_diff(now))
        } else {
            format!("{} s ago", now.abs_diff(iat))
        };
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT was issued at {} ({when}); it must be within {APP_JWT_MAX_SKEW} s of the server's time: {FRESH_JWT} (and check the clock of the machine that signs).",
                rfc3339(iat)
            ),
        ));
    }
    if let Some(exp) = numeric_date(&claims, "exp")?
        && now > exp.saturating_add(APP_JWT_LEEWAY)
    {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT expired at {}, {} s ago: {FRESH_JWT}.",
                rfc3339(exp),
                now.abs_diff(exp)
            ),
        ));
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")?
        && nbf > now.saturating_add(APP_JWT_LEEWAY)
    {
        return Err(deny(
            Code::InvalidToken,
            format!(
                "The app-signed JWT is not valid before {} ('nbf', {} s from now): {FRESH_JWT}.",
                rfc3339(nbf),
                nbf.abs_diff(now)
            ),
        ));
    }
    // One JWT, one use: an app-signed bearer JWT is addressed to a resource (or to
    // nothing); one addressed to this server or its token endpoint is an RFC 7523
    // assertion, and a service-account JWT names `<issuer>/c/<client>`. Neither is good here.
    if let Some(aud) = claims.get("aud") {
        let auds: Vec<&str> = match aud {
            serde_json::Value::Array(list) => list.iter().filter_map(|a| a.as_str()).collect(),
            one => one.as_str().into_iter().collect(),
        };
        if auds.iter().any(|a| a.starts_with(issuer)) {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The JWT's 'aud' names this server ('{}'): it is a token-endpoint assertion or a service-account JWT, not an app-signed bearer JWT. Sign a separate JWT for the API with 'aud' set to this resource ('{}') or left out.",
                    short(
                        auds.iter()
                            .find(|a| a.starts_with(issuer))
                            .copied()
                            .unwrap_or("")
                    ),
                    resource.id
                ),
            ));
        }
        if !auds.contains(&resource.id.as_str()) {
            return Err(deny(
                Code::InvalidToken,
                format!(
                    "The app-signed JWT's 'aud' is not this resource ('{}'): set it to the resource id, or leave it out.",
                    resource.id
                ),
            ));
        }
    }
    let jti = claims
        .get("jti")
        .and_then(|j| j.as_str())
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| {
            deny(
                Code::InvalidToken,
                format!(
                    "The app-signed JWT has no 'jti' claim (a unique string of at most 256 characters, like a UUID): {FRESH_JWT}."
                ),
            )
        })?;
    active_app(entry)?;
    // Remembered until the JWT's iat leaves the accepted window: no later replay can pass.
    match replay.first_use(client_id, jti, iat + APP_JWT_MAX_SKEW, now) {
        Ok(()) => {}
        Err(Replay::Replayed) => return Err(replayed()),
        Err(Replay::Full) => {
            return Err(Denial {
                code: Code::RateLimited,
                detail: "Too many app-signed JWTs are being remembered against replay right now; retry shortly.".into(),
                retry_after: Some(5),
            });
        }
    }

    let org = named_app(
        req,
        view,
        resource,
        entry,
        "the JWT's signing key belongs to",
    )?;
    authorize(req, view, resource, entry, org, None, None)
}

/// The refusal of an app-signed JWT whose `jti` was seen before (by this node, another
/// node or a verifier sharing the replay store).
pub fn replayed() -> Denial {
    deny(
        Code::InvalidToken,
        format!("The app-signed JWT was already used (its jti was seen before): {FRESH_JWT}."),
    )
}

fn active_org<'v>(view: &'v View, id: &str) -> Result<&'v Org, Denial> {
    view.org(id)
        .map(|o| &**o)
        .filter(|o| o.status == OrgStatus::Active)
        .ok_or_else(|| {
            deny(
                Code::OrgDisabled,
                format!("The organization '{id}' is not active; a platform administrator can reactivate it."),
            )
        })
}

/// The checks every presentation shares once the app is known and its org active:
/// product (0504) → scope (0505) → sandbox (0506 / PCS-0407).
///
/// `token_scopes` is the token's `scope` for token presentations (the effective scopes
/// are its intersection with the app's live scopes); `None` for key + secret, whose
/// effective scopes are the app's live scopes.
fn authorize(
    req: &CheckRequest<'_>,
    view: &View,
    resource: &Resource,
    entry: &AppEntry,
    org: &Org,
    token_scopes: Option<&str>,
    secret_id: Option<RecordId>,
) -> Result<Allow, Denial> {
    let client_id = entry.app.client_id.as_str();

    // Product context.
    if let Some(product) = &resource.product {
        if !org.products.contains(product) {
            return Err(deny(
                Code::MissingProductContext,
                format!(
                    "The organization '{}' is not entitled to the product '{product}' this resource needs; a platform administrator adds it to the organization's products.",
                    org.id
                ),
            ));
        }
        if !entry.app.products.contains(product) {
            return Err(deny(
                Code::MissingProductContext,
                format!(
                    "The application '{client_id}' is not added to the product '{product}'; add it to the app's products (PATCH /admin/v1/apps/{client_id})."
                ),
            ));
        }
    }

    // Scopes: the token's (its space-separated claim), narrowed to what the app holds
    // now. Answered without building sets: this runs on every request.
    let live = view.scopes_of(&entry.app);
    let in_token = |s: &str| token_scopes.is_none_or(|t| t.split(' ').any(|x| x == s));
    let missing: Vec<&str> = resource
        .scopes
        .iter()
        .map(|s| s.as_str())
        .filter(|s| !(live.contains(s) && in_token(s)))
        .collect();
    if !missing.is_empty() {
        let detail = match token_scopes {
            Some(_) => {
                let how = if missing.iter().all(|n| in_token(n)) {
                    "the application no longer holds it; add it to the app or its permission group"
                } else {
                    "request a token with it (the app must hold it: add it to the app or its permission group if not)"
                };
                format!(
                    "The token lacks the scope(s) '{}' this resource requires: {how}.",
                    missing.join(" ")
                )
            }
            None => format!(
                "The application '{client_id}' lacks the scope(s) '{}' this resource requires; add them to the app or its permission group.",
                missing.join(" ")
            ),
        };
        return Err(deny(Code::InsufficientScope, detail));
    }
    let mut scope = String::new();
    for s in live.iter().map(|s| s.as_str()).filter(|s| in_token(s)) {
        if !scope.is_empty() {
            scope.push(' ');
        }
        scope.push_str(s);
    }

    // Sandbox.
    let access = entry.app.sandboxes.get(&resource.sandbox).copied();
    if req.is_write() {
        if access != Some(SandboxAccess::Write) {
            return Err(deny(
                Code::SandboxNotWritable,
                format!(
                    "The application has no write access to the sandbox '{}'; grant it 'write' in the app's sandboxes.",
                    resource.sandbox
                ),
            ));
        }
    } else if access.is_none() {
        return Err(deny(
            Code::SandboxNotAccessible,
            format!(
                "The application has no access to the sandbox '{}'; grant it 'read' or 'write' in the app's sandboxes.",
                resource.sandbox
            ),
        ));
    }

    Ok(Allow {
        client_id: Some(client_id.to_owned()),
        org: Some(org.id.as_str().to_owned()),
        scope,
        authenticated: true,
        secret_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, OrgId, RecordId, TechAccountId};
    use crate::model::{App, AppKey, AppKeySource, AppStatus, Org, SecretRecord};
    use crate::scope::ScopeSet;
    use crate::secret::{HashKey, SecretHash};
    use crate::token::{AccessClaims, Alg, Signer, VerifyKey, generate_key, new_jti};
    use crate::view::AppEntry;
    use crate::view::AppKeyEntry;
    use serde_json::json;

    const ISS: &str = "http://portcullis.test";
    const NOW: i64 = 1_800_000_000;

    struct Fixture {
        view: View,
        signer: Signer,
        /// The main app's key pair (its kid is an app key in the view).
        app_signer: Signer,
        app: App,
        other_app: ClientId,
        resource: Resource,
        secret_id: RecordId,
        /// The main app's client secret.
        secret: Secret,
    }

    fn fixture() -> Fixture {
        let org = Org {
            id: OrgId::generate(),
            name: "o".into(),
            status: OrgStatus::Active,
            products: ["events".to_owned()].into(),
            sandboxes: ["prod".to_owned(), "dev".to_owned()].into(),
            created_at: 0,
            tokens_invalid_before: None,
        };
        let app = |scopes: &str| App {
            client_id: ClientId::generate(),
            org_id: org.id.clone(),
            name: "a".into(),
            status: AppStatus::Active,
            technical_account_id: TechAccountId::generate(),
            products: ["events".to_owned()].into(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            group_id: None,
            sandboxes: [("prod".to_owned(), SandboxAccess::Read)].into(),
            token_ttl_seconds: None,
            quota: None,
            created_at: 0,
            tokens_invalid_before: None,
        };
        let main = app("read write");
        let other = app("read");
        let secret_id = RecordId::generate("sec");
        let secret = Secret::generate(SecretKind::ClientSecret);
        let hash_key = HashKey::from_bytes(&[7; 32]);
        let mut view = View::default();
        view.set_hash_key(hash_key.clone());
        view.upsert_org(org.clone());
        let app_kid = RecordId::generate("key");
        let app_key = generate_key(Alg::ES256, app_kid.as_str()).unwrap();
        for a in [&main, &other] {
            let keys = if a.client_id == main.client_id {
                vec![AppKeyEntry {
                    key: AppKey {
                        id: app_kid.clone(),
                        client_id: a.client_id.clone(),
                        alg: Alg::ES256,
                        public_jwk: app_key.public_jwk.clone(),
                        source: AppKeySource::KeyPair,
                        created_at: 0,
                    },
                    verify: Arc::new(
                        VerifyKey::from_jwk(Alg::ES256, app_key.public_jwk.clone()).unwrap(),
                    ),
                }]
            } else {
                vec![]
            };
            view.upsert_app(AppEntry {
                app: a.clone(),
                secrets: vec![SecretRecord {
                    id: secret_id.clone(),
                    client_id: a.client_id.clone(),
                    prefix: "pcss_x".into(),
                    hash: if a.client_id == main.client_id {
                        secret.hash(&hash_key)
                    } else {
                        SecretHash([0; 32])
                    },
                    created_at: 0,
                    expires_at: None,
                }]
                .into(),
                keys: keys.into(),
            });
        }
        let resource = Resource {
            id: RecordId::generate("res"),
            org_id: org.id.clone(),
            name: "stream".into(),
            sandbox: "prod".into(),
            product: Some("events".into()),
            scopes: ScopeSet::parse("read").unwrap(),
            allow_unauthenticated: false,
            cors_origins: vec![],
            created_at: 0,
        };
        view.upsert_resource(resource.clone());
        let g = generate_key(Alg::ES256, "k1").unwrap();
        let vk = VerifyKey::from_jwk(Alg::ES256, g.public_jwk).unwrap();
        view.set_keys(vec![vk], None);
        Fixture {
            view,
            signer: Signer::from_pkcs8("k1", Alg::ES256, &g.pkcs8).unwrap(),
            app_signer: Signer::from_pkcs8(app_kid.as_str(), Alg::ES256, &app_key.pkcs8).unwrap(),
            other_app: other.client_id.clone(),
            app: main,
            resource,
            secret_id,
            secret,
        }
    }

    impl Fixture {
        fn token(&self, scope: &str, exp: i64) -> String {
            self.signer.sign(&AccessClaims {
                iss: ISS.into(),
                sub: self.app.technical_account_id.to_string(),
                aud: ISS.into(),
                client_id: self.app.client_id.to_string(),
                org: self.app.org_id.to_string(),
                scope: scope.into(),
                iat: NOW - 10,
                exp,
                jti: new_jti(),
                cred: Some(self.secret_id.to_string()),
            })
        }
        fn check(&self, method: &str, authorization: Option<&str>) -> Result<Allow, Denial> {
            self.check_with(
                method,
                authorization,
                Some(self.app.client_id.as_str()),
                Some(self.app.org_id.as_str()),
            )
        }
        fn check_with(
            &self,
            method: &str,
            authorization: Option<&str>,
            api_key: Option<&str>,
            org: Option<&str>,
        ) -> Result<Allow, Denial> {
            decide(
                &CheckRequest {
                    resource: Some(self.resource.id.as_str()),
                    method,
                    authorization,
                    api_key,
                    org_header: org,
                    ..Default::default()
                },
                &self.view,
                ISS,
                NOW,
            )
        }
    }

    fn code(r: Result<Allow, Denial>) -> Code {
        r.expect_err("a denial").code
    }

    #[test]
    fn a_valid_token_passes_with_its_effective_scopes() {
        let f = fixture();
        let auth = format!("Bearer {}", f.token("read write", NOW + 60));
        let allow = f.check("GET", Some(&auth)).unwrap();
        assert_eq!(allow.client_id.as_deref(), Some(f.app.client_id.as_str()));
        assert_eq!(allow.scope, "read write");
        assert!(allow.authenticated);
    }

    #[test]
    fn well_formedness_comes_first() {
        let f = fixture();
        let auth = format!("Bearer {}", f.token("read", NOW + 60));
        assert_eq!(
            code(f.check_with("GET", Some(&auth), None, Some(f.app.org_id.as_str()))),
            Code::InvalidRequest
        );
        assert_eq!(
            code(f.check_with("GET", Some(&auth), Some(f.app.client_id.as_str()), None)),
            Code::InvalidRequest
        );
        let d = f
            .check("GET", Some(&auth.replace("Bearer", "Bearar")))
            .unwrap_err();
        assert_eq!(d.code, Code::InvalidRequest);
        assert!(d.detail.contains("'Bearer'"), "{}", d.detail);
        assert_eq!(
            code(f.check("GET", Some("Basic abc"))),
            Code::InvalidRequest
        );
        assert_eq!(
            code(f.check("GET", Some("Bearer not-a-jwt"))),
            Code::InvalidRequest
        );
        assert_eq!(code(f.check("GET", None)), Code::InvalidRequest);
        let typo = decide(
            &CheckRequest {
                resource: Some(f.resource.id.as_str()),
                method: "GET",
                authentication: Some("Bearar abc"),
                ..Default::default()
            },
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert!(
            typo.detail.contains("'Authorization'") && typo.detail.contains("'Bearer'"),
            "{}",
            typo.detail
        );
    }

    #[test]
    fn unauthenticated_calls_pass_only_where_allowed_and_bad_credentials_never() {
        let mut f = fixture();
        let mut open = f.resource.clone();
        open.allow_unauthenticated = true;
        f.view.upsert_resource(open);
        let allow = f.check("POST", None).unwrap();
        assert!(!allow.authenticated);
        // Credentials that are presented are always checked.
        assert_eq!(
            code(f.check("GET", Some("Bearer a.b.c"))),
            Code::InvalidRequest
        );
        let expired = format!("Bearer {}", f.token("read", NOW - 1));
        assert_eq!(code(f.check("GET", Some(&expired))), Code::TokenExpired);
    }

    #[test]
    fn invalid_then_expired() {
        let f = fixture();
        let t = f.token("read", NOW + 60);
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 2;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        let bad = format!("Bearer {}", String::from_utf8(bad).unwrap());
        assert_eq!(code(f.check("GET", Some(&bad))), Code::InvalidToken);
        let expired = format!("Bearer {}", f.token("read", NOW - 42));
        let d = f.check("GET", Some(&expired)).unwrap_err();
        assert_eq!(d.code, Code::TokenExpired);
        assert!(d.detail.contains("42 s ago"), "{}", d.detail);
        // Expired comes before a wrong x-api-key.
        let other = f.other_app.to_string();
        assert_eq!(
            code(f.check_with(
                "GET",
                Some(&expired),
                Some(&other),
                Some(f.app.org_id.as_str())
            )),
            Code::TokenExpired
        );
    }

    #[test]
    fn the_api_key_must_be_the_tokens_client_and_the_detail_says_whose_it_is() {
        let f = fixture();
        let auth = format!("Bearer {}", f.token("read", NOW + 60));
        let other = f.other_app.to_string();
        let d = f
            .check_with(
                "GET",
                Some(&auth),
                Some(&other),
                Some(f.app.org_id.as_str()),
            )
            .unwrap_err();
        assert_eq!(d.code, Code::InvalidApiKey);
        assert!(d.detail.contains(f.app.client_id.as_str()), "{}", d.detail);
        let unknown = "0123456789abcdef0123456789abcdef";
        let d = f
            .check_with(
                "GET",
                Some(&auth),
                Some(unknown),
                Some(f.app.org_id.as_str()),
            )
            .unwrap_err();
        assert_eq!(d.code, Code::InvalidApiKey);
        assert!(
            d.detail.contains("not the API key of any application"),
            "{}",
            d.detail
        );
    }

    #[test]
    fn org_header_then_org_state() {
        let mut f = fixture();
        let auth = format!("Bearer {}", f.token("read", NOW + 60));
        let cid = f.app.client_id.to_string();
        assert_eq!(
            code(f.check_with(
                "GET",
                Some(&auth),
                Some(&cid),
                Some("0000000000000000000000AA@Org")
            )),
            Code::OrgMismatch
        );
        let mut org = (**f.view.org(f.app.org_id.as_str()).unwrap()).clone();
        org.status = OrgStatus::Disabled;
        f.view.upsert_org(org);
        assert_eq!(code(f.check("GET", Some(&auth))), Code::OrgDisabled);
    }

    #[test]
    fn product_scope_and_sandbox() {
        let mut f = fixture();
        let auth = format!("Bearer {}", f.token("read write", NOW + 60));
        // Scope narrowed in the token.
        let narrow = format!("Bearer {}", f.token("write", NOW + 60));
        let d = f.check("GET", Some(&narrow)).unwrap_err();
        assert_eq!(d.code, Code::InsufficientScope);
        assert!(d.detail.contains("'read'"), "{}", d.detail);
        // A write needs write access to the sandbox.
        assert_eq!(code(f.check("POST", Some(&auth))), Code::SandboxNotWritable);
        assert!(f.check("HEAD", Some(&auth)).is_ok());
        // No access to the resource's sandbox at all.
        let mut r = f.resource.clone();
        r.sandbox = "dev".into();
        f.view.upsert_resource(r);
        assert_eq!(
            code(f.check("GET", Some(&auth))),
            Code::SandboxNotAccessible
        );
        // The app is not added to the product (checked before scopes and sandboxes).
        let mut entry = (**f.view.app(f.app.client_id.as_str()).unwrap()).clone();
        entry.app.products.clear();
        f.view.upsert_app(entry);
        let d = f.check("GET", Some(&narrow)).unwrap_err();
        assert_eq!(d.code, Code::MissingProductContext);
        assert!(d.detail.contains("'events'"), "{}", d.detail);
    }

    #[test]
    fn scopes_removed_from_the_app_are_not_effective_anymore() {
        let mut f = fixture();
        let auth = format!("Bearer {}", f.token("read write", NOW + 60));
        let mut entry = (**f.view.app(f.app.client_id.as_str()).unwrap()).clone();
        entry.app.scopes = ScopeSet::parse("write").unwrap();
        f.view.upsert_app(entry);
        let d = f.check("GET", Some(&auth)).unwrap_err();
        assert_eq!(d.code, Code::InsufficientScope);
        assert!(d.detail.contains("no longer holds"), "{}", d.detail);
    }

    #[test]
    fn an_unknown_resource_is_404() {
        let f = fixture();
        let r = decide(
            &CheckRequest {
                resource: Some("res_0000000000000000"),
                method: "GET",
                ..Default::default()
            },
            &f.view,
            ISS,
            NOW,
        );
        assert_eq!(code(r), Code::UnknownResource);
    }

    impl Fixture {
        fn with_key<'a>(&'a self, key: &'a str, secret: &'a str) -> CheckRequest<'a> {
            CheckRequest {
                resource: Some(self.resource.id.as_str()),
                method: "GET",
                user_key: Some(key),
                user_secret: Some(secret),
                secrets_allowed: true,
                ..Default::default()
            }
        }
    }

    #[test]
    fn key_and_secret_pass_with_the_apps_live_scopes_and_name_the_secret() {
        let f = fixture();
        let allow = decide(
            &f.with_key(f.app.client_id.as_str(), f.secret.expose()),
            &f.view,
            ISS,
            NOW,
        )
        .unwrap();
        assert_eq!(allow.client_id.as_deref(), Some(f.app.client_id.as_str()));
        assert_eq!(allow.org.as_deref(), Some(f.app.org_id.as_str()));
        assert_eq!(allow.scope, "read write");
        assert_eq!(allow.secret_id.as_ref(), Some(&f.secret_id));
    }

    #[test]
    fn key_and_secret_are_well_formed_over_tls_and_go_together() {
        let f = fixture();
        let cid = f.app.client_id.as_str();
        let d = decide(
            &CheckRequest {
                secrets_allowed: false,
                ..f.with_key(cid, f.secret.expose())
            },
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::InvalidRequest);
        assert!(d.detail.contains("TLS"), "{}", d.detail);
        let lone = CheckRequest {
            user_secret: None,
            ..f.with_key(cid, "")
        };
        assert_eq!(code(decide(&lone, &f.view, ISS, NOW)), Code::InvalidRequest);
        // A secret failing its checksum is refused before any lookup.
        let mut typo = f.secret.expose().to_owned();
        let last = typo.pop().unwrap();
        typo.push(if last == 'a' { 'b' } else { 'a' });
        let d = decide(&f.with_key(cid, &typo), &f.view, ISS, NOW).unwrap_err();
        assert_eq!(d.code, Code::InvalidRequest);
        // Both a token and a key.
        let both = CheckRequest {
            authorization: Some("Bearer a.b.c"),
            ..f.with_key(cid, f.secret.expose())
        };
        assert_eq!(code(decide(&both, &f.view, ISS, NOW)), Code::InvalidRequest);
    }

    #[test]
    fn a_wrong_key_or_secret_is_invalid_and_never_says_which_secret_exists() {
        let f = fixture();
        let other = Secret::generate(SecretKind::ClientSecret);
        let d = decide(
            &f.with_key(f.app.client_id.as_str(), other.expose()),
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(!d.detail.contains(other.expose()));
        let d = decide(
            &f.with_key("0123456789abcdef0123456789abcdef", f.secret.expose()),
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        // Another app's key with this app's secret.
        let d = decide(
            &f.with_key(f.other_app.as_str(), f.secret.expose()),
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        // An expired secret.
        let mut f = f;
        let mut entry = (**f.view.app(f.app.client_id.as_str()).unwrap()).clone();
        entry.secrets[0].expires_at = Some(NOW);
        f.view.upsert_app(entry);
        assert_eq!(
            code(decide(
                &f.with_key(f.app.client_id.as_str(), f.secret.expose()),
                &f.view,
                ISS,
                NOW
            )),
            Code::InvalidToken
        );
    }

    #[test]
    fn with_key_and_secret_the_optional_headers_must_match() {
        let f = fixture();
        let cid = f.app.client_id.as_str();
        let other = f.other_app.to_string();
        let d = decide(
            &CheckRequest {
                api_key: Some(&other),
                ..f.with_key(cid, f.secret.expose())
            },
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::InvalidApiKey);
        assert!(d.detail.contains(cid), "{}", d.detail);
        let d = decide(
            &CheckRequest {
                org_header: Some("0000000000000000000000AA@Org"),
                ..f.with_key(cid, f.secret.expose())
            },
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert_eq!(d.code, Code::OrgMismatch);
        let same = CheckRequest {
            api_key: Some(cid),
            org_header: Some(f.app.org_id.as_str()),
            ..f.with_key(cid, f.secret.expose())
        };
        assert!(decide(&same, &f.view, ISS, NOW).is_ok());
    }

    #[test]
    fn key_and_secret_meet_the_same_product_scope_sandbox_and_state_checks() {
        let mut f = fixture();
        let cid = f.app.client_id.to_string();
        let secret = f.secret.expose().to_owned();
        let check = |f: &Fixture, method: &'static str| {
            decide(
                &CheckRequest {
                    method,
                    ..f.with_key(&cid, &secret)
                },
                &f.view,
                ISS,
                NOW,
            )
        };
        assert_eq!(code(check(&f, "POST")), Code::SandboxNotWritable);
        let mut entry = (**f.view.app(&cid).unwrap()).clone();
        entry.app.scopes = ScopeSet::parse("write").unwrap();
        f.view.upsert_app(entry.clone());
        let d = check(&f, "GET").unwrap_err();
        assert_eq!(d.code, Code::InsufficientScope);
        assert!(d.detail.contains("'read'"), "{}", d.detail);
        entry.app.products.clear();
        f.view.upsert_app(entry.clone());
        assert_eq!(code(check(&f, "GET")), Code::MissingProductContext);
        entry.app.status = AppStatus::Suspended;
        f.view.upsert_app(entry);
        assert_eq!(code(check(&f, "GET")), Code::InvalidToken);
        let mut org = (**f.view.org(f.app.org_id.as_str()).unwrap()).clone();
        org.status = OrgStatus::Disabled;
        f.view.upsert_org(org);
        // Suspension (valid) comes before the org's state.
        assert_eq!(code(check(&f, "GET")), Code::InvalidToken);
    }

    #[test]
    fn custom_header_names_appear_in_the_details() {
        let f = fixture();
        let auth = format!("Bearer {}", f.token("read", NOW + 60));
        let d = decide(
            &CheckRequest {
                resource: Some(f.resource.id.as_str()),
                method: "GET",
                authorization: Some(&auth),
                names: HeaderNames {
                    api_key: "x-client-id",
                    org: "x-org",
                },
                ..Default::default()
            },
            &f.view,
            ISS,
            NOW,
        )
        .unwrap_err();
        assert!(d.detail.contains("x-client-id"), "{}", d.detail);
    }

    #[test]
    fn every_code_has_its_catalogue_status_and_slug() {
        for c in Code::ALL {
            let status = c.status();
            assert!(c.code().ends_with(&status.to_string()) || c == Code::InvalidApiKey);
            assert!(!c.slug().is_empty() && !c.title().is_empty());
        }
        assert_eq!(Code::InvalidApiKey.code(), "403003");
        assert_eq!(Code::RateLimited.status(), 429);
    }
    impl Fixture {
        /// An app-signed JWT of the main app with `claims` (and `header` members added).
        fn app_jwt(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
            self.app_signer.sign_json(&header, &claims)
        }
        /// Seed 003's shape: header kid, claims iat + jti only.
        fn seed_jwt(&self) -> String {
            self.app_jwt(json!({}), json!({"iat": NOW, "jti": new_jti()}))
        }
        fn bearer(&self, token: &str, replay: &ReplayCache) -> Result<Allow, Denial> {
            self.bearer_with(token, None, None, "GET", replay)
        }
        fn bearer_with(
            &self,
            token: &str,
            api_key: Option<&str>,
            org: Option<&str>,
            method: &str,
            replay: &ReplayCache,
        ) -> Result<Allow, Denial> {
            let auth = format!("Bearer {token}");
            let verify =
                |t: &str| verify_access_token(t, |kid| self.view.key(kid), ISS, NOW).map(Arc::new);
            decide_with(
                &CheckRequest {
                    resource: Some(self.resource.id.as_str()),
                    method,
                    authorization: Some(&auth),
                    api_key,
                    org_header: org,
                    ..Default::default()
                },
                &self.view,
                ISS,
                NOW,
                &verify,
                replay,
            )
        }
    }

    #[test]
    fn an_app_signed_jwt_passes_with_the_apps_live_scopes_and_no_headers() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        let allow = f.bearer(&f.seed_jwt(), &replay).unwrap();
        assert_eq!(allow.client_id.as_deref(), Some(f.app.client_id.as_str()));
        assert_eq!(allow.org.as_deref(), Some(f.app.org_id.as_str()));
        assert_eq!(allow.scope, "read write");
        assert!(allow.authenticated);
        assert_eq!(allow.secret_id, None);
        // With the optional headers, when they name the same app and org.
        let cid = f.app.client_id.as_str();
        let same = f.bearer_with(
            &f.seed_jwt(),
            Some(cid),
            Some(f.app.org_id.as_str()),
            "GET",
            &replay,
        );
        assert!(same.is_ok(), "{same:?}");
    }

    #[test]
    fn an_app_signed_jwt_is_single_use() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        let t = f.seed_jwt();
        assert!(f.bearer(&t, &replay).is_ok());
        let d = f.bearer(&t, &replay).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("fresh jti"), "{}", d.detail);
        // The same jti in a new JWT is a replay too.
        let jti = new_jti();
        assert!(
            f.bearer(
                &f.app_jwt(json!({}), json!({"iat": NOW, "jti": jti})),
                &replay
            )
            .is_ok()
        );
        let again = f.app_jwt(json!({}), json!({"iat": NOW - 1, "jti": jti}));
        assert_eq!(code(f.bearer(&again, &replay)), Code::InvalidToken);
    }

    #[test]
    fn an_app_signed_jwt_needs_a_fresh_iat_and_a_jti() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        let with = |claims| f.bearer(&f.app_jwt(json!({}), claims), &replay);
        let d = with(json!({"iat": NOW - 301, "jti": new_jti()})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("301 s ago"), "{}", d.detail);
        let d = with(json!({"iat": NOW + 301, "jti": new_jti()})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("in the future"), "{}", d.detail);
        assert!(with(json!({"iat": NOW - 300, "jti": new_jti()})).is_ok());
        assert!(with(json!({"iat": NOW + 300, "jti": new_jti()})).is_ok());
        let d = with(json!({"jti": new_jti()})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("'iat'"), "{}", d.detail);
        let d = with(json!({"iat": NOW})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("'jti'"), "{}", d.detail);
        assert_eq!(
            code(with(json!({"iat": NOW, "jti": ""}))),
            Code::InvalidToken
        );
        // An iat that is not a number is not well-formed.
        assert_eq!(
            code(with(json!({"iat": "now", "jti": new_jti()}))),
            Code::InvalidRequest
        );
        // Fractional seconds are a NumericDate too.
        assert!(with(json!({"iat": NOW as f64 + 0.5, "jti": new_jti()})).is_ok());
    }

    #[test]
    fn an_app_signed_jwts_exp_nbf_and_aud_are_checked_when_present() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        let with = |extra: serde_json::Value| {
            let mut claims = json!({"iat": NOW, "jti": new_jti()});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            f.bearer(&f.app_jwt(json!({}), claims), &replay)
        };
        let d = with(json!({"exp": NOW - 61})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("expired"), "{}", d.detail);
        assert!(with(json!({"exp": NOW - 60})).is_ok(), "60 s leeway");
        let d = with(json!({"nbf": NOW + 61})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("'nbf'"), "{}", d.detail);
        assert!(with(json!({"nbf": NOW + 60})).is_ok(), "60 s leeway");
        let d = with(json!({"aud": "https://elsewhere.example"})).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("'aud'"), "{}", d.detail);
        assert!(with(json!({"aud": f.resource.id.as_str()})).is_ok());
        assert!(with(json!({"aud": ["https://x.example", f.resource.id.as_str()]})).is_ok());
        assert_eq!(code(with(json!({"aud": 7}))), Code::InvalidToken);
        // Addressed to this server or its token endpoint: an assertion, not for the gateway.
        for aud in [
            json!(ISS),
            json!(format!("{ISS}/oauth/token")),
            json!([f.resource.id.as_str(), ISS]),
            json!(format!("{ISS}/c/someclient")),
        ] {
            let d = with(json!({ "aud": aud })).unwrap_err();
            assert_eq!(d.code, Code::InvalidToken, "{aud}");
            assert!(
                d.detail.contains("token-endpoint assertion"),
                "{}",
                d.detail
            );
        }
    }

    #[test]
    fn unknown_kids_other_algs_and_bad_signatures_are_refused() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        let f = fixture();
        let replay = ReplayCache::new(100);
        let claims = json!({"iat": NOW, "jti": new_jti()});
        let d = f
            .bearer(
                &f.app_jwt(json!({"kid": "key_0000000000000000"}), claims.clone()),
                &replay,
            )
            .unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("No application key"), "{}", d.detail);
        let kid = f.app_signer.kid();
        let body = B64.encode(claims.to_string());
        for alg in ["none", "HS256", "RS256", "EdDSA"] {
            let h = B64.encode(json!({"alg": alg, "kid": kid}).to_string());
            let d = f
                .bearer(&format!("{h}.{body}.{}", B64.encode(b"sig")), &replay)
                .unwrap_err();
            assert_eq!(d.code, Code::InvalidToken, "{alg}: {}", d.detail);
            assert!(d.detail.contains("alg"), "{alg}: {}", d.detail);
        }
        let t = f.app_jwt(json!({}), claims.clone());
        let (head, rest) = t.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let other = B64.encode(json!({"iat": NOW, "jti": "forged"}).to_string());
        assert_eq!(
            code(f.bearer(&format!("{head}.{other}.{sig}"), &replay)),
            Code::InvalidToken
        );
        // Signed claims that are not an object; no kid.
        assert_eq!(
            code(f.bearer(&f.app_jwt(json!({}), json!("claims")), &replay)),
            Code::InvalidRequest
        );
        let h = B64.encode(json!({"alg": "ES256"}).to_string());
        assert_eq!(
            code(f.bearer(&format!("{h}.{body}.{sig}"), &replay)),
            Code::InvalidRequest
        );
    }

    #[test]
    fn access_tokens_still_take_the_access_token_path() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        // An access token without its headers is told to send them (not an app JWT).
        let d = f.bearer(&f.token("read", NOW + 60), &replay).unwrap_err();
        assert_eq!(d.code, Code::InvalidRequest);
        assert!(d.detail.contains(API_KEY_HEADER), "{}", d.detail);
        // A JWT signed by the app's key but claiming typ at+jwt is no access token.
        let t = f.app_jwt(
            json!({"typ": "at+jwt"}),
            json!({"iat": NOW, "jti": new_jti()}),
        );
        let cid = f.app.client_id.as_str();
        assert_eq!(
            code(f.bearer_with(&t, Some(cid), Some(f.app.org_id.as_str()), "GET", &replay)),
            Code::InvalidToken
        );
    }

    #[test]
    fn with_an_app_signed_jwt_the_optional_headers_must_match() {
        let f = fixture();
        let replay = ReplayCache::new(100);
        let other = f.other_app.to_string();
        let d = f
            .bearer_with(&f.seed_jwt(), Some(&other), None, "GET", &replay)
            .unwrap_err();
        assert_eq!(d.code, Code::InvalidApiKey);
        assert!(d.detail.contains(f.app.client_id.as_str()), "{}", d.detail);
        let d = f
            .bearer_with(
                &f.seed_jwt(),
                None,
                Some("0000000000000000000000AA@Org"),
                "GET",
                &replay,
            )
            .unwrap_err();
        assert_eq!(d.code, Code::OrgMismatch);
    }

    #[test]
    fn an_app_signed_jwt_meets_the_state_product_scope_and_sandbox_checks() {
        let mut f = fixture();
        let replay = ReplayCache::new(100);
        let cid = f.app.client_id.to_string();
        assert_eq!(
            code(f.bearer_with(&f.seed_jwt(), None, None, "POST", &replay)),
            Code::SandboxNotWritable
        );
        let mut entry = (**f.view.app(&cid).unwrap()).clone();
        entry.app.scopes = ScopeSet::parse("write").unwrap();
        f.view.upsert_app(entry.clone());
        let d = f.bearer(&f.seed_jwt(), &replay).unwrap_err();
        assert_eq!(d.code, Code::InsufficientScope);
        assert!(d.detail.contains("'read'"), "{}", d.detail);
        entry.app.products.clear();
        f.view.upsert_app(entry.clone());
        assert_eq!(
            code(f.bearer(&f.seed_jwt(), &replay)),
            Code::MissingProductContext
        );
        let mut org = (**f.view.org(f.app.org_id.as_str()).unwrap()).clone();
        org.status = OrgStatus::Disabled;
        f.view.upsert_org(org);
        assert_eq!(code(f.bearer(&f.seed_jwt(), &replay)), Code::OrgDisabled);
        entry.app.status = AppStatus::Suspended;
        f.view.upsert_app(entry);
        // Suspension (valid) comes before the org's state.
        let d = f.bearer(&f.seed_jwt(), &replay).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("suspended"), "{}", d.detail);
        // Removing the app forgets its key: the next JWT names no key.
        f.view.remove_app(&cid);
        let d = f.bearer(&f.seed_jwt(), &replay).unwrap_err();
        assert_eq!(d.code, Code::InvalidToken);
        assert!(d.detail.contains("No application key"), "{}", d.detail);
    }

    #[test]
    fn a_full_replay_cache_refuses_rather_than_forgets() {
        let f = fixture();
        let replay = ReplayCache::new(1);
        assert!(f.bearer(&f.seed_jwt(), &replay).is_ok());
        let d = f.bearer(&f.seed_jwt(), &replay).unwrap_err();
        assert_eq!(d.code, Code::RateLimited);
        assert!(d.retry_after.is_some());
    }

    #[test]
    fn our_access_tokens_are_known_by_their_first_segment_without_decoding() {
        let f = fixture();
        let t = f.token("read", NOW + 60);
        let head = t.split('.').next().unwrap();
        assert!(f.view.is_access_token_header(head));
        assert!(!is_app_signed(&t, &f.view));
        // Another key's header, or a header naming our kid without typ at+jwt, is not.
        let other = generate_key(Alg::ES256, "k2").unwrap();
        let stranger = Signer::from_pkcs8("k2", Alg::ES256, &other.pkcs8).unwrap();
        let t2 = stranger.sign_json(&serde_json::json!({}), &serde_json::json!({}));
        assert!(!f.view.is_access_token_header(t2.split('.').next().unwrap()));
        let t3 = f
            .signer
            .sign_json(&serde_json::json!({}), &serde_json::json!({}));
        assert!(!f.view.is_access_token_header(t3.split('.').next().unwrap()));
    }
}
