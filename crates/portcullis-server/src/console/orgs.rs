//! Creating and changing organizations, for platform administrators: what
//! `POST /admin/v1/orgs` and `PATCH /admin/v1/orgs/{org_id}` take — name, products,
//! sandboxes and status. Disabling an organization asks for confirmation first. Anyone
//! else who sends these forms gets the admin API's refusal.

use super::api::seg;
use super::pages::{Page, s, see_other, strings};
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
        .route("/orgs/new", get(new_page).post(create))
        .route("/orgs/{org}/edit", get(edit_page).post(edit))
}

/// The signed-in user as the admin API has them now (`Null` if it cannot say).
pub(super) async fn me(ctx: &Ctx) -> Value {
    ctx.api()
        .get("/admin/v1/sessions/current")
        .await
        .unwrap_or(Value::Null)
}

/// Whether the signed-in user is a platform administrator.
pub(super) fn is_platform_admin(me: &Value) -> bool {
    me["platform_admin"].as_bool() == Some(true)
}

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

async fn new_page(Signed(ctx): Signed) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        new_form(&csrf, "", "", "prod", None),
    ))
}

async fn create(Signed(ctx): Signed, form: ConsoleForm) -> Page {
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
    match ctx.api().post("/admin/v1/orgs", Some(body)).await {
        Ok(org) => Ok(see_other(&format!(
            "/console/orgs/{}/overview",
            seg(s(&org, "id"))
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
    fn stored(org: &'a Value) -> Self {
        Self {
            name: s(org, "name"),
            products: strings(&org["products"]).join(" "),
            sandboxes: strings(&org["sandboxes"]).join(" "),
            status: s(org, "status"),
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

fn edit_form(org: &Value, typed: &Typed<'_>, csrf: &str, error: Option<&str>) -> Markup {
    let id = s(org, "id");
    Frame::new("Edit organization", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(edit_path(id), s(org, "name"))
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

async fn load(ctx: &Ctx, org: &str) -> Result<Value, PageError> {
    ctx.api()
        .get(&format!("/admin/v1/orgs/{}", seg(org)))
        .await
        .map_err(|e| PageError::from(e).back("/console/orgs", "Organizations"))
}

async fn edit_page(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load(&ctx, &org).await?;
    Ok(respond(
        StatusCode::OK,
        edit_form(&o, &Typed::stored(&o), &csrf, None),
    ))
}

/// Disabling, before it happens: what it does, and the form again with `confirm=disable`.
fn confirm_disable(org: &Value, typed: &Typed<'_>, csrf: &str) -> Markup {
    let id = s(org, "id");
    Frame::new("Disable organization?", Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(edit_path(id), s(org, "name"))
        .render(html! {
            p { "Disable " strong { (s(org, "name")) } " (" code { (id) } ")? Its apps are refused everywhere from the next request, and every token they hold now stops working for good: enabling the organization again does not bring those tokens back." }
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

async fn edit(Signed(ctx): Signed, Path(org): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name", "products", "sandboxes", "status", "confirm"])?;
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load(&ctx, &org).await?;
    let typed = Typed::from_form(&form)?;
    let disabling = typed.status == "disabled" && s(&o, "status") != "disabled";
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
