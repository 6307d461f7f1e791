//! The Edge Network intake: `POST /ee/v2/interact` and
//! `POST /ee/v2/collect`, the Edge Network's compatibility surface mapped onto the core decision.
//!
//! Each request names its resource (the vendor's *datastream*) with `?datastreamId=` (the
//! parameter name in any case) and is checked by the same gateway decision as
//! `/gateway/v1/check` ([`gateway::evaluate`]), always as a write. No rule lives only here:
//! whether credentials are needed, which codes a caller gets and in what order all come
//! from `portcullis_core::gateway`. What this module adds is the vendor's shapes — the body,
//! the `requestId`, the 204 — the append-only write of the events, and CORS, since the
//! Edge Network's unauthenticated events come from visitors' browsers:
//!
//! - a preflight (`OPTIONS`) is answered from the resource's `cors_origins` alone; it is
//!   not a credentialed request, so it asks no gateway decision;
//! - every `POST` answer, allowed or denied, carries `Access-Control-Allow-Origin` for an
//!   allowed `Origin`, so the page's script can read the problem body too.
//!
//! A 2xx means stored: the handler answers only after the store has committed. A store
//! failure is a 503 with an opaque body (the cause logged once, by [`Problem::unavailable`]).

use crate::admin::extract::ApiJson;
use crate::gateway::{self, Question};
use crate::problem::Problem;
use crate::request::Peer;
use crate::state::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::gateway::{Code, Denial};
use portcullis_core::model::{NewEvent, Resource};
use portcullis_store::StoreError;
use serde_json::{Map, Value};

/// The query parameter that names the resource, matched case-insensitively.
pub const DATASTREAM_PARAM: &str = "datastreamId";

/// At most this many events in one `collect` (they are written in one transaction).
pub const MAX_EVENTS_PER_COLLECT: usize = 1000;

/// How long a browser may cache a preflight answer, in seconds.
pub const CORS_MAX_AGE_SECONDS: u32 = 600;

const ALLOW_METHODS: &str = "POST, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, x-gw-ims-org-id";

/// Which of the two endpoints, and so which body shape.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// `{"event": {...}}` → 200 `{"requestId"}`.
    Interact,
    /// `{"events": [{...}, ...]}` → 204.
    Collect,
}

/// `POST /ee/v2/interact?datastreamId=<resource id>`
pub async fn interact(State(state): State<AppState>, Peer(peer): Peer, req: Request) -> Response {
    intake(&state, peer, req, Endpoint::Interact).await
}

/// `POST /ee/v2/collect?datastreamId=<resource id>`
pub async fn collect(State(state): State<AppState>, Peer(peer): Peer, req: Request) -> Response {
    intake(&state, peer, req, Endpoint::Collect).await
}

/// `OPTIONS /ee/v2/interact|collect?datastreamId=…`: the CORS preflight. Without an
/// `Origin` it is a plain `OPTIONS` and answers which methods the endpoint takes.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let id = match datastream_id(&uri) {
        Ok(id) => id,
        Err(p) => return p.into_response(),
    };
    let Some(resource) = state.view.get().resource(&id).cloned() else {
        return unknown_resource(&id);
    };
    let mut res = StatusCode::NO_CONTENT.into_response();
    let Some(origin) = headers.get(header::ORIGIN) else {
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOW_METHODS));
        return res;
    };
    let Some(allow) = allowed_origin(&resource, Some(origin)) else {
        let shown: String = String::from_utf8_lossy(origin.as_bytes())
            .chars()
            .take(100)
            .collect();
        return Problem::new(
                403,
                "cors-origin-not-allowed",
                "PCS-0403-CORS",
                "Origin not allowed",
                format!(
                    "The origin '{shown}' may not send events to this datastream; an administrator of its organization adds it to the resource's cors_origins."
                ),
            )
            .into_response();
    };
    if let Some(m) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)
        && m.as_bytes() != b"POST"
    {
        return Problem::new(
            403,
            "cors-method-not-allowed",
            "PCS-0403-CORS",
            "Method not allowed by CORS",
            "Events are sent with POST.",
        )
        .into_response();
    }
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(CORS_MAX_AGE_SECONDS),
    );
    res
}

/// Both `POST`s: name the resource, decide, read and check the body, store, answer.
/// ([`cors`] adds the CORS headers to whatever the answer is.)
async fn intake(
    state: &AppState,
    peer: Option<std::net::SocketAddr>,
    req: Request,
    endpoint: Endpoint,
) -> Response {
    let id = match datastream_id(req.uri()) {
        Ok(id) => id,
        Err(p) => return p.into_response(),
    };
    match accept(state, peer, &id, req, endpoint).await {
        Ok(res) | Err(res) => res,
    }
}

/// Middleware: CORS on every answer under `/ee/v2/` — the handlers' own, and the
/// refusals made before a handler runs (an oversized body's 413, a wrong method's 405) —
/// so a browser page on an allowed origin can read why it was refused. `Vary: Origin`
/// always, since the answer depends on it. Other paths pass untouched.
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/ee/v2/") {
        return next.run(req).await;
    }
    let allow = datastream_id(req.uri()).ok().and_then(|id| {
        state
            .view
            .get()
            .resource(&id)
            .and_then(|r| allowed_origin(r, req.headers().get(header::ORIGIN)))
    });
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Some(origin) = allow {
        h.entry(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .or_insert(origin);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    res
}

async fn accept(
    state: &AppState,
    peer: Option<std::net::SocketAddr>,
    id: &str,
    req: Request,
    endpoint: Endpoint,
) -> Result<Response, Response> {
    let allow = gateway::evaluate(
        state,
        &Question {
            method: req.method(),
            resource: Some(id),
            headers: req.headers(),
            peer,
            always_write: true,
            // userKey + secret may come in the intake's own query (SAP Gigya application keys).
            query: req.uri().query(),
            path: Some(req.uri().path()),
        },
    )
    .await
    .map_err(|denial| gateway::denied_for(state, &denial))?;
    let resource_id = state
        .view
        .get()
        .resource(id)
        .map(|r| r.id.clone())
        .ok_or_else(|| unknown_resource(id))?;
    let ApiJson(body) = ApiJson::<Value>::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let bodies = shape(endpoint, body).map_err(IntoResponse::into_response)?;
    let client_id = allow.app.as_deref().map(|e| e.app.client_id.clone());
    let received_at = state.now();
    let events: Vec<NewEvent> = bodies
        .into_iter()
        .map(|event| NewEvent {
            resource_id: resource_id.clone(),
            received_at,
            authenticated: allow.authenticated,
            client_id: client_id.clone(),
            event,
        })
        .collect();
    match state.store.append_events(&events).await {
        Ok(_) => {}
        // The resource was deleted between the decision and the write.
        Err(StoreError::Conflict(_)) => return Err(unknown_resource(id)),
        Err(e) => return Err(Problem::unavailable(&e).into_response()),
    }
    tracing::debug!(resource = %resource_id, events = events.len(), authenticated = allow.authenticated, "events stored");
    Ok(match endpoint {
        Endpoint::Interact => {
            axum::Json(serde_json::json!({"requestId": request_id()})).into_response()
        }
        Endpoint::Collect => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The event objects of a body of `endpoint`'s shape, or a 400 that says what to send.
fn shape(endpoint: Endpoint, body: Value) -> Result<Vec<Map<String, Value>>, Problem> {
    let (member, how) = match endpoint {
        Endpoint::Interact => (
            "event",
            "Send {\"event\": {...}}: one event, a JSON object.",
        ),
        Endpoint::Collect => (
            "events",
            "Send {\"events\": [{...}, ...]}: a non-empty array of event objects.",
        ),
    };
    let Value::Object(mut top) = body else {
        return Err(Problem::bad_request(format!(
            "The body is {}, not an object. {how}",
            kind(&body)
        )));
    };
    if let Some(other) = top.keys().find(|k| k.as_str() != member) {
        let shown: String = other.chars().take(64).collect();
        return Err(Problem::bad_request(format!(
            "Unknown member '{shown}'. {how}"
        )));
    }
    let Some(value) = top.remove(member) else {
        return Err(Problem::bad_request(format!(
            "The body has no '{member}'. {how}"
        )));
    };
    match (endpoint, value) {
        (Endpoint::Interact, Value::Object(event)) => Ok(vec![event]),
        (Endpoint::Collect, Value::Array(items)) => {
            if items.is_empty() {
                return Err(Problem::bad_request(format!("'events' is empty. {how}")));
            }
            if items.len() > MAX_EVENTS_PER_COLLECT {
                return Err(Problem::bad_request(format!(
                    "'events' has {} events; send at most {MAX_EVENTS_PER_COLLECT} in one call.",
                    items.len()
                )));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(event) => Ok(event),
                    other => Err(Problem::bad_request(format!(
                        "events[{i}] is {}, not an object; no event was stored. {how}",
                        kind(&other)
                    ))),
                })
                .collect()
        }
        (_, other) => Err(Problem::bad_request(format!(
            "'{member}' is {}. {how}",
            kind(&other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `datastreamId` of the query, its name matched case-insensitively.
fn datastream_id(uri: &Uri) -> Result<String, Problem> {
    let how = "Name the datastream: ?datastreamId=<resource id>.";
    let mut found: Option<String> = None;
    let pairs = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes());
    for (name, value) in pairs {
        if !name.eq_ignore_ascii_case(DATASTREAM_PARAM) {
            continue;
        }
        if found.as_deref().is_some_and(|f| f != value) {
            return Err(Problem::bad_request(format!(
                "'datastreamId' is given more than once with different values. {how}"
            )));
        }
        found = Some(value.into_owned());
    }
    match found {
        Some(id) if !id.is_empty() => Ok(id),
        Some(_) => Err(Problem::bad_request(format!(
            "'datastreamId' is empty. {how}"
        ))),
        None => Err(Problem::bad_request(format!("No 'datastreamId'. {how}"))),
    }
}

/// The same 404 the gateway decision gives for a resource it does not know.
fn unknown_resource(id: &str) -> Response {
    let shown: String = id.chars().take(64).collect();
    gateway::denied(&Denial {
        code: Code::UnknownResource,
        detail: format!(
            "No datastream '{shown}' on this server; check the datastreamId (a resource id, res_…)."
        ),
        retry_after: None,
    })
}

/// The `Access-Control-Allow-Origin` value for `origin` on `resource`: `*` when the
/// resource allows any origin, the origin itself when it is listed, else none.
fn allowed_origin(resource: &Resource, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    let origin = origin?;
    let text = origin.to_str().ok()?;
    if resource.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    resource
        .cors_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// A random UUID (version 4) for the interact response's `requestId`.
fn request_id() -> String {
    let mut b = portcullis_core::random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_datastream_parameter_name_is_matched_in_any_case() {
        for q in [
            "datastreamId=res_1",
            "datastreamid=res_1",
            "DATASTREAMID=res_1&x=y",
            "datastreamId=res_1&DatastreamId=res_1",
        ] {
            let uri: Uri = format!("/ee/v2/interact?{q}").parse().unwrap();
            assert_eq!(datastream_id(&uri).unwrap(), "res_1", "{q}");
        }
        for q in [
            "",
            "?x=y",
            "?datastreamId=",
            "?datastreamId=a&datastreamid=b",
        ] {
            let uri: Uri = format!("/ee/v2/interact{q}").parse().unwrap();
            assert!(datastream_id(&uri).is_err(), "{q}");
        }
    }

    #[test]
    fn bodies_of_the_wrong_shape_say_what_to_send() {
        let ok = shape(Endpoint::Interact, json!({"event": {"a": 1}})).unwrap();
        assert_eq!(ok.len(), 1);
        let ok = shape(Endpoint::Collect, json!({"events": [{}, {"b": 2}]})).unwrap();
        assert_eq!(ok.len(), 2);
        for (e, body) in [
            (Endpoint::Interact, json!({"event": [1]})),
            (Endpoint::Interact, json!({"events": [{}]})),
            (Endpoint::Interact, json!({"event": {}, "extra": 1})),
            (Endpoint::Interact, json!([{}])),
            (Endpoint::Collect, json!({"events": []})),
            (Endpoint::Collect, json!({"events": {}})),
            (Endpoint::Collect, json!({"events": [{}, 3]})),
            (Endpoint::Collect, json!({"event": {}})),
        ] {
            let p = shape(e, body.clone()).unwrap_err();
            assert_eq!(p.status, 400, "{body}");
            assert!(p.detail.contains("Send {"), "{body}: {}", p.detail);
        }
        let many = vec![json!({}); MAX_EVENTS_PER_COLLECT + 1];
        assert!(shape(Endpoint::Collect, json!({ "events": many })).is_err());
    }

    #[test]
    fn origins_are_allowed_exactly_or_by_star() {
        let mut r = Resource {
            id: portcullis_core::ids::RecordId::generate("res"),
            org_id: portcullis_core::ids::OrgId::generate(),
            name: "r".into(),
            sandbox: "prod".into(),
            product: None,
            scopes: Default::default(),
            allow_unauthenticated: true,
            cors_origins: vec!["https://shop.example".into()],
            created_at: 0,
        };
        let o = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            allowed_origin(&r, Some(&o("https://shop.example"))),
            Some(o("https://shop.example"))
        );
        assert_eq!(allowed_origin(&r, Some(&o("https://evil.example"))), None);
        assert_eq!(allowed_origin(&r, Some(&o("http://shop.example"))), None);
        assert_eq!(allowed_origin(&r, None), None);
        r.cors_origins.push("*".into());
        assert_eq!(
            allowed_origin(&r, Some(&o("https://evil.example"))),
            Some(o("*"))
        );
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, request_id());
    }
}
