//! Applications: an organization's list of them, creating one, an application's page
//! (its credentials, details, usage and client secrets), and what its buttons do — add a client
//! secret or generate an access token (each shown once), revoke a token, delete a secret
//! or the application. All through `/admin/v1/apps…` as the signed-in user.

use super::api::seg;
use super::common::{Confirm, Page, confirm, download, once_page, org_frame, org_href, see_other};
use super::edit::Choices;
use super::orgs::{load_org, name_of, org_nav};
use super::view::{Frame, PageError, alert, copy_field, notice, post_form, respond, time, words};
use super::{ConsoleForm, Ctx, Signed, fresh_nonce};
use crate::admin::Page as Listing;
use crate::admin::apps::AppBody;
use crate::admin::orgs::OrgBody;
use crate::admin::secrets::{CreatedSecret, SecretBody};
use crate::admin::tokens::{IssuedToken, RevokeResult};
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The admin API's address of an app.
pub(super) fn app_path(cid: &str) -> String {
    format!("/admin/v1/apps/{}", seg(cid))
}

/// The console's page of an app.
pub(super) fn app_page(cid: &str) -> String {
    format!("/console/apps/{}", seg(cid))
}

pub(super) async fn load_app(ctx: &Ctx, cid: &str) -> Result<AppBody, PageError> {
    Ok(ctx.api().get(&app_path(cid)).await?)
}

/// The apps of an org (the first 100).
pub(super) async fn org_apps_of(
    ctx: &Ctx,
    org: &str,
) -> Result<Listing<AppBody>, super::api::ApiError> {
    ctx.api()
        .get(&format!("/admin/v1/apps?org={}&limit=100", seg(org)))
        .await
}

/// `GET /console/orgs/{org}`: the org's applications.
pub(super) async fn org_apps(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    let apps = org_apps_of(&ctx, &org).await?.items;
    let new = format!("/console/orgs/{}/apps/new", seg(&org));
    let page = Frame::new(&o.name, Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .render(html! {
            (org_nav(&ctx, &org, "").await)
            p.actions { a.button.primary href=(new) { "Create application" } }
            @if apps.is_empty() {
                div.empty {
                    p { "No applications yet." }
                    p { "An application is what calls your APIs: it gets a client id (its API key) and client secrets to obtain access tokens. "
                        a href=(new) { "Create the first one" } "." }
                }
            } @else {
                div.scroll {
                    table {
                        caption.sr { "Applications" }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Client id" } th scope="col" { "Status" } th scope="col" { "Scopes" } } }
                        tbody {
                            @for a in &apps {
                                tr {
                                    td { a href=(app_page(&a.client_id)) { (a.name) } }
                                    td { code.id { (a.client_id) } }
                                    td { (a.status.as_str()) }
                                    td { (words(&a.effective_scopes)) }
                                }
                            }
                        }
                    }
                }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

fn app_form(org: &OrgBody, csrf: &str, name: &str, scopes: &str, error: Option<&str>) -> Markup {
    org_frame("Create application", csrf, org).render(html! {
        @if let Some(e) = error { (alert(e)) }
        (post_form(&format!("/console/orgs/{}/apps", seg(&org.id)), csrf, None, html! {
            div.stack {
                label for="name" { "Name" }
                input #name type="text" name="name" value=(name) required maxlength="200" aria-describedby="name-help";
                small #name-help { "For people: shown in the console and logs." }
                label for="scopes" { "Scopes" }
                input #scopes type="text" name="scopes" value=(scopes) aria-describedby="scopes-help" autocapitalize="none" spellcheck="false";
                small #scopes-help { "Space-separated, like " code { "read write" } ". Tokens of this app carry these." }
                (super::edit::choice_fields(org, None))
                button.primary type="submit" { "Create application" }
            }
        }))
    })
}

pub(super) async fn new_app(Signed(ctx): Signed, Path(org): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let o = load_org(&ctx, &org).await?;
    Ok(respond(StatusCode::OK, app_form(&o, &csrf, "", "", None)))
}

pub(super) async fn create_app(
    Signed(ctx): Signed,
    Path(org): Path<String>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    let csrf = ctx.csrf().unwrap_or_default();
    let name = form.one("name")?;
    let scopes = form.opt("scopes")?.unwrap_or("");
    let (
        mut allowed,
        Choices {
            products,
            sandboxes,
        },
    ) = super::edit::read_choices(&form)?;
    allowed.extend(["name".to_owned(), "scopes".to_owned()]);
    form.only(&allowed.iter().map(String::as_str).collect::<Vec<_>>())?;
    let body = json!({
        "org_id": org,
        "name": name,
        "scopes": scopes.split_whitespace().collect::<Vec<_>>(),
        "products": products,
        "sandboxes": sandboxes,
    });
    match ctx
        .api()
        .post::<AppBody>("/admin/v1/apps", Some(body))
        .await
    {
        Ok(app) => Ok(see_other(&app_page(&app.client_id))),
        Err(e) => {
            let o = load_org(&ctx, &org).await?;
            Ok(respond(
                e.status,
                app_form(&o, &csrf, name, scopes, Some(&e.detail)),
            ))
        }
    }
}

/// `GET /console/apps/{cid}`: the app's page (`?range=` the usage section's range).
pub(super) async fn app_detail(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    RawQuery(query): RawQuery,
) -> Page {
    let range = super::usage::Range::parse(query.as_deref())?;
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let secrets: Listing<SecretBody> = ctx
        .api()
        .get(&format!("{}/secrets", app_path(&cid)))
        .await?;
    let secrets = secrets.items;
    let org_name = name_of(&ctx, &app.org_id).await;
    let keys = super::credentials::section(&ctx, &cid, &csrf).await?;
    let usage = super::usage::app_section(&ctx, &app, range).await;
    let here = app_page(&cid);
    let sandboxes: Vec<String> = app
        .sandboxes
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.as_str()))
        .collect();
    let page = Frame::new(&app.name, Some(&csrf))
        .crumb("/console/orgs", "Organizations")
        .crumb(org_href(&app.org_id), org_name)
        .render(html! {
            section aria-labelledby="creds" {
                h2 #creds { "Credentials" }
                (copy_field("client-id", "Client id (API key)", &app.client_id))
                (copy_field("tech-account", "Technical account id", &app.technical_account_id))
                div.actions {
                    (post_form(&format!("{here}/token"), &csrf, Some(&fresh_nonce()), html! {
                        button.primary type="submit" { "Generate access token" }
                    }))
                    (post_form(&format!("{here}/secrets"), &csrf, Some(&fresh_nonce()), html! {
                        button type="submit" { "Add client secret" }
                    }))
                    a.button href={(here) "/revoke"} { "Revoke a token" }
                }
            }
            (keys)
            section aria-labelledby="details" {
                h2 #details { "Details" }
                p.actions { a.button href={(here) "/edit"} { "Edit application" } a.button href={(here) "/feeds"} { "Wave feeds" } }
                dl.facts {
                    dt { "Status" } dd { (app.status.as_str()) }
                    dt { "Scopes" } dd { (words(&app.effective_scopes)) }
                    dt { "Products" } dd { (words(&app.products)) }
                    dt { "Sandboxes" } dd { (words(&sandboxes)) }
                    dt { "Token lifetime" } dd { @if let Some(t) = app.token_ttl_seconds { (t) " s" } @else { "the default (1 hour)" } }
                    dt { "Tokens" } dd #token-binding {
                        @if app.dpop_bound_access_tokens {
                            "bound to the client's key (DPoP required): each request needs a proof signed with that key"
                        } @else {
                            "bearer tokens; bound to the client's key (DPoP) when the client sends a proof"
                        }
                    }
                    dt { "Created" } dd { (time(app.created_at)) }
                }
            }
            (usage)
            section aria-labelledby="secrets" {
                h2 #secrets { "Client secrets" }
                @if secrets.is_empty() {
                    div.empty { p { "No client secrets. Add one to obtain tokens with "
                        code { "client_credentials" } " from " code { "/oauth/token" } "." } }
                } @else {
                    div.scroll { table {
                        caption.sr { "Client secrets" }
                        thead { tr { th scope="col" { "Starts with" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { span.sr { "Actions" } } } }
                        tbody { @for sec in &secrets { tr {
                            td { code { (sec.prefix) "…" } }
                            td { (time(sec.created_at)) }
                            td { @if let Some(t) = sec.last_used_at { (time(t)) } @else { span.muted { "never" } } }
                            td { @if let Some(t) = sec.expires_at { (time(t)) } @else { span.muted { "never" } } }
                            td { a href={(here) "/secrets/" (seg(&sec.id)) "/delete"} { "Delete" span.sr { " secret " (sec.prefix) } } }
                        } } }
                    } }
                }
            }
            section.danger aria-labelledby="danger" {
                h2 #danger { "Danger zone" }
                p { "Deleting the application ends all of its tokens at once." }
                a.button.danger href={(here) "/delete"} { "Delete application" }
            }
        });
    Ok(respond(StatusCode::OK, page))
}

/// A once-only button's POST on the app `cid`: check the form (its CSRF token, no fields
/// but `allowed`), take `body` from it, use its nonce, then `POST
/// /admin/v1/apps/{cid}/{what}`; the answer, the CSRF token and the app's page.
pub(super) async fn create_once<T: DeserializeOwned>(
    ctx: &Ctx,
    cid: &str,
    form: &ConsoleForm,
    allowed: &[&str],
    what: &str,
    body: impl FnOnce(&ConsoleForm) -> Result<Option<Value>, PageError>,
) -> Result<(T, String, String), PageError> {
    ctx.check_csrf(form)?;
    form.only(allowed)?;
    let body = body(form)?;
    let here = app_page(cid);
    ctx.use_once(form)
        .map_err(|e| e.back(&here, "Back to the application"))?;
    let created = ctx
        .api()
        .post(&format!("{}/{what}", app_path(cid)), body)
        .await
        .map_err(|e| PageError::from(e).back(&here, "Back to the application"))?;
    Ok((created, ctx.csrf().unwrap_or_default(), here))
}

/// The page that shows what a once-only button on the app page `here` made.
pub(super) fn shown_once(title: &str, csrf: &str, here: &str, body: Markup) -> Response {
    once_page(
        Frame::new(title, Some(csrf))
            .crumb(here, "Application")
            .render(body),
    )
}

pub(super) async fn add_secret(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    let (created, csrf, here): (CreatedSecret, _, _) =
        create_once(&ctx, &cid, &form, &[], "secrets", |_| Ok(None)).await?;
    let (client_id, secret) = (&created.record.client_id, &created.secret);
    Ok(shown_once(
        "Your new client secret",
        &csrf,
        &here,
        html! {
            (notice("Copy the secret now: this is the only time it is shown. Portcullis keeps only a keyed hash of it."))
            (copy_field("client-id", "Client id", client_id))
            (copy_field("secret", "Client secret", secret))
            p.actions {
                (download(&format!("portcullis-secret-{client_id}.txt"), secret))
                a.button.primary href=(here) { "Done, back to the application" }
            }
        },
    ))
}

pub(super) async fn generate_token(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    let (issued, csrf, here): (IssuedToken, _, _) =
        create_once(&ctx, &cid, &form, &[], "tokens", |_| Ok(None)).await?;
    let token = &issued.access_token;
    Ok(shown_once(
        "Access token",
        &csrf,
        &here,
        html! {
            (notice("This token is shown once. Send it as 'Authorization: Bearer <token>' with the client id as x-api-key."))
            (copy_field("token", "Access token", token))
            dl.facts {
                dt { "Expires" } dd #expires { (time(issued.expires_at)) " (in " (issued.expires_in) " s)" }
                dt { "Scopes" } dd { (words(issued.scope.split_whitespace())) }
            }
            p.actions {
                (download("portcullis-access-token.txt", token))
                a.button href={(here) "/revoke"} { "Revoke a token" }
                a.button.primary href=(here) { "Back to the application" }
            }
        },
    ))
}

fn revoke_form(app: &AppBody, csrf: &str, result: Option<Markup>) -> Markup {
    let here = app_page(&app.client_id);
    Frame::new("Revoke a token", Some(csrf))
        .crumb(here.clone(), &app.name)
        .render(html! {
            @if let Some(r) = result { (r) }
            p { "Paste an access token of " strong { (app.name) } ". Once revoked, it is refused everywhere (token introspection and the gateway) from the next request on." }
            (post_form(&format!("{here}/revoke"), csrf, None, html! {
                div.stack {
                    label for="token" { "Access token" }
                    textarea #token name="token" rows="4" required autocapitalize="none" spellcheck="false" {}
                    button.danger type="submit" { "Revoke token" }
                }
            }))
            p { a href=(here) { "Back to the application" } }
        })
}

pub(super) async fn revoke_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    Ok(respond(StatusCode::OK, revoke_form(&app, &csrf, None)))
}

pub(super) async fn revoke(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&["token"])?;
    let token = form.one("token")?;
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let answer = ctx
        .api()
        .post::<RevokeResult>(
            &format!("{}/revoke", app_path(&cid)),
            Some(json!({"token": token})),
        )
        .await;
    let (status, result) = match answer {
        Ok(r) if r.revoked => (
            StatusCode::OK,
            notice("The token was revoked. The gateway and introspection refuse it from now on."),
        ),
        Ok(_) => (
            StatusCode::OK,
            notice(
                "That is not a valid token of this server (malformed, expired, or signed by a retired key): there was nothing to revoke.",
            ),
        ),
        Err(e) => (e.status, alert(&e.detail)),
    };
    Ok(respond(status, revoke_form(&app, &csrf, Some(result))))
}

pub(super) async fn delete_app_page(Signed(ctx): Signed, Path(cid): Path<String>) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let app = load_app(&ctx, &cid).await?;
    let here = app_page(&cid);
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete application?",
        action: format!("{here}/delete"),
        back: (here, &app.name),
        text: html! { "Delete " strong { (app.name) } " (" code { (app.client_id) } ")? Its secrets and every token it holds stop working at once. This cannot be undone." },
        button: "Delete application",
    }))
}

pub(super) async fn delete_app(
    Signed(ctx): Signed,
    Path(cid): Path<String>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    let app = load_app(&ctx, &cid).await?;
    ctx.api()
        .delete(&app_path(&cid))
        .await
        .map_err(|e| PageError::from(e).back(app_page(&cid), "Back to the application"))?;
    Ok(see_other(&org_href(&app.org_id)))
}

fn secret_path(cid: &str, sid: &str) -> String {
    format!("{}/secrets/{}", app_path(cid), seg(sid))
}

pub(super) async fn delete_secret_page(
    Signed(ctx): Signed,
    Path((cid, sid)): Path<(String, String)>,
) -> Page {
    let csrf = ctx.csrf().unwrap_or_default();
    let secret: SecretBody = ctx.api().get(&secret_path(&cid, &sid)).await?;
    let here = app_page(&cid);
    Ok(confirm(Confirm {
        csrf: &csrf,
        title: "Delete client secret?",
        action: format!("{here}/secrets/{}/delete", seg(&sid)),
        back: (here, "Application"),
        text: html! { "Delete the secret starting " code { (secret.prefix) "…" } "? Clients using it are refused from the next request, and the tokens obtained with it stop working." },
        button: "Delete secret",
    }))
}

pub(super) async fn delete_secret(
    Signed(ctx): Signed,
    Path((cid, sid)): Path<(String, String)>,
    form: ConsoleForm,
) -> Page {
    ctx.check_csrf(&form)?;
    form.only(&[])?;
    ctx.api()
        .delete(&secret_path(&cid, &sid))
        .await
        .map_err(|e| PageError::from(e).back(app_page(&cid), "Back to the application"))?;
    Ok(see_other(&app_page(&cid)))
}
