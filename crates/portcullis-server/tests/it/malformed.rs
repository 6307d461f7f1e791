//! Malformed input to every endpoint gets a 4xx in the endpoint's documented format —
//! problem+json for the admin API and the other non-OAuth endpoints, RFC 6749 section 5.2
//! `{"error", "error_description"}` for `/oauth/*` — never a 5xx, never a partial write;
//! and the server stays ready afterwards.
//!
//! The cases are a table: adding one is one line in [`cases`].

use crate::common;

use common::*;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What a case must get back.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A problem+json body with this status.
    Problem(u16),
    /// An RFC 6749 error with this status and `error` code.
    OAuth(u16, &'static str),
    /// Success with a JSON body (the input was odd but acceptable, e.g. ignored).
    Json(u16),
    /// RFC 7662 for a token that is not valid: exactly `{"active": false}`.
    Inactive,
    /// Success whatever the body (e.g. `/metrics` text, revocation's empty 200).
    Status(u16),
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Admin,
    Basic(String, String),
    /// A raw `Authorization` header value.
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    what: String,
    method: Method,
    path: String,
    auth: Auth,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

fn c(method: Method, path: impl Into<String>) -> Case {
    Case {
        what: String::new(),
        method,
        path: path.into(),
        auth: Auth::None,
        content_type: None,
        body: None,
        expect: Expect::Status(0),
    }
}

impl Case {
    fn what(mut self, w: impl Into<String>) -> Self {
        self.what = w.into();
        self
    }
    fn admin(mut self) -> Self {
        self.auth = Auth::Admin;
        self
    }
    fn basic(mut self, f: &Fixture) -> Self {
        self.auth = Auth::Basic(f.cid.clone(), f.secret.clone());
        self
    }
    fn raw_auth(mut self, v: &[u8]) -> Self {
        self.auth = Auth::Raw(v.to_vec());
        self
    }
    fn body(mut self, content_type: Option<&'static str>, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = content_type;
        self.body = Some(body.into());
        self
    }
    fn json(self, text: impl Into<Vec<u8>>) -> Self {
        self.body(Some("application/json"), text)
    }
    fn form(self, text: impl Into<Vec<u8>>) -> Self {
        self.body(Some("application/x-www-form-urlencoded"), text)
    }
    fn problem(mut self, status: u16) -> Self {
        self.expect = Expect::Problem(status);
        self
    }
    fn oauth(mut self, status: u16, error: &'static str) -> Self {
        self.expect = Expect::OAuth(status, error);
        self
    }
    fn ok_json(mut self, status: u16) -> Self {
        self.expect = Expect::Json(status);
        self
    }
    fn inactive(mut self) -> Self {
        self.expect = Expect::Inactive;
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.expect = Expect::Status(status);
        self
    }
}

/// Records the cases address.
struct Fixture {
    org: String,
    group: String,
    resource: String,
    /// A resource that lets unauthenticated events in, so bad bodies reach the Edge
    /// intake's body checks.
    open: String,
    /// An app with the `introspect` scope, so it can call every OAuth endpoint.
    cid: String,
    secret: String,
    secret_id: String,
    user: String,
    /// A broadcast Wave feed of `cid`, with one topic.
    feed: String,
    topic: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    let org = app.create_org(&[], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, group) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/groups"),
            Some(json!({"name": "G", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, resource) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/resources"),
            Some(json!({"name": "R", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let open = app
        .create_resource(
            &org,
            json!({"name": "Open", "allow_unauthenticated": true, "cors_origins": ["https://shop.example"]}),
        )
        .await;
    let cid = app.create_app(&org, &["read", "introspect"]).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (secret_id, secret) = app.create_secret(&cid).await;
    let user = app
        .create_user(
            "someone@example.com",
            "correct horse battery",
            json!({org.clone(): "developer"}),
        )
        .await;
    let (status, feed) = app
        .call(
            Method::POST,
            &format!("/admin/v1/apps/{cid}/feeds"),
            Some(json!({"name": "News", "kind": "broadcast"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let feed = feed["id"].as_str().unwrap().to_owned();
    let (status, topic) = app
        .call(
            Method::POST,
            &format!("/admin/v1/apps/{cid}/feeds/{feed}/topics"),
            Some(json!({"name": "T"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    Fixture {
        topic: topic["id"].as_str().unwrap().to_owned(),
        feed,
        group: group["id"].as_str().unwrap().to_owned(),
        resource: resource["id"].as_str().unwrap().to_owned(),
        open: open["id"].as_str().unwrap().to_owned(),
        user: user["id"].as_str().unwrap().to_owned(),
        org,
        cid,
        secret,
        secret_id,
    }
}

const MIB: usize = 1024 * 1024;

fn huge_json() -> Vec<u8> {
    format!("{{\"name\": \"{}\"}}", "a".repeat(MIB + 1024)).into_bytes()
}

fn huge_form() -> Vec<u8> {
    format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(MIB + 1024)
    )
    .into_bytes()
}

fn deep_json() -> Vec<u8> {
    format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)).into_bytes()
}

/// Every kind of bad JSON body, as cases made by `r`; an empty body gets `empty_json`
/// with a JSON content type and `empty_untyped` without one.
fn bad_bodies(r: impl Fn(&str) -> Case, empty_json: u16, empty_untyped: u16) -> Vec<Case> {
    vec![
        r("invalid JSON").json("{\"name\": ").problem(400),
        r("JSON of the wrong shape").json("[1, 2, 3]").problem(400),
        r("a JSON string instead of an object")
            .json("\"org\"")
            .problem(400),
        r("a field of the wrong type")
            .json(r#"{"name": 42, "scopes": "read"}"#)
            .problem(400),
        r("an unknown field")
            .json(r#"{"surprise": true}"#)
            .problem(400),
        r("bytes that are not UTF-8")
            .json(vec![0xff, 0xfe, 0x7b])
            .problem(400),
        r("JSON nested 50,000 deep").json(deep_json()).problem(400),
        r("text/plain content type")
            .body(Some("text/plain"), "{}")
            .problem(415),
        r("form content type")
            .body(Some("application/x-www-form-urlencoded"), "name=x")
            .problem(415),
        r("no content type").body(None, "{}").problem(415),
        r("a body over 1 MiB").json(huge_json()).problem(413),
        r("an empty body").json("").status(empty_json),
        r("an empty body without content type")
            .body(None, "")
            .status(empty_untyped),
    ]
}

fn cases(f: &Fixture) -> Vec<Case> {
    use Method as M;
    let org = format!("/admin/v1/orgs/{}", f.org);
    let groups = format!("{org}/groups");
    let group = format!("{groups}/{}", f.group);
    let resources = format!("{org}/resources");
    let resource = format!("{resources}/{}", f.resource);
    let app = format!("/admin/v1/apps/{}", f.cid);
    let secrets = format!("{app}/secrets");
    let secret = format!("{secrets}/{}", f.secret_id);
    let keypairs = format!("{app}/keypairs");
    let certificates = format!("{app}/certificates");
    let user = format!("/admin/v1/users/{}", f.user);
    let feeds = format!("{app}/feeds");
    let feed = format!("{feeds}/{}", f.feed);
    let topics = format!("{feed}/topics");
    let topic = format!("{topics}/{}", f.topic);
    let mut out = Vec::new();

    // Every admin route that takes a JSON body, with every kind of bad body. The last
    // two columns: what an empty body gets (with and without a JSON content type) —
    // routes whose body is optional treat an empty one as `{}`.
    let body_routes: Vec<(Method, String, u16, u16)> = vec![
        (M::POST, "/admin/v1/orgs".into(), 400, 415),
        (M::PATCH, org.clone(), 400, 415),
        (M::POST, groups.clone(), 400, 415),
        (M::PATCH, group.clone(), 400, 415),
        (M::POST, resources.clone(), 400, 415),
        (M::PATCH, resource.clone(), 400, 415),
        (M::POST, "/admin/v1/apps".into(), 400, 415),
        (M::PATCH, app.clone(), 400, 415),
        (M::POST, secrets.clone(), 201, 201),
        (M::POST, format!("{app}/tokens"), 201, 201),
        (M::POST, format!("{app}/revoke"), 400, 415),
        (M::PATCH, secret.clone(), 400, 415),
        // Optional bodies: an empty one creates an RS256 key pair / an API key.
        (M::POST, keypairs.clone(), 201, 201),
        (M::POST, format!("{app}/api-keys"), 201, 201),
        (M::POST, feeds.clone(), 400, 415),
        (M::PATCH, feed.clone(), 400, 415),
        (M::POST, topics.clone(), 400, 415),
        (M::PATCH, topic.clone(), 400, 415),
        (M::POST, "/admin/v1/users".into(), 400, 415),
        (M::PATCH, user.clone(), 400, 415),
        (M::POST, "/admin/v1/sessions".into(), 400, 415),
        (M::POST, "/admin/v1/invitations".into(), 400, 415),
        // An empty body asks for a normal rotation, refused as too early (409).
        (M::POST, "/admin/v1/keys/rotate".into(), 409, 409),
        // The JSON form of a certificate upload (the PEM form has its own cases below).
        (M::POST, certificates.clone(), 400, 415),
    ];
    for (m, p, empty_json, empty_untyped) in body_routes {
        let r = |what: &str| {
            c(m.clone(), p.clone())
                .admin()
                .what(format!("{m} {p}: {what}"))
        };
        out.extend(bad_bodies(r, empty_json, empty_untyped));
    }

    // The Edge intake on a resource open to unauthenticated events, so the
    // body is what is refused: every kind of bad body, then the intake's own shapes.
    for endpoint in ["interact", "collect"] {
        let p = format!("/ee/v2/{endpoint}?datastreamId={}", f.open);
        let r = |what: &str| c(M::POST, p.clone()).what(format!("POST {p}: {what}"));
        out.extend(bad_bodies(r, 400, 415));
        let e = |what: &str| {
            c(M::POST, format!("/ee/v2/{endpoint}{what}"))
                .what(format!("{endpoint}: datastream {what:?}"))
                .json(r#"{"event": {}, "events": [{}]}"#)
        };
        out.extend([
            e("").problem(400),
            e("?datastreamId=").problem(400),
            e("?datastreamId=a&datastreamid=b").problem(400),
            e("?datastreamId=NOT-AN-ID").problem(404),
            e("?datastreamId=%00%FF").problem(404),
            e("?datastreamId=res_0000000000000000").problem(404),
            c(
                M::POST,
                format!("/ee/v2/{endpoint}?datastreamId={}", f.resource),
            )
            .json("{}")
            .what(format!("{endpoint}: no credentials where they are needed"))
            .problem(401),
            c(
                M::POST,
                format!("/ee/v2/{endpoint}?datastreamId={}", f.resource),
            )
            .raw_auth(b"Bearer \xff\xfe")
            .json("{}")
            .what(format!("{endpoint}: non-UTF-8 Authorization"))
            .problem(401),
            c(M::POST, p.clone())
                .raw_auth(b"Bearer a.b.c")
                .json("{}")
                .what(format!("{endpoint}: a JWT that is not one"))
                .problem(401),
            c(M::GET, p.clone())
                .what(format!("GET /ee/v2/{endpoint}"))
                .problem(405),
            c(M::PUT, p.clone())
                .json("{}")
                .what(format!("PUT /ee/v2/{endpoint}"))
                .problem(405),
            c(M::OPTIONS, format!("/ee/v2/{endpoint}"))
                .what(format!("preflight of {endpoint} without a datastream"))
                .problem(400),
            c(
                M::OPTIONS,
                format!("/ee/v2/{endpoint}?datastreamId=res_0000000000000000"),
            )
            .what(format!("preflight of {endpoint} for an unknown datastream"))
            .problem(404),
        ]);
        let shape = |what: &str, body: &str| {
            c(M::POST, p.clone())
                .json(body.to_owned())
                .what(format!("POST {p}: {what}"))
                .problem(400)
        };
        out.extend([
            shape("'event' not an object", r#"{"event": [1]}"#),
            shape("'event' null", r#"{"event": null}"#),
            shape("'events' empty", r#"{"events": []}"#),
            shape("'events' not an array", r#"{"events": {"a": 1}}"#),
            shape("an event that is not an object", r#"{"events": [{}, 1]}"#),
            shape("both members", r#"{"event": {}, "events": [{}]}"#),
            shape(
                "1,001 events",
                &format!(r#"{{"events": [{}{{}}]}}"#, "{}, ".repeat(1000)),
            ),
        ]);
    }

    // Malformed ids in every path that has one. Well-formed but unknown ids are 404.
    let long = "A".repeat(10_000);
    let bad_ids: Vec<(&str, String)> = vec![
        ("a word", "NOT-AN-ID".into()),
        ("a NUL byte", "%00".into()),
        ("invalid UTF-8", "%FF%FE".into()),
        ("an encoded slash", "..%2F..%2Fetc".into()),
        ("SQL", "%27%20OR%201%3D1%20--".into()),
        ("10,000 characters", long),
    ];
    type Route = (
        Method,
        fn(&Fixture, &str) -> String,
        Option<Value>,
        &'static str,
    );
    let id_routes: Vec<Route> = vec![
        (
            M::GET,
            |_, x| format!("/admin/v1/orgs/{x}"),
            None,
            "000000000000000000000000@Org",
        ),
        (
            M::PATCH,
            |_, x| format!("/admin/v1/orgs/{x}"),
            Some(json!({})),
            "000000000000000000000000@Org",
        ),
        (
            M::DELETE,
            |_, x| format!("/admin/v1/orgs/{x}"),
            None,
            "000000000000000000000000@Org",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/orgs/{x}/groups"),
            None,
            "000000000000000000000000@Org",
        ),
        (
            M::POST,
            |_, x| format!("/admin/v1/orgs/{x}/groups"),
            Some(json!({"name": "G", "scopes": []})),
            "000000000000000000000000@Org",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/orgs/{}/groups/{x}", f.org),
            None,
            "grp_0000000000000000",
        ),
        (
            M::PATCH,
            |f, x| format!("/admin/v1/orgs/{}/groups/{x}", f.org),
            Some(json!({})),
            "grp_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/orgs/{}/groups/{x}", f.org),
            None,
            "grp_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/orgs/{x}/resources"),
            None,
            "000000000000000000000000@Org",
        ),
        (
            M::POST,
            |_, x| format!("/admin/v1/orgs/{x}/resources"),
            Some(json!({"name": "R"})),
            "000000000000000000000000@Org",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/orgs/{}/resources/{x}", f.org),
            None,
            "res_0000000000000000",
        ),
        (
            M::PATCH,
            |f, x| format!("/admin/v1/orgs/{}/resources/{x}", f.org),
            Some(json!({})),
            "res_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/orgs/{}/resources/{x}", f.org),
            None,
            "res_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/resources/{x}/events"),
            None,
            "res_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/apps/{x}"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::PATCH,
            |_, x| format!("/admin/v1/apps/{x}"),
            Some(json!({})),
            "00000000000000000000000000000000",
        ),
        (
            M::DELETE,
            |_, x| format!("/admin/v1/apps/{x}"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/apps/{x}/secrets"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::POST,
            |_, x| format!("/admin/v1/apps/{x}/secrets"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/secrets/{x}", f.cid),
            None,
            "sec_0000000000000000",
        ),
        (
            M::PATCH,
            |f, x| format!("/admin/v1/apps/{}/secrets/{x}", f.cid),
            Some(json!({})),
            "sec_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/apps/{}/secrets/{x}", f.cid),
            None,
            "sec_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/apps/{x}/feeds"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/feeds/{x}", f.cid),
            None,
            "feed_0000000000000000",
        ),
        (
            M::PATCH,
            |f, x| format!("/admin/v1/apps/{}/feeds/{x}", f.cid),
            Some(json!({})),
            "feed_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/apps/{}/feeds/{x}", f.cid),
            None,
            "feed_0000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/feeds/{x}/topics", f.cid),
            None,
            "feed_0000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/feeds/{}/topics/{x}", f.cid, f.feed),
            None,
            "top_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/apps/{}/feeds/{}/topics/{x}", f.cid, f.feed),
            None,
            "top_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/apps/{x}/certificates"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/certificates/{x}", f.cid),
            None,
            "key_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/apps/{}/certificates/{x}", f.cid),
            None,
            "key_0000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/apps/{x}/keypairs"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::POST,
            |_, x| format!("/admin/v1/apps/{x}/keypairs"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |f, x| format!("/admin/v1/apps/{}/keypairs/{x}", f.cid),
            None,
            "key_0000000000000000",
        ),
        (
            M::DELETE,
            |f, x| format!("/admin/v1/apps/{}/keypairs/{x}", f.cid),
            None,
            "key_0000000000000000",
        ),
        (
            M::POST,
            |_, x| format!("/admin/v1/apps/{x}/api-keys"),
            None,
            "00000000000000000000000000000000",
        ),
        (
            M::GET,
            |_, x| format!("/admin/v1/users/{x}"),
            None,
            "usr_0000000000000000",
        ),
        (
            M::PATCH,
            |_, x| format!("/admin/v1/users/{x}"),
            Some(json!({})),
            "usr_0000000000000000",
        ),
        (
            M::DELETE,
            |_, x| format!("/admin/v1/users/{x}"),
            None,
            "usr_0000000000000000",
        ),
    ];
    for (m, path, body, unknown) in id_routes {
        let with_body = |case: Case| match &body {
            Some(b) => case.json(b.to_string()),
            None => case,
        };
        for (what, id) in &bad_ids {
            let p = path(f, id);
            let shown: String = p.chars().take(80).collect();
            out.push(
                with_body(c(m.clone(), p).admin().what(format!("{m} {shown}: {what}")))
                    .problem(400),
            );
        }
        let p = path(f, unknown);
        out.push(
            with_body(
                c(m.clone(), p.clone())
                    .admin()
                    .what(format!("{m} {p}: unknown id")),
            )
            .problem(404),
        );
    }

    // Bad query strings on every listing.
    let listings = [
        "/admin/v1/orgs".to_owned(),
        format!("/admin/v1/apps?org={}", f.org),
        "/admin/v1/users".to_owned(),
        groups.clone(),
        resources.clone(),
        secrets.clone(),
        keypairs.clone(),
        certificates.clone(),
        feeds.clone(),
        topics.clone(),
        format!("/admin/v1/resources/{}/events", f.open),
    ];
    for l in listings {
        let sep = if l.contains('?') { '&' } else { '?' };
        for (what, q) in [
            ("limit=0", "limit=0"),
            ("limit=abc", "limit=abc"),
            ("negative limit", "limit=-1"),
            ("limit over 1000", "limit=1001"),
            ("limit beyond u32", "limit=99999999999999999999"),
            ("an unknown parameter", "colour=blue"),
            ("limit twice", "limit=1&limit=2"),
            ("an empty limit", "limit="),
        ] {
            out.push(
                c(M::GET, format!("{l}{sep}{q}"))
                    .admin()
                    .what(format!("GET {l}: {what}"))
                    .problem(400),
            );
        }
    }
    out.push(
        c(
            M::GET,
            format!("/admin/v1/resources/{}/events?after=abc", f.open),
        )
        .admin()
        .what("an events cursor that is not one")
        .problem(400),
    );
    out.push(
        c(M::GET, "/admin/v1/apps?org=NOT-AN-ORG")
            .admin()
            .what("apps of a malformed org")
            .problem(400),
    );

    // Callers and routing.
    out.extend([
        c(M::GET, "/admin/v1/orgs")
            .what("no credentials")
            .problem(401),
        c(M::GET, "/admin/v1/orgs")
            .raw_auth(b"Bearer \xff\xfe")
            .what("non-UTF-8 Authorization")
            .problem(401),
        c(M::GET, "/admin/v1/orgs")
            .raw_auth(b"Bearer")
            .what("Bearer without a token")
            .problem(401),
        c(M::GET, "/admin/v1/orgs")
            .raw_auth(b"Bearer a.b.c")
            .what("a JWT that is not one")
            .problem(401),
        c(M::GET, "/admin/v1/orgs")
            .raw_auth(b"Bearer pcsu_x")
            .what("a malformed session")
            .problem(401),
        c(M::PUT, "/admin/v1/orgs")
            .admin()
            .json("{}")
            .what("PUT on a collection")
            .problem(405),
        c(M::DELETE, "/admin/v1/orgs")
            .admin()
            .what("DELETE on a collection")
            .problem(405),
        c(M::GET, "/admin/v1/sessions")
            .admin()
            .what("GET on sign-in")
            .problem(405),
        c(M::POST, "/admin/v1/openapi.json")
            .admin()
            .what("POST to the OpenAPI document")
            .problem(405),
        c(M::GET, "/admin/v1/no-such-thing")
            .admin()
            .what("unknown admin path")
            .problem(404),
        c(M::GET, "/no/such/path").what("unknown path").problem(404),
    ]);

    // /oauth/token.
    let token = |what: &str| c(M::POST, "/oauth/token").what(format!("token: {what}"));
    out.extend([
        token("missing grant_type")
            .basic(f)
            .form("scope=read")
            .oauth(400, "invalid_request"),
        token("empty grant_type")
            .basic(f)
            .form("grant_type=")
            .oauth(400, "invalid_request"),
        token("unsupported grant_type")
            .basic(f)
            .form("grant_type=password&username=a&password=b")
            .oauth(400, "unsupported_grant_type"),
        token("authorization_code")
            .basic(f)
            .form("grant_type=authorization_code&code=x")
            .oauth(400, "unsupported_grant_type"),
        token("bad percent-encoding")
            .basic(f)
            .form("grant_type=%ZZ")
            .oauth(400, "unsupported_grant_type"),
        token("duplicate grant_type")
            .basic(f)
            .form("grant_type=client_credentials&grant_type=client_credentials")
            .oauth(400, "invalid_request"),
        token("duplicate scope")
            .basic(f)
            .form("grant_type=client_credentials&scope=read&scope=read")
            .oauth(400, "invalid_request"),
        token("JSON content type")
            .basic(f)
            .json(r#"{"grant_type":"client_credentials"}"#)
            .oauth(400, "invalid_request"),
        token("no content type")
            .basic(f)
            .body(None, "grant_type=client_credentials")
            .oauth(400, "invalid_request"),
        token("multipart content type")
            .basic(f)
            .body(Some("multipart/form-data; boundary=x"), "--x--")
            .oauth(400, "invalid_request"),
        token("empty body")
            .basic(f)
            .form("")
            .oauth(400, "invalid_request"),
        token("a 100 KB form")
            .basic(f)
            .form(format!(
                "grant_type=client_credentials&pad={}",
                "a".repeat(100_000)
            ))
            .oauth(400, "invalid_request"),
        token("a body over 1 MiB")
            .basic(f)
            .form(huge_form())
            .oauth(413, "invalid_request"),
        token("Basic garbage")
            .raw_auth(b"Basic !!!not base64!!!")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("Basic without a colon")
            .raw_auth(b"Basic bm9jb2xvbg==")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("Basic of non-UTF-8")
            .raw_auth(b"Basic //4=")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("Basic without credentials")
            .raw_auth(b"Basic")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("non-UTF-8 Authorization")
            .raw_auth(b"Basic \xff")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("Bearer instead of Basic")
            .raw_auth(b"Bearer abc")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("no client authentication")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        token("client_id without secret")
            .form(format!("grant_type=client_credentials&client_id={}", f.cid))
            .oauth(401, "invalid_client"),
        token("unknown client")
            .form("grant_type=client_credentials&client_id=nobody&client_secret=pcss_x")
            .oauth(401, "invalid_client"),
        token("both basic and post")
            .basic(f)
            .form(format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                f.cid, f.secret
            ))
            .oauth(400, "invalid_request"),
        token("a quote in scope")
            .basic(f)
            .form("grant_type=client_credentials&scope=re%22ad")
            .oauth(400, "invalid_scope"),
        token("a backslash in scope")
            .basic(f)
            .form("grant_type=client_credentials&scope=re%5Cad")
            .oauth(400, "invalid_scope"),
        token("non-ASCII scope")
            .basic(f)
            .form("grant_type=client_credentials&scope=%C3%A9")
            .oauth(400, "invalid_scope"),
        token("a control character in scope")
            .basic(f)
            .form("grant_type=client_credentials&scope=read%00")
            .oauth(400, "invalid_scope"),
        token("a 10 KB scope")
            .basic(f)
            .form(format!(
                "grant_type=client_credentials&scope={}",
                "r".repeat(10_000)
            ))
            .oauth(400, "invalid_scope"),
        token("a resource that is not a URI")
            .basic(f)
            .form("grant_type=client_credentials&resource=not%20a%20uri")
            .oauth(400, "invalid_target"),
        token("an unknown parameter (ignored, RFC 6749 section 3.2)")
            .basic(f)
            .form("grant_type=client_credentials&colour=blue")
            .ok_json(200),
        c(M::GET, "/oauth/token")
            .what("GET /oauth/token")
            .oauth(405, "invalid_request"),
        c(M::PUT, "/oauth/token")
            .basic(f)
            .form("grant_type=client_credentials")
            .what("PUT /oauth/token")
            .oauth(405, "invalid_request"),
    ]);

    // Key pairs: algorithms that are not offered.
    for alg in [
        r#""HS256""#,
        r#""none""#,
        r#""EdDSA""#,
        r#""rs256""#,
        "null",
        "256",
    ] {
        let case = c(M::POST, keypairs.clone())
            .admin()
            .json(format!(r#"{{"alg": {alg}}}"#))
            .what(format!("POST {keypairs}: alg {alg}"));
        // `null` is an absent alg: the default.
        out.push(if alg == "null" {
            case.ok_json(201)
        } else {
            case.problem(400)
        });
    }
    out.push(
        c(M::PATCH, format!("{keypairs}/key_0000000000000000"))
            .admin()
            .json("{}")
            .what("PATCH a key pair")
            .problem(405),
    );

    // The API-key redeem's /v1/token: RFC 6749-style errors.
    let redeem = |what: &str| c(M::POST, "/v1/token").what(format!("/v1/token: {what}"));
    let enc = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let api_key = |key: &str| json!({ "apiKey": key }).to_string();
    out.extend([
        redeem("invalid JSON")
            .json("{\"apiKey\": ")
            .oauth(400, "invalid_request"),
        redeem("JSON of the wrong shape")
            .json("[1]")
            .oauth(400, "invalid_request"),
        redeem("apiKey not a string")
            .json(r#"{"apiKey": 1}"#)
            .oauth(400, "invalid_request"),
        redeem("an unknown field")
            .json(r#"{"apiKey": "x", "more": 1}"#)
            .oauth(400, "invalid_request"),
        redeem("bytes that are not UTF-8")
            .json(vec![0xff, 0xfe])
            .oauth(400, "invalid_request"),
        redeem("JSON nested 50,000 deep")
            .json(deep_json())
            .oauth(400, "invalid_request"),
        redeem("an empty body")
            .json("")
            .oauth(400, "invalid_request"),
        redeem("a form body")
            .form("apiKey=x")
            .oauth(415, "invalid_request"),
        redeem("a body over 1 MiB")
            .json(huge_json())
            .oauth(413, "invalid_request"),
        redeem("a key that is not base64")
            .json(api_key("%%%"))
            .oauth(400, "invalid_request"),
        redeem("a key of 10,000 characters")
            .json(api_key(&"A".repeat(10_000)))
            .oauth(400, "invalid_request"),
        redeem("a key without a colon")
            .json(api_key(&enc(&f.cid)))
            .oauth(400, "invalid_request"),
        redeem("a key of non-UTF-8 bytes")
            .json(api_key("//79"))
            .oauth(400, "invalid_request"),
        redeem("a key with a malformed secret")
            .json(api_key(&enc(&format!("{}:pcss_x", f.cid))))
            .oauth(400, "invalid_request"),
        redeem("a key of an unknown client")
            .json(api_key(&enc(&format!(
                "00000000000000000000000000000000:{}",
                f.secret
            ))))
            .oauth(401, "invalid_client"),
        c(M::GET, "/v1/token")
            .what("GET /v1/token")
            .oauth(405, "invalid_request"),
    ]);

    // SAP Gigya's /accounts.getJWTPublicKey: problem+json.
    let jwk = |q: &str| {
        c(M::GET, format!("/accounts.getJWTPublicKey{q}")).what(format!("getJWTPublicKey {q:?}"))
    };
    out.extend([
        jwk("").problem(400),
        jwk("?v2=true").problem(400),
        jwk("?apiKey=").problem(400),
        jwk("?%ZZ=%00&a=%FF").problem(400),
        jwk(&format!("?apiKey={}&apikey={}", f.cid, f.cid)).problem(400),
        jwk(&format!("?apiKey={}&v2=2", f.cid)).problem(400),
        jwk("?apiKey=%00%FF").problem(403),
        jwk("?apiKey=00000000000000000000000000000000").problem(403),
        jwk(&format!("?apiKey={}&colour=blue", f.cid)).ok_json(200),
        c(
            M::POST,
            format!("/accounts.getJWTPublicKey?apiKey={}", f.cid),
        )
        .what("POST getJWTPublicKey")
        .problem(405),
    ]);

    // Certificate uploads as PEM.
    let pem = |what: &str| {
        c(M::POST, certificates.clone())
            .admin()
            .what(format!("certificate upload: {what}"))
    };
    out.extend([
        pem("garbage")
            .body(Some("application/x-pem-file"), "not a certificate")
            .problem(400),
        pem("bytes that are not UTF-8")
            .body(Some("application/x-pem-file"), vec![0xff, 0xfe, 0x00])
            .problem(400),
        pem("an empty PEM block")
            .body(
                Some("application/x-pem-file"),
                "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
            )
            .problem(400),
        pem("a private key")
            .body(
                Some("application/x-pem-file"),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            )
            .problem(400),
        pem("20 KB of PEM")
            .body(Some("application/x-pem-file"), "A".repeat(20_000))
            .problem(400),
        pem("a PEM over 1 MiB")
            .body(Some("application/x-pem-file"), vec![b'A'; MIB + 1024])
            .problem(413),
        pem("JSON with a number for pem")
            .json(r#"{"pem": 42}"#)
            .problem(400),
        c(M::PUT, certificates.clone())
            .admin()
            .what("PUT on certificates")
            .problem(405),
    ]);

    // Adobe I/O's token endpoints (RFC 6749 error bodies, like /oauth/*).
    let ims = |path: &str, what: &str| c(M::POST, path).what(format!("{path}: {what}"));
    let x = "/ims/exchange/jwt";
    let creds = format!("client_id={}&client_secret={}", f.cid, f.secret);
    out.extend([
        ims(x, "no client")
            .form("jwt_token=a.b.c")
            .oauth(401, "invalid_client"),
        ims(x, "a wrong secret")
            .form(format!(
                "client_id={}&client_secret=pcss_x&jwt_token=a.b.c",
                f.cid
            ))
            .oauth(401, "invalid_client"),
        ims(x, "no jwt_token")
            .form(creds.clone())
            .oauth(400, "invalid_token"),
        ims(x, "a jwt_token that is not one")
            .form(format!("{creds}&jwt_token=garbage"))
            .oauth(400, "invalid_token"),
        ims(x, "a 10 KB jwt_token")
            .form(format!("{creds}&jwt_token={}", "e".repeat(10_000)))
            .oauth(400, "invalid_token"),
        ims(x, "JSON content type")
            .json(r#"{"client_id": "x"}"#)
            .oauth(400, "invalid_request"),
        ims(x, "duplicate client_id")
            .form(format!("{creds}&client_id=x"))
            .oauth(400, "invalid_request"),
        ims(x, "a body over 1 MiB")
            .form(huge_form())
            .oauth(413, "invalid_request"),
        c(M::GET, x)
            .what("GET /ims/exchange/jwt")
            .oauth(405, "invalid_request"),
        ims("/ims/exchange/jwt/", "Adobe's trailing slash, no client")
            .form("jwt_token=a.b.c")
            .oauth(401, "invalid_client"),
        ims("/ims/token/v3", "no grant_type")
            .form(creds.clone())
            .oauth(400, "invalid_request"),
        ims("/ims/token/v3", "grant_type password")
            .form(format!("{creds}&grant_type=password"))
            .oauth(400, "unsupported_grant_type"),
        ims("/ims/token/v3", "no client")
            .form("grant_type=client_credentials")
            .oauth(401, "invalid_client"),
        ims("/ims/token/v3", "a scope with a quote")
            .form(format!(
                "{creds}&grant_type=client_credentials&scope=re%22ad"
            ))
            .oauth(400, "invalid_scope"),
    ]);

    // RFC 7523 at /oauth/token.
    let bearer = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
    let assertion_type =
        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
    out.extend([
        token("jwt-bearer without an assertion")
            .form(bearer)
            .oauth(400, "invalid_request"),
        token("jwt-bearer with garbage")
            .form(format!("{bearer}&assertion=garbage"))
            .oauth(400, "invalid_grant"),
        token("jwt-bearer with claims that are not JSON")
            .form(format!(
                "{bearer}&assertion=eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln"
            ))
            .oauth(400, "invalid_grant"),
        token("jwt-bearer with a wrong client secret")
            .form(format!(
                "{bearer}&assertion=a.b.c&client_id={}&client_secret=pcss_x",
                f.cid
            ))
            .oauth(401, "invalid_client"),
        token("a client assertion that is garbage")
            .form(format!(
                "grant_type=client_credentials&{assertion_type}&client_assertion=garbage"
            ))
            .oauth(401, "invalid_client"),
        token("a client assertion without its type")
            .form("grant_type=client_credentials&client_assertion=a.b.c")
            .oauth(401, "invalid_client"),
        token("a client assertion type without the assertion")
            .form(format!("grant_type=client_credentials&{assertion_type}"))
            .oauth(401, "invalid_client"),
        token("a client assertion and Basic")
            .basic(f)
            .form(format!(
                "grant_type=client_credentials&{assertion_type}&client_assertion=a.b.c"
            ))
            .oauth(400, "invalid_request"),
    ]);

    // /oauth/introspect and /oauth/revoke.
    let jwtish = format!(
        "{}.{}.{}",
        "e".repeat(4000),
        "e".repeat(4000),
        "e".repeat(2240)
    );
    for (path, is_introspect) in [("/oauth/introspect", true), ("/oauth/revoke", false)] {
        let r = |what: &str| c(M::POST, path).what(format!("{path}: {what}"));
        let garbage_ok = |case: Case| {
            if is_introspect {
                case.inactive()
            } else {
                case.status(200)
            }
        };
        out.extend([
            r("no client authentication")
                .form("token=abc")
                .oauth(401, "invalid_client"),
            r("Basic garbage")
                .raw_auth(b"Basic %%%")
                .form("token=abc")
                .oauth(401, "invalid_client"),
            r("missing token")
                .basic(f)
                .form("token_type_hint=access_token")
                .oauth(400, "invalid_request"),
            r("duplicate token")
                .basic(f)
                .form("token=a&token=b")
                .oauth(400, "invalid_request"),
            r("JSON content type")
                .basic(f)
                .json(r#"{"token":"abc"}"#)
                .oauth(400, "invalid_request"),
            r("no content type")
                .basic(f)
                .body(None, "token=abc")
                .oauth(400, "invalid_request"),
            r("a body over 1 MiB")
                .basic(f)
                .form(format!("token={}", "a".repeat(MIB + 1024)))
                .oauth(413, "invalid_request"),
            garbage_ok(
                r("a 10 KB token")
                    .basic(f)
                    .form(format!("token={}", "a".repeat(10_240))),
            ),
            garbage_ok(
                r("a 10 KB three-part token")
                    .basic(f)
                    .form(format!("token={jwtish}")),
            ),
            garbage_ok(
                r("an unknown token_type_hint")
                    .basic(f)
                    .form("token=abc&token_type_hint=%00weird"),
            ),
            c(M::GET, path)
                .what(format!("GET {path}"))
                .oauth(405, "invalid_request"),
        ]);
    }

    // Adobe Wave. This server refuses secrets over plain HTTP, so the OAuth 1.0
    // endpoints and apitoken.xml refuse before reading anything (tests/wave.rs covers what
    // they say past that, with the development flag).
    let form = Some("application/x-www-form-urlencoded");
    let authorize = "/identity/1.0/oauth/authorize";
    let notification = "/notificationgateway/1.0/notification";
    let stream = "/notificationgateway/1.0/stream";
    let subscription = format!("/notificationgateway/1.0/subscriptions/{}", f.feed);
    for p in [
        "/identity/1.0/oauth/requesttoken",
        "/identity/1.0/oauth/accesstoken",
    ] {
        out.extend([
            c(M::GET, p)
                .what(format!("GET {p} over plain HTTP"))
                .problem(403),
            c(M::POST, p)
                .form("oauth_nonce=%FF")
                .what(format!("POST {p} over plain HTTP"))
                .problem(403),
            c(M::PUT, p).what(format!("PUT {p}")).problem(405),
        ]);
    }
    out.extend([
        c(M::GET, "/identity/1.0/auth/apitoken.xml")
            .what("GET apitoken.xml")
            .problem(405),
        c(M::POST, "/identity/1.0/auth/apitoken.xml")
            .basic(f)
            .what("apitoken.xml over plain HTTP")
            .problem(403),
        c(M::GET, authorize)
            .what("authorize without parameters")
            .problem(400),
        c(
            M::GET,
            format!("{authorize}?oauth_token=pcwt_x&feedId={}", f.feed),
        )
        .what("authorize with a token that is not one")
        .problem(400),
        c(M::GET, format!("{authorize}?oauth_token=%FF%FE&feedId=x"))
            .what("authorize with invalid UTF-8")
            .problem(400),
        c(
            M::GET,
            format!("{authorize}?oauth_token=a&oauth_token=b&feedId=x"),
        )
        .what("authorize with oauth_token twice")
        .problem(400),
        c(M::POST, authorize)
            .json("{}")
            .what("authorize POST as JSON")
            .problem(415),
        c(M::POST, authorize)
            .form("csrf=x&oauth_token=pcwt_x&feedId=feed_0000000000000000")
            .what("authorize POST with a bad token")
            .problem(400),
        c(M::POST, authorize)
            .form(vec![0x6f, 0x3d, 0xff])
            .what("authorize POST that is not UTF-8")
            .problem(400),
        c(M::POST, notification)
            .what("a notification without anything")
            .problem(401),
        c(M::POST, notification)
            .json("{}")
            .what("a notification as JSON")
            .problem(415),
        c(M::POST, notification)
            .form("topic=%FF")
            .what("a notification that is not UTF-8")
            .problem(400),
        c(M::POST, notification)
            .form("colour=blue")
            .what("a notification with an unknown parameter")
            .problem(400),
        c(M::POST, format!("{notification}?topic=a"))
            .form("topic=b")
            .what("a notification with topic twice")
            .problem(400),
        c(M::POST, notification)
            .form("X-apitoken=pcwa_junk&topic=t&message=m")
            .what("a notification with a junk token")
            .problem(401),
        c(M::POST, notification)
            .body(
                Some("multipart/form-data; boundary=xyz"),
                "--xyz\r\nnot a part",
            )
            .what("a broken multipart notification")
            .problem(400),
        c(M::POST, notification)
            .body(Some("multipart/form-data"), "x")
            .what("multipart without a boundary")
            .problem(400),
        c(M::POST, notification)
            .body(form, huge_form())
            .what("a notification over 1 MiB")
            .problem(413),
        c(M::GET, notification)
            .what("GET notification")
            .problem(405),
        c(M::GET, stream)
            .what("a stream without credentials")
            .problem(401),
        c(M::GET, stream)
            .raw_auth(b"Basic %%%")
            .what("a stream with broken Basic")
            .problem(401),
        c(M::GET, stream)
            .raw_auth(b"Bearer pcsu_nope")
            .what("a stream with a junk session")
            .problem(401),
        c(M::POST, stream).what("POST stream").problem(405),
        c(M::PUT, subscription.clone())
            .what("subscribing without credentials")
            .problem(401),
        c(M::PUT, "/notificationgateway/1.0/subscriptions/%FF")
            .what("subscribing to a path that is not UTF-8")
            .problem(400),
    ]);

    // Discovery, JWKS and operations: wrong methods, junk queries, bodies.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        let ok = |case: Case| {
            if path == "/metrics" {
                case.status(200)
            } else {
                case.ok_json(200)
            }
        };
        out.extend([
            c(M::POST, path)
                .form("a=b")
                .what(format!("POST {path}"))
                .problem(405),
            c(M::DELETE, path)
                .what(format!("DELETE {path}"))
                .problem(405),
            ok(c(M::GET, format!("{path}?%ZZ=%00&a=%FF"))
                .what(format!("GET {path} with a junk query"))),
            c(M::GET, path)
                .json(huge_json())
                .what(format!("GET {path} with a body over 1 MiB"))
                .problem(413),
        ]);
    }
    out.push(
        c(M::GET, "/.well-known/nothing")
            .what("unknown .well-known document")
            .problem(404),
    );
    out
}

/// Send a case; return a description of what went wrong, if anything.
async fn check(app: &TestApp, case: &Case) -> Option<String> {
    let mut req = app.http.request(case.method.clone(), app.url(&case.path));
    req = match &case.auth {
        Auth::None => req,
        Auth::Admin => req.bearer_auth(ADMIN_TOKEN),
        Auth::Basic(id, secret) => req.basic_auth(id, Some(secret)),
        Auth::Raw(v) => req.header(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_bytes(v).expect("a header value"),
        ),
    };
    if let Some(ct) = case.content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if let Some(b) = &case.body {
        req = req.body(b.clone());
    }
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("the request failed: {e}")),
    };
    let status = r.status();
    let ct = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let www_authenticate = r
        .headers()
        .contains_key(HeaderName::from_static("www-authenticate"));
    let text = r.text().await.unwrap_or_default();
    let shown: String = text.chars().take(300).collect();
    let fail = |why: String| Some(format!("{why}; got {status} {ct:?} {shown}"));
    if status.is_server_error() {
        return fail("a 5xx".into());
    }
    let json: Option<Value> = serde_json::from_str(&text).ok();
    match case.expect {
        Expect::Problem(want) => {
            if status.as_u16() != want {
                return fail(format!("expected {want}"));
            }
            if ct != "application/problem+json" {
                return fail("expected application/problem+json".into());
            }
            let Some(v) = json else {
                return fail("the body is not JSON".into());
            };
            let ok = v["type"]
                .as_str()
                .is_some_and(|t| t.len() > 21 && t.starts_with("urn:portcullis:error:"))
                && v["status"].as_u64() == Some(want as u64)
                && v["code"].is_string()
                && v["detail"].as_str().is_some_and(|d| !d.trim().is_empty());
            if !ok {
                return fail("not a Portcullis problem".into());
            }
        }
        Expect::OAuth(want, error) => {
            if status.as_u16() != want {
                return fail(format!("expected {want}"));
            }
            if !ct.starts_with("application/json") {
                return fail("expected application/json".into());
            }
            let Some(v) = json else {
                return fail("the body is not JSON".into());
            };
            if v["error"] != error {
                return fail(format!("expected error {error}"));
            }
            if v["error_description"].as_str().is_none_or(str::is_empty) {
                return fail("no error_description".into());
            }
            if want == 401 && !www_authenticate {
                return fail("401 without WWW-Authenticate".into());
            }
        }
        Expect::Json(want) => {
            if status.as_u16() != want || json.is_none() {
                return fail(format!("expected {want} with a JSON body"));
            }
        }
        Expect::Inactive => {
            if status != StatusCode::OK || json != Some(json!({"active": false})) {
                return fail("expected 200 {\"active\": false}".into());
            }
        }
        Expect::Status(want) => {
            if status.as_u16() != want {
                return fail(format!("expected {want}"));
            }
            if status.is_client_error() {
                let documented =
                    json.is_some_and(|v| v.get("type").is_some() || v.get("error").is_some());
                if !documented {
                    return fail("an error without a documented body".into());
                }
            }
        }
    }
    None
}

#[tokio::test]
async fn malformed_input_to_every_endpoint_gets_a_documented_4xx_and_the_server_stays_ready() {
    let app = TestApp::spawn().await;
    let f = fixture(&app).await;
    let cases = cases(&f);
    assert!(
        cases.len() > 300,
        "the table covers every endpoint ({} cases)",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        assert!(
            !case.what.is_empty() && !matches!(case.expect, Expect::Status(0)),
            "incomplete case {case:?}"
        );
        if let Some(why) = check(&app, case).await {
            failures.push(format!("{}: {why}", case.what));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    app.assert_ready().await;
    // No partial writes: only the fixture's records exist (the empty-body secret
    // creations are the only accepted writes).
    assert_eq!(
        ids(&app.walk_pages("/admin/v1/orgs", 100).await, "id"),
        vec![f.org.clone()]
    );
    assert_eq!(
        ids(&app.walk_pages("/admin/v1/users", 100).await, "id"),
        vec![f.user.clone()]
    );
    assert_eq!(
        ids(
            &app.walk_pages(&format!("/admin/v1/apps?org={}", f.org), 100)
                .await,
            "client_id"
        ),
        vec![f.cid.clone()]
    );
    assert_eq!(
        ids(
            &app.walk_pages(&format!("/admin/v1/orgs/{}/groups", f.org), 100)
                .await,
            "id"
        ),
        vec![f.group.clone()]
    );
    assert_eq!(
        ids(
            &app.walk_pages(&format!("/admin/v1/orgs/{}/resources", f.org), 100)
                .await,
            "id"
        ),
        {
            let mut both = vec![f.resource.clone(), f.open.clone()];
            both.sort();
            both
        }
    );
    for r in [&f.resource, &f.open] {
        assert_eq!(
            app.walk_pages_of(&format!("/admin/v1/resources/{r}/events"), 100, "events")
                .await,
            Vec::<Value>::new(),
            "no event of a refused request was stored"
        );
    }
    // Only the accepted key pairs were created.
    assert_eq!(
        app.walk_pages(&format!("/admin/v1/apps/{}/keypairs", f.cid), 100)
            .await
            .len(),
        3,
        "the two empty bodies and the `null` alg"
    );
    // The fixture's credentials still work.
    assert_eq!(
        app.token(&f.cid, &f.secret, None).await.status(),
        StatusCode::OK
    );
}
