//! The console in a real browser: Debian's `chromium`, driven through `chromedriver`
//! (WebDriver, with `fantoccini`, harness in support/browser.rs) against the real server:
//! a developer's journey (sign in, create an app, a secret seen exactly once, a token,
//! revoke it and watch the gateway refuse it, delete the app after confirming), an
//! admin's (resources, groups, feeds, Protect an API, the overview, phone widths), a
//! platform administrator's (create and edit organizations, which an org admin may not),
//! and every page at two widths.
//!
//! Screenshots of the main pages go to `screenshots/` at the workspace root (git-ignored).
//! Without chromium or chromedriver the test says why and passes, except under CI (`CI`
//! set), where it fails: `.ci/run` installs them.

use crate::apitoken;
use crate::browser;
use crate::common;
use crate::usage::{app_in, check, token_request};

use apitoken::*;
use browser::*;
use common::*;
use fantoccini::{Client, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn a_developer_goes_from_sign_in_to_a_revoked_token_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let world = app.gateway_world(false).await;
    app.create_user("admin@example.com", PASSWORD, json!({&world.org: "admin"}))
        .await;
    let driver = Driver::start().await;
    let c = driver.browser().await;

    // Signed out, the console sends you to sign in.
    c.goto(&app.url("/console/")).await.unwrap();
    wait_for_title(&c, "Sign in").await;
    shot(&c, "01-sign-in").await;
    type_into(&c, "#email", "admin@example.com").await;
    type_into(&c, "#password", "wrong password").await;
    click_button(&c, "Sign in").await;
    wait_for_title(&c, "Sign in").await;
    assert!(
        text(&c, ".alert")
            .await
            .contains("The email or password is wrong.")
    );
    type_into(&c, "#password", PASSWORD).await;
    click_button(&c, "Sign in").await;
    wait_for_title(&c, "Your organizations").await;
    shot(&c, "02-organizations").await;

    // The org's apps, then a new one.
    click_link(&c, "Acme").await;
    wait_for_title(&c, "Acme").await;
    assert!(
        c.source().await.unwrap().contains(&world.client_id),
        "the world's app is listed"
    );
    click_link(&c, "Create application").await;
    wait_for_title(&c, "Create application").await;
    type_into(&c, "#name", "Billing sync").await;
    type_into(&c, "#scopes", "read").await;
    c.find(Locator::Css("input[name=products][value=events]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#sb-prod"))
        .await
        .unwrap()
        .select_by_value("read")
        .await
        .unwrap();
    shot(&c, "03-create-application").await;
    click_button(&c, "Create application").await;
    wait_for_title(&c, "Billing sync").await;
    let client_id = text(&c, "#client-id").await;
    let (status, created) = app
        .call(Method::GET, &format!("/admin/v1/apps/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["name"], "Billing sync");
    assert_eq!(
        created["technical_account_id"].as_str().unwrap(),
        text(&c, "#tech-account").await
    );
    assert!(
        c.source().await.unwrap().contains("No client secrets."),
        "empty state"
    );
    shot(&c, "04-application").await;
    let app_url = c.current_url().await.unwrap().to_string();

    // A secret, shown exactly once.
    click_button(&c, "Add client secret").await;
    wait_for_title(&c, "Your new client secret").await;
    let secret = text(&c, "#secret").await;
    assert!(secret.starts_with("pcss_"), "{secret}");
    shot(&c, "05-secret-shown-once").await;
    // It works, with the client id the page shows.
    app.access_token(&client_id, &secret, None).await;
    // Reloading does not show it again (nor make another).
    c.refresh().await.unwrap();
    let after_reload = c.source().await.unwrap();
    shot(&c, "05b-secret-after-reload").await;
    assert!(!after_reload.contains(&secret), "the secret is shown once");
    assert!(
        after_reload.contains("This form was already sent"),
        "a resent form says so: {after_reload}"
    );
    // Neither does going back to it from the app page.
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "Billing sync").await;
    assert!(!c.source().await.unwrap().contains(&secret));
    c.back().await.unwrap();
    assert!(
        !c.source().await.unwrap().contains(&secret),
        "back does not show it"
    );
    let (_, secrets) = app
        .call(
            Method::GET,
            &format!("/admin/v1/apps/{client_id}/secrets"),
            None,
        )
        .await;
    assert_eq!(
        secrets["items"].as_array().unwrap().len(),
        1,
        "one secret, not two"
    );

    // The Edge Network's button: an access token, accepted by the gateway.
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "Billing sync").await;
    click_button(&c, "Generate access token").await;
    wait_for_title(&c, "Access token").await;
    let token = text(&c, "#token").await;
    assert_eq!(claims(&token)["client_id"], client_id.as_str());
    assert!(text(&c, "#expires").await.contains("(in 3600 s)"));
    shot(&c, "06-access-token").await;
    let mine = GatewayWorld {
        org: world.org.clone(),
        client_id: client_id.clone(),
        secret,
        resource: world.resource.clone(),
    };
    assert_eq!(
        app.bearer_check(&mine, &token).await.status(),
        StatusCode::OK
    );

    // Revoke it by pasting it; the gateway refuses it from the next request on.
    click_link(&c, "Revoke a token").await;
    wait_for_title(&c, "Revoke a token").await;
    type_into(&c, "#token", &token).await;
    click_button(&c, "Revoke token").await;
    wait_for_title(&c, "Revoke a token").await;
    assert!(text(&c, ".notice").await.contains("The token was revoked."));
    shot(&c, "07-token-revoked").await;
    let denied = app.bearer_check(&mine, &token).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);

    // On a phone-sized screen the app page still reads (no horizontal scrolling).
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "Billing sync").await;
    c.set_window_size(390, 844).await.unwrap();
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    shot(&c, "08-application-phone").await;
    let widest = c
        .execute(
            "let w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('*')).filter(e => e.getBoundingClientRect().right > w).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join(', ');",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "horizontal overflow {overflow}; past the edge: {widest}"
    );
    c.set_window_size(1280, 1000).await.unwrap();

    // Delete, after a confirmation step.
    click_link(&c, "Delete application").await;
    wait_for_title(&c, "Delete application?").await;
    shot(&c, "09-delete-confirmation").await;
    let (status, _) = app
        .call(Method::GET, &format!("/admin/v1/apps/{client_id}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the confirmation page deletes nothing"
    );
    click_button(&c, "Delete application").await;
    wait_for_title(&c, "Acme").await;
    assert!(!c.source().await.unwrap().contains(&client_id));
    let (status, _) = app
        .call(Method::GET, &format!("/admin/v1/apps/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signing out ends the session.
    click_button(&c, "Sign out").await;
    wait_for_title(&c, "Sign in").await;
    c.goto(&app.url("/console/orgs")).await.unwrap();
    wait_for_title(&c, "Sign in").await;
    c.close().await.unwrap();
}

/// `GET <path>` of the admin API as the bootstrap admin (asserting 200).
async fn admin_get(app: &TestApp, path: &str) -> Value {
    let (status, v) = app.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
    v
}

/// Sign in through the form as `email`; lands on "Your organizations".
async fn sign_in(c: &Client, app: &TestApp, email: &str) {
    c.goto(&app.url("/console/login")).await.unwrap();
    wait_for_title(c, "Sign in").await;
    type_into(c, "#email", email).await;
    type_into(c, "#password", PASSWORD).await;
    click_button(c, "Sign in").await;
    wait_for_title(c, "Your organizations").await;
}

/// No element reaches past the right edge at a phone's width (390 px). A table's
/// scroll box (`.scroll`, `overflow-x: auto`) must fit; what scrolls inside it may not.
/// A page opened at a fragment (`#usage`) is scrolled back to it after the resize, for
/// the screenshot.
async fn assert_fits_a_phone(c: &Client, name: &str) {
    c.set_window_size(390, 844).await.unwrap();
    c.execute(
        "const t = location.hash && document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    let widest = c
        .execute(
            "let w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('*')).filter(e => !(e.parentElement && e.parentElement.closest('.scroll')) && e.getBoundingClientRect().right > w + 1).map(e => e.tagName + '.' + e.className).join(', ');",
            vec![],
        )
        .await
        .unwrap();
    shot(c, name).await;
    c.set_window_size(1280, 1000).await.unwrap();
    assert_eq!(
        widest.as_str(),
        Some(""),
        "past the edge on a phone: {widest}"
    );
}

#[tokio::test]
async fn certificates_key_pairs_api_keys_and_edits_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let world = app.gateway_world(false).await;
    app.create_user(
        "dev@example.com",
        PASSWORD,
        json!({&world.org: "developer"}),
    )
    .await;
    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &app, "dev@example.com").await;
    let app_url = app.url(&format!("/console/apps/{}", world.client_id));
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "caller").await;
    let empty = c.source().await.unwrap();
    assert!(empty.contains("No certificates."), "empty state");
    assert!(empty.contains("No key pairs."), "empty state");

    // A certificate chosen with the file input (what a person without JavaScript does).
    let cert = TestCert::valid(jsonwebtoken::Algorithm::RS256, app.now());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.pem");
    std::fs::write(&file, &cert.pem).unwrap();
    click_link(&c, "Upload certificate").await;
    wait_for_title(&c, "Upload a certificate").await;
    shot(&c, "10-upload-certificate").await;
    assert_fits_a_phone(&c, "10b-upload-certificate-phone").await;
    type_into(&c, "#certificate", file.to_str().unwrap()).await;
    click_button(&c, "Upload certificate").await;
    wait_for_title(&c, "caller").await;
    let listed = text(&c, "#certificates").await;
    let certs = admin_get(
        &app,
        &format!("/admin/v1/apps/{}/certificates", world.client_id),
    )
    .await;
    let id = certs["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(listed.contains(&id), "{listed}");
    assert!(listed.contains("Billing service account"), "{listed}");
    shot(&c, "11-certificate-listed").await;

    // The same certificate again: the admin API's refusal, on the form.
    click_link(&c, "Upload certificate").await;
    wait_for_title(&c, "Upload a certificate").await;
    type_into(&c, "#certificate", file.to_str().unwrap()).await;
    click_button(&c, "Upload certificate").await;
    assert!(text(&c, ".alert").await.contains("already uploaded"));

    // Another one dropped onto the drop zone (console.js hands it to the file input).
    let dropped = TestCert::valid(jsonwebtoken::Algorithm::ES256, app.now());
    c.execute(
        "const dt = new DataTransfer(); dt.items.add(new File([arguments[0]], 'dropped.pem', {type: 'application/x-pem-file'})); document.querySelector('[data-drop-for]').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        vec![json!(dropped.pem)],
    )
    .await
    .unwrap();
    let chosen = c
        .execute(
            "return document.getElementById('certificate').files[0].name;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(chosen, json!("dropped.pem"));
    click_button(&c, "Upload certificate").await;
    wait_for_title(&c, "caller").await;
    text(&c, "#certificates").await;
    let certs = admin_get(
        &app,
        &format!("/admin/v1/apps/{}/certificates", world.client_id),
    )
    .await;
    assert_eq!(certs["items"].as_array().unwrap().len(), 2, "{certs}");
    assert!(c.source().await.unwrap().contains("ES256"));

    // A key pair: the private key is shown once.
    c.find(Locator::Css("#alg"))
        .await
        .unwrap()
        .select_by_value("ES256")
        .await
        .unwrap();
    click_button(&c, "Generate key pair").await;
    wait_for_title(&c, "Your new key pair").await;
    let private_key = text(&c, "#private-key").await;
    assert!(
        private_key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{private_key}"
    );
    let kid = text(&c, "#kid").await;
    let pairs = admin_get(
        &app,
        &format!("/admin/v1/apps/{}/keypairs", world.client_id),
    )
    .await;
    assert_eq!(pairs["items"][0]["kid"], kid.as_str());
    assert_eq!(pairs["items"][0]["alg"], "ES256");
    shot(&c, "12-key-pair-shown-once").await;
    c.refresh().await.unwrap();
    let again = c.source().await.unwrap();
    assert!(!again.contains("BEGIN PRIVATE KEY"), "shown once");
    assert!(again.contains("This form was already sent"));
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "caller").await;
    assert!(text(&c, "#keypairs").await.contains(&kid));
    assert!(!c.source().await.unwrap().contains("BEGIN PRIVATE KEY"));

    // An API key bundle, shown once; its secret works.
    click_button(&c, "Create API key bundle").await;
    wait_for_title(&c, "Your API key bundle").await;
    let bundle: Value = serde_json::from_str(&text(&c, "#bundle").await).unwrap();
    assert_eq!(bundle["appClientId"], world.client_id.as_str());
    app.access_token(
        &world.client_id,
        bundle["appClientSecret"].as_str().unwrap(),
        None,
    )
    .await;
    shot(&c, "13-api-key-bundle").await;

    // Deleting the key pair, after confirming.
    c.goto(&app_url).await.unwrap();
    wait_for_title(&c, "caller").await;
    c.find(Locator::Css(&format!("a[href$='/keypairs/{kid}/delete']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_title(&c, "Delete key pair?").await;
    click_button(&c, "Delete key pair").await;
    wait_for_title(&c, "caller").await;
    let pairs = admin_get(
        &app,
        &format!("/admin/v1/apps/{}/keypairs", world.client_id),
    )
    .await;
    assert_eq!(pairs["items"], json!([]));

    // Editing the app: its name, scopes and DPoP requirement, through PATCH.
    click_link(&c, "Edit application").await;
    wait_for_title(&c, "Edit application").await;
    shot(&c, "14-edit-application").await;
    let name = c.find(Locator::Css("#name")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("Billing caller").await.unwrap();
    let scopes = c.find(Locator::Css("#scopes")).await.unwrap();
    scopes.clear().await.unwrap();
    scopes.send_keys("read").await.unwrap();
    c.find(Locator::Css("#dpop"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_button(&c, "Save changes").await;
    wait_for_title(&c, "Billing caller").await;
    assert!(text(&c, "#token-binding").await.contains("DPoP required"));
    let edited = admin_get(&app, &format!("/admin/v1/apps/{}", world.client_id)).await;
    assert_eq!(edited["scopes"], json!(["read"]));
    assert_eq!(edited["dpop_bound_access_tokens"], true, "the ticked box");
    assert_eq!(edited["products"], json!(["events"]), "kept");
    assert_eq!(edited["sandboxes"], json!({"prod": "read"}), "kept");
    // A bad value is the admin API's refusal, on the form.
    click_link(&c, "Edit application").await;
    wait_for_title(&c, "Edit application").await;
    type_into(&c, "#ttl", "soon").await;
    click_button(&c, "Save changes").await;
    assert!(text(&c, ".alert").await.contains("whole number"));
    c.close().await.unwrap();
}

/// Wait (bounded) until `f` gives something.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_subscriber_approves_an_oauth1_request_and_sees_notifications_live_in_chromium() {
    use oauth1_request as oauth;
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            allow_secrets_over_http: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    // The publisher's callback: a real HTTP server that records what it is called with.
    let calls: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let publisher = format!("http://{}", listener.local_addr().unwrap());
    let recorded = calls.clone();
    let router = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            recorded.lock().unwrap().push(q.unwrap_or_default());
            async { axum::response::Html("<main><h1>Linked</h1></main>") }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let (client_id, secret, _org) = app.client(&[]).await;
    let feed = app
        .create_feed(
            &client_id,
            json!({"name": "Order updates", "kind": "point_to_point",
                "initiation_url": format!("{publisher}/initiation"),
                "callback_url": format!("{publisher}/callback")}),
        )
        .await;
    let feed_id = feed["id"].as_str().unwrap();
    let news = app
        .create_feed(&client_id, json!({"name": "News", "kind": "broadcast"}))
        .await;
    let news_id = news["id"].as_str().unwrap();
    let topic = app.create_topic(&client_id, news_id, "sale").await;
    app.create_user("alice@example.com", PASSWORD, json!({}))
        .await;

    // The publisher asks for a request token (OAuth 1.0 PLAINTEXT, signed by oauth1-request).
    let uri = app.url("/identity/1.0/oauth/requesttoken");
    let signed = oauth::Builder::<_, _, &str>::new(
        oauth::Credentials::new(client_id.as_str(), secret.as_str()),
        oauth::PLAINTEXT,
    )
    .authorize("POST", &uri, &());
    let r = app
        .http
        .post(&uri)
        .header("authorization", signed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    let token: String = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "oauth_token")
        .map(|(_, v)| v.into_owned())
        .expect("a request token");

    // The subscriber approves in the browser, on a page in the console's look.
    let driver = Driver::start().await;
    let c = driver.browser().await;
    let authorize = format!(
        "{}?{}",
        app.url("/identity/1.0/oauth/authorize"),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("oauth_token", &token)
            .append_pair("feedId", feed_id)
            .append_pair("invokeArgs", "sessId=42")
            .finish()
    );
    c.goto(&authorize).await.unwrap();
    wait_for_title(&c, "Link your account").await;
    assert!(c.source().await.unwrap().contains("Order updates"));
    shot(&c, "15-oauth1-authorize").await;
    assert_fits_a_phone(&c, "15b-oauth1-authorize-phone").await;
    type_into(&c, "#email", "alice@example.com").await;
    type_into(&c, "#password", "wrong password").await;
    click_button(&c, "Sign in and approve").await;
    assert!(
        text(&c, ".alert")
            .await
            .contains("The email or password is wrong.")
    );
    assert!(calls.lock().unwrap().is_empty(), "nothing approved yet");
    type_into(&c, "#password", PASSWORD).await;
    click_button(&c, "Sign in and approve").await;
    let cb = eventually("the publisher's callback is called", || {
        calls.lock().unwrap().first().cloned()
    })
    .await;
    let q: std::collections::HashMap<String, String> =
        form_urlencoded::parse(cb.as_bytes()).into_owned().collect();
    assert_eq!(q["oauth_token"], token, "{cb}");
    assert_eq!(q["feedId"], feed_id, "{cb}");
    assert_eq!(q["sessId"], "42", "{cb}");
    wait_for_title(&c, "Linked").await;

    // The subscriber's page: the stored notifications without JavaScript, new ones live.
    app.subscribe("alice@example.com", PASSWORD, news_id).await;
    let api = api_token(&app, &client_id, &secret).await;
    let notify = |message: &'static str| {
        let (app, api, topic) = (&app, api.clone(), topic.clone());
        async move {
            let r = app
                .http
                .post(app.url("/notificationgateway/1.0/notification"))
                .form(&[
                    ("X-apitoken", api.as_str()),
                    ("topic", &topic),
                    ("message", message),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    };
    notify("Stored before the page opened").await;
    // A subscriber manages no organization: signing in lands on the notifications.
    c.goto(&app.url("/console/login")).await.unwrap();
    wait_for_title(&c, "Sign in").await;
    type_into(&c, "#email", "alice@example.com").await;
    type_into(&c, "#password", PASSWORD).await;
    click_button(&c, "Sign in").await;
    wait_for_title(&c, "Your notifications").await;
    assert!(
        text(&c, "#notifications")
            .await
            .contains("Stored before the page opened")
    );
    // Live once the stream is open (console.js says so), then a new one appears.
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//p[@id='live' and starts-with(normalize-space(), 'Live')]",
        ))
        .await
        .expect("the live stream opens");
    notify("Sent while the page is open").await;
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//ul[@id='notifications']/li[contains(., 'Sent while the page is open')]",
        ))
        .await
        .expect("the new notification appears without a reload");
    let count = c
        .execute(
            "return document.querySelectorAll('#notifications li').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(count, json!(2), "the stored one is not repeated");
    // Each is titled by its topic's name, with the URI beneath (stored and live alike).
    let titles = c
        .execute(
            "return Array.from(document.querySelectorAll('#notifications li')).map(li => [li.querySelector('strong.topic').textContent, li.querySelector('.copy code').textContent, li.querySelector('.copy button').getAttribute('data-copy') === li.querySelector('.copy code').id]);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        titles,
        json!([["sale", &topic, true], ["sale", &topic, true]]),
        "titled by the topic's name, its URI copyable"
    );
    shot(&c, "16-notifications-live").await;
    assert_fits_a_phone(&c, "16b-notifications-phone").await;
    c.close().await.unwrap();
}

/// The sign-in form, filled in and sent; lands on "Your organizations".
async fn sign_in_with(c: &Client, app: &TestApp, email: &str, password: &str) {
    c.goto(&app.url("/console/login")).await.unwrap();
    wait_for_title(c, "Sign in").await;
    type_into(c, "#email", email).await;
    type_into(c, "#password", password).await;
    click_button(c, "Sign in").await;
    wait_for_title(c, "Your organizations").await;
}

/// Open a one-time link in `c` and choose `password` with it.
async fn set_password_with(c: &Client, link: &str, title: &str, password: &str) {
    c.goto(link).await.unwrap();
    wait_for_title(c, title).await;
    type_into(c, "#password", password).await;
    type_into(c, "#confirm", password).await;
    click_button(c, "Set password").await;
    wait_for_title(c, "Your password is set").await;
}

#[tokio::test]
async fn an_admin_invites_and_resets_and_reads_the_audit_log_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user("admin@example.com", PASSWORD, json!({&org: "admin"}))
        .await;
    let driver = Driver::start().await;
    let admin = driver.browser().await;
    sign_in(&admin, &app, "admin@example.com").await;
    click_link(&admin, "Acme").await;
    wait_for_title(&admin, "Acme").await;
    click_link(&admin, "Users").await;
    wait_for_title(&admin, "Users of Acme").await;
    assert_fits_a_phone(&admin, "30b-users-phone").await;

    // Invite: the link is shown once.
    type_into(&admin, "#invite-email", "newcomer@example.com").await;
    type_into(&admin, "#invite-name", "New Comer").await;
    admin
        .find(Locator::Css("#invite-role"))
        .await
        .unwrap()
        .select_by_value("developer")
        .await
        .unwrap();
    shot(&admin, "30-users-invite").await;
    click_button(&admin, "Invite user").await;
    wait_for_title(&admin, "Invitation link").await;
    let link = text(&admin, "#link").await;
    assert!(
        link.starts_with(&app.url("/console/invite/pcsl_")),
        "{link}"
    );
    assert!(
        admin
            .find(Locator::Css("button[data-copy=link]"))
            .await
            .is_ok(),
        "a copy button"
    );
    shot(&admin, "31-invitation-link-once").await;
    admin.refresh().await.unwrap();
    let again = admin.source().await.unwrap();
    assert!(!again.contains(&link), "the link is shown once");
    assert!(again.contains("This form was already sent"));
    let (_, users) = app
        .call(Method::GET, "/admin/v1/users?limit=100", None)
        .await;
    let newcomer = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "newcomer@example.com")
        .expect("the invited user exists")
        .clone();
    assert_eq!(newcomer["roles"][&org], "developer");

    // The newcomer, in a browser of their own, sets a password and signs in.
    let other = Driver::start().await;
    let newbie = other.browser().await;
    newbie.goto(&link).await.unwrap();
    wait_for_title(&newbie, "Welcome: choose your password").await;
    assert_eq!(text(&newbie, "#link-email").await, "newcomer@example.com");
    shot(&newbie, "32-invite-choose-password").await;
    assert_fits_a_phone(&newbie, "32b-invite-phone").await;
    set_password_with(
        &newbie,
        &link,
        "Welcome: choose your password",
        "newcomer's own password",
    )
    .await;
    shot(&newbie, "33-password-set").await;
    click_link(&newbie, "Sign in").await;
    wait_for_title(&newbie, "Sign in").await;
    sign_in_with(
        &newbie,
        &app,
        "newcomer@example.com",
        "newcomer's own password",
    )
    .await;
    assert!(newbie.source().await.unwrap().contains("Acme"));
    // The link, used again, is refused with a page that says so.
    newbie.goto(&link).await.unwrap();
    wait_for_title(&newbie, "This link no longer works").await;
    assert!(newbie.source().await.unwrap().contains("already used"));
    shot(&newbie, "34-link-used").await;

    // The admin resets the newcomer's password: the old one fails at once.
    admin
        .goto(&app.url(&format!("/console/orgs/{org}/users")))
        .await
        .unwrap();
    wait_for_title(&admin, "Users of Acme").await;
    admin
        .find(Locator::XPath(
            "//tr[td[normalize-space()='newcomer@example.com']]//a[contains(@href, '/reset')]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_title(&admin, "Reset password?").await;
    shot(&admin, "35-reset-confirm").await;
    click_button(&admin, "Reset password").await;
    wait_for_title(&admin, "Password reset link").await;
    let reset = text(&admin, "#link").await;
    assert!(
        reset.starts_with(&app.url("/console/reset/pcsl_")),
        "{reset}"
    );
    assert_eq!(
        app.sign_in("newcomer@example.com", "newcomer's own password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the old password fails"
    );
    set_password_with(
        &newbie,
        &reset,
        "Choose a new password",
        "a newer password here",
    )
    .await;
    sign_in_with(
        &newbie,
        &app,
        "newcomer@example.com",
        "a newer password here",
    )
    .await;

    // The audit log, filtered to invitations.
    admin
        .goto(&app.url(&format!("/console/orgs/{org}/users")))
        .await
        .unwrap();
    wait_for_title(&admin, "Users of Acme").await;
    click_link(&admin, "Audit log").await;
    wait_for_title(&admin, "Audit log of Acme").await;
    type_into(&admin, "#f-action", "invitations.create").await;
    click_button(&admin, "Filter").await;
    // The filtered page is the one with a way to clear the filter.
    admin
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::LinkText("Clear filters"))
        .await
        .unwrap();
    let rows = admin
        .find_all(Locator::Css("#audit tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one invitation");
    let row = rows[0].text().await.unwrap();
    assert!(row.contains("invitations.create"), "{row}");
    assert!(row.contains(newcomer["id"].as_str().unwrap()), "{row}");
    assert!(row.contains("success"), "{row}");
    shot(&admin, "36-audit-filtered").await;
    assert_fits_a_phone(&admin, "36b-audit-phone").await;
    // A filter nothing matches: the empty state.
    admin
        .goto(&app.url(&format!(
            "/console/orgs/{org}/audit?action=nothing.like.this"
        )))
        .await
        .unwrap();
    wait_for_title(&admin, "Audit log of Acme").await;
    assert!(
        admin
            .source()
            .await
            .unwrap()
            .contains("No entries match these filters.")
    );
    // A developer may not read it: the admin API's refusal, as a page.
    newbie
        .goto(&app.url(&format!("/console/orgs/{org}/audit")))
        .await
        .unwrap();
    wait_for_title(&newbie, "Audit log of Acme").await;
    assert!(newbie.source().await.unwrap().contains("audit trail"));
    newbie.close().await.unwrap();
    admin.close().await.unwrap();
}

/// No table cell of the page is narrower than its first word at a phone's width (390
/// px): every column can be read, and a table wider than the screen scrolls in its box
/// (`.scroll`, `overflow-x: auto`, with a shadow at the edge as the cue) rather than
/// squeezing its cells.
async fn assert_no_clipped_cells(c: &Client, name: &str) {
    c.set_window_size(390, 844).await.unwrap();
    let found = c
        .execute(
            r#"const bad = []; let cells = 0;
               for (const td of document.querySelectorAll('main table td')) {
                 const word = (td.innerText || '').trim().split(/\s+/)[0];
                 if (!word) continue;
                 cells++;
                 const el = td.querySelector('code, a, span, strong') || td;
                 const probe = document.createElement('span');
                 probe.style.whiteSpace = 'nowrap';
                 probe.style.font = getComputedStyle(el).font;
                 probe.textContent = word;
                 document.body.appendChild(probe);
                 const need = probe.getBoundingClientRect().width;
                 probe.remove();
                 const cs = getComputedStyle(td);
                 const room = td.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
                 if (room + 1 < need) bad.push(word + ' (' + room.toFixed(0) + ' < ' + need.toFixed(0) + ' px)');
               }
               for (const t of document.querySelectorAll('main table')) {
                 const box = t.closest('.scroll');
                 if (!box || getComputedStyle(box).overflowX !== 'auto') bad.push('a table outside a scroll box');
               }
               return JSON.stringify({cells, bad});"#,
            vec![],
        )
        .await
        .unwrap();
    shot(c, name).await;
    c.set_window_size(1280, 1000).await.unwrap();
    let found: Value = serde_json::from_str(found.as_str().unwrap()).unwrap();
    assert!(
        found["cells"].as_u64().unwrap() > 0,
        "{name}: no table cells to check"
    );
    assert_eq!(
        found["bad"],
        json!([]),
        "{name}: cells narrower than their first word on a phone"
    );
}

/// Choose `value` in the `<select>` `css`.
async fn select(c: &Client, css: &str, value: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no select {css}: {e}"))
        .select_by_value(value)
        .await
        .unwrap();
}

async fn clear_and_type(c: &Client, css: &str, text: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_protects_an_api_and_manages_the_org_from_the_console_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let org = app.create_org(&["orders"], &["prod", "stage"]).await;
    let org = org["id"].as_str().unwrap().to_owned();
    let (_, other) = app
        .call(
            Method::POST,
            "/admin/v1/orgs",
            Some(json!({"name": "Globex"})),
        )
        .await;
    let other = other["id"].as_str().unwrap().to_owned();
    app.create_user(
        "ada@example.com",
        PASSWORD,
        json!({&org: "admin", &other: "admin"}),
    )
    .await;
    app.create_user("dev@example.com", PASSWORD, json!({&org: "developer"}))
        .await;
    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &app, "ada@example.com").await;
    click_link(&c, "Acme").await;
    wait_for_title(&c, "Acme").await;

    // The overview of an empty org says what to do next.
    click_link(&c, "Overview").await;
    let attention = text(&c, "#attention").await;
    assert!(attention.contains("No applications yet"), "{attention}");
    assert!(attention.contains("No resources yet"), "{attention}");
    shot(&c, "40-overview-empty").await;

    // Resources: the empty state, then create, edit and delete (after confirming).
    click_link(&c, "Resources").await;
    wait_for_title(&c, "Resources of Acme").await;
    assert!(text(&c, ".empty").await.contains("No resources yet"));
    click_link(&c, "Create resource").await;
    wait_for_title(&c, "Create resource").await;
    type_into(&c, "#name", "Reports API").await;
    select(&c, "#sandbox", "stage").await;
    select(&c, "#product", "orders").await;
    type_into(&c, "#scopes", "reports.read").await;
    type_into(&c, "#cors_origins", "https://shop.example").await;
    c.find(Locator::Css("input[name=auth][value=open]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click_button(&c, "Create resource").await;
    wait_for_title(&c, "Resources of Acme").await;
    let (_, listed) = app
        .call(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/resources"),
            None,
        )
        .await;
    let made = &listed["items"][0];
    assert_eq!(made["name"], "Reports API");
    assert_eq!(made["sandbox"], "stage");
    assert_eq!(made["product"], "orders");
    assert_eq!(made["scopes"], json!(["reports.read"]));
    assert_eq!(made["allow_unauthenticated"], true);
    assert_eq!(made["cors_origins"], json!(["https://shop.example"]));
    click_link(&c, "Edit").await;
    wait_for_title(&c, "Edit resource").await;
    // A refusal keeps what was typed and says why.
    clear_and_type(&c, "#cors_origins", "not-an-origin").await;
    click_button(&c, "Save resource").await;
    wait_for_title(&c, "Edit resource").await;
    assert!(!text(&c, ".alert").await.is_empty());
    clear_and_type(&c, "#cors_origins", "").await;
    clear_and_type(&c, "#scopes", "reports.read reports.export").await;
    click_button(&c, "Save resource").await;
    wait_for_title(&c, "Resources of Acme").await;
    let (_, r) = app
        .call(
            Method::GET,
            &format!(
                "/admin/v1/orgs/{org}/resources/{}",
                made["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(r["scopes"], json!(["reports.export", "reports.read"]));
    assert_eq!(r["cors_origins"], json!([]));
    click_link(&c, "Delete").await;
    wait_for_title(&c, "Delete resource?").await;
    click_button(&c, "Delete resource").await;
    wait_for_title(&c, "Resources of Acme").await;
    let (_, listed) = app
        .call(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/resources"),
            None,
        )
        .await;
    assert_eq!(listed["items"], json!([]));

    // A permission group.
    click_link(&c, "Permission groups").await;
    wait_for_title(&c, "Permission groups of Acme").await;
    click_link(&c, "Create permission group").await;
    wait_for_title(&c, "Create permission group").await;
    type_into(&c, "#name", "Partners").await;
    type_into(&c, "#scopes", "orders.read").await;
    click_button(&c, "Create group").await;
    wait_for_title(&c, "Permission groups of Acme").await;
    assert!(text(&c, "main table").await.contains("Partners"));

    // Protect an API: a resource, an app with access, and a curl that passes the check.
    click_link(&c, "Resources").await;
    wait_for_title(&c, "Resources of Acme").await;
    click_link(&c, "Protect an API").await;
    wait_for_title(&c, "Protect an API").await;
    type_into(&c, "#api", "Orders API").await;
    select(&c, "#product", "orders").await;
    type_into(&c, "#scope", "orders.read").await;
    type_into(&c, "#app", "Partner dashboard").await;
    shot(&c, "41-protect-an-api").await;
    click_button(&c, "Create and show the curl").await;
    wait_for_title(&c, "Your API is protected").await;
    let curl = text(&c, "#curl").await;
    shot(&c, "42-protected").await;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{curl}"))
        .output()
        .expect("bash runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{curl}\n{said}");
    assert!(
        said.starts_with("HTTP/1.1 200"),
        "the curl passes the check:\n{said}"
    );
    assert!(said.contains("x-portcullis-scope: orders.read"), "{said}");

    // A Wave feed with a topic, on the new app.
    click_link(&c, "The application").await;
    wait_for_title(&c, "Partner dashboard").await;
    click_link(&c, "Wave feeds").await;
    wait_for_title(&c, "Wave feeds").await;
    assert!(text(&c, ".empty").await.contains("No feeds yet"));
    type_into(&c, "#feed-name", "Order status").await;
    click_button(&c, "Create feed").await;
    wait_for_title(&c, "Wave feeds").await;
    type_into(&c, "input[id^=topic-name-]", "shipped").await;
    click_button(&c, "Add topic").await;
    wait_for_title(&c, "Wave feeds").await;
    let topics = text(&c, "ul.topics").await;
    assert!(topics.contains("shipped"), "{topics}");
    assert!(
        topics.contains("company_"),
        "the topic's URI is shown: {topics}"
    );
    shot(&c, "43-feeds").await;

    // The overview now: counts, and a refusal at the gateway with its code.
    let (cid, org_header) = {
        let (_, apps) = app
            .call(Method::GET, &format!("/admin/v1/apps?org={org}"), None)
            .await;
        (
            apps["items"][0]["client_id"].as_str().unwrap().to_owned(),
            org.clone(),
        )
    };
    let r = app
        .http
        .get(app.url("/gateway/v1/check?resource=res_0000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, resources) = app
        .call(
            Method::GET,
            &format!("/admin/v1/orgs/{org}/resources"),
            None,
        )
        .await;
    let res = resources["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .http
        .get(app.url(&format!("/gateway/v1/check?resource={res}")))
        .header("authorization", "Bearer not.a.token")
        .header("x-api-key", &cid)
        .header("x-gw-ims-org-id", &org_header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    c.goto(&app.url(&format!("/console/orgs/{org}/overview")))
        .await
        .unwrap();
    wait_for_title(&c, "Acme").await;
    let stats = text(&c, "ul.stats").await;
    assert!(
        stats.contains("1\nApplications") || stats.contains("1 Applications"),
        "{stats}"
    );
    let failures = eventually_text(
        &c,
        &app,
        &format!("/console/orgs/{org}/overview"),
        "#failures",
    )
    .await;
    assert!(failures.contains("EXEG-050"), "{failures}");
    assert!(
        failures.contains("app Partner dashboard"),
        "the caller by name: {failures}"
    );
    shot(&c, "44-overview").await;

    // The audit log names people and apps, and keeps the ids beneath.
    click_link(&c, "Audit log").await;
    let audit = text(&c, "#audit").await;
    assert!(audit.contains("ada@example.com"), "{audit}");
    assert!(audit.contains("app Partner dashboard"), "{audit}");

    // At a phone's width, no column of the audit log, the users or the apps is squeezed.
    assert_no_clipped_cells(&c, "45-audit-phone").await;
    click_link(&c, "Users").await;
    wait_for_title(&c, "Users of Acme").await;
    assert_no_clipped_cells(&c, "46-users-phone").await;
    click_link(&c, "Applications").await;
    wait_for_title(&c, "Acme").await;
    assert_no_clipped_cells(&c, "47-apps-phone").await;

    // The switcher goes to another organization of hers.
    select(&c, "#org-switch", &other).await;
    click_button(&c, "Switch").await;
    wait_for_title(&c, "Globex").await;
    assert!(
        text(&c, ".tabs [aria-current=page]")
            .await
            .contains("Overview")
    );
    c.close().await.unwrap();
}

/// The text of `css` on `path`, reloading (bounded) until it appears: failed
/// authentications reach the audit trail through a background writer.
async fn eventually_text(c: &Client, app: &TestApp, path: &str, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            return e.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "no {css} on {path}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.goto(&app.url(path)).await.unwrap();
    }
}

/// Every console page at a desktop's width (1280 px) and a phone's (390 px), saved as
/// `screenshots/page-<name>-1280.png` and `-390.png` (`scripts/console-screenshots.sh`
/// runs this and lists them); at 390 px nothing reaches past the screen's edge.
#[tokio::test(flavor = "multi_thread")]
async fn every_console_page_at_desktop_and_phone_width_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let org = w.org.clone();
    let ada = app
        .create_user("ada@example.com", PASSWORD, json!({&org: "admin"}))
        .await;
    // A platform administrator too, so that the organization forms are shown.
    let (status, v) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{}", ada["id"].as_str().unwrap()),
            Some(json!({"platform_admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    app.create_user("grace@example.com", PASSWORD, json!({&org: "developer"}))
        .await;
    let (_, group) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/groups"),
            Some(json!({"name": "Partners", "scopes": ["read"]})),
        )
        .await;
    let feed = app
        .create_feed(
            &w.client_id,
            json!({"name": "Order status", "kind": "broadcast"}),
        )
        .await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!(
                "/admin/v1/apps/{}/feeds/{}/topics",
                w.client_id,
                feed["id"].as_str().unwrap()
            ),
            Some(json!({"name": "shipped"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, invitation) = app
        .call(
            Method::POST,
            "/admin/v1/invitations",
            Some(json!({"email": "new@example.com", "org_id": org, "role": "developer"})),
        )
        .await;
    let link = invitation["link"].as_str().unwrap().to_owned();
    // Some traffic, so that the usage sections have charts to show.
    script_usage(&app, &w).await;
    let driver = Driver::start().await;
    let c = driver.browser().await;

    let both = |name: &'static str| {
        let c = &c;
        async move {
            c.set_window_size(1280, 1000).await.unwrap();
            shot(c, &format!("page-{name}-1280")).await;
            assert_fits_a_phone(c, &format!("page-{name}-390")).await;
        }
    };
    c.goto(&app.url("/console/login")).await.unwrap();
    wait_for_title(&c, "Sign in").await;
    both("sign-in").await;
    c.goto(&link).await.unwrap();
    wait_for_title(&c, "Welcome: choose your password").await;
    both("invitation").await;
    sign_in(&c, &app, "ada@example.com").await;
    both("organizations").await;
    let (cid, res, grp) = (
        w.client_id.clone(),
        w.resource.clone(),
        group["id"].as_str().unwrap().to_owned(),
    );
    let pages: Vec<(&'static str, String, String)> = vec![
        (
            "overview",
            format!("/console/orgs/{org}/overview"),
            "Acme".into(),
        ),
        (
            "overview-usage",
            format!("/console/orgs/{org}/overview?range=1h#usage"),
            "Acme".into(),
        ),
        (
            "applications",
            format!("/console/orgs/{org}"),
            "Acme".into(),
        ),
        (
            "application-new",
            format!("/console/orgs/{org}/apps/new"),
            "Create application".into(),
        ),
        (
            "application",
            format!("/console/apps/{cid}"),
            "caller".into(),
        ),
        (
            "application-usage",
            format!("/console/apps/{cid}?range=1h#usage"),
            "caller".into(),
        ),
        (
            "application-edit",
            format!("/console/apps/{cid}/edit"),
            "Edit application".into(),
        ),
        (
            "application-revoke",
            format!("/console/apps/{cid}/revoke"),
            "Revoke a token".into(),
        ),
        (
            "application-delete",
            format!("/console/apps/{cid}/delete"),
            "Delete application?".into(),
        ),
        (
            "feeds",
            format!("/console/apps/{cid}/feeds"),
            "Wave feeds".into(),
        ),
        (
            "resources",
            format!("/console/orgs/{org}/resources"),
            "Resources of Acme".into(),
        ),
        (
            "resource-new",
            format!("/console/orgs/{org}/resources/new"),
            "Create resource".into(),
        ),
        (
            "resource-edit",
            format!("/console/orgs/{org}/resources/{res}/edit"),
            "Edit resource".into(),
        ),
        (
            "resource-delete",
            format!("/console/orgs/{org}/resources/{res}/delete"),
            "Delete resource?".into(),
        ),
        (
            "protect",
            format!("/console/orgs/{org}/protect"),
            "Protect an API".into(),
        ),
        (
            "groups",
            format!("/console/orgs/{org}/groups"),
            "Permission groups of Acme".into(),
        ),
        (
            "group-new",
            format!("/console/orgs/{org}/groups/new"),
            "Create permission group".into(),
        ),
        (
            "group-edit",
            format!("/console/orgs/{org}/groups/{grp}/edit"),
            "Edit permission group".into(),
        ),
        (
            "users",
            format!("/console/orgs/{org}/users"),
            "Users of Acme".into(),
        ),
        (
            "audit",
            format!("/console/orgs/{org}/audit"),
            "Audit log of Acme".into(),
        ),
        (
            "organization-new",
            "/console/orgs/new".into(),
            "New organization".into(),
        ),
        (
            "organization-edit",
            format!("/console/orgs/{org}/edit"),
            "Edit organization".into(),
        ),
        (
            "notifications",
            "/console/notifications".into(),
            "Your notifications".into(),
        ),
        (
            "not-found",
            "/console/no-such-page".into(),
            "Not found".into(),
        ),
    ];
    for (name, path, title) in &pages {
        c.goto(&app.url(path)).await.unwrap();
        wait_for_title(&c, title).await;
        both(name).await;
    }
    c.close().await.unwrap();
}

/// The HTTP status of the page the browser shows now.
async fn page_status(c: &Client) -> Value {
    c.execute(
        "return performance.getEntriesByType('navigation')[0].responseStatus;",
        vec![],
    )
    .await
    .unwrap()
}

/// The organization named `name`, as the admin API has it.
async fn org_named(app: &TestApp, name: &str) -> Value {
    let orgs = admin_get(app, "/admin/v1/orgs?limit=100").await;
    orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no organization '{name}': {orgs}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_platform_admin_creates_and_edits_an_organization_and_an_org_admin_cannot_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let acme = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user("boss@example.com", PASSWORD, json!({&acme: "admin"}))
        .await;
    // A platform administrator with no role anywhere yet, made one by the bootstrap admin.
    let platform = app
        .create_user("platform@example.com", PASSWORD, json!({}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = app
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{platform}"),
            Some(json!({"platform_admin": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let driver = Driver::start().await;

    // The platform administrator creates an organization and lands on its overview.
    let c = driver.browser().await;
    sign_in(&c, &app, "platform@example.com").await;
    click_link(&c, "New organization").await;
    wait_for_title(&c, "New organization").await;
    assert_fits_a_phone(&c, "60b-new-organization-phone").await;
    type_into(&c, "#name", "Initech").await;
    type_into(&c, "#products", "events billing").await;
    clear_and_type(&c, "#sandboxes", "prod stage").await;
    shot(&c, "60-new-organization").await;
    click_button(&c, "Create organization").await;
    wait_for_title(&c, "Initech").await;
    let made = org_named(&app, "Initech").await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["products"], json!(["billing", "events"]));
    assert_eq!(made["sandboxes"], json!(["prod", "stage"]));
    assert_eq!(made["status"], "active");
    let me = admin_get(&app, &format!("/admin/v1/users/{platform}")).await;
    assert_eq!(
        me["roles"][&id], "admin",
        "the creator administers it: {me}"
    );
    // Its users page says who is a platform administrator.
    c.goto(&app.url(&format!("/console/orgs/{id}/users")))
        .await
        .unwrap();
    wait_for_title(&c, "Users of Initech").await;
    assert_eq!(text(&c, "td .platform").await, "platform administrator");

    // Editing its sandboxes; disabling asks first, and nothing changes until confirmed.
    c.goto(&app.url("/console/orgs")).await.unwrap();
    wait_for_title(&c, "Your organizations").await;
    c.find(Locator::Css("a[aria-label='Edit organization Initech']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_title(&c, "Edit organization").await;
    assert_fits_a_phone(&c, "60c-edit-organization-phone").await;
    clear_and_type(&c, "#sandboxes", "prod stage dev").await;
    select(&c, "#status", "disabled").await;
    click_button(&c, "Save changes").await;
    wait_for_title(&c, "Disable organization?").await;
    shot(&c, "61-disable-organization").await;
    let before = org_named(&app, "Initech").await;
    assert_eq!(before["status"], "active");
    assert_eq!(before["sandboxes"], json!(["prod", "stage"]));
    click_button(&c, "Disable organization").await;
    wait_for_title(&c, "Your organizations").await;
    let after = org_named(&app, "Initech").await;
    assert_eq!(after["status"], "disabled");
    assert_eq!(after["sandboxes"], json!(["dev", "prod", "stage"]));
    // An organization where they hold no role: its name leads to its settings.
    click_link(&c, "Acme").await;
    wait_for_title(&c, "Edit organization").await;
    clear_and_type(&c, "#sandboxes", "prod qa").await;
    click_button(&c, "Save changes").await;
    wait_for_title(&c, "Your organizations").await;
    assert_eq!(
        org_named(&app, "Acme").await["sandboxes"],
        json!(["prod", "qa"])
    );
    c.close().await.unwrap();

    // An organization administrator has no button, and posting the form is refused.
    let c = driver.browser().await;
    sign_in(&c, &app, "boss@example.com").await;
    assert!(
        c.find(Locator::LinkText("New organization")).await.is_err(),
        "no create button for an org admin"
    );
    assert!(
        c.find(Locator::LinkText("Edit organization"))
            .await
            .is_err()
    );
    c.goto(&app.url("/console/orgs/new")).await.unwrap();
    wait_for_title(&c, "New organization").await;
    type_into(&c, "#name", "Mine").await;
    click_button(&c, "Create organization").await;
    let refusal = text(&c, ".alert").await;
    assert!(
        refusal.contains("only the bootstrap admin or a platform administrator may do this"),
        "{refusal}"
    );
    assert_eq!(page_status(&c).await, json!(403));
    let names = admin_get(&app, "/admin/v1/orgs?limit=100").await;
    assert!(!names.to_string().contains("\"Mine\""), "{names}");
    c.close().await.unwrap();
}

// ---- Usage -----------------------------------------------------------------------------

/// What a script of requests was answered, as the usage counts name it: per app (`None`:
/// no app the server knows), kind (`gateway` or `token`) and outcome, how many.
#[derive(Default)]
struct Tally(BTreeMap<(Option<String>, &'static str, String), u64>);

impl Tally {
    fn add(&mut self, app: Option<&str>, kind: &'static str, outcome: &str) {
        *self
            .0
            .entry((app.map(str::to_owned), kind, outcome.to_owned()))
            .or_default() += 1;
    }

    /// Counts by outcome of `kind`, for the apps `keep` takes.
    fn of(&self, kind: &str, keep: impl Fn(Option<&str>) -> bool) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((app, k, outcome), n) in &self.0 {
            if *k == kind && keep(app.as_deref()) {
                *out.entry(outcome.clone()).or_default() += n;
            }
        }
        out
    }

    /// Refusals (anything but `allowed` and `issued`) of `app`.
    fn refused(&self, app: Option<&str>) -> u64 {
        self.0
            .iter()
            .filter(|((a, _, o), _)| a.as_deref() == app && o != "allowed" && o != "issued")
            .map(|(_, n)| n)
            .sum()
    }
}

/// A known mix of requests against `w`'s org, counted and flushed to the store: the
/// world's app allowed and refused with two codes (a token without the resource's scope,
/// another org's header) and a wrong secret at the token endpoint; a second app,
/// "Billing sync", refused more often (no org header); one check with an API key the
/// server does not have. Returns what each request was answered, and the second app's id.
async fn script_usage(app: &TestApp, w: &GatewayWorld) -> (Tally, String) {
    let mut tally = Tally::default();
    let (a, org) = (w.client_id.as_str(), w.org.as_str());
    let (b, b_secret) = app_in(app, org, &["read"], json!({"name": "Billing sync"})).await;
    let b = b.as_str();
    // An org id the token was not issued for (the check does not look it up).
    let other = "0000000000000000000000AA@Org";
    let nobody = "0123456789abcdef0123456789abcdef";

    // Tokens (each asserted issued), and a wrong secret.
    let mut tokens = Vec::new();
    for (client, secret, scope) in [
        (a, &w.secret, None),
        (a, &w.secret, Some("write")),
        (b, &b_secret, None),
    ] {
        tokens.push(format!(
            "Bearer {}",
            app.access_token(client, secret, scope).await
        ));
        tally.add(Some(client), "token", "issued");
    }
    let cc = [("grant_type", "client_credentials")];
    let outcome = token_request(app, a, "not-the-secret", &cc).await;
    assert_ne!(outcome, "issued");
    tally.add(Some(a), "token", &outcome);

    // Gateway checks, counted for the app the API key names: (API key, token, org header,
    // the app counted, how many times).
    let script = [
        (a, &tokens[0], Some(org), Some(a), 3),
        (a, &tokens[1], Some(org), Some(a), 2),
        (a, &tokens[0], Some(other), Some(a), 1),
        (b, &tokens[2], Some(org), Some(b), 1),
        (b, &tokens[2], None, Some(b), 5),
        (nobody, &tokens[0], Some(org), None, 1),
    ];
    for (key, token, org_header, counted, times) in script {
        let mut headers = vec![("authorization", token.as_str()), ("x-api-key", key)];
        headers.extend(org_header.map(|o| ("x-gw-ims-org-id", o)));
        for _ in 0..times {
            let outcome = check(app, &w.resource, &headers).await;
            tally.add(counted, "gateway", &outcome);
        }
    }
    let codes = tally.of("gateway", |x| x == Some(a));
    assert_eq!(codes.get("allowed"), Some(&3), "{codes:?}");
    assert_eq!(codes.len(), 3, "allowed and two refusal codes: {codes:?}");
    assert!(
        tally.refused(Some(b)) > tally.refused(Some(a)),
        "Billing sync is refused most"
    );
    assert!(app.state.flush_usage().await);
    (tally, b.to_owned())
}

/// The table `#id`'s columns (by their heading) as the footer totals them, after checking
/// that its rows add up to the footer and its Total column to the layers.
async fn table_totals(c: &Client, id: &str) -> BTreeMap<String, u64> {
    let got = c
        .execute(
            r#"const t = document.getElementById(arguments[0]);
               if (!t) return null;
               const cells = r => [...r.cells].map(c => c.textContent.trim());
               return JSON.stringify({head: cells(t.tHead.rows[0]), foot: cells(t.tFoot.rows[0]),
                 rows: [...t.tBodies[0].rows].map(cells)});"#,
            vec![json!(id)],
        )
        .await
        .unwrap();
    let got: Value =
        serde_json::from_str(got.as_str().unwrap_or_else(|| panic!("no table #{id}"))).unwrap();
    let num = |v: &Value| -> u64 { v.as_str().unwrap().replace(',', "").parse().unwrap() };
    let head: Vec<&str> = got["head"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let foot: Vec<u64> = got["foot"].as_array().unwrap()[1..]
        .iter()
        .map(num)
        .collect();
    let rows = got["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "#{id} has rows");
    for (col, total) in foot.iter().enumerate() {
        let sum: u64 = rows.iter().map(|r| num(&r[col + 1])).sum();
        assert_eq!(sum, *total, "#{id}: column {} adds up", head[col + 1]);
    }
    let (layers, total) = foot.split_at(foot.len() - 1);
    assert_eq!(
        layers.iter().sum::<u64>(),
        total[0],
        "#{id}: the Total column"
    );
    assert_eq!(head.last(), Some(&"Total"));
    head[1..head.len() - 1]
        .iter()
        .zip(layers)
        .filter(|(_, n)| **n > 0)
        .map(|(h, n)| (h.to_string(), *n))
        .collect()
}

/// The legend of the chart before the table `#id`, with the chart's SVG checked: an
/// image with a title, and bars.
async fn chart_legend(c: &Client, id: &str) -> String {
    let got = c
        .execute(
            r#"const fig = document.getElementById(arguments[0]).closest('details').previousElementSibling;
               const svg = fig.querySelector('svg.chart');
               return JSON.stringify({role: svg.getAttribute('role'), title: svg.querySelector('title').textContent,
                 bars: svg.querySelectorAll('rect.b').length, legend: fig.querySelector('ul.legend').textContent});"#,
            vec![json!(id)],
        )
        .await
        .unwrap();
    let got: Value = serde_json::from_str(got.as_str().unwrap()).unwrap();
    assert_eq!(got["role"], "img", "{got}");
    assert!(!got["title"].as_str().unwrap().is_empty(), "{got}");
    assert!(got["bars"].as_u64().unwrap() > 0, "{got}");
    got["legend"].as_str().unwrap().to_owned()
}

/// The page's "Download CSV", fetched by the page (with the browser's session cookie):
/// its content type, disposition and counts by `(subject, outcome)`.
async fn csv_download(c: &Client) -> (String, String, BTreeMap<(String, String), u64>) {
    let got = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               fetch(document.getElementById('usage-csv').href)
                 .then(async r => done(JSON.stringify({status: r.status, type: r.headers.get('content-type'),
                   disposition: r.headers.get('content-disposition'), body: await r.text()})))
                 .catch(e => done(JSON.stringify({status: 0, body: String(e)})));"#,
            vec![],
        )
        .await
        .unwrap();
    let got: Value = serde_json::from_str(got.as_str().unwrap()).unwrap();
    assert_eq!(got["status"], 200, "{got}");
    let body = got["body"].as_str().unwrap();
    let mut lines = body.lines();
    assert_eq!(
        lines.next(),
        Some("start,subject,subject_id,outcome,count"),
        "{body}"
    );
    let mut counts = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        *counts
            .entry((f[1].to_owned(), f[3].to_owned()))
            .or_default() += f[4].parse::<u64>().unwrap();
    }
    (
        got["type"].as_str().unwrap_or_default().to_owned(),
        got["disposition"].as_str().unwrap_or_default().to_owned(),
        counts,
    )
}

/// Counts by outcome of one subject (`resource`, `grant`) in a CSV's counts.
fn csv_of(counts: &BTreeMap<(String, String), u64>, subject: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((s, o), n) in counts {
        if s == subject {
            *out.entry(o.clone()).or_default() += n;
        }
    }
    out
}

/// Open every `<details>` (the tables under the charts), so that their cells are laid out.
async fn open_details(c: &Client) {
    c.execute(
        "document.querySelectorAll('details').forEach(d => d.open = true);",
        vec![],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_charts_tables_and_csv_show_exactly_the_scripted_requests_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    app.create_user("ada@example.com", PASSWORD, json!({&w.org: "admin"}))
        .await;
    let (tally, b) = script_usage(&app, &w).await;
    let a = w.client_id.as_str();
    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &app, "ada@example.com").await;

    // The overview: the org's counts, every app's and none's.
    let overview = format!("/console/orgs/{}/overview", w.org);
    c.goto(&app.url(&overview)).await.unwrap();
    wait_for_title(&c, "Acme").await;
    let gateway = tally.of("gateway", |_| true);
    assert_eq!(table_totals(&c, "gateway-table").await, gateway);
    assert_eq!(
        table_totals(&c, "tokens-table").await,
        tally.of("token", |_| true)
    );
    let legend = chart_legend(&c, "gateway-table").await;
    for code in gateway.keys() {
        assert!(
            legend.contains(code.as_str()),
            "{code} in the legend: {legend}"
        );
    }
    // The applications refused most: Billing sync, by name, leading to its page.
    let first = c
        .find(Locator::Css("#failing-apps tbody tr:first-child"))
        .await
        .unwrap();
    let link = first.find(Locator::Css("a")).await.unwrap();
    assert_eq!(link.text().await.unwrap(), "Billing sync");
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some(format!("/console/apps/{b}").as_str())
    );
    let row = first.text().await.unwrap();
    assert!(row.contains(&b), "the id is still there: {row}");
    assert!(row.contains(&tally.refused(Some(&b)).to_string()), "{row}");
    let failing = text(&c, "#failing-apps").await;
    assert!(
        failing.contains("caller") && failing.contains("no known application"),
        "{failing}"
    );
    // The CSV: the admin API's, with its headers, adding up to the same counts.
    let (content_type, disposition, counts) = csv_download(&c).await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    assert!(
        disposition.starts_with("attachment; filename=\"usage-"),
        "{disposition}"
    );
    assert_eq!(csv_of(&counts, "resource"), gateway);
    assert_eq!(csv_of(&counts, "grant"), tally.of("token", |_| true));
    shot(&c, "50-overview-usage").await;
    assert_fits_a_phone(&c, "50b-overview-usage-phone").await;
    open_details(&c).await;
    assert_no_clipped_cells(&c, "50c-overview-usage-tables-phone").await;

    // The world's app: its own counts, its codes with what to do about each.
    c.goto(&app.url(&format!("/console/apps/{a}?range=1h")))
        .await
        .unwrap();
    wait_for_title(&c, "caller").await;
    let mine = tally.of("gateway", |x| x == Some(a));
    assert_eq!(table_totals(&c, "gateway-table").await, mine);
    assert_eq!(
        table_totals(&c, "tokens-table").await,
        tally.of("token", |x| x == Some(a))
    );
    let legend = chart_legend(&c, "tokens-table").await;
    assert!(legend.contains("invalid_client"), "{legend}");
    for (code, n) in mine.iter().chain(&tally.of("token", |x| x == Some(a))) {
        if code == "allowed" || code == "issued" {
            continue;
        }
        let item = text(&c, &format!("#refusal-codes li[data-code='{code}']")).await;
        let fix = portcullis_core::gateway::Code::from_text(code)
            .map(|c| c.fix())
            .or_else(|| portcullis_core::oauth_error::fix(code))
            .unwrap();
        assert!(item.contains(fix), "{code}: {item}");
        assert!(
            item.contains(&format!("{code} {n} refused")),
            "{code}: {item}"
        );
    }
    let (_, disposition, counts) = csv_download(&c).await;
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(csv_of(&counts, "resource"), mine);
    shot(&c, "51-application-usage").await;
    assert_fits_a_phone(&c, "51b-application-usage-phone").await;
    open_details(&c).await;
    assert_no_clipped_cells(&c, "51c-application-usage-tables-phone").await;

    // Billing sync's failed authentications reach the audit trail (through its background
    // writer): the last one is shown beside its code's advice.
    let page = format!("/console/apps/{b}");
    let recorded = eventually_text(
        &c,
        &app,
        &page,
        "#refusal-codes li[data-code='EXEG-0500-401'] .recorded",
    )
    .await;
    assert!(recorded.starts_with("Last recorded"), "{recorded}");
    assert!(recorded.contains(&w.resource), "{recorded}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn with_nothing_counted_the_usage_section_says_when_counts_appear_in_chromium() {
    if !browser_installed() {
        return;
    }
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    app.create_user("ada@example.com", PASSWORD, json!({&w.org: "developer"}))
        .await;
    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &app, "ada@example.com").await;
    for (path, range) in [
        (
            format!("/console/orgs/{}/overview?range=7d", w.org),
            "Last 7 days",
        ),
        (
            format!("/console/apps/{}?range=30d", w.client_id),
            "Last 30 days",
        ),
        (format!("/console/apps/{}", w.client_id), "Last 24 hours"),
    ] {
        c.goto(&app.url(&path)).await.unwrap();
        let empty = text(&c, "#usage-empty").await;
        let words = range.replace("Last", "in the last");
        assert!(
            empty.contains(&format!("No requests counted {words}.")),
            "{empty}"
        );
        assert!(empty.contains("within a few seconds"), "{empty}");
        assert_eq!(text(&c, "nav.ranges a[aria-current]").await, range);
        assert!(
            c.find(Locator::Css("svg.chart")).await.is_err(),
            "no chart without counts"
        );
    }
    c.close().await.unwrap();
}
