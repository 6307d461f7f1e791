//! The decision, case by case, against a view built in memory.
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
        dpop_bound_access_tokens: false,
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
            cnf: None,
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
    let basic = f.check("GET", Some("Basic abc")).unwrap_err();
    assert_eq!(basic.code, Code::InvalidRequest);
    assert!(
        basic.detail.contains("'Basic' is not supported"),
        "{}",
        basic.detail
    );
    // A token sent without its scheme is refused without being echoed.
    let bare_token = f.token("read", NOW + 60);
    let bare = f.check("GET", Some(&bare_token)).unwrap_err();
    assert_eq!(bare.code, Code::InvalidRequest);
    assert!(bare.detail.contains("no scheme"), "{}", bare.detail);
    assert!(!bare.detail.contains(&bare_token[..10]), "{}", bare.detail);
    let opaque = f
        .check("GET", Some("0123456789abcdef0123456789abcdef"))
        .unwrap_err();
    assert!(!opaque.detail.contains("0123456789"), "{}", opaque.detail);
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
    /// SAP Gigya's shape: header kid, claims iat + jti only.
    fn kid_jwt(&self) -> String {
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
    let allow = f.bearer(&f.kid_jwt(), &replay).unwrap();
    assert_eq!(allow.client_id.as_deref(), Some(f.app.client_id.as_str()));
    assert_eq!(allow.org.as_deref(), Some(f.app.org_id.as_str()));
    assert_eq!(allow.scope, "read write");
    assert!(allow.authenticated);
    assert_eq!(allow.secret_id, None);
    // With the optional headers, when they name the same app and org.
    let cid = f.app.client_id.as_str();
    let same = f.bearer_with(
        &f.kid_jwt(),
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
    let t = f.kid_jwt();
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
        .bearer_with(&f.kid_jwt(), Some(&other), None, "GET", &replay)
        .unwrap_err();
    assert_eq!(d.code, Code::InvalidApiKey);
    assert!(d.detail.contains(f.app.client_id.as_str()), "{}", d.detail);
    let d = f
        .bearer_with(
            &f.kid_jwt(),
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
        code(f.bearer_with(&f.kid_jwt(), None, None, "POST", &replay)),
        Code::SandboxNotWritable
    );
    let mut entry = (**f.view.app(&cid).unwrap()).clone();
    entry.app.scopes = ScopeSet::parse("write").unwrap();
    f.view.upsert_app(entry.clone());
    let d = f.bearer(&f.kid_jwt(), &replay).unwrap_err();
    assert_eq!(d.code, Code::InsufficientScope);
    assert!(d.detail.contains("'read'"), "{}", d.detail);
    entry.app.products.clear();
    f.view.upsert_app(entry.clone());
    assert_eq!(
        code(f.bearer(&f.kid_jwt(), &replay)),
        Code::MissingProductContext
    );
    let mut org = (**f.view.org(f.app.org_id.as_str()).unwrap()).clone();
    org.status = OrgStatus::Disabled;
    f.view.upsert_org(org);
    assert_eq!(code(f.bearer(&f.kid_jwt(), &replay)), Code::OrgDisabled);
    entry.app.status = AppStatus::Suspended;
    f.view.upsert_app(entry);
    // Suspension (valid) comes before the org's state.
    let d = f.bearer(&f.kid_jwt(), &replay).unwrap_err();
    assert_eq!(d.code, Code::InvalidToken);
    assert!(d.detail.contains("suspended"), "{}", d.detail);
    // Removing the app forgets its key: the next JWT names no key.
    f.view.remove_app(&cid);
    let d = f.bearer(&f.kid_jwt(), &replay).unwrap_err();
    assert_eq!(d.code, Code::InvalidToken);
    assert!(d.detail.contains("No application key"), "{}", d.detail);
}

#[test]
fn a_full_replay_cache_refuses_rather_than_forgets() {
    let f = fixture();
    let replay = ReplayCache::new(1);
    assert!(f.bearer(&f.kid_jwt(), &replay).is_ok());
    let d = f.bearer(&f.kid_jwt(), &replay).unwrap_err();
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
