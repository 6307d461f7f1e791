//! The decision data for verifiers in API services (`portcullis-verify`):
//! `GET /events/v1/snapshot` and `GET /events/v1`, server-sent events over the store's
//! change feed (the event `id` is the change sequence; `Last-Event-ID` resumes after it).
//!
//! **Who may read it**: the bootstrap admin token (every org), or an access token of an
//! app granted the `verify` scope (its own org only: the orgs, apps, groups, resources and
//! revocations of that org; the server's public keys). An operator creates such an app
//! for each API service and gives the service its client id and secret; the verifier
//! obtains tokens with `client_credentials` and `scope=verify`. A stream ends when the
//! token that opened it expires or stops being live (revoked, app suspended), so taking
//! the scope away takes effect within one token lifetime.
//!
//! **What it never carries** ([`portcullis_core::decision_feed`]): client secret hashes,
//! the secret-hash key, private keys, users, sessions.

use crate::keys::key_material;
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use portcullis_core::decision_feed::{FeedApp, FeedEvent, FeedKey, FeedRevocation, FeedSnapshot};
use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::introspect::check_live;
use portcullis_core::token::{AccessClaims, verify_access_token};
use portcullis_store::{Change, Store};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The scope that lets an app's tokens read its org's decision data.
pub const VERIFY_SCOPE: &str = "verify";

const HOW: &str = "Send 'Authorization: Bearer <token>': an access token of an app granted the 'verify' scope (client_credentials with scope=verify), or the bootstrap admin token.";

/// Who reads the decision data, and how much of it.
#[derive(Debug, Clone)]
pub enum Reader {
    /// The bootstrap admin: every org.
    All,
    /// An app's `verify` token: its org, while the token lives.
    Org(OrgId, Arc<AccessClaims>),
}

impl Reader {
    fn sees(&self, org: &OrgId) -> bool {
        match self {
            Reader::All => true,
            Reader::Org(o, _) => o == org,
        }
    }

    /// Whether the credential still holds: a `verify` token until it expires or stops
    /// being live.
    fn holds(&self, state: &AppState) -> bool {
        match self {
            Reader::All => true,
            Reader::Org(_, claims) => {
                let view = state.view.get();
                state.now() < claims.exp
                    && check_live(claims, &view).is_ok()
                    && app_holds_verify(&view, &claims.client_id)
            }
        }
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Problem::unauthorized(format!("No credentials. {HOW}")))?
            .to_str()
            .map_err(|_| {
                Problem::unauthorized(format!("The Authorization header is not valid text. {HOW}"))
            })?;
        // `DPoP` only for a DPoP-bound access token (checked below).
        let (token, dpop_scheme) = crate::sender::credentials(value, HOW)?;
        let now = state.now();
        let view = state.view.get();
        if token.matches('.').count() == 2 {
            let claims = verify_access_token(token, |kid| view.key(kid), &state.issuer, now)
                .map_err(|e| {
                    Problem::unauthorized(format!("The access token is not valid: {e}. {HOW}"))
                })?;
            check_live(&claims, &view).map_err(|e| {
                Problem::unauthorized(format!("The access token is no longer valid: {e}."))
            })?;
            crate::sender::check(state, parts, token, dpop_scheme, &claims).await?;
            if claims.aud != state.issuer {
                return Err(Problem::unauthorized(format!(
                    "The access token is for another audience ('{}'): the decision data is read with a token whose audience is this server ('{}'). Request it without 'resource'.",
                    claims.aud.chars().take(200).collect::<String>(),
                    state.issuer
                )));
            }
            if !claims.scope.split(' ').any(|s| s == VERIFY_SCOPE) {
                return Err(Problem::forbidden(
                    "The access token lacks the 'verify' scope: grant the app the 'verify' scope and request its token with scope=verify.",
                ));
            }
            // The app's live scopes, not only the token's: taking the scope away ends
            // every token's access at once.
            if !app_holds_verify(&view, &claims.client_id) {
                return Err(Problem::forbidden(
                    "The application no longer holds the 'verify' scope; tokens issued before it was taken away cannot read the decision data.",
                ));
            }
            let org = OrgId::parse(&claims.org).map_err(|e| Problem::unauthorized(e.0))?;
            return Ok(Reader::Org(org, Arc::new(claims)));
        }
        let hash_key = state.hash_key()?;
        match state.view.settings().admin_token_hash {
            Some(expected) if expected.ct_eq(&hash_key.hash_text(token)) => Ok(Reader::All),
            _ => Err(Problem::unauthorized(format!(
                "The token is not valid. {HOW}"
            ))),
        }
    }
}

/// Whether the app `client_id` holds the `verify` scope now.
fn app_holds_verify(view: &portcullis_core::view::View, client_id: &str) -> bool {
    view.app(client_id)
        .is_some_and(|e| view.scopes_of(&e.app).contains(VERIFY_SCOPE))
}

fn feed_keys(
    state: &AppState,
    records: &[portcullis_core::model::SigningKeyRecord],
) -> Result<Vec<FeedKey>, Problem> {
    let (keys, _) =
        key_material(records, &state.master, state.now()).map_err(|e| Problem::internal(&e))?;
    Ok(keys
        .into_iter()
        .map(|k| FeedKey {
            alg: k.alg,
            jwk: k.jwk,
        })
        .collect())
}

/// `GET /events/v1/snapshot`: the decision data the reader may see, and the change
/// sequence it is consistent with (pass it as `Last-Event-ID` to `GET /events/v1`).
pub async fn snapshot(State(state): State<AppState>, reader: Reader) -> Result<Response, Problem> {
    let snap = state.store.snapshot().await?;
    let keys = feed_keys(&state, &snap.signing_keys)?;
    let mut secrets: HashMap<ClientId, Vec<_>> = HashMap::new();
    for s in snap.secrets {
        secrets.entry(s.client_id.clone()).or_default().push(s);
    }
    let mut app_keys: HashMap<ClientId, Vec<_>> = HashMap::new();
    for k in snap.app_keys {
        app_keys.entry(k.client_id.clone()).or_default().push(k);
    }
    let apps: Vec<FeedApp> = snap
        .apps
        .into_iter()
        .filter(|a| reader.sees(&a.org_id))
        .map(|a| {
            let s = secrets.remove(&a.client_id).unwrap_or_default();
            let k = app_keys.remove(&a.client_id).unwrap_or_default();
            FeedApp::new(a, &s, k)
        })
        .collect();
    let visible: std::collections::HashSet<&str> =
        apps.iter().map(|a| a.app.client_id.as_str()).collect();
    let now = state.now();
    let revocations = snap
        .revocations
        .into_iter()
        .filter(|r| r.exp > now && visible.contains(r.client_id.as_str()))
        .map(|r| FeedRevocation {
            jti: r.jti,
            exp: r.exp,
        })
        .collect();
    let body = FeedSnapshot {
        seq: snap.seq,
        orgs: snap
            .orgs
            .into_iter()
            .filter(|o| reader.sees(&o.id))
            .collect(),
        groups: snap
            .groups
            .into_iter()
            .filter(|g| reader.sees(&g.org_id))
            .collect(),
        resources: snap
            .resources
            .into_iter()
            .filter(|r| reader.sees(&r.org_id))
            .collect(),
        apps,
        revocations,
        keys,
    };
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[derive(Debug, serde::Deserialize)]
pub struct StreamQuery {
    /// The change sequence to resume after, for clients that cannot set `Last-Event-ID`.
    after: Option<String>,
}

/// How often a stream checks that its credential still holds while nothing changes.
const RECHECK: Duration = Duration::from_secs(5);

/// `GET /events/v1`: one event per change after `Last-Event-ID` (or `?after=`; without
/// either, from now on), as it is committed.
pub async fn stream(
    State(state): State<AppState>,
    reader: Reader,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, Problem> {
    let given = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .or(q.after);
    let after = match given {
        Some(text) => text.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Problem::bad_request(
                "Last-Event-ID (or ?after=) is not a change sequence: send the id of the last event you received, or the seq of /events/v1/snapshot.",
            )
        })?,
        None => state.store.last_change().await?,
    };
    let follow = Follow {
        state: state.clone(),
        reader,
        after,
        pending: VecDeque::new(),
        applied: state.view.applied(),
        stopping: state.wave.stopping(),
    };
    let events = futures_util::stream::unfold(follow, |mut f| async move {
        f.next().await.map(|e| (Ok::<_, Infallible>(e), f))
    });
    let mut r = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

struct Follow {
    state: AppState,
    reader: Reader,
    after: i64,
    pending: VecDeque<Event>,
    applied: tokio::sync::watch::Receiver<i64>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Follow {
    /// The next event; `None` ends the stream (shutdown, or the credential lapsed).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stopping.borrow() || !self.reader.holds(&self.state) {
                return None;
            }
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            match self.load().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "event stream: reading the change feed failed")
                }
            }
            tokio::select! {
                _ = self.applied.changed() => {}
                _ = self.stopping.changed() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Queue the events of the changes after `self.after`; whether there were any.
    async fn load(&mut self) -> Result<bool, portcullis_store::StoreError> {
        let store: &dyn Store = &*self.state.store;
        let oldest = store.oldest_change().await?;
        let changes = store.changes_since(self.after, 500).await?;
        let Some(&(last, _)) = changes.last() else {
            return Ok(false);
        };
        if oldest > self.after + 1 || changes.iter().any(|(_, c)| *c == Change::Resync) {
            // The records named are not enough (pruned past us, or a bulk load): start over.
            self.after = last;
            self.pending.push_back(event(last, &FeedEvent::Resync));
            return Ok(true);
        }
        for (seq, change) in changes {
            self.after = seq;
            if let Some(e) = self.feed_event(change).await? {
                self.pending.push_back(event(seq, &e));
            }
        }
        Ok(true)
    }

    /// The event of a deleted app, group or resource, for a reader who may hear of it:
    /// only its own organization's deletions. The record is gone from the store, so its
    /// organization comes from the view (which may not have applied the deletion yet) or
    /// the deletions the view remembers; when neither knows it, the reader is told to
    /// resync from a snapshot, which tells it nothing of other organizations.
    fn deletion(&self, id: &str, event: impl FnOnce() -> FeedEvent) -> Option<FeedEvent> {
        let Reader::Org(reader_org, _) = &self.reader else {
            return Some(event());
        };
        let view = self.state.view.get();
        let org = view
            .app(id)
            .map(|e| e.app.org_id.clone())
            .or_else(|| view.group(id).map(|g| g.org_id.clone()))
            .or_else(|| view.resource(id).map(|r| r.org_id.clone()))
            .or_else(|| self.state.view.deleted_org(id));
        match org {
            Some(o) if &o == reader_org => Some(event()),
            Some(_) => None,
            None => Some(FeedEvent::Resync),
        }
    }

    /// The event for `change`, or `None` when the reader may not see it.
    async fn feed_event(
        &self,
        change: Change,
    ) -> Result<Option<FeedEvent>, portcullis_store::StoreError> {
        let store: &dyn Store = &*self.state.store;
        let r = &self.reader;
        Ok(match change {
            Change::Org(id) => {
                let Ok(id) = OrgId::parse(&id) else {
                    return Ok(None);
                };
                if !r.sees(&id) {
                    return Ok(None);
                }
                let org = store.org(&id).await?;
                Some(FeedEvent::Org { id, org })
            }
            Change::App(id) => {
                let Ok(id) = ClientId::parse(&id) else {
                    return Ok(None);
                };
                match store.app(&id).await? {
                    Some(app) if r.sees(&app.org_id) => {
                        let secrets: Vec<_> = store
                            .secrets(&id)
                            .await?
                            .into_iter()
                            .map(|(s, _)| s)
                            .collect();
                        let keys = store.app_keys(&id).await?;
                        Some(FeedEvent::App {
                            id,
                            app: Some(FeedApp::new(app, &secrets, keys)),
                        })
                    }
                    // Another org's app: to this reader it does not exist.
                    Some(_) => None,
                    None => self.deletion(id.as_str(), || FeedEvent::App {
                        id: id.clone(),
                        app: None,
                    }),
                }
            }
            Change::Group(id) => {
                let Ok(id) = RecordId::parse(&id) else {
                    return Ok(None);
                };
                match store.group(&id).await? {
                    Some(g) if r.sees(&g.org_id) => Some(FeedEvent::Group { id, group: Some(g) }),
                    Some(_) => None,
                    None => self.deletion(id.as_str(), || FeedEvent::Group {
                        id: id.clone(),
                        group: None,
                    }),
                }
            }
            Change::Resource(id) => {
                let Ok(id) = RecordId::parse(&id) else {
                    return Ok(None);
                };
                match store.resource(&id).await? {
                    Some(res) if r.sees(&res.org_id) => Some(FeedEvent::Resource {
                        id,
                        resource: Some(res),
                    }),
                    Some(_) => None,
                    None => self.deletion(id.as_str(), || FeedEvent::Resource {
                        id: id.clone(),
                        resource: None,
                    }),
                }
            }
            Change::Revocation(jti) => match store.revocation(&jti).await? {
                Some(rev) => {
                    let visible = match r {
                        Reader::All => true,
                        Reader::Org(org, _) => store
                            .app(&rev.client_id)
                            .await?
                            .is_some_and(|a| &a.org_id == org),
                    };
                    visible.then_some(FeedEvent::Revocation(FeedRevocation {
                        jti: rev.jti,
                        exp: rev.exp,
                    }))
                }
                None => None,
            },
            Change::SigningKeys => {
                let records = store.signing_keys().await?;
                match feed_keys(&self.state, &records) {
                    Ok(keys) => Some(FeedEvent::Keys { keys }),
                    Err(_) => None,
                }
            }
            Change::Settings => None,
            Change::Resync => Some(FeedEvent::Resync),
        })
    }
}

fn event(seq: i64, e: &FeedEvent) -> Event {
    Event::default()
        .id(seq.to_string())
        .event(e.kind())
        .data(serde_json::to_string(e).unwrap_or_else(|_| "{}".into()))
}
