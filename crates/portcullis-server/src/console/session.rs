//! Signing in and out, and where a person lands: the sign-in form (`POST
//! /admin/v1/sessions`, its token kept in the session cookie), signing out (`DELETE
//! /admin/v1/sessions/current`), and `/console/` itself.

use super::common::{Page, see_other};
use super::view::{Frame, PageError, alert, respond};
use super::{ConsoleForm, Ctx, LOGIN_COOKIE, SESSION_COOKIE, Signed};
use crate::admin::Page as Listing;
use crate::admin::orgs::OrgBody;
use crate::admin::sessions::SessionBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::json;

/// Where a person lands: their organizations, or, when they manage none (a subscriber),
/// their notifications. A platform administrator always lands on the organizations, where
/// they create them.
pub(super) async fn home(ctx: Ctx) -> Response {
    if ctx.session.is_none() {
        return see_other("/console/login");
    }
    match ctx
        .api()
        .get::<Listing<OrgBody>>("/admin/v1/orgs?limit=1")
        .await
    {
        Ok(list)
            if list.items.is_empty()
                && !super::orgs::is_platform_admin(super::orgs::me(&ctx).await.as_ref()) =>
        {
            see_other("/console/notifications")
        }
        _ => see_other("/console/orgs"),
    }
}

fn login_form(csrf: &str, email: &str, error: Option<&str>) -> Markup {
    Frame::new("Sign in", None).render(html! {
        @if let Some(e) = error { (alert(e)) }
        p { "Sign in with your email and the password you chose when you opened your invitation (or password reset) link." }
        form.stack method="post" action="/console/login" {
            input type="hidden" name="csrf" value=(csrf);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button.primary type="submit" { "Sign in" }
        }
    })
}

/// The sign-in form, with a fresh pre-session nonce in its cookie.
fn render_login(ctx: &Ctx, status: StatusCode, email: &str, error: Option<&str>) -> Page {
    ctx.pre_session_form(|csrf| respond(status, login_form(csrf, email, error)))
}

pub(super) async fn login_page(ctx: Ctx) -> Page {
    render_login(&ctx, StatusCode::OK, "", None)
}

pub(super) async fn login(ctx: Ctx, form: ConsoleForm) -> Page {
    let expected = ctx.login_nonce.as_deref().and_then(|n| ctx.login_csrf(n));
    super::check_token(expected, &form)?;
    form.only(&["email", "password"])?;
    let (email, password) = (form.one("email")?, form.one("password")?);
    let now = ctx.state.now();
    if let Some(ip) = ctx.client
        && let Some(retry) = ctx.state.password_failures.blocked(ip, None, now)
    {
        let mut res = PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed sign-ins from your address; try again in {retry} s."),
        )
        .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(res);
    }
    // The per-account lockout (the admin API refuses too; answered here with Retry-After).
    if let Ok(account) = crate::admin::users::normalise_email(email)
        && let Some(retry) = ctx.state.logins.blocked(&account, now)
    {
        let mut res = PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong passwords for this account; try again in {retry} s."),
        )
        .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(res);
    }
    let answer = ctx
        .api()
        .post::<SessionBody>(
            "/admin/v1/sessions",
            Some(json!({"email": email, "password": password})),
        )
        .await;
    match answer {
        Ok(session) => {
            let max_age = session.expires_at - now;
            let mut res = see_other("/console/");
            let h = res.headers_mut();
            h.append(
                header::SET_COOKIE,
                ctx.cookie(SESSION_COOKIE, &session.token, max_age),
            );
            h.append(header::SET_COOKIE, ctx.cookie(LOGIN_COOKIE, "", 0));
            Ok(res)
        }
        Err(e) => {
            // The admin API counted the failure against the address and the account.
            let status = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::BAD_GATEWAY
            };
            render_login(&ctx, status, email, Some(&e.detail))
        }
    }
}

pub(super) async fn logout(Signed(ctx): Signed, form: ConsoleForm) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    // The session may already have ended; signing out still clears the cookie.
    let _ = ctx.api().delete("/admin/v1/sessions/current").await;
    let mut res = see_other("/console/login");
    res.headers_mut()
        .append(header::SET_COOKIE, ctx.cookie(SESSION_COOKIE, "", 0));
    Ok(res)
}
