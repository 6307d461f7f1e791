//! A small view for the fuzz targets: one org, one app with a client secret and an ES256
//! key pair, one protected resource, one server signing key. Built once per process.
#![allow(dead_code)]

use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{
    App, AppKey, AppKeySource, AppStatus, Org, OrgStatus, Resource, SandboxAccess, SecretRecord,
};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_core::token::{Alg, Signer, VerifyKey, generate_key};
use portcullis_core::view::{AppEntry, AppKeyEntry, View};
use std::sync::{Arc, OnceLock};

pub const ISS: &str = "http://portcullis.fuzz";
pub const NOW: i64 = 1_800_000_000;

pub struct World {
    pub view: View,
    pub client_id: String,
    pub org_id: String,
    pub resource: String,
    pub secret: String,
    pub app_kid: String,
    /// Signs Portcullis access tokens (kid `k1`).
    pub signer: Signer,
    /// The app's key pair.
    pub app_signer: Signer,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(build)
}

fn build() -> World {
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
        sandboxes: [("prod".to_owned(), SandboxAccess::Write)].into(),
        token_ttl_seconds: None,
        quota: None,
        dpop_bound_access_tokens: false,
        created_at: 0,
        tokens_invalid_before: None,
    };
    let hash_key = HashKey::from_bytes(&[7; 32]);
    let secret = Secret::generate(SecretKind::ClientSecret);
    let mut view = View::default();
    view.set_hash_key(hash_key.clone());
    view.upsert_org(org.clone());
    let app_kid = RecordId::generate("key");
    let app_key = generate_key(Alg::ES256, app_kid.as_str()).unwrap();
    view.upsert_app(AppEntry {
        app: app.clone(),
        secrets: vec![SecretRecord {
            id: RecordId::generate("sec"),
            client_id: app.client_id.clone(),
            prefix: "pcss_x".into(),
            hash: secret.hash(&hash_key),
            created_at: 0,
            expires_at: None,
        }]
        .into(),
        keys: vec![AppKeyEntry {
            key: AppKey {
                id: app_kid.clone(),
                client_id: app.client_id.clone(),
                alg: Alg::ES256,
                public_jwk: app_key.public_jwk.clone(),
                source: AppKeySource::KeyPair,
                created_at: 0,
            },
            verify: Arc::new(VerifyKey::from_jwk(Alg::ES256, app_key.public_jwk.clone()).unwrap()),
        }]
        .into(),
    });
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
    view.set_keys(
        vec![VerifyKey::from_jwk(Alg::ES256, g.public_jwk).unwrap()],
        None,
    );
    World {
        view,
        client_id: app.client_id.to_string(),
        org_id: org.id.to_string(),
        resource: resource.id.to_string(),
        secret: secret.expose().to_owned(),
        app_kid: app_kid.to_string(),
        signer: Signer::from_pkcs8("k1", Alg::ES256, &g.pkcs8).unwrap(),
        app_signer: Signer::from_pkcs8(app_kid.as_str(), Alg::ES256, &app_key.pkcs8).unwrap(),
    }
}
