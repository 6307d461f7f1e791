//! The console's pages. Each handler asks the admin API (as the signed-in user) and
//! renders the answer; a refusal is shown with the admin API's own `detail`.

use super::api::seg;
use super::view::{Frame, PageError, alert, copy_field, notice, post_form, respond, time, words};
use super::{ConsoleForm, Ctx, LOGIN_COOKIE, SESSION_COOKIE, Signed, fresh_nonce};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value, json};

pub(super) type Page = Result<Response, PageError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/orgs", get(orgs))
        .route("/orgs/switch", get(switch_org))
        .route("/orgs/{org}", get(org_apps))
        .route("/orgs/{org}/apps/new", get(new_app))
        .route("/orgs/{org}/apps", axum::routing::post(create_app))
        .route("/orgs/{org}/resources", get(resources))
        .route("/orgs/{org}/groups", get(groups))
        .route("/apps/{cid}", get(app_detail))
        .route("/apps/{cid}/secrets", axum::routing::post(add_secret))
        .route("/apps/{cid}/token", axum::routing::post(generate_token))
        .route("/apps/{cid}/revoke", get(revoke_page).post(revoke))
        .route("/apps/{cid}/delete", get(delete_app_page).post(delete_app))
        .route(
            "/apps/{cid}/secrets/{sid}/delete",
            get(delete_secret_page).post(delete_secret),
        )
        .merge(super::credentials::routes())
        .merge(super::edit::routes())
        .merge(super::notifications::routes())
        .merge(super::users::routes())
        .merge(super::audit::routes())
        .merge(super::manage::routes())
        .merge(super::overview::routes())
        .merge(super::feeds::routes())
        .merge(super::orgs::routes())
}

pub(super) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

pub(super) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

pub(super) fn items(v: &Value) -> &[Value] {
    v["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Where a person lands: their organizations, or, when they manage none (a subscriber),
/// their notifications. A platform administrator always lands on the organizations, where
/// they create them.
pub(super) async fn home(ctx: Ctx) -> Response {
    if ctx.session.is_none() {
        return see_other("/console/login");
    }
    match ctx.api().get("/admin/v1/orgs?limit=1").await {
        Ok(list)
            if items(&list).is_empty()
                && !super::orgs::is_platform_admin(&super::orgs::me(&ctx).await) =>
        {
            see_other("/console/notifications")
        }
        _ => see_other("/console/orgs"),
    }
}

// ---- sign-in ----------------------------------------------------------------------

fn login_form(csrf: &str, email: &str, error: Option<&str>) -> Markup {
    Frame::new("Sign in", None).render(html! {
        @if let Some(e) = error { (alert(e)) }
        p { "Sign in with the email and password an administrator of your organization gave you." }
        form.stack method="post" action="/console/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button.primary type="submit" { "Sign in" }
        }
    })
}

/// The sign-in form, with a fresh pre-session nonce in its cookie.
fn render_login(ctx: &Ctx, status: StatusCode, email: &str, error: Option<&str>) -> Page {
    let nonce = fresh_nonce();
    let csrf = ctx.login_csrf(&nonce).ok_or_else(|| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is starting; try again.",
        )
    })?;
    let mut res = respond(status, login_form(&csrf, email, error));
    res.headers_mut()
        .append(header::SET_COOKIE, ctx.cookie(LOGIN_COOKIE, &nonce, 3600));
    Ok(res)
}

async fn login_page(ctx: Ctx) -> Page {
    render_login(&ctx, StatusCode::OK, "", None)
}

async fn login(ctx: Ctx, form: ConsoleForm) -> Page {
    let expected = ctx.login_nonce.as_deref().and_then(|n| ctx.login_csrf(n));
    super::check_token(expected, &form)?;
    form.only(&["email", "password"])?;
    let (email, password) = (form.one("email")?, form.one("password")?);
    let now = ctx.state.now();
    if let Some(ip) = ctx.client
        && let Some(retry) = ctx.state.password_failures.blocked(ip, None, now)
    {
        let mut res = PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-ins from your address; try again in {retry} s."),
        )
        .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(res);
    }
    // The per-account lockout (the admin API refuses too; answered here with Retry-After).
    if let Ok(account) = crate::admin::users::normalise_email(email)
        && let Some(retry) = ctx.state.logins.blocked(&account, now)
    {
        let mut res = PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords for this account; try again in {retry} s."),
        )
        .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(res);
    }
    let answer = ctx
        .api()
        .post(
            "/admin/v1/sessions",
            Some(json!({"email": email, "password": password})),
        )
        .await;
    match answer {
        Ok(session) => {
            let token = s(&session, "token");
            let max_age = session["expires_at"].as_i64().unwrap_or(now) - now;
            let mut res = see_other("/console/");
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                ctx.cookie(SESSION_COOKIE, token, max_age),
            );
            h.append(header::SET_COOKIE, ctx.cookie(LOGIN_COOKIE, "", 0));
            Ok(res)
        }
        Err(e) => {
            // The admin API counted the failure against the address and the account.
            let status = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::BAD_GATEWAY
            };
            render_login(&ctx, status, email, Some(&e.detail))
        }
    }
}

async fn logout(Signed(ctx): Signed, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    // The session may already have ended; signing out still clears the cookie.
    let _ = ctx.api().delete("/admin/v1/sessions/current").await;
    let mut res = see_other("/console/login");
    res.headers_mut()
        .append(header::SET_COOKIE, ctx.cookie(SESSION_COOKIE, "", 0));
    Ok(res)
}

// ---- organizations ------------------------------------------------------------------

async fn orgs(Signed(ctx): Signed) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let list = ctx.api().get("/admin/v1/orgs?limit=100").await?;
    let orgs = items(&list);
    let me = super::orgs::me(&ctx).await;
    let platform = super::orgs::is_platform_admin(&me);
    // A platform administrator sees every organization, but its pages only where they
    // hold a role; elsewhere the name leads to the organization's settings.
    let member = |o: &Value| me["roles"].get(s(o, "id")).is_some();
    let page = Frame::new("Your organizations", Some(&csrf)).render(html! {
        @if platform {
            p.actions { a.button.primary href="/console/orgs/new" { "New organization" } }
        } @else {
            p.muted { "New organizations are made by a platform administrator, or by the platform operator on the server: "
                code { "portcullis admin create --email <admin's email> --org <name>" } "." }
        }
        @if orgs.is_empty() && platform {
            div.empty {
                p { "No organizations yet. " a href="/console/orgs/new" { "Create the first one" } "." }
            }
        } @else if orgs.is_empty() {
            div.empty {
                p { "You are not a developer or administrator of any organization yet." }
                p { "Ask an administrator of your organization to give your account the "
                    code { "developer" } " or " code { "admin" } " role, then reload this page. "
                    "Notifications you subscribed to are under " a href="/console/notifications" { "Notifications" } "." }
            }
        } @else {
            ul.cards {
                @for o in orgs {
                    li.card {
                        @if member(o) || !platform {
                            h2 { a href={"/console/orgs/" (seg(s(o, "id")))} { (s(o, "name")) } }
                        } @else {
                            h2 { a href={"/console/orgs/" (seg(s(o, "id"))) "/edit"} { (s(o, "name")) } }
                        }
                        p.muted { code { (s(o, "id")) } " · " (s(o, "status")) }
                        p { "Products: " (words(&strings(&o["products"]))) }
                        p { "Sandboxes: " (words(&strings(&o["sandboxes"]))) }
                        @if platform {
                            p { a href={"/console/orgs/" (seg(s(o, "id"))) "/edit"} aria-label={"Edit organization " (s(o, "name"))} { "Edit organization" } }
                        }
                    }
                }
            }
        }
    });
    Ok(respond(StatusCode::OK, page))
}

/// The organization's tabs, with a switcher to the caller's other organizations (when
/// there are any): a plain GET form, so it works without JavaScript.
pub(super) async fn org_nav(ctx: &Ctx, org: &str, current: &str) -> Markup {
    let orgs = ctx
        .api()
        .get("/admin/v1/orgs?limit=100")
        .await
        .map(|v| items(&v).to_vec())
        .unwrap_or_default();
    html! {
        @if orgs.len() > 1 {
            form.switch method="get" action="/console/orgs/switch" {
                label for="org-switch" { "Organization" }
                select #org-switch name="org" {
                    @for o in &orgs {
                        option value=(s(o, "id")) selected[s(o, "id") == org] { (s(o, "name")) }
                    }
                }
                button type="submit" { "Switch" }
            }
        }
        (org_tabs(org, current))
    }
}

/// `GET /console/orgs/switch?org=…`: the switcher's answer, the org's overview.
async fn switch_org(
    Signed(_ctx): Signed,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Page {
    match q.get("org") {
        Some(org) if !org.is_empty() => {
            Ok(see_other(&format!("/console/orgs/{}/overview", seg(org))))
        }
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Choose an organization.",
        )),
    }
}

pub(super) fn org_tabs(org: &str, current: &str) -> Markup {
    let tabs = [
        ("/overview", "Overview"),
        ("", "Applications"),
        ("/resources", "Resources"),
        ("/groups", "Permission groups"),
        ("/users", "Users"),
        ("/audit", "Audit log"),
    ];
    html! {
        nav.tabs aria-label="Organization" {
            @for (path, label) in tabs {
                @if path == current {
                    a aria-current="page" href={"/console/orgs/" (seg(org)) (path)} { (label) }
                } @else {
                    a href={"/console/orgs/" (seg(org)) (path)} { (label) }
                }
            }
        }
    }
}

pub(super) async fn load_org(ctx: &Ctx, org: &str) -> Result<Value, PageError> {
    ctx.api()
        .get(&format!("/admin/v1/orgs/{}", seg(org)))
        .await
        .map_err(|e| PageError::from(e).back("/console/orgs", "Your organizations"))
}

async fn org_apps(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    let list = ctx
        .api()
        .get(&format!("/admin/v1/apps?org={}&limit=100", seg(&org)))
        .await?;
    let apps = items(&list);
    let new = format!("/console/orgs/{}/apps/new", seg(&org));
    let page = Frame::new(s(&o, "name"), Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            (org_nav(&ctx, &org, "").await)
            p.actions { a.button.primary href=(new) { "Create application" } }
            @if apps.is_empty() {
                div.empty {
                    p { "No applications yet." }
                    p { "An application is what calls your APIs: it gets a client id (its API key) and client secrets to obtain access tokens. "
                        a href=(new) { "Create the first one" } "." }
                }
            } @else {
                div.scroll {
                    table {
                        caption.sr { "Applications" }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Client id" } th scope="col" { "Status" } th scope="col" { "Scopes" } } }
                        tbody {
                            @for a in apps {
                                tr {
                                    td { a href={"/console/apps/" (seg(s(a, "client_id")))} { (s(a, "name")) } }
                                    td { code.id { (s(a, "client_id")) } }
                                    td { (s(a, "status")) }
                                    td { (words(&strings(&a["effective_scopes"]))) }
                                }
                            }
                        }
                    }
                }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

fn app_form(org: &Value, csrf: &str, name: &str, scopes: &str, error: Option<&str>) -> Markup {
    let org_id = s(org, "id");
    Frame::new("Create application", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(format!("/console/orgs/{}", seg(org_id)), s(org, "name"))
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            (post_form(&format!("/console/orgs/{}/apps", seg(org_id)), csrf, None, html! {
                div.stack {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(name) required maxlength="200" aria-describedby="name-help";
                    small #name-help { "For people: shown in the console and logs." }
                    label for="scopes" { "Scopes" }
                    input #scopes type="text" name="scopes" value=(scopes) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                    small #scopes-help { "Space-separated, like " code { "read write" } ". Tokens of this app carry these." }
                    (super::edit::choice_fields(org, None))
                    button.primary type="submit" { "Create application" }
                }
            }))
        })
}

async fn new_app(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    Ok(respond(StatusCode::OK, app_form(&o, &csrf, "", "", None)))
}

async fn create_app(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let name = form.one("name")?;
    let scopes = form.opt("scopes")?.unwrap_or("");
    let (mut allowed, products, sandboxes) = super::edit::read_choices(&form)?;
    allowed.extend(["name".to_owned(), "scopes".to_owned()]);
    form.only(&allowed.iter().map(String::as_str).collect::<Vec<_>>())?;
    let body = json!({
        "org_id": org,
        "name": name,
        "scopes": scopes.split_whitespace().collect::<Vec<_>>(),
        "products": products,
        "sandboxes": sandboxes,
    });
    match ctx.api().post("/admin/v1/apps", Some(body)).await {
        Ok(app) => Ok(see_other(&format!(
            "/console/apps/{}",
            seg(s(&app, "client_id"))
        ))),
        Err(e) => {
            let o = load_org(&ctx, &org).await?;
            Ok(respond(
                e.status,
                app_form(&o, &csrf, name, scopes, Some(&e.detail)),
            ))
        }
    }
}

/// An org and one of its listings (`resources`, `groups`): the CSRF token, the org, the page.
async fn org_listing(
    ctx: &Ctx,
    org: &str,
    what: &str,
) -> Result<(String, Value, Value), PageError> {
    let o = load_org(ctx, org).await?;
    let list = ctx
        .api()
        .get(&format!("/admin/v1/orgs/{}/{what}?limit=100", seg(org)))
        .await?;
    Ok((ctx.csrf().unwrap_or_default(), o, list))
}

async fn resources(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let (csrf, o, list) = org_listing(&ctx, &org, "resources").await?;
    let rs = items(&list);
    let page = Frame::new(&format!("Resources of {}", s(&o, "name")), Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(format!("/console/orgs/{}", seg(&org)), s(&o, "name"))
        .render(html! {
            (org_nav(&ctx, &org, "/resources").await)
            p { "Resources are what the gateway protects: your proxy asks "
                code { "/gateway/v1/check?resource=<id>" } " before letting a request through." }
            p.actions {
                a.button.primary href={"/console/orgs/" (seg(&org)) "/resources/new"} { "Create resource" }
                a.button href={"/console/orgs/" (seg(&org)) "/protect"} { "Protect an API" }
            }
            @if rs.is_empty() {
                div.empty {
                    p { "No resources yet." }
                    p { "Create one for each API you put behind your proxy, or let "
                        a href={"/console/orgs/" (seg(&org)) "/protect"} { "Protect an API" }
                        " walk you through a resource, an application with access to it and a working "
                        code { "curl" } "." }
                }
            } @else {
                div.scroll { table {
                    caption.sr { "Resources" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Authentication" } th scope="col" { "Sandbox" } th scope="col" { "Product" } th scope="col" { "Scopes" } th scope="col" { "Actions" } } }
                    tbody { @for r in rs { tr {
                        td { (s(r, "name")) }
                        td { code.id { (s(r, "id")) } }
                        td { @if r["allow_unauthenticated"].as_bool() == Some(true) { "open" } @else { "credentials required" } }
                        td { (s(r, "sandbox")) }
                        td { @if let Some(p) = r["product"].as_str() { (p) } @else { span.muted { "any" } } }
                        td { (words(&strings(&r["scopes"]))) }
                        td.actions-cell { (super::manage::resource_actions(&org, r)) }
                    } } }
                } }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

async fn groups(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let (csrf, o, list) = org_listing(&ctx, &org, "groups").await?;
    let gs = items(&list);
    let page = Frame::new(&format!("Permission groups of {}", s(&o, "name")), Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(format!("/console/orgs/{}", seg(&org)), s(&o, "name"))
        .render(html! {
            (org_nav(&ctx, &org, "/groups").await)
            p { "An application in a permission group takes its scopes from the group." }
            p.actions { a.button.primary href={"/console/orgs/" (seg(&org)) "/groups/new"} { "Create permission group" } }
            @if gs.is_empty() {
                div.empty {
                    p { "No permission groups yet; applications use their own scopes." }
                    p { "Create a group when several applications should share one set of scopes, then choose it in each application's "
                        strong { "Edit application" } " form." }
                }
            } @else {
                div.scroll { table {
                    caption.sr { "Permission groups" }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Scopes" } th scope="col" { "Actions" } } }
                    tbody { @for g in gs { tr {
                        td { (s(g, "name")) } td { code.id { (s(g, "id")) } } td { (words(&strings(&g["scopes"]))) }
                        td.actions-cell { (super::manage::group_actions(&org, g)) }
                    } } }
                } }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

// ---- applications -------------------------------------------------------------------

pub(super) fn app_path(cid: &str) -> String {
    format!("/admin/v1/apps/{}", seg(cid))
}

pub(super) fn app_page(cid: &str) -> String {
    format!("/console/apps/{}", seg(cid))
}

pub(super) async fn load_app(ctx: &Ctx, cid: &str) -> Result<Value, PageError> {
    Ok(ctx.api().get(&app_path(cid)).await?)
}

/// The org of an app, for breadcrumbs (its name; the id when it cannot be read).
pub(super) async fn org_crumb(ctx: &Ctx, app: &Value) -> (String, String) {
    let org = s(app, "org_id");
    let name = ctx
        .api()
        .get(&format!("/admin/v1/orgs/{}", seg(org)))
        .await
        .ok()
        .map(|o| s(&o, "name").to_owned())
        .unwrap_or_else(|| org.to_owned());
    (format!("/console/orgs/{}", seg(org)), name)
}

async fn app_detail(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let secrets = ctx
        .api()
        .get(&format!("{}/secrets", app_path(&cid)))
        .await?;
    let secrets = items(&secrets);
    let (org_href, org_name) = org_crumb(&ctx, &app).await;
    let keys = super::credentials::section(&ctx, &cid, &csrf).await?;
    let here = app_page(&cid);
    let sandboxes: Vec<String> = app["sandboxes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let page = Frame::new(s(&app, "name"), Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(org_href, org_name)
        .render(html! {
            section aria-labelledby="creds" {
                h2 #creds { "Credentials" }
                (copy_field("client-id", "Client id (API key)", s(&app, "client_id")))
                (copy_field("tech-account", "Technical account id", s(&app, "technical_account_id")))
                div.actions {
                    (post_form(&format!("{here}/token"), &csrf, Some(&fresh_nonce()), html! {
                        button.primary type="submit" { "Generate access token" }
                    }))
                    (post_form(&format!("{here}/secrets"), &csrf, Some(&fresh_nonce()), html! {
                        button type="submit" { "Add client secret" }
                    }))
                    a.button href={(here) "/revoke"} { "Revoke a token" }
                }
            }
            (keys)
            section aria-labelledby="details" {
                h2 #details { "Details" }
                p.actions { a.button href={(here) "/edit"} { "Edit application" } a.button href={(here) "/feeds"} { "Wave feeds" } }
                dl.facts {
                    dt { "Status" } dd { (s(&app, "status")) }
                    dt { "Scopes" } dd { (words(&strings(&app["effective_scopes"]))) }
                    dt { "Products" } dd { (words(&strings(&app["products"]))) }
                    dt { "Sandboxes" } dd { (words(&sandboxes)) }
                    dt { "Token lifetime" } dd { @if let Some(t) = app["token_ttl_seconds"].as_u64() { (t) " s" } @else { "the default (1 hour)" } }
                    dt { "Created" } dd { (time(app["created_at"].as_i64().unwrap_or(0))) }
                }
            }
            section aria-labelledby="secrets" {
                h2 #secrets { "Client secrets" }
                @if secrets.is_empty() {
                    div.empty { p { "No client secrets. Add one to obtain tokens with "
                        code { "client_credentials" } " from " code { "/oauth/token" } "." } }
                } @else {
                    div.scroll { table {
                        caption.sr { "Client secrets" }
                        thead { tr { th scope="col" { "Starts with" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { span.sr { "Actions" } } } }
                        tbody { @for sec in secrets { tr {
                            td { code { (s(sec, "prefix")) "…" } }
                            td { (time(sec["created_at"].as_i64().unwrap_or(0))) }
                            td { @if let Some(t) = sec["last_used_at"].as_i64() { (time(t)) } @else { span.muted { "never" } } }
                            td { @if let Some(t) = sec["expires_at"].as_i64() { (time(t)) } @else { span.muted { "never" } } }
                            td { a href={(here) "/secrets/" (seg(s(sec, "id"))) "/delete"} { "Delete" span.sr { " secret " (s(sec, "prefix")) } } }
                        } } }
                    } }
                }
            }
            section.danger aria-labelledby="danger" {
                h2 #danger { "Danger zone" }
                p { "Deleting the application ends all of its tokens at once." }
                a.button.danger href={(here) "/delete"} { "Delete application" }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

/// A page that shows something once: never cached, never stored.
pub(super) fn once_page(page: Markup) -> Response {
    let mut res = respond(StatusCode::CREATED, page);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

pub(super) fn download(name: &str, value: &str) -> Markup {
    let href = format!(
        "data:text/plain;charset=utf-8,{}",
        seg(value).replace('+', "%20")
    );
    html! { a.button href=(href) download=(name) { "Download" } }
}

/// A once-only button's POST (its CSRF token and fields already checked): use its nonce,
/// then `POST /admin/v1/apps/{cid}/{what}` with `body`; the answer, the CSRF token and
/// the app's page.
pub(super) async fn create_once(
    ctx: &Ctx,
    cid: &str,
    form: &ConsoleForm,
    what: &str,
    body: Option<Value>,
) -> Result<(Value, String, String), PageError> {
    let here = app_page(cid);
    ctx.use_once(form)
        .map_err(|e| e.back(&here, "Back to the application"))?;
    let created = ctx
        .api()
        .post(&format!("{}/{what}", app_path(cid)), body)
        .await
        .map_err(|e| PageError::from(e).back(&here, "Back to the application"))?;
    Ok((created, ctx.csrf().unwrap_or_default(), here))
}

async fn add_secret(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let (created, csrf, here) = create_once(&ctx, &cid, &form, "secrets", None).await?;
    let secret = s(&created, "secret");
    let page = Frame::new("Your new client secret", Some(&csrf))
        .crumb(here.clone(), "Application")
        .render(html! {
            (notice("Copy the secret now: this is the only time it is shown. Portcullis keeps only a keyed hash of it."))
            (copy_field("client-id", "Client id", s(&created, "client_id")))
            (copy_field("secret", "Client secret", secret))
            p.actions {
                (download(&format!("portcullis-secret-{}.txt", s(&created, "client_id")), secret))
                a.button.primary href=(here) { "Done, back to the application" }
            }
        });
    Ok(once_page(page))
}

async fn generate_token(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let (issued, csrf, here) = create_once(&ctx, &cid, &form, "tokens", None).await?;
    let token = s(&issued, "access_token");
    let page = Frame::new("Access token", Some(&csrf))
        .crumb(here.clone(), "Application")
        .render(html! {
            (notice("This token is shown once. Send it as 'Authorization: Bearer <token>' with the client id as x-api-key."))
            (copy_field("token", "Access token", token))
            dl.facts {
                dt { "Expires" } dd #expires { (time(issued["expires_at"].as_i64().unwrap_or(0))) " (in " (issued["expires_in"].as_i64().unwrap_or(0)) " s)" }
                dt { "Scopes" } dd { (words(&issued["scope"].as_str().unwrap_or("").split_whitespace().map(str::to_owned).collect::<Vec<_>>())) }
            }
            p.actions {
                (download("portcullis-access-token.txt", token))
                a.button href={(here) "/revoke"} { "Revoke a token" }
                a.button.primary href=(here) { "Back to the application" }
            }
        });
    Ok(once_page(page))
}

fn revoke_form(app: &Value, csrf: &str, result: Option<Markup>) -> Markup {
    let cid = s(app, "client_id");
    Frame::new("Revoke a token", Some(csrf))
        .crumb(app_page(cid), s(app, "name"))
        .render(html! {
            @if let Some(r) = result { (r) }
            p { "Paste an access token of " strong { (s(app, "name")) } ". Once revoked, it is refused everywhere (token introspection and the gateway) from the next request on." }
            (post_form(&format!("{}/revoke", app_page(cid)), csrf, None, html! {
                div.stack {
                    label for="token" { "Access token" }
                    textarea #token name="token" rows="4" required autocapitalize="none" spellcheck="false" {}
                    button.danger type="submit" { "Revoke token" }
                }
            }))
            p { a href=(app_page(cid)) { "Back to the application" } }
        })
}

async fn revoke_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    Ok(respond(StatusCode::OK, revoke_form(&app, &csrf, None)))
}

async fn revoke(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["token"])?;
    let token = form.one("token")?;
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let answer = ctx
        .api()
        .post(
            &format!("{}/revoke", app_path(&cid)),
            Some(json!({"token": token})),
        )
        .await;
    let (status, result) = match answer {
        Ok(r) if r["revoked"].as_bool() == Some(true) => (
            StatusCode::OK,
            notice("The token was revoked. The gateway and introspection refuse it from now on."),
        ),
        Ok(_) => (
            StatusCode::OK,
            notice(
                "That is not a valid token of this server (malformed, expired, or signed by a retired key): there was nothing to revoke.",
            ),
        ),
        Err(e) => (e.status, alert(&e.detail)),
    };
    Ok(respond(status, revoke_form(&app, &csrf, Some(result))))
}

/// A deletion's confirmation step: what will happen, the button, and a way back.
pub(super) struct Confirm<'a> {
    pub csrf: &'a str,
    pub title: &'a str,
    /// The app's page and its label, for the breadcrumb and "Cancel".
    pub back: (String, &'a str),
    pub text: Markup,
    pub action: String,
    pub button: &'a str,
}

pub(super) fn confirm(c: Confirm<'_>) -> Response {
    let (here, label) = c.back;
    let page = Frame::new(c.title, Some(c.csrf))
        .crumb(here.clone(), label)
        .render(html! {
            p { (c.text) }
            (post_form(&c.action, c.csrf, None, html! {
                p.actions {
                    button.danger type="submit" { (c.button) }
                    a href=(here) { "Cancel" }
                }
            }))
        });
    respond(StatusCode::OK, page)
}

async fn delete_app_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let here = app_page(&cid);
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete application?",
        action: format!("{here}/delete"),
        back: (here, s(&app, "name")),
        text: html! { "Delete " strong { (s(&app, "name")) } " (" code { (s(&app, "client_id")) } ")? Its secrets and every token it holds stop working at once. This cannot be undone." },
        button: "Delete application",
    }))
}

async fn delete_app(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let app = load_app(&ctx, &cid).await?;
    ctx.api()
        .delete(&app_path(&cid))
        .await
        .map_err(|e| PageError::from(e).back(app_page(&cid), "Back to the application"))?;
    Ok(see_other(&format!(
        "/console/orgs/{}",
        seg(s(&app, "org_id"))
    )))
}

fn secret_path(cid: &str, sid: &str) -> String {
    format!("{}/secrets/{}", app_path(cid), seg(sid))
}

async fn delete_secret_page(Signed(ctx): Signed, Path((cid, sid)): Path<(String, String)>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let secret = ctx.api().get(&secret_path(&cid, &sid)).await?;
    let here = app_page(&cid);
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete client secret?",
        action: format!("{here}/secrets/{}/delete", seg(&sid)),
        back: (here, "Application"),
        text: html! { "Delete the secret starting " code { (s(&secret, "prefix")) "…" } "? Clients using it are refused from the next request, and the tokens obtained with it stop working." },
        button: "Delete secret",
    }))
}

async fn delete_secret(
    Signed(ctx): Signed,
    Path((cid, sid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&secret_path(&cid, &sid))
        .await
        .map_err(|e| PageError::from(e).back(app_page(&cid), "Back to the application"))?;
    Ok(see_other(&app_page(&cid)))
}
