//! Invitations and password resets at the HTTP level: the admin API's
//! `POST /admin/v1/invitations`, `POST /admin/v1/users/{id}/password-reset` and the link's
//! own `GET /admin/v1/user-links/current` / `POST …/current/accept`, and the console's
//! public link pages. `console_browser.rs` walks the same journey in Chromium.

use crate::common;

use common::*;
use portcullis_core::secret::{Secret, SecretKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// An org and its admin, signed in to the admin API: `(org, admin session, admin id)`.
async fn org_admin(app: &TestApp) -> (String, String, String) {
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app
        .create_user("boss@example.com", PASSWORD, json!({&org: "admin"}))
        .await;
    let session = app.session("boss@example.com", PASSWORD).await;
    (org, session, admin["id"].as_str().unwrap().to_owned())
}

/// `POST /admin/v1/invitations` as `token`: the raw answer.
async fn invite(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.admin_as(token, Method::POST, "/admin/v1/invitations", Some(body))
        .await
}

/// The `pcsl_…` token at the end of a link.
fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_owned()
}

async fn link_info(app: &TestApp, token: &str) -> reqwest::Response {
    app.admin_as(token, Method::GET, "/admin/v1/user-links/current", None)
        .await
}

async fn accept(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.admin_as(
        token,
        Method::POST,
        "/admin/v1/user-links/current/accept",
        Some(json!({ "password": password })),
    )
    .await
}

/// Audit entries of `action`, as the bootstrap admin reads them.
async fn audit_of(app: &TestApp, action: &str) -> Vec<Value> {
    app.walk_pages_of(&format!("/admin/v1/audit?action={action}"), 100, "entries")
        .await
}

#[tokio::test]
async fn an_invited_user_sets_a_password_once_and_signs_in() {
    let app = TestApp::spawn().await;
    let (org, boss, boss_id) = org_admin(&app).await;
    let r = invite(
        &app,
        &boss,
        json!({"email": "New.Person@Example.com", "org_id": org, "role": "developer", "name": "New Person"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let link: Value = r.json().await.unwrap();
    assert_eq!(link["kind"], "invite");
    assert_eq!(link["email"], "new.person@example.com");
    assert_eq!(link["role"], "developer");
    assert_eq!(link["org_id"], org.as_str());
    let url = link["link"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/console/invite/pcsl_", app.issuer)),
        "{url}"
    );
    let expires = link["expires_at"].as_i64().unwrap();
    assert!((expires - app.now() - 24 * 3600).abs() <= 5, "24 hours");
    let token = token_of(url);
    let user_id = link["user_id"].as_str().unwrap().to_owned();

    // Invited, not yet able to sign in with anything.
    assert_eq!(
        app.sign_in("new.person@example.com", "").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, user) = app
        .call(Method::GET, &format!("/admin/v1/users/{user_id}"), None)
        .await;
    assert_eq!(user["roles"][&org], "developer");

    let info: Value = link_info(&app, &token).await.json().await.unwrap();
    assert_eq!(info["kind"], "invite");
    assert_eq!(info["email"], "new.person@example.com");
    assert_eq!(info["name"], "New Person");

    // A password under the policy is refused and leaves the link live.
    let short = assert_problem(accept(&app, &token, "short").await, StatusCode::BAD_REQUEST).await;
    assert!(short["detail"].as_str().unwrap().contains("10 characters"));
    let r = accept(&app, &token, "my own new password").await;
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["user"]["id"], user_id.as_str());
    let session = app
        .session("new.person@example.com", "my own new password")
        .await;
    assert!(session.starts_with("pcsu_"));

    // The link is dead now, for reading and for using.
    let used = assert_problem(link_info(&app, &token).await, StatusCode::GONE).await;
    assert_eq!(used["code"], "PCS-0410-USED");
    let again = assert_problem(
        accept(&app, &token, "someone else's password").await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(again["type"], "urn:portcullis:error:link-used");
    assert_eq!(
        app.sign_in("new.person@example.com", "someone else's password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the second use changed nothing"
    );

    // The audit trail: the invitation by its admin, the use by the new user, the refused
    // second use.
    let invited = audit_of(&app, "invitations.create").await;
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(invited[0]["actor"], format!("user:{boss_id}"));
    assert_eq!(invited[0]["target"], user_id.as_str());
    assert_eq!(invited[0]["org_id"], org.as_str());
    let uses = audit_of(&app, "user-links.current.accept").await;
    let outcomes: Vec<(&str, &str)> = uses
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    let me = format!("user:{user_id}");
    assert!(outcomes.contains(&(me.as_str(), "success")), "{uses:?}");
    assert!(outcomes.contains(&("anonymous", "failure")), "{uses:?}");
    let all = app
        .walk_pages_of("/admin/v1/audit", 1000, "entries")
        .await
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    assert!(
        !all.contains(&token),
        "the link's token is never in the audit trail"
    );
    assert!(!all.contains("my own new password"));
}

#[tokio::test]
async fn unknown_and_malformed_links_are_401_problems() {
    let app = TestApp::spawn().await;
    let unknown = Secret::generate(SecretKind::UserLink);
    for token in [unknown.expose(), "pcsl_abc", "pcss_notalink", ""] {
        for r in [
            link_info(&app, token).await,
            accept(&app, token, "long enough password").await,
        ] {
            assert_problem(r, StatusCode::UNAUTHORIZED).await;
        }
    }
    // Without any Authorization header.
    let r = app
        .http
        .get(app.url("/admin/v1/user-links/current"))
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn malformed_invitations_are_4xx_problems_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (org, boss, _) = org_admin(&app).await;
    let ok = json!({"email": "a@example.com", "org_id": org, "role": "developer"});
    let mut cases: Vec<(Value, StatusCode)> = vec![
        (json!({}), StatusCode::BAD_REQUEST),
        (
            json!({"email": "a@example.com", "org_id": org}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "a@example.com", "org_id": org, "role": "owner"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "not an email", "org_id": org, "role": "developer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": "a@example.com", "org_id": "nope", "role": "developer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"email": 7, "org_id": org, "role": "developer"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!([1, 2]), StatusCode::BAD_REQUEST),
        (json!("text"), StatusCode::BAD_REQUEST),
    ];
    let mut extra = ok.clone();
    extra["password"] = json!("sneaky password");
    cases.push((extra, StatusCode::BAD_REQUEST));
    for (body, status) in cases {
        let r = invite(&app, &boss, body.clone()).await;
        assert_problem(r, status).await;
    }
    // Not JSON at all, and not declared as JSON.
    for (ct, body, status) in [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        ("text/plain", "hello", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let r = app
            .http
            .post(app.url("/admin/v1/invitations"))
            .bearer_auth(&boss)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(r, status).await;
    }
    // The bootstrap admin inviting into an organization that does not exist.
    let r = invite(
        &app,
        ADMIN_TOKEN,
        json!({"email": "a@example.com", "org_id": "0123456789ABCDEF01234567@Org", "role": "developer"}),
    )
    .await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    // None of that made a user.
    assert_eq!(app.walk_pages("/admin/v1/users", 100).await.len(), 1);

    // An email that already has an account is a conflict, and makes no second user.
    assert_eq!(
        invite(&app, &boss, ok.clone()).await.status(),
        StatusCode::CREATED
    );
    let r = invite(
        &app,
        &boss,
        json!({"email": "A@example.com", "org_id": org, "role": "admin"}),
    )
    .await;
    assert_problem(r, StatusCode::CONFLICT).await;
    assert_eq!(app.walk_pages("/admin/v1/users", 100).await.len(), 2);

    // Resets: an id that is not one, and one of nobody.
    let r = app
        .admin_as(
            &boss,
            Method::POST,
            "/admin/v1/users/..%2F/password-reset",
            None,
        )
        .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .admin(
            Method::POST,
            "/admin/v1/users/not-an-id/password-reset",
            None,
        )
        .await;
    assert_problem(r, StatusCode::BAD_REQUEST).await;
    let gone = app
        .create_user("gone@example.com", PASSWORD, json!({}))
        .await;
    let gone_id = gone["id"].as_str().unwrap();
    let (status, _) = app
        .call(Method::DELETE, &format!("/admin/v1/users/{gone_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/users/{gone_id}/password-reset"),
            None,
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn only_admins_invite_and_reset_in_their_own_organizations() {
    let app = TestApp::spawn().await;
    let (org, boss, _) = org_admin(&app).await;
    let other = app.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dev = app.user_session(&org, "developer").await;
    let body = |o: &str| json!({"email": "x@example.com", "org_id": o, "role": "developer"});

    // A developer may not invite, an admin not into another organization.
    let refused = assert_problem(invite(&app, &dev, body(&org)).await, StatusCode::FORBIDDEN).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("may not"),
        "{refused}"
    );
    assert_problem(
        invite(&app, &boss, body(&other)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // The admin API's refusal is recorded in the audit trail.
    assert!(
        audit_of(&app, "invitations.create")
            .await
            .iter()
            .any(|e| e["outcome"] == "failure")
    );

    // Resets: a developer may not reset anyone's password, not even their own by link;
    // an admin not of someone who is also in an organization they do not administer.
    let (_, users) = app
        .call(Method::GET, "/admin/v1/users?limit=100", None)
        .await;
    let id_of = |email: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let dev_id = id_of("developer@example.com");
    let reset = |token: &str, id: &str| {
        let (token, path) = (
            token.to_owned(),
            format!("/admin/v1/users/{id}/password-reset"),
        );
        let app = &app;
        async move { app.admin_as(&token, Method::POST, &path, None).await }
    };
    assert_problem(reset(&dev, &dev_id).await, StatusCode::FORBIDDEN).await;
    let both = app
        .create_user(
            "both@example.com",
            PASSWORD,
            json!({&org: "developer", &other: "developer"}),
        )
        .await;
    assert_problem(
        reset(&boss, both["id"].as_str().unwrap()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Their password still works.
    app.session("both@example.com", PASSWORD).await;
    app.session("developer@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_reset_ends_the_old_password_and_sessions_and_its_link_sets_a_new_one() {
    let app = TestApp::spawn().await;
    let (org, boss, _) = org_admin(&app).await;
    let user = app
        .create_user("dev@example.com", PASSWORD, json!({&org: "developer"}))
        .await;
    let id = user["id"].as_str().unwrap();
    let old_session = app.session("dev@example.com", PASSWORD).await;
    let path = format!("/admin/v1/users/{id}/password-reset");

    let first: Value = app
        .admin_as(&boss, Method::POST, &path, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["kind"], "reset");
    assert!(
        first["link"]
            .as_str()
            .unwrap()
            .contains("/console/reset/pcsl_")
    );
    // At once: the old password fails and the user's sessions are over.
    assert_eq!(
        app.sign_in("dev@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .call_as(
            &old_session,
            Method::GET,
            &format!("/admin/v1/users/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A second reset replaces the first link.
    let r = app.admin_as(&boss, Method::POST, &path, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Value = r.json().await.unwrap();
    let first_token = token_of(first["link"].as_str().unwrap());
    assert_problem(
        link_info(&app, &first_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let token = token_of(second["link"].as_str().unwrap());
    assert_eq!(
        accept(&app, &token, "a brand new password").await.status(),
        StatusCode::OK
    );
    app.session("dev@example.com", "a brand new password").await;
    assert_eq!(
        app.sign_in("dev@example.com", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resets = audit_of(&app, "users.password-reset").await;
    assert_eq!(resets.len(), 2);
    assert_eq!(resets[0]["target"], id);
}

#[tokio::test]
async fn an_expired_link_is_refused_and_changes_nothing() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let (org, boss, _) = org_admin(&app).await;
    let link: Value = invite(
        &app,
        &boss,
        json!({"email": "late@example.com", "org_id": org, "role": "subscriber"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = token_of(link["link"].as_str().unwrap());
    let clock = app.clock.as_ref().unwrap();
    clock.advance(24 * 3600 - 1);
    assert_eq!(
        link_info(&app, &token).await.status(),
        StatusCode::OK,
        "live until the end"
    );
    clock.advance(1);
    let expired = assert_problem(link_info(&app, &token).await, StatusCode::GONE).await;
    assert_eq!(expired["code"], "PCS-0410-EXPIRED");
    assert_problem(
        accept(&app, &token, "too late password").await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(
        app.sign_in("late@example.com", "too late password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The console page says so too, as a page (not a 500, not the sign-in page).
    let r = app
        .http
        .get(app.url(&format!("/console/invite/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let html = r.text().await.unwrap();
    assert!(html.contains("expired"), "{html}");
}

#[tokio::test]
async fn the_console_link_pages_refuse_dead_links_with_a_page_and_set_a_password_once() {
    let app = TestApp::spawn().await;
    let (org, boss, _) = org_admin(&app).await;
    let http = no_redirects();
    let unknown = Secret::generate(SecretKind::UserLink);
    for path in [
        format!("/console/invite/{}", unknown.expose()),
        "/console/reset/pcsl_garbage".to_owned(),
        "/console/invite/%FF%FE".to_owned(),
    ] {
        let r = http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers()["content-security-policy"],
            portcullis_server::console::CSP
        );
        assert!(
            set_cookie(&r, "pcs_console").is_none(),
            "no sign-out of anyone"
        );
        assert!(r.text().await.unwrap().contains("valid link"), "{path}");
    }

    let link: Value = invite(
        &app,
        &boss,
        json!({"email": "page@example.com", "org_id": org, "role": "developer"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = token_of(link["link"].as_str().unwrap());
    // An invitation's token is not a reset link.
    let r = http
        .get(app.url(&format!("/console/reset/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let page = format!("/console/invite/{token}");
    let r = http.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = cookie_pair(&set_cookie(&r, "pcs_console_login").expect("a form nonce"));
    let html = r.text().await.unwrap();
    assert!(html.contains("page@example.com"));
    let csrf = hidden_field(&html, "csrf").unwrap();
    let post = |fields: Vec<(&'static str, String)>| {
        let (http, url, cookie) = (http.clone(), app.url(&page), cookie.clone());
        async move {
            http.post(url)
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    // Without the CSRF token; two different passwords: refused, the link still live.
    let r = post(vec![
        ("password", "password number one".into()),
        ("confirm", "password number one".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("password", "password number one".into()),
        ("confirm", "password number two".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("differ"));
    let r = post(vec![
        ("csrf", csrf.clone()),
        ("password", "password number one".into()),
        ("confirm", "password number one".into()),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Your password is set"));
    app.session("page@example.com", "password number one").await;
    // Used: the page says so.
    let r = http.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("already used"));
}

#[test]
fn a_link_token_is_cut_from_logged_paths() {
    use portcullis_server::console::loggable_path;
    assert_eq!(
        loggable_path("/console/invite/pcsl_abc"),
        "/console/invite/…"
    );
    assert_eq!(loggable_path("/console/reset/pcsl_abc"), "/console/reset/…");
    assert_eq!(loggable_path("/console/orgs"), "/console/orgs");
}
