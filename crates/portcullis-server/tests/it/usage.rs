//! Usage analytics: every gateway answer, token request and introspection is counted per
//! app, subject and outcome, flushed to the store, and read back through
//! `/admin/v1/orgs/{org_id}/usage` and `/admin/v1/apps/{client_id}/usage`, exactly; two
//! nodes on one database add up; only those who may read an org's apps read its usage;
//! bad ranges are 400s; counts past the retention window are pruned.
//!
//! Each test writes down what it expects from what each request answered (a script of
//! requests and their observed outcomes), flushes the counts through the server's state
//! (what the flush task does every few seconds), then compares with the API.

use crate::common;

use common::*;
use portcullis_core::clock::Clock;
use portcullis_server::config::UsageConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `(subject as JSON text, outcome)` → count.
type Counts = BTreeMap<(String, String), u64>;

/// What the script expects: one entry per request, with the org and app it counts for.
#[derive(Default)]
struct Expected(Vec<(Option<String>, Option<String>, Value, String)>);

impl Expected {
    fn add(&mut self, org: Option<&str>, app: Option<&str>, subject: Value, outcome: &str) {
        self.0.push((
            org.map(str::to_owned),
            app.map(str::to_owned),
            subject,
            outcome.to_owned(),
        ));
    }

    fn of(&self, keep: impl Fn(Option<&str>, Option<&str>) -> bool) -> Counts {
        let mut out = Counts::new();
        for (org, app, subject, outcome) in &self.0 {
            if keep(org.as_deref(), app.as_deref()) {
                *out.entry((subject.to_string(), outcome.clone()))
                    .or_default() += 1;
            }
        }
        out
    }

    fn of_org(&self, org: &str) -> Counts {
        self.of(|o, _| o == Some(org))
    }

    fn of_app(&self, app: &str) -> Counts {
        self.of(|_, a| a == Some(app))
    }
}

/// `GET path` as the bootstrap admin: the series' totals, after checking the answer's
/// own arithmetic (points add up to each total, totals by outcome to the series).
async fn usage(app: &TestApp, path: &str) -> Counts {
    let (status, v) = app.call(Method::GET, path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
    let (from, to, step) = (
        v["from"].as_i64().unwrap(),
        v["to"].as_i64().unwrap(),
        v["step"].as_i64().unwrap(),
    );
    assert!(from < to && from % step == 0 && to % step == 0, "{v}");
    let mut counts = Counts::new();
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    for s in v["series"].as_array().expect("series") {
        let mut sum = 0;
        let mut last = i64::MIN;
        for p in s["points"].as_array().expect("points") {
            let (t, n) = (p[0].as_i64().unwrap(), p[1].as_u64().unwrap());
            assert!(t >= from && t < to && t % step == 0 && t > last, "{v}");
            assert!(n > 0, "{v}");
            last = t;
            sum += n;
        }
        assert_eq!(s["total"].as_u64(), Some(sum), "{s}");
        let outcome = s["outcome"].as_str().unwrap().to_owned();
        *by_outcome.entry(outcome.clone()).or_default() += sum;
        let key = (s["subject"].to_string(), outcome);
        assert!(counts.insert(key, sum).is_none(), "one series per key: {v}");
    }
    let totals: BTreeMap<String, u64> = serde_json::from_value(v["totals"].clone()).unwrap();
    assert_eq!(totals, by_outcome, "{v}");
    counts
}

/// The gateway's answer to a check of `resource` with `headers`: `allowed` or its code.
pub(crate) async fn check(app: &TestApp, resource: &str, headers: &[(&str, &str)]) -> String {
    let r = app.gateway_check(Method::GET, resource, headers).await;
    if r.status() == StatusCode::OK {
        return "allowed".into();
    }
    r.headers()
        .get("x-portcullis-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a denial without a code: {}", r.status()))
        .to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The headers of a gateway check: `authorization`, the api key and the org.
fn credentials<'a>(auth: &'a str, key: &'a str, org: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("authorization", auth),
        ("x-api-key", key),
        ("x-gw-ims-org-id", org),
    ]
}

fn resource(id: &str) -> Value {
    json!({ "resource": id })
}

fn grant(name: &str) -> Value {
    json!({ "grant": name })
}

/// `POST /oauth/token` with HTTP Basic and `form`: `issued` or the OAuth error.
pub(crate) async fn token_request(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> String {
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap();
    let ok = r.status() == StatusCode::OK;
    let v: Value = r.json().await.unwrap();
    if ok {
        "issued".into()
    } else {
        v["error"].as_str().unwrap().to_owned()
    }
}

/// An app of `org` with product `events`, `read` on sandbox `prod` and `scopes`, with a
/// secret; `extra` adds to its body. `(client_id, secret)`.
pub(crate) async fn app_in(
    app: &TestApp,
    org: &str,
    scopes: &[&str],
    extra: Value,
) -> (String, String) {
    let mut body = json!({"org_id": org, "name": "caller", "scopes": scopes,
        "products": ["events"], "sandboxes": {"prod": "read"}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = app.create_app_with(body).await;
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let (_, secret) = app.create_secret(&client_id).await;
    (client_id, secret)
}

#[tokio::test]
async fn every_answer_is_counted_once_for_its_app_and_org() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let (org, a, r) = (w.org.as_str(), w.client_id.as_str(), w.resource.as_str());
    let mut want = Expected::default();

    let token_a = app.access_token(a, &w.secret, None).await;
    want.add(Some(org), Some(a), grant("client_credentials"), "issued");
    let auth_a = bearer(&token_a);
    let as_a = credentials(&auth_a, a, org);

    // Allowed, three times.
    for _ in 0..3 {
        assert_eq!(check(&app, r, &as_a).await, "allowed");
        want.add(Some(org), Some(a), resource(r), "allowed");
    }
    // An api key the server does not have: no app, the resource's org.
    let unknown_key = "0123456789abcdef0123456789abcdef";
    let as_nobody = credentials(&auth_a, unknown_key, org);
    for _ in 0..2 {
        let code = check(&app, r, &as_nobody).await;
        assert_eq!(code, "403003");
        want.add(Some(org), None, resource(r), &code);
    }
    // A resource the server does not have, and an id that is no id at all: no resource.
    for missing in ["res_ffffffffffffffff", "not-a-resource-id"] {
        let code = check(&app, missing, &as_a).await;
        assert_ne!(code, "allowed");
        want.add(Some(org), Some(a), json!({ "resource": null }), &code);
    }
    // No credentials at all.
    let code = check(&app, r, &[]).await;
    assert_ne!(code, "allowed");
    want.add(Some(org), None, resource(r), &code);

    // An app over its quota: the refusals are counted against it.
    let (b, b_secret) = app_in(
        &app,
        org,
        &["read"],
        json!({"quota": {"requests": 1, "per": "minute"}}),
    )
    .await;
    let token_b = app.access_token(&b, &b_secret, None).await;
    want.add(Some(org), Some(&b), grant("client_credentials"), "issued");
    let auth_b = bearer(&token_b);
    let as_b = credentials(&auth_b, &b, org);
    let mut refused = 0;
    for _ in 0..3 {
        let code = check(&app, r, &as_b).await;
        refused += usize::from(code != "allowed");
        want.add(Some(org), Some(&b), resource(r), &code);
    }
    assert!(
        refused >= 1,
        "three requests of a 1/minute quota: one at least is refused"
    );

    // Another org's app calling this org's resource counts for its own org.
    let other = app.create_org(&["events"], &["prod"]).await;
    let other = other["id"].as_str().unwrap().to_owned();
    let (c, c_secret) = app_in(&app, &other, &["read"], json!({})).await;
    let token_c = app.access_token(&c, &c_secret, None).await;
    want.add(
        Some(&other),
        Some(&c),
        grant("client_credentials"),
        "issued",
    );
    let auth_c = bearer(&token_c);
    let code = check(&app, r, &credentials(&auth_c, &c, &other)).await;
    want.add(Some(&other), Some(&c), resource(r), &code);

    // Token requests: a wrong secret, an unknown client, an unsupported grant, none.
    let cc = [("grant_type", "client_credentials")];
    let outcome = token_request(&app, a, "not-the-secret", &cc).await;
    assert_eq!(outcome, "invalid_client");
    want.add(Some(org), Some(a), grant("client_credentials"), &outcome);
    let outcome = token_request(&app, unknown_key, "whatever", &cc).await;
    assert_eq!(outcome, "invalid_client");
    want.add(None, None, grant("client_credentials"), &outcome);
    let outcome = token_request(&app, a, &w.secret, &[("grant_type", "password")]).await;
    assert_eq!(outcome, "unsupported_grant_type");
    want.add(Some(org), Some(a), grant("unsupported"), &outcome);
    let outcome = token_request(&app, a, &w.secret, &[("scope", "read")]).await;
    assert_eq!(outcome, "invalid_request");
    want.add(Some(org), Some(a), grant("invalid"), &outcome);

    // Introspection: active, inactive, and a caller without the scope.
    let (i, i_secret) = app_in(&app, org, &["introspect"], json!({})).await;
    let r1 = app.introspect(&i, &i_secret, &token_a).await;
    assert_eq!(r1.json::<Value>().await.unwrap()["active"], true);
    want.add(Some(org), Some(&i), json!("introspection"), "active");
    let r2 = app.introspect(&i, &i_secret, "not-a-token").await;
    assert_eq!(r2.json::<Value>().await.unwrap()["active"], false);
    want.add(Some(org), Some(&i), json!("introspection"), "inactive");
    let r3 = app.introspect(a, &w.secret, &token_a).await;
    let error = r3.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    want.add(Some(org), Some(a), json!("introspection"), &error);

    assert!(app.state.flush_usage().await);
    assert_eq!(
        usage(&app, &format!("/admin/v1/apps/{a}/usage")).await,
        want.of_app(a)
    );
    assert_eq!(
        usage(&app, &format!("/admin/v1/apps/{b}/usage")).await,
        want.of_app(&b)
    );
    assert_eq!(
        usage(&app, &format!("/admin/v1/orgs/{org}/usage")).await,
        want.of_org(org)
    );
    assert_eq!(
        usage(&app, &format!("/admin/v1/orgs/{other}/usage")).await,
        want.of_org(&other)
    );
    // A second flush adds nothing; counts are not counted twice.
    assert!(app.state.flush_usage().await);
    assert_eq!(
        usage(&app, &format!("/admin/v1/orgs/{org}/usage?step=3600")).await,
        want.of_org(org)
    );
    app.stop().await;
}

#[tokio::test]
async fn with_usage_analytics_off_nothing_is_counted() {
    let app = spawn_with_usage(UsageConfig {
        enabled: false,
        ..Default::default()
    })
    .await;
    let (w, _) = world_with_checks(&app, 1).await;
    assert!(app.state.flush_usage().await);
    let path = format!("/admin/v1/orgs/{}/usage", w.org);
    assert!(usage(&app, &path).await.is_empty());
    // The answer says so: empty because nothing is counted, not because nothing came.
    let (_, v) = app.call(Method::GET, &path, None).await;
    assert_eq!(v["counted"], false, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn only_those_who_may_read_an_orgs_apps_read_its_usage() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let other = app.create_org(&[], &["prod"]).await;
    let other = other["id"].as_str().unwrap().to_owned();
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    assert!(app.state.flush_usage().await);

    let org_path = format!("/admin/v1/orgs/{}/usage", w.org);
    let app_path = format!("/admin/v1/apps/{}/usage", w.client_id);
    // A developer of the org reads it, as they read its apps.
    let member = app.user_session(&w.org, "developer").await;
    let subscriber = app.user_session(&w.org, "subscriber").await;
    for path in [&org_path, &app_path] {
        let (status, v) = app.call_as(&member, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["totals"]["allowed"], 1, "{v}");
    }
    // Another org's admin: as for the org's apps, there is nothing they can see there.
    // A subscriber of the org has no admin API rights.
    let outsider = app.user_session(&other, "admin").await;
    for who in [&outsider, &subscriber] {
        for path in [&org_path, &app_path] {
            let r = app.admin_as(who, Method::GET, path, None).await;
            assert_problem(r, StatusCode::NOT_FOUND).await;
        }
    }
    let apps = format!("/admin/v1/apps/{}", w.client_id);
    let r = app.admin_as(&outsider, Method::GET, &apps, None).await;
    assert_problem(r, StatusCode::NOT_FOUND).await;
    // Without credentials: 401.
    let r = app.http.get(app.url(&org_path)).send().await.unwrap();
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    app.stop().await;
}

#[tokio::test]
async fn bad_input_is_a_problem_that_says_what_to_change() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    let org = format!("/admin/v1/orgs/{}/usage", w.org);
    for (query, says) in [
        ("?step=90", "multiple of 60"),
        ("?step=0", "multiple of 60"),
        ("?step=abc", "'step' must be a whole number, not 'abc'"),
        (
            "?from=2026-12-07T00:00:00Z",
            "'from' must be a whole number",
        ),
        ("?from=600&to=600", "before"),
        ("?from=900&to=600", "before"),
        ("?from=-5", "unix seconds"),
        ("?to=99999999999999", "unix seconds"),
        // A week by the minute: too many buckets, and older than the minutes kept, so the
        // step suggested is whole hours.
        ("?from=0&to=604800", "at least 3600 s"),
        ("?since=0", "query"),
    ] {
        let r = app.admin(Method::GET, &format!("{org}{query}"), None).await;
        let v = assert_problem(r, StatusCode::BAD_REQUEST).await;
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{query}: {detail}");
    }
    // A week in 6-minute steps is few enough buckets, but minutes are kept for 48 hours:
    // the answer says to read whole hours, which answer.
    let r = app
        .admin(
            Method::GET,
            &format!("{org}?from=0&to=604800&step=360"),
            None,
        )
        .await;
    let v = assert_problem(r, StatusCode::BAD_REQUEST).await;
    assert!(v["detail"].as_str().unwrap().contains("whole hours"), "{v}");
    let (status, v) = app
        .call(
            Method::GET,
            &format!("{org}?from=0&to=604800&step=3600"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["from"].as_i64(),
            v["to"].as_i64(),
            v["resolution"].as_str()
        ),
        (Some(0), Some(604_800), Some("hour"))
    );
    for query in ["?format=xml", "?format="] {
        let r = app.admin(Method::GET, &format!("{org}{query}"), None).await;
        assert_problem(r, StatusCode::BAD_REQUEST).await;
    }

    // Unknown and malformed ids.
    let unknown_org = portcullis_core::ids::OrgId::generate();
    for (path, status) in [
        (
            format!("/admin/v1/orgs/{unknown_org}/usage"),
            StatusCode::NOT_FOUND,
        ),
        (
            "/admin/v1/orgs/not-an-org/usage".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/v1/apps/0123456789abcdef0123456789abcdef/usage".into(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/admin/v1/apps/not-a-client/usage".into(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = app.admin(Method::GET, &path, None).await;
        assert_problem(r, status).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn counts_past_the_retention_windows_are_pruned() {
    let app = TestApp::spawn_with(Options {
        manual_clock: true,
        ..Options::default()
    })
    .await;
    let clock = app.clock.clone().unwrap();
    let (w, _) = world_with_checks(&app, 1).await;
    assert!(app.state.flush_usage().await);
    let start = clock.now();
    let cid = &w.client_id;
    // By two hours (hour counts, kept 90 days), and by 10 minutes (minute counts, kept 48
    // hours).
    let hours = format!(
        "/admin/v1/apps/{cid}/usage?from={}&to={}&step=7200",
        start - 3600,
        start + 100 * 86_400
    );
    let minutes = |from: i64| {
        format!(
            "/admin/v1/apps/{cid}/usage?from={from}&to={}&step=600",
            start + 49 * 3600
        )
    };
    assert_eq!(usage(&app, &hours).await, issued_and_allowed(&w, 1, 1));

    // 47 hours on, new counts; nothing is old enough to go yet.
    clock.advance(47 * 3600);
    let token = app.access_token(cid, &w.secret, None).await;
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    assert!(app.state.flush_usage().await);
    assert_eq!(app.state.prune_usage().await, 0);
    assert_eq!(usage(&app, &hours).await, issued_and_allowed(&w, 2, 2));
    assert_eq!(
        usage(&app, &minutes(start - 60)).await,
        issued_and_allowed(&w, 2, 2)
    );

    // Past 48 hours the first minute's two counts go (its hour's stay); reading minutes
    // from before the window is refused, from within it answers the later counts.
    clock.advance(2 * 3600);
    assert_eq!(app.state.prune_usage().await, 2);
    let r = app.admin(Method::GET, &minutes(start - 60), None).await;
    let v = assert_problem(r, StatusCode::BAD_REQUEST).await;
    assert!(v["detail"].as_str().unwrap().contains("whole hours"), "{v}");
    assert_eq!(
        usage(&app, &minutes(start + 46 * 3600)).await,
        issued_and_allowed(&w, 1, 1)
    );
    assert_eq!(usage(&app, &hours).await, issued_and_allowed(&w, 2, 2));

    // Past 90 days everything goes: the later minute's two counts and both hours' two.
    clock.advance(90 * 86_400);
    assert_eq!(app.state.prune_usage().await, 2 + 4);
    assert!(usage(&app, &hours).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_org_lists_its_apps_most_refused_first_and_csv_has_the_same_counts() {
    let app = TestApp::spawn().await;
    let (w, _) = world_with_checks(&app, 2).await;
    let (org, a) = (w.org.as_str(), w.client_id.as_str());
    let (b, b_secret) = app_in(&app, org, &["read"], json!({})).await;
    let cc = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        assert_eq!(
            token_request(&app, &b, "not-the-secret", &cc).await,
            "invalid_client"
        );
    }
    assert_eq!(token_request(&app, &b, &b_secret, &cc).await, "issued");
    // An api key the server does not have: no app.
    let token = app.access_token(a, &w.secret, None).await;
    let auth = bearer(&token);
    let nobody = credentials(&auth, "0123456789abcdef0123456789abcdef", org);
    assert_eq!(check(&app, &w.resource, &nobody).await, "403003");
    assert!(app.state.flush_usage().await);

    let path = format!("/admin/v1/orgs/{org}/usage");
    let (status, v) = app.call(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["resolution"], "minute");
    assert_eq!(v["counted"], true, "{v}");
    // Minute counts are kept 48 hours, from the first whole minute after the cut.
    let now = app.state.now();
    let kept = v["kept_from"].as_i64().unwrap();
    assert!(
        kept % 60 == 0 && kept >= now - 48 * 3600 && kept < now - 48 * 3600 + 60,
        "{v}"
    );
    let apps: Vec<(Value, u64, u64)> = v["apps"]
        .as_array()
        .expect("an org's read lists its apps")
        .iter()
        .map(|x| {
            let (requests, refused) = (
                x["requests"].as_u64().unwrap(),
                x["refused"].as_u64().unwrap(),
            );
            let sum: u64 = x["totals"]
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            assert_eq!(sum, requests, "{x}");
            (x["client_id"].clone(), requests, refused)
        })
        .collect();
    assert_eq!(
        apps,
        [
            (json!(b), 4, 3),
            (Value::Null, 1, 1),
            // Two tokens issued, two checks allowed.
            (json!(a), 4, 0),
        ],
        "{v}"
    );
    let (_, one) = app
        .call(Method::GET, &format!("/admin/v1/apps/{a}/usage"), None)
        .await;
    assert!(
        one.get("apps").is_none(),
        "an app's read lists no apps: {one}"
    );

    // The same series as CSV: a row per bucket, adding up to the JSON's counts.
    let r = app
        .admin(Method::GET, &format!("{path}?format=csv"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    let disposition = header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"usage-") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("start,subject,subject_id,outcome,count"));
    let mut from_csv = Counts::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        let subject = match (f[0].parse::<i64>().map(|t| t % 60), f[1], f[2]) {
            (Ok(0), "resource", "") => json!({ "resource": null }),
            (Ok(0), "resource", id) => resource(id),
            (Ok(0), "grant", g) => grant(g),
            (Ok(0), "introspection", "") => json!("introspection"),
            _ => panic!("not a usage row: {line}"),
        };
        *from_csv
            .entry((subject.to_string(), f[3].to_owned()))
            .or_default() += f[4].parse::<u64>().unwrap();
    }
    assert_eq!(from_csv, usage(&app, &path).await);
    app.stop().await;
}

/// Run `sql` on the app's database through a connection of the test's own, behind the
/// server's back.
async fn behind_the_back(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    match &app.database_url {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        }
        None => {
            let file = app.data_dir.path().join("data").join("portcullis.db");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

/// A server with these usage settings.
pub(crate) async fn spawn_with_usage(usage: UsageConfig) -> TestApp {
    TestApp::spawn_with(Options {
        usage,
        ..Options::default()
    })
    .await
}

/// A gateway world, a token of its app, and `checks` allowed checks with it.
pub(crate) async fn world_with_checks(app: &TestApp, checks: usize) -> (GatewayWorld, String) {
    let w = app.gateway_world(false).await;
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    for _ in 0..checks {
        assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    }
    (w, token)
}

/// The counts of `tokens` tokens issued and `allowed` checks allowed of `w`'s resource.
fn issued_and_allowed(w: &GatewayWorld, tokens: u64, allowed: u64) -> Counts {
    let mut c = Counts::new();
    c.insert(
        (grant("client_credentials").to_string(), "issued".into()),
        tokens,
    );
    c.insert(
        (resource(&w.resource).to_string(), "allowed".into()),
        allowed,
    );
    c
}

#[tokio::test]
async fn a_refused_flush_keeps_the_counts_for_the_next_one() {
    // Only the flushes the test asks for.
    let app = spawn_with_usage(UsageConfig {
        flush_interval: std::time::Duration::from_secs(3600),
        ..Default::default()
    })
    .await;
    let (w, token) = world_with_checks(&app, 2).await;
    // The store refuses the write: nothing is lost, the failure is counted.
    behind_the_back(&app, "ALTER TABLE usage_minute RENAME TO usage_minute_away").await;
    assert!(!app.state.flush_usage().await);
    let metrics = app.metrics_text().await;
    assert_eq!(
        metric_value(&metrics, "portcullis_usage_flush_failures_total "),
        1.0
    );
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    behind_the_back(&app, "ALTER TABLE usage_minute_away RENAME TO usage_minute").await;
    assert!(app.state.flush_usage().await);
    let mut want = Counts::new();
    want.insert(
        (grant("client_credentials").to_string(), "issued".into()),
        1,
    );
    want.insert((resource(&w.resource).to_string(), "allowed".into()), 3);
    let path = format!("/admin/v1/apps/{}/usage", w.client_id);
    assert_eq!(usage(&app, &path).await, want);
    app.stop().await;
}

#[tokio::test]
async fn the_flush_task_stores_the_counts_by_itself() {
    let app = TestApp::spawn_with(Options {
        usage: UsageConfig {
            flush_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let token = app.access_token(&w.client_id, &w.secret, None).await;
    assert_eq!(app.bearer_check(&w, &token).await.status(), StatusCode::OK);
    let mut want = Counts::new();
    want.insert(
        (grant("client_credentials").to_string(), "issued".into()),
        1,
    );
    want.insert((resource(&w.resource).to_string(), "allowed".into()), 1);
    let path = format!("/admin/v1/apps/{}/usage", w.client_id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = usage(&app, &path).await;
        if got == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never flushed: {got:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.stop().await;
}

/// Two nodes on one PostgreSQL database each count what they answered; the store adds
/// their flushes up, and either node reads the sum.
#[tokio::test]
async fn two_nodes_add_up() {
    let Some(db) = portcullis_store::test_db::TestDatabase::create().await else {
        return;
    };
    let key = crate::cluster::cluster_key();
    let n1 = crate::cluster::node(&db.url, &key, Default::default()).await;
    let n2 = crate::cluster::node(&db.url, &key, Default::default()).await;
    let w = n1.gateway_world(false).await;
    let (org, a) = (w.org.as_str(), w.client_id.as_str());
    let mut want = Expected::default();
    // The second node learns of the app, its secret and the resource through the change
    // feed: wait for its view to have them (without a request, which would be counted).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let view = n2.state.view.get();
        if view.app(a).is_some_and(|e| !e.secrets.is_empty())
            && view.resource(&w.resource).is_some()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 2 never saw the app"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let token = n2.access_token(a, &w.secret, None).await;
    want.add(Some(org), Some(a), grant("client_credentials"), "issued");
    let auth = bearer(&token);
    let headers = credentials(&auth, a, org);
    for (node, n) in [(&n1, 7), (&n2, 5)] {
        for _ in 0..n {
            let code = check(node, &w.resource, &headers).await;
            assert_eq!(code, "allowed");
            want.add(Some(org), Some(a), resource(&w.resource), &code);
        }
    }
    let code = check(&n2, &w.resource, &[]).await;
    want.add(Some(org), None, resource(&w.resource), &code);
    // Both flush at once: adding the same minutes concurrently neither loses nor
    // deadlocks.
    let (f1, f2) = tokio::join!(n1.state.flush_usage(), n2.state.flush_usage());
    assert!(f1 && f2);
    for node in [&n1, &n2] {
        assert_eq!(
            usage(node, &format!("/admin/v1/orgs/{org}/usage")).await,
            want.of_org(org)
        );
        assert_eq!(
            usage(node, &format!("/admin/v1/apps/{a}/usage")).await,
            want.of_app(a)
        );
    }
    // What a node counted since its last flush is stored as it stops.
    for _ in 0..4 {
        assert_eq!(check(&n2, &w.resource, &headers).await, "allowed");
        want.add(Some(org), Some(a), resource(&w.resource), "allowed");
    }
    n2.stop().await;
    assert_eq!(
        usage(&n1, &format!("/admin/v1/apps/{a}/usage")).await,
        want.of_app(a)
    );
    n1.stop().await;
}
