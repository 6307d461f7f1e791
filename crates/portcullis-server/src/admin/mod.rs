//! The admin API: JSON under `/admin/v1`, problem+json errors, an OpenAPI 3.1
//! document at `/admin/v1/openapi.json` generated from these handlers.
//!
//! Every handler has the same shape: authorise the [`auth::Principal`], parse the body at
//! the edge into core types, write to the store, refresh the view (so the caller's next
//! request sees the change), answer.

pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod certificates;
pub mod events;
pub mod extract;
pub mod feeds;
pub mod groups;
pub mod json_errors;
pub mod keypairs;
pub mod keys;
pub mod links;
pub mod openapi;
pub mod orgs;
pub mod password;
pub mod resources;
pub mod secrets;
pub mod sessions;
pub mod tokens;
pub mod usage;
pub mod users;

use crate::problem::Problem;
use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

/// The admin API; every route records changes and failed authentications in the audit
/// trail ([`crate::audit::admin`]).
pub fn router(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/orgs", post(orgs::create).get(orgs::list))
        .route(
            "/orgs/{org_id}",
            get(orgs::read).patch(orgs::update).delete(orgs::delete),
        )
        .route(
            "/orgs/{org_id}/groups",
            post(groups::create).get(groups::list),
        )
        .route(
            "/orgs/{org_id}/groups/{group_id}",
            get(groups::read)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route(
            "/orgs/{org_id}/resources",
            post(resources::create).get(resources::list),
        )
        .route(
            "/orgs/{org_id}/resources/{resource_id}",
            get(resources::read)
                .patch(resources::update)
                .delete(resources::delete),
        )
        .route("/orgs/{org_id}/usage", get(usage::org))
        .route("/resources/{resource_id}/events", get(events::list))
        .route("/apps", post(apps::create).get(apps::list))
        .route(
            "/apps/{client_id}",
            get(apps::read).patch(apps::update).delete(apps::delete),
        )
        .route("/apps/{client_id}/usage", get(usage::app))
        .route("/apps/{client_id}/tokens", post(tokens::issue))
        .route("/apps/{client_id}/revoke", post(tokens::revoke))
        .route(
            "/apps/{client_id}/secrets",
            post(secrets::create).get(secrets::list),
        )
        .route(
            "/apps/{client_id}/secrets/{secret_id}",
            get(secrets::read)
                .patch(secrets::update)
                .delete(secrets::delete),
        )
        .route(
            "/apps/{client_id}/feeds",
            post(feeds::create).get(feeds::list),
        )
        .route(
            "/apps/{client_id}/feeds/{feed_id}",
            get(feeds::read).patch(feeds::update).delete(feeds::delete),
        )
        .route(
            "/apps/{client_id}/feeds/{feed_id}/topics",
            post(feeds::create_topic).get(feeds::list_topics),
        )
        .route(
            "/apps/{client_id}/feeds/{feed_id}/topics/{topic_id}",
            get(feeds::read_topic)
                .patch(feeds::update_topic)
                .delete(feeds::delete_topic),
        )
        .route(
            "/apps/{client_id}/certificates",
            post(certificates::create).get(certificates::list),
        )
        .route(
            "/apps/{client_id}/certificates/{certificate_id}",
            get(certificates::read).delete(certificates::delete),
        )
        .route("/apps/{client_id}/api-keys", post(api_keys::create))
        .route(
            "/apps/{client_id}/keypairs",
            post(keypairs::create).get(keypairs::list),
        )
        .route(
            "/apps/{client_id}/keypairs/{kid}",
            get(keypairs::read).delete(keypairs::delete),
        )
        .route("/users", post(users::create).get(users::list))
        .route(
            "/users/{user_id}",
            get(users::read).patch(users::update).delete(users::delete),
        )
        .route("/invitations", post(links::invite))
        .route("/users/{user_id}/password-reset", post(links::reset))
        .route("/user-links/current", get(links::current))
        .route("/user-links/current/accept", post(links::accept))
        .route("/sessions", post(sessions::login))
        .route(
            "/sessions/current",
            get(sessions::current).delete(sessions::logout),
        )
        .route("/keys", get(keys::list))
        .route("/keys/rotate", post(keys::rotate))
        .route("/audit", get(audit::list))
        .route("/audit/export", get(audit::export))
        .route("/openapi.json", get(openapi::serve))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::admin,
        ))
        .method_not_allowed_fallback(|| async {
            Problem::new(
                405,
                "method-not-allowed",
                "PCS-0405-405",
                "Method not allowed",
                "This endpoint does not support this HTTP method; see /admin/v1/openapi.json.",
            )
        });
    Router::new().nest("/admin/v1", api)
}

/// Pagination query: `?limit=` (1–1000, default 50) and `?after=` (the `next` cursor of
/// the previous page).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
    /// Only for `GET /apps`: the organization whose apps to list.
    pub org: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<portcullis_store::PageRequest, Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=1000).contains(&limit) {
            return Err(Problem::bad_request("'limit' must be between 1 and 1000."));
        }
        Ok(portcullis_store::PageRequest {
            after: self.after.clone(),
            limit,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// `key` gives the cursor of an item.
    pub fn of(items: Vec<T>, limit: u32, key: impl Fn(&T) -> String) -> Self {
        let next = if items.len() as u32 >= limit {
            items.last().map(&key)
        } else {
            None
        };
        Self { items, next }
    }
}

/// Deserialize a field that distinguishes "absent" (`None`) from `null` (`Some(None)`),
/// for PATCH bodies.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
