//! The developer console without a browser (reqwest): its headers and cookies, CSRF,
//! the sign-in failure limit, roles, malformed forms, and the two admin endpoints the
//! console's token buttons use. `console_browser.rs` drives the same pages in Chromium.

use crate::common;
use crate::usage::{spawn_with_usage, world_with_checks};

use common::*;
use portcullis_server::PASSWORD_FAILURES_PER_ADDRESS;
use portcullis_server::console::CSP;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org with one developer, `dev@example.com` (password `correct horse battery`).
async fn developer(app: &TestApp) -> String {
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user(
        "dev@example.com",
        "correct horse battery",
        json!({&org: "developer"}),
    )
    .await;
    org
}

/// The app's secrets, as the bootstrap admin lists them.
async fn secrets_of(app: &TestApp, client_id: &str) -> Vec<Value> {
    app.walk_pages(&format!("/admin/v1/apps/{client_id}/secrets"), 50)
        .await
}

fn assert_console_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
}

#[tokio::test]
async fn every_console_response_has_a_strict_csp_and_nosniff() {
    let app = TestApp::spawn().await;
    let http = no_redirects();
    // The CSP is strict: no inline script or style, no framing, forms to self only.
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(CSP.contains(part), "{part}");
    }
    assert!(!CSP.contains("unsafe"));
    for (path, status) in [
        ("/console/login", 200),
        ("/console/", 303),
        ("/console/orgs", 303),
        ("/console/static/console.css", 200),
        ("/console/static/console.js", 200),
        ("/console/no-such-page", 404),
    ] {
        let r = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_console_headers(&r, path);
    }
    let r = http
        .post(app.url("/console/orgs"))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_console_headers(&r, "405");
    let page = http.get(app.url("/console/login")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("style="), "no inline style");
    assert!(html.contains("<label for=\"email\">"), "labelled inputs");
}

#[tokio::test]
async fn cookies_are_http_only_same_site_strict_and_secure_only_over_tls() {
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    developer(&app).await;
    let http = no_redirects();
    let r = app
        .console_post_login(&http, "dev@example.com", "correct horse battery")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/");
    let c = set_cookie(&r, "pcs_console").expect("a session cookie");
    assert!(c.starts_with("pcs_console=pcsu_"), "{c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(c.split("; ").any(|a| a == attr), "{attr} in {c}");
    }
    assert!(!c.contains("Secure"), "plain HTTP: no Secure ({c})");

    // Through a trusted proxy that says the client used HTTPS: Secure.
    let (cookie, csrf) = app.console_login_form(&http).await;
    let r = http
        .post(app.url("/console/login"))
        .header("cookie", cookie)
        .header("x-forwarded-proto", "https")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "dev@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(&r, "pcs_console").unwrap();
    assert!(c.split("; ").any(|a| a == "Secure"), "{c}");

    // Signing out ends the admin API's session, not only the cookie.
    let s = app
        .console_session("dev@example.com", "correct horse battery")
        .await;
    let token = s.cookie.trim_start_matches("pcs_console=").to_owned();
    let (status, _) = app
        .call_as(&token, Method::GET, "/admin/v1/orgs", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = s.post(&app, "/console/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "pcs_console").unwrap().contains("Max-Age=0"));
    let (status, _) = app
        .call_as(&token, Method::GET, "/admin/v1/orgs", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A browser still holding the old cookie is told to sign in, and the cookie is cleared.
    let r = s.get(&app, "/console/orgs").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&r, "pcs_console").unwrap().contains("Max-Age=0"));
    let html = r.text().await.unwrap();
    assert!(html.contains("href=\"/console/login\""), "{html}");
    // In the console's words: the sign-in page, not the admin API's endpoint for scripts.
    assert!(html.contains("Your session has ended"), "{html}");
    assert!(!html.contains("/admin/v1/sessions"), "{html}");
}

#[tokio::test]
async fn a_post_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let s = app.console_user(&org, "admin").await;
    let path = format!("/console/orgs/{org}/apps");
    let send = |csrf: Option<&'static str>| {
        let mut form = vec![("name", "Sneaky")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        s.http
            .post(app.url(&path))
            .header("cookie", &s.cookie)
            .form(&form)
            .send()
    };
    let wrong = "0".repeat(64);
    let wrong: &'static str = Box::leak(wrong.into_boxed_str());
    for csrf in [None, Some(wrong), Some("")] {
        let r = send(csrf).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert_console_headers(&r, "403");
        assert!(r.text().await.unwrap().contains("security token"));
    }
    let apps = app
        .walk_pages(&format!("/admin/v1/apps?org={org}"), 50)
        .await;
    assert!(apps.is_empty(), "nothing was created: {apps:?}");
    // Another session's token is wrong too: tokens are per session.
    let other = app
        .console_session(
            &format!("admin-{}@example.com", &org[..8].to_lowercase()),
            "correct horse battery",
        )
        .await;
    assert_ne!(other.csrf, s.csrf);
    let r = s
        .http
        .post(app.url(&path))
        .header("cookie", &s.cookie)
        .form(&[("name", "Sneaky"), ("csrf", other.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // With the session's token, the same form works.
    let r = s.post(&app, &path, &[("name", "Honest")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let apps = app
        .walk_pages(&format!("/admin/v1/apps?org={org}"), 50)
        .await;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["name"], "Honest");
    // The sign-in form is protected as well.
    let r = s
        .http
        .post(app.url("/console/login"))
        .form(&[("email", "a@example.com"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address() {
    // A still clock: the failures all fall in one window however long the hashing takes.
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Default::default()
    })
    .await;
    developer(&app).await;
    let http = no_redirects();
    // Failures for other accounts (so that the per-account lockout, tests/limits.rs, is
    // not what refuses below).
    for i in 0..PASSWORD_FAILURES_PER_ADDRESS {
        let r = app
            .console_post_login(&http, &format!("guess{i}@example.com"), "wrong")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("The email or password is wrong.")
        );
    }
    // Over the limit, even the right password is refused for now.
    let r = app
        .console_post_login(&http, "dev@example.com", "correct horse battery")
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(set_cookie(&r, "pcs_console").is_none());
    // The limit is the address's on every password path: the admin API's sign-in too.
    assert_eq!(
        app.sign_in("dev@example.com", "correct horse battery")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_subscriber_cannot_reach_app_management() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let s = app.console_user(&w.org, "subscriber").await;
    let orgs = s.get(&app, "/console/orgs").await;
    assert_eq!(orgs.status(), StatusCode::OK);
    let html = orgs.text().await.unwrap();
    assert!(html.contains("not a developer or administrator of any organization"));
    assert!(!html.contains(&w.org));
    for path in [
        format!("/console/orgs/{}", w.org),
        format!("/console/orgs/{}/apps/new", w.org),
        format!("/console/apps/{}", w.client_id),
        format!("/console/apps/{}/delete", w.client_id),
    ] {
        let r = s.get(&app, &path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            r.text().await.unwrap().contains("that you can see"),
            "{path}"
        );
    }
    let once = "a".repeat(32);
    for (path, fields) in [
        (
            format!("/console/orgs/{}/apps", w.org),
            vec![("name", "Mine")],
        ),
        (
            format!("/console/apps/{}/secrets", w.client_id),
            vec![("once", once.as_str())],
        ),
        (format!("/console/apps/{}/delete", w.client_id), vec![]),
    ] {
        let r = s.post(&app, &path, &fields).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (status, app_now) = app
        .call(
            Method::GET,
            &format!("/admin/v1/apps/{}", w.client_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{app_now}");
    let secrets = secrets_of(&app, &w.client_id).await;
    assert_eq!(secrets.len(), 1, "no secret added");
}

#[tokio::test]
async fn admin_tokens_and_revoke_endpoints() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let dev = app.user_session(&w.org, "developer").await;
    let path = format!("/admin/v1/apps/{}/tokens", w.client_id);
    let (status, issued) = app.call_as(&dev, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let c = claims(&token);
    assert_eq!(c["client_id"], w.client_id.as_str());
    assert_eq!(c["scope"], "read write");
    assert!(c.get("cred").is_none(), "not tied to a secret: {c}");
    assert_eq!(issued["expires_at"], c["exp"]);
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    // Narrowing works like /oauth/token; more than the app has does not.
    let (status, narrow) = app
        .call_as(&dev, Method::POST, &path, Some(json!({"scope": "read"})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(narrow["scope"], "read");
    let (status, p) = app
        .call_as(&dev, Method::POST, &path, Some(json!({"scope": "admin"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");

    let revoke = format!("/admin/v1/apps/{}/revoke", w.client_id);
    let (status, r) = app
        .call_as(
            &dev,
            Method::POST,
            &revoke,
            Some(json!({"token": "not.a.token"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["revoked"], false);
    // A token of another app is refused, not silently ignored.
    let other = app.create_app(&w.org, &["read"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, p) = app
        .call_as(
            &dev,
            Method::POST,
            &format!("/admin/v1/apps/{other}/revoke"),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    let (status, r) = app
        .call_as(&dev, Method::POST, &revoke, Some(json!({"token": token})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["revoked"], true);
    assert_eq!(r["jti"], c["jti"]);
    assert_eq!(
        app.bearer_check(&w, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // A subscriber may do neither.
    let sub = app.user_session(&w.org, "subscriber").await;
    let (status, _) = app.call_as(&sub, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call_as(
            &sub,
            Method::POST,
            &revoke,
            Some(json!({"token": narrow["access_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every console POST with malformed input: 4xx, an HTML page with the console's
/// headers, nothing created, and the server still ready.
#[tokio::test]
async fn every_console_post_answers_malformed_forms_with_4xx() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let s = app.console_user(&w.org, "admin").await;
    let secrets = secrets_of(&app, &w.client_id).await;
    let sid = secrets[0]["id"].as_str().unwrap().to_owned();
    let cid = &w.client_id;
    let (_, group) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{}/groups", w.org),
            Some(json!({"name": "G", "scopes": ["read"]})),
        )
        .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let feed = app
        .create_feed(cid, json!({"name": "F", "kind": "broadcast"}))
        .await;
    let fid = feed["id"].as_str().unwrap().to_owned();
    let (org, res) = (&w.org, &w.resource);
    let routes = [
        format!("/console/orgs/{}/apps", w.org),
        format!("/console/apps/{cid}/secrets"),
        format!("/console/apps/{cid}/token"),
        format!("/console/apps/{cid}/revoke"),
        format!("/console/apps/{cid}/delete"),
        format!("/console/apps/{cid}/secrets/{sid}/delete"),
        "/console/logout".to_owned(),
        "/console/login".to_owned(),
        format!("/console/orgs/{org}/resources/new"),
        format!("/console/orgs/{org}/resources/{res}/edit"),
        format!("/console/orgs/{org}/resources/{res}/delete"),
        format!("/console/orgs/{org}/groups/new"),
        format!("/console/orgs/{org}/groups/{gid}/edit"),
        format!("/console/orgs/{org}/groups/{gid}/delete"),
        format!("/console/orgs/{org}/protect"),
        format!("/console/apps/{cid}/feeds"),
        format!("/console/apps/{cid}/feeds/{fid}/topics"),
        format!("/console/apps/{cid}/feeds/{fid}/delete"),
        "/console/orgs/new".to_owned(),
        format!("/console/orgs/{org}/edit"),
    ];
    let csrf = format!("csrf={}", s.csrf);
    let bodies: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "JSON instead of a form",
            Some("application/json"),
            b"{}".to_vec(),
            415,
        ),
        ("no content type", None, csrf.clone().into_bytes(), 415),
        (
            "multipart",
            Some("multipart/form-data; boundary=x"),
            b"--x--".to_vec(),
            415,
        ),
        (
            "a form over 64 KiB",
            Some("application/x-www-form-urlencoded"),
            format!("{csrf}&pad={}", "a".repeat(70_000)).into_bytes(),
            413,
        ),
        (
            "bytes that are not UTF-8",
            Some("application/x-www-form-urlencoded"),
            format!("{csrf}&name=%FF%FE").into_bytes(),
            400,
        ),
        (
            "no CSRF token",
            Some("application/x-www-form-urlencoded"),
            b"name=x&token=y".to_vec(),
            403,
        ),
        (
            "the CSRF token twice",
            Some("application/x-www-form-urlencoded"),
            format!("{csrf}&{csrf}&name=x").into_bytes(),
            403,
        ),
        (
            "an unknown field",
            Some("application/x-www-form-urlencoded"),
            format!("{csrf}&surprise=1&name=x&token=y&once={}", "b".repeat(32)).into_bytes(),
            400,
        ),
    ];
    let mut checked = 0;
    for route in &routes {
        for (what, ct, body, status) in &bodies {
            let mut req = s
                .http
                .post(app.url(route))
                .header("cookie", &s.cookie)
                .body(body.clone());
            if let Some(ct) = ct {
                req = req.header("content-type", *ct);
            }
            let r = req.send().await.unwrap();
            let got = r.status().as_u16();
            // The sign-in form has its own CSRF token (the session's is wrong there).
            let want = if route == "/console/login" && *what == "an unknown field" {
                403
            } else {
                *status
            };
            assert_eq!(got, want, "POST {route}: {what}");
            assert_console_headers(&r, route);
            assert!(
                r.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{route}: {what}"
            );
            checked += 1;
        }
    }
    // Field-level mistakes, with a valid token.
    let once = "c".repeat(32);
    type FieldCase<'a> = (String, Vec<(&'a str, &'a str)>, u16);
    let field_cases: Vec<FieldCase> = vec![
        (routes[0].clone(), vec![], 400),
        (routes[0].clone(), vec![("name", "a"), ("name", "b")], 400),
        (routes[0].clone(), vec![("name", "")], 400),
        (
            routes[0].clone(),
            vec![("name", "x"), ("scopes", "read bad\"scope")],
            400,
        ),
        (
            routes[0].clone(),
            vec![("name", "x"), ("sandbox.nope", "read")],
            400,
        ),
        (
            routes[0].clone(),
            vec![("name", "x"), ("sandbox.prod", "everything")],
            400,
        ),
        (routes[1].clone(), vec![], 400),
        (routes[1].clone(), vec![("once", "short")], 400),
        (
            routes[2].clone(),
            vec![("once", "not hex at all, not hex at all!!")],
            400,
        ),
        (routes[3].clone(), vec![], 400),
        // A resource without a name; a guided flow with two scopes; a topic twice named.
        (routes[8].clone(), vec![("sandbox", "prod")], 400),
        (
            routes[14].clone(),
            vec![
                ("api", "A"),
                ("app", "B"),
                ("scope", "a b"),
                ("once", once.as_str()),
            ],
            400,
        ),
        (routes[16].clone(), vec![("name", "a"), ("name", "b")], 400),
        (
            "/console/apps/NOT-AN-ID/secrets".to_owned(),
            vec![("once", once.as_str())],
            400,
        ),
        (
            format!("/console/apps/{cid}/secrets/NOT-AN-ID/delete"),
            vec![],
            400,
        ),
        (
            "/console/orgs/%00/apps".to_owned(),
            vec![("name", "x")],
            400,
        ),
    ];
    for (route, fields, status) in &field_cases {
        let r = s.post(&app, route, fields).await;
        assert_eq!(r.status().as_u16(), *status, "POST {route} {fields:?}");
        checked += 1;
    }
    // Without a session every POST is 401.
    for route in &routes[..7] {
        let r = no_redirects()
            .post(app.url(route))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{route}");
        checked += 1;
    }
    assert!(checked > 80, "{checked}");
    let apps = app
        .walk_pages(&format!("/admin/v1/apps?org={}", w.org), 50)
        .await;
    assert_eq!(apps.len(), 1, "only the world's app: {apps:?}");
    let after = secrets_of(&app, cid).await;
    assert_eq!(after.len(), 1);
    app.assert_ready().await;
}

#[tokio::test]
async fn a_new_secret_is_shown_once_never_cached_and_a_resent_form_shows_nothing() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let s = app.console_user(&w.org, "developer").await;
    let page = s.get(&app, &format!("/console/apps/{}", w.client_id)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    // The "Add client secret" form is the second once-only form (after the token's).
    let action = format!("action=\"/console/apps/{}/secrets\"", w.client_id);
    let form = &html[html.find(&action).expect("the add-secret form")..];
    let once = hidden_field(form, "once").expect("a once-only nonce");
    let path = format!("/console/apps/{}/secrets", w.client_id);
    let r = s.post(&app, &path, &[("once", &once)]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let shown = r.text().await.unwrap();
    let secret = hidden_text(&shown, "secret");
    assert!(secret.starts_with("pcss_"), "{secret}");
    app.access_token(&w.client_id, &secret, None).await;
    // The same form again (a reload): refused, nothing new made or shown.
    let again = s.post(&app, &path, &[("once", &once)]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let text = again.text().await.unwrap();
    assert!(!text.contains("pcss_"), "{text}");
    let secrets = secrets_of(&app, &w.client_id).await;
    assert_eq!(secrets.len(), 2, "the world's and one new");
    // The app page lists the secret by its prefix only.
    let page = s.get(&app, &format!("/console/apps/{}", w.client_id)).await;
    assert!(!page.text().await.unwrap().contains(&secret));
}

/// The text of the `<code id="…">` element `id`.
fn hidden_text(html: &str, id: &str) -> String {
    let marker = format!("<code id=\"{id}\"");
    let start = html.find(&marker).expect("the element");
    let start = start + html[start..].find('>').unwrap() + 1;
    let len = html[start..].find('<').unwrap();
    html[start..start + len].to_owned()
}

#[tokio::test]
async fn a_malformed_certificate_upload_or_query_is_a_4xx_page_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let world = app.gateway_world(false).await;
    let dev = app.console_user(&world.org, "developer").await;
    let path = format!("/console/apps/{}/certificates", world.client_id);
    let multipart = |csrf: Option<&str>, file: Vec<u8>| {
        let mut form = reqwest::multipart::Form::new().part(
            "certificate",
            reqwest::multipart::Part::bytes(file).file_name("c.pem"),
        );
        if let Some(c) = csrf {
            form = form.text("csrf", c.to_owned());
        }
        dev.http
            .post(app.url(&path))
            .header("cookie", &dev.cookie)
            .multipart(form)
    };
    let cert = TestCert::valid(jsonwebtoken::Algorithm::ES256, app.now());
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            multipart(None, cert.pem.clone().into_bytes()),
            403,
            "security token",
        ),
        (
            multipart(Some(&dev.csrf), vec![0xff, 0xfe, 0x00]),
            400,
            "not PEM text",
        ),
        (
            multipart(Some(&dev.csrf), Vec::new()),
            400,
            "No file was chosen",
        ),
        (multipart(Some(&dev.csrf), vec![b'a'; 70 * 1024]), 413, ""),
        (
            multipart(Some(&dev.csrf), cert.key_pem.clone().into_bytes()),
            400,
            "",
        ),
        (
            dev.http
                .post(app.url(&path))
                .header("cookie", &dev.cookie)
                .form(&[("csrf", dev.csrf.as_str())]),
            415,
            "multipart/form-data",
        ),
        (
            dev.http
                .post(app.url(&path))
                .header("cookie", &dev.cookie)
                .header("content-type", "multipart/form-data; boundary=x")
                .body("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nab"),
            400,
            "",
        ),
    ];
    for (i, (req, status, says)) in cases.into_iter().enumerate() {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        assert_console_headers(&r, "upload");
        let page = r.text().await.unwrap();
        assert!(page.contains(says), "case {i}: {page}");
    }
    let (_, certs) = app
        .call(
            Method::GET,
            &format!("/admin/v1/apps/{}/certificates", world.client_id),
            None,
        )
        .await;
    assert_eq!(certs["items"], json!([]), "nothing stored");
    // The good one is stored, and the page goes back to the app.
    let r = multipart(Some(&dev.csrf), cert.pem.clone().into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for (path, status) in [
        ("/console/notifications?after=x", 400),
        ("/console/notifications?limit=1", 400),
        (
            &format!("/console/apps/{}/bogus/key_1/delete", world.client_id) as &str,
            404,
        ),
        (
            &format!("/console/apps/{}/keypairs/nope/delete", world.client_id),
            400,
        ),
    ] {
        let r = dev.get(&app, path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    let r = app
        .http
        .get(app.url("/notificationgateway/1.0/notifications?limit=0"))
        .basic_auth("developer@example.com", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_refused_edit_shows_what_was_typed_not_what_is_stored() {
    let app = TestApp::spawn().await;
    let org = developer(&app).await;
    let created = app.create_app(&org, &["read"]).await;
    let cid = created["client_id"].as_str().unwrap();
    let dev = app
        .console_session("dev@example.com", "correct horse battery")
        .await;
    let path = format!("/console/apps/{cid}/edit");
    // The admin API refuses a token lifetime under 60 s.
    let r = dev
        .post(
            &app,
            &path,
            &[
                ("name", "Typed name"),
                ("status", "suspended"),
                ("group", ""),
                ("scopes", "typed scopes"),
                ("token_ttl_seconds", "5"),
                ("quota_requests", "7"),
                ("quota_per", "second"),
                ("dpop_bound_access_tokens", "true"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("between 60"),
        "the admin API's detail: {html}"
    );
    for typed in [
        "value=\"Typed name\"",
        "value=\"typed scopes\"",
        "name=\"token_ttl_seconds\" value=\"5\"",
        "name=\"quota_requests\" value=\"7\"",
        "<option value=\"suspended\" selected>",
        "<option value=\"second\" selected>",
        "name=\"dpop_bound_access_tokens\" value=\"true\" checked",
    ] {
        assert!(html.contains(typed), "{typed} in {html}");
    }
    // Nothing was stored.
    let (_, stored) = app
        .call(Method::GET, &format!("/admin/v1/apps/{cid}"), None)
        .await;
    assert_eq!(stored["name"], "Partner app");
    assert_eq!(stored["status"], "active");
    assert_eq!(stored["dpop_bound_access_tokens"], false);
}

#[tokio::test]
async fn the_edit_form_requires_dpop_and_an_unticked_box_stops_requiring_it() {
    let app = TestApp::spawn().await;
    let org = developer(&app).await;
    let created = app.create_app(&org, &["read"]).await;
    let cid = created["client_id"].as_str().unwrap();
    assert_eq!(created["dpop_bound_access_tokens"], false);
    let dev = app
        .console_session("dev@example.com", "correct horse battery")
        .await;
    let (page, path) = (
        format!("/console/apps/{cid}"),
        format!("/console/apps/{cid}/edit"),
    );
    let stored = || async {
        let (status, app_now) = app
            .call(Method::GET, &format!("/admin/v1/apps/{cid}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{app_now}");
        app_now
    };
    let html = dev.get(&app, &page).await.text().await.unwrap();
    assert!(
        html.contains("bearer tokens; bound to the client"),
        "{html}"
    );
    let html = dev.get(&app, &path).await.text().await.unwrap();
    assert!(html.contains("Require DPoP-bound tokens"), "{html}");
    assert!(
        html.contains("name=\"dpop_bound_access_tokens\" value=\"true\" aria-describedby"),
        "unticked: {html}"
    );
    // The form as a browser sends it, with the box ticked.
    let fields = |dpop: Option<&'static str>| {
        let mut f = vec![
            ("name", "Partner app"),
            ("status", "active"),
            ("group", ""),
            ("scopes", "read"),
            ("token_ttl_seconds", "600"),
            ("quota_requests", ""),
            ("quota_per", "minute"),
        ];
        f.extend(dpop.map(|v| ("dpop_bound_access_tokens", v)));
        f
    };
    // Without the session's CSRF token, nothing changes.
    let r = dev
        .http
        .post(app.url(&path))
        .header("cookie", &dev.cookie)
        .form(&fields(Some("true")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(stored().await["dpop_bound_access_tokens"], false);
    let r = dev.post(&app, &path, &fields(Some("true"))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let now = stored().await;
    assert_eq!(now["dpop_bound_access_tokens"], true);
    assert_eq!(now["token_ttl_seconds"], 600, "the other fields as well");
    let html = dev.get(&app, &page).await.text().await.unwrap();
    assert!(
        html.contains("bound to the client's key (DPoP required)"),
        "{html}"
    );
    let html = dev.get(&app, &path).await.text().await.unwrap();
    assert!(
        html.contains("name=\"dpop_bound_access_tokens\" value=\"true\" checked"),
        "ticked: {html}"
    );
    // A checkbox holds true or nothing: another value is refused.
    let r = dev.post(&app, &path, &fields(Some("false"))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("is a checkbox"));
    assert_eq!(stored().await["dpop_bound_access_tokens"], true);
    // Unticked, the box is absent from the form: that turns the requirement off.
    let r = dev.post(&app, &path, &fields(None)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored().await["dpop_bound_access_tokens"], false);
    let html = dev.get(&app, &page).await.text().await.unwrap();
    assert!(
        html.contains("bearer tokens; bound to the client"),
        "{html}"
    );
}

#[tokio::test]
async fn the_audit_page_filters_pages_and_is_for_admins_only() {
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &[]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 55 changes of the org, more than one page of the console's 50.
    for i in 0..55 {
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/admin/v1/orgs/{org}"),
                Some(json!({"name": format!("Acme {i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let admin = app.console_user(&org, "admin").await;
    let here = format!("/console/orgs/{org}/audit");
    let r = admin.get(&app, &format!("{here}?action=orgs.update")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert_eq!(html.matches("<code>orgs.update</code>").count(), 50);
    let marker = "id=\"older\" href=\"";
    let start = html.find(marker).expect("a link to the next page") + marker.len();
    let next = html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&");
    assert!(
        next.contains("action=orgs.update"),
        "the filter is kept: {next}"
    );
    let r = admin.get(&app, &next).await;
    let html = r.text().await.unwrap();
    assert_eq!(html.matches("<code>orgs.update</code>").count(), 5);
    assert!(!html.contains(marker), "the last page");
    assert!(html.contains("Newest entries"));

    // Newest first: a change made after the 55 leads the unfiltered page.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/groups"),
            Some(json!({"name": "Readers", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let html = admin.get(&app, &here).await.text().await.unwrap();
    let group = html
        .find("<code>orgs.groups.create</code>")
        .expect("the newest entry");
    let update = html.find("<code>orgs.update</code>").unwrap();
    assert!(group < update, "newest first");

    // A date range that holds nothing, an action nothing has, an outcome none had: the
    // empty state.
    for q in [
        "from=2001-01-01&to=2001-01-31",
        "action=nothing.like.this",
        "action=orgs.update&outcome=failure",
    ] {
        let r = admin.get(&app, &format!("{here}?{q}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("No entries match these filters."),
            "{q}"
        );
    }
    // Today's range holds them.
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let r = admin
        .get(
            &app,
            &format!("{here}?action=orgs.update&from={today}&to={today}"),
        )
        .await;
    assert_eq!(
        r.text()
            .await
            .unwrap()
            .matches("<code>orgs.update</code>")
            .count(),
        50
    );

    // Malformed filters are pages saying so, never a 5xx.
    for q in [
        "from=yesterday",
        "to=2026-13-01",
        "bogus=1",
        "after=not-a-cursor",
        "outcome=maybe",
    ] {
        let r = admin.get(&app, &format!("{here}?{q}")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_console_headers(&r, q);
    }

    // A developer of the org reads no audit trail: the admin API's refusal.
    let dev = app.console_user(&org, "developer").await;
    let r = dev.get(&app, &here).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("audit trail"));
}

/// A platform administrator lands on the organizations even when there are none yet, with
/// the way to create the first; a person with no organization lands on notifications.
#[tokio::test]
async fn a_platform_admin_lands_on_organizations_even_with_none() {
    let app = TestApp::spawn().await;
    for (email, platform) in [("pa@example.com", true), ("nobody@example.com", false)] {
        let id = app
            .create_user(email, "correct horse battery", json!({}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, _) = app
            .call(
                Method::PATCH,
                &format!("/admin/v1/users/{id}"),
                Some(json!({"platform_admin": platform})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let s = app.console_session(email, "correct horse battery").await;
        let home = s.get(&app, "/console/").await;
        assert_eq!(home.status(), StatusCode::SEE_OTHER, "{email}");
        let to = home.headers()["location"].to_str().unwrap().to_owned();
        let orgs = s.get(&app, "/console/orgs").await.text().await.unwrap();
        if platform {
            assert_eq!(to, "/console/orgs");
            assert!(orgs.contains("href=\"/console/orgs/new\""), "{orgs}");
            assert!(orgs.contains("No organizations yet."), "{orgs}");
        } else {
            assert_eq!(to, "/console/notifications");
            assert!(!orgs.contains("/console/orgs/new\""), "{orgs}");
        }
    }
}

/// The usage pages and their CSV answer malformed input with a 4xx page, never a 5xx:
/// a range that is not one of the four, a parameter they do not take, an org or app that
/// does not exist (or is no id at all).
#[tokio::test]
async fn usage_pages_answer_malformed_input_with_a_4xx_page() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let dev = app.console_user(&w.org, "developer").await;
    let (org, cid) = (w.org.as_str(), w.client_id.as_str());
    let unknown_org = "0000000000000000000000AA@Org";
    let unknown_app = "ffffffffffffffffffffffffffffffff";
    for (path, status) in [
        (format!("/console/orgs/{org}/overview?range=2d"), 400),
        (format!("/console/orgs/{org}/overview?range="), 400),
        (format!("/console/orgs/{org}/overview?step=60"), 400),
        (format!("/console/orgs/{org}/overview?range=%FF%FE"), 400),
        (format!("/console/apps/{cid}?range=1y"), 400),
        (format!("/console/apps/{cid}?from=0&range=1h"), 400),
        (format!("/console/orgs/{org}/usage.csv?range=forever"), 400),
        (format!("/console/apps/{cid}/usage.csv?to=1"), 400),
        (format!("/console/orgs/{unknown_org}/overview"), 404),
        (format!("/console/orgs/{unknown_org}/usage.csv"), 404),
        (
            "/console/orgs/not-an-org/usage.csv?range=1h".to_owned(),
            400,
        ),
        (format!("/console/apps/{unknown_app}?range=7d"), 404),
        (format!("/console/apps/{unknown_app}/usage.csv"), 404),
        ("/console/apps/%00/usage.csv".to_owned(), 400),
    ] {
        let r = dev.get(&app, &path).await;
        let got = r.status();
        let html = r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html");
        let body = r.text().await.unwrap();
        assert!(got.is_client_error(), "{path}: {got} {body}");
        assert_eq!(got.as_u16(), status, "{path}: {body}");
        assert!(html, "{path}: a page, not a problem document");
        assert!(
            body.contains("class=\"alert\""),
            "{path}: says what went wrong: {body}"
        );
    }
    // A good range still works, as a page and as a CSV.
    let r = dev
        .get(&app, &format!("/console/orgs/{org}/overview?range=30d"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = dev
        .get(&app, &format!("/console/apps/{cid}/usage.csv?range=1h"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_console_headers(&r, "the CSV");
}

/// With usage analytics off, the usage section says nothing is counted, and how that is
/// chosen.
#[tokio::test]
async fn with_usage_analytics_off_the_console_says_nothing_is_counted() {
    let app = spawn_with_usage(portcullis_server::config::UsageConfig {
        enabled: false,
        ..Default::default()
    })
    .await;
    let (w, _) = world_with_checks(&app, 1).await;
    assert!(app.state.flush_usage().await);
    let dev = app.console_user(&w.org, "developer").await;
    for path in [
        format!("/console/orgs/{}/overview", w.org),
        format!("/console/apps/{}", w.client_id),
    ] {
        let r = dev.get(&app, &path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("nothing is counted"), "{path}: {body}");
        assert!(body.contains("--usage-analytics false"), "{path}");
        assert!(!body.contains("<svg class=\"chart\""), "{path}: no chart");
    }
}
