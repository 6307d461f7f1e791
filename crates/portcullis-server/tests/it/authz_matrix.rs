//! The authorization matrix: every admin route × every kind of caller, against the
//! expected status derived from the policy table ([`portcullis_core::policy::RULES`]).
//!
//! Callers: the bootstrap admin; a platform administrator with no role in the
//! organization; an administrator, a developer and a subscriber of the
//! organization; an administrator of another organization; an app token with `admin`;
//! an app token without it; an `admin` token addressed to another audience (RFC 8707
//! `resource`); and an `admin` token issued before its app lost the scope.
//!
//! The expected status of each cell is computed from the policy table, not written by
//! hand: allowed → the route's success status; refused but the object is visible → 403;
//! the object is not visible to the caller → 404 (ids cannot be probed). Callers whose
//! token the admin API does not accept get 401 (wrong audience) or 403 (no live `admin`).

use crate::common;

use common::*;
use portcullis_core::ids::{OrgId, RecordId};
use portcullis_core::model::{Role, User};
use portcullis_core::policy::{Action, Principal};
use portcullis_core::scope::ScopeSet;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// What a route needs, in the policy's terms.
#[derive(Clone, Copy)]
enum Guard {
    /// A platform action (no organization).
    Platform(Action),
    /// The organization record itself: visible to its members and to whoever may manage
    /// organizations; `None` to read it, or the action to change it.
    OrgRecord(Option<Action>),
    /// Making the member a platform administrator (or not): 404 for a caller who cannot
    /// see the member.
    SetPlatformAdmin,
    /// An action in the organization; `hidden` when the route first loads an object of
    /// the organization (404 for a caller who cannot see it).
    Org(Action, bool),
    /// Managing an app of the organization that holds these scopes (404 if hidden).
    App(&'static str),
    /// Managing a member's account (404 for a caller who cannot see the member).
    Member,
    /// Listing: allowed for every authenticated caller (filtered to what it may see).
    Listing,
}

/// The fixtures a row acts on, in organization `org`.
struct World {
    org: String,
    plain_app: String,
    admin_app: String,
    group: String,
    resource: String,
    member: String,
}

struct Row {
    name: &'static str,
    guard: Guard,
    success: StatusCode,
    /// `(method, path, body)`; `n` is unique per cell (for emails and fresh objects).
    request: fn(&World, usize) -> (Method, String, Option<Value>),
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "read the organization",
            guard: Guard::OrgRecord(None),
            success: StatusCode::OK,
            request: |w, _| (Method::GET, format!("/admin/v1/orgs/{}", w.org), None),
        },
        Row {
            name: "rename the organization",
            guard: Guard::OrgRecord(Some(Action::ManageOrgs)),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::PATCH,
                    format!("/admin/v1/orgs/{}", w.org),
                    Some(json!({"name": "Acme"})),
                )
            },
        },
        Row {
            name: "create an organization",
            guard: Guard::Platform(Action::ManageOrgs),
            success: StatusCode::CREATED,
            request: |_, _| {
                (
                    Method::POST,
                    "/admin/v1/orgs".into(),
                    Some(json!({"name": "New"})),
                )
            },
        },
        Row {
            name: "list organizations",
            guard: Guard::Listing,
            success: StatusCode::OK,
            request: |_, _| (Method::GET, "/admin/v1/orgs".into(), None),
        },
        Row {
            name: "list the signing keys",
            guard: Guard::Platform(Action::ManageSigningKeys),
            success: StatusCode::OK,
            request: |_, _| (Method::GET, "/admin/v1/keys".into(), None),
        },
        Row {
            name: "create a permission group",
            guard: Guard::Org(Action::ManageGroups, true),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/orgs/{}/groups", w.org),
                    Some(json!({"name": "g", "scopes": ["read"]})),
                )
            },
        },
        Row {
            name: "change a permission group",
            guard: Guard::Org(Action::ManageGroups, true),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::PATCH,
                    format!("/admin/v1/orgs/{}/groups/{}", w.org, w.group),
                    Some(json!({"name": "renamed"})),
                )
            },
        },
        Row {
            name: "list permission groups",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::GET,
                    format!("/admin/v1/orgs/{}/groups", w.org),
                    None,
                )
            },
        },
        Row {
            name: "create a resource",
            guard: Guard::Org(Action::ManageResources, true),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/orgs/{}/resources", w.org),
                    Some(json!({"name": "r", "sandbox": "prod"})),
                )
            },
        },
        Row {
            name: "read a resource",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::GET,
                    format!("/admin/v1/orgs/{}/resources/{}", w.org, w.resource),
                    None,
                )
            },
        },
        Row {
            name: "create an app",
            guard: Guard::Org(Action::ManageApps, true),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    "/admin/v1/apps".into(),
                    Some(json!({"org_id": w.org, "name": "new", "scopes": ["read"]})),
                )
            },
        },
        Row {
            name: "create an app with the admin scope",
            guard: Guard::App("admin"),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    "/admin/v1/apps".into(),
                    Some(json!({"org_id": w.org, "name": "new", "scopes": ["admin"]})),
                )
            },
        },
        Row {
            name: "list the organization's apps",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| (Method::GET, format!("/admin/v1/apps?org={}", w.org), None),
        },
        Row {
            name: "read an app",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| (Method::GET, format!("/admin/v1/apps/{}", w.plain_app), None),
        },
        Row {
            name: "read the organization's usage counts",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| (Method::GET, format!("/admin/v1/orgs/{}/usage", w.org), None),
        },
        Row {
            name: "read an app's usage counts",
            guard: Guard::Org(Action::ReadOrg, true),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::GET,
                    format!("/admin/v1/apps/{}/usage", w.plain_app),
                    None,
                )
            },
        },
        Row {
            name: "rename an app",
            guard: Guard::App("read"),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::PATCH,
                    format!("/admin/v1/apps/{}", w.plain_app),
                    Some(json!({"name": "renamed"})),
                )
            },
        },
        Row {
            name: "rename an app that holds admin",
            guard: Guard::App("admin read"),
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::PATCH,
                    format!("/admin/v1/apps/{}", w.admin_app),
                    Some(json!({"name": "renamed"})),
                )
            },
        },
        Row {
            name: "add a secret to an app",
            guard: Guard::App("read"),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/apps/{}/secrets", w.plain_app),
                    None,
                )
            },
        },
        Row {
            name: "issue an admin token for an app that holds admin",
            guard: Guard::App("admin read"),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/apps/{}/tokens", w.admin_app),
                    Some(json!({"scope": "admin"})),
                )
            },
        },
        Row {
            name: "add a key pair to an app that holds admin",
            guard: Guard::App("admin read"),
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/apps/{}/keypairs", w.admin_app),
                    Some(json!({"alg": "ES256"})),
                )
            },
        },
        Row {
            name: "create a member",
            guard: Guard::Org(Action::ManageMembers, false),
            success: StatusCode::CREATED,
            request: |w, n| {
                (
                    Method::POST,
                    "/admin/v1/users".into(),
                    Some(
                        json!({"email": format!("m{n}@example.com"), "password": "correct horse battery",
                        "roles": {w.org.as_str(): "developer"}}),
                    ),
                )
            },
        },
        Row {
            name: "reset a member's password",
            guard: Guard::Member,
            success: StatusCode::CREATED,
            request: |w, _| {
                (
                    Method::POST,
                    format!("/admin/v1/users/{}/password-reset", w.member),
                    None,
                )
            },
        },
        Row {
            name: "read the audit trail",
            guard: Guard::Org(Action::ReadAudit, false),
            success: StatusCode::OK,
            request: |w, _| (Method::GET, format!("/admin/v1/audit?org={}", w.org), None),
        },
        Row {
            // `false`, so that the member stays what the other rows expect.
            name: "set whether a member is a platform administrator",
            guard: Guard::SetPlatformAdmin,
            success: StatusCode::OK,
            request: |w, _| {
                (
                    Method::PATCH,
                    format!("/admin/v1/users/{}", w.member),
                    Some(json!({"platform_admin": false})),
                )
            },
        },
    ]
}

/// A kind of caller: its token, and the principal the policy should see (`None` when
/// the admin API must refuse the token itself, with this status).
struct Caller {
    name: &'static str,
    token: String,
    principal: Result<Principal, StatusCode>,
}

fn user(org: &str, role: Role) -> Principal {
    Principal::User(User {
        id: RecordId::generate("usr"),
        email: String::new(),
        name: String::new(),
        roles: BTreeMap::from([(OrgId::parse(org).unwrap(), role)]),
        platform_admin: false,
        created_at: 0,
    })
}

/// A platform administrator with no role in any organization.
fn platform_admin() -> Principal {
    Principal::User(User {
        id: RecordId::generate("usr"),
        email: String::new(),
        name: String::new(),
        roles: BTreeMap::new(),
        platform_admin: true,
        created_at: 0,
    })
}

fn expected(p: &Principal, guard: Guard, org: &str, success: StatusCode) -> StatusCode {
    let org = OrgId::parse(org).unwrap();
    let sees = p.may(Action::ReadOrg, &org).is_ok();
    let verdict = |allowed: bool, hidden: bool| match (allowed, hidden && !sees) {
        (true, _) => success,
        (false, true) => StatusCode::NOT_FOUND,
        (false, false) => StatusCode::FORBIDDEN,
    };
    match guard {
        Guard::Platform(a) => verdict(p.may_platform(a).is_ok(), false),
        Guard::OrgRecord(change) => {
            match (
                p.sees_org(&org),
                change.is_none_or(|a| p.may(a, &org).is_ok()),
            ) {
                (false, _) => StatusCode::NOT_FOUND,
                (true, true) => success,
                (true, false) => StatusCode::FORBIDDEN,
            }
        }
        Guard::Org(a, hidden) => verdict(p.may(a, &org).is_ok(), hidden),
        Guard::App(scopes) => verdict(
            p.may_manage_app(&org, &ScopeSet::parse(scopes).unwrap())
                .is_ok(),
            true,
        ),
        Guard::Member | Guard::SetPlatformAdmin => {
            // The member is a developer of `org` only.
            let member = User {
                id: RecordId::generate("usr"),
                email: String::new(),
                name: String::new(),
                roles: BTreeMap::from([(org.clone(), Role::Developer)]),
                platform_admin: false,
                created_at: 0,
            };
            let allowed = match guard {
                Guard::SetPlatformAdmin => p.may_platform(Action::ManagePlatformAdmins).is_ok(),
                _ => p.administers(&member),
            };
            match (p.sees_user(&member), allowed) {
                (false, _) => StatusCode::NOT_FOUND,
                (true, true) => success,
                (true, false) => StatusCode::FORBIDDEN,
            }
        }
        Guard::Listing => success,
    }
}

async fn app_token(app: &TestApp, org: &str, scopes: &[&str], ask: &str) -> (String, String) {
    let cid = app.create_app(org, scopes).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, secret) = app.create_secret(&cid).await;
    (
        cid.clone(),
        app.access_token(&cid, &secret, Some(ask)).await,
    )
}

#[tokio::test]
async fn every_admin_route_answers_every_caller_as_the_policy_table_says() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let world = World {
        plain_app: app.create_app(&org, &["read"]).await["client_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        admin_app: app.create_app(&org, &["admin", "read"]).await["client_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        group: app
            .call(
                Method::POST,
                &format!("/admin/v1/orgs/{org}/groups"),
                Some(json!({"name": "g", "scopes": ["read"]})),
            )
            .await
            .1["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        resource: app
            .create_resource_id(&org, json!({"name": "r", "sandbox": "prod"}))
            .await,
        member: app
            .create_user(
                "member@example.com",
                "correct horse battery",
                json!({org.as_str(): "developer"}),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        org: org.clone(),
    };

    let (admin_cid, admin_app_token) = app_token(&app, &org, &["admin"], "admin").await;
    let (_, read_token) = app_token(&app, &org, &["read"], "read").await;
    // An admin token addressed to an API instead of this server.
    let (foreign_cid, _) = app_token(&app, &org, &["admin"], "admin").await;
    let (_, foreign_secret) = app.create_secret(&foreign_cid).await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&foreign_cid, Some(&foreign_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin"),
            ("resource", "https://api.partner.example/"),
        ])
        .send()
        .await
        .unwrap();
    let foreign_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // An admin token whose app then loses the scope.
    let (stale_cid, stale_token) = app_token(&app, &org, &["admin"], "admin").await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/apps/{stale_cid}"),
            Some(json!({"scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let callers = vec![
        Caller {
            name: "bootstrap admin",
            token: ADMIN_TOKEN.into(),
            principal: Ok(Principal::Root),
        },
        Caller {
            name: "platform admin",
            token: {
                let id = app
                    .create_user("platform@example.com", "correct horse battery", json!({}))
                    .await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let (status, v) = app
                    .call(
                        Method::PATCH,
                        &format!("/admin/v1/users/{id}"),
                        Some(json!({"platform_admin": true})),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{v}");
                assert_eq!(v["platform_admin"], true);
                app.session("platform@example.com", "correct horse battery")
                    .await
            },
            principal: Ok(platform_admin()),
        },
        Caller {
            name: "org admin",
            token: app.user_session(&org, "admin").await,
            principal: Ok(user(&org, Role::Admin)),
        },
        Caller {
            name: "developer",
            token: app.user_session(&org, "developer").await,
            principal: Ok(user(&org, Role::Developer)),
        },
        Caller {
            name: "subscriber",
            token: app.user_session(&org, "subscriber").await,
            principal: Ok(user(&org, Role::Subscriber)),
        },
        Caller {
            name: "another org's admin",
            token: {
                app.create_user(
                    "other-admin@example.com",
                    "correct horse battery",
                    json!({other.as_str(): "admin"}),
                )
                .await;
                app.session("other-admin@example.com", "correct horse battery")
                    .await
            },
            principal: Ok(user(&other, Role::Admin)),
        },
        Caller {
            name: "app token with admin",
            token: admin_app_token,
            principal: Ok(Principal::App {
                client_id: admin_cid,
                org: OrgId::parse(&org).unwrap(),
            }),
        },
        Caller {
            name: "app token without admin",
            token: read_token,
            principal: Err(StatusCode::FORBIDDEN),
        },
        Caller {
            name: "admin token for another audience",
            token: foreign_token,
            principal: Err(StatusCode::UNAUTHORIZED),
        },
        Caller {
            name: "admin token issued before its app lost the scope",
            token: stale_token,
            principal: Err(StatusCode::FORBIDDEN),
        },
    ];

    let mut failures = Vec::new();
    let mut n = 0;
    for row in rows() {
        for caller in &callers {
            n += 1;
            let want = match &caller.principal {
                Ok(p) => expected(p, row.guard, &world.org, row.success),
                Err(s) => *s,
            };
            let (method, path, body) = (row.request)(&world, n);
            let (got, v) = app
                .call_as(&caller.token, method.clone(), &path, body)
                .await;
            if got != want {
                failures.push(format!(
                    "{} / {}: {method} {path} answered {got}, the policy says {want}: {v}",
                    row.name, caller.name
                ));
            } else if !got.is_success() {
                check_problem_body(&v, got);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cells differ from the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The README, SECURITY.md and the reference show the policy table exactly as the code
/// has it.
#[test]
fn the_documents_state_the_policy_table() {
    let table = portcullis_core::policy::markdown_table();
    for doc in ["README.md", "SECURITY.md", "docs/reference.md"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&table),
            "{doc} must contain the policy table as portcullis_core::policy::markdown_table() renders it:\n{table}"
        );
    }
}

/// An organization administrator cannot make themselves a platform administrator, nor
/// take over the account of a platform administrator who is a member of their
/// organization; a platform administrator who creates an organization administers it.
#[tokio::test]
async fn an_org_admin_cannot_become_or_take_over_a_platform_admin() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app
        .create_user(
            "boss@example.com",
            "correct horse battery",
            json!({org.as_str(): "admin"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let platform = app
        .create_user(
            "platform@example.com",
            "correct horse battery",
            json!({org.as_str(): "developer"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{platform}"),
            Some(json!({"platform_admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let boss = app
        .session("boss@example.com", "correct horse battery")
        .await;

    let (status, v) = app
        .call_as(
            &boss,
            Method::PATCH,
            &format!("/admin/v1/users/{admin}"),
            Some(json!({"platform_admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("only the bootstrap admin or a platform administrator may do this"),
        "{v}"
    );
    for (method, path) in [
        (
            Method::POST,
            format!("/admin/v1/users/{platform}/password-reset"),
        ),
        (Method::DELETE, format!("/admin/v1/users/{platform}")),
    ] {
        let (status, v) = app.call_as(&boss, method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }

    // The platform administrator creates an organization and administers it.
    let pa = app
        .session("platform@example.com", "correct horse battery")
        .await;
    let (status, made) = app
        .call_as(
            &pa,
            Method::POST,
            "/admin/v1/orgs",
            Some(json!({"name": "Initech"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, me) = app
        .call_as(&pa, Method::GET, "/admin/v1/sessions/current", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["platform_admin"], true);
    assert_eq!(me["roles"][made["id"].as_str().unwrap()], "admin", "{me}");

    // The bootstrap admin still may reset their password.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/admin/v1/users/{platform}/password-reset"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
