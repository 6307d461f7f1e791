//! An organization at a glance (`/console/orgs/{org}/overview`): how many apps,
//! resources, groups and members it has, the gateway's recent refusals with their codes,
//! and what needs attention (apps without a credential, suspended apps, certificates
//! about to expire). And the guided **Protect an API** flow: a resource, an app with
//! exactly the access it needs, a client secret shown once, and a `curl` that passes the
//! gateway check. Everything is read and written through the admin API as the user.

use super::api::seg;
use super::pages::{Page, app_page, items, load_org, once_page, s, strings};
use super::view::{Frame, alert, copy_field, notice, post_form, respond, time};
use super::{ConsoleForm, Ctx, Signed, fresh_nonce};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/overview", get(overview))
        .route("/orgs/{org}/protect", get(protect_page).post(protect))
}

/// How long before a certificate's end it is worth a warning.
const EXPIRY_WARNING: i64 = 30 * 24 * 3600;

/// The first page (100) of a listing, or nothing when the admin API refuses it.
async fn listing(ctx: &Ctx, path: &str) -> Option<Value> {
    ctx.api().get(path).await.ok()
}

/// The entries of an audit page.
fn entries(v: &Value) -> &[Value] {
    v["entries"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn count(v: &Option<Value>) -> String {
    match v {
        Some(v) if v["next"].is_string() => format!("{}+", items(v).len()),
        Some(v) => items(v).len().to_string(),
        None => "–".to_owned(),
    }
}

async fn overview(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    let o_seg = seg(&org);
    let apps = listing(&ctx, &format!("/admin/v1/apps?org={o_seg}&limit=100")).await;
    let resources = listing(&ctx, &format!("/admin/v1/orgs/{o_seg}/resources?limit=100")).await;
    let groups = listing(&ctx, &format!("/admin/v1/orgs/{o_seg}/groups?limit=100")).await;
    // Users are listed across orgs: count those with a role in this one.
    let members = listing(&ctx, "/admin/v1/users?limit=1000").await.map(|v| {
        let n = items(&v)
            .iter()
            .filter(|u| u["roles"].get(&org).is_some())
            .count();
        json!({"items": vec![Value::Null; n]})
    });
    // Only the org's admins read the audit trail; others see no failures section.
    let failures = listing(
        &ctx,
        &format!("/admin/v1/audit?org={o_seg}&action=auth.failed&order=desc&limit=10"),
    )
    .await;

    let now = ctx.state.now();
    let mut attention: Vec<Markup> = Vec::new();
    if s(&o, "status") != "active" {
        attention.push(html! { "The organization is " strong { (s(&o, "status")) } ": every token of its applications is refused." });
    }
    let app_list = apps.as_ref().map(items).unwrap_or(&[]);
    for a in app_list {
        let cid = s(a, "client_id");
        let link = html! { a href=(app_page(cid)) { (s(a, "name")) } };
        if s(a, "status") == "suspended" {
            attention.push(html! { (link) " is suspended: its tokens are refused." });
        }
        let path = format!("/admin/v1/apps/{}", seg(cid));
        let secrets = listing(&ctx, &format!("{path}/secrets")).await;
        let certs = listing(&ctx, &format!("{path}/certificates")).await;
        let keypairs = listing(&ctx, &format!("{path}/keypairs")).await;
        let none = |v: &Option<Value>| v.as_ref().is_some_and(|v| items(v).is_empty());
        if none(&secrets) && none(&certs) && none(&keypairs) {
            attention.push(html! { (link) " has no client secret, certificate or key pair yet: it cannot get a token." });
        }
        for c in certs.as_ref().map(items).unwrap_or(&[]) {
            let end = c["not_after"].as_i64().unwrap_or(i64::MAX);
            if end <= now {
                attention.push(html! { "A certificate of " (link) " expired on " (time(end)) "." });
            } else if end - now < EXPIRY_WARNING {
                attention.push(html! { "A certificate of " (link) " expires on " (time(end)) "." });
            }
        }
    }
    if app_list.is_empty() {
        attention.push(html! { "No applications yet: " a href={"/console/orgs/" (o_seg) "/apps/new"} { "create one" } "." });
    }
    if resources.as_ref().is_some_and(|r| items(r).is_empty()) {
        attention.push(html! { "No resources yet: " a href={"/console/orgs/" (o_seg) "/protect"} { "protect an API" } "." });
    }

    // Refusals name the client they claimed to be: show the app's name when it is one.
    let app_names: std::collections::HashMap<String, &str> = app_list
        .iter()
        .map(|a| (format!("client:{}", s(a, "client_id")), s(a, "name")))
        .collect();
    let stats = [
        (
            "Applications",
            count(&apps),
            format!("/console/orgs/{o_seg}"),
        ),
        (
            "Resources",
            count(&resources),
            format!("/console/orgs/{o_seg}/resources"),
        ),
        (
            "Permission groups",
            count(&groups),
            format!("/console/orgs/{o_seg}/groups"),
        ),
        (
            "Members",
            count(&members),
            format!("/console/orgs/{o_seg}/users"),
        ),
    ];
    let nav = super::pages::org_nav(&ctx, &org, "/overview").await;
    let page = Frame::new(s(&o, "name"), Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            (nav)
            ul.stats aria-label="At a glance" {
                @for (label, n, href) in &stats {
                    li { a href=(href) { span.n { (n) } span.l { (label) } } }
                }
            }
            p.muted { "Products: " (strings(&o["products"]).join(", ")) " · Sandboxes: " (strings(&o["sandboxes"]).join(", ")) " · Id " code { (s(&o, "id")) } }
            h2 { "Needs attention" }
            @if attention.is_empty() {
                p #attention { "Nothing: every application has a credential, none is suspended, no certificate expires within 30 days." }
            } @else {
                ul #attention { @for a in &attention { li { (a) } } }
            }
            @if let Some(f) = &failures {
                h2 { "Recent refusals at the gateway" }
                @if entries(f).is_empty() {
                    p.muted { "None recorded." }
                } @else {
                    div.scroll { table #failures {
                        caption.sr { "Recent failed authentications" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "Code" } th scope="col" { "Where" } th scope="col" { "Caller" } th scope="col" { "Address" } } }
                        tbody { @for e in entries(f) { tr {
                            td.nowrap { (time(e["at"].as_i64().unwrap_or(0))) }
                            td { code { (e["details"]["code"].as_str().unwrap_or("–")) } }
                            td { (e["details"]["surface"].as_str().unwrap_or("–")) }
                            td {
                                @let actor = s(e, "actor");
                                @if let Some(name) = app_names.get(actor) {
                                    span.who { "app " (name) } br; code.id.small { (actor) }
                                } @else {
                                    code.id { (actor) }
                                }
                            }
                            td { (e["address"].as_str().unwrap_or("–")) }
                        } } }
                    } }
                    p { a href={"/console/orgs/" (o_seg) "/audit?action=auth.failed"} { "All of them in the audit log" } }
                }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

// ---- Protect an API -------------------------------------------------------------------

fn protect_form(org: &Value, csrf: &str, typed: &Value, error: Option<&str>) -> Markup {
    let org_id = s(org, "id");
    let sandbox = s(typed, "sandbox");
    let product = s(typed, "product");
    Frame::new("Protect an API", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(format!("/console/orgs/{}", seg(org_id)), s(org, "name"))
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            ol.steps {
                li aria-current="step" { "Describe the API" }
                li { "Portcullis makes a resource and an application with exactly this access" }
                li { "Copy the credentials and a " code { "curl" } " that passes the check" }
            }
            (post_form(&format!("/console/orgs/{}/protect", seg(org_id)), csrf, Some(&fresh_nonce()), html! {
                div.stack {
                    label for="api" { "API name" }
                    input #api type="text" name="api" value=(s(typed, "api")) required maxlength="200" placeholder="Orders API";
                    label for="sandbox" { "Sandbox" }
                    select #sandbox name="sandbox" {
                        @for sb in strings(&org["sandboxes"]) { option value=(sb) selected[sb == sandbox] { (sb) } }
                    }
                    label for="product" { "Product" }
                    select #product name="product" {
                        option value="" selected[product.is_empty()] { "none" }
                        @for p in strings(&org["products"]) { option value=(p) selected[p == product] { (p) } }
                    }
                    label for="scope" { "Scope a caller needs" }
                    input #scope type="text" name="scope" value=(s(typed, "scope")) placeholder="orders.read" autocapitalize="none" spellcheck="false" aria-describedby="scope-help";
                    small #scope-help { "One word, or leave empty for none." }
                    label for="app" { "Application that may call it" }
                    input #app type="text" name="app" value=(s(typed, "app")) required maxlength="200" placeholder="Partner dashboard";
                    fieldset {
                        legend { "Its access to the sandbox" }
                        label.check { input type="radio" name="access" value="read" checked[s(typed, "access") != "write"]; " Read (GET, HEAD, OPTIONS)" }
                        label.check { input type="radio" name="access" value="write" checked[s(typed, "access") == "write"]; " Read and write" }
                    }
                    button.primary type="submit" { "Create and show the curl" }
                }
            }))
        })
}

async fn protect_page(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    let prod = strings(&o["sandboxes"]).iter().any(|s| s == "prod");
    let typed = json!({"sandbox": if prod { "prod" } else { "" }});
    Ok(respond(
        StatusCode::OK,
        protect_form(&o, &csrf, &typed, None),
    ))
}

async fn protect(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[
        "once", "api", "sandbox", "product", "scope", "app", "access",
    ])?;
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    let field = |name: &str| {
        form.opt(name)
            .ok()
            .flatten()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let typed = json!({
        "api": field("api"), "sandbox": field("sandbox"), "product": field("product"),
        "scope": field("scope"), "app": field("app"), "access": field("access"),
    });
    let refused = |detail: &str| {
        Ok(respond(
            StatusCode::BAD_REQUEST,
            protect_form(&o, &csrf, &typed, Some(detail)),
        ))
    };
    if field("scope").split_whitespace().count() > 1 {
        return refused("Give one scope (or none); more can be added to the resource afterwards.");
    }
    ctx.use_once(&form)?;
    let product = field("product");
    let scopes: Vec<String> = field("scope")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let access = if field("access") == "write" {
        "write"
    } else {
        "read"
    };
    let api = ctx.api();
    let resource = match api
        .post(
            &format!("/admin/v1/orgs/{}/resources", seg(&org)),
            Some(json!({
                "name": field("api"), "sandbox": field("sandbox"),
                "product": if product.is_empty() { Value::Null } else { json!(product) },
                "scopes": scopes,
            })),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Ok(respond(
                e.status,
                protect_form(&o, &csrf, &typed, Some(&e.detail)),
            ));
        }
    };
    let products: Vec<&str> = if product.is_empty() {
        vec![]
    } else {
        vec![product.as_str()]
    };
    let created = async {
        let app = api
            .post(
                "/admin/v1/apps",
                Some(json!({
                    "org_id": org, "name": field("app"), "products": products,
                    "scopes": scopes, "sandboxes": {field("sandbox"): access},
                })),
            )
            .await?;
        let secret = api
            .post(
                &format!("/admin/v1/apps/{}/secrets", seg(s(&app, "client_id"))),
                None,
            )
            .await?;
        Ok::<_, super::api::ApiError>((app, secret))
    }
    .await;
    let (app, secret) = match created {
        Ok(x) => x,
        Err(e) => {
            // Leave nothing half made: the resource goes again.
            let _ = api
                .delete(&format!(
                    "/admin/v1/orgs/{}/resources/{}",
                    seg(&org),
                    seg(s(&resource, "id"))
                ))
                .await;
            return Ok(respond(
                e.status,
                protect_form(&o, &csrf, &typed, Some(&e.detail)),
            ));
        }
    };
    let issuer = ctx.state.issuer.trim_end_matches('/');
    let (cid, sec, rid) = (
        s(&app, "client_id"),
        s(&secret, "secret"),
        s(&resource, "id"),
    );
    let scope_arg = if scopes.is_empty() {
        String::new()
    } else {
        format!(" -d scope={}", scopes.join("+"))
    };
    let curl = format!(
        "TOKEN=$(curl -s -u '{cid}:{sec}' -d grant_type=client_credentials{scope_arg} {issuer}/oauth/token | jq -r .access_token)\n\
         curl -i '{issuer}/gateway/v1/check?resource={rid}' -H \"Authorization: Bearer $TOKEN\" -H 'x-api-key: {cid}' -H 'x-gw-ims-org-id: {org}'"
    );
    let page = Frame::new("Your API is protected", Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(format!("/console/orgs/{}", seg(&org)), s(&o, "name"))
        .render(html! {
            (notice("Copy the client secret now: this is the only time it is shown."))
            ol.steps {
                li { "Describe the API" }
                li { "Resource " strong { (s(&resource, "name")) } " and application " a href=(app_page(cid)) { (s(&app, "name")) } " created" }
                li aria-current="step" { "Try it" }
            }
            (copy_field("resource-id", "Resource id (your proxy's $portcullis_resource)", rid))
            (copy_field("client-id", "Client id (the caller's x-api-key)", cid))
            (copy_field("secret", "Client secret", sec))
            h2 { "A call that passes the check" }
            p { "Run these two commands (they need " code { "curl" } " and " code { "jq" } "). The check answers "
                code { "200" } " with the " code { "x-portcullis-*" } " headers your API receives; behind the shipped nginx configuration the same headers reach your API." }
            div.field {
                div.copy { pre #curl.reveal { (curl) } button.copy type="button" data-copy="curl" { "Copy" } }
            }
            p.actions {
                a.button.primary href={"/console/orgs/" (seg(&org)) "/resources"} { "Done, to the resources" }
                a.button href=(app_page(cid)) { "The application" }
            }
        });
    Ok(once_page(page))
}
