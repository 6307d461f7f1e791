//! `/identity/1.0/oauth/authorize?oauth_token=…&feedId=…[&invokeArgs=…]`: the page where a
//! subscriber signs in (email and password) and approves linking their account to a
//! publisher's point-to-point feed. Approving sends the browser to the feed's callback
//! URL, built as Adobe Wave describes:
//! `<callback base>?feedId=…&companyId=…[&<invokeArgs>]&oauth_token=…` (no verifier).
//!
//! Denying (the Deny button; no sign-in needed) forgets the request token, so the
//! access-token step refuses it, and sends the browser to the same callback URL with
//! `oauth_problem=user_refused` before `oauth_token` (the OAuth Problem Reporting
//! extension's name for it; the vendor only describes success), so the publisher can tell
//! its user the link was refused.
//!
//! CSRF: the GET sets a random cookie, and the form carries an HMAC (under the server's
//! secret-hash key) of that cookie and the request token; the POST needs both to match,
//! so a form posted from another site, or for another request token, is refused.

use super::{WaveError, form_pairs, media_type, no_store};
use crate::console::CSP;
use crate::console::view::{Frame, alert};
use crate::problem::Problem;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use portcullis_core::ids::RecordId;
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::wave::{Feed, FeedKind, RequestToken};
use std::collections::HashMap;

const CSRF_COOKIE: &str = "portcullis_wave_csrf";
const PATH: &str = "/identity/1.0/oauth/authorize";

/// The parameters of the page, checked.
struct Linking {
    token_text: String,
    token: RequestToken,
    feed: Feed,
    /// The publisher's context, re-encoded (never echoed raw into the callback URL).
    invoke_args: Vec<(String, String)>,
    invoke_args_text: Option<String>,
}

fn unique(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, Problem> {
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), v).is_some() {
            return Err(Problem::bad_request(format!(
                "The parameter '{}' is given more than once.",
                k.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(map)
}

async fn linking(state: &AppState, p: &HashMap<String, String>) -> Result<Linking, Problem> {
    let need = |k: &str| {
        p.get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Problem::bad_request(format!("The '{k}' parameter is missing.")))
    };
    let token_text = need("oauth_token")?.clone();
    let feed_id = need("feedId")?;
    let not_live = || {
        Problem::bad_request(
            "oauth_token is not a request token waiting for approval: it is unknown, expired, or already approved. Start linking again from the publisher.",
        )
    };
    let secret = Secret::parse(SecretKind::OAuth1Token, &token_text).map_err(|_| not_live())?;
    let hash_key = state.hash_key()?;
    let token = state
        .store
        .request_token(&secret.hash(&hash_key), state.now())
        .await?
        .filter(|t| t.authorized.is_none())
        .ok_or_else(not_live)?;
    let no_feed = || {
        Problem::bad_request(format!(
            "feedId '{}' is not a point-to-point feed of the publisher that asked for this request token.",
            feed_id.chars().take(40).collect::<String>()
        ))
    };
    let feed_id = RecordId::parse(feed_id).map_err(|_| no_feed())?;
    let feed = state
        .store
        .feed(&feed_id)
        .await?
        .filter(|f| {
            f.client_id == token.client_id
                && f.kind == FeedKind::PointToPoint
                && f.callback_url.is_some()
        })
        .ok_or_else(no_feed)?;
    let invoke_args_text = p.get("invokeArgs").filter(|v| !v.is_empty()).cloned();
    let invoke_args = match &invoke_args_text {
        None => Vec::new(),
        Some(a) => {
            if a.len() > 1024 {
                return Err(Problem::bad_request(
                    "invokeArgs must be at most 1,024 bytes.",
                ));
            }
            let pairs = form_pairs(a.as_bytes()).ok_or_else(|| {
                Problem::bad_request("invokeArgs must be a query string (name=value&…).")
            })?;
            if let Some((k, _)) = pairs
                .iter()
                .find(|(k, _)| matches!(k.as_str(), "feedId" | "companyId" | "oauth_token"))
            {
                return Err(Problem::bad_request(format!(
                    "invokeArgs may not set '{k}': the callback URL carries it already."
                )));
            }
            pairs
        }
    };
    Ok(Linking {
        token_text,
        token,
        feed,
        invoke_args,
        invoke_args_text,
    })
}

fn csrf_for(state: &AppState, link: &Linking, cookie: &str) -> Result<String, Problem> {
    let key = state.hash_key()?;
    Ok(key
        .hash_text(&format!(
            "wave-authorize|{}|{cookie}",
            link.token.hash.to_hex()
        ))
        .to_hex())
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CSRF_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn page_markup(link: &Linking, csrf: &str, email: &str, error: Option<&str>) -> Markup {
    // The console's frame and stylesheet: one look for every page a person sees.
    Frame::new("Link your account", None).render(html! {
        p { "The publisher of the feed " strong { (link.feed.name) } " asks to send notifications to your account." }
        @if let Some(e) = error { (alert(e)) }
        form.stack method="post" action=(PATH) {
            input type="hidden" name="oauth_token" value=(link.token_text);
            input type="hidden" name="feedId" value=(link.feed.id.as_str());
            @if let Some(a) = &link.invoke_args_text {
                input type="hidden" name="invokeArgs" value=(a);
            }
            input type="hidden" name="csrf" value=(csrf);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button.primary type="submit" name="decision" value="approve" { "Sign in and approve" }
            button type="submit" name="decision" value="deny" formnovalidate { "Deny" }
        }
        p.muted { "Deny tells the publisher you refused; nothing is linked until you approve." }
    })
}

/// The console's policy, with the callback's origin allowed as a form target: a browser
/// applies `form-action` to the redirect that answers the approval, too.
fn csp(link: &Linking) -> String {
    let origin = link
        .feed
        .callback_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin())
        .filter(url::Origin::is_tuple)
        .map(|o| o.ascii_serialization())
        .unwrap_or_default();
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    )
}

fn html_response(status: StatusCode, link: &Linking, markup: Markup) -> Response {
    let mut res = (status, axum::response::Html(markup.into_string())).into_response();
    let h = res.headers_mut();
    let policy = HeaderValue::from_str(&csp(link)).unwrap_or(HeaderValue::from_static(CSP));
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    no_store(res)
}

fn query_params(query: Option<&str>) -> Result<HashMap<String, String>, Problem> {
    let pairs = form_pairs(query.unwrap_or("").as_bytes())
        .ok_or_else(|| Problem::bad_request("The query is not valid UTF-8 once decoded."))?;
    unique(pairs)
}

/// `GET /identity/1.0/oauth/authorize`: the sign-in and approval form.
pub async fn page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WaveError> {
    let p = query_params(query.as_deref())?;
    let link = linking(&state, &p).await?;
    let cookie = hex::encode(portcullis_core::random_bytes::<16>());
    let csrf = csrf_for(&state, &link, &cookie)?;
    let mut res = html_response(StatusCode::OK, &link, page_markup(&link, &csrf, "", None));
    let set =
        format!("{CSRF_COOKIE}={cookie}; Path={PATH}; HttpOnly; SameSite=Strict; Max-Age=900");
    if let Ok(v) = HeaderValue::from_str(&set) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// The callback URL of Adobe Wave: the feed's fixed base, `feedId` and `companyId`, the
/// publisher's `invokeArgs`, then `oauth_token`.
/// `problem` (a denial) goes just before `oauth_token`, which stays last as the vendor does.
fn callback_url(link: &Linking, problem: Option<&str>) -> String {
    let base = link.feed.callback_url.as_deref().unwrap_or_default();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("feedId", link.feed.id.as_str());
    q.append_pair("companyId", &link.feed.company_id());
    for (k, v) in &link.invoke_args {
        q.append_pair(k, v);
    }
    if let Some(p) = problem {
        q.append_pair("oauth_problem", p);
    }
    q.append_pair("oauth_token", &link.token_text);
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{base}{sep}{}", q.finish())
}

/// `POST /identity/1.0/oauth/authorize`: check the CSRF token; then, for `decision=deny`,
/// forget the request token and send the browser to the callback with
/// `oauth_problem=user_refused`; else (`approve`, the default) check the subscriber's
/// password, authorize the request token, and send the browser to the callback URL.
pub async fn approve(
    State(state): State<AppState>,
    crate::audit::ClientAddr(client): crate::audit::ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WaveError> {
    if media_type(&headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(Problem::unsupported_media_type(
            "Send the form as application/x-www-form-urlencoded.",
        )
        .into());
    }
    let pairs = form_pairs(&body)
        .ok_or_else(|| Problem::bad_request("The form is not valid UTF-8 once decoded."))?;
    let p = unique(pairs)?;
    let link = linking(&state, &p).await?;
    let csrf_refused = || {
        Problem::new(
            403,
            "csrf",
            "PCS-0403-CSRF",
            "Form refused",
            "The form's CSRF token does not match this browser and request token. Open the authorize link again.",
        )
    };
    let cookie = cookie_value(&headers).ok_or_else(csrf_refused)?;
    let expected = csrf_for(&state, &link, &cookie)?;
    let presented = p.get("csrf").map(String::as_str).unwrap_or("");
    let hash_key = state.hash_key()?;
    if !hash_key
        .hash_text(presented)
        .ct_eq(&hash_key.hash_text(&expected))
    {
        return Err(csrf_refused().into());
    }
    match p.get("decision").map(String::as_str) {
        None | Some("approve") => {}
        Some("deny") => {
            state
                .store
                .delete_request_token(&link.token.hash)
                .await
                .map_err(|e| match e {
                    portcullis_store::StoreError::NotFound => Problem::bad_request(
                        "The request token expired or was used meanwhile. Start linking again from the publisher.",
                    ),
                    other => other.into(),
                })?;
            tracing::info!(feed = %link.feed.id, "request token denied by the subscriber");
            return redirect(&callback_url(&link, Some("user_refused")));
        }
        Some(_) => {
            return Err(Problem::bad_request("'decision' must be 'approve' or 'deny'.").into());
        }
    }
    let email = p.get("email").map(String::as_str).unwrap_or("");
    let pw = p.get("password").cloned().unwrap_or_default();
    let Some(user) = super::sign_in(&state, client, email, &pw).await? else {
        return Ok(html_response(
            StatusCode::UNAUTHORIZED,
            &link,
            page_markup(
                &link,
                &expected,
                email,
                Some("The email or password is wrong."),
            ),
        ));
    };
    state
        .store
        .authorize_request_token(&link.token.hash, &user.id, &link.feed.id, state.now())
        .await
        .map_err(|e| match e {
            portcullis_store::StoreError::NotFound => Problem::bad_request(
                "The request token expired or was approved meanwhile. Start linking again from the publisher.",
            ),
            other => other.into(),
        })?;
    tracing::info!(user = %user.id, feed = %link.feed.id, "request token authorized");
    redirect(&callback_url(&link, None))
}

/// 303 to the publisher's callback.
fn redirect(location: &str) -> Result<Response, WaveError> {
    let mut res = StatusCode::SEE_OTHER.into_response();
    let v = HeaderValue::from_str(location)
        .map_err(|e| Problem::internal(&format!("callback URL is not a header value: {e}")))?;
    res.headers_mut().insert(header::LOCATION, v);
    Ok(no_store(res))
}
