//! Usage on the console: an organization's (on its overview) and an application's (on its
//! page), read from `GET /admin/v1/orgs/{org_id}/usage` and `GET
//! /admin/v1/apps/{client_id}/usage` as the signed-in user. For a range (the last hour,
//! day, week or month): gateway checks allowed and refused by code, and token requests
//! issued and refused by OAuth error, each as a chart ([`super::chart`]) with the same
//! numbers as a table; on the overview the applications refused most, on an app's page
//! its refusal codes with what to do about each (the catalogue's advice, and the last
//! refusal the audit trail recorded). And the CSV download: the admin API's own CSV,
//! passed on.

use super::api::{ApiError, seg};
use super::apps::app_page;
use super::chart::{self, Bars, Layer, OTHER, PASSED, REFUSALS, thousands};
use super::common::Page;
use super::view::{PageError, alert, time};
use super::{Ctx, Signed};
use crate::admin::apps::AppBody;
use crate::admin::audit::{AuditBody, AuditPage};
use crate::admin::usage::{AppUsageBody, SubjectBody, UsageBody};
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use maud::{Markup, html};
use portcullis_core::gateway::Code;
use portcullis_core::usage::is_refusal;
use std::collections::{BTreeMap, HashMap};

/// The ranges a usage section offers, with the bucket each is drawn in: past 48 hours
/// the buckets are whole hours, which the admin API answers from its hourly counts
/// (minute counts are kept 48 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Range {
    Hour,
    Day,
    Week,
    Month,
}

impl Range {
    const ALL: [Range; 4] = [Range::Hour, Range::Day, Range::Week, Range::Month];

    /// Its value in `?range=`.
    fn key(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Hour => "Last hour",
            Range::Day => "Last 24 hours",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
        }
    }

    /// `in the last 24 hours`, for sentences.
    fn words(self) -> &'static str {
        match self {
            Range::Hour => "in the last hour",
            Range::Day => "in the last 24 hours",
            Range::Week => "in the last 7 days",
            Range::Month => "in the last 30 days",
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Range::Hour => 3600,
            Range::Day => 86_400,
            Range::Week => 7 * 86_400,
            Range::Month => 30 * 86_400,
        }
    }

    /// Seconds per bucket: a multiple of 3600 for the ranges past 48 hours.
    fn step(self) -> i64 {
        match self {
            Range::Hour => 60,
            Range::Day => 900,
            Range::Week => 3600,
            Range::Month => 86_400,
        }
    }

    /// The page's query: nothing (the last 24 hours) or `range=` one of the keys; any
    /// other parameter or value is a 400 that says what it takes.
    pub(super) fn parse(query: Option<&str>) -> Result<Range, PageError> {
        let mut range = Range::Day;
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if k != "range" {
                return Err(PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "This page takes only 'range' (1h, 24h, 7d or 30d), not '{}'.",
                        k.chars().take(40).collect::<String>()
                    ),
                ));
            }
            range = Range::ALL
                .into_iter()
                .find(|r| r.key() == v)
                .ok_or_else(|| {
                    PageError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "The range must be 1h, 24h, 7d or 30d, not '{}'.",
                            v.chars().take(40).collect::<String>()
                        ),
                    )
                })?;
        }
        Ok(range)
    }

    /// The admin API's query for this range ending `now`, when the server keeps minute
    /// counts for `minutes_kept` seconds: a range reaching back past them is read by the
    /// hour (a server told to keep minutes for less than a day draws its day by the hour).
    fn api_query(self, now: i64, minutes_kept: i64) -> String {
        let step = if self.seconds() > minutes_kept {
            up_to_hours(self.step())
        } else {
            self.step()
        };
        format!("from={}&step={step}", now - self.seconds())
    }
}

/// `step` rounded up to whole hours.
fn up_to_hours(step: i64) -> i64 {
    (step + 3599) / 3600 * 3600
}

/// How long this server keeps its minute counts, in seconds.
fn minutes_kept(ctx: &Ctx) -> i64 {
    i64::try_from(ctx.state.usage.config.retention.as_secs()).unwrap_or(i64::MAX)
}

impl Range {
    /// The admin API's query for this range ending now, on this server.
    fn query(self, ctx: &Ctx) -> String {
        self.api_query(ctx.state.now(), minutes_kept(ctx))
    }
}

/// Where a usage section is and what it reads.
pub(super) struct Section<'a> {
    /// The page's address (without query): the range links lead back to it.
    pub here: &'a str,
    /// The console's CSV route of the same usage.
    pub csv: String,
    /// The admin API's usage path (without query).
    pub api: String,
    pub range: Range,
}

impl Section<'_> {
    async fn read(&self, ctx: &Ctx) -> Result<UsageBody, ApiError> {
        let path = format!("{}?{}", self.api, self.range.query(ctx));
        ctx.api().get(&path).await
    }
}

/// Per outcome, a value per bucket, for the series whose subject `keep` takes.
fn by_outcome(
    body: &UsageBody,
    buckets: usize,
    keep: impl Fn(&SubjectBody) -> bool,
) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in body.series.iter().filter(|s| keep(&s.subject)) {
        let values = out
            .entry(s.outcome.clone())
            .or_insert_with(|| vec![0; buckets]);
        for &(t, count) in &s.points {
            let i = (t - body.from).checked_div(body.step).unwrap_or(-1);
            if let Some(v) = usize::try_from(i).ok().and_then(|i| values.get_mut(i)) {
                *v = v.saturating_add(count);
            }
        }
    }
    out
}

/// A chart's layers: `passed` first (at the bottom, even when nothing passed), then the
/// other outcomes most frequent first, each in its colour of the palette; those past the
/// palette are one layer, `other`.
fn layers(
    mut outcomes: BTreeMap<String, Vec<u64>>,
    buckets: usize,
    passed: &str,
    other: &str,
) -> Vec<Layer> {
    let mut layers = vec![Layer {
        label: passed.to_owned(),
        colour: PASSED,
        values: outcomes.remove(passed).unwrap_or_else(|| vec![0; buckets]),
    }];
    let mut rest: Vec<Layer> = outcomes
        .into_iter()
        .map(|(label, values)| Layer {
            label,
            colour: OTHER,
            values,
        })
        .collect();
    rest.sort_by(|a, b| {
        b.total()
            .cmp(&a.total())
            .then_with(|| a.label.cmp(&b.label))
    });
    let folded = rest.split_off(rest.len().min(REFUSALS.len()));
    for (l, colour) in rest.iter_mut().zip(REFUSALS) {
        l.colour = colour;
    }
    layers.extend(rest);
    if !folded.is_empty() {
        let mut values = vec![0u64; buckets];
        for l in &folded {
            for (v, x) in values.iter_mut().zip(&l.values) {
                *v = v.saturating_add(*x);
            }
        }
        layers.push(Layer {
            label: other.to_owned(),
            colour: OTHER,
            values,
        });
    }
    layers
}

/// The two charts of a usage answer: gateway checks and token requests.
fn charts(body: &UsageBody, whose: &str) -> (Bars, Bars) {
    let buckets = usize::try_from((body.to - body.from) / body.step.max(1)).unwrap_or(0);
    let gateway = by_outcome(body, buckets, |s| matches!(s, SubjectBody::Resource(_)));
    let tokens = by_outcome(body, buckets, |s| matches!(s, SubjectBody::Grant(_)));
    let bars = |id, title: String, layers| Bars {
        id,
        title,
        from: body.from,
        step: body.step,
        buckets,
        layers,
    };
    (
        bars(
            "gateway",
            format!("Gateway checks of {whose}, allowed and refused by code"),
            layers(gateway, buckets, "allowed", "other codes"),
        ),
        bars(
            "tokens",
            format!("Token requests of {whose}, issued and refused by OAuth error"),
            layers(tokens, buckets, "issued", "other errors"),
        ),
    )
}

/// Introspection counts by outcome.
fn introspections(body: &UsageBody) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for s in &body.series {
        if s.subject == SubjectBody::Introspection {
            *out.entry(s.outcome.as_str()).or_insert(0) += s.total;
        }
    }
    out
}

/// The range links: plain links to the same page, the current one marked.
fn picker(here: &str, range: Range) -> Markup {
    html! {
        nav.ranges aria-label="Usage range" {
            ul {
                @for r in Range::ALL {
                    li { a href={(here) "?range=" (r.key()) "#usage"} aria-current=[(r == range).then_some("true")] { (r.label()) } }
                }
            }
        }
    }
}

/// What to show when nothing was counted in the range.
fn empty(ctx: &Ctx, range: Range) -> Markup {
    html! {
        div.empty #usage-empty {
            @if ctx.state.usage.enabled() {
                p { "No requests counted " (range.words()) "." }
                p { "Gateway checks, token requests and introspections are counted as they happen; counts appear here within a few seconds of the first requests." }
            } @else {
                p { "Usage analytics are off on this server: nothing is counted." }
                p { "An operator turned counting off with " code { "--usage-analytics false" } "; without that option every request is counted." }
            }
        }
    }
}

/// The charts and tables of `body`, or the empty state; `extra` comes between the
/// charts and the download link (the top failing apps, the top refusal codes).
fn body_markup(ctx: &Ctx, s: &Section<'_>, body: &UsageBody, whose: &str, extra: Markup) -> Markup {
    let (gateway, tokens) = charts(body, whose);
    let intro = introspections(body);
    let counted = !body.series.is_empty();
    html! {
        @if !counted {
            (empty(ctx, s.range))
        } @else {
            @if !ctx.state.usage.enabled() {
                p.notice role="status" { "Usage analytics are off on this server now: what is shown was counted before." }
            }
            p.muted { "Times in UTC, one bar per " (chart::step_words(body.step)) " (from the server's " (body.resolution) " counts). Refusals are stacked on the allowed or issued requests, by code." }
            div.usage-charts {
                @for (bars, heading, none) in [(&gateway, "Gateway checks", "No gateway checks "), (&tokens, "Token requests", "No token requests ")] {
                    div {
                        h3 { (heading) }
                        @if bars.total() == 0 {
                            p.muted id={(bars.id) "-none"} { (none) (s.range.words()) "." }
                        } @else {
                            (chart::chart(bars))
                            (chart::table(bars))
                        }
                    }
                }
            }
            @if !intro.is_empty() {
                h3 { "Introspection" }
                p #introspection {
                    @for (i, (outcome, n)) in intro.iter().enumerate() {
                        @if i > 0 { ", " }
                        (thousands(u128::from(*n))) " " code { (outcome) }
                    }
                    "."
                }
            }
            (extra)
        }
        p.actions { a.button #usage-csv href={(s.csv) "?range=" (s.range.key())} download { "Download CSV" } }
    }
}

/// The usage section of `s` from what was read, with `extra`; a refusal of the admin API
/// is shown in the section (the rest of the page still works).
fn section(
    ctx: &Ctx,
    s: &Section<'_>,
    read: &Result<UsageBody, ApiError>,
    whose: &str,
    extra: Markup,
) -> Markup {
    html! {
        section #usage aria-labelledby="usage-h" {
            h2 #usage-h { "Usage" }
            (picker(s.here, s.range))
            @match read {
                Ok(body) => { (body_markup(ctx, s, body, whose, extra)) }
                Err(e) => { (alert(&e.detail)) }
            }
        }
    }
}

// ---- The organization's overview ------------------------------------------------------

/// Applications in the top failing list, at most.
const TOP_APPS: usize = 10;

/// The org overview's usage section: its charts, and the applications refused most
/// (named, with their pages; `apps` are the org's listed apps, others are read by id).
pub(super) async fn org_section(ctx: &Ctx, org: &str, apps: &[AppBody], range: Range) -> Markup {
    let o_seg = seg(org);
    let here = format!("/console/orgs/{o_seg}/overview");
    let s = Section {
        here: &here,
        csv: format!("/console/orgs/{o_seg}/usage.csv"),
        api: format!("/admin/v1/orgs/{o_seg}/usage"),
        range,
    };
    let read = s.read(ctx).await;
    let extra = match &read {
        Ok(body) => failing_apps(ctx, body, apps, range).await,
        Err(_) => html! {},
    };
    section(ctx, &s, &read, "the organization", extra)
}

/// The most refused applications of an org's usage, up to [`TOP_APPS`].
async fn failing_apps(ctx: &Ctx, body: &UsageBody, listed: &[AppBody], range: Range) -> Markup {
    let failing: Vec<&AppUsageBody> = body
        .apps
        .iter()
        .flatten()
        .filter(|a| a.refused > 0)
        .take(TOP_APPS)
        .collect();
    let mut names: HashMap<String, Option<String>> = listed
        .iter()
        .map(|a| (a.client_id.clone(), Some(a.name.clone())))
        .collect();
    for a in &failing {
        if let Some(cid) = &a.client_id
            && !names.contains_key(cid)
        {
            // Past the first page of apps, or deleted since (its counts stay).
            let app: Option<AppBody> = ctx.api().get(&super::apps::app_path(cid)).await.ok();
            names.insert(cid.clone(), app.map(|a| a.name));
        }
    }
    html! {
        h3 { "Applications refused most" }
        @if failing.is_empty() {
            p.muted #failing-none { "No application was refused " (range.words()) "." }
        } @else {
            div.scroll { table #failing-apps {
                caption.sr { "Applications refused most " (range.words()) }
                thead { tr { th scope="col" { "Application" } th.n scope="col" { "Refused" } th.n scope="col" { "Requests" } th scope="col" { "Most frequent" } } }
                tbody { @for a in &failing { tr {
                    td {
                        @match &a.client_id {
                            Some(cid) => {
                                @match names.get(cid).cloned().flatten() {
                                    Some(name) => { a.who href=(app_page(cid)) { (name) } }
                                    None => { span.who { "deleted application" } }
                                }
                                br; code.id.small { (cid) }
                            }
                            None => { span.who { "no known application" } br; small { "API keys the server does not have, or none" } }
                        }
                    }
                    td.n { (thousands(u128::from(a.refused))) }
                    td.n { (thousands(u128::from(a.requests))) }
                    td { @if let Some((code, n)) = top_refusal(&a.totals) { code { (code) } " " span.muted { "(" (thousands(u128::from(n))) ")" } } }
                } } }
            } }
        }
    }
}

/// The most frequent refusal of some totals by outcome.
fn top_refusal(totals: &BTreeMap<String, u64>) -> Option<(&str, u64)> {
    totals
        .iter()
        .filter(|(o, n)| is_refusal(o) && **n > 0)
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(o, n)| (o.as_str(), *n))
}

// ---- An application's page ------------------------------------------------------------

/// What to do about a refusal: the gateway catalogue's advice for its codes, the OAuth
/// errors' for the token endpoint's.
pub(super) fn fix(outcome: &str) -> Option<&'static str> {
    Code::from_text(outcome)
        .map(Code::fix)
        .or_else(|| portcullis_core::oauth_error::fix(outcome))
}

/// Where an outcome was counted, in words: `the gateway`, `the token endpoint`, …
fn surfaces(body: &UsageBody, outcome: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in body.series.iter().filter(|s| s.outcome == outcome) {
        let w = match s.subject {
            SubjectBody::Resource(_) => "gateway checks",
            SubjectBody::Grant(_) => "token requests",
            SubjectBody::Introspection => "introspections",
        };
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out.join(" and ")
}

/// The app page's usage section: its charts, and its refusal codes, each with what to do
/// about it and the last refusal the audit trail recorded (for those who may read it).
pub(super) async fn app_section(ctx: &Ctx, app: &AppBody, range: Range) -> Markup {
    let cid = &app.client_id;
    let here = app_page(cid);
    let s = Section {
        here: &here,
        csv: format!("{here}/usage.csv"),
        api: format!("{}/usage", super::apps::app_path(cid)),
        range,
    };
    let read = s.read(ctx).await;
    let extra = match &read {
        Ok(body) => refusal_codes(ctx, app, body).await,
        Err(_) => html! {},
    };
    section(ctx, &s, &read, "this application", extra)
}

/// An app's refusals most frequent first, with their advice and last recorded example.
async fn refusal_codes(ctx: &Ctx, app: &AppBody, body: &UsageBody) -> Markup {
    let mut codes: Vec<(&str, u64)> = body
        .totals
        .iter()
        .filter(|(o, n)| is_refusal(o) && **n > 0)
        .map(|(o, n)| (o.as_str(), *n))
        .collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    if codes.is_empty() {
        return html! { h3 { "Refusals" } p.muted #codes-none { "None: every request was allowed or issued." } };
    }
    let recorded = recorded_refusals(ctx, app, body.from).await;
    html! {
        h3 { "Refusals and what to do" }
        ol.codes #refusal-codes {
            @for (code, n) in &codes {
                li data-code=(code) {
                    p.code-head { code { (code) } " " strong { (thousands(u128::from(*n))) } " refused " span.muted { "(" (surfaces(body, code)) ")" } }
                    p.fix { (fix(code).unwrap_or("This server does not describe this code; the refusal's own detail says what was wrong.")) }
                    @if let Some(e) = recorded.get(*code) {
                        p.recorded.muted {
                            "Last recorded " (time(e.at))
                            @if !e.target.is_empty() { " on " code { (e.target) } }
                            @if let Some(a) = &e.address { " from " (a) }
                            @if let Some(d) = e.details.get("detail").and_then(|d| d.as_str()) { ": " span.detail { (d) } }
                            @else { "." }
                        }
                    }
                }
            }
        }
    }
}

/// The newest failed authentication the audit trail recorded for the app since `since`,
/// per refusal code; empty for those who may not read the org's audit trail.
async fn recorded_refusals(ctx: &Ctx, app: &AppBody, since: i64) -> HashMap<String, AuditBody> {
    let actor = format!("client:{}", app.client_id);
    // Built before the await: the serializer is not `Send`.
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("org", &app.org_id)
        .append_pair("action", crate::audit::AUTH_FAILED)
        .append_pair("actor", &actor)
        .append_pair("since", &since.to_string())
        .append_pair("order", "desc")
        .append_pair("limit", "100")
        .finish();
    let page: Option<AuditPage> = ctx
        .api()
        .get(&format!("/admin/v1/audit?{query}"))
        .await
        .ok();
    let mut out = HashMap::new();
    for e in page.map(|p| p.entries).unwrap_or_default() {
        if let Some(code) = e.details.get("code").and_then(|c| c.as_str()) {
            out.entry(code.to_owned()).or_insert(e);
        }
    }
    out
}

// ---- CSV ------------------------------------------------------------------------------

/// `GET /console/orgs/{org}/usage.csv?range=…`: the admin API's CSV of the org's usage.
pub(super) async fn org_csv(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> Page {
    csv(&ctx, &format!("/admin/v1/orgs/{}/usage", seg(&org)), q).await
}

/// `GET /console/apps/{cid}/usage.csv?range=…`: the admin API's CSV of the app's usage.
pub(super) async fn app_csv(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    RawQuery(q): RawQuery,
) -> Page {
    csv(&ctx, &format!("{}/usage", super::apps::app_path(&cid)), q).await
}

/// The admin API's CSV at `path` for the range in `query`, as the signed-in user, passed
/// on with its `Content-Type` and `Content-Disposition`.
async fn csv(ctx: &Ctx, path: &str, query: Option<String>) -> Page {
    let range = Range::parse(query.as_deref())?;
    let path = format!("{path}?{}&format=csv", range.query(ctx));
    Ok(ctx.api().download(&path).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::usage::SeriesBody;

    #[test]
    fn a_range_is_one_of_four_and_anything_else_is_a_400() {
        assert_eq!(Range::parse(None).unwrap(), Range::Day);
        assert_eq!(Range::parse(Some("")).unwrap(), Range::Day);
        assert_eq!(Range::parse(Some("range=7d")).unwrap(), Range::Week);
        for bad in [
            "range=2d",
            "range=",
            "from=0",
            "range=1h&step=60",
            "range=%FF",
        ] {
            let e = Range::parse(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        for r in Range::ALL {
            // Past 48 hours the buckets are whole hours (the hourly counts answer).
            assert!(r.seconds() <= 48 * 3600 || r.step() % 3600 == 0, "{r:?}");
            assert_eq!(r.step() % 60, 0);
            assert!(r.seconds() / r.step() < crate::admin::usage::MAX_BUCKETS);
            assert_eq!(
                Range::parse(Some(&format!("range={}", r.key()))).unwrap(),
                r
            );
        }
    }

    #[test]
    fn a_range_past_the_minutes_kept_is_read_by_the_hour() {
        let day = 48 * 3600;
        assert_eq!(Range::Day.api_query(100_000, day), "from=13600&step=900");
        assert_eq!(Range::Day.api_query(100_000, 3600), "from=13600&step=3600");
        assert_eq!(Range::Hour.api_query(100_000, 600), "from=96400&step=3600");
        assert_eq!(
            Range::Month.api_query(3_000_000, 60),
            "from=408000&step=86400"
        );
    }

    fn series(subject: SubjectBody, outcome: &str, points: &[(i64, u64)]) -> SeriesBody {
        SeriesBody {
            subject,
            outcome: outcome.into(),
            points: points.to_vec(),
            total: points.iter().map(|p| p.1).sum(),
        }
    }

    #[test]
    fn series_become_stacked_layers_by_bucket_allowed_first() {
        let r = |id: &str| SubjectBody::Resource(Some(id.into()));
        let mut totals = BTreeMap::new();
        for (o, n) in [
            ("allowed", 5),
            ("403003", 2),
            ("EXEG-0503-401", 4),
            ("issued", 1),
        ] {
            totals.insert(o.to_owned(), n);
        }
        let body = UsageBody {
            from: 600,
            to: 900,
            step: 60,
            resolution: "minute".into(),
            kept_from: 0,
            counted: true,
            series: vec![
                series(
                    SubjectBody::Grant("client_credentials".into()),
                    "issued",
                    &[(660, 1)],
                ),
                series(r("res_a"), "403003", &[(600, 2)]),
                series(r("res_a"), "allowed", &[(600, 1), (840, 2)]),
                series(r("res_b"), "allowed", &[(840, 2)]),
                series(SubjectBody::Resource(None), "EXEG-0503-401", &[(720, 4)]),
            ],
            totals,
            apps: None,
        };
        let (gateway, tokens) = charts(&body, "x");
        assert_eq!(gateway.buckets, 5);
        let l: Vec<(&str, &[u64])> = gateway
            .layers
            .iter()
            .map(|l| (l.label.as_str(), l.values.as_slice()))
            .collect();
        assert_eq!(
            l,
            vec![
                ("allowed", &[1, 0, 0, 0, 4][..]),
                ("EXEG-0503-401", &[0, 0, 4, 0, 0][..]),
                ("403003", &[2, 0, 0, 0, 0][..]),
            ]
        );
        assert_eq!(gateway.layers[1].colour, REFUSALS[0]);
        assert_eq!(tokens.layers.len(), 1);
        assert_eq!(tokens.layers[0].values, vec![0, 1, 0, 0, 0]);
        assert_eq!(surfaces(&body, "allowed"), "gateway checks");
    }

    #[test]
    fn codes_past_the_palette_are_one_layer() {
        let mut outcomes = BTreeMap::new();
        outcomes.insert("allowed".to_owned(), vec![1]);
        for i in 0..REFUSALS.len() + 3 {
            outcomes.insert(format!("code-{i:02}"), vec![100 - i as u64]);
        }
        let l = layers(outcomes, 1, "allowed", "other codes");
        assert_eq!(l.len(), 1 + REFUSALS.len() + 1);
        let last = l.last().unwrap();
        assert_eq!(last.label, "other codes");
        assert_eq!(last.colour, OTHER);
        let folded: u64 = (REFUSALS.len()..REFUSALS.len() + 3)
            .map(|i| 100 - i as u64)
            .sum();
        assert_eq!(last.values, vec![folded]);
        assert_eq!(l[1].label, "code-00");
    }

    #[test]
    fn every_refusal_the_server_counts_has_advice() {
        for c in Code::ALL {
            assert_eq!(fix(c.code()), Some(c.fix()));
        }
        for e in [
            "invalid_client",
            "invalid_grant",
            "invalid_scope",
            "unauthorized_client",
            "invalid_request",
            "unsupported_grant_type",
        ] {
            assert!(fix(e).is_some(), "{e}");
        }
        assert_eq!(fix("allowed"), None);
    }
}
