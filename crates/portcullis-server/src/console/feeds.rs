//! An app's Adobe Wave feeds and their topics (`/console/apps/{cid}/feeds`): the list,
//! a new feed (broadcast, or point-to-point with its initiation and callback URLs), a new
//! topic per feed, and deleting either after a confirmation. What
//! `/admin/v1/apps/{client_id}/feeds` takes, as the signed-in user.

use super::api::{Ignored, seg};
use super::apps::{app_page, app_path, load_app};
use super::common::{Confirm, Page, confirm, see_other};
use super::view::{Frame, PageError, alert, copy_field, post_form, respond, time};
use super::{ConsoleForm, Ctx, Signed};
use crate::admin::Page as Listing;
use crate::admin::feeds::{FeedBody, TopicBody};
use axum::extract::Path;
use axum::http::StatusCode;
use maud::html;
use serde_json::{Value, json};

fn feeds_page(cid: &str) -> String {
    format!("{}/feeds", app_page(cid))
}

fn feed_path(cid: &str, fid: &str) -> String {
    format!("{}/feeds/{}", app_path(cid), seg(fid))
}

/// The new-feed form's values: empty, or as typed after a refusal.
#[derive(Default)]
struct NewFeed {
    name: String,
    kind: String,
    initiation_url: String,
    callback_url: String,
}

/// The page, with `error` and the new-feed form's values.
async fn render(ctx: &Ctx, cid: &str, error: Option<&str>, typed: &NewFeed) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(ctx, cid).await?;
    let feeds: Listing<FeedBody> = ctx.api().get(&format!("{}/feeds", app_path(cid))).await?;
    let mut with_topics = Vec::new();
    for f in feeds.items {
        let topics: Listing<TopicBody> = ctx
            .api()
            .get(&format!("{}/topics", feed_path(cid, &f.id)))
            .await?;
        with_topics.push((f, topics.items));
    }
    let here = feeds_page(cid);
    let p2p = typed.kind == "point_to_point";
    let page = Frame::new("Wave feeds", Some(&csrf))
        .crumb(app_page(cid), &app.name)
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p { "This application publishes Adobe Wave notifications on its feeds. Subscribers follow a broadcast feed, or link their account to a point-to-point feed through your initiation URL; each notification is sent to one topic." }
            @if with_topics.is_empty() {
                div.empty { p { "No feeds yet. Create the first one below, then add a topic to it." } }
            }
            @for (f, topics) in &with_topics {
                section.feed {
                    h2 { (f.name) }
                    p.muted { (f.kind.as_str().replace('_', "-")) " · created " (time(f.created_at)) }
                    (copy_field(&format!("feed-{}", f.id), "Feed id (feedId)", &f.id))
                    @if let Some(u) = &f.initiation_url { p { "Initiation URL: " code { (u) } } }
                    @if let Some(u) = &f.callback_url { p { "Callback URL: " code { (u) } } }
                    h3 { "Topics" }
                    @if topics.is_empty() {
                        p.muted { "No topics yet: notifications need one." }
                    } @else {
                        ul.topics { @for t in topics {
                            li {
                                strong { (t.name) } " "
                                (copy_field(&format!("topic-{}", t.id), "Topic URI", &t.uri))
                                a href={(here) "/" (seg(&f.id)) "/topics/" (seg(&t.id)) "/delete"} { "Delete topic" }
                            }
                        } }
                    }
                    (post_form(&format!("{here}/{}/topics", seg(&f.id)), &csrf, None, html! {
                        div.inline {
                            label for={"topic-name-" (f.id)} { "New topic" }
                            input id={"topic-name-" (f.id)} type="text" name="name" required maxlength="200" placeholder="status";
                            button type="submit" { "Add topic" }
                        }
                    }))
                    p { a href={(here) "/" (seg(&f.id)) "/delete"} { "Delete feed" } }
                }
            }
            h2 { "Create feed" }
            (post_form(&here, &csrf, None, html! {
                div.stack {
                    label for="feed-name" { "Name" }
                    input #feed-name type="text" name="name" value=(typed.name) required maxlength="200";
                    fieldset {
                        legend { "Kind" }
                        label.check { input type="radio" name="kind" value="broadcast" checked[!p2p]; " Broadcast: subscribers follow it" }
                        label.check { input type="radio" name="kind" value="point_to_point" checked[p2p]; " Point-to-point: subscribers link their account" }
                    }
                    label for="initiation_url" { "Initiation URL (point-to-point)" }
                    input #initiation_url type="url" name="initiation_url" value=(typed.initiation_url) placeholder="https://shop.example/wave/init";
                    label for="callback_url" { "Callback URL (point-to-point)" }
                    input #callback_url type="url" name="callback_url" value=(typed.callback_url) placeholder="https://shop.example/wave/cb";
                    button.primary type="submit" { "Create feed" }
                }
            }))
        });
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(respond(status, page))
}

pub(super) async fn list(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    render(&ctx, &cid, None, &NewFeed::default()).await
}

pub(super) async fn create_feed(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name", "kind", "initiation_url", "callback_url"])?;
    let text = |n: &str| form.opt(n).ok().flatten().unwrap_or("").trim().to_owned();
    let typed = NewFeed {
        name: text("name"),
        kind: text("kind"),
        initiation_url: text("initiation_url"),
        callback_url: text("callback_url"),
    };
    let url = |v: &str| if v.is_empty() { Value::Null } else { json!(v) };
    let body = json!({
        "name": typed.name, "kind": typed.kind,
        "initiation_url": url(&typed.initiation_url), "callback_url": url(&typed.callback_url),
    });
    match ctx
        .api()
        .post::<Ignored>(&format!("{}/feeds", app_path(&cid)), Some(body))
        .await
    {
        Ok(_) => Ok(see_other(&feeds_page(&cid))),
        Err(e) => render(&ctx, &cid, Some(&e.detail), &typed).await,
    }
}

pub(super) async fn create_topic(
    Signed(ctx): Signed,
    Path((cid, fid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name"])?;
    let name = form.one("name")?;
    match ctx
        .api()
        .post::<Ignored>(
            &format!("{}/topics", feed_path(&cid, &fid)),
            Some(json!({"name": name})),
        )
        .await
    {
        Ok(_) => Ok(see_other(&feeds_page(&cid))),
        Err(e) => render(&ctx, &cid, Some(&e.detail), &NewFeed::default()).await,
    }
}

pub(super) async fn delete_feed_page(
    Signed(ctx): Signed,
    Path((cid, fid)): Path<(String, String)>,
) -> Page {
    let f: FeedBody = ctx.api().get(&feed_path(&cid, &fid)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete feed?",
        action: format!("{}/{}/delete", feeds_page(&cid), seg(&fid)),
        back: (feeds_page(&cid), "Wave feeds"),
        text: html! { "Delete the feed " strong { (f.name) } " with its topics? Subscribers stop receiving its notifications. This cannot be undone." },
        button: "Delete feed",
    }))
}

pub(super) async fn delete_feed(
    Signed(ctx): Signed,
    Path((cid, fid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&feed_path(&cid, &fid))
        .await
        .map_err(|e| PageError::from(e).back(feeds_page(&cid), "Wave feeds"))?;
    Ok(see_other(&feeds_page(&cid)))
}

fn topic_path(cid: &str, fid: &str, tid: &str) -> String {
    format!("{}/topics/{}", feed_path(cid, fid), seg(tid))
}

pub(super) async fn delete_topic_page(
    Signed(ctx): Signed,
    Path((cid, fid, tid)): Path<(String, String, String)>,
) -> Page {
    let t: TopicBody = ctx.api().get(&topic_path(&cid, &fid, &tid)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete topic?",
        action: format!(
            "{}/{}/topics/{}/delete",
            feeds_page(&cid),
            seg(&fid),
            seg(&tid)
        ),
        back: (feeds_page(&cid), "Wave feeds"),
        text: html! { "Delete the topic " strong { (t.name) } " (" code { (t.uri) } ")? Notifications sent to it are refused from then on." },
        button: "Delete topic",
    }))
}

pub(super) async fn delete_topic(
    Signed(ctx): Signed,
    Path((cid, fid, tid)): Path<(String, String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&topic_path(&cid, &fid, &tid))
        .await
        .map_err(|e| PageError::from(e).back(feeds_page(&cid), "Wave feeds"))?;
    Ok(see_other(&feeds_page(&cid)))
}
