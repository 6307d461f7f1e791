//! The console's HTML (maud): the page layout, shared pieces (copy fields, alerts,
//! tables, forms with their hidden tokens) and the error page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The frame around a page: where you are, how to sign out.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The session's CSRF token, for the sign-out form; `None` when signed out.
    pub csrf: Option<&'a str>,
    /// Breadcrumbs before this page: (href, label).
    pub crumbs: Vec<(String, String)>,
    /// Show the header's links without a session's sign-out form (an error page, which
    /// does not know whether its reader is signed in).
    pub links: bool,
}

impl<'a> Frame<'a> {
    pub fn new(title: &'a str, csrf: Option<&'a str>) -> Self {
        Self {
            title,
            csrf,
            crumbs: Vec::new(),
            links: false,
        }
    }

    pub fn crumb(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.crumbs.push((href.into(), label.into()));
        self
    }

    pub fn render(&self, body: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) " · Portcullis console" }
                    link rel="stylesheet" href="/console/static/console.css";
                    script src="/console/static/console.js" defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/console/" { "Portcullis" span.sub { " console" } }
                        @if self.csrf.is_none() && self.links {
                            nav.nav aria-label="Console" {
                                a.link href="/console/orgs" { "Organizations" }
                                a.link href="/console/notifications" { "Notifications" }
                            }
                        }
                        @if let Some(csrf) = self.csrf {
                            nav.nav aria-label="Console" {
                                a.link href="/console/orgs" { "Organizations" }
                                a.link href="/console/notifications" { "Notifications" }
                                form.signout method="post" action="/console/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                    @if !self.crumbs.is_empty() {
                        nav.crumbs aria-label="Breadcrumb" {
                            ol {
                                @for (href, label) in &self.crumbs {
                                    li { a href=(href) { (label) } }
                                }
                                li aria-current="page" { (self.title) }
                            }
                        }
                    }
                    main #main {
                        h1 { (self.title) }
                        (body)
                    }
                }
            }
        }
    }
}

/// An HTML response with `status`.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    (status, Html(page.into_string())).into_response()
}

/// An error shown to the person: what went wrong (the admin API's `detail`) and a way on.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub detail: String,
    /// Where to go from here: (href, label).
    pub back: Option<(String, String)>,
}

impl PageError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            back: None,
        }
    }

    pub fn back(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.back = Some((href.into(), label.into()));
        self
    }
}

impl From<super::api::ApiError> for PageError {
    fn from(e: super::api::ApiError) -> Self {
        Self::new(e.status, e.detail)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::UNAUTHORIZED => "Please sign in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            StatusCode::GONE => "This link no longer works",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let mut frame = Frame::new(title, None);
        frame.links = self.status != StatusCode::UNAUTHORIZED;
        let page = frame.render(html! {
            (alert(&self.detail))
            p.actions {
                @if let Some((href, label)) = &self.back {
                    a.button href=(href) { (label) }
                }
                @if self.status == StatusCode::UNAUTHORIZED {
                    a.button href="/console/login" { "Sign in" }
                } @else {
                    a href="/console/" { "Back to your organizations" }
                }
            }
        });
        let mut res = respond(self.status, page);
        if self.status == StatusCode::UNAUTHORIZED {
            // The session has ended: forget it, so the next page is the sign-in form.
            res.headers_mut().append(
                axum::http::header::SET_COOKIE,
                axum::http::HeaderValue::from_static(
                    "pcs_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
                ),
            );
        }
        res
    }
}

pub fn alert(detail: &str) -> Markup {
    html! { div.alert role="alert" { strong { "Error: " } (detail) } }
}

pub fn notice(text: &str) -> Markup {
    html! { div.notice role="status" { (text) } }
}

/// A value with a copy button (the button is wired up by console.js).
pub fn copy_field(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.field {
            span.label id={(id) "-label"} { (label) }
            div.copy {
                code id=(id) aria-labelledby={(id) "-label"} { (value) }
                button.copy type="button" data-copy=(id) { "Copy" }
            }
        }
    }
}

/// A POST form with its CSRF token (and a once-only nonce when `once`).
pub fn post_form(action: &str, csrf: &str, once: Option<&str>, body: Markup) -> Markup {
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(n) = once { input type="hidden" name="once" value=(n); }
            (body)
        }
    }
}

/// Unix seconds as `2026-12-01 08:22:37 UTC`.
pub fn time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A list of words, or a dash for none.
pub fn words<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Markup {
    let items: Vec<S> = items.into_iter().collect();
    html! {
        @if items.is_empty() { span.muted { "none" } }
        @else { @for i in &items { code.tag { (i.as_ref()) } " " } }
    }
}
