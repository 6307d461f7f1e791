//! Editing an app: what `PATCH /admin/v1/apps/{client_id}` takes — name, status, scopes
//! or a permission group, products, sandbox access, token lifetime and quota — and the
//! product and sandbox fields the create form shares.

use super::pages::{Page, app_page, app_path, items, load_app, load_org, s, see_other, strings};
use super::view::{Frame, PageError, alert, post_form, respond};
use super::{ConsoleForm, Signed};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::{Map, Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/apps/{cid}/edit", get(edit_page).post(edit))
}

/// The product checkboxes and sandbox selects of an org, with `app`'s choices ticked.
pub fn choice_fields(org: &Value, app: Option<&Value>) -> Markup {
    let products = strings(&org["products"]);
    let sandboxes = strings(&org["sandboxes"]);
    let has_product = |p: &str| app.is_some_and(|a| strings(&a["products"]).iter().any(|x| x == p));
    let access = |sb: &str| app.and_then(|a| a["sandboxes"][sb].as_str()).unwrap_or("");
    html! {
        @if !products.is_empty() {
            fieldset {
                legend { "Products" }
                @for p in &products {
                    label.check { input type="checkbox" name="products" value=(p) checked[has_product(p)]; " " (p) }
                }
            }
        }
        @if !sandboxes.is_empty() {
            fieldset {
                legend { "Sandbox access" }
                @for sb in &sandboxes {
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

/// The field names read, the products, the sandbox access map.
type Choices = (Vec<String>, Vec<String>, Map<String, Value>);

/// The `products` and `sandbox.<name>` fields of a form.
pub fn read_choices(form: &ConsoleForm) -> Result<Choices, PageError> {
    let mut names = vec!["products".to_owned()];
    let mut sandboxes = Map::new();
    let fields: Vec<String> = form
        .names()
        .filter(|k| k.starts_with("sandbox."))
        .map(str::to_owned)
        .collect();
    for f in fields {
        let access = form.one(&f)?;
        if !access.is_empty() {
            sandboxes.insert(f["sandbox.".len()..].to_owned(), json!(access));
        }
        names.push(f);
    }
    let products = form
        .all("products")
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((names, products, sandboxes))
}

/// A number field's text: the stored number, or what was typed (a refused edit keeps
/// the text, even when it is not a number).
fn number_text(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(t) => t.clone(),
        _ => String::new(),
    }
}

/// The stored `app` with what the form says instead: a refused edit is shown again as
/// the person typed it, not as it is stored.
fn as_typed(app: &Value, form: &ConsoleForm) -> Value {
    let mut typed = app.clone();
    let text = |name: &str| form.opt(name).ok().flatten().map(str::to_owned);
    if let Some(n) = text("name") {
        typed["name"] = json!(n);
    }
    if let Some(st) = text("status") {
        typed["status"] = json!(st);
    }
    if let Some(g) = text("group") {
        typed["group_id"] = if g.is_empty() { Value::Null } else { json!(g) };
    }
    if let Some(sc) = text("scopes") {
        typed["scopes"] = json!(sc.split_whitespace().collect::<Vec<_>>());
    }
    if let Ok((_, products, sandboxes)) = read_choices(form) {
        typed["products"] = json!(products);
        typed["sandboxes"] = Value::Object(sandboxes);
    }
    if let Some(t) = text("token_ttl_seconds") {
        typed["token_ttl_seconds"] = json!(t);
    }
    if let Some(q) = text("quota_requests") {
        typed["quota"] = json!({"requests": q, "per": text("quota_per").unwrap_or_default()});
    }
    typed
}

/// The form with `app`'s values; `stored_name` is the app's name as stored (for the
/// breadcrumb, when `app` holds what was typed).
fn edit_form(
    app: &Value,
    stored_name: &str,
    org: &Value,
    groups: &[Value],
    csrf: &str,
    error: Option<&str>,
) -> Markup {
    let cid = s(app, "client_id");
    let group = app["group_id"].as_str().unwrap_or("");
    let quota = &app["quota"];
    let per = quota["per"].as_str().unwrap_or("minute");
    Frame::new("Edit application", Some(csrf))
        .crumb(app_page(cid), stored_name)
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            (post_form(&format!("{}/edit", app_page(cid)), csrf, None, html! {
                div.stack {
                    label for="name" { "Name" }
                    input #name type="text" name="name" value=(s(app, "name")) required maxlength="200";
                    label for="status" { "Status" }
                    select #status name="status" aria-describedby="status-help" {
                        option value="active" selected[s(app, "status") == "active"] { "active" }
                        option value="suspended" selected[s(app, "status") == "suspended"] { "suspended" }
                    }
                    small #status-help { "Suspending ends every token issued so far, for good; reactivating does not bring them back." }
                    label for="group" { "Permission group" }
                    select #group name="group" aria-describedby="group-help" {
                        option value="" selected[group.is_empty()] { "none: the application's own scopes" }
                        @for g in groups {
                            option value=(s(g, "id")) selected[s(g, "id") == group] { (s(g, "name")) }
                        }
                    }
                    small #group-help { "In a group, the application takes the group's scopes." }
                    label for="scopes" { "Own scopes" }
                    input #scopes type="text" name="scopes" value=(strings(&app["scopes"]).join(" ")) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                    small #scopes-help { "Space-separated, like " code { "read write" } "; used when the application is in no group." }
                    (choice_fields(org, Some(app)))
                    label for="ttl" { "Token lifetime (seconds)" }
                    input #ttl type="text" inputmode="numeric" name="token_ttl_seconds" value=(number_text(&app["token_ttl_seconds"])) aria-describedby="ttl-help";
                    small #ttl-help { "Empty for the default (1 hour)." }
                    fieldset {
                        legend { "Gateway quota" }
                        label for="quota" { "Requests" }
                        input #quota type="text" inputmode="numeric" name="quota_requests" value=(number_text(&quota["requests"])) aria-describedby="quota-help";
                        label for="quota-per" { "Per" }
                        select #quota-per name="quota_per" {
                            option value="second" selected[per == "second"] { "second" }
                            option value="minute" selected[per == "minute"] { "minute" }
                        }
                        small #quota-help { "Empty for no quota. Past it the gateway refuses with 429." }
                    }
                    button.primary type="submit" { "Save changes" }
                }
            }))
            p { a href=(app_page(cid)) { "Cancel" } }
        })
}

/// The app, its org and the org's groups.
async fn load_all(ctx: &super::Ctx, cid: &str) -> Result<(Value, Value, Vec<Value>), PageError> {
    let app = load_app(ctx, cid).await?;
    let org = load_org(ctx, s(&app, "org_id")).await?;
    let groups = ctx
        .api()
        .get(&format!(
            "/admin/v1/orgs/{}/groups?limit=100",
            super::api::seg(s(&app, "org_id"))
        ))
        .await
        .map(|g| items(&g).to_vec())
        .unwrap_or_default();
    Ok((app, org, groups))
}

async fn edit_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let (app, org, groups) = load_all(&ctx, &cid).await?;
    Ok(respond(
        StatusCode::OK,
        edit_form(&app, s(&app, "name"), &org, &groups, &csrf, None),
    ))
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
    let (mut names, products, sandboxes) = read_choices(form)?;
    names.extend(
        [
            "name",
            "status",
            "group",
            "scopes",
            "token_ttl_seconds",
            "quota_requests",
            "quota_per",
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
    }))
}

async fn edit(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
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
                    &as_typed(&app, &form),
                    s(&app, "name"),
                    &org,
                    &groups,
                    &csrf,
                    Some(&e.detail),
                ),
            ))
        }
    }
}
