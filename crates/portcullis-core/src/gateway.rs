//! The gateway decision (API.md §2): may this request reach this resource, and if not,
//! exactly why and how to fix it.
//!
//! [`decide`] is a pure function of the request's credentials, the [`View`] and the
//! clock. The first failing check answers, in the order API.md fixes: well-formed (0500)
//! → token valid (0502, then 0503 for a valid but expired token) → `x-api-key` (403003) →
//! org header (PCS-0403) → org active (PCS-0401) → product (0504) → scope (0505) →
//! sandbox (0506 for writes, PCS-0407 for reads). Rate limits and quotas wrap this
//! function in the server.
//!
//! This first cut handles Portcullis access tokens and unauthenticated calls; `userKey` +
//! `secret` and app-signed JWTs come next (the code [`Denial`] carries is ready for them).

use crate::introspect::{Inactive, check_live};
use crate::model::{OrgStatus, Resource, SandboxAccess};
use crate::scope::ScopeSet;
use crate::token::{AccessClaims, TokenError, verify_access_token};
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
            Code::UnknownResource => "PCS-0404-404",
        }
    }
    pub fn status(self) -> u16 {
        match self {
            Code::InvalidApiKey | Code::OrgMismatch | Code::SandboxNotAccessible => 403,
            Code::UnknownResource => 404,
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
            Code::UnknownResource => "unknown-resource",
        }
    }
}

/// A refusal: the code and a detail for people (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: Code,
    pub detail: String,
}

fn deny(code: Code, detail: impl Into<String>) -> Denial {
    Denial {
        code,
        detail: detail.into(),
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

/// Header names, for details that tell people what to send.
pub const API_KEY_HEADER: &str = "x-api-key";
pub const ORG_HEADER: &str = "x-gw-ims-org-id";

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Decide one request. `issuer` is this server's; `now` unix seconds.
pub fn decide(
    req: &CheckRequest<'_>,
    view: &View,
    issuer: &str,
    now: i64,
) -> Result<Allow, Denial> {
    decide_with(req, view, issuer, now, &|token| {
        verify_access_token(token, |kid| view.key(kid), issuer, now).map(Arc::new)
    })
}

/// How an access token's signature, issuer and expiry are checked: directly, or through a
/// [`crate::token_cache::VerifiedTokenCache`].
pub type Verify<'a> = dyn Fn(&str) -> Result<Arc<AccessClaims>, TokenError> + 'a;

/// [`decide`] with the token verification supplied (the server passes its cache).
pub fn decide_with(
    req: &CheckRequest<'_>,
    view: &View,
    issuer: &str,
    now: i64,
    verify: &Verify<'_>,
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

    let Some(authorization) = req.authorization else {
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
            });
        }
        return Err(deny(
            Code::InvalidRequest,
            "This resource needs credentials: send 'Authorization: Bearer <access token>' with the x-api-key and x-gw-ims-org-id headers.",
        ));
    };
    let token = bearer(authorization)?;
    access_token(req, view, resource, token, issuer, now, verify)
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
    // Well-formed: the headers that go with an access token.
    let api_key = req.api_key.filter(|k| !k.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {API_KEY_HEADER} header is missing: send your application's client id (API key) with the access token."))
    })?;
    let org_header = req.org_header.filter(|o| !o.is_empty()).ok_or_else(|| {
        deny(Code::InvalidRequest, format!("The {ORG_HEADER} header is missing: send your organization id (like 4F2A9C1B7D3E5A6B8C0D1E2F@Org) with the access token."))
    })?;
    if token.split('.').count() != 3 {
        return Err(deny(
            Code::InvalidRequest,
            "The bearer token is not a well-formed JWT (three base64url parts separated by dots).",
        ));
    }

    // Valid.
    let claims = verify(token).map_err(|e| match e {
        TokenError::Malformed => deny(
            Code::InvalidRequest,
            format!("The bearer token is not well-formed: {e}."),
        ),
        TokenError::Expired(exp) => deny(
            Code::TokenExpired,
            format!(
                "The token expired at {}, {} s ago. Request a new token.",
                rfc3339(exp),
                now - exp
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
                "The {API_KEY_HEADER} '{}' is not the API key of any application. The token was issued to client '{}'; send that as {API_KEY_HEADER}.",
                short(api_key),
                claims.client_id
            )
        } else {
            format!(
                "The {API_KEY_HEADER} '{}' is another application's API key: the token was issued to client '{}'. Send the client id the token belongs to, or a token of '{}'.",
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
                "The {ORG_HEADER} header '{}' differs from the token's organization '{}'.",
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
    if let Some(e) = org_inactive {
        return Err(deny(
            Code::OrgDisabled,
            format!("The organization '{}' is not active: {e}.", claims.org),
        ));
    }
    // check_live passed or only the org failed, so the app and the org exist.
    let entry = view.app(&claims.client_id).ok_or_else(|| {
        deny(
            Code::InvalidToken,
            "The application of the token no longer exists.",
        )
    })?;
    let org = view
        .org(&claims.org)
        .filter(|o| o.status == OrgStatus::Active)
        .ok_or_else(|| {
            deny(
                Code::OrgDisabled,
                format!("The organization '{}' is not active.", claims.org),
            )
        })?;

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
                    "The application '{}' is not added to the product '{product}'; add it to the app's products (PATCH /admin/v1/apps/{}).",
                    claims.client_id, claims.client_id
                ),
            ));
        }
    }

    // Scopes: the token's, narrowed to what the app holds now.
    let token_scopes = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let effective = token_scopes.intersection(&view.effective_scopes(&entry.app));
    let missing = resource.scopes.missing_from(&effective);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        let in_token = names.iter().all(|n| token_scopes.contains(n));
        let how = if in_token {
            "the application no longer holds it; add it to the app or its permission group"
        } else {
            "request a token with it (the app must hold it: add it to the app or its permission group if not)"
        };
        return Err(deny(
            Code::InsufficientScope,
            format!(
                "The token lacks the scope(s) '{}' this resource requires: {how}.",
                names.join(" ")
            ),
        ));
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
        client_id: Some(claims.client_id.clone()),
        org: Some(claims.org.clone()),
        scope: effective.to_text(),
        authenticated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClientId, OrgId, RecordId, TechAccountId};
    use crate::model::{App, AppStatus, Org, SecretRecord};
    use crate::secret::SecretHash;
    use crate::token::{AccessClaims, Alg, Signer, VerifyKey, generate_key, new_jti};
    use crate::view::AppEntry;
    use std::collections::BTreeMap;

    const ISS: &str = "http://portcullis.test";
    const NOW: i64 = 1_800_000_000;

    struct Fixture {
        view: View,
        signer: Signer,
        app: App,
        other_app: ClientId,
        resource: Resource,
        secret_id: RecordId,
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
            sandboxes: BTreeMap::from([("prod".to_owned(), SandboxAccess::Read)]),
            token_ttl_seconds: None,
            created_at: 0,
            tokens_invalid_before: None,
        };
        let main = app("read write");
        let other = app("read");
        let secret_id = RecordId::generate("sec");
        let mut view = View::default();
        view.upsert_org(org.clone());
        for a in [&main, &other] {
            view.upsert_app(AppEntry {
                app: a.clone(),
                secrets: vec![SecretRecord {
                    id: secret_id.clone(),
                    client_id: a.client_id.clone(),
                    prefix: "pcss_x".into(),
                    hash: SecretHash([0; 32]),
                    created_at: 0,
                    expires_at: None,
                }],
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
            other_app: other.client_id.clone(),
            app: main,
            resource,
            secret_id,
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
}
