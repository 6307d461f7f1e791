//! Creating, editing and deleting an organization's resources and permission groups.
//! Each form sends what the admin API takes (`/admin/v1/orgs/{org}/resources`,
//! `…/groups`) and shows its refusal with the values as typed; who may do what is the
//! admin API's decision, never this module's.

use super::api::seg;
use super::pages::{Confirm, Page, confirm, load_org, s, see_other, strings};
use super::view::{Frame, PageError, alert, post_form, respond};
use super::{ConsoleForm, Ctx, Signed};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for kind in [&RESOURCES, &GROUPS] {
        let w = kind.what;
        router = router
            .route(
                &format!("/orgs/{{org}}/{w}/new"),
                get(move |Signed(ctx): Signed, Path(org): Path<String>| async move {
                    new_page(&ctx, &org, kind).await
                })
                .post(move |Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm| async move {
                    create(&ctx, &org, form, kind).await
                }),
            )
            .route(
                &format!("/orgs/{{org}}/{w}/{{id}}/edit"),
                get(move |Signed(ctx): Signed, Path((org, id)): Path<(String, String)>| async move {
                    edit_page(&ctx, &org, &id, kind).await
                })
                .post(move |Signed(ctx): Signed, Path((org, id)): Path<(String, String)>, form: ConsoleForm| async move {
                    edit(&ctx, &org, &id, form, kind).await
                }),
            )
            .route(
                &format!("/orgs/{{org}}/{w}/{{id}}/delete"),
                get(move |Signed(ctx): Signed, Path((org, id)): Path<(String, String)>| async move {
                    delete_page(&ctx, &org, &id, kind).await
                })
                .post(move |Signed(ctx): Signed, Path((org, id)): Path<(String, String)>, form: ConsoleForm| async move {
                    delete(&ctx, &org, &id, form, kind).await
                }),
            );
    }
    router
}

/// What differs between an org's resources and its permission groups; the handlers
/// below are the same for both.
struct Kind {
    /// The admin API's collection under the org (`resources`, `groups`), and the
    /// console's tab.
    what: &'static str,
    /// The tab's name.
    label: &'static str,
    form: fn(&Value, &str, &Value, Option<&str>, Option<&str>) -> Markup,
    body: fn(&ConsoleForm) -> Result<Value, PageError>,
    /// The new form's values, for the org.
    blank: fn(&Value) -> Value,
    delete_title: &'static str,
    delete_button: &'static str,
    delete_text: fn(&Value) -> Markup,
}

const RESOURCES: Kind = Kind {
    what: "resources",
    label: "Resources",
    form: resource_form,
    body: resource_body,
    blank: |o| json!({"sandbox": if strings(&o["sandboxes"]).iter().any(|s| s == "prod") { "prod" } else { "" }}),
    delete_title: "Delete resource?",
    delete_button: "Delete resource",
    delete_text: |r| html! { "Delete " strong { (s(r, "name")) } " (" code { (s(r, "id")) } ")? Proxies that name it get 404 from the next request on, and its stored events are deleted. This cannot be undone." },
};

const GROUPS: Kind = Kind {
    what: "groups",
    label: "Permission groups",
    form: group_form,
    body: group_body,
    blank: |_| json!({}),
    delete_title: "Delete permission group?",
    delete_button: "Delete group",
    delete_text: |g| html! { "Delete the permission group " strong { (s(g, "name")) } "? The admin API refuses while applications are still in it." },
};

impl Kind {
    fn tab(&self, org: &str) -> String {
        org_page(org, &format!("/{}", self.what))
    }
}

async fn new_page(ctx: &Ctx, org: &str, k: &Kind) -> Page {
    let o = load_org(ctx, org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        (k.form)(&o, &csrf, &(k.blank)(&o), None, None),
    ))
}

async fn create(ctx: &Ctx, org: &str, form: ConsoleForm, k: &Kind) -> Page {
    ctx.check_csrf(&form)?;
    let body = (k.body)(&form)?;
    let path = format!("/admin/v1/orgs/{}/{}", seg(org), k.what);
    match ctx.api().post(&path, Some(body.clone())).await {
        Ok(_) => Ok(see_other(&k.tab(org))),
        Err(e) => refused(ctx, org, &body, None, e, k).await,
    }
}

/// The form again, with the admin API's detail and the values as typed.
async fn refused(
    ctx: &Ctx,
    org: &str,
    typed: &Value,
    editing: Option<&str>,
    e: super::api::ApiError,
    k: &Kind,
) -> Page {
    let o = load_org(ctx, org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        e.status,
        (k.form)(&o, &csrf, typed, editing, Some(&e.detail)),
    ))
}

async fn edit_page(ctx: &Ctx, org: &str, id: &str, k: &Kind) -> Page {
    let o = load_org(ctx, org).await?;
    let record = ctx
        .api()
        .get(&record_path(org, k.what, id))
        .await
        .map_err(|e| PageError::from(e).back(k.tab(org), k.label))?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        (k.form)(&o, &csrf, &record, Some(id), None),
    ))
}

async fn edit(ctx: &Ctx, org: &str, id: &str, form: ConsoleForm, k: &Kind) -> Page {
    ctx.check_csrf(&form)?;
    let body = (k.body)(&form)?;
    match ctx
        .api()
        .patch(&record_path(org, k.what, id), body.clone())
        .await
    {
        Ok(_) => Ok(see_other(&k.tab(org))),
        Err(e) => refused(ctx, org, &body, Some(id), e, k).await,
    }
}

async fn delete_page(ctx: &Ctx, org: &str, id: &str, k: &Kind) -> Page {
    let record = ctx.api().get(&record_path(org, k.what, id)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: k.delete_title,
        action: format!("{}/{}/delete", k.tab(org), seg(id)),
        back: (k.tab(org), k.label),
        text: (k.delete_text)(&record),
        button: k.delete_button,
    }))
}

async fn delete(ctx: &Ctx, org: &str, id: &str, form: ConsoleForm, k: &Kind) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&record_path(org, k.what, id))
        .await
        .map_err(|e| PageError::from(e).back(k.tab(org), k.label))?;
    Ok(see_other(&k.tab(org)))
}

fn org_page(org: &str, tab: &str) -> String {
    format!("/console/orgs/{}{tab}", seg(org))
}

fn record_path(org: &str, what: &str, id: &str) -> String {
    format!("/admin/v1/orgs/{}/{what}/{}", seg(org), seg(id))
}

/// Space- or comma-separated words of a text field.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---- resources ----------------------------------------------------------------------

/// The resource form, filled from `r` (stored, or as typed after a refusal).
fn resource_form(
    org: &Value,
    csrf: &str,
    r: &Value,
    editing: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let org_id = s(org, "id");
    let (title, action, button) = match editing {
        Some(id) => (
            "Edit resource",
            format!("{}/{}/edit", org_page(org_id, "/resources"), seg(id)),
            "Save resource",
        ),
        None => (
            "Create resource",
            org_page(org_id, "/resources/new"),
            "Create resource",
        ),
    };
    let open = r["allow_unauthenticated"].as_bool() == Some(true);
    let sandbox = s(r, "sandbox");
    let product = r["product"].as_str().unwrap_or("");
    Frame::new(title, Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(org_page(org_id, ""), s(org, "name"))
        .crumb(org_page(org_id, "/resources"), "Resources")
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p { "A resource is one API (or part of one) that the gateway protects. Your proxy names it on every check; the caller needs what you require here." }
            (post_form(&action, csrf, None, html! {
                div.stack {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(s(r, "name")) required maxlength="200";
                    label for="sandbox" { "Sandbox" }
                    select #sandbox name="sandbox" aria-describedby="sandbox-help" {
                        @for sb in strings(&org["sandboxes"]) {
                            option value=(sb) selected[sb == sandbox] { (sb) }
                        }
                    }
                    small #sandbox-help { "Callers need read access to it, and write access for anything but GET, HEAD and OPTIONS." }
                    label for="product" { "Product required" }
                    select #product name="product" {
                        option value="" selected[product.is_empty()] { "none" }
                        @for p in strings(&org["products"]) {
                            option value=(p) selected[p == product] { (p) }
                        }
                    }
                    label for="scopes" { "Scopes required" }
                    input #scopes type="text" name="scopes" value=(strings(&r["scopes"]).join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                    small #scopes-help { "Space-separated, like " code { "orders.read" } ". A token must carry each." }
                    fieldset {
                        legend { "Authentication" }
                        label.check { input type="radio" name="auth" value="required" checked[!open]; " Credentials required" }
                        label.check { input type="radio" name="auth" value="open" checked[open]; " Open: calls without credentials pass, marked unauthenticated" }
                    }
                    label for="cors_origins" { "CORS origins" }
                    input #cors_origins type="text" name="cors_origins" value=(strings(&r["cors_origins"]).join(" ")) aria-describedby="cors-help" autocapitalize="none" spellcheck="false";
                    small #cors-help { "Space-separated origins browsers may call from, like " code { "https://shop.example" } "; empty for none." }
                    button.primary type="submit" { (button) }
                }
            }))
        })
}

/// The resource body of a form: (JSON for the admin API, the same as a resource value
/// for redisplay).
fn resource_body(form: &ConsoleForm) -> Result<Value, PageError> {
    form.only(&[
        "name",
        "sandbox",
        "product",
        "scopes",
        "auth",
        "cors_origins",
    ])?;
    let product = form.opt("product")?.unwrap_or("");
    Ok(json!({
        "name": form.one("name")?,
        "sandbox": form.one("sandbox")?,
        "product": if product.is_empty() { Value::Null } else { json!(product) },
        "scopes": words_of(form.opt("scopes")?.unwrap_or("")),
        "allow_unauthenticated": form.opt("auth")? == Some("open"),
        "cors_origins": words_of(form.opt("cors_origins")?.unwrap_or("")),
    }))
}

/// The rows of the resources table's action column.
pub fn resource_actions(org: &str, r: &Value) -> Markup {
    let base = format!("{}/{}", org_page(org, "/resources"), seg(s(r, "id")));
    html! {
        a href={(base) "/edit"} { "Edit" } " · "
        a href={(base) "/delete"} { "Delete" }
    }
}

// ---- permission groups ---------------------------------------------------------------

fn group_form(
    org: &Value,
    csrf: &str,
    g: &Value,
    editing: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let org_id = s(org, "id");
    let (title, action, button) = match editing {
        Some(id) => (
            "Edit permission group",
            format!("{}/{}/edit", org_page(org_id, "/groups"), seg(id)),
            "Save group",
        ),
        None => (
            "Create permission group",
            org_page(org_id, "/groups/new"),
            "Create group",
        ),
    };
    Frame::new(title, Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(org_page(org_id, ""), s(org, "name"))
        .crumb(org_page(org_id, "/groups"), "Permission groups")
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p { "Applications in a permission group take its scopes instead of their own: changing the group changes them all at once." }
            (post_form(&action, csrf, None, html! {
                div.stack {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(s(g, "name")) required maxlength="200";
                    label for="scopes" { "Scopes" }
                    input #scopes type="text" name="scopes" value=(strings(&g["scopes"]).join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                    small #scopes-help { "Space-separated, like " code { "orders.read orders.write" } "." }
                    button.primary type="submit" { (button) }
                }
            }))
        })
}

fn group_body(form: &ConsoleForm) -> Result<Value, PageError> {
    form.only(&["name", "scopes"])?;
    Ok(json!({
        "name": form.one("name")?,
        "scopes": words_of(form.opt("scopes")?.unwrap_or("")),
    }))
}

pub fn group_actions(org: &str, g: &Value) -> Markup {
    let base = format!("{}/{}", org_page(org, "/groups"), seg(s(g, "id")));
    html! {
        a href={(base) "/edit"} { "Edit" } " · "
        a href={(base) "/delete"} { "Delete" }
    }
}
