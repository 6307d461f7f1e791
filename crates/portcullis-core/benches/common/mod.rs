//! Records the benches share: the shape `portcullis bench-seed` writes (product `events`,
//! sandbox `prod`, a resource needing `read`), so in-process and HTTP figures describe the
//! same data.
#![allow(dead_code)]

use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{App, AppStatus, Org, OrgStatus, Resource, SandboxAccess};
use portcullis_core::scope::ScopeSet;

pub fn org(name: &str) -> Org {
    Org {
        id: OrgId::generate(),
        name: name.into(),
        status: OrgStatus::Active,
        products: ["events".to_owned()].into(),
        sandboxes: ["prod".to_owned()].into(),
        created_at: 0,
        tokens_invalid_before: None,
    }
}

/// A resource in `org`'s `prod` sandbox needing product `events` and scope `read`.
pub fn resource_in(org: &OrgId) -> Resource {
    Resource {
        id: RecordId::generate("res"),
        org_id: org.clone(),
        name: "r".into(),
        sandbox: "prod".into(),
        product: Some("events".into()),
        scopes: ScopeSet::parse("read").unwrap(),
        allow_unauthenticated: false,
        cors_origins: vec![],
        created_at: 0,
    }
}

/// An app of `org` with product `events`, scopes `read write introspect` and `access` to
/// `prod`.
pub fn app_in(org: &OrgId, access: SandboxAccess) -> App {
    App {
        client_id: ClientId::generate(),
        org_id: org.clone(),
        name: "bench app".into(),
        status: AppStatus::Active,
        technical_account_id: TechAccountId::generate(),
        products: ["events".to_owned()].into(),
        scopes: ScopeSet::parse("read write introspect").unwrap(),
        group_id: None,
        sandboxes: [("prod".to_owned(), access)].into(),
        token_ttl_seconds: None,
        quota: None,
        dpop_bound_access_tokens: false,
        created_at: 0,
        tokens_invalid_before: None,
    }
}
