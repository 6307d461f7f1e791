//! Delivery to subscribers: `GET /notificationgateway/1.0/stream` sends a user's
//! notifications as Server-Sent Events, live; `Last-Event-ID` resumes after the last one
//! seen, from the store (kept for the retention window), so a reconnecting subscriber
//! misses nothing. `/notificationgateway/1.0/subscriptions[/{feed_id}]` lists, adds
//! (`PUT`) and removes (`DELETE`) subscriptions to broadcast feeds; point-to-point feeds
//! are subscribed by linking (OAuth 1.0).
//!
//! The subscriber authenticates with HTTP Basic (email and password) or a console session
//! token (`Authorization: Bearer pcsu_…`). An open stream checks that sign-in again
//! before each notification it sends, and ends once it no longer holds (the session was
//! ended, the password changed or reset, the account deleted).
//!
//! Live fan-out is a tokio broadcast channel carrying each notification with its
//! recipients (decided when it was stored), fed in id order by this node's
//! [`super::fanout`] task from the store, so notifications accepted by any node arrive.
//! A stream subscribes to the channel *before* reading the backlog, and skips ids it has
//! sent, so nothing falls between the two; a stream that lags behind the channel
//! re-reads the store from its last id.

use super::{Delivery, WaveError};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use portcullis_core::ids::RecordId;
use portcullis_core::model::User;
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::wave::{FeedKind, StoredNotification};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Notifications read from the store at a time.
const PAGE: u32 = 200;

fn refused(detail: &str) -> WaveError {
    WaveError::unauthorized(detail, "Basic")
}

/// What a subscriber signed in with, checked again before a stream sends each
/// notification: a stream ends when its session ends (sign-out, a password reset) or its
/// password changes, as a request made then would be refused.
#[derive(Debug, Clone)]
enum Credential {
    /// The keyed hash of a session token.
    Session(String),
    /// HTTP Basic: the account's email and its password hash when the stream opened.
    Password { email: String, phc: String },
}

impl Credential {
    async fn holds(&self, state: &AppState, user: &RecordId) -> bool {
        match self {
            Credential::Session(hash) => {
                matches!(state.store.session(hash, state.now()).await, Ok(Some(id)) if &id == user)
            }
            Credential::Password { email, phc } => {
                matches!(state.store.user_by_email(email).await, Ok(Some((u, h))) if &u.id == user && &h == phc)
            }
        }
    }
}

/// The signed-in subscriber of a request.
pub async fn subscriber(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<User, WaveError> {
    authenticate(state, client, headers).await.map(|(u, _)| u)
}

/// The signed-in subscriber of a request, and what they signed in with.
async fn authenticate(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<(User, Credential), WaveError> {
    let how = "Sign in with HTTP Basic (your email and password) or 'Authorization: Bearer <session token>' from POST /admin/v1/sessions.";
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| refused(&format!("No credentials. {how}")))?
        .to_str()
        .map_err(|_| {
            refused(&format!(
                "The Authorization header is not valid text. {how}"
            ))
        })?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or_else(|| refused(&format!("Malformed Authorization header. {how}")))?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let secret = Secret::parse(SecretKind::UserSession, rest.trim())
            .map_err(|e| refused(&format!("Bad session token: {e}.")))?;
        let hash = secret.hash(&state.hash_key()?).to_hex();
        let id = state
            .store
            .session(&hash, state.now())
            .await?
            .ok_or_else(|| refused("The session has expired or was ended; sign in again."))?;
        let user = state
            .store
            .user(&id)
            .await?
            .ok_or_else(|| refused("The account of this session no longer exists."))?;
        return Ok((user, Credential::Session(hash)));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(refused(how));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| refused("The Basic credentials are not valid base64 of email:password."))?;
    let (email, pw) = decoded
        .split_once(':')
        .ok_or_else(|| refused("The Basic credentials must be email:password."))?;
    let user = super::sign_in(state, client, email, pw)
        .await?
        .ok_or_else(|| refused("The email or password is wrong."))?;
    let (_, phc) = state
        .store
        .user_by_email(&user.email)
        .await?
        .filter(|(u, _)| u.id == user.id)
        .ok_or_else(|| refused("The email or password is wrong."))?;
    let email = user.email.clone();
    Ok((user, Credential::Password { email, phc }))
}

/// A notification as a subscriber receives it (the `data` of an SSE event). Borrowed
/// from the stored notification when sent; owned when read back (the console's page).
#[derive(Debug, Serialize, Deserialize)]
pub struct NotificationBody<'a> {
    pub id: i64,
    pub topic: Cow<'a, str>,
    /// The topic's name when it was sent (null for notifications stored before names
    /// were kept): a title for people; `topic` is the URI.
    pub topic_name: Option<Cow<'a, str>>,
    pub feed_id: Cow<'a, str>,
    pub message: Cow<'a, str>,
    pub link: Option<Cow<'a, str>>,
    /// A `data:image/png;base64,…` URL, or null.
    pub image: Option<String>,
    pub created_at: i64,
}

impl<'a> NotificationBody<'a> {
    fn new(n: &'a StoredNotification) -> Self {
        Self {
            id: n.id,
            topic: Cow::Borrowed(&n.notification.topic),
            topic_name: n.notification.topic_name.as_deref().map(Cow::Borrowed),
            feed_id: Cow::Borrowed(n.notification.feed_id.as_str()),
            message: Cow::Borrowed(&n.notification.message),
            link: n.notification.link.as_deref().map(Cow::Borrowed),
            image: n
                .notification
                .image_png
                .as_ref()
                .map(|b| format!("data:image/png;base64,{b}")),
            created_at: n.notification.created_at,
        }
    }
}

fn event(n: &StoredNotification) -> Event {
    let body = NotificationBody::new(n);
    let e = Event::default().id(n.id.to_string()).event("notification");
    match e.clone().json_data(&body) {
        Ok(e) => e,
        Err(_) => e.data("{}"),
    }
}

/// Where one stream is: what it has sent, what it holds, what it listens to.
struct Cursor {
    state: AppState,
    user: RecordId,
    credential: Credential,
    last: i64,
    pending: VecDeque<StoredNotification>,
    /// Whether the store may hold more than `pending` (backlog not read to its end).
    backlog: bool,
    live: tokio::sync::broadcast::Receiver<Arc<Delivery>>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Cursor {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(n) = self.pending.pop_front() {
                if n.id > self.last {
                    if !self.credential.holds(&self.state, &self.user).await {
                        tracing::info!(user = %self.user, "notification stream ended: its sign-in no longer holds");
                        return None;
                    }
                    self.last = n.id;
                    return Some(event(&n));
                }
                continue;
            }
            if self.backlog {
                match self.state.store.inbox(&self.user, self.last, PAGE).await {
                    Ok(page) => {
                        self.backlog = page.len() as u32 >= PAGE;
                        self.pending.extend(page);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a subscriber's notifications failed; ending the stream");
                        return None;
                    }
                }
            }
            tokio::select! {
                msg = self.live.recv() => match msg {
                    Ok(d) => {
                        if d.recipients.contains(&self.user) {
                            self.pending.push_back(d.notification.clone());
                        }
                    }
                    // Fell behind the channel: what was dropped is in the store.
                    Err(RecvError::Lagged(_)) => self.backlog = true,
                    Err(RecvError::Closed) => return None,
                },
                _ = self.stopping.wait_for(|s| *s) => return None,
            }
        }
    }
}

/// `GET /notificationgateway/1.0/stream`.
pub async fn stream(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
) -> Result<Response, WaveError> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Problem::bad_request(
                        "Last-Event-ID must be the id of a notification (a whole number).",
                    )
                })?,
        ),
    };
    let (user, credential) = authenticate(&state, client, &headers).await?;
    // Subscribe before reading the backlog: nothing stored meanwhile is missed.
    let live = state.wave.live.subscribe();
    let stopping = state.wave.stopping();
    tracing::info!(user = %user.id, resume, "notification stream opened");
    let cursor = Cursor {
        state: state.clone(),
        user: user.id.clone(),
        credential,
        last: resume.unwrap_or(0),
        pending: VecDeque::new(),
        // Without Last-Event-ID, only what arrives from now on.
        backlog: resume.is_some(),
        live,
        stopping,
    };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        c.next()
            .await
            .map(|e| (Ok::<Event, std::convert::Infallible>(e), c))
    });
    let mut res = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// One page of the inbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inbox<'a> {
    pub items: Vec<NotificationBody<'a>>,
    /// Pass as `?after=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// `GET /notificationgateway/1.0/notifications?after=&limit=`: the user's stored
/// notifications (kept for the retention window), oldest first, after the id `after`;
/// what a client without a stream reads, and what a stream resumes from.
pub async fn inbox(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
    q: Result<axum::extract::Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WaveError> {
    let axum::extract::Query(q) = q.map_err(|e| {
        Problem::bad_request(format!(
            "The query takes 'after' (a notification id) and 'limit' (1-{PAGE}): {e}"
        ))
    })?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=PAGE).contains(&limit) || q.after.is_some_and(|a| a < 0) {
        return Err(Problem::bad_request(format!(
            "'limit' must be 1-{PAGE} and 'after' a notification id (0 or more)."
        ))
        .into());
    }
    let user = subscriber(&state, client, &headers).await?;
    let stored = state
        .store
        .inbox(&user.id, q.after.unwrap_or(0), limit)
        .await?;
    let next = (stored.len() as u32 >= limit)
        .then(|| stored.last().map(|n| n.id))
        .flatten();
    let mut res = axum::Json(Inbox {
        items: stored.iter().map(NotificationBody::new).collect(),
        next,
    })
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[derive(Debug, Serialize)]
struct Subscriptions {
    feeds: Vec<String>,
}

/// `GET /notificationgateway/1.0/subscriptions`: the broadcast feeds the user follows.
pub async fn subscriptions(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
) -> Result<Response, WaveError> {
    let user = subscriber(&state, client, &headers).await?;
    let feeds = state.store.subscriptions(&user.id).await?;
    Ok(axum::Json(Subscriptions {
        feeds: feeds.iter().map(|f| f.to_string()).collect(),
    })
    .into_response())
}

async fn broadcast_feed(state: &AppState, id: &str) -> Result<RecordId, WaveError> {
    let not_found = || {
        Problem::not_found(format!(
            "No feed '{}'.",
            id.chars().take(40).collect::<String>()
        ))
    };
    let id = RecordId::parse(id).map_err(|_| not_found())?;
    let feed = state.store.feed(&id).await?.ok_or_else(not_found)?;
    if feed.kind != FeedKind::Broadcast {
        return Err(Problem::bad_request(
            "This feed is point-to-point: it is subscribed by linking your account from the publisher's site.",
        )
        .into());
    }
    Ok(feed.id)
}

/// `PUT /notificationgateway/1.0/subscriptions/{feed_id}`: follow a broadcast feed.
pub async fn subscribe(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
    Path(feed): Path<String>,
) -> Result<StatusCode, WaveError> {
    let user = subscriber(&state, client, &headers).await?;
    let feed = broadcast_feed(&state, &feed).await?;
    state.store.subscribe(&user.id, &feed, state.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /notificationgateway/1.0/subscriptions/{feed_id}`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
    Path(feed): Path<String>,
) -> Result<StatusCode, WaveError> {
    let user = subscriber(&state, client, &headers).await?;
    let feed = broadcast_feed(&state, &feed).await?;
    state
        .store
        .unsubscribe(&user.id, &feed)
        .await
        .map_err(|e| -> WaveError {
            match e {
                portcullis_store::StoreError::NotFound => {
                    Problem::not_found("You are not subscribed to this feed.").into()
                }
                other => other.into(),
            }
        })?;
    Ok(StatusCode::NO_CONTENT)
}
