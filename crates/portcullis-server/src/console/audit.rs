//! An organization's audit log (`/console/orgs/{org}/audit`): `GET /admin/v1/audit` for
//! that org, newest first, with its filters (action, actor, target, outcome, a date
//! range) and its cursor ("Older entries"). Only the org's admins can read it; anyone
//! else gets the admin API's refusal.

use super::api::seg;
use super::common::{Page, org_frame};
use super::groups::Groups;
use super::orgs::{load_org, org_nav};
use super::resources::Resources;
use super::view::{PageError, respond, time};
use super::{Ctx, Signed};
use crate::admin::audit::{AuditBody, AuditPage};
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use maud::{Markup, html};
use std::collections::HashMap;

/// Entries a page shows.
const PAGE: u32 = 50;

/// The page's query: the filters as typed, and the cursor.
#[derive(Default)]
struct Filters {
    action: String,
    actor: String,
    target: String,
    /// `success`, `failure`, or empty for both.
    outcome: String,
    /// `YYYY-MM-DD`, UTC; from the start of that day.
    from: String,
    /// `YYYY-MM-DD`, UTC; to the end of that day.
    to: String,
    after: String,
}

impl Filters {
    fn parse(query: Option<&str>) -> Result<Self, PageError> {
        let mut f = Filters::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match &*k {
                "action" => &mut f.action,
                "actor" => &mut f.actor,
                "target" => &mut f.target,
                "outcome" => &mut f.outcome,
                "from" => &mut f.from,
                "to" => &mut f.to,
                "after" => &mut f.after,
                other => {
                    return Err(PageError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "The audit page has no filter '{}'.",
                            other.chars().take(40).collect::<String>()
                        ),
                    ));
                }
            };
            *slot = v.trim().chars().take(300).collect();
        }
        Ok(f)
    }

    /// The filters (without the cursor) as a query string.
    fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }

    fn any(&self) -> bool {
        !self.query().is_empty()
    }
}

/// Unix seconds at the start of a `YYYY-MM-DD` day (UTC).
fn day_start(day: &str, what: &str) -> Result<i64, PageError> {
    time::Date::parse(
        day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map(|d| d.midnight().assume_utc().unix_timestamp())
    .map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            format!("The {what} date must look like 2026-12-01."),
        )
    })
}

/// The admin API's query for this org and these filters.
fn api_query(org: &str, f: &Filters) -> Result<String, PageError> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("org", org);
    q.append_pair("limit", &PAGE.to_string());
    q.append_pair("order", "desc");
    for (k, v) in [
        ("action", &f.action),
        ("actor", &f.actor),
        ("target", &f.target),
        ("outcome", &f.outcome),
        ("after", &f.after),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    if !f.from.is_empty() {
        q.append_pair("since", &day_start(&f.from, "'from'")?.to_string());
    }
    if !f.to.is_empty() {
        q.append_pair("until", &(day_start(&f.to, "'to'")? + 86_400).to_string());
    }
    Ok(q.finish())
}

fn filter_form(here: &str, f: &Filters) -> Markup {
    html! {
        form.filters method="get" action=(here) role="search" aria-label="Filter the audit log" {
            div.grid {
                div { label for="f-action" { "Action" }
                    input #f-action type="text" name="action" value=(f.action) placeholder="invitations.create" autocapitalize="none" spellcheck="false"; }
                div { label for="f-actor" { "Actor" }
                    input #f-actor type="text" name="actor" value=(f.actor) placeholder="user:usr_…" autocapitalize="none" spellcheck="false"; }
                div { label for="f-target" { "Target" }
                    input #f-target type="text" name="target" value=(f.target) autocapitalize="none" spellcheck="false"; }
                div { label for="f-outcome" { "Outcome" }
                    select #f-outcome name="outcome" {
                        @for (v, label) in [("", "any"), ("success", "success"), ("failure", "failure")] {
                            option value=(v) selected[f.outcome == v] { (label) }
                        }
                    } }
                div { label for="f-from" { "From (UTC)" } input #f-from type="date" name="from" value=(f.from); }
                div { label for="f-to" { "To (UTC)" } input #f-to type="date" name="to" value=(f.to); }
            }
            p.actions {
                button.primary type="submit" { "Filter" }
                @if f.any() { a href=(here) { "Clear filters" } }
            }
        }
    }
}

/// Who and what the ids of the audit trail are, as far as this user can see: users by
/// email (and name), apps, resources and groups by name.
async fn names(ctx: &Ctx, org: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    if let Ok(users) = super::users::all_users(ctx).await {
        for u in users {
            let label = match (u.name.as_str(), u.email.as_str()) {
                ("", email) => email.to_owned(),
                (name, email) => format!("{name} <{email}>"),
            };
            out.insert(format!("user:{}", u.id), label.clone());
            out.insert(u.id, label);
        }
    }
    if let Ok(apps) = super::apps::org_apps_of(ctx, org).await {
        for a in apps.items {
            let cid = a.client_id;
            let label = format!("app {}", a.name);
            for key in [format!("app:{cid}"), format!("client:{cid}"), cid] {
                out.insert(key, label.clone());
            }
        }
    }
    if let Ok(list) = super::manage::list::<Resources>(ctx, org).await {
        for r in list.items {
            out.insert(r.id, format!("resource {}", r.name));
        }
    }
    if let Ok(list) = super::manage::list::<Groups>(ctx, org).await {
        for g in list.items {
            out.insert(g.id, format!("group {}", g.name));
        }
    }
    out.insert("cli".into(), "the command line".into());
    out
}

/// A name with its id beneath (still selectable and copyable), or the id alone.
fn named(names: &HashMap<String, String>, id: &str) -> Markup {
    html! {
        @if let Some(n) = names.get(id) {
            span.who { (n) } br; code.id.small { (id) }
        } @else if let Some(rest) = id.strip_prefix("admin-token:") {
            span.who { "bootstrap admin token" } br; code.id.small { (rest) }
        } @else {
            code.id { (id) }
        }
    }
}

fn entries_table(entries: &[AuditBody], names: &HashMap<String, String>) -> Markup {
    html! {
        div.scroll { table #audit {
            caption.sr { "Audit entries, newest first" }
            thead { tr { th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" } th scope="col" { "Address" } } }
            tbody { @for e in entries { tr {
                td.nowrap { (time(e.at)) }
                td { (named(names, &e.actor)) }
                td { code { (e.action) } }
                td { @if e.target.is_empty() { span.muted { "—" } } @else { (named(names, &e.target)) } }
                td { @if e.outcome == "success" { "success" } @else { strong { (e.outcome) } } }
                td { (e.address.as_deref().unwrap_or("")) }
            } } }
        } }
    }
}

pub(super) async fn audit_page(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let f = Filters::parse(q.as_deref())?;
    let o = load_org(&ctx, &org).await?;
    let here = format!("/console/orgs/{}/audit", seg(&org));
    let page = read(&ctx, &org, &f).await;
    let nav = org_nav(&ctx, &org, "/audit").await;
    let names = match &page {
        Ok((entries, _)) if !entries.is_empty() => names(&ctx, &org).await,
        _ => HashMap::new(),
    };
    let body = html! {
        (nav)
        p { "Who did what in this organization, newest first: every change made through the admin API or this console, and every refused sign-in." }
        (filter_form(&here, &f))
        @match &page {
            Err(e) => { (super::view::alert(&e.detail)) }
            Ok((entries, _)) if entries.is_empty() => {
                div.empty { p { @if f.any() || !f.after.is_empty() { "No entries match these filters." } @else { "No entries yet." } } }
            }
            Ok((entries, next)) => {
                (entries_table(entries, &names))
                p.actions {
                    @if !f.after.is_empty() {
                        a.button href={(here) "?" (f.query())} { "← Newest entries" }
                    }
                    @if let Some(n) = next {
                        a.button #older href={(here) "?" (f.query()) @if f.any() { "&" } "after=" (seg(n))} { "Older entries →" }
                    }
                }
            }
        }
    };
    let status = match &page {
        Err(e) => e.status,
        Ok(_) => StatusCode::OK,
    };
    let title = format!("Audit log of {}", o.name);
    Ok(respond(status, org_frame(&title, &csrf, &o).render(body)))
}

/// One page of entries and the cursor of the next, or why not.
async fn read(
    ctx: &Ctx,
    org: &str,
    f: &Filters,
) -> Result<(Vec<AuditBody>, Option<String>), PageError> {
    let q = api_query(org, f)?;
    let page: AuditPage = ctx.api().get(&format!("/admin/v1/audit?{q}")).await?;
    Ok((page.entries, page.next))
}
