//! The gateway decision : may this request reach this resource, and if not,
//! exactly why and how to fix it.
//!
//! [`decide`] is a pure function of the request's credentials, the [`View`] and the
//! clock. The first failing check answers, in the catalogue's order: well-formed (0500)
//! → token valid (0502, then 0503 for a valid but expired token) → `x-api-key` (403003) →
//! org header (PCS-0403) → org active (PCS-0401) → product (0504) → scope (0505) →
//! sandbox (0506 for writes, PCS-0407 for reads). Failure limits (before everything) and
//! request quotas (after everything) wrap this function: see [`crate::limits`].
//!
//! Presentations: a Portcullis access token (`Authorization: Bearer` + `x-api-key` + org
//! header), `userKey` + `secret` (over TLS only), an app-signed JWT (`Authorization:
//! Bearer` with a JWT the app signed with one of its key pairs, as SAP Gigya's application
//! keys do), or none at all
//! on a resource that allows unauthenticated calls.
//!
//! One file per part: [`catalogue`] (the codes as one table), [`access_token`],
//! [`key_secret`] and [`app_signed`] (the three presentations), [`authorize`] (the checks
//! they share once the app is known).

mod access_token;
mod app_signed;
mod authorize;
pub mod catalogue;
mod key_secret;

pub use access_token::{DPOP_SCOPE_PREFIX, dpop_replay_scope, dpop_replayed, proof_denial};
pub use app_signed::{APP_JWT_LEEWAY, APP_JWT_MAX_SKEW, is_app_signed, replayed};
pub use catalogue::Code;

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

/// A refusal: the code and a detail for people (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: Code,
    pub detail: String,
    /// Seconds until a retry can succeed (rate limits only).
    pub retry_after: Option<u64>,
}

impl Denial {
    /// The problem+json body (RFC 9457, the catalogue's code beside it) every surface answers
    /// this denial with: the
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
            // Adobe I/O's own members for this error.
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
#[derive(Debug, Clone)]
pub struct Allow {
    pub client_id: Option<String>,
    pub org: Option<String>,
    /// The effective scopes, space-separated.
    pub scope: String,
    pub authenticated: bool,
    /// The client secret that authenticated a `userKey` + `secret` call, so the server
    /// can record its last use.
    pub secret_id: Option<RecordId>,
    /// The app the request authenticated as, as the decision found it in the view: what
    /// comes after the decision (the app's quota, usage counts) reads it here instead of
    /// looking the app up again. `None` for an unauthenticated request to a resource that
    /// admits them.
    pub app: Option<Arc<AppEntry>>,
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
    /// An `Authentication:` header was sent (a common typo for `Authorization:`).
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
    /// The `DPoP` header: the proof of possession that goes with `Authorization: DPoP`.
    pub dpop: Option<&'a str>,
    /// More than one `DPoP` header was sent (refused: a request carries one proof).
    pub dpop_repeated: bool,
    /// The URL the client called (scheme, host, path), which a DPoP proof's `htu` must
    /// name; `None` when the caller cannot tell it (a proof is then refused).
    pub htu: Option<&'a str>,
    /// How DPoP proofs are checked beyond the request itself.
    pub dpop_rules: DpopRules<'a>,
}

/// The server's DPoP settings, as the decision reads them.
#[derive(Debug, Clone, Copy)]
pub struct DpopRules<'a> {
    /// How old a proof may be, in seconds.
    pub max_age: i64,
    /// How far ahead of this server's clock a proof's `iat` may be.
    pub leeway: i64,
    /// When set, every proof must carry a nonce this server gave (`DPoP-Nonce`).
    pub nonces: Option<crate::dpop::Nonces<'a>>,
}

/// How old a DPoP proof may be by default, in seconds.
pub const DPOP_MAX_AGE: i64 = 60;
/// How far in the future a DPoP proof's `iat` may be by default, in seconds.
pub const DPOP_LEEWAY: i64 = 5;

impl Default for DpopRules<'_> {
    fn default() -> Self {
        Self {
            max_age: DPOP_MAX_AGE,
            leeway: DPOP_LEEWAY,
            nonces: None,
        }
    }
}

/// The configurable header names of the gateway decision (see `docs/reference.md`).
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

impl<'a> CheckRequest<'a> {
    /// The credentials a request carries in its headers, read through `header` (a
    /// header's text; [`NotText`] when one of its values is not text). The server's gateway
    /// and `portcullis-verify` both start from this; each then fills in the resource, the
    /// method and whatever else it knows. A credential header that is not text is refused
    /// here: it must not read as "no credentials", which an unauthenticated resource would
    /// let through.
    pub fn from_headers(
        header: impl Fn(&str) -> Result<Option<&'a str>, NotText>,
        names: HeaderNames<'a>,
    ) -> Result<Self, Denial> {
        let read = |name: &str| {
            header(name).map_err(|NotText| {
                deny(
                    Code::InvalidRequest,
                    format!(
                        "The {name} header is not valid text: send it as visible ASCII characters."
                    ),
                )
            })
        };
        Ok(CheckRequest {
            authorization: read("authorization")?,
            authentication: read("authentication")?,
            api_key: read(names.api_key)?,
            org_header: read(names.org)?,
            user_key: read(USER_KEY_HEADER)?,
            user_secret: read(USER_SECRET_HEADER)?,
            dpop: read("dpop")?,
            names,
            ..CheckRequest::default()
        })
    }

    /// A write is any method but GET, HEAD and OPTIONS.
    pub fn is_write(&self) -> bool {
        self.always_write
            || !["GET", "HEAD", "OPTIONS"]
                .iter()
                .any(|m| self.method.eq_ignore_ascii_case(m))
    }
}

/// A header value that is not text (visible ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotText;

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
            let (scheme, token) = credentials(authorization)?;
            if is_app_signed(token, view) {
                if scheme == Scheme::DPoP {
                    return Err(deny(
                        Code::InvalidRequest,
                        "An app-signed JWT is sent as 'Authorization: Bearer <jwt>'; DPoP binds only Portcullis access tokens.",
                    ));
                }
                app_signed::app_signed(req, view, resource, token, issuer, now, replay)
            } else {
                let presented = access_token::Presented {
                    token,
                    scheme,
                    replay,
                };
                access_token::access_token(req, view, resource, presented, issuer, now, verify)
            }
        }
        (None, true) => key_secret::key_and_secret(req, view, resource, now),
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
                    app: None,
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

/// How a token is presented in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer <token>`: whoever holds the token may use it.
    Bearer,
    /// `DPoP <token>` with a `DPoP` proof header (RFC 9449 section 7.1).
    DPoP,
}

/// Whether an `Authorization` value uses the DPoP scheme (`DPoP <token>`): callers
/// work out what only a DPoP check needs (the client's URL) for these alone.
pub fn is_dpop_scheme(authorization: &str) -> bool {
    authorization
        .trim_start()
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("dpop "))
}

/// The scheme and token of `Bearer <token>` or `DPoP <token>`, or why the header is
/// neither.
fn credentials(value: &str) -> Result<(Scheme, &str), Denial> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    for (name, s) in [("Bearer", Scheme::Bearer), ("DPoP", Scheme::DPoP)] {
        if scheme.eq_ignore_ascii_case(name) {
            let t = rest.trim();
            if t.is_empty() {
                return Err(deny(
                    Code::InvalidRequest,
                    format!("The Authorization header has no token after '{name}'."),
                ));
            }
            return Ok((s, t));
        }
    }
    if scheme.eq_ignore_ascii_case("bearar") {
        return Err(deny(
            Code::InvalidRequest,
            "The Authorization scheme is misspelled 'Bearar'; it is 'Bearer': send 'Authorization: Bearer <token>'.",
        ));
    }
    // Name the scheme only when it looks like one (a short word before the credentials):
    // a bare token sent without a scheme must not be echoed into the answer, its
    // X-Portcullis-Detail header and the logs.
    let a_scheme = !rest.trim().is_empty()
        && scheme.len() <= 20
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !a_scheme {
        return Err(deny(
            Code::InvalidRequest,
            "The Authorization header has no scheme before its value; send 'Authorization: Bearer <token>'.",
        ));
    }
    Err(deny(
        Code::InvalidRequest,
        format!(
            "The Authorization scheme '{}' is not supported; send 'Authorization: Bearer <token>' (or 'DPoP <token>' with a DPoP proof for a DPoP-bound token).",
            short(scheme)
        ),
    ))
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

#[cfg(test)]
mod tests;
