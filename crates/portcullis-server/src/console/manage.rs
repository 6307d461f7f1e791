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
    Router::new()
        .route(
            "/orgs/{org}/resources/new",
            get(new_resource).post(create_resource),
        )
        .route(
            "/orgs/{org}/resources/{id}/edit",
            get(edit_resource_page).post(edit_resource),
        )
        .route(
            "/orgs/{org}/resources/{id}/delete",
            get(delete_resource_page).post(delete_resource),
        )
        .route("/orgs/{org}/groups/new", get(new_group).post(create_group))
        .route(
            "/orgs/{org}/groups/{id}/edit",
            get(edit_group_page).post(edit_group),
        )
        .route(
            "/orgs/{org}/groups/{id}/delete",
            get(delete_group_page).post(delete_group),
        )
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

async fn new_resource(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    let blank = json!({"sandbox": if strings(&o["sandboxes"]).iter().any(|s| s == "prod") { "prod" } else { "" }});
    Ok(respond(
        StatusCode::OK,
        resource_form(&o, &csrf, &blank, None, None),
    ))
}

async fn create_resource(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    let body = resource_body(&form)?;
    let path = format!("/admin/v1/orgs/{}/resources", seg(&org));
    match ctx.api().post(&path, Some(body.clone())).await {
        Ok(_) => Ok(see_other(&org_page(&org, "/resources"))),
        Err(e) => refused_resource(&ctx, &org, &body, None, e).await,
    }
}

async fn refused_resource(
    ctx: &Ctx,
    org: &str,
    typed: &Value,
    editing: Option<&str>,
    e: super::api::ApiError,
) -> Page {
    let o = load_org(ctx, org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        e.status,
        resource_form(&o, &csrf, typed, editing, Some(&e.detail)),
    ))
}

async fn edit_resource_page(Signed(ctx): Signed, Path((org, id)): Path<(String, String)>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let r = ctx
        .api()
        .get(&record_path(&org, "resources", &id))
        .await
        .map_err(|e| PageError::from(e).back(org_page(&org, "/resources"), "Resources"))?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        resource_form(&o, &csrf, &r, Some(&id), None),
    ))
}

async fn edit_resource(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    let body = resource_body(&form)?;
    match ctx
        .api()
        .patch(&record_path(&org, "resources", &id), body.clone())
        .await
    {
        Ok(_) => Ok(see_other(&org_page(&org, "/resources"))),
        Err(e) => refused_resource(&ctx, &org, &body, Some(&id), e).await,
    }
}

async fn delete_resource_page(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
) -> Page {
    let r = ctx.api().get(&record_path(&org, "resources", &id)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete resource?",
        action: format!("{}/{}/delete", org_page(&org, "/resources"), seg(&id)),
        back: (org_page(&org, "/resources"), "Resources"),
        text: html! { "Delete " strong { (s(&r, "name")) } " (" code { (s(&r, "id")) } ")? Proxies that name it get 404 from the next request on, and its stored events are deleted. This cannot be undone." },
        button: "Delete resource",
    }))
}

async fn delete_resource(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&record_path(&org, "resources", &id))
        .await
        .map_err(|e| PageError::from(e).back(org_page(&org, "/resources"), "Resources"))?;
    Ok(see_other(&org_page(&org, "/resources")))
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

async fn new_group(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        group_form(&o, &csrf, &json!({}), None, None),
    ))
}

async fn refused_group(
    ctx: &Ctx,
    org: &str,
    typed: &Value,
    editing: Option<&str>,
    e: super::api::ApiError,
) -> Page {
    let o = load_org(ctx, org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        e.status,
        group_form(&o, &csrf, typed, editing, Some(&e.detail)),
    ))
}

async fn create_group(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    let body = group_body(&form)?;
    let path = format!("/admin/v1/orgs/{}/groups", seg(&org));
    match ctx.api().post(&path, Some(body.clone())).await {
        Ok(_) => Ok(see_other(&org_page(&org, "/groups"))),
        Err(e) => refused_group(&ctx, &org, &body, None, e).await,
    }
}

async fn edit_group_page(Signed(ctx): Signed, Path((org, id)): Path<(String, String)>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let g = ctx
        .api()
        .get(&record_path(&org, "groups", &id))
        .await
        .map_err(|e| PageError::from(e).back(org_page(&org, "/groups"), "Permission groups"))?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        group_form(&o, &csrf, &g, Some(&id), None),
    ))
}

async fn edit_group(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    let body = group_body(&form)?;
    match ctx
        .api()
        .patch(&record_path(&org, "groups", &id), body.clone())
        .await
    {
        Ok(_) => Ok(see_other(&org_page(&org, "/groups"))),
        Err(e) => refused_group(&ctx, &org, &body, Some(&id), e).await,
    }
}

async fn delete_group_page(Signed(ctx): Signed, Path((org, id)): Path<(String, String)>) -> Page {
    let g = ctx.api().get(&record_path(&org, "groups", &id)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete permission group?",
        action: format!("{}/{}/delete", org_page(&org, "/groups"), seg(&id)),
        back: (org_page(&org, "/groups"), "Permission groups"),
        text: html! { "Delete the permission group " strong { (s(&g, "name")) } "? The admin API refuses while applications are still in it." },
        button: "Delete group",
    }))
}

async fn delete_group(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&record_path(&org, "groups", &id))
        .await
        .map_err(|e| PageError::from(e).back(org_page(&org, "/groups"), "Permission groups"))?;
    Ok(see_other(&org_page(&org, "/groups")))
}

pub fn group_actions(org: &str, g: &Value) -> Markup {
    let base = format!("{}/{}", org_page(org, "/groups"), seg(s(g, "id")));
    html! {
        a href={(base) "/edit"} { "Edit" } " · "
        a href={(base) "/delete"} { "Delete" }
    }
}
