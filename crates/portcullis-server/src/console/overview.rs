//! An organization at a glance (`/console/orgs/{org}/overview`): how many apps,
//! resources, groups and members it has, its usage (`usage.rs`: charts of a range, the
//! apps refused most), the gateway's recent refusals with their codes, and what needs
//! attention (apps without a credential, suspended apps, certificates
//! about to expire). And the guided **Protect an API** flow: a resource, an app with
//! exactly the access it needs, a client secret shown once, and a `curl` that passes the
//! gateway check. Everything is read and written through the admin API as the user.

use super::api::{ApiError, seg};
use super::apps::{app_page, org_apps_of};
use super::common::{Page, joined, once_page, org_frame};
use super::groups::Groups;
use super::manage::list;
use super::orgs::{load_org, org_nav};
use super::resources::Resources;
use super::view::{Frame, alert, copy_field, notice, post_form, respond, time};
use super::{ConsoleForm, Ctx, Signed, fresh_nonce};
use crate::admin::Page as Listing;
use crate::admin::apps::AppBody;
use crate::admin::audit::{AuditBody, AuditPage};
use crate::admin::certificates::CertificateBody;
use crate::admin::keypairs::KeyPairBody;
use crate::admin::orgs::OrgBody;
use crate::admin::resources::ResourceBody;
use crate::admin::secrets::{CreatedSecret, SecretBody};
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use maud::{Markup, html};
use portcullis_core::model::{AppStatus, OrgStatus};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long before a certificate's end it is worth a warning.
const EXPIRY_WARNING: i64 = 30 * 24 * 3600;

/// The first page (100) of a listing, or nothing when the admin API refuses it.
async fn listing<T: DeserializeOwned>(ctx: &Ctx, path: &str) -> Option<Listing<T>> {
    ctx.api().get(path).await.ok()
}

/// How many a listing has: `100+` when there are more pages, a dash when it was refused.
fn count<T>(page: &Option<Listing<T>>) -> String {
    match page {
        Some(p) if p.next.is_some() => format!("{}+", p.items.len()),
        Some(p) => p.items.len().to_string(),
        None => "–".to_owned(),
    }
}

/// One of an audit entry's details, or a dash. The details are the one free-form part of
/// the admin API's audit entry (what is recorded differs by action), so they are read by
/// name here.
fn detail<'a>(e: &'a AuditBody, name: &str) -> &'a str {
    e.details.get(name).and_then(Value::as_str).unwrap_or("–")
}

/// Whether a listing was read and is empty.
fn none<T>(page: &Option<Listing<T>>) -> bool {
    page.as_ref().is_some_and(|p| p.items.is_empty())
}

pub(super) async fn overview(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let range = super::usage::Range::parse(query.as_deref())?;
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    let o_seg = seg(&org);
    let apps: Option<Listing<AppBody>> = org_apps_of(&ctx, &org).await.ok();
    let resources = list::<Resources>(&ctx, &org).await.ok();
    let groups = list::<Groups>(&ctx, &org).await.ok();
    // Users are listed across orgs: count those with a role in this one.
    let members = super::users::all_users(&ctx)
        .await
        .ok()
        .map(|users| Listing {
            items: super::users::members(users, &org),
            next: None,
        });
    // Only the org's admins read the audit trail; others see no failures section.
    let failures: Option<AuditPage> = ctx
        .api()
        .get(&format!(
            "/admin/v1/audit?org={o_seg}&action=auth.failed&order=desc&limit=10"
        ))
        .await
        .ok();

    let now = ctx.state.now();
    let mut attention: Vec<Markup> = Vec::new();
    if o.status != OrgStatus::Active {
        attention.push(html! { "The organization is " strong { (o.status.as_str()) } ": every token of its applications is refused." });
    }
    let app_list: &[AppBody] = apps.as_ref().map_or(&[], |a| &a.items);
    for a in app_list {
        let cid = a.client_id.as_str();
        let link = html! { a href=(app_page(cid)) { (a.name) } };
        if a.status == AppStatus::Suspended {
            attention.push(html! { (link) " is suspended: its tokens are refused." });
        }
        let path = format!("/admin/v1/apps/{}", seg(cid));
        let secrets = listing::<SecretBody>(&ctx, &format!("{path}/secrets")).await;
        let certs = listing::<CertificateBody>(&ctx, &format!("{path}/certificates")).await;
        let keypairs = listing::<KeyPairBody>(&ctx, &format!("{path}/keypairs")).await;
        if none(&secrets) && none(&certs) && none(&keypairs) {
            attention.push(html! { (link) " has no client secret, certificate or key pair yet: it cannot get a token." });
        }
        for c in certs.as_ref().map_or(&[][..], |c| &c.items) {
            let end = c.not_after;
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
    if none(&resources) {
        attention.push(html! { "No resources yet: " a href={"/console/orgs/" (o_seg) "/protect"} { "protect an API" } "." });
    }

    // Refusals name the client they claimed to be: show the app's name when it is one.
    let app_names: std::collections::HashMap<String, &str> = app_list
        .iter()
        .map(|a| (format!("client:{}", a.client_id), a.name.as_str()))
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
    let usage = super::usage::org_section(&ctx, &org, app_list, range).await;
    let nav = org_nav(&ctx, &org, "/overview").await;
    let page = Frame::new(&o.name, Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            (nav)
            ul.stats aria-label="At a glance" {
                @for (label, n, href) in &stats {
                    li { a href=(href) { span.n { (n) } span.l { (label) } } }
                }
            }
            p.muted { "Products: " (joined(&o.products, ", ")) " · Sandboxes: " (joined(&o.sandboxes, ", ")) " · Id " code { (o.id) } }
            h2 { "Needs attention" }
            @if attention.is_empty() {
                p #attention { "Nothing: every application has a credential, none is suspended, no certificate expires within 30 days." }
            } @else {
                ul #attention { @for a in &attention { li { (a) } } }
            }
            (usage)
            @if let Some(f) = &failures {
                h2 { "Recent refusals at the gateway" }
                @if f.entries.is_empty() {
                    p.muted { "None recorded." }
                } @else {
                    div.scroll { table #failures {
                        caption.sr { "Recent failed authentications" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "Code" } th scope="col" { "Where" } th scope="col" { "Caller" } th scope="col" { "Address" } } }
                        tbody { @for e in &f.entries { tr {
                            td.nowrap { (time(e.at)) }
                            td { code { (detail(e, "code")) } }
                            td { (detail(e, "surface")) }
                            td {
                                @let actor = e.actor.as_str();
                                @if let Some(name) = app_names.get(actor) {
                                    span.who { "app " (name) } br; code.id.small { (actor) }
                                } @else {
                                    code.id { (actor) }
                                }
                            }
                            td { (e.address.as_deref().unwrap_or("–")) }
                        } } }
                    } }
                    p { a href={"/console/orgs/" (o_seg) "/audit?action=auth.failed"} { "All of them in the audit log" } }
                }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

// ---- Protect an API -------------------------------------------------------------------

/// The form's values: the defaults, or as typed (trimmed) after a refusal.
#[derive(Default)]
struct Typed {
    api: String,
    sandbox: String,
    product: String,
    scope: String,
    app: String,
    access: String,
}

fn protect_form(org: &OrgBody, csrf: &str, typed: &Typed, error: Option<&str>) -> Markup {
    let org_id = &org.id;
    let (sandbox, product) = (&typed.sandbox, &typed.product);
    org_frame("Protect an API", csrf, org)
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
                    input #api type="text" name="api" value=(typed.api) required maxlength="200" placeholder="Orders API";
                    label for="sandbox" { "Sandbox" }
                    select #sandbox name="sandbox" {
                        @for sb in &org.sandboxes { option value=(sb) selected[sb == sandbox] { (sb) } }
                    }
                    label for="product" { "Product" }
                    select #product name="product" {
                        option value="" selected[product.is_empty()] { "none" }
                        @for p in &org.products { option value=(p) selected[p == product] { (p) } }
                    }
                    label for="scope" { "Scope a caller needs" }
                    input #scope type="text" name="scope" value=(typed.scope) placeholder="orders.read" autocapitalize="none" spellcheck="false" aria-describedby="scope-help";
                    small #scope-help { "One word, or leave empty for none." }
                    label for="app" { "Application that may call it" }
                    input #app type="text" name="app" value=(typed.app) required maxlength="200" placeholder="Partner dashboard";
                    fieldset {
                        legend { "Its access to the sandbox" }
                        label.check { input type="radio" name="access" value="read" checked[typed.access != "write"]; " Read (GET, HEAD, OPTIONS)" }
                        label.check { input type="radio" name="access" value="write" checked[typed.access == "write"]; " Read and write" }
                    }
                    button.primary type="submit" { "Create and show the curl" }
                }
            }))
        })
}

pub(super) async fn protect_page(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    let typed = Typed {
        sandbox: if o.sandboxes.contains("prod") {
            "prod"
        } else {
            ""
        }
        .to_owned(),
        ..Typed::default()
    };
    Ok(respond(
        StatusCode::OK,
        protect_form(&o, &csrf, &typed, None),
    ))
}

pub(super) async fn protect(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    form: ConsoleForm,
) -> Page {
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
    let typed = Typed {
        api: field("api"),
        sandbox: field("sandbox"),
        product: field("product"),
        scope: field("scope"),
        app: field("app"),
        access: field("access"),
    };
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
    let resource: ResourceBody = match api
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
        let app: AppBody = api
            .post(
                "/admin/v1/apps",
                Some(json!({
                    "org_id": org, "name": field("app"), "products": products,
                    "scopes": scopes, "sandboxes": {field("sandbox"): access},
                })),
            )
            .await?;
        let secret: CreatedSecret = api
            .post(
                &format!("/admin/v1/apps/{}/secrets", seg(&app.client_id)),
                None,
            )
            .await?;
        Ok::<_, ApiError>((app, secret))
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
                    seg(&resource.id)
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
        app.client_id.as_str(),
        secret.secret.as_str(),
        resource.id.as_str(),
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
    let page = org_frame("Your API is protected", &csrf, &o)
        .render(html! {
            (notice("Copy the client secret now: this is the only time it is shown."))
            ol.steps {
                li { "Describe the API" }
                li { "Resource " strong { (resource.name) } " and application " a href=(app_page(cid)) { (app.name) } " created" }
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
