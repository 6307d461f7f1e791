//! An organization's resources (`/console/orgs/{org}/resources`): the list, and the form
//! that creates or edits one. Creating, editing and deleting are [`super::manage`]'s
//! handlers with the [`Resources`] kind.

use super::api::seg;
use super::common::{Page, org_frame};
use super::manage::{Kind, org_page, row_actions, tab_page, words_of};
use super::orgs::org_nav;
use super::view::{PageError, alert, post_form, respond, words};
use super::{ConsoleForm, Signed};
use crate::admin::orgs::OrgBody;
use crate::admin::resources::ResourceBody;
use axum::extract::Path;
use axum::http::StatusCode;
use maud::{Markup, html};
use serde_json::{Value, json};

/// `GET /console/orgs/{org}/resources`.
pub(super) async fn resources(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let (csrf, o, rs) = tab_page::<Resources>(&ctx, &org).await?;
    let title = format!("Resources of {}", o.name);
    let page = org_frame(&title, &csrf, &o).render(html! {
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
                tbody { @for r in &rs { tr {
                    td { (r.name) }
                    td { code.id { (r.id) } }
                    td { @if r.allow_unauthenticated { "open" } @else { "credentials required" } }
                    td { (r.sandbox) }
                    td { @if let Some(p) = &r.product { (p) } @else { span.muted { "any" } } }
                    td { (words(&r.scopes)) }
                    td.actions-cell { (row_actions::<Resources>(&org, &r.id)) }
                } } }
            } }
        }
    });
    Ok(respond(StatusCode::OK, page))
}

/// An org's resources, for [`super::manage`].
pub(super) struct Resources;

/// The resource form's values.
pub(super) struct Fields {
    name: String,
    sandbox: String,
    /// Empty for none.
    product: String,
    scopes: Vec<String>,
    allow_unauthenticated: bool,
    cors_origins: Vec<String>,
}

impl Kind for Resources {
    const WHAT: &'static str = "resources";
    const LABEL: &'static str = "Resources";
    const DELETE_TITLE: &'static str = "Delete resource?";
    const DELETE_BUTTON: &'static str = "Delete resource";
    type Record = ResourceBody;
    type Fields = Fields;

    fn blank(org: &OrgBody) -> Fields {
        Fields {
            name: String::new(),
            sandbox: if org.sandboxes.contains("prod") {
                "prod"
            } else {
                ""
            }
            .to_owned(),
            product: String::new(),
            scopes: Vec::new(),
            allow_unauthenticated: false,
            cors_origins: Vec::new(),
        }
    }

    fn stored(r: &ResourceBody) -> Fields {
        Fields {
            name: r.name.clone(),
            sandbox: r.sandbox.clone(),
            product: r.product.clone().unwrap_or_default(),
            scopes: r.scopes.clone(),
            allow_unauthenticated: r.allow_unauthenticated,
            cors_origins: r.cors_origins.clone(),
        }
    }

    fn read(form: &ConsoleForm) -> Result<Fields, PageError> {
        form.only(&[
            "name",
            "sandbox",
            "product",
            "scopes",
            "auth",
            "cors_origins",
        ])?;
        Ok(Fields {
            name: form.one("name")?.to_owned(),
            sandbox: form.one("sandbox")?.to_owned(),
            product: form.opt("product")?.unwrap_or("").to_owned(),
            scopes: words_of(form.opt("scopes")?.unwrap_or("")),
            allow_unauthenticated: form.opt("auth")? == Some("open"),
            cors_origins: words_of(form.opt("cors_origins")?.unwrap_or("")),
        })
    }

    fn body(f: &Fields) -> Value {
        json!({
            "name": f.name,
            "sandbox": f.sandbox,
            "product": if f.product.is_empty() { Value::Null } else { json!(f.product) },
            "scopes": f.scopes,
            "allow_unauthenticated": f.allow_unauthenticated,
            "cors_origins": f.cors_origins,
        })
    }

    fn form(
        org: &OrgBody,
        csrf: &str,
        r: &Fields,
        editing: Option<&str>,
        error: Option<&str>,
    ) -> Markup {
        let (title, action, button) = match editing {
            Some(id) => (
                "Edit resource",
                format!("{}/{}/edit", org_page(&org.id, "/resources"), seg(id)),
                "Save resource",
            ),
            None => (
                "Create resource",
                org_page(&org.id, "/resources/new"),
                "Create resource",
            ),
        };
        let open = r.allow_unauthenticated;
        org_frame(title, csrf, org)
            .crumb(org_page(&org.id, "/resources"), "Resources")
            .render(html! {
                @if let Some(e) = error { (alert(e)) }
                p { "A resource is one API (or part of one) that the gateway protects. Your proxy names it on every check; the caller needs what you require here." }
                (post_form(&action, csrf, None, html! {
                    div.stack {
                        label for="name" { "Name" }
                        input #name type="text" name="name" value=(r.name) required maxlength="200";
                        label for="sandbox" { "Sandbox" }
                        select #sandbox name="sandbox" aria-describedby="sandbox-help" {
                            @for sb in &org.sandboxes {
                                option value=(sb) selected[*sb == r.sandbox] { (sb) }
                            }
                        }
                        small #sandbox-help { "Callers need read access to it, and write access for anything but GET, HEAD and OPTIONS." }
                        label for="product" { "Product required" }
                        select #product name="product" {
                            option value="" selected[r.product.is_empty()] { "none" }
                            @for p in &org.products {
                                option value=(p) selected[*p == r.product] { (p) }
                            }
                        }
                        label for="scopes" { "Scopes required" }
                        input #scopes type="text" name="scopes" value=(r.scopes.join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                        small #scopes-help { "Space-separated, like " code { "orders.read" } ". A token must carry each." }
                        fieldset {
                            legend { "Authentication" }
                            label.check { input type="radio" name="auth" value="required" checked[!open]; " Credentials required" }
                            label.check { input type="radio" name="auth" value="open" checked[open]; " Open: calls without credentials pass, marked unauthenticated" }
                        }
                        label for="cors_origins" { "CORS origins" }
                        input #cors_origins type="text" name="cors_origins" value=(r.cors_origins.join(" ")) aria-describedby="cors-help" autocapitalize="none" spellcheck="false";
                        small #cors-help { "Space-separated origins browsers may call from, like " code { "https://shop.example" } "; empty for none." }
                        button.primary type="submit" { (button) }
                    }
                }))
            })
    }

    fn delete_text(r: &ResourceBody) -> Markup {
        html! { "Delete " strong { (r.name) } " (" code { (r.id) } ")? Proxies that name it get 404 from the next request on, and its stored events are deleted. This cannot be undone." }
    }
}
