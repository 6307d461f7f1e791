//! Creating, editing and deleting the records an organization holds in collections of
//! its own — its resources ([`super::resources`]) and permission groups
//! ([`super::groups`]). The handlers here are the same for both; what differs (the
//! record's type, its form, the body the admin API takes) is each noun's [`Kind`]. Each
//! form sends what the admin API takes (`/admin/v1/orgs/{org}/resources`, `…/groups`) and
//! shows its refusal with the values as typed; who may do what is the admin API's
//! decision, never this module's.

use super::api::{ApiError, Ignored, seg};
use super::common::{Confirm, Page, confirm, see_other};
use super::orgs::load_org;
use super::view::{PageError, respond};
use super::{ConsoleForm, Ctx, Signed};
use crate::admin::Page as Listing;
use crate::admin::orgs::OrgBody;
use axum::extract::Path;
use axum::http::StatusCode;
use maud::Markup;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What differs between an org's resources and its permission groups.
pub(super) trait Kind: Send + Sync + 'static {
    /// The admin API's collection under the org (`resources`, `groups`), and the
    /// console's tab.
    const WHAT: &'static str;
    /// The tab's name.
    const LABEL: &'static str;
    const DELETE_TITLE: &'static str;
    const DELETE_BUTTON: &'static str;
    /// One record as the admin API answers it.
    type Record: DeserializeOwned + Send + Sync;
    /// What the form shows and sends: a stored record's values, or what was typed.
    type Fields: Send + Sync;

    /// The new form's values, for the org.
    fn blank(org: &OrgBody) -> Self::Fields;
    fn stored(record: &Self::Record) -> Self::Fields;
    /// The form's fields (refusing any other).
    fn read(form: &ConsoleForm) -> Result<Self::Fields, PageError>;
    /// The JSON the admin API takes.
    fn body(fields: &Self::Fields) -> Value;
    fn form(
        org: &OrgBody,
        csrf: &str,
        fields: &Self::Fields,
        editing: Option<&str>,
        error: Option<&str>,
    ) -> Markup;
    fn delete_text(record: &Self::Record) -> Markup;
}

/// The tab that lists an org's records of kind `K`.
fn tab<K: Kind>(org: &str) -> String {
    org_page(org, &format!("/{}", K::WHAT))
}

fn collection<K: Kind>(org: &str) -> String {
    format!("/admin/v1/orgs/{}/{}", seg(org), K::WHAT)
}

fn record_path<K: Kind>(org: &str, id: &str) -> String {
    format!("{}/{}", collection::<K>(org), seg(id))
}

/// `/console/orgs/{org}` and the rest of the address of one of its pages.
pub(super) fn org_page(org: &str, tab: &str) -> String {
    format!("/console/orgs/{}{tab}", seg(org))
}

/// An org's records of kind `K` (the first 100).
pub(super) async fn list<K: Kind>(ctx: &Ctx, org: &str) -> Result<Listing<K::Record>, ApiError> {
    ctx.api()
        .get(&format!("{}?limit=100", collection::<K>(org)))
        .await
}

/// The tab's page: the CSRF token, the org, its records.
pub(super) async fn tab_page<K: Kind>(
    ctx: &Ctx,
    org: &str,
) -> Result<(String, OrgBody, Vec<K::Record>), PageError> {
    let o = load_org(ctx, org).await?;
    let list = list::<K>(ctx, org).await?;
    Ok((ctx.csrf().unwrap_or_default(), o, list.items))
}

pub(super) async fn new_page<K: Kind>(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let o = load_org(&ctx, &org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        K::form(&o, &csrf, &K::blank(&o), None, None),
    ))
}

pub(super) async fn create<K: Kind>(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    form: ConsoleForm,
) -> Page {
    save::<K>(&ctx, &org, form, None).await
}

/// A record's form sent: create it (`editing` is `None`) or change it, then back to the
/// tab; refused, the form again with the admin API's detail and the values as typed.
async fn save<K: Kind>(ctx: &Ctx, org: &str, form: ConsoleForm, editing: Option<&str>) -> Page {
    ctx.check_csrf(&form)?;
    let typed = K::read(&form)?;
    let body = K::body(&typed);
    let answer = match editing {
        None => ctx
            .api()
            .post::<Ignored>(&collection::<K>(org), Some(body))
            .await
            .map(drop),
        Some(id) => ctx.api().patch(&record_path::<K>(org, id), body).await,
    };
    let Err(e) = answer else {
        return Ok(see_other(&tab::<K>(org)));
    };
    let o = load_org(ctx, org).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        e.status,
        K::form(&o, &csrf, &typed, editing, Some(&e.detail)),
    ))
}

pub(super) async fn edit_page<K: Kind>(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
) -> Page {
    let o = load_org(&ctx, &org).await?;
    let record: K::Record = ctx
        .api()
        .get(&record_path::<K>(&org, &id))
        .await
        .map_err(|e| PageError::from(e).back(tab::<K>(&org), K::LABEL))?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(respond(
        StatusCode::OK,
        K::form(&o, &csrf, &K::stored(&record), Some(&id), None),
    ))
}

pub(super) async fn edit<K: Kind>(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    save::<K>(&ctx, &org, form, Some(&id)).await
}

pub(super) async fn delete_page<K: Kind>(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
) -> Page {
    let record: K::Record = ctx.api().get(&record_path::<K>(&org, &id)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: K::DELETE_TITLE,
        action: format!("{}/{}/delete", tab::<K>(&org), seg(&id)),
        back: (tab::<K>(&org), K::LABEL),
        text: K::delete_text(&record),
        button: K::DELETE_BUTTON,
    }))
}

pub(super) async fn delete<K: Kind>(
    Signed(ctx): Signed,
    Path((org, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&record_path::<K>(&org, &id))
        .await
        .map_err(|e| PageError::from(e).back(tab::<K>(&org), K::LABEL))?;
    Ok(see_other(&tab::<K>(&org)))
}

/// Space- or comma-separated words of a text field.
pub(super) fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The links of a record's row in its tab's table.
pub(super) fn row_actions<K: Kind>(org: &str, id: &str) -> Markup {
    let base = format!("{}/{}", tab::<K>(org), seg(id));
    maud::html! {
        a href={(base) "/edit"} { "Edit" } " · "
        a href={(base) "/delete"} { "Delete" }
    }
}
