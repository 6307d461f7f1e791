//! Editing an app: what `PATCH /admin/v1/apps/{client_id}` takes — name, status, scopes
//! or a permission group, products, sandbox access, token lifetime, quota and whether
//! tokens must be DPoP-bound — and the product and sandbox fields the create form shares.

use super::apps::{app_page, app_path, load_app};
use super::common::{Page, see_other};
use super::groups::Groups;
use super::orgs::load_org;
use super::view::{Frame, PageError, alert, post_form, respond};
use super::{ConsoleForm, Ctx, Signed};
use crate::admin::apps::AppBody;
use crate::admin::groups::GroupBody;
use crate::admin::orgs::OrgBody;
use axum::extract::Path;
use axum::http::StatusCode;
use maud::{Markup, html};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// An app's products and sandbox access (sandbox → `read` or `write`) as a form shows
/// them: stored, or as typed.
#[derive(Default)]
pub struct Choices {
    pub products: Vec<String>,
    pub sandboxes: BTreeMap<String, String>,
}

/// The product checkboxes and sandbox selects of an org, with `chosen` ticked.
pub fn choice_fields(org: &OrgBody, chosen: Option<&Choices>) -> Markup {
    let has_product = |p: &str| chosen.is_some_and(|c| c.products.iter().any(|x| x == p));
    let access = |sb: &str| {
        chosen
            .and_then(|c| c.sandboxes.get(sb))
            .map_or("", String::as_str)
    };
    html! {
        @if !org.products.is_empty() {
            fieldset {
                legend { "Products" }
                @for p in &org.products {
                    label.check { input type="checkbox" name="products" value=(p) checked[has_product(p)]; " " (p) }
                }
            }
        }
        @if !org.sandboxes.is_empty() {
            fieldset {
                legend { "Sandbox access" }
                @for sb in &org.sandboxes {
                    label for={"sb-" (sb)} { (sb) }
                    select id={"sb-" (sb)} name={"sandbox." (sb)} {
                        @for (v, label) in [("", "no access"), ("read", "read"), ("write", "write")] {
                            option value=(v) selected[access(sb) == v] { (label) }
                        }
                    }
                }
            }
        }
    }
}

/// The `products` and `sandbox.<name>` fields of a form: the field names read, and the
/// choices.
pub fn read_choices(form: &ConsoleForm) -> Result<(Vec<String>, Choices), PageError> {
    let mut names = vec!["products".to_owned()];
    let mut sandboxes = BTreeMap::new();
    let fields: Vec<String> = form
        .names()
        .filter(|k| k.starts_with("sandbox."))
        .map(str::to_owned)
        .collect();
    for f in fields {
        let access = form.one(&f)?;
        if !access.is_empty() {
            sandboxes.insert(f["sandbox.".len()..].to_owned(), access.to_owned());
        }
        names.push(f);
    }
    let products = form
        .all("products")
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((
        names,
        Choices {
            products,
            sandboxes,
        },
    ))
}

/// What the edit form shows: the stored app, or what the person typed (a refused edit is
/// shown again as typed, even a number field that holds no number).
struct Typed {
    name: String,
    status: String,
    /// Empty for none.
    group: String,
    scopes: Vec<String>,
    choices: Choices,
    token_ttl_seconds: String,
    quota_requests: String,
    quota_per: String,
    /// The "Require DPoP-bound tokens" checkbox.
    dpop: bool,
}

impl Typed {
    fn stored(app: &AppBody) -> Self {
        Self {
            name: app.name.clone(),
            status: app.status.as_str().to_owned(),
            group: app.group_id.clone().unwrap_or_default(),
            scopes: app.scopes.clone(),
            choices: Choices {
                products: app.products.iter().cloned().collect(),
                sandboxes: app
                    .sandboxes
                    .iter()
                    .map(|(sb, access)| (sb.clone(), access.as_str().to_owned()))
                    .collect(),
            },
            token_ttl_seconds: app
                .token_ttl_seconds
                .map(|t| t.to_string())
                .unwrap_or_default(),
            quota_requests: app
                .quota
                .map(|q| q.requests.to_string())
                .unwrap_or_default(),
            quota_per: app.quota.map_or("minute", |q| q.per.as_str()).to_owned(),
            dpop: app.dpop_bound_access_tokens,
        }
    }

    /// The stored `app` with what the form says instead.
    fn as_typed(app: &AppBody, form: &ConsoleForm) -> Self {
        let mut typed = Self::stored(app);
        let text = |name: &str| form.opt(name).ok().flatten().map(str::to_owned);
        if let Some(n) = text("name") {
            typed.name = n;
        }
        if let Some(st) = text("status") {
            typed.status = st;
        }
        if let Some(g) = text("group") {
            typed.group = g;
        }
        if let Some(sc) = text("scopes") {
            typed.scopes = sc.split_whitespace().map(str::to_owned).collect();
        }
        if let Ok((_, choices)) = read_choices(form) {
            typed.choices = choices;
        }
        if let Some(t) = text("token_ttl_seconds") {
            typed.token_ttl_seconds = t;
        }
        if let Some(q) = text("quota_requests") {
            typed.quota_requests = q;
            typed.quota_per = text("quota_per").unwrap_or_default();
        }
        // A checkbox: a form without the field says "unticked".
        typed.dpop = checkbox(form, DPOP).unwrap_or(false);
        typed
    }
}

/// The form of the app `cid` with `app`'s values; `stored_name` is the app's name as
/// stored (for the breadcrumb, when `app` holds what was typed).
fn edit_form(
    cid: &str,
    app: &Typed,
    stored_name: &str,
    org: &OrgBody,
    groups: &[GroupBody],
    csrf: &str,
    error: Option<&str>,
) -> Markup {
    let group = app.group.as_str();
    let per = app.quota_per.as_str();
    Frame::new("Edit application", Some(csrf))
        .crumb(app_page(cid), stored_name)
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            (post_form(&format!("{}/edit", app_page(cid)), csrf, None, html! {
                div.stack {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(app.name) required maxlength="200";
                    label for="status" { "Status" }
                    select #status name="status" aria-describedby="status-help" {
                        option value="active" selected[app.status == "active"] { "active" }
                        option value="suspended" selected[app.status == "suspended"] { "suspended" }
                    }
                    small #status-help { "Suspending ends every token issued so far, for good; reactivating does not bring them back." }
                    label for="group" { "Permission group" }
                    select #group name="group" aria-describedby="group-help" {
                        option value="" selected[group.is_empty()] { "none: the application's own scopes" }
                        @for g in groups {
                            option value=(g.id) selected[g.id == group] { (g.name) }
                        }
                    }
                    small #group-help { "In a group, the application takes the group's scopes." }
                    label for="scopes" { "Own scopes" }
                    input #scopes type="text" name="scopes" value=(app.scopes.join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                    small #scopes-help { "Space-separated, like " code { "read write" } "; used when the application is in no group." }
                    (choice_fields(org, Some(&app.choices)))
                    label for="ttl" { "Token lifetime (seconds)" }
                    input #ttl type="text" inputmode="numeric" name="token_ttl_seconds" value=(app.token_ttl_seconds) aria-describedby="ttl-help";
                    small #ttl-help { "Empty for the default (1 hour)." }
                    fieldset {
                        legend { "Gateway quota" }
                        label for="quota" { "Requests" }
                        input #quota type="text" inputmode="numeric" name="quota_requests" value=(app.quota_requests) aria-describedby="quota-help";
                        label for="quota-per" { "Per" }
                        select #quota-per name="quota_per" {
                            option value="second" selected[per == "second"] { "second" }
                            option value="minute" selected[per == "minute"] { "minute" }
                        }
                        small #quota-help { "Empty for no quota. Past it the gateway refuses with 429." }
                    }
                    fieldset {
                        legend { "Sender-constrained tokens" }
                        label.check { input #dpop type="checkbox" name=(DPOP) value="true" checked[app.dpop] aria-describedby="dpop-help"; " Require DPoP-bound tokens" }
                        small #dpop-help { "Each token is then tied to a key pair the client holds (DPoP, RFC 9449): the client signs a proof with it for every request, so a stolen token is useless alone. Token requests without a proof are refused, and so are tokens issued before without one. Unticked, a client still gets a bound token when it sends a proof." }
                    }
                    button.primary type="submit" { "Save changes" }
                }
            }))
            p { a href=(app_page(cid)) { "Cancel" } }
        })
}

/// The app, its org and the org's groups.
async fn load_all(ctx: &Ctx, cid: &str) -> Result<(AppBody, OrgBody, Vec<GroupBody>), PageError> {
    let app = load_app(ctx, cid).await?;
    let org = load_org(ctx, &app.org_id).await?;
    let groups = super::manage::list::<Groups>(ctx, &app.org_id)
        .await
        .map(|g| g.items)
        .unwrap_or_default();
    Ok((app, org, groups))
}

pub(super) async fn edit_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let (app, org, groups) = load_all(&ctx, &cid).await?;
    Ok(respond(
        StatusCode::OK,
        edit_form(
            &app.client_id,
            &Typed::stored(&app),
            &app.name,
            &org,
            &groups,
            &csrf,
            None,
        ),
    ))
}

/// The name of the DPoP checkbox: the admin API's field.
const DPOP: &str = "dpop_bound_access_tokens";

/// The DPoP checkbox: ticked (sent as `true`, or a browser's default `on`) or absent.
fn checkbox(form: &ConsoleForm, name: &str) -> Result<bool, PageError> {
    match form.opt(name)? {
        None => Ok(false),
        Some("true" | "on") => Ok(true),
        Some(_) => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            format!("The form's '{name}' is a checkbox: 'true' when ticked, absent otherwise."),
        )),
    }
}

fn number(form: &ConsoleForm, name: &str, what: &str) -> Result<Option<u64>, PageError> {
    match form.one(name)?.trim() {
        "" => Ok(None),
        n => n.parse().map(Some).map_err(|_| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                format!("{what} must be a whole number, or empty."),
            )
        }),
    }
}

/// The PATCH body of the form.
fn patch_of(form: &ConsoleForm) -> Result<Value, PageError> {
    let (
        mut names,
        Choices {
            products,
            sandboxes,
        },
    ) = read_choices(form)?;
    names.extend(
        [
            "name",
            "status",
            "group",
            "scopes",
            "token_ttl_seconds",
            "quota_requests",
            "quota_per",
            DPOP,
        ]
        .map(str::to_owned),
    );
    form.only(&names.iter().map(String::as_str).collect::<Vec<_>>())?;
    let group = form.one("group")?;
    let quota = number(form, "quota_requests", "The quota")?
        .map(|r| json!({"requests": r, "per": form.one("quota_per").unwrap_or("minute")}));
    Ok(json!({
        "name": form.one("name")?,
        "status": form.one("status")?,
        "group_id": if group.is_empty() { Value::Null } else { json!(group) },
        "scopes": form.one("scopes")?.split_whitespace().collect::<Vec<_>>(),
        "products": products,
        "sandboxes": sandboxes,
        "token_ttl_seconds": number(form, "token_ttl_seconds", "The token lifetime")?,
        "quota": quota,
        DPOP: checkbox(form, DPOP)?,
    }))
}

pub(super) async fn edit(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let answer = match patch_of(&form) {
        Ok(body) => ctx
            .api()
            .patch(&app_path(&cid), body)
            .await
            .map_err(PageError::from),
        Err(e) => Err(e),
    };
    match answer {
        Ok(_) => Ok(see_other(&app_page(&cid))),
        Err(e) => {
            let (app, org, groups) = load_all(&ctx, &cid).await?;
            Ok(respond(
                e.status,
                edit_form(
                    &app.client_id,
                    &Typed::as_typed(&app, &form),
                    &app.name,
                    &org,
                    &groups,
                    &csrf,
                    Some(&e.detail),
                ),
            ))
        }
    }
}
