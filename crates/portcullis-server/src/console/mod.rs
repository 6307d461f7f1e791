//! The developer console at `/console`: server-rendered
//! pages where a developer signs in, sees their organizations, creates an app, adds a
//! client secret (shown once), copies the client id and presses "Generate access token".
//!
//! The console is a **client of the admin API**, not a second path into the store: every
//! page calls the admin API in process ([`api::Api`]) with the user's session token, so
//! every rule and permission is the admin API's, and its problem `detail` is what the
//! person reads when something is refused.
//!
//! What this module adds on top is what a browser needs:
//! - the session token in a cookie (`HttpOnly; SameSite=Strict; Path=/console`, `Secure`
//!   when the request came over TLS through a trusted proxy);
//! - a CSRF token on every form — an HMAC of the session under the server's secret-hash
//!   key (a pre-session nonce for the sign-in form) — checked on every POST; no GET
//!   changes anything;
//! - a failure limit on sign-in per client address;
//! - once-only forms (a nonce per rendered form) so that reloading the page that shows a
//!   new secret or token does not make or show another;
//! - strict headers on every response (`Content-Security-Policy`, `nosniff`, no caching).
//!
//! Where things are:
//! - `mod.rs` (here): the router, every route of the console in `routes()`, the request
//!   context ([`Ctx`], [`Signed`]), CSRF tokens, cookies and once-only nonces, the
//!   security headers and the static assets;
//! - [`api`]: the in-process client of the admin API, reading its answers into the admin
//!   API's own response types;
//! - `common.rs`: what the pages share — the handler result, the redirect after a form,
//!   a deletion's confirmation step, the page that shows something once, an
//!   organization's breadcrumbs;
//! - [`view`]: the HTML frame and small pieces (alerts, copy fields, forms, times);
//!   `form.rs`: the strict reading of form bodies;
//! - one file per noun, with its pages and what their forms do: `session.rs` (signing in
//!   and out, `/console/`), `orgs.rs` (the list of organizations, the switcher and tabs,
//!   creating and changing one), `overview.rs` (an organization at a glance, and
//!   "Protect an API"), `usage.rs` (the usage charts of an organization and an
//!   application, and their CSV), `chart.rs` (bar charts as inline SVG), `apps.rs`
//!   (applications, their client secrets and tokens),
//!   `edit.rs` (editing an application), `credentials.rs` (certificates, key pairs, API
//!   key bundles), `feeds.rs` (Wave feeds and topics), `resources.rs` and `groups.rs`
//!   (an organization's resources and permission groups, created, edited and deleted
//!   by the handlers `manage.rs` shares between them), `users.rs` (people, invitations,
//!   password resets and the one-time link pages), `audit.rs` (the audit log),
//!   `notifications.rs` (a subscriber's notifications and their live stream).

pub mod api;
mod apps;
mod audit;
mod chart;
mod common;
mod credentials;
mod edit;
mod feeds;
mod form;
mod groups;
mod manage;
mod notifications;
mod orgs;
mod overview;
mod resources;
mod session;
mod usage;
mod users;
pub mod view;

pub use form::ConsoleForm;

use crate::state::AppState;
use api::Api;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The session cookie: the admin API's `pcsu_…` session token.
pub const SESSION_COOKIE: &str = "pcs_console";
/// The sign-in form's pre-session nonce (its CSRF token is derived from it).
pub const LOGIN_COOKIE: &str = "pcs_console_login";
/// The header every console response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Console state beside [`AppState`]: the admin router it calls, its limits.
pub struct Console {
    admin: Router,
    /// Wave's routes, for the subscriber's notifications (same session token).
    wave: Router,
    /// Once-only form nonces already used, with when (unix seconds).
    used_nonces: Mutex<HashMap<String, i64>>,
}

const MAX_NONCES: usize = 100_000;

impl Console {
    fn new(state: &AppState) -> Self {
        Self {
            admin: crate::admin::router(state).with_state(state.clone()),
            wave: crate::wave::router().with_state(state.clone()),
            used_nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Mark a once-only form's nonce used; `false` if it was used before (a reload or a
    /// second click resubmitting the same form).
    fn use_nonce(&self, nonce: &str, now: i64) -> bool {
        let Ok(mut used) = self.used_nonces.lock() else {
            return false;
        };
        if used.len() >= MAX_NONCES {
            let horizon = now - crate::admin::sessions::SESSION_TTL;
            used.retain(|_, at| *at > horizon);
            if used.len() >= MAX_NONCES {
                used.clear();
            }
        }
        used.insert(nonce.to_owned(), now).is_none()
    }
}

/// The console's routes, under `/console`.
pub fn router(state: &AppState) -> Router<AppState> {
    let console = Arc::new(Console::new(state));
    let inner = routes()
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .fallback(|| async {
            view::PageError::new(
                StatusCode::NOT_FOUND,
                "There is no console page at this address.",
            )
        })
        .method_not_allowed_fallback(|| async {
            view::PageError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "This page does not take that kind of request.",
            )
        });
    Router::new()
        .route("/", get(root))
        // `/console` itself is the nested "/"; the trailing-slash form is its twin.
        .route("/console/", get(session::home))
        .nest("/console", inner)
        .layer(axum::Extension(console))
        .layer(axum::middleware::from_fn(headers))
}

/// Every page of the console, under `/console`; a GET never changes anything.
fn routes() -> Router<AppState> {
    use groups::Groups;
    use manage::{create, delete, delete_page, edit, edit_page, new_page};
    use resources::Resources;
    Router::new()
        // Signing in and out.
        .route("/", get(session::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        // Organizations.
        .route("/orgs", get(orgs::orgs))
        .route("/orgs/switch", get(orgs::switch_org))
        .route("/orgs/new", get(orgs::new_page).post(orgs::create))
        .route("/orgs/{org}/edit", get(orgs::edit_page).post(orgs::edit))
        .route("/orgs/{org}/overview", get(overview::overview))
        .route("/orgs/{org}/usage.csv", get(usage::org_csv))
        .route(
            "/orgs/{org}/protect",
            get(overview::protect_page).post(overview::protect),
        )
        // An organization's applications.
        .route("/orgs/{org}", get(apps::org_apps))
        .route("/orgs/{org}/apps/new", get(apps::new_app))
        .route("/orgs/{org}/apps", post(apps::create_app))
        // Its resources and permission groups.
        .route("/orgs/{org}/resources", get(resources::resources))
        .route(
            "/orgs/{org}/resources/new",
            get(new_page::<Resources>).post(create::<Resources>),
        )
        .route(
            "/orgs/{org}/resources/{id}/edit",
            get(edit_page::<Resources>).post(edit::<Resources>),
        )
        .route(
            "/orgs/{org}/resources/{id}/delete",
            get(delete_page::<Resources>).post(delete::<Resources>),
        )
        .route("/orgs/{org}/groups", get(groups::groups))
        .route(
            "/orgs/{org}/groups/new",
            get(new_page::<Groups>).post(create::<Groups>),
        )
        .route(
            "/orgs/{org}/groups/{id}/edit",
            get(edit_page::<Groups>).post(edit::<Groups>),
        )
        .route(
            "/orgs/{org}/groups/{id}/delete",
            get(delete_page::<Groups>).post(delete::<Groups>),
        )
        // Its people and its audit log.
        .route("/orgs/{org}/users", get(users::users_page))
        .route("/orgs/{org}/invitations", post(users::invite))
        .route(
            "/orgs/{org}/users/{uid}/reset",
            get(users::reset_page).post(users::reset),
        )
        .route("/orgs/{org}/audit", get(audit::audit_page))
        // An application, its secrets and tokens.
        .route("/apps/{cid}", get(apps::app_detail))
        .route("/apps/{cid}/usage.csv", get(usage::app_csv))
        .route("/apps/{cid}/edit", get(edit::edit_page).post(edit::edit))
        .route("/apps/{cid}/secrets", post(apps::add_secret))
        .route("/apps/{cid}/token", post(apps::generate_token))
        .route(
            "/apps/{cid}/revoke",
            get(apps::revoke_page).post(apps::revoke),
        )
        .route(
            "/apps/{cid}/delete",
            get(apps::delete_app_page).post(apps::delete_app),
        )
        .route(
            "/apps/{cid}/secrets/{sid}/delete",
            get(apps::delete_secret_page).post(apps::delete_secret),
        )
        // Its other credentials.
        .route(
            "/apps/{cid}/certificates/new",
            get(credentials::upload_page),
        )
        .route(
            "/apps/{cid}/certificates",
            post(credentials::upload).layer(DefaultBodyLimit::max(
                credentials::MAX_CERTIFICATE + 16 * 1024,
            )),
        )
        .route("/apps/{cid}/keypairs", post(credentials::generate_key_pair))
        .route("/apps/{cid}/api-keys", post(credentials::api_key_bundle))
        .route(
            "/apps/{cid}/{kind}/{id}/delete",
            get(credentials::delete_key_page).post(credentials::delete_key),
        )
        // Its Wave feeds.
        .route(
            "/apps/{cid}/feeds",
            get(feeds::list).post(feeds::create_feed),
        )
        .route("/apps/{cid}/feeds/{fid}/topics", post(feeds::create_topic))
        .route(
            "/apps/{cid}/feeds/{fid}/delete",
            get(feeds::delete_feed_page).post(feeds::delete_feed),
        )
        .route(
            "/apps/{cid}/feeds/{fid}/topics/{tid}/delete",
            get(feeds::delete_topic_page).post(feeds::delete_topic),
        )
        // A subscriber's notifications.
        .route("/notifications", get(notifications::page))
        .route("/notifications/stream", get(notifications::stream))
        // The pages of a one-time link (no session).
        .route(
            "/invite/{token}",
            get(users::link_page).post(users::set_password),
        )
        .route(
            "/reset/{token}",
            get(users::link_page).post(users::set_password),
        )
}

/// `GET /`: a browser is sent to the console; any other client gets a problem that says
/// where the console and the APIs' descriptions are.
async fn root(headers: axum::http::HeaderMap) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        Redirect::to("/console/").into_response()
    } else {
        crate::problem::Problem::not_found(
            "This is a Portcullis server. People sign in to the console at /console/; the admin API is described at /admin/v1/openapi.json, OAuth 2.0 at /.well-known/oauth-authorization-server.",
        )
        .into_response()
    }
}

/// Middleware: the security headers of every console response.
async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    static_asset("text/javascript; charset=utf-8", JS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// What every console handler gets: the state, the console, the caller's session (if
/// any), whether the request came over TLS, and the client's address.
pub struct Ctx {
    pub state: AppState,
    console: Arc<Console>,
    /// The `pcsu_…` session token from the cookie.
    pub session: Option<String>,
    /// The sign-in nonce from its cookie.
    login_nonce: Option<String>,
    pub tls: bool,
    pub client: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let console = parts
            .extensions
            .get::<Arc<Console>>()
            .cloned()
            .expect("the console router adds its state");
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let (client, tls) = crate::request::client_facts(&state.gateway, peer, &parts.headers);
        let cookie = |name: &str| {
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_owned())
        };
        Ok(Self {
            state: state.clone(),
            session: cookie(SESSION_COOKIE).filter(|t| t.starts_with("pcsu_") && t.len() < 200),
            login_nonce: cookie(LOGIN_COOKIE).filter(|n| is_nonce(n)),
            console,
            tls,
            client,
        })
    }
}

/// A [`Ctx`] with a session. Without one, a GET is sent to the sign-in page and
/// anything else is refused with 401.
pub struct Signed(pub Ctx);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(ctx) = Ctx::from_request_parts(parts, state).await;
        if ctx.session.is_some() {
            return Ok(Signed(ctx));
        }
        if parts.method == Method::GET {
            Err(Redirect::to("/console/login").into_response())
        } else {
            Err(view::PageError::new(
                StatusCode::UNAUTHORIZED,
                "You are not signed in (or your session has ended). Sign in again.",
            )
            .into_response())
        }
    }
}

impl Ctx {
    /// The admin API as this caller.
    pub fn api(&self) -> Api {
        Api::new(
            self.console.admin.clone(),
            self.session.clone(),
            self.client,
        )
    }

    /// The admin API with another bearer token (a one-time link's, on the pages of a
    /// person who has no session yet).
    pub fn api_as(&self, token: &str) -> Api {
        Api::new(
            self.console.admin.clone(),
            Some(token.to_owned()),
            self.client,
        )
    }

    /// Wave's subscriber endpoints as this caller.
    pub fn wave(&self) -> Api {
        Api::new(self.console.wave.clone(), self.session.clone(), self.client)
    }

    fn derive(&self, purpose: &str, value: &str) -> Option<String> {
        let key = self.state.hash_key().ok()?;
        Some(
            key.hash_text(&format!("portcullis-console-{purpose}\0{value}"))
                .to_hex(),
        )
    }

    /// The CSRF token of this session's forms.
    pub fn csrf(&self) -> Option<String> {
        self.derive("csrf", self.session.as_deref()?)
    }

    /// The CSRF token of the sign-in form, for the nonce in its cookie.
    fn login_csrf(&self, nonce: &str) -> Option<String> {
        self.derive("login", nonce)
    }

    /// A form sent before there is a session (signing in, choosing a password): the
    /// answer `render` makes with the CSRF token of a fresh nonce, and that nonce in its
    /// cookie.
    fn pre_session_form(
        &self,
        render: impl FnOnce(&str) -> Response,
    ) -> Result<Response, view::PageError> {
        let nonce = fresh_nonce();
        let csrf = self.login_csrf(&nonce).ok_or_else(|| {
            view::PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is starting; try again.",
            )
        })?;
        let mut res = render(&csrf);
        res.headers_mut()
            .append(header::SET_COOKIE, self.cookie(LOGIN_COOKIE, &nonce, 3600));
        Ok(res)
    }

    /// Refuse (403) a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, form: &ConsoleForm) -> Result<(), view::PageError> {
        check_token(self.csrf(), form)
    }

    /// The cookie attributes: `Secure` only over TLS (a browser drops a `Secure` cookie
    /// set over plain HTTP, which would make local development impossible).
    pub fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("cookie values are ASCII")
    }

    /// Use a once-only form's nonce; refuse (409) one seen before.
    pub fn use_once(&self, form: &ConsoleForm) -> Result<(), view::PageError> {
        let nonce = form.one("once")?;
        if !is_nonce(nonce) {
            return Err(view::PageError::new(
                StatusCode::BAD_REQUEST,
                "The form's 'once' field is malformed; reload the page and try again.",
            ));
        }
        if self.console.use_nonce(nonce, self.state.now()) {
            Ok(())
        } else {
            Err(view::PageError::new(
                StatusCode::CONFLICT,
                "This form was already sent (the page was reloaded or the button pressed twice). What it created was shown once and cannot be shown again; go back to the application to make another.",
            ))
        }
    }
}

fn check_token(expected: Option<String>, form: &ConsoleForm) -> Result<(), view::PageError> {
    let refused = || {
        view::PageError::new(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or wrong (the page may be old, or you signed in again elsewhere). Reload the page and try again.",
        )
    };
    let given = form.one("csrf").map_err(|_| refused())?;
    match expected {
        Some(e)
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                e.as_bytes(),
                given.as_bytes(),
            )
            .is_ok() =>
        {
            Ok(())
        }
        _ => Err(refused()),
    }
}

/// 128 random bits as 32 hex digits.
pub fn fresh_nonce() -> String {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator works");
    hex::encode(b)
}

/// A request path as logs may show it: the token of a one-time link
/// (`/console/invite/<token>`, `/console/reset/<token>`) cut off.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in ["/console/invite/", "/console/reset/"] {
        if path.starts_with(prefix) && path.len() > prefix.len() {
            return format!("{prefix}…").into();
        }
    }
    path.into()
}

fn is_nonce(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
