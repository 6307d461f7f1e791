//! In-process cost of a `client_credentials` grant, split into its parts:
//! client authentication (secret parse + keyed hash + constant-time compare against the
//! view), the secret verification alone (no view), the grant decision, and signing, for
//! each signing algorithm.
//!
//! Run: `cargo bench -p portcullis-core --bench grant`

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_core::grant::OAUTH_DEFAULT_TTL;
use portcullis_core::grant::client_auth::authenticate;
use portcullis_core::grant::client_credentials::{GrantContext, grant};
use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{App, AppStatus, Org, OrgStatus, SecretRecord};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_core::token::{Alg, Signer, generate_key};
use portcullis_core::view::{AppEntry, View};
use std::hint::black_box;

const ISSUER: &str = "http://127.0.0.1:8080";
/// The secret-hash key of the benchmark view.
const HASH_KEY: [u8; 32] = [9; 32];

/// A view with `n` apps, each with one secret; returns the view and one app's credentials.
fn view_with(n: usize, alg: Alg) -> (View, String, String) {
    let hash_key = HashKey::from_bytes(&HASH_KEY);
    let mut view = View::default();
    let org = Org {
        id: OrgId::generate(),
        name: "bench".into(),
        status: OrgStatus::Active,
        products: Default::default(),
        sandboxes: Default::default(),
        created_at: 0,
        tokens_invalid_before: None,
    };
    view.upsert_org(org.clone());
    let mut probe = None;
    for _ in 0..n {
        let client_id = ClientId::generate();
        let secret = Secret::generate(SecretKind::ClientSecret);
        let app = App {
            client_id: client_id.clone(),
            org_id: org.id.clone(),
            name: "app".into(),
            status: AppStatus::Active,
            technical_account_id: TechAccountId::generate(),
            products: Default::default(),
            scopes: ScopeSet::parse("read write").unwrap(),
            group_id: None,
            sandboxes: Default::default(),
            token_ttl_seconds: None,
            quota: None,
            dpop_bound_access_tokens: false,
            created_at: 0,
            tokens_invalid_before: None,
        };
        let record = SecretRecord {
            id: RecordId::generate("sec"),
            client_id: client_id.clone(),
            prefix: secret.display_prefix(),
            hash: secret.hash(&hash_key),
            created_at: 0,
            expires_at: None,
        };
        view.upsert_app(AppEntry {
            app,
            secrets: vec![record].into(),
            keys: Box::default(),
        });
        probe.get_or_insert((client_id.to_string(), secret.expose().to_owned()));
    }
    view.set_hash_key(hash_key);
    let g = generate_key(alg, "bench-key").unwrap();
    let signer = Signer::from_pkcs8("bench-key", alg, &g.pkcs8).unwrap();
    view.set_keys(vec![], Some(signer));
    let (id, secret) = probe.unwrap();
    (view, id, secret)
}

fn bench(c: &mut Criterion) {
    let (view, client_id, secret) = view_with(10_000, Alg::ES256);
    let ctx = GrantContext {
        issuer: ISSUER,
        now: 1_700_000_000,
        default_ttl: OAUTH_DEFAULT_TTL,
    };
    c.bench_function("client_auth (parse + HMAC + compare, 10k apps)", |b| {
        b.iter(|| authenticate(black_box(&view), &client_id, &secret, ctx.now).unwrap())
    });
    let hash_key = HashKey::from_bytes(&HASH_KEY);
    let stored = Secret::parse(SecretKind::ClientSecret, &secret)
        .unwrap()
        .hash(&hash_key);
    c.bench_function(
        "secret verification alone (parse + HMAC-SHA256 + constant-time compare)",
        |b| {
            b.iter(|| {
                let presented =
                    Secret::parse(SecretKind::ClientSecret, black_box(&secret)).unwrap();
                assert!(presented.hash(&hash_key).ct_eq(&stored));
            })
        },
    );
    let client = authenticate(&view, &client_id, &secret, ctx.now).unwrap();
    c.bench_function("grant decision (claims, no signing)", |b| {
        b.iter(|| grant(black_box(&view), &client, None, ctx).unwrap())
    });
    for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
        let (view, client_id, secret) = view_with(1_000, alg);
        let signer = view.signer().unwrap().clone();
        c.bench_function(
            &format!("client_credentials end to end, {}", alg.as_str()),
            |b| {
                b.iter(|| {
                    let client = authenticate(&view, &client_id, &secret, ctx.now).unwrap();
                    let claims = grant(&view, &client, None, ctx).unwrap();
                    black_box(signer.sign(&claims))
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
