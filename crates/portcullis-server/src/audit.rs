//! The audit trail: who did what to which record, when, and from where.
//!
//! Recorded:
//! - every **admin change** (a POST, PATCH, PUT or DELETE under `/admin/v1` that
//!   succeeded or was refused with 403), credential creation and deletion included, by the
//!   [`admin`] middleware: the action comes from the route (`POST /apps/{client_id}/secrets`
//!   is `apps.secrets.create`), the target from the path or the created record's id, the
//!   org from the path (or the created record), the actor from the caller the admin API
//!   authenticated (see [`AuditSlot`]). Sign-ins (`sessions.create`) count as changes;
//!   console actions arrive here too, since the console calls the admin API;
//! - every **failed authentication** (`auth.failed`): at the admin API and the console
//!   sign-in (any 401), at the token endpoint (`invalid_client`), and the gateway's
//!   authentication denials (the ones its failure limit counts).
//!
//! Changes are written before the answer leaves (the admin API is not a hot path).
//! Failures may come in floods and the gateway must never wait on the database, so they
//! go through [`Audit::failure`]: a bounded in-memory queue ([`AUDIT_QUEUE`] entries) that
//! a background task ([`Audit::run_writer`]) writes in batches; when the queue is full an
//! entry is dropped and counted (`portcullis_audit_dropped_total{reason="queue_full"}`),
//! never waited for.
//!
//! Never in an entry: a secret, a password, a token. `details` holds field *names* of a
//! change, the HTTP method, path and status, and for failures the refusal's code.

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portcullis_core::ids::OrgId;
use portcullis_core::model::{AuditOutcome, NewAuditEntry};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Failed-authentication entries waiting for the writer, at most.
pub const AUDIT_QUEUE: usize = 10_000;
/// Entries the writer appends in one transaction, at most.
pub const AUDIT_BATCH: usize = 500;

/// The action of every failed authentication.
pub const AUTH_FAILED: &str = "auth.failed";

/// The recorder shared by every handler.
pub struct Audit {
    tx: mpsc::Sender<NewAuditEntry>,
    /// Taken by the writer task when the server starts serving.
    rx: Mutex<Option<mpsc::Receiver<NewAuditEntry>>>,
}

impl Default for Audit {
    fn default() -> Self {
        Self::new(AUDIT_QUEUE)
    }
}

impl Audit {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    /// Queue a failed-authentication entry; never waits. A full queue drops it (counted).
    pub fn failure(&self, metrics: &crate::metrics::Metrics, entry: NewAuditEntry) {
        if self.tx.try_send(entry).is_err() {
            metrics.audit_dropped("queue_full", 1);
        }
    }

    /// Write an entry now (an admin change). A store failure is logged and counted: the
    /// change itself has already been committed.
    pub async fn record(&self, state: &AppState, entry: NewAuditEntry) {
        if let Err(e) = state.store.append_audit(std::slice::from_ref(&entry)).await {
            tracing::error!(error = %e, action = %entry.action, "writing an audit entry failed");
            state.metrics.audit_dropped("store_error", 1);
        }
    }

    /// Write queued entries in batches until `stop` changes; then write what is left.
    pub async fn run_writer(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(mut rx) = state.audit.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        loop {
            let first = tokio::select! {
                e = rx.recv() => e,
                _ = stop.changed() => None,
            };
            let Some(first) = first else { break };
            let mut batch = vec![first];
            while batch.len() < AUDIT_BATCH
                && let Ok(e) = rx.try_recv()
            {
                batch.push(e);
            }
            write_batch(&state, &batch).await;
        }
        // Stopping: what is queued still goes to the store.
        rx.close();
        let mut batch = Vec::new();
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
            if batch.len() == AUDIT_BATCH {
                write_batch(&state, &std::mem::take(&mut batch)).await;
            }
        }
        write_batch(&state, &batch).await;
    }
}

async fn write_batch(state: &AppState, batch: &[NewAuditEntry]) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = state.store.append_audit(batch).await {
        tracing::error!(error = %e, entries = batch.len(), "writing audit entries failed; they are lost");
        state
            .metrics
            .audit_dropped("store_error", batch.len() as u64);
    }
}

/// A failed-authentication entry: `actor` is who the caller claimed to be (never
/// proven), `surface` where it happened, `code` why it was refused.
pub fn failed_auth(
    now: i64,
    actor: String,
    surface: &'static str,
    target: String,
    org: Option<OrgId>,
    address: Option<IpAddr>,
    code: &str,
) -> NewAuditEntry {
    let mut details = Map::new();
    details.insert("surface".into(), json!(surface));
    details.insert("code".into(), json!(code));
    NewAuditEntry {
        at: now,
        actor,
        action: AUTH_FAILED.into(),
        target,
        outcome: AuditOutcome::Failure,
        org_id: org,
        address: address.map(|a| a.to_string()),
        details,
    }
}

/// The id of the bootstrap admin token the audit trail names it by: the first 12 hex
/// digits of its keyed hash (a rotated token gets a new id; the token cannot be recovered
/// from it).
pub fn admin_token_id(hash: &portcullis_core::secret::SecretHash) -> String {
    hash.to_hex().chars().take(12).collect()
}

/// `client:<id>` for a claimed client id (cut to a sane length), else `anonymous`.
pub fn claimed_client(id: Option<&str>) -> String {
    match id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => format!("client:{}", id.chars().take(100).collect::<String>()),
        None => "anonymous".into(),
    }
}

/// Where the admin API's caller writes who it is, for the [`admin`] middleware: the
/// middleware puts one in the request's extensions, the `Principal` extractor fills it.
#[derive(Clone, Default)]
pub struct AuditSlot(pub Arc<Mutex<Option<String>>>);

impl AuditSlot {
    pub fn set(&self, actor: String) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(actor);
        }
    }
    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

/// The client's address of an admin request the console makes in process on behalf of
/// a browser (the console's request has no TCP peer of its own).
#[derive(Clone, Copy, Debug)]
pub struct ForwardedClient(pub Option<IpAddr>);

/// The client's address of a request: the one the console forwarded for the browser it
/// serves, or the TCP peer (the nearest untrusted `X-Forwarded-For` hop behind a
/// `--trusted-proxy`). `None` when neither is known.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn of(
        state: &AppState,
        parts_ext: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> Self {
        if let Some(ForwardedClient(a)) = parts_ext.get::<ForwardedClient>() {
            return ClientAddr(*a);
        }
        let peer = parts_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        ClientAddr(crate::request::client_facts(&state.gateway, peer, headers).0)
    }
}

impl axum::extract::FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(state, &parts.extensions, &parts.headers))
    }
}

/// Largest body the middleware reads to name the fields of a change (the server-wide
/// body limit is the same).
const MAX_BODY: usize = 1024 * 1024;
/// Largest answer it reads to find a created record's id.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

fn is_write(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The action of a route: its literal segments joined by dots, then what the method
/// did — `create` (POST to a collection), `update` (PATCH), `replace` (PUT), `delete`,
/// `read` (GET). A POST to a verb (`/keys/rotate`, `/apps/{id}/revoke`,
/// `/users/{id}/password-reset`, `/user-links/current/accept`) is the verb alone.
pub fn action_of(route: &str, method: &Method) -> String {
    let route = route.strip_prefix("/admin/v1").unwrap_or(route);
    let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    let literals: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.starts_with('{'))
        .collect();
    let last_is_verb = segments
        .last()
        .is_some_and(|s| matches!(*s, "rotate" | "revoke" | "password-reset" | "accept"));
    let verb = match *method {
        Method::POST if last_is_verb => None,
        Method::POST => Some("create"),
        Method::PATCH => Some("update"),
        Method::PUT => Some("replace"),
        Method::DELETE => Some("delete"),
        _ => Some("read"),
    };
    let mut action = literals.join(".");
    if let Some(v) = verb {
        if !action.is_empty() {
            action.push('.');
        }
        action.push_str(v);
    }
    action
}

/// Middleware on the admin API: record changes and failed authentications.
pub async fn admin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    if route.ends_with("/openapi.json") {
        return next.run(req).await;
    }
    let write = is_write(&method);
    let path = req.uri().path().to_owned();
    let forwarded = req.extensions().get::<ForwardedClient>().copied();
    let address = ClientAddr::of(&state, req.extensions(), req.headers()).0;
    let surface = if forwarded.is_some() {
        "console"
    } else {
        "admin"
    };
    let (mut parts, body) = req.into_parts();
    let params: Vec<(String, String)> =
        match axum::RequestPartsExt::extract::<RawPathParams>(&mut parts).await {
            Ok(p) => p
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            Err(_) => Vec::new(),
        };
    // The org is looked up before the change: after a delete the record is gone.
    let org_before = org_of(&state, &params);

    // A change's body is read to name its fields (never their values).
    let (body, sent): (Body, Option<Value>) = if write {
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => {
                let v = serde_json::from_slice::<Value>(&bytes).ok();
                (Body::from(bytes), v)
            }
            Err(_) => {
                return crate::problem::Problem::new(
                    413,
                    "payload-too-large",
                    "PCS-0413-413",
                    "Payload too large",
                    "The request body is larger than 1 MiB.",
                )
                .into_response();
            }
        }
    } else {
        (body, None)
    };
    let slot = AuditSlot::default();
    parts.extensions.insert(slot.clone());
    let res = next.run(Request::from_parts(parts, body)).await;
    let status = res.status();
    let now = state.now();
    let action = action_of(&route, &method);
    let last_param = params.last().map(|(_, v)| v.clone()).unwrap_or_default();
    let sent_email = sent
        .as_ref()
        .and_then(|v| v.get("email"))
        .and_then(Value::as_str)
        .map(|e| {
            format!(
                "email:{}",
                e.trim()
                    .to_lowercase()
                    .chars()
                    .take(254)
                    .collect::<String>()
            )
        });

    if status == StatusCode::UNAUTHORIZED {
        let actor = slot
            .get()
            .or(sent_email)
            .unwrap_or_else(|| "anonymous".into());
        let mut entry = failed_auth(
            now,
            actor,
            surface,
            last_param,
            org_before,
            address,
            "PCS-0401-AUTH",
        );
        entry.details.insert("attempted".into(), json!(action));
        entry
            .details
            .insert("method".into(), json!(method.as_str()));
        entry.details.insert("path".into(), json!(path));
        state.audit.failure(&state.metrics, entry);
        return res;
    }
    // 410: a one-time link used again or expired (someone holds a dead link).
    let recorded = write
        && (status.is_success() || status == StatusCode::FORBIDDEN || status == StatusCode::GONE);
    if !recorded {
        return res;
    }
    // A successful change's answer names what was created.
    let (res, answer) = if status.is_success() && method == Method::POST {
        let (p, b) = res.into_parts();
        match axum::body::to_bytes(b, MAX_ANSWER).await {
            Ok(bytes) => {
                let v = serde_json::from_slice::<Value>(&bytes).ok();
                (Response::from_parts(p, Body::from(bytes)), v)
            }
            Err(_) => (
                crate::problem::Problem::internal(&"reading an admin answer failed")
                    .into_response(),
                None,
            ),
        }
    } else {
        (res, None)
    };
    let created = answer.as_ref().and_then(|a| {
        ["id", "kid", "client_id", "user_id"]
            .iter()
            .find_map(|k| a.get(*k).and_then(Value::as_str).map(str::to_owned))
    });
    let org = org_before
        .or_else(|| {
            // A new organization is its own.
            (route.trim_end_matches('/') == "/admin/v1/orgs")
                .then(|| created.as_deref().and_then(|c| OrgId::parse(c).ok()))
                .flatten()
        })
        .or_else(|| {
            answer
                .as_ref()
                .and_then(|a| a.get("org_id"))
                .and_then(Value::as_str)
                .and_then(|o| OrgId::parse(o).ok())
        });
    let actor = slot
        .get()
        .or_else(|| {
            // A sign-in names its user in the answer.
            answer
                .as_ref()
                .and_then(|a| a.pointer("/user/id"))
                .and_then(Value::as_str)
                .map(|id| format!("user:{id}"))
        })
        .or(sent_email)
        .unwrap_or_else(|| "anonymous".into());
    let mut details = Map::new();
    details.insert("method".into(), json!(method.as_str()));
    details.insert("path".into(), json!(path));
    details.insert("status".into(), json!(status.as_u16()));
    details.insert("surface".into(), json!(surface));
    if let Some(Value::Object(fields)) = &sent {
        let names: Vec<&String> = fields.keys().collect();
        details.insert("fields".into(), json!(names));
    }
    let entry = NewAuditEntry {
        at: now,
        actor,
        action,
        target: if method == Method::POST {
            created.unwrap_or(last_param)
        } else {
            last_param
        },
        outcome: if status.is_success() {
            AuditOutcome::Success
        } else {
            AuditOutcome::Failure
        },
        org_id: org,
        address: address.map(|a| a.to_string()),
        details,
    };
    state.audit.record(&state, entry).await;
    res
}

/// The organization an admin route's path names: directly (`{org_id}`), or through the
/// app or resource it names, read from the view.
fn org_of(state: &AppState, params: &[(String, String)]) -> Option<OrgId> {
    let view = state.view.get();
    params.iter().find_map(|(k, v)| match k.as_str() {
        "org_id" => OrgId::parse(v).ok(),
        "client_id" => view.app(v).map(|e| e.app.org_id.clone()),
        "resource_id" => view.resource(v).map(|r| r.org_id.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_after_the_route_and_method() {
        let a = |r: &str, m: Method| action_of(r, &m);
        assert_eq!(a("/admin/v1/apps", Method::POST), "apps.create");
        assert_eq!(
            a("/admin/v1/apps/{client_id}", Method::PATCH),
            "apps.update"
        );
        assert_eq!(
            a(
                "/admin/v1/apps/{client_id}/secrets/{secret_id}",
                Method::DELETE
            ),
            "apps.secrets.delete"
        );
        assert_eq!(a("/admin/v1/keys/rotate", Method::POST), "keys.rotate");
        assert_eq!(
            a("/admin/v1/apps/{client_id}/revoke", Method::POST),
            "apps.revoke"
        );
        assert_eq!(a("/admin/v1/orgs/{org_id}", Method::GET), "orgs.read");
        assert_eq!(a("/admin/v1/sessions", Method::POST), "sessions.create");
        assert_eq!(
            a("/admin/v1/invitations", Method::POST),
            "invitations.create"
        );
        assert_eq!(
            a("/admin/v1/users/{user_id}/password-reset", Method::POST),
            "users.password-reset"
        );
        assert_eq!(
            a("/admin/v1/user-links/current/accept", Method::POST),
            "user-links.current.accept"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let audit = Audit::new(2);
        let metrics = crate::metrics::Metrics::new();
        for i in 0..5 {
            let e = failed_auth(
                i,
                "anonymous".into(),
                "gateway",
                String::new(),
                None,
                None,
                "x",
            );
            audit.failure(&metrics, e);
        }
        let text = metrics.encode(crate::metrics::Exposition::Text);
        assert!(
            text.contains("portcullis_audit_dropped_total{reason=\"queue_full\"} 3"),
            "{text}"
        );
        let mut rx = audit.rx.lock().unwrap().take().unwrap();
        assert_eq!(rx.try_recv().unwrap().at, 0);
        assert_eq!(rx.try_recv().unwrap().at, 1);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_claimed_client_is_cut_and_blank_is_anonymous() {
        assert_eq!(claimed_client(Some("abc")), "client:abc");
        assert_eq!(claimed_client(Some("  ")), "anonymous");
        assert_eq!(claimed_client(None), "anonymous");
        assert_eq!(claimed_client(Some(&"x".repeat(500))).len(), 107);
    }
}
