//! `GET /admin/v1/orgs/{org_id}/usage` and `GET /admin/v1/apps/{client_id}/usage`: the
//! usage counts ([`crate::usage`]) of an organization or an app, summed over the cluster,
//! as series by subject and outcome in buckets of `step` seconds.
//!
//! Whoever may read an organization's apps may read its usage and its apps' usage (the
//! same rule as `GET /apps/{client_id}`): anyone else gets the 404 an unknown org or app
//! gets. Counts reach the store within a few seconds of the request (each node flushes
//! its own every 5 s). Minute counts are kept for a short window (48 h by default) and
//! hour counts for a long one (90 days): a read whose `step` is a whole number of hours
//! is answered from the hour counts, any other from the minute counts, and a read by the
//! minute of a time the minute counts no longer cover is refused with the step to use.
//! `format=csv` answers the same series as CSV, a row per bucket.

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::ApiQuery;
use super::orgs::load as load_org;
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::OrgId;
use portcullis_core::usage::{UsageKey, is_refusal};
use portcullis_store::{UsageBucket, UsageFilter, UsageResolution, UsageSubject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Buckets one answer may span, at most.
pub const MAX_BUCKETS: i64 = 2000;
/// The range when the query gives none.
const DEFAULT_RANGE: i64 = 3600;
/// The largest `step`: a year (a larger one can only make one bucket).
const MAX_STEP: i64 = 366 * 86_400;
/// The latest time a range may name: the last second of the year 9999.
const MAX_TIME: i64 = 253_402_300_799;
/// Apps an organization's read lists, at most.
pub const MAX_APPS: usize = 100;

/// How a usage read is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// [`UsageBody`] as JSON.
    #[default]
    Json,
    /// `text/csv`: a header row, then `start,subject,subject_id,outcome,count` per bucket
    /// of each series (`start` in unix seconds).
    Csv,
}

/// The range and resolution of a usage read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Unix seconds, inclusive; rounded down to a multiple of `step`. Default: an hour
    /// before `to`.
    pub from: Option<i64>,
    /// Unix seconds, exclusive; rounded up to a multiple of `step`. Default: the end of
    /// the current minute.
    pub to: Option<i64>,
    /// Seconds per bucket: a multiple of 60. Default 60. A range may span at most 2,000
    /// buckets. A whole number of hours (3600, 86400, …) reads the hour counts, kept for
    /// 90 days by default; any other step reads the minute counts, kept for 48 hours.
    pub step: Option<i64>,
    /// `json` (the default) or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// What a series counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectBody {
    /// Gateway checks of this resource; `null` for resources the server does not have
    /// (or a check that named none).
    Resource(Option<String>),
    /// Token requests of this grant type: `client_credentials`, `jwt_bearer`, `invalid`
    /// (no or a malformed grant type), `unsupported`.
    Grant(String),
    /// Introspection requests.
    Introspection,
}

impl From<UsageSubject> for SubjectBody {
    fn from(s: UsageSubject) -> Self {
        match s {
            UsageSubject::Resource(r) => SubjectBody::Resource(r),
            UsageSubject::Grant(g) => SubjectBody::Grant(g),
            UsageSubject::Introspection => SubjectBody::Introspection,
        }
    }
}

/// The counts of one subject and outcome over the range.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesBody {
    /// `{"resource": id}`, `{"grant": name}` or `"introspection"`.
    pub subject: SubjectBody,
    /// `allowed` (gateway), `issued` (token), `active` / `inactive` (introspection), or
    /// the refusal: the gateway catalogue's code (`403003`, `PCS-0429-429`, …) or the OAuth
    /// error (`invalid_client`, …).
    pub outcome: String,
    /// `[bucket start (unix seconds), count]`, oldest first; buckets without a request
    /// are left out.
    #[schema(value_type = Vec<Vec<i64>>, example = json!([[1767225600, 42]]))]
    pub points: Vec<(i64, u64)>,
    /// The sum of `points`.
    pub total: u64,
}

/// One app's requests in an organization's read.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppUsageBody {
    /// `null` for requests without an app the server knew (an unknown api key or client
    /// id, or none), counted to the organization whose resource they named.
    pub client_id: Option<String>,
    /// Requests in the range, whatever their outcome.
    pub requests: u64,
    /// Of those, the refused ones: every outcome but `allowed`, `issued`, `active` and
    /// `inactive`.
    pub refused: u64,
    /// The requests by outcome.
    pub totals: BTreeMap<String, u64>,
}

/// The usage of an organization or an app over a range.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageBody {
    /// The range actually read: `from` inclusive, `to` exclusive, both multiples of
    /// `step` (unix seconds).
    pub from: i64,
    pub to: i64,
    /// Seconds per bucket.
    pub step: i64,
    /// The counts that answered: `minute` or `hour` (when `step` is a whole number of
    /// hours).
    #[schema(example = "minute")]
    pub resolution: String,
    /// The oldest time those counts are kept from (unix seconds): earlier buckets have
    /// been pruned, so they read as empty.
    pub kept_from: i64,
    /// Whether the server that answered counts requests: `false` when it runs with
    /// `--usage-analytics false`, so empty series there do not mean no traffic.
    pub counted: bool,
    /// One series per subject and outcome with any count in the range, by subject
    /// (grants, introspection, resources) then outcome.
    pub series: Vec<SeriesBody>,
    /// Every series' total, by outcome.
    pub totals: BTreeMap<String, u64>,
    /// An organization's read only: its apps with any request in the range, the most
    /// refused first (then the most requests), at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<AppUsageBody>>,
}

/// `x` rounded up to a multiple of `m` (both positive and far from overflowing: times
/// are checked against [`MAX_TIME`] first).
fn up_to(x: i64, m: i64) -> i64 {
    (x + m - 1) / m * m
}

/// The range the query names, checked: `(from, to, step)`, with `from` and `to` on
/// multiples of `step`. `minutes_from` is the oldest minute the minute counts keep: a
/// step this suggests for a range reaching back past it is a whole number of hours.
fn range(q: &UsageQuery, now: i64, minutes_from: i64) -> Result<(i64, i64, i64), Problem> {
    let step = q.step.unwrap_or(60);
    if step < 60 || step % 60 != 0 || step > MAX_STEP {
        return Err(Problem::bad_request(format!(
            "'step' must be a multiple of 60 seconds, at most {MAX_STEP} (a year): 60, 300, 3600, 86400, …; got {step}."
        )));
    }
    for (name, t) in [("from", q.from), ("to", q.to)] {
        if let Some(t) = t
            && !(0..=MAX_TIME).contains(&t)
        {
            return Err(Problem::bad_request(format!(
                "'{name}' must be unix seconds between 0 and {MAX_TIME}; got {t}."
            )));
        }
    }
    let to = q.to.unwrap_or(UsageKey::minute_of(now) + 60);
    let from = q.from.unwrap_or(to - DEFAULT_RANGE).max(0);
    if from >= to {
        return Err(Problem::bad_request(format!(
            "'from' ({from}) must be before 'to' ({to})."
        )));
    }
    // Whole steps: the range `step` cuts it into.
    let whole = |step: i64| (from - from % step, up_to(to, step));
    let buckets = |step: i64| {
        let (f, t) = whole(step);
        (t - f) / step
    };
    let n = buckets(step);
    if n > MAX_BUCKETS {
        let mut least = up_to(up_to(to - from, MAX_BUCKETS) / MAX_BUCKETS, 60);
        while buckets(least) > MAX_BUCKETS {
            least += 60;
        }
        if from < minutes_from {
            least = up_to(least, 3600);
        }
        return Err(Problem::bad_request(format!(
            "From {from} to {to} in steps of {step} s is {n} buckets; at most {MAX_BUCKETS} are answered: give a 'step' of at least {least} s, or a shorter range."
        )));
    }
    let (from, to) = whole(step);
    Ok((from, to, step))
}

/// The oldest bucket of `size` seconds that counts kept `retention` seconds still hold at
/// `now` (what the pruning leaves: every bucket that starts at or after `now - retention`).
fn kept_from(now: i64, retention: i64, size: i64) -> i64 {
    let cut = now.saturating_sub(retention).max(0);
    cut.div_euclid(size) * size + if cut % size == 0 { 0 } else { size }
}

/// Refuse a read by the minute that starts before the minute counts kept at `now`
/// (`retention` seconds), naming the step that answers it.
fn minutes_kept(from: i64, step: i64, now: i64, retention: i64) -> Result<(), Problem> {
    let oldest = kept_from(now, retention, 60);
    if UsageResolution::for_step(step) == UsageResolution::Minute && from < oldest {
        return Err(Problem::bad_request(format!(
            "Counts by the minute are kept for {} hours, so from {oldest} on; this range starts at {from}. Give a 'step' of whole hours (3600, 86400, …) to read the hour counts, or start the range later.",
            retention / 3600
        )));
    }
    Ok(())
}

/// An organization's apps from the store's counts per app and outcome, the most refused
/// first, at most [`MAX_APPS`].
fn apps(rows: Vec<portcullis_store::UsageAppCount>) -> Vec<AppUsageBody> {
    let mut apps: Vec<AppUsageBody> = Vec::new();
    for r in rows {
        let app = match apps.last_mut() {
            Some(a) if a.client_id == r.client_id => a,
            _ => {
                apps.push(AppUsageBody {
                    client_id: r.client_id,
                    requests: 0,
                    refused: 0,
                    totals: BTreeMap::new(),
                });
                apps.last_mut().expect("just pushed")
            }
        };
        app.requests = app.requests.saturating_add(r.count);
        if is_refusal(&r.outcome) {
            app.refused = app.refused.saturating_add(r.count);
        }
        *app.totals.entry(r.outcome).or_insert(0) += r.count;
    }
    apps.sort_by(|a, b| {
        (b.refused, b.requests)
            .cmp(&(a.refused, a.requests))
            .then_with(|| a.client_id.cmp(&b.client_id))
    });
    apps.truncate(MAX_APPS);
    apps
}

/// The store's buckets as series, each with its points in time order.
fn body(from: i64, to: i64, step: i64, buckets: Vec<UsageBucket>) -> UsageBody {
    let mut series: Vec<SeriesBody> = Vec::new();
    let mut totals = BTreeMap::new();
    for b in buckets {
        *totals.entry(b.outcome.clone()).or_insert(0) += b.count;
        let subject = SubjectBody::from(b.subject);
        match series.last_mut() {
            Some(s) if s.subject == subject && s.outcome == b.outcome => {
                s.points.push((b.at, b.count));
                s.total += b.count;
            }
            _ => series.push(SeriesBody {
                subject,
                outcome: b.outcome,
                points: vec![(b.at, b.count)],
                total: b.count,
            }),
        }
    }
    UsageBody {
        from,
        to,
        step,
        resolution: UsageResolution::for_step(step).name().to_owned(),
        kept_from: 0,
        counted: true,
        series,
        totals,
        apps: None,
    }
}

/// The series as CSV: a header row, then a row per bucket of each series.
fn csv(body: &UsageBody) -> Result<Vec<u8>, Problem> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Problem::internal(&e);
    w.write_record(["start", "subject", "subject_id", "outcome", "count"])
        .map_err(fail)?;
    for s in &body.series {
        let (kind, id) = match &s.subject {
            SubjectBody::Resource(r) => ("resource", r.as_deref().unwrap_or("")),
            SubjectBody::Grant(g) => ("grant", g.as_str()),
            SubjectBody::Introspection => ("introspection", ""),
        };
        for (at, n) in &s.points {
            w.write_record([&at.to_string(), kind, id, &s.outcome, &n.to_string()])
                .map_err(fail)?;
        }
    }
    w.into_inner().map_err(|e| Problem::internal(&e.error()))
}

/// Read `filter`'s usage (and, for an organization, its apps') and answer it in the
/// query's format; `name` goes into the CSV's file name.
async fn read(
    state: &AppState,
    filter: UsageFilter,
    org: Option<&OrgId>,
    name: &str,
    q: &UsageQuery,
) -> Result<Response, Problem> {
    let now = state.now();
    let config = &state.usage.config;
    let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let retention = seconds(config.retention);
    let (from, to, step) = range(q, now, kept_from(now, retention, 60))?;
    minutes_kept(from, step, now, retention)?;
    let buckets = state.store.usage(&filter, from, to, step).await?;
    let mut body = body(from, to, step, buckets);
    body.counted = state.usage.enabled();
    body.kept_from = match UsageResolution::for_step(step) {
        UsageResolution::Minute => kept_from(now, retention, 60),
        UsageResolution::Hour => kept_from(now, seconds(config.hour_retention), 3600),
    };
    if q.format.unwrap_or_default() == Format::Csv {
        let file = format!("attachment; filename=\"usage-{name}-{from}-{to}.csv\"");
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, file),
            ],
            csv(&body)?,
        )
            .into_response());
    }
    if let Some(org) = org {
        let rows = state
            .store
            .usage_by_app(org, from, to, UsageResolution::for_step(step))
            .await?;
        body.apps = Some(apps(rows));
    }
    Ok(Json(body).into_response())
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/usage", operation_id = "readOrgUsage", params(UsageQuery), tag = "usage",
    responses((status = 200, description = "The organization's usage; with `format=csv`, `text/csv`: a header row, then `start,subject,subject_id,outcome,count` per bucket",
            content((UsageBody = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn org(
    State(state): State<AppState>,
    who: Principal,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, Problem> {
    let org = load_org(&state, &who, &org_id).await?;
    let name = org.id.to_string();
    read(
        &state,
        UsageFilter::Org(org.id.clone()),
        Some(&org.id),
        &name,
        &q,
    )
    .await
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/usage", operation_id = "readAppUsage", params(UsageQuery), tag = "usage",
    responses((status = 200, description = "The app's usage; with `format=csv`, `text/csv`: a header row, then `start,subject,subject_id,outcome,count` per bucket",
            content((UsageBody = "application/json"), (String = "text/csv"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn app(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let name = app.client_id.to_string();
    read(&state, UsageFilter::App(app.client_id), None, &name, &q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`range`] with every minute kept.
    fn r(q: &UsageQuery, now: i64) -> Result<(i64, i64, i64), Problem> {
        range(q, now, i64::MIN)
    }

    #[test]
    fn a_step_suggested_for_a_range_past_the_minutes_kept_is_whole_hours() {
        let day = 86_400;
        // Three days by the minute: too many buckets; the minutes kept start a day ago.
        let long = q(Some(7 * day), Some(10 * day), Some(60));
        let e = range(&long, 10 * day, 9 * day).unwrap_err();
        assert!(e.detail.contains("at least 3600 s"), "{}", e.detail);
        let e = range(
            &q(Some(0), Some(100 * day), Some(3600)),
            100 * day,
            98 * day,
        )
        .unwrap_err();
        assert!(e.detail.contains("at least 7200 s"), "{}", e.detail);
        // Within the minutes kept, the least step is still the least.
        let e = range(&long, 10 * day, 0).unwrap_err();
        assert!(e.detail.contains("at least 180 s"), "{}", e.detail);
    }

    #[test]
    fn counts_are_kept_from_the_first_whole_bucket_after_the_cut() {
        assert_eq!(kept_from(10_000, 1_000, 60), 9_000);
        assert_eq!(kept_from(10_030, 1_000, 60), 9_060);
        assert_eq!(kept_from(10_000, 1_000, 3600), 10_800);
        assert_eq!(kept_from(500, 1_000, 60), 0);
    }

    fn q(from: Option<i64>, to: Option<i64>, step: Option<i64>) -> UsageQuery {
        UsageQuery {
            from,
            to,
            step,
            format: None,
        }
    }

    #[test]
    fn minutes_past_their_retention_are_refused_with_the_step_to_use() {
        let day = 86_400;
        // Kept from now - 1 day on; an hourly read of older times is fine.
        assert!(minutes_kept(10 * day, 60, 11 * day, day).is_ok());
        assert!(minutes_kept(10 * day, 300, 11 * day, day).is_ok());
        for step in [60, 300, 1800] {
            let e = minutes_kept(10 * day - 60, step, 11 * day, day).unwrap_err();
            assert!(e.detail.contains("whole hours"), "{}", e.detail);
        }
        assert!(minutes_kept(0, 3600, 11 * day, day).is_ok());
        assert!(minutes_kept(0, 86_400, 11 * day, day).is_ok());
    }

    #[test]
    fn apps_are_listed_most_refused_first_with_their_outcomes() {
        let row = |c: Option<&str>, o: &str, n: u64| portcullis_store::UsageAppCount {
            client_id: c.map(str::to_owned),
            outcome: o.to_owned(),
            count: n,
        };
        let listed = apps(vec![
            row(None, "EXEG-0502-401", 7),
            row(Some("a"), "allowed", 100),
            row(Some("a"), "403003", 2),
            row(Some("b"), "allowed", 1),
            row(Some("b"), "invalid_client", 5),
            row(Some("b"), "issued", 3),
            row(Some("c"), "allowed", 9),
        ]);
        let order: Vec<_> = listed.iter().map(|a| a.client_id.as_deref()).collect();
        assert_eq!(order, [None, Some("b"), Some("a"), Some("c")]);
        let b = &listed[1];
        assert_eq!((b.requests, b.refused), (9, 5));
        assert_eq!(b.totals["issued"], 3);
        let a = &listed[2];
        assert_eq!((a.requests, a.refused), (102, 2));
    }

    #[test]
    fn the_default_range_is_the_last_hour_by_minute() {
        assert_eq!(r(&q(None, None, None), 7_230).unwrap(), (3_660, 7_260, 60));
    }

    #[test]
    fn a_range_is_widened_to_whole_steps() {
        assert_eq!(
            r(&q(Some(301), Some(899), Some(300)), 0).unwrap(),
            (300, 900, 300)
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_what_to_change() {
        for bad in [
            q(None, None, Some(0)),
            q(None, None, Some(90)),
            q(None, None, Some(-60)),
            q(None, None, Some(i64::MAX)),
            q(Some(-1), None, None),
            q(None, Some(i64::MAX), None),
            q(Some(600), Some(600), None),
            q(Some(900), Some(600), None),
        ] {
            assert!(r(&bad, 10_000).is_err(), "{bad:?}");
        }
        // A week by minute is 10,080 buckets; by 6 minutes, 1,680.
        let e = r(&q(Some(0), Some(7 * 86_400), None), 0).unwrap_err();
        assert!(e.detail.contains("at least 360 s"), "{}", e.detail);
        assert!(r(&q(Some(0), Some(7 * 86_400), Some(360)), 0).is_ok());
        // Off the steps, the suggestion still fits once the range is widened to them.
        let e = r(&q(Some(59), Some(601_061), None), 0).unwrap_err();
        let least: i64 = e
            .detail
            .split("at least ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(r(&q(Some(59), Some(601_061), Some(least)), 0).is_ok());
        assert!(r(&q(Some(59), Some(601_061), Some(least - 60)), 0).is_err());
        assert!(r(&q(Some(0), Some(2_000 * 60), None), 0).is_ok());
        let e = r(&q(Some(0), Some(2_001 * 60), None), 0).unwrap_err();
        assert!(e.detail.contains("2001 buckets"), "{}", e.detail);
    }
}
