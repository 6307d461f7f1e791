//! The subscriber's page: their notifications (Adobe Wave). The page lists the stored
//! ones (`GET /notificationgateway/1.0/notifications`, so it works without JavaScript),
//! and console.js appends new ones live from `/console/notifications/stream` — Wave's
//! Server-Sent Event stream (`/notificationgateway/1.0/stream`) called in process with
//! the session, resumed after the last one listed.

use super::common::Page;
use super::view::{Frame, PageError, respond, time};
use super::{Ctx, Signed};
use crate::wave::stream::Inbox;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct After {
    after: Option<u64>,
}

fn after_of(
    q: Result<Query<After>, axum::extract::rejection::QueryRejection>,
) -> Result<u64, PageError> {
    q.map(|Query(a)| a.after.unwrap_or(0)).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "This page takes only '?after=<notification id>'.",
        )
    })
}

pub(super) async fn page(
    Signed(ctx): Signed,
    q: Result<Query<After>, axum::extract::rejection::QueryRejection>,
) -> Page {
    let after = after_of(q)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let list: Inbox<'static> = ctx
        .wave()
        .get(&format!(
            "/notificationgateway/1.0/notifications?after={after}&limit=100"
        ))
        .await?;
    let stored = &list.items;
    let last = stored.last().map_or(after as i64, |n| n.id);
    let more = list.next;
    let page = Frame::new("Your notifications", Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            p { "Notifications publishers send to your account: from feeds you linked your account to, and broadcast feeds you subscribed to." }
            p #live.muted role="status" aria-live="polite" { "Reload the page to see new ones." }
            @if stored.is_empty() {
                div.empty #no-notifications { p { "No notifications yet. They appear here as publishers send them." } }
            }
            ul.feed #notifications data-stream={"/console/notifications/stream?after=" (last)} {
                @for n in stored {
                    li data-id=(n.id) {
                        @if let Some(img) = n.image.as_deref().filter(|i| i.starts_with("data:image/png;base64,")) {
                            img src=(img) alt="";
                        }
                        @let uri_id = format!("topic-{}", n.id);
                        // Titled by the topic's name (the URI when the notification has
                        // none), with the URI beneath to copy.
                        strong.topic { (n.topic_name.as_deref().filter(|t| !t.trim().is_empty()).unwrap_or(&n.topic)) }
                        div.copy {
                            code.id id=(uri_id) { (n.topic) }
                            button.copy type="button" data-copy=(uri_id) aria-label="Copy the topic URI" { "Copy" }
                        }
                        p { (n.message) }
                        @if let Some(l) = n.link.as_deref().filter(|l| l.starts_with("https://") || l.starts_with("http://")) {
                            p { a href=(l) rel="noopener noreferrer" { (l) } }
                        }
                        small { (time(n.created_at)) }
                    }
                }
            }
            @if let Some(next) = more {
                p { a href={"/console/notifications?after=" (next)} { "Later notifications" } }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

/// Wave's stream as this user, from after the id the page listed last (or the browser's
/// `Last-Event-ID` when it reconnects).
pub(super) async fn stream(
    Signed(ctx): Signed,
    headers: axum::http::HeaderMap,
    q: Result<Query<After>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let after = after_of(q)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(after);
    Ok(forward(&ctx, resume).await)
}

async fn forward(ctx: &Ctx, resume: u64) -> Response {
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = axum::http::Uri::from_static("/notificationgateway/1.0/stream");
    req.headers_mut()
        .insert("last-event-id", HeaderValue::from(resume));
    req.headers_mut().insert(
        header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    ctx.wave().send(req).await
}
