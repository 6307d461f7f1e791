//! `GET /admin/v1/resources/{resource_id}/events`: what the Edge intake
//! ([`crate::edge`]) stored for a resource, oldest first, in pages:
//! `{"events": [...], "next": <cursor or null>}`. Readable by whoever may read the
//! resource's organization.

use super::auth::{Action, Principal};
use super::extract::ApiQuery;
use super::{Page, PageQuery};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use portcullis_core::ids::RecordId;
use portcullis_core::model::StoredEvent;
use serde::{Deserialize, Serialize};

/// One stored event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventBody {
    /// Grows with every event stored: listing order is acceptance order.
    pub id: i64,
    /// Unix seconds.
    pub received_at: i64,
    /// False for an unauthenticated event on a resource that allows them.
    pub authenticated: bool,
    /// The app that sent it; null when unauthenticated.
    pub client_id: Option<String>,
    /// The event object as it was sent.
    #[schema(value_type = Object)]
    pub event: serde_json::Map<String, serde_json::Value>,
}

impl From<StoredEvent> for EventBody {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            received_at: e.event.received_at,
            authenticated: e.event.authenticated,
            client_id: e.event.client_id.map(|c| c.to_string()),
            event: e.event.event,
        }
    }
}

/// One page of a resource's events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventBody>,
    /// Pass as `?after=` for the next page; null on the last page.
    pub next: Option<String>,
}

/// `?limit=` (1–1000, default 50) and `?after=` (the `next` of the previous page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/admin/v1/resources/{resource_id}/events", operation_id = "listResourceEvents", params(EventsQuery), tag = "resources",
    responses((status = 200, body = EventPage), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<axum::Json<EventPage>, Problem> {
    let id = RecordId::parse(&id).map_err(|e| Problem::bad_request(e.0))?;
    if q.after
        .as_deref()
        .is_some_and(|a| a.parse::<u64>().is_err())
    {
        return Err(Problem::bad_request(
            "'after' must be the 'next' of a previous page (an event id).",
        ));
    }
    let page = PageQuery {
        limit: q.limit,
        after: q.after,
        org: None,
    }
    .request()?;
    match state.store.resource(&id).await? {
        Some(r) if who.may(Action::ReadOrg, &r.org_id).is_ok() => {}
        _ => {
            return Err(Problem::not_found(format!(
                "No resource {id} that you can see."
            )));
        }
    }
    let events = state
        .store
        .events(&id, &page)
        .await?
        .into_iter()
        .map(EventBody::from)
        .collect();
    let Page { items, next } = Page::of(events, page.limit, |e: &EventBody| e.id.to_string());
    Ok(axum::Json(EventPage {
        events: items,
        next,
    }))
}
