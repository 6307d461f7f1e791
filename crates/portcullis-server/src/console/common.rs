//! What the console's pages share: the handler result ([`Page`]), the redirect after a
//! form, the confirmation step before a deletion, the page that shows a secret once, and
//! the breadcrumbs of a page inside an organization.

use super::api::seg;
use super::view::{Frame, PageError, post_form, respond};
use crate::admin::orgs::OrgBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::BTreeSet;

/// What a console handler answers: a page, or an error page.
pub(super) type Page = Result<Response, PageError>;

/// `303 See Other` to `to`: where a form goes once the admin API took it.
pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `/console/orgs/{org}`: an organization's applications, the first of its tabs.
pub(super) fn org_href(org: &str) -> String {
    format!("/console/orgs/{}", seg(org))
}

/// The frame of a page inside an organization: its breadcrumbs lead back through the
/// organization to the list of organizations.
pub(super) fn org_frame<'a>(title: &'a str, csrf: &'a str, org: &OrgBody) -> Frame<'a> {
    Frame::new(title, Some(csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(org_href(&org.id), &org.name)
}

/// Names in their order, separated by `sep`.
pub(super) fn joined(names: &BTreeSet<String>, sep: &str) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(sep)
}

/// A page that shows something once: never cached, never stored.
pub(super) fn once_page(page: Markup) -> Response {
    let mut res = respond(StatusCode::CREATED, page);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// A button that saves `value` as the file `name` (a `data:` URL: nothing is fetched).
pub(super) fn download(name: &str, value: &str) -> Markup {
    let href = format!(
        "data:text/plain;charset=utf-8,{}",
        seg(value).replace('+', "%20")
    );
    html! { a.button href=(href) download=(name) { "Download" } }
}

/// A deletion's confirmation step: what will happen, the button, and a way back.
pub(super) struct Confirm<'a> {
    pub csrf: &'a str,
    pub title: &'a str,
    /// The app's page and its label, for the breadcrumb and "Cancel".
    pub back: (String, &'a str),
    pub text: Markup,
    pub action: String,
    pub button: &'a str,
}

pub(super) fn confirm(c: Confirm<'_>) -> Response {
    let (here, label) = c.back;
    let page = Frame::new(c.title, Some(c.csrf))
        .crumb(here.clone(), label)
        .render(html! {
            p { (c.text) }
            (post_form(&c.action, c.csrf, None, html! {
                p.actions {
                    button.danger type="submit" { (c.button) }
                    a href=(here) { "Cancel" }
                }
            }))
        });
    respond(StatusCode::OK, page)
}
