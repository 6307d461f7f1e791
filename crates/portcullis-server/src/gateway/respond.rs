//! The gateway's answer as HTTP: an allowed request's headers for the upstream, a denied
//! one's status, problem+json body and `x-portcullis-*` headers.

use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::gateway::{Allow, Code, Denial};

pub(super) fn respond(state: &AppState, result: Result<Allow, Denial>) -> Response {
    match result {
        Ok(allow) => allowed(&allow),
        Err(denial) => denied_for(state, &denial),
    }
}

/// [`denied`], with a fresh nonce in `DPoP-Nonce` when the refusal asks for one.
pub fn denied_for(state: &AppState, d: &Denial) -> Response {
    let mut res = denied(d);
    if d.code == Code::DpopNonceRequired
        && let Some(v) = super::check::dpop_nonce(state)
    {
        res.headers_mut().insert("dpop-nonce", v);
    }
    res
}

/// 200, empty body, and the `x-portcullis-*` headers for the upstream.
///
/// A header added here must be added to the proxy configurations in `deploy/` too: each
/// copies these headers to the upstream *and strips any the client sent itself* (nginx's
/// `auth_request_set`, Envoy's header lists, Traefik's `authResponseHeaders` and its strip
/// middleware); a header missing from a strip list could be forged by the client.
pub fn allowed(allow: &Allow) -> Response {
    let mut res = StatusCode::OK.into_response();
    let h = res.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if let Some(c) = &allow.client_id {
        set("x-portcullis-client-id", c);
    }
    if let Some(o) = &allow.org {
        set("x-portcullis-org", o);
    }
    set("x-portcullis-scope", &allow.scope);
    set(
        "x-portcullis-authenticated",
        if allow.authenticated { "true" } else { "false" },
    );
    res
}

/// A header value must be visible ASCII: replace anything else.
fn header_safe(s: &str) -> HeaderValue {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The catalogue's status, the problem+json body, and `x-portcullis-code` / `-detail` /
/// `-problem`.
///
/// `x-portcullis-problem` carries the whole body (ASCII JSON, so it is a valid header
/// value): nginx `auth_request` keeps only the status and headers of the check, and the
/// shipped nginx configuration answers the client with this header as the body, so the
/// client sees the same bytes as from a direct call.
pub fn denied(d: &Denial) -> Response {
    let text = ascii_json(&d.problem());
    let status = StatusCode::from_u16(d.code.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let problem = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("{}"));
    let mut res = (status, text).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert("x-portcullis-code", header_safe(d.code.code()));
    h.insert("x-portcullis-detail", header_safe(&d.detail));
    h.insert("x-portcullis-problem", problem);
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&d.code.challenge())
                .unwrap_or_else(|_| HeaderValue::from_static("Bearer")),
        );
    }
    if let Some(retry) = d.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(retry.max(1)));
    }
    res
}

/// `v` as JSON text with every non-ASCII character escaped (`\uXXXX`, surrogate pairs
/// beyond the BMP): the same JSON value, in bytes that are also a valid header value.
fn ascii_json(v: &serde_json::Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_json_is_the_same_value_in_ascii() {
        let v = serde_json::json!({"detail": "caf\u{e9} \u{1F600} \"q\" \\ \n"});
        let a = ascii_json(&v);
        assert!(a.is_ascii(), "{a}");
        assert!(HeaderValue::from_str(&a).is_ok());
        assert_eq!(serde_json::from_str::<serde_json::Value>(&a).unwrap(), v);
    }
}
