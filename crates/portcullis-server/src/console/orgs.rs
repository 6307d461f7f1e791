//! Organizations: the list of the caller's organizations, the switcher and tabs of an
//! organization's pages, and, for platform administrators, creating and changing one:
//! what `POST /admin/v1/orgs` and `PATCH /admin/v1/orgs/{org_id}` take — name, products,
//! sandboxes and status. Disabling an organization asks for confirmation first. Anyone
//! else who sends these forms gets the admin API's refusal.

use super::api::{ApiError, seg};
use super::common::{Page, joined, org_href, see_other};
use super::view::{Frame, PageError, alert, post_form, respond, words};
use super::{ConsoleForm, Ctx, Signed};
use crate::admin::Page as Listing;
use crate::admin::orgs::OrgBody;
use crate::admin::users::UserBody;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use maud::{Markup, html};
use portcullis_core::model::OrgStatus;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The signed-in user as the admin API has them now (`None` if it cannot say).
pub(super) async fn me(ctx: &Ctx) -> Option<UserBody> {
    ctx.api().get("/admin/v1/sessions/current").await.ok()
}

/// Whether the signed-in user is a platform administrator.
pub(super) fn is_platform_admin(me: Option<&UserBody>) -> bool {
    me.is_some_and(|u| u.platform_admin)
}

/// The organizations the caller sees (the first 100).
async fn list(ctx: &Ctx) -> Result<Vec<OrgBody>, ApiError> {
    ctx.api()
        .get::<Listing<OrgBody>>("/admin/v1/orgs?limit=100")
        .await
        .map(|l| l.items)
}

async fn get(ctx: &Ctx, org: &str) -> Result<OrgBody, ApiError> {
    ctx.api().get(&format!("/admin/v1/orgs/{}", seg(org))).await
}

/// The organization of a page, or an error page that leads back to the list.
pub(super) async fn load_org(ctx: &Ctx, org: &str) -> Result<OrgBody, PageError> {
    get(ctx, org)
        .await
        .map_err(|e| PageError::from(e).back("/console/orgs", "Your organizations"))
}

/// The name of an organization, for a breadcrumb; its id when it cannot be read.
pub(super) async fn name_of(ctx: &Ctx, org: &str) -> String {
    get(ctx, org)
        .await
        .map(|o| o.name)
        .unwrap_or_else(|_| org.to_owned())
}

/// `GET /console/orgs`: the caller's organizations.
pub(super) async fn orgs(Signed(ctx): Signed) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let orgs = list(&ctx).await?;
    let me = me(&ctx).await;
    let platform = is_platform_admin(me.as_ref());
    // A platform administrator sees every organization, but its pages only where they
    // hold a role; elsewhere the name leads to the organization's settings.
    let member = |o: &OrgBody| {
        me.as_ref()
            .is_some_and(|u| u.roles.contains_key(o.id.as_str()))
    };
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
                @for o in &orgs {
                    li.card {
                        @if member(o) || !platform {
                            h2 { a href=(org_href(&o.id)) { (o.name) } }
                        } @else {
                            h2 { a href={(org_href(&o.id)) "/edit"} { (o.name) } }
                        }
                        p.muted { code { (o.id) } " · " (o.status.as_str()) }
                        p { "Products: " (words(&o.products)) }
                        p { "Sandboxes: " (words(&o.sandboxes)) }
                        @if platform {
                            p { a href={(org_href(&o.id)) "/edit"} aria-label={"Edit organization " (o.name)} { "Edit organization" } }
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
    let orgs = list(ctx).await.unwrap_or_default();
    html! {
        @if orgs.len() > 1 {
            form.switch method="get" action="/console/orgs/switch" {
                label for="org-switch" { "Organization" }
                select #org-switch name="org" {
                    @for o in &orgs {
                        option value=(o.id) selected[o.id == org] { (o.name) }
                    }
                }
                button type="submit" { "Switch" }
            }
        }
        (org_tabs(org, current))
    }
}

/// `GET /console/orgs/switch?org=…`: the switcher's answer, the org's overview.
pub(super) async fn switch_org(
    Signed(_ctx): Signed,
    Query(q): Query<HashMap<String, String>>,
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

fn org_tabs(org: &str, current: &str) -> Markup {
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

// ---- creating and changing (platform administrators) ---------------------------------

/// Names typed into one text field, separated by spaces or commas.
fn names(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|n| !n.is_empty())
        .collect()
}

/// The fields the create and edit forms share: name, products, sandboxes.
fn fields(name: &str, products: &str, sandboxes: &str) -> Markup {
    html! {
        label for="name" { "Name" }
        input #name type="text" name="name" value=(name) required maxlength="200";
        label for="products" { "Products" }
        input #products type="text" name="products" value=(products) aria-describedby="products-help" autocapitalize="none" spellcheck="false";
        small #products-help { "Space-separated names of the products the organization's apps may be given, like " code { "events billing" } ". Empty for none." }
        label for="sandboxes" { "Sandboxes" }
        input #sandboxes type="text" name="sandboxes" value=(sandboxes) aria-describedby="sandboxes-help" autocapitalize="none" spellcheck="false";
        small #sandboxes-help { "Space-separated names, like " code { "prod stage" } ". Apps are given read or write access to each." }
    }
}

fn new_form(
    csrf: &str,
    name: &str,
    products: &str,
    sandboxes: &str,
    error: Option<&str>,
) -> Markup {
    Frame::new("New organization", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p.muted { "You become an administrator of the organization you create, so that you can invite its first members." }
            (post_form("/console/orgs/new", csrf, None, html! {
                div.stack {
                    (fields(name, products, sandboxes))
                    button.primary type="submit" { "Create organization" }
                }
            }))
            p { a href="/console/orgs" { "Cancel" } }
        })
}

pub(super) async fn new_page(Signed(ctx): Signed) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        new_form(&csrf, "", "", "prod", None),
    ))
}

pub(super) async fn create(Signed(ctx): Signed, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name", "products", "sandboxes"])?;
    let csrf = ctx.csrf().unwrap_or_default();
    let (name, products, sandboxes) = (
        form.one("name")?,
        form.one("products")?,
        form.one("sandboxes")?,
    );
    let body = json!({
        "name": name,
        "products": names(products),
        "sandboxes": names(sandboxes),
    });
    match ctx
        .api()
        .post::<OrgBody>("/admin/v1/orgs", Some(body))
        .await
    {
        Ok(org) => Ok(see_other(&format!(
            "/console/orgs/{}/overview",
            seg(&org.id)
        ))),
        Err(e) => Ok(respond(
            e.status,
            new_form(&csrf, name, products, sandboxes, Some(&e.detail)),
        )),
    }
}

/// What the edit form shows: the stored org, or what was typed.
struct Typed<'a> {
    name: &'a str,
    products: String,
    sandboxes: String,
    status: &'a str,
}

impl<'a> Typed<'a> {
    fn stored(org: &'a OrgBody) -> Self {
        Self {
            name: &org.name,
            products: joined(&org.products, " "),
            sandboxes: joined(&org.sandboxes, " "),
            status: org.status.as_str(),
        }
    }

    fn from_form(form: &'a ConsoleForm) -> Result<Self, PageError> {
        Ok(Self {
            name: form.one("name")?,
            products: form.one("products")?.to_owned(),
            sandboxes: form.one("sandboxes")?.to_owned(),
            status: form.one("status")?,
        })
    }

    fn patch(&self) -> Value {
        json!({
            "name": self.name,
            "products": names(&self.products),
            "sandboxes": names(&self.sandboxes),
            "status": self.status,
        })
    }
}

fn edit_path(org: &str) -> String {
    format!("/console/orgs/{}/edit", seg(org))
}

fn edit_form(org: &OrgBody, typed: &Typed<'_>, csrf: &str, error: Option<&str>) -> Markup {
    let id = &org.id;
    Frame::new("Edit organization", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(edit_path(id), &org.name)
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p.muted { "Organization " code.id { (id) } }
            (post_form(&edit_path(id), csrf, None, html! {
                div.stack {
                    (fields(typed.name, &typed.products, &typed.sandboxes))
                    label for="status" { "Status" }
                    select #status name="status" aria-describedby="status-help" {
                        option value="active" selected[typed.status == "active"] { "active" }
                        option value="disabled" selected[typed.status == "disabled"] { "disabled" }
                    }
                    small #status-help { "A disabled organization's apps are refused everywhere, and every token they hold ends for good." }
                    button.primary type="submit" { "Save changes" }
                }
            }))
            p { a href="/console/orgs" { "Cancel" } }
        })
}

/// The organization to change, or an error page that leads back to the list.
async fn load(ctx: &Ctx, org: &str) -> Result<OrgBody, PageError> {
    get(ctx, org)
        .await
        .map_err(|e| PageError::from(e).back("/console/orgs", "Organizations"))
}

pub(super) async fn edit_page(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load(&ctx, &org).await?;
    Ok(respond(
        StatusCode::OK,
        edit_form(&o, &Typed::stored(&o), &csrf, None),
    ))
}

/// Disabling, before it happens: what it does, and the form again with `confirm=disable`.
fn confirm_disable(org: &OrgBody, typed: &Typed<'_>, csrf: &str) -> Markup {
    let id = &org.id;
    Frame::new("Disable organization?", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(edit_path(id), &org.name)
        .render(html! {
            p { "Disable " strong { (org.name) } " (" code { (id) } ")? Its apps are refused everywhere from the next request, and every token they hold now stops working for good: enabling the organization again does not bring those tokens back." }
            (post_form(&edit_path(id), csrf, None, html! {
                input type="hidden" name="name" value=(typed.name);
                input type="hidden" name="products" value=(typed.products);
                input type="hidden" name="sandboxes" value=(typed.sandboxes);
                input type="hidden" name="status" value=(typed.status);
                input type="hidden" name="confirm" value="disable";
                p.actions {
                    button.danger type="submit" { "Disable organization" }
                    a href=(edit_path(id)) { "Cancel" }
                }
            }))
        })
}

pub(super) async fn edit(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name", "products", "sandboxes", "status", "confirm"])?;
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load(&ctx, &org).await?;
    let typed = Typed::from_form(&form)?;
    let disabling = typed.status == "disabled" && o.status != OrgStatus::Disabled;
    if disabling && form.opt("confirm")? != Some("disable") {
        return Ok(respond(StatusCode::OK, confirm_disable(&o, &typed, &csrf)));
    }
    match ctx
        .api()
        .patch(&format!("/admin/v1/orgs/{}", seg(&org)), typed.patch())
        .await
    {
        Ok(_) => Ok(see_other("/console/orgs")),
        Err(e) => Ok(respond(
            e.status,
            edit_form(&o, &typed, &csrf, Some(&e.detail)),
        )),
    }
}
