//! `GET /admin/v1/orgs/{org_id}/usage` and `GET /admin/v1/apps/{client_id}/usage`: the
//! usage counts ([`crate::usage`]) of an organization or an app, summed over the cluster,
//! as series by subject and outcome in buckets of `step` seconds.
//!
//! Whoever may read an organization's apps may read its usage and its apps' usage (the
//! same rule as `GET /apps/{client_id}`): anyone else gets the 404 an unknown org or app
//! gets. Counts reach the store within a few seconds of the request (each node flushes
//! its own every 5 s), and are kept for the retention window (48 h by default).

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::ApiQuery;
use super::orgs::load as load_org;
use crate::problem::Problem;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use portcullis_core::usage::UsageKey;
use portcullis_store::{UsageBucket, UsageFilter, UsageSubject};
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
    /// buckets.
    pub step: Option<i64>,
}

/// What a series counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

/// The usage of an organization or an app over a range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageBody {
    /// The range actually read: `from` inclusive, `to` exclusive, both multiples of
    /// `step` (unix seconds).
    pub from: i64,
    pub to: i64,
    /// Seconds per bucket.
    pub step: i64,
    /// One series per subject and outcome with any count in the range, by subject
    /// (grants, introspection, resources) then outcome.
    pub series: Vec<SeriesBody>,
    /// Every series' total, by outcome.
    pub totals: BTreeMap<String, u64>,
}

/// `x` rounded up to a multiple of `m` (both positive and far from overflowing: times
/// are checked against [`MAX_TIME`] first).
fn up_to(x: i64, m: i64) -> i64 {
    (x + m - 1) / m * m
}

/// The range the query names, checked: `(from, to, step)`, with `from` and `to` on
/// multiples of `step`.
fn range(q: &UsageQuery, now: i64) -> Result<(i64, i64, i64), Problem> {
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
        return Err(Problem::bad_request(format!(
            "From {from} to {to} in steps of {step} s is {n} buckets; at most {MAX_BUCKETS} are answered: give a 'step' of at least {least} s, or a shorter range."
        )));
    }
    let (from, to) = whole(step);
    Ok((from, to, step))
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
        series,
        totals,
    }
}

async fn read(
    state: &AppState,
    filter: UsageFilter,
    q: &UsageQuery,
) -> Result<Json<UsageBody>, Problem> {
    let (from, to, step) = range(q, state.now())?;
    let buckets = state.store.usage(&filter, from, to, step).await?;
    Ok(Json(body(from, to, step, buckets)))
}

#[utoipa::path(get, path = "/admin/v1/orgs/{org_id}/usage", operation_id = "readOrgUsage", params(UsageQuery), tag = "usage",
    responses((status = 200, body = UsageBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn org(
    State(state): State<AppState>,
    who: Principal,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<UsageBody>, Problem> {
    let org = load_org(&state, &who, &org_id).await?;
    read(&state, UsageFilter::Org(org.id), &q).await
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/usage", operation_id = "readAppUsage", params(UsageQuery), tag = "usage",
    responses((status = 200, body = UsageBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn app(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<UsageBody>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    read(&state, UsageFilter::App(app.client_id), &q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<i64>, to: Option<i64>, step: Option<i64>) -> UsageQuery {
        UsageQuery { from, to, step }
    }

    #[test]
    fn the_default_range_is_the_last_hour_by_minute() {
        assert_eq!(
            range(&q(None, None, None), 7_230).unwrap(),
            (3_660, 7_260, 60)
        );
    }

    #[test]
    fn a_range_is_widened_to_whole_steps() {
        assert_eq!(
            range(&q(Some(301), Some(899), Some(300)), 0).unwrap(),
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
            assert!(range(&bad, 10_000).is_err(), "{bad:?}");
        }
        // A week by minute is 10,080 buckets; by 6 minutes, 1,680.
        let e = range(&q(Some(0), Some(7 * 86_400), None), 0).unwrap_err();
        assert!(e.detail.contains("at least 360 s"), "{}", e.detail);
        assert!(range(&q(Some(0), Some(7 * 86_400), Some(360)), 0).is_ok());
        // Off the steps, the suggestion still fits once the range is widened to them.
        let e = range(&q(Some(59), Some(601_061), None), 0).unwrap_err();
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
        assert!(range(&q(Some(59), Some(601_061), Some(least)), 0).is_ok());
        assert!(range(&q(Some(59), Some(601_061), Some(least - 60)), 0).is_err());
        assert!(range(&q(Some(0), Some(2_000 * 60), None), 0).is_ok());
        let e = range(&q(Some(0), Some(2_001 * 60), None), 0).unwrap_err();
        assert!(e.detail.contains("2001 buckets"), "{}", e.detail);
    }
}
