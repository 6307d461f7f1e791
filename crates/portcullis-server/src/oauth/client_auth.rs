//! Which client is calling (RFC 6749 section 2.3.1): `client_secret_basic` (HTTP Basic with the
//! form-urlencoded client id and secret) or `client_secret_post` (form fields); at the
//! token endpoint also `private_key_jwt` (RFC 7523 section 2.2: `client_assertion_type` and
//! `client_assertion`). Using two methods at once is refused.

use super::form::OAuthForm;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::grant::client_assertion::{self, AssertionContext, CLIENT_ASSERTION_TYPE};
use portcullis_core::grant::client_auth::{AuthenticatedClient, authenticate};
use portcullis_core::oauth_error::OAuthError;
use portcullis_core::view::View;

/// The client id and secret as presented, before any check.
pub struct PresentedClient {
    pub client_id: String,
    pub secret: String,
}

fn basic(headers: &HeaderMap) -> Result<Option<PresentedClient>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_client("The Authorization header is not valid text."))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_client(
            "The Authorization header must be 'Basic <base64(client_id:client_secret)>'.",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "Authenticate the client with HTTP Basic (client_secret_basic) or with client_id and client_secret form fields (client_secret_post).",
        ));
    }
    let decoded = STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| OAuthError::invalid_client("The Basic credentials are not valid base64."))?;
    let (id, secret) = decoded.split_once(':').ok_or_else(|| {
        OAuthError::invalid_client("The Basic credentials must be 'client_id:client_secret'.")
    })?;
    // RFC 6749 section 2.3.1: both parts are form-urlencoded before Basic encoding.
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some(PresentedClient {
        client_id: unescape(id),
        secret: unescape(secret),
    }))
}

/// Extract the client's credentials from the request.
pub fn presented(headers: &HeaderMap, form: &OAuthForm) -> Result<PresentedClient, OAuthError> {
    let from_basic = basic(headers)?;
    let from_form = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some(PresentedClient {
            client_id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        _ => None,
    };
    match (from_basic, from_form) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "The client authenticated twice (HTTP Basic and form fields); use one method (RFC 6749 section 2.3).",
        )),
        (Some(b), None) => Ok(b),
        (None, Some(f)) => Ok(f),
        (None, None) => Err(OAuthError::invalid_client(
            "Client authentication is required: send HTTP Basic client_id:client_secret, or the client_id and client_secret form fields.",
        )),
    }
}

/// The client id a request claims (HTTP Basic, or the form's `client_id`), unverified:
/// for audit entries and usage counts of requests that may have failed.
pub fn claimed_client_id(headers: &HeaderMap, form: &OAuthForm) -> Option<String> {
    presented(headers, form)
        .ok()
        .map(|p| p.client_id)
        .or_else(|| form.get("client_id").map(str::to_owned))
}

/// Extract and check the client's credentials against the view.
pub fn authenticate_request(
    view: &View,
    headers: &HeaderMap,
    form: &OAuthForm,
    now: i64,
) -> Result<AuthenticatedClient, OAuthError> {
    let p = presented(headers, form)?;
    authenticate(view, &p.client_id, &p.secret, now)
}

/// Whether the request tries to authenticate the client at all (a header, a secret or an
/// assertion; a bare `client_id` does not).
pub fn has_client_auth(headers: &HeaderMap, form: &OAuthForm) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || form.get("client_secret").is_some()
        || form.get("client_assertion").is_some()
        || form.get("client_assertion_type").is_some()
}

/// Client authentication at the token endpoint: `private_key_jwt` when the form carries a
/// client assertion, else a client secret ([`authenticate_request`]).
pub fn authenticate_token_client(
    view: &View,
    headers: &HeaderMap,
    form: &OAuthForm,
    ctx: AssertionContext<'_>,
) -> Result<AuthenticatedClient, OAuthError> {
    let assertion_type = form.get("client_assertion_type");
    let assertion = form.get("client_assertion");
    if assertion_type.is_none() && assertion.is_none() {
        return authenticate_request(view, headers, form, ctx.now);
    }
    if headers.contains_key(header::AUTHORIZATION) || form.get("client_secret").is_some() {
        return Err(OAuthError::invalid_request(
            "The client authenticated twice (a client assertion and a secret); use one method (RFC 6749 section 2.3).",
        ));
    }
    match (assertion_type, assertion) {
        (Some(CLIENT_ASSERTION_TYPE), Some(a)) => {
            client_assertion::authenticate(view, form.get("client_id"), a, ctx)
        }
        (Some(CLIENT_ASSERTION_TYPE), None) => Err(OAuthError::invalid_client(
            "The client_assertion is missing: send the JWT your app signed (RFC 7523 section 2.2).",
        )),
        (None, _) => Err(OAuthError::invalid_client(format!(
            "The client_assertion_type is missing; it must be '{CLIENT_ASSERTION_TYPE}'."
        ))),
        (Some(other), _) => Err(OAuthError::invalid_client(format!(
            "The client_assertion_type '{}' is not supported; use '{CLIENT_ASSERTION_TYPE}' (private_key_jwt).",
            other.chars().take(80).collect::<String>()
        ))),
    }
}
