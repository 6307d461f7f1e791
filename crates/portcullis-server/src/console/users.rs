//! People: an org's users page (who has which role), inviting someone, resetting a
//! password, and the public pages where the invited or reset person chooses a password.
//!
//! All through the admin API: `POST /admin/v1/invitations` and
//! `POST /admin/v1/users/{id}/password-reset` as the signed-in admin (the link each
//! answers with is shown once, with a copy button, for the admin to pass on — there is no
//! mail server), then `GET /admin/v1/user-links/current` and
//! `POST /admin/v1/user-links/current/accept` with the link's own token, for the person
//! who opens `/console/invite/{token}` or `/console/reset/{token}`. Those two pages have no
//! session; their form's CSRF token comes from a pre-session nonce, as the sign-in form's.

use super::api::seg;
use super::common::{Page, once_page, org_frame};
use super::orgs::{load_org, org_nav};
use super::view::{Frame, PageError, alert, copy_field, notice, post_form, respond, time};
use super::{ConsoleForm, Ctx, LOGIN_COOKIE, Signed, fresh_nonce};
use crate::admin::Page as Listing;
use crate::admin::links::{Accepted, LinkBody, LinkInfo};
use crate::admin::orgs::OrgBody;
use crate::admin::users::UserBody;
use axum::extract::{OriginalUri, Path};
use axum::http::{StatusCode, header};
use maud::{Markup, html};
use serde_json::json;

fn users_href(org: &str) -> String {
    format!("/console/orgs/{}/users", seg(org))
}

const ROLES: [&str; 3] = ["developer", "admin", "subscriber"];

/// What the invite form shows: the values typed, and the refusal.
#[derive(Default)]
struct Typed<'a> {
    email: &'a str,
    name: &'a str,
    role: &'a str,
    error: Option<&'a str>,
}

fn users_view(
    org: &OrgBody,
    nav: Markup,
    csrf: &str,
    people: &[UserBody],
    typed: Typed<'_>,
) -> Markup {
    let id = org.id.as_str();
    let role_of = |u: &UserBody| u.roles.get(id).map_or("", |r| r.as_str());
    let chosen = if typed.role.is_empty() {
        "developer"
    } else {
        typed.role
    };
    org_frame(&format!("Users of {}", org.name), csrf, org)
        .render(html! {
            (nav)
            @if people.is_empty() {
                div.empty { p { "No users you can see have a role in this organization. Invite one below." } }
            } @else {
                div.scroll { table {
                    caption.sr { "Users" }
                    thead { tr { th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Since" } th scope="col" { span.sr { "Actions" } } } }
                    tbody { @for u in people { tr {
                        td.nowrap { (u.email) }
                        td { (u.name) }
                        td {
                            code { (role_of(u)) }
                            @if u.platform_admin { " " small.muted.platform { "platform administrator" } }
                        }
                        td.nowrap { (time(u.created_at)) }
                        td { a href={(users_href(id)) "/" (seg(&u.id)) "/reset"} { "Reset password" span.sr { " of " (u.email) } } }
                    } } }
                } }
            }
            section aria-labelledby="invite" {
                h2 #invite { "Invite user" }
                p { "You get a one-time link to give the person (by chat, in person…): they open it and choose their password. It works once, for 24 hours." }
                @if let Some(e) = typed.error { (alert(e)) }
                (post_form(&format!("/console/orgs/{}/invitations", seg(id)), csrf, Some(&fresh_nonce()), html! {
                    div.stack {
                        label for="invite-email" { "Email" }
                        input #invite-email type="email" name="email" value=(typed.email) required autocomplete="off";
                        label for="invite-name" { "Name (optional)" }
                        input #invite-name type="text" name="name" value=(typed.name) maxlength="200";
                        label for="invite-role" { "Role" }
                        select #invite-role name="role" aria-describedby="role-help" {
                            @for r in ROLES { option value=(r) selected[r == chosen] { (r) } }
                        }
                        small #role-help { "developer: manages apps and credentials · admin: also users, groups and the audit log · subscriber: receives notifications." }
                        button.primary type="submit" { "Invite user" }
                    }
                }))
            }
        })
}

/// The users the caller can see (the first 1000).
pub(super) async fn all_users(ctx: &Ctx) -> Result<Vec<UserBody>, super::api::ApiError> {
    ctx.api()
        .get::<Listing<UserBody>>("/admin/v1/users?limit=1000")
        .await
        .map(|l| l.items)
}

/// The users who have a role in `org`.
pub(super) fn members(users: Vec<UserBody>, org: &str) -> Vec<UserBody> {
    users
        .into_iter()
        .filter(|u| u.roles.contains_key(org))
        .collect()
}

/// The org, and the users the caller can see who have a role in it.
async fn people(ctx: &Ctx, org: &str) -> Result<(OrgBody, Vec<UserBody>), PageError> {
    let o = load_org(ctx, org).await?;
    let people = members(all_users(ctx).await?, org);
    Ok((o, people))
}

pub(super) async fn users_page(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let (o, list) = people(&ctx, &org).await?;
    Ok(respond(
        StatusCode::OK,
        users_view(
            &o,
            org_nav(&ctx, &org, "/users").await,
            &csrf,
            &list,
            Typed::default(),
        ),
    ))
}

/// The page that shows a new link once.
fn link_shown(csrf: &str, back: String, title: &str, what: Markup, link: &LinkBody) -> Page {
    let page = Frame::new(title, Some(csrf))
        .crumb(back.clone(), "Users")
        .render(html! {
            (notice("Copy the link now: this is the only time it is shown. Portcullis keeps only a keyed hash of it."))
            p { (what) }
            (copy_field("link", "One-time link", &link.link))
            dl.facts { dt { "Works until" } dd { (time(link.expires_at)) " (once)" } }
            p.actions { a.button.primary href=(back) { "Done, back to the users" } }
        });
    Ok(once_page(page))
}

pub(super) async fn invite(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["email", "name", "role"])?;
    let (email, role) = (form.one("email")?, form.one("role")?);
    let name = form.opt("name")?.unwrap_or("");
    let back = users_href(&org);
    ctx.use_once(&form)
        .map_err(|e| e.back(&back, "Back to the users"))?;
    let body = json!({"email": email, "name": name, "org_id": org, "role": role});
    match ctx
        .api()
        .post::<LinkBody>("/admin/v1/invitations", Some(body))
        .await
    {
        Ok(link) => {
            let what = html! { "Give it to " strong { (link.email) } ": they open it, choose a password, and can then sign in as " code { (link.role.as_deref().unwrap_or("")) } "." };
            link_shown(
                &ctx.csrf().unwrap_or_default(),
                back,
                "Invitation link",
                what,
                &link,
            )
        }
        Err(e) => {
            // Shown again with what was typed, and why it was refused.
            let csrf = ctx.csrf().unwrap_or_default();
            let (o, list) = people(&ctx, &org).await?;
            let typed = Typed {
                email,
                name,
                role,
                error: Some(&e.detail),
            };
            Ok(respond(
                e.status,
                users_view(&o, org_nav(&ctx, &org, "/users").await, &csrf, &list, typed),
            ))
        }
    }
}

pub(super) async fn reset_page(
    Signed(ctx): Signed,
    Path((org, uid)): Path<(String, String)>,
) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let back = users_href(&org);
    let user: UserBody = ctx
        .api()
        .get(&format!("/admin/v1/users/{}", seg(&uid)))
        .await
        .map_err(|e| PageError::from(e).back(&back, "Back to the users"))?;
    let page = Frame::new("Reset password?", Some(&csrf))
        .crumb(back.clone(), "Users")
        .render(html! {
            p { "Reset the password of " strong { (user.email) } "? Their current password stops working at once and they are signed out everywhere. You get a one-time link to give them, with which they choose a new password." }
            (post_form(&format!("{back}/{}/reset", seg(&uid)), &csrf, Some(&fresh_nonce()), html! {
                p.actions {
                    button.danger type="submit" { "Reset password" }
                    a href=(back) { "Cancel" }
                }
            }))
        });
    Ok(respond(StatusCode::OK, page))
}

pub(super) async fn reset(
    Signed(ctx): Signed,
    Path((org, uid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let back = users_href(&org);
    ctx.use_once(&form)
        .map_err(|e| e.back(&back, "Back to the users"))?;
    let link: LinkBody = ctx
        .api()
        .post(
            &format!("/admin/v1/users/{}/password-reset", seg(&uid)),
            None,
        )
        .await
        .map_err(|e| PageError::from(e).back(&back, "Back to the users"))?;
    let what = html! { "Give it to " strong { (link.email) } ": they open it and choose a new password. Their old password no longer works." };
    link_shown(
        &ctx.csrf().unwrap_or_default(),
        back,
        "Password reset link",
        what,
        &link,
    )
}

// ---- the person with the link (no session) -------------------------------------------

/// A link's refusal as a page: unknown (the admin API's 401) is "not found", used or
/// expired (410) says so; never the sign-in page's 401.
fn dead_link(e: super::api::ApiError) -> PageError {
    let status = match e.status {
        StatusCode::UNAUTHORIZED => StatusCode::NOT_FOUND,
        s => s,
    };
    PageError::new(status, e.detail).back("/console/login", "Sign in")
}

fn password_form(csrf: &str, info: &LinkInfo, action: &str, error: Option<&str>) -> Markup {
    let invite = info.kind == "invite";
    let title = if invite {
        "Welcome: choose your password"
    } else {
        "Choose a new password"
    };
    Frame::new(title, None).render(html! {
        @if let Some(e) = error { (alert(e)) }
        p { "For " strong #link-email { (info.email) } ". This link works once, until " (time(info.expires_at)) "." }
        form.stack method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            // For password managers: the account the password belongs to.
            input type="hidden" name="username" value=(info.email) autocomplete="username";
            label for="password" { "New password" }
            input #password type="password" name="password" autocomplete="new-password" minlength="10" required autofocus aria-describedby="password-help";
            small #password-help { "At least 10 characters." }
            label for="confirm" { "The same password again" }
            input #confirm type="password" name="confirm" autocomplete="new-password" minlength="10" required;
            button.primary type="submit" { "Set password" }
        }
    })
}

/// The password form with a fresh pre-session nonce in its cookie.
fn render_password_form(
    ctx: &Ctx,
    status: StatusCode,
    info: &LinkInfo,
    action: &str,
    error: Option<&str>,
) -> Page {
    ctx.pre_session_form(|csrf| {
        let mut res = once_page(password_form(csrf, info, action, error));
        *res.status_mut() = status;
        res
    })
}

/// What the link in the path is for, if it is live; a page saying why not otherwise.
async fn live(ctx: &Ctx, kind: &str, token: &str) -> Result<LinkInfo, PageError> {
    let info: LinkInfo = ctx
        .api_as(token)
        .get("/admin/v1/user-links/current")
        .await
        .map_err(dead_link)?;
    if info.kind != kind {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "This link is not valid here; open it exactly as you were given it.",
        ));
    }
    Ok(info)
}

/// `invite` or `reset`, and the link's token, from the path the page was asked at (the
/// original one: inside the console's router the `/console` prefix is gone) (read
/// raw: a token is base58, and a segment that is not one is simply not a valid link).
fn link_of(uri: &axum::http::Uri) -> (&'static str, &str) {
    let kind = if uri.path().starts_with("/console/invite/") {
        "invite"
    } else {
        "reset"
    };
    (kind, uri.path().rsplit('/').next().unwrap_or(""))
}

pub(super) async fn link_page(ctx: Ctx, OriginalUri(uri): OriginalUri) -> Page {
    let (kind, token) = link_of(&uri);
    let info = live(&ctx, kind, token).await?;
    render_password_form(&ctx, StatusCode::OK, &info, uri.path(), None)
}

pub(super) async fn set_password(
    ctx: Ctx,
    OriginalUri(uri): OriginalUri,
    form: ConsoleForm,
) -> Page {
    let expected = ctx.login_nonce.as_deref().and_then(|n| ctx.login_csrf(n));
    super::check_token(expected, &form)?;
    form.only(&["username", "password", "confirm"])?;
    let (password, confirm) = (form.one("password")?, form.one("confirm")?);
    let (kind, token) = link_of(&uri);
    let info = live(&ctx, kind, token).await?;
    if password != confirm {
        return render_password_form(
            &ctx,
            StatusCode::BAD_REQUEST,
            &info,
            uri.path(),
            Some("The two passwords differ; type the same password twice."),
        );
    }
    let answer = ctx
        .api_as(token)
        .post::<Accepted>(
            "/admin/v1/user-links/current/accept",
            Some(json!({ "password": password })),
        )
        .await;
    match answer {
        Ok(done) => {
            let page = Frame::new("Your password is set", None).render(html! {
                (notice("Your password is set and this link no longer works. Sign in with your email and the new password."))
                p { "Account: " strong { (done.user.email) } }
                p.actions { a.button.primary href="/console/login" { "Sign in" } }
            });
            let mut res = once_page(page);
            *res.status_mut() = StatusCode::OK;
            res.headers_mut()
                .append(header::SET_COOKIE, ctx.cookie(LOGIN_COOKIE, "", 0));
            Ok(res)
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            render_password_form(&ctx, e.status, &info, uri.path(), Some(&e.detail))
        }
        Err(e) => Err(dead_link(e)),
    }
}
