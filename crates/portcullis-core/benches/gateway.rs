//! In-process cost of the gateway decision for a bearer ES256 access token with
//! `x-api-key`, org header and a resource policy (product, scope, sandbox): with the
//! signature verified, and through the verified-token cache (token seen before); the raw
//! ES256 verification is measured beside them for comparison.
//!
//! Run: `cargo bench -p portcullis-core --bench gateway`

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::gateway::{CheckRequest, decide};
use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{
    App, AppStatus, Org, OrgStatus, Resource, SandboxAccess, SecretRecord,
};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::SecretHash;
use portcullis_core::token::{
    AccessClaims, Alg, Signer, VerifyKey, generate_key, new_jti, verify_access_token,
};
use portcullis_core::view::{AppEntry, View};
use std::collections::BTreeMap;
use std::hint::black_box;

const ISS: &str = "http://127.0.0.1:8080";
const NOW: i64 = 1_800_000_000;

fn bench(c: &mut Criterion) {
    let org = Org {
        id: OrgId::generate(),
        name: "o".into(),
        status: OrgStatus::Active,
        products: ["events".to_owned()].into(),
        sandboxes: ["prod".to_owned()].into(),
        created_at: 0,
        tokens_invalid_before: None,
    };
    let app = App {
        client_id: ClientId::generate(),
        org_id: org.id.clone(),
        name: "a".into(),
        status: AppStatus::Active,
        technical_account_id: TechAccountId::generate(),
        products: ["events".to_owned()].into(),
        scopes: ScopeSet::parse("read write").unwrap(),
        group_id: None,
        sandboxes: BTreeMap::from([("prod".to_owned(), SandboxAccess::Read)]),
        token_ttl_seconds: None,
        quota: None,
        created_at: 0,
        tokens_invalid_before: None,
    };
    let secret_id = RecordId::generate("sec");
    let resource = Resource {
        id: RecordId::generate("res"),
        org_id: org.id.clone(),
        name: "r".into(),
        sandbox: "prod".into(),
        product: Some("events".into()),
        scopes: ScopeSet::parse("read").unwrap(),
        allow_unauthenticated: false,
        cors_origins: vec![],
        created_at: 0,
    };
    let mut view = View::default();
    view.upsert_org(org.clone());
    view.upsert_app(AppEntry {
        app: app.clone(),
        secrets: vec![SecretRecord {
            id: secret_id.clone(),
            client_id: app.client_id.clone(),
            prefix: "pcss_x".into(),
            hash: SecretHash([0; 32]),
            created_at: 0,
            expires_at: None,
        }],
        keys: vec![],
    });
    view.upsert_resource(resource.clone());
    let g = generate_key(Alg::ES256, "k1").unwrap();
    view.set_keys(
        vec![VerifyKey::from_jwk(Alg::ES256, g.public_jwk).unwrap()],
        None,
    );
    let signer = Signer::from_pkcs8("k1", Alg::ES256, &g.pkcs8).unwrap();
    let token = signer.sign(&AccessClaims {
        iss: ISS.into(),
        sub: app.technical_account_id.to_string(),
        aud: ISS.into(),
        client_id: app.client_id.to_string(),
        org: org.id.to_string(),
        scope: "read write".into(),
        iat: NOW,
        exp: NOW + 3600,
        jti: new_jti(),
        cred: Some(secret_id.to_string()),
    });
    let authorization = format!("Bearer {token}");
    let req = CheckRequest {
        resource: Some(resource.id.as_str()),
        method: "GET",
        authorization: Some(&authorization),
        api_key: Some(app.client_id.as_str()),
        org_header: Some(org.id.as_str()),
        ..Default::default()
    };
    assert!(decide(&req, &view, ISS, NOW).is_ok());
    c.bench_function("gateway decision, ES256 bearer, signature verified", |b| {
        b.iter(|| decide(black_box(&req), &view, ISS, NOW).unwrap())
    });
    let cache = portcullis_core::token_cache::VerifiedTokenCache::new(1000);
    let verify = |t: &str| cache.verify(t, &view, ISS, NOW);
    let replay = portcullis_core::app_jwt::ReplayCache::new(1);
    c.bench_function(
        "gateway decision, ES256 bearer, token seen before (cache hit)",
        |b| {
            b.iter(|| {
                portcullis_core::gateway::decide_with(
                    black_box(&req),
                    &view,
                    ISS,
                    NOW,
                    &verify,
                    &replay,
                )
                .unwrap()
            })
        },
    );
    c.bench_function("raw ES256 access-token verification", |b| {
        b.iter(|| verify_access_token(black_box(&token), |k| view.key(k), ISS, NOW).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
