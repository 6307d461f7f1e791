//! An app's Adobe Wave feeds and their topics (`/console/apps/{cid}/feeds`): the list,
//! a new feed (broadcast, or point-to-point with its initiation and callback URLs), a new
//! topic per feed, and deleting either after a confirmation. What
//! `/admin/v1/apps/{client_id}/feeds` takes, as the signed-in user.

use super::api::seg;
use super::pages::{Confirm, Page, app_page, app_path, confirm, items, load_app, s, see_other};
use super::view::{Frame, PageError, alert, copy_field, post_form, respond, time};
use super::{ConsoleForm, Ctx, Signed};
use crate::state::AppState;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use maud::html;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/apps/{cid}/feeds", get(list).post(create_feed))
        .route("/apps/{cid}/feeds/{fid}/topics", post(create_topic))
        .route(
            "/apps/{cid}/feeds/{fid}/delete",
            get(delete_feed_page).post(delete_feed),
        )
        .route(
            "/apps/{cid}/feeds/{fid}/topics/{tid}/delete",
            get(delete_topic_page).post(delete_topic),
        )
}

fn feeds_page(cid: &str) -> String {
    format!("{}/feeds", app_page(cid))
}

fn feed_path(cid: &str, fid: &str) -> String {
    format!("{}/feeds/{}", app_path(cid), seg(fid))
}

/// The page, with `error` and the new-feed form's values as typed after a refusal.
async fn render(ctx: &Ctx, cid: &str, error: Option<&str>, typed: &Value) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(ctx, cid).await?;
    let feeds = ctx.api().get(&format!("{}/feeds", app_path(cid))).await?;
    let mut with_topics = Vec::new();
    for f in items(&feeds) {
        let topics = ctx
            .api()
            .get(&format!("{}/topics", feed_path(cid, s(f, "id"))))
            .await?;
        with_topics.push((f.clone(), items(&topics).to_vec()));
    }
    let here = feeds_page(cid);
    let p2p = s(typed, "kind") == "point_to_point";
    let page = Frame::new("Wave feeds", Some(&csrf))
        .crumb(app_page(cid), s(&app, "name"))
        .render(html! {
            @if let Some(e) = error { (alert(e)) }
            p { "This application publishes Adobe Wave notifications on its feeds. Subscribers follow a broadcast feed, or link their account to a point-to-point feed through your initiation URL; each notification is sent to one topic." }
            @if with_topics.is_empty() {
                div.empty { p { "No feeds yet. Create the first one below, then add a topic to it." } }
            }
            @for (f, topics) in &with_topics {
                section.feed {
                    h2 { (s(f, "name")) }
                    p.muted { (s(f, "kind").replace('_', "-")) " · created " (time(f["created_at"].as_i64().unwrap_or(0))) }
                    (copy_field(&format!("feed-{}", s(f, "id")), "Feed id (feedId)", s(f, "id")))
                    @if let Some(u) = f["initiation_url"].as_str() { p { "Initiation URL: " code { (u) } } }
                    @if let Some(u) = f["callback_url"].as_str() { p { "Callback URL: " code { (u) } } }
                    h3 { "Topics" }
                    @if topics.is_empty() {
                        p.muted { "No topics yet: notifications need one." }
                    } @else {
                        ul.topics { @for t in topics {
                            li {
                                strong { (s(t, "name")) } " "
                                (copy_field(&format!("topic-{}", s(t, "id")), "Topic URI", s(t, "uri")))
                                a href={(here) "/" (seg(s(f, "id"))) "/topics/" (seg(s(t, "id"))) "/delete"} { "Delete topic" }
                            }
                        } }
                    }
                    (post_form(&format!("{here}/{}/topics", seg(s(f, "id"))), &csrf, None, html! {
                        div.inline {
                            label for={"topic-name-" (s(f, "id"))} { "New topic" }
                            input id={"topic-name-" (s(f, "id"))} type="text" name="name" required maxlength="200" placeholder="status";
                            button type="submit" { "Add topic" }
                        }
                    }))
                    p { a href={(here) "/" (seg(s(f, "id"))) "/delete"} { "Delete feed" } }
                }
            }
            h2 { "Create feed" }
            (post_form(&here, &csrf, None, html! {
                div.stack {
                    label for="feed-name" { "Name" }
                    input #feed-name type="text" name="name" value=(s(typed, "name")) required maxlength="200";
                    fieldset {
                        legend { "Kind" }
                        label.check { input type="radio" name="kind" value="broadcast" checked[!p2p]; " Broadcast: subscribers follow it" }
                        label.check { input type="radio" name="kind" value="point_to_point" checked[p2p]; " Point-to-point: subscribers link their account" }
                    }
                    label for="initiation_url" { "Initiation URL (point-to-point)" }
                    input #initiation_url type="url" name="initiation_url" value=(s(typed, "initiation_url")) placeholder="https://shop.example/wave/init";
                    label for="callback_url" { "Callback URL (point-to-point)" }
                    input #callback_url type="url" name="callback_url" value=(s(typed, "callback_url")) placeholder="https://shop.example/wave/cb";
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

async fn list(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    render(&ctx, &cid, None, &json!({})).await
}

async fn create_feed(Signed(ctx): Signed, Path(cid): Path<String>, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name", "kind", "initiation_url", "callback_url"])?;
    let text = |n: &str| form.opt(n).ok().flatten().unwrap_or("").trim().to_owned();
    let url = |n: &str| {
        let v = text(n);
        if v.is_empty() { Value::Null } else { json!(v) }
    };
    let body = json!({
        "name": text("name"), "kind": text("kind"),
        "initiation_url": url("initiation_url"), "callback_url": url("callback_url"),
    });
    match ctx
        .api()
        .post(&format!("{}/feeds", app_path(&cid)), Some(body.clone()))
        .await
    {
        Ok(_) => Ok(see_other(&feeds_page(&cid))),
        Err(e) => {
            let typed = json!({
                "name": text("name"), "kind": text("kind"),
                "initiation_url": text("initiation_url"), "callback_url": text("callback_url"),
            });
            render(&ctx, &cid, Some(&e.detail), &typed).await
        }
    }
}

async fn create_topic(
    Signed(ctx): Signed,
    Path((cid, fid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["name"])?;
    let name = form.one("name")?;
    match ctx
        .api()
        .post(
            &format!("{}/topics", feed_path(&cid, &fid)),
            Some(json!({"name": name})),
        )
        .await
    {
        Ok(_) => Ok(see_other(&feeds_page(&cid))),
        Err(e) => render(&ctx, &cid, Some(&e.detail), &json!({})).await,
    }
}

async fn delete_feed_page(Signed(ctx): Signed, Path((cid, fid)): Path<(String, String)>) -> Page {
    let f = ctx.api().get(&feed_path(&cid, &fid)).await?;
    let csrf = ctx.csrf().unwrap_or_default();
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete feed?",
        action: format!("{}/{}/delete", feeds_page(&cid), seg(&fid)),
        back: (feeds_page(&cid), "Wave feeds"),
        text: html! { "Delete the feed " strong { (s(&f, "name")) } " with its topics? Subscribers stop receiving its notifications. This cannot be undone." },
        button: "Delete feed",
    }))
}

async fn delete_feed(
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

async fn delete_topic_page(
    Signed(ctx): Signed,
    Path((cid, fid, tid)): Path<(String, String, String)>,
) -> Page {
    let t = ctx.api().get(&topic_path(&cid, &fid, &tid)).await?;
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
        text: html! { "Delete the topic " strong { (s(&t, "name")) } " (" code { (s(&t, "uri")) } ")? Notifications sent to it are refused from then on." },
        button: "Delete topic",
    }))
}

async fn delete_topic(
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
