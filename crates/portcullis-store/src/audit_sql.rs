//! The audit trail's SQL, shared by both backends: the columns and the filtered listing
//! are the same text on SQLite and PostgreSQL (`QueryBuilder` writes each backend's
//! placeholders).

use crate::{AuditFilter, PageRequest, Result, StoreError};
use portcullis_core::ids::OrgId;
use portcullis_core::model::{AuditEntry, AuditOutcome, NewAuditEntry};
use sqlx::{Database, QueryBuilder, Row};

pub const INSERT: &str =
    "INSERT INTO audit (at, actor, action, target, outcome, org_id, address, details) ";

/// Push the `VALUES` of `entries` onto an [`INSERT`].
pub fn push_values<DB>(q: &mut QueryBuilder<DB>, entries: &[NewAuditEntry]) -> Result<()>
where
    DB: Database,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<String>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let details = entries
        .iter()
        .map(|e| serde_json::to_string(&e.details))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Backend(format!("encoding an audit entry: {e}")))?;
    q.push_values(entries.iter().zip(details), |mut b, (e, d)| {
        b.push_bind(e.at)
            .push_bind(e.actor.clone())
            .push_bind(e.action.clone())
            .push_bind(e.target.clone())
            .push_bind(e.outcome.as_str().to_owned())
            .push_bind(e.org_id.as_ref().map(OrgId::to_string))
            .push_bind(e.address.clone())
            .push_bind(d);
    });
    q.push(" RETURNING id");
    Ok(())
}

/// `SELECT … WHERE <filter> AND id > <after> ORDER BY id LIMIT <limit>` (newest first:
/// `id < <after>`, `ORDER BY id DESC`).
pub fn select<DB>(filter: &AuditFilter, page: &PageRequest) -> Result<QueryBuilder<DB>>
where
    DB: Database,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let after = match page.after.as_deref() {
        None if filter.newest_first => i64::MAX,
        None => 0,
        Some(a) => a.parse::<i64>().map_err(|_| StoreError::NotFound)?,
    };
    let mut q = QueryBuilder::new(
        "SELECT id, at, actor, action, target, outcome, org_id, address, details FROM audit WHERE id ",
    );
    q.push(if filter.newest_first { "< " } else { "> " })
        .push_bind(after);
    for (column, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("target", &filter.target),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    }
    if let Some(outcome) = filter.outcome {
        q.push(" AND outcome = ")
            .push_bind(outcome.as_str().to_owned());
    }
    if let Some(since) = filter.since {
        q.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = filter.until {
        q.push(" AND at < ").push_bind(until);
    }
    if let Some(orgs) = &filter.orgs {
        if orgs.is_empty() {
            q.push(" AND 1 = 0");
        } else {
            q.push(" AND org_id IN (");
            let mut sep = q.separated(", ");
            for o in orgs {
                sep.push_bind(o.to_string());
            }
            q.push(")");
        }
    }
    q.push(if filter.newest_first {
        " ORDER BY id DESC LIMIT "
    } else {
        " ORDER BY id LIMIT "
    })
    .push_bind(page.limit.clamp(1, 1000) as i64);
    Ok(q)
}

/// One row of [`select`].
pub fn entry<R: Row>(r: &R) -> Result<AuditEntry>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<&'r str>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let bad = |what: &str| StoreError::Backend(format!("decoding an audit entry: {what}"));
    let get_str = |i: usize| r.try_get::<&str, _>(i).map_err(|e| bad(&e.to_string()));
    let get_opt = |i: usize| {
        r.try_get::<Option<&str>, _>(i)
            .map_err(|e| bad(&e.to_string()))
    };
    Ok(AuditEntry {
        id: r.try_get::<i64, _>(0).map_err(|e| bad(&e.to_string()))?,
        entry: NewAuditEntry {
            at: r.try_get::<i64, _>(1).map_err(|e| bad(&e.to_string()))?,
            actor: get_str(2)?.to_owned(),
            action: get_str(3)?.to_owned(),
            target: get_str(4)?.to_owned(),
            outcome: AuditOutcome::parse(get_str(5)?).ok_or_else(|| bad("outcome"))?,
            org_id: get_opt(6)?
                .map(OrgId::parse)
                .transpose()
                .map_err(|e| bad(&e.0))?,
            address: get_opt(7)?.map(str::to_owned),
            details: serde_json::from_str(get_str(8)?).map_err(|e| bad(&e.to_string()))?,
        },
    })
}
