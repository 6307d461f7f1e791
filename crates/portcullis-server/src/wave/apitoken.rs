//! `POST /identity/1.0/auth/apitoken.xml` (Adobe Wave): a publisher app trades its client
//! id and secret — HTTP Basic, or `username` and `password` in the query or form body,
//! never both — for the API token it sends as `X-apitoken` with notifications.
//!
//! The answer is the vendor's XML, written with quick-xml (the token is escaped by the
//! writer, never concatenated). The token is random, stored as a keyed hash, and lives
//! [`API_TOKEN_TTL`] seconds.

use super::{WaveError, form_body, form_pairs, no_store, require_tls};
use crate::problem::Problem;
use crate::request::Peer;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use portcullis_core::grant::client_auth::authenticate;
use portcullis_core::grant::client_credentials::issued_at;
use portcullis_core::secret::{Secret, SecretKind};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

/// Lifetime of an API token, seconds.
pub const API_TOKEN_TTL: i64 = 12 * 3600;

/// The namespace of the vendor's `apitokenResponse`.
pub const NAMESPACE: &str = "urn:com:adobe:service:identity:1.0";

/// The client id and secret from `Authorization: Basic`, if sent.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, WaveError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        Problem::bad_request(
            "The Authorization header must be 'Basic base64(client_id:client_secret)'.",
        )
    };
    let v = v.to_str().map_err(|_| bad())?;
    let (scheme, rest) = v.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad().into());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (u, p) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((u.to_owned(), p.to_owned())))
}

/// `username` and `password` from the query and the form body, each given once.
fn params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<(Option<String>, Option<String>), WaveError> {
    let query = form_pairs(query.unwrap_or("").as_bytes())
        .ok_or_else(|| Problem::bad_request("The query is not valid UTF-8 once decoded."))?;
    let form = form_body(headers, body)?;
    let (mut user, mut pass) = (None, None);
    for (k, v) in query.into_iter().chain(form) {
        let slot = match k.as_str() {
            "username" => &mut user,
            "password" => &mut pass,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return Err(Problem::bad_request(format!("'{k}' is given more than once.")).into());
        }
    }
    Ok((user, pass))
}

fn xml(token: &str) -> Result<Vec<u8>, std::io::Error> {
    let mut w = Writer::new(Vec::new());
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Text(BytesText::from_escaped("\n")))?;
    w.create_element("apitokenResponse")
        .with_attributes([
            ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ("xmlns", NAMESPACE),
        ])
        .write_inner_content(|w| {
            w.create_element("apitoken")
                .write_text_content(BytesText::new(token))?;
            Ok::<(), std::io::Error>(())
        })?;
    Ok(w.into_inner())
}

/// `POST /identity/1.0/auth/apitoken.xml`.
pub async fn issue(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, WaveError> {
    require_tls(&state, peer, &headers)?;
    let from_basic = basic(&headers)?;
    let (user, pass) = params(&headers, query.as_deref(), &body)?;
    let (client_id, secret) = match (from_basic, user, pass) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(Problem::bad_request(
                "Send the credentials once: the Authorization header or username and password, not both.",
            )
            .into());
        }
        (Some(b), None, None) => b,
        (None, Some(u), Some(p)) => (u, p),
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(Problem::bad_request("Send both 'username' and 'password'.").into());
        }
        (None, None, None) => {
            return Err(Problem::bad_request(
                "No credentials: send the publisher app's client_id and client secret as HTTP Basic, or as 'username' and 'password'.",
            )
            .into());
        }
    };
    let now = state.now();
    let client = authenticate(&state.view.get(), &client_id, &secret, now).map_err(|e| {
        tracing::info!("apitoken.xml authentication refused");
        WaveError::unauthorized(format!("Invalid credentials: {}", e.description), "Basic")
    })?;
    if let Some(id) = client.secret_id() {
        state.note_secret_use(id, now);
    }
    let token = Secret::generate(SecretKind::WaveApiToken);
    let hash = token.hash(&state.hash_key()?);
    let app = client.entry.app.client_id.clone();
    // Dated as access tokens are, so that a token issued in the second of a reactivation
    // lives and one issued before a suspension does not (`notify::publisher`).
    let issued = issued_at(&state.view.get(), &client.entry.app, now);
    let expires_at = issued + API_TOKEN_TTL;
    state
        .store
        .insert_api_token(&hash, &app, client.secret_id(), expires_at)
        .await?;
    state
        .wave
        .remember_api_token(hash, (app.clone(), expires_at, client.secret_id().cloned()));
    tracing::info!(app = %app, "Wave API token issued");
    let body = xml(token.expose()).map_err(|e| Problem::internal(&e))?;
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(no_store(res))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_xml_has_waves_shape_and_escapes_text() {
        let out = String::from_utf8(super::xml("a<b&c").unwrap()).unwrap();
        assert!(
            out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
            "{out}"
        );
        assert!(
            out.contains("<apitokenResponse xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns=\"urn:com:adobe:service:identity:1.0\"><apitoken>a&lt;b&amp;c</apitoken></apitokenResponse>"),
            "{out}"
        );
    }
}
