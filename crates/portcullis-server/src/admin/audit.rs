//! `GET /admin/v1/audit` and `GET /admin/v1/audit/export`: the audit trail
//! ([`crate::audit`]), read-only — there is no endpoint that changes or deletes an entry.
//!
//! The bootstrap admin reads every entry; an org admin (a user with the `admin` role, or
//! an app with the `admin` scope) reads the entries of their organizations. Filters:
//! `actor`, `action`, `target`, `org`, `outcome`, `since` / `until` (unix seconds; since
//! inclusive, until exclusive). A page is `{"entries": [...], "next": <cursor or null>}`,
//! oldest first as the events listing (`order=desc`: newest first, `next` going back); `?format=ndjson` (or `/audit/export`) streams every
//! matching entry as one JSON object a line instead.

use super::auth::{Action, Principal};
use super::extract::ApiQuery;
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::OrgId;
use portcullis_core::model::{AuditEntry, AuditOutcome};
use portcullis_store::{AuditFilter, PageRequest};
use serde::{Deserialize, Serialize};

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditBody {
    /// Grows with every entry: listing order is the order they were written.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Who: `admin-token:<id>`, `user:<id>`, `app:<client id>`, `client:<claimed client
    /// id>` (failed authentications), `email:<address>` (failed sign-ins), `cli`,
    /// `anonymous`.
    pub actor: String,
    /// What, e.g. `apps.create`, `apps.secrets.delete`, `keys.rotate`, `auth.failed`.
    pub action: String,
    /// The record acted on; empty when none.
    pub target: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The organization it concerns, if any.
    pub org_id: Option<String>,
    /// The client's address (behind a `--trusted-proxy`, the client it names).
    pub address: Option<String>,
    /// Method, path, status, surface, the names (never the values) of the fields sent.
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl From<AuditEntry> for AuditBody {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.entry.at,
            actor: e.entry.actor,
            action: e.entry.action,
            target: e.entry.target,
            outcome: e.entry.outcome.as_str().to_owned(),
            org_id: e.entry.org_id.map(|o| o.to_string()),
            address: e.entry.address,
            details: e.entry.details,
        }
    }
}

/// One page of the audit trail.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditBody>,
    /// Pass as `?after=` for the next page; null on the last page.
    pub next: Option<String>,
}

/// Filters and paging of the audit trail.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor (exactly as listed, e.g. `user:rec_…`).
    pub actor: Option<String>,
    /// Only this action (e.g. `auth.failed`).
    pub action: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only this organization's entries.
    pub org: Option<String>,
    /// Unix seconds; entries at or after it.
    pub since: Option<i64>,
    /// Unix seconds; entries before it.
    pub until: Option<i64>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// `asc` (default: oldest first) or `desc` (newest first; `next` then leads to older
    /// entries).
    pub order: Option<String>,
    /// 1–1000, default 50 (ignored by the export).
    pub limit: Option<u32>,
    /// The `next` of the previous page (an entry id).
    pub after: Option<String>,
    /// `json` (default, one page) or `ndjson` (every matching entry, streamed).
    pub format: Option<String>,
}

/// The filter this caller may use: org admins see only their organizations.
fn filter(who: &Principal, q: &AuditQuery) -> Result<AuditFilter, Problem> {
    let org = q
        .org
        .as_deref()
        .map(|o| OrgId::parse(o).map_err(|e| Problem::bad_request(e.0)))
        .transpose()?;
    let orgs = match who.orgs_where(Action::ReadAudit) {
        None => org.map(|o| vec![o]),
        Some(admin_of) => match org {
            Some(o) if admin_of.contains(&o) => Some(vec![o]),
            Some(o) => {
                return Err(Problem::forbidden(format!(
                    "You are not an admin of the organization {o}; only its admins (and the bootstrap admin) read its audit trail."
                )));
            }
            None if admin_of.is_empty() => {
                return Err(Problem::forbidden(
                    "Reading the audit trail needs the bootstrap admin token or the admin role in an organization.",
                ));
            }
            None => Some(admin_of),
        },
    };
    if let (Some(s), Some(u)) = (q.since, q.until)
        && s >= u
    {
        return Err(Problem::bad_request(
            "'since' must be before 'until' (unix seconds; since inclusive, until exclusive).",
        ));
    }
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some(o) => Some(
            AuditOutcome::parse(o)
                .ok_or_else(|| Problem::bad_request("'outcome' must be 'success' or 'failure'."))?,
        ),
    };
    let newest_first = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(Problem::bad_request(
                "'order' must be 'asc' (oldest first) or 'desc' (newest first).",
            ));
        }
    };
    let text = |v: &Option<String>| v.as_deref().map(str::to_owned);
    Ok(AuditFilter {
        outcome,
        newest_first,
        actor: text(&q.actor),
        action: text(&q.action),
        target: text(&q.target),
        orgs,
        since: q.since,
        until: q.until,
    })
}

fn check_cursor(after: &Option<String>) -> Result<(), Problem> {
    if after.as_deref().is_some_and(|a| a.parse::<u64>().is_err()) {
        return Err(Problem::bad_request(
            "'after' must be the 'next' of a previous page (an entry id).",
        ));
    }
    Ok(())
}

#[utoipa::path(get, path = "/admin/v1/audit", operation_id = "listAuditEntries", params(AuditQuery), tag = "audit",
    responses((status = 200, body = AuditPage, description = "One page; with ?format=ndjson, every matching entry as application/x-ndjson"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, Problem> {
    match q.format.as_deref() {
        None | Some("json") => {}
        Some("ndjson") => return export_with(state, &who, q).await,
        Some(_) => {
            return Err(Problem::bad_request(
                "'format' must be 'json' (one page) or 'ndjson' (every entry, streamed).",
            ));
        }
    }
    check_cursor(&q.after)?;
    let f = filter(&who, &q)?;
    let page = PageQuery {
        limit: q.limit,
        after: q.after.clone(),
        org: None,
    }
    .request()?;
    let entries = state
        .store
        .audit(&f, &page)
        .await?
        .into_iter()
        .map(AuditBody::from)
        .collect();
    let Page { items, next } = Page::of(entries, page.limit, |e: &AuditBody| e.id.to_string());
    Ok(axum::Json(AuditPage {
        entries: items,
        next,
    })
    .into_response())
}

#[utoipa::path(get, path = "/admin/v1/audit/export", operation_id = "exportAuditEntries", params(AuditQuery), tag = "audit",
    responses((status = 200, content_type = "application/x-ndjson", body = AuditBody,
        description = "Every matching entry, oldest first, one JSON object a line (streamed)"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, Problem> {
    export_with(state, &who, q).await
}

/// Entries read per store query while exporting.
const EXPORT_PAGE: u32 = 1000;

async fn export_with(state: AppState, who: &Principal, q: AuditQuery) -> Result<Response, Problem> {
    check_cursor(&q.after)?;
    let f = filter(who, &q)?;
    // The first page is read before answering, so a store failure is a proper problem;
    // later pages stream (a failure then ends the stream early, and is logged).
    let first = state
        .store
        .audit(
            &f,
            &PageRequest {
                after: q.after.clone(),
                limit: EXPORT_PAGE,
            },
        )
        .await?;
    let stream =
        futures_util::stream::unfold((Some(first), state, f), |(pending, state, f)| async move {
            let entries = pending?;
            if entries.is_empty() {
                return None;
            }
            let full = entries.len() as u32 >= EXPORT_PAGE;
            let after = entries.last().map(|e| e.id.to_string());
            let mut chunk = Vec::new();
            for e in entries {
                if serde_json::to_writer(&mut chunk, &AuditBody::from(e)).is_ok() {
                    chunk.push(b'\n');
                }
            }
            let next = if full {
                match state
                    .store
                    .audit(
                        &f,
                        &PageRequest {
                            after,
                            limit: EXPORT_PAGE,
                        },
                    )
                    .await
                {
                    Ok(n) => Some(n),
                    Err(e) => {
                        tracing::error!(error = %e, "audit export ended early: the store failed");
                        None
                    }
                }
            } else {
                None
            };
            Some((
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(chunk)),
                (next, state, f),
            ))
        });
    let mut res = Body::from_stream(stream).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
