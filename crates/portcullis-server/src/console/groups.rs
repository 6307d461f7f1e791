//! An organization's permission groups (`/console/orgs/{org}/groups`): the list, and the
//! form that creates or edits one. Creating, editing and deleting are
//! [`super::manage`]'s handlers with the [`Groups`] kind.

use super::api::seg;
use super::common::{Page, org_frame};
use super::manage::{Kind, org_page, row_actions, tab_page, words_of};
use super::orgs::org_nav;
use super::view::{PageError, alert, post_form, respond, words};
use super::{ConsoleForm, Signed};
use crate::admin::groups::GroupBody;
use crate::admin::orgs::OrgBody;
use axum::extract::Path;
use axum::http::StatusCode;
use maud::{Markup, html};
use serde_json::{Value, json};

/// `GET /console/orgs/{org}/groups`.
pub(super) async fn groups(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let (csrf, o, gs) = tab_page::<Groups>(&ctx, &org).await?;
    let title = format!("Permission groups of {}", o.name);
    let page = org_frame(&title, &csrf, &o).render(html! {
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
                tbody { @for g in &gs { tr {
                    td { (g.name) } td { code.id { (g.id) } } td { (words(&g.scopes)) }
                    td.actions-cell { (row_actions::<Groups>(&org, &g.id)) }
                } } }
            } }
        }
    });
    Ok(respond(StatusCode::OK, page))
}

/// An org's permission groups, for [`super::manage`].
pub(super) struct Groups;

/// The group form's values.
#[derive(Default)]
pub(super) struct Fields {
    name: String,
    scopes: Vec<String>,
}

impl Kind for Groups {
    const WHAT: &'static str = "groups";
    const LABEL: &'static str = "Permission groups";
    const DELETE_TITLE: &'static str = "Delete permission group?";
    const DELETE_BUTTON: &'static str = "Delete group";
    type Record = GroupBody;
    type Fields = Fields;

    fn blank(_: &OrgBody) -> Fields {
        Fields::default()
    }

    fn stored(g: &GroupBody) -> Fields {
        Fields {
            name: g.name.clone(),
            scopes: g.scopes.clone(),
        }
    }

    fn read(form: &ConsoleForm) -> Result<Fields, PageError> {
        form.only(&["name", "scopes"])?;
        Ok(Fields {
            name: form.one("name")?.to_owned(),
            scopes: words_of(form.opt("scopes")?.unwrap_or("")),
        })
    }

    fn body(f: &Fields) -> Value {
        json!({
            "name": f.name,
            "scopes": f.scopes,
        })
    }

    fn form(
        org: &OrgBody,
        csrf: &str,
        g: &Fields,
        editing: Option<&str>,
        error: Option<&str>,
    ) -> Markup {
        let (title, action, button) = match editing {
            Some(id) => (
                "Edit permission group",
                format!("{}/{}/edit", org_page(&org.id, "/groups"), seg(id)),
                "Save group",
            ),
            None => (
                "Create permission group",
                org_page(&org.id, "/groups/new"),
                "Create group",
            ),
        };
        org_frame(title, csrf, org)
            .crumb(org_page(&org.id, "/groups"), "Permission groups")
            .render(html! {
                @if let Some(e) = error { (alert(e)) }
                p { "Applications in a permission group take its scopes instead of their own: changing the group changes them all at once." }
                (post_form(&action, csrf, None, html! {
                    div.stack {
                        label for="name" { "Name" }
                        input #name type="text" name="name" value=(g.name) required maxlength="200";
                        label for="scopes" { "Scopes" }
                        input #scopes type="text" name="scopes" value=(g.scopes.join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                        small #scopes-help { "Space-separated, like " code { "orders.read orders.write" } "." }
                        button.primary type="submit" { (button) }
                    }
                }))
            })
    }

    fn delete_text(g: &GroupBody) -> Markup {
        html! { "Delete the permission group " strong { (g.name) } "? The admin API refuses while applications are still in it." }
    }
}
