//! `/admin/v1/apps/{client_id}/feeds` and their `/topics`: the publisher side of Adobe
//! Wave. A feed belongs to the publisher app it is under (the app's client id
//! and secret are its OAuth 1.0 consumer key and secret); it is broadcast or
//! point-to-point, and a point-to-point feed names the publisher's initiation URL and
//! fixed callback base URL. Topics have the URI notifications are sent to.
//!
//! Whoever may manage the app's credentials manages its feeds; whoever may see the app
//! sees them.

use super::apps::load as load_app;
use super::auth::Principal;
use super::extract::{ApiJson, ApiQuery};
use super::orgs::check_display_name;
use super::{Page, PageQuery, double_option};
use crate::problem::Problem;
use crate::state::AppState;
use crate::wave::check_http_url;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::RecordId;
use portcullis_core::model::App;
use portcullis_core::wave::{Feed, FeedKind, Topic};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FeedBody {
    /// `feed_…`: Wave's `feedId`.
    pub id: String,
    /// The publisher app.
    pub client_id: String,
    /// Wave's `companyId`: `company_<client_id>`.
    pub company_id: String,
    pub name: String,
    /// `broadcast` or `point_to_point`.
    #[schema(value_type = String, example = "point_to_point")]
    pub kind: FeedKind,
    pub initiation_url: Option<String>,
    pub callback_url: Option<String>,
    pub created_at: i64,
}

impl From<&Feed> for FeedBody {
    fn from(f: &Feed) -> Self {
        Self {
            id: f.id.to_string(),
            client_id: f.client_id.to_string(),
            company_id: f.company_id(),
            name: f.name.clone(),
            kind: f.kind,
            initiation_url: f.initiation_url.clone(),
            callback_url: f.callback_url.clone(),
            created_at: f.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFeed {
    pub name: String,
    /// `broadcast` or `point_to_point`.
    #[schema(value_type = String, example = "broadcast")]
    pub kind: FeedKind,
    /// Point-to-point only (required there): the publisher's Initiation API, http(s).
    pub initiation_url: Option<String>,
    /// Point-to-point only (required there): the fixed callback base URL, http(s).
    pub callback_url: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFeed {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub initiation_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub callback_url: Option<Option<String>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopicBody {
    pub id: String,
    pub feed_id: String,
    /// What notifications name as `topic`: `company_<client_id>/feed_<id>/<UUID>`.
    pub uri: String,
    pub name: String,
    pub created_at: i64,
}

impl From<&Topic> for TopicBody {
    fn from(t: &Topic) -> Self {
        Self {
            id: t.id.to_string(),
            feed_id: t.feed_id.to_string(),
            uri: t.uri.clone(),
            name: t.name.clone(),
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicName {
    pub name: String,
}

/// A point-to-point feed needs both URLs; a broadcast feed links no accounts, so has none.
fn validate(f: &Feed) -> Result<(), Problem> {
    match f.kind {
        FeedKind::PointToPoint if f.initiation_url.is_none() || f.callback_url.is_none() => {
            Err(Problem::bad_request(
                "A point_to_point feed needs 'initiation_url' and 'callback_url' (http or https).",
            ))
        }
        FeedKind::Broadcast if f.initiation_url.is_some() || f.callback_url.is_some() => {
            Err(Problem::bad_request(
                "A broadcast feed links no accounts: leave out 'initiation_url' and 'callback_url'.",
            ))
        }
        _ => Ok(()),
    }
}

fn url(field: &str, v: Option<String>) -> Result<Option<String>, Problem> {
    v.map(|u| check_http_url(field, &u)).transpose()
}

async fn load_feed(
    state: &AppState,
    who: &Principal,
    client_id: &str,
    id: &str,
) -> Result<(App, Feed), Problem> {
    let app = load_app(state, who, client_id).await?;
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    match state.store.feed(&id).await? {
        Some(f) if f.client_id == app.client_id => Ok((app, f)),
        _ => Err(Problem::not_found(format!(
            "No feed {id} of the application {}.",
            app.client_id
        ))),
    }
}

async fn load_topic(
    state: &AppState,
    who: &Principal,
    client_id: &str,
    feed: &str,
    id: &str,
) -> Result<(App, Feed, Topic), Problem> {
    let (app, feed) = load_feed(state, who, client_id, feed).await?;
    let id = RecordId::parse(id).map_err(|e| Problem::bad_request(e.0))?;
    match state.store.topic(&id).await? {
        Some(t) if t.feed_id == feed.id => Ok((app, feed, t)),
        _ => Err(Problem::not_found(format!(
            "No topic {id} in the feed {}.",
            feed.id
        ))),
    }
}

fn may_manage(state: &AppState, who: &Principal, app: &App) -> Result<(), Problem> {
    super::apps::check_managed(state, who, app, "manage this application's feeds")
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/feeds", operation_id = "createFeed", request_body = CreateFeed, tag = "feeds",
    responses((status = 201, body = FeedBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiJson(body): ApiJson<CreateFeed>,
) -> Result<Response, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    may_manage(&state, &who, &app)?;
    let feed = Feed {
        id: RecordId::generate("feed"),
        client_id: app.client_id.clone(),
        org_id: app.org_id.clone(),
        name: check_display_name(&body.name)?,
        kind: body.kind,
        initiation_url: url("initiation_url", body.initiation_url)?,
        callback_url: url("callback_url", body.callback_url)?,
        created_at: state.now(),
    };
    validate(&feed)?;
    state.store.insert_feed(&feed).await?;
    tracing::info!(feed = %feed.id, app = %app.client_id, by = %who.describe(), "feed created");
    Ok((StatusCode::CREATED, axum::Json(FeedBody::from(&feed))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/feeds", operation_id = "listFeeds", params(PageQuery), tag = "feeds",
    responses((status = 200, body = Page<FeedBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Path(client_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<FeedBody>>, Problem> {
    let app = load_app(&state, &who, &client_id).await?;
    let page = q.request()?;
    let items = state
        .store
        .feeds(&app.client_id, &page)
        .await?
        .iter()
        .map(FeedBody::from)
        .collect();
    Ok(axum::Json(Page::of(items, page.limit, |f: &FeedBody| {
        f.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}", operation_id = "readFeed", tag = "feeds",
    responses((status = 200, body = FeedBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<axum::Json<FeedBody>, Problem> {
    let (_, f) = load_feed(&state, &who, &client_id, &id).await?;
    Ok(axum::Json(FeedBody::from(&f)))
}

#[utoipa::path(patch, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}", operation_id = "updateFeed", request_body = UpdateFeed, tag = "feeds",
    responses((status = 200, body = FeedBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateFeed>,
) -> Result<axum::Json<FeedBody>, Problem> {
    let (app, mut f) = load_feed(&state, &who, &client_id, &id).await?;
    may_manage(&state, &who, &app)?;
    if let Some(n) = body.name {
        f.name = check_display_name(&n)?;
    }
    if let Some(u) = body.initiation_url {
        f.initiation_url = url("initiation_url", u)?;
    }
    if let Some(u) = body.callback_url {
        f.callback_url = url("callback_url", u)?;
    }
    validate(&f)?;
    state.store.update_feed(&f).await?;
    Ok(axum::Json(FeedBody::from(&f)))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}", operation_id = "deleteFeed", tag = "feeds",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (app, f) = load_feed(&state, &who, &client_id, &id).await?;
    may_manage(&state, &who, &app)?;
    state.store.delete_feed(&f.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}/topics", operation_id = "createFeedTopic", request_body = TopicName, tag = "feeds",
    responses((status = 201, body = TopicBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_topic(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, feed)): Path<(String, String)>,
    ApiJson(body): ApiJson<TopicName>,
) -> Result<Response, Problem> {
    let (app, feed) = load_feed(&state, &who, &client_id, &feed).await?;
    may_manage(&state, &who, &app)?;
    let topic = Topic {
        id: RecordId::generate("top"),
        feed_id: feed.id.clone(),
        client_id: app.client_id.clone(),
        uri: Topic::new_uri(&feed),
        name: check_display_name(&body.name)?,
        created_at: state.now(),
    };
    state.store.insert_topic(&topic).await?;
    Ok((StatusCode::CREATED, axum::Json(TopicBody::from(&topic))).into_response())
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}/topics", operation_id = "listFeedTopics", params(PageQuery), tag = "feeds",
    responses((status = 200, body = Page<TopicBody>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_topics(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, feed)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<TopicBody>>, Problem> {
    let (_, feed) = load_feed(&state, &who, &client_id, &feed).await?;
    let page = q.request()?;
    let items = state
        .store
        .topics(&feed.id, &page)
        .await?
        .iter()
        .map(TopicBody::from)
        .collect();
    Ok(axum::Json(Page::of(items, page.limit, |t: &TopicBody| {
        t.id.clone()
    })))
}

#[utoipa::path(get, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}/topics/{topic_id}", operation_id = "readFeedTopic", tag = "feeds",
    responses((status = 200, body = TopicBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn read_topic(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, feed, id)): Path<(String, String, String)>,
) -> Result<axum::Json<TopicBody>, Problem> {
    let (_, _, t) = load_topic(&state, &who, &client_id, &feed, &id).await?;
    Ok(axum::Json(TopicBody::from(&t)))
}

#[utoipa::path(patch, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}/topics/{topic_id}", operation_id = "updateFeedTopic", request_body = TopicName, tag = "feeds",
    responses((status = 200, body = TopicBody), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn update_topic(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, feed, id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<TopicName>,
) -> Result<axum::Json<TopicBody>, Problem> {
    let (app, _, mut t) = load_topic(&state, &who, &client_id, &feed, &id).await?;
    may_manage(&state, &who, &app)?;
    t.name = check_display_name(&body.name)?;
    state.store.update_topic(&t).await?;
    Ok(axum::Json(TopicBody::from(&t)))
}

#[utoipa::path(delete, path = "/admin/v1/apps/{client_id}/feeds/{feed_id}/topics/{topic_id}", operation_id = "deleteFeedTopic", tag = "feeds",
    responses((status = 204), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_topic(
    State(state): State<AppState>,
    who: Principal,
    Path((client_id, feed, id)): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let (app, _, t) = load_topic(&state, &who, &client_id, &feed, &id).await?;
    may_manage(&state, &who, &app)?;
    state.store.delete_topic(&t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
