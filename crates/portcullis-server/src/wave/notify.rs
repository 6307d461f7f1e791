//! `POST /notificationgateway/1.0/notification` (Adobe Wave): a publisher sends a message to
//! one of its topics, to every subscriber of a broadcast feed or, with `accesstoken`, to
//! the one subscriber linked to a point-to-point feed.
//!
//! Parameters come from the query and from a form-urlencoded or multipart body (the
//! vendor's examples use both), each at most once. Checks, in order: the body (400/415),
//! `X-apitoken` (401 with `WWW-Authenticate`), `topic` and `message` (400), the topic is
//! the publisher's (403, unknown topics too), `link` (400), `accesstoken` (400 when a
//! point-to-point topic lacks it, 403 when it is not a link of this feed), the image
//! (415). A 204 means the notification is stored and on its way.

use super::fetch::{FetchError, fetch_image};
use super::image::{is_image_type, to_png};
use super::{WaveError, check_http_url, media_type};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::{FromRequest, Multipart, RawQuery, Request, State};
use axum::http::StatusCode;
use base64::Engine;
use portcullis_core::model::{AppStatus, OrgStatus};
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_core::wave::{FeedKind, NewNotification};
use std::collections::HashMap;

/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 4096;

const NAMES: [&str; 8] = [
    "X-apitoken",
    "topic",
    "message",
    "link",
    "accesstoken",
    "imageurl",
    "imagetype",
    "image",
];

enum Value {
    Text(String),
    /// A multipart file part: raw bytes, not base64.
    File(Vec<u8>),
}

#[derive(Default)]
struct Params(HashMap<&'static str, Value>);

impl Params {
    fn put(&mut self, name: &str, v: Value) -> Result<(), Problem> {
        let known = NAMES
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Problem::bad_request(format!(
                    "Unknown parameter '{}'. The notification takes: {}.",
                    name.chars().take(40).collect::<String>(),
                    NAMES.join(", ")
                ))
            })?;
        if self.0.insert(known, v).is_some() {
            return Err(Problem::bad_request(format!(
                "'{known}' is given more than once (query, body or header)."
            )));
        }
        Ok(())
    }

    fn text(&self, name: &str) -> Result<Option<&str>, Problem> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Text(t)) if t.is_empty() => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t)),
            Some(Value::File(_)) => Err(Problem::bad_request(format!(
                "'{name}' must be a text field, not a file."
            ))),
        }
    }
}

/// The notification's parameters, read from the query, the `X-apitoken` header and the
/// body as the handler reads them: `(name, is a file part, length in bytes)`, or the 4xx
/// the handler would answer. For the fuzz target `wave_params` (fuzz/), which drives the
/// handler's form and multipart parsing in-process.
#[doc(hidden)]
pub async fn parsed_params(
    query: Option<&str>,
    req: Request,
) -> Result<Vec<(&'static str, bool, usize)>, WaveError> {
    let p = read_params(&(), query, req).await?;
    Ok(p.0
        .iter()
        .map(|(k, v)| match v {
            Value::Text(t) => (*k, false, t.len()),
            Value::File(b) => (*k, true, b.len()),
        })
        .collect())
}

async fn read_params<S: Send + Sync>(
    state: &S,
    query: Option<&str>,
    req: Request,
) -> Result<Params, WaveError> {
    let mut p = Params::default();
    let bad_utf8 = || Problem::bad_request("The parameters are not valid UTF-8 once decoded.");
    for (k, v) in super::form_pairs(query.unwrap_or("").as_bytes()).ok_or_else(bad_utf8)? {
        p.put(&k, Value::Text(v))?;
    }
    if let Some(h) = req.headers().get("x-apitoken") {
        let v = h
            .to_str()
            .map_err(|_| Problem::bad_request("The X-apitoken header is not valid text."))?;
        p.put("X-apitoken", Value::Text(v.trim().to_owned()))?;
    }
    match media_type(req.headers()).as_deref() {
        Some("multipart/form-data") => {
            let mut mp = Multipart::from_request(req, state).await.map_err(|e| {
                Problem::bad_request(format!("Bad multipart body: {}", e.body_text()))
            })?;
            loop {
                let field = match mp.next_field().await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        return Err(Problem::bad_request(format!(
                            "Bad multipart body: {}",
                            e.body_text()
                        ))
                        .into());
                    }
                };
                let name = field
                    .name()
                    .ok_or_else(|| Problem::bad_request("A multipart part has no name."))?
                    .to_owned();
                let is_file = field.file_name().is_some();
                let bytes = field.bytes().await.map_err(|e| {
                    Problem::bad_request(format!("Bad multipart body: {}", e.body_text()))
                })?;
                let value = if is_file && name == "image" {
                    Value::File(bytes.to_vec())
                } else {
                    Value::Text(String::from_utf8(bytes.to_vec()).map_err(|_| bad_utf8())?)
                };
                p.put(&name, value)?;
            }
        }
        media => {
            let body = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|_| Problem::bad_request("The body could not be read."))?;
            if !body.is_empty() {
                if media != Some("application/x-www-form-urlencoded") {
                    return Err(Problem::unsupported_media_type(
                        "Send the notification as application/x-www-form-urlencoded or multipart/form-data.",
                    )
                    .into());
                }
                for (k, v) in super::form_pairs(&body).ok_or_else(bad_utf8)? {
                    p.put(&k, Value::Text(v))?;
                }
            }
        }
    }
    Ok(p)
}

/// 403: the publisher does not own what it named (the vendor: "controlled by another owner").
fn forbidden(detail: impl Into<String>) -> Problem {
    Problem::new(403, "forbidden", "PCS-0403-OWNER", "Not allowed", detail)
}

fn refused(detail: &str) -> WaveError {
    WaveError::unauthorized(detail, "X-apitoken")
}

/// The publisher app of a live API token, checked against the view.
async fn publisher(
    state: &AppState,
    token: Option<&str>,
) -> Result<portcullis_core::ids::ClientId, WaveError> {
    let token = token.ok_or_else(|| {
        refused("No X-apitoken: get one from POST /identity/1.0/auth/apitoken.xml and send it with the notification.")
    })?;
    let secret = Secret::parse(SecretKind::WaveApiToken, token)
        .map_err(|e| refused(&format!("The X-apitoken is not valid: {e}.")))?;
    let hash = secret.hash(&state.hash_key()?);
    let now = state.now();
    let (client, expires_at, secret_id) = match state.wave.cached_api_token(&hash, now) {
        Some(c) => c,
        None => state.store.api_token(&hash, now).await?.ok_or_else(|| {
            refused("The X-apitoken is unknown or expired; get a new one from /identity/1.0/auth/apitoken.xml.")
        })?,
    };
    let view = state.view.get();
    let live = view.app(client.as_str()).is_some_and(|e| {
        e.app.status == AppStatus::Active
            && view
                .org(e.app.org_id.as_str())
                .is_some_and(|o| o.status == OrgStatus::Active)
    });
    if !live {
        return Err(refused(
            "The publisher app of this X-apitoken is suspended or deleted, or its organization is disabled.",
        ));
    }
    // Suspending the app or disabling its organization ends every token issued until
    // then, API tokens as access tokens: reactivating does not bring them back.
    let issued = expires_at - super::apitoken::API_TOKEN_TTL;
    let ended = view.app(client.as_str()).is_some_and(|e| {
        let org = view
            .org(e.app.org_id.as_str())
            .and_then(|o| o.tokens_invalid_before);
        e.app
            .tokens_invalid_before
            .max(org)
            .is_some_and(|t| issued <= t)
    });
    if ended {
        return Err(refused(
            "This X-apitoken was issued before its publisher app was suspended (or its organization disabled); that ended it. Get a new one from /identity/1.0/auth/apitoken.xml.",
        ));
    }
    // Deleting the client secret a token was obtained with ends the token, as it ends
    // the access tokens obtained with it.
    if let Some(s) = &secret_id
        && view
            .app(client.as_str())
            .is_none_or(|e| !e.secrets.iter().any(|x| &x.id == s))
    {
        return Err(refused(
            "The client secret this X-apitoken was obtained with was deleted, which ended it. Get a new one from /identity/1.0/auth/apitoken.xml with a current secret.",
        ));
    }
    Ok(client)
}

fn unsupported(detail: impl Into<String>) -> WaveError {
    Problem::unsupported_media_type(detail).into()
}

/// The thumbnail as base64 PNG, from `image` + `imagetype` or from `imageurl`.
async fn thumbnail(state: &AppState, p: &Params) -> Result<Option<String>, WaveError> {
    let url = p.text("imageurl")?;
    let raw = match p.0.get("image") {
        Some(Value::Text(t)) if !t.trim().is_empty() => {
            // Adobe Wave's documentation: "The bytes of the image must be Base64 encoded and are passed as a
            // string." Line breaks inside the text are tolerated.
            let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|_| unsupported("'image' is not base64 text of an image."))?,
            )
        }
        Some(Value::File(b)) => Some(b.clone()),
        _ => None,
    };
    let bytes = match (raw, url) {
        (Some(_), Some(_)) => {
            return Err(Problem::bad_request("Send 'image' or 'imageurl', not both.").into());
        }
        (Some(b), None) => {
            let ty = p.text("imagetype")?.ok_or_else(|| {
                Problem::bad_request(
                    "'imagetype' (image/png or image/jpeg) is required with 'image'.",
                )
            })?;
            if !is_image_type(ty) {
                return Err(unsupported(format!(
                    "imagetype '{}' is not supported: use image/png or image/jpeg.",
                    ty.chars().take(60).collect::<String>()
                )));
            }
            b
        }
        (None, Some(u)) => fetch_image(u, &state.wave.config, &state.wave.image_tls)
            .await
            .map_err(|e| -> WaveError {
                match e {
                    FetchError::Bad(d) => Problem::bad_request(d).into(),
                    FetchError::Unusable(d) => unsupported(d),
                }
            })?,
        (None, None) => return Ok(None),
    };
    let png = tokio::task::spawn_blocking(move || to_png(&bytes))
        .await
        .map_err(|e| Problem::internal(&e))?
        .map_err(unsupported)?;
    Ok(Some(base64::engine::general_purpose::STANDARD.encode(png)))
}

/// `POST /notificationgateway/1.0/notification`.
pub async fn send(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Result<StatusCode, WaveError> {
    let p = read_params(&state, query.as_deref(), req).await?;
    let client = publisher(&state, p.text("X-apitoken")?).await?;
    let (topic_uri, message) = match (p.text("topic")?, p.text("message")?) {
        (Some(t), Some(m)) => (t, m),
        _ => {
            return Err(Problem::bad_request(
                "'topic' and 'message' are required: the topic URI (company_…/feed_…/…) and the text to send.",
            )
            .into());
        }
    };
    let not_yours = || -> WaveError {
        forbidden(format!(
            "The topic '{}' is not one of this publisher's topics.",
            topic_uri.chars().take(200).collect::<String>()
        ))
        .into()
    };
    let topic = state
        .store
        .topic_by_uri(topic_uri)
        .await?
        .filter(|t| t.client_id == client)
        .ok_or_else(not_yours)?;
    let feed = state
        .store
        .feed(&topic.feed_id)
        .await?
        .ok_or_else(not_yours)?;
    if message.chars().count() > MAX_MESSAGE || message.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Problem::bad_request(format!(
            "'message' must be at most {MAX_MESSAGE} characters, without control characters other than line breaks."
        ))
        .into());
    }
    let link = p
        .text("link")?
        .map(|l| check_http_url("link", l))
        .transpose()?;
    let to_user = match (feed.kind, p.text("accesstoken")?) {
        (FeedKind::PointToPoint, None) => {
            return Err(Problem::bad_request(
                "The topic is in a point-to-point feed: send the subscriber's 'accesstoken' (from /identity/1.0/oauth/accesstoken).",
            )
            .into());
        }
        (FeedKind::Broadcast, Some(_)) => {
            return Err(Problem::bad_request(
                "The topic is in a broadcast feed, which goes to every subscriber: leave out 'accesstoken'.",
            )
            .into());
        }
        (FeedKind::Broadcast, None) => None,
        (FeedKind::PointToPoint, Some(t)) => {
            let not_linked = || -> WaveError {
                forbidden("The accesstoken does not link a subscriber to this topic's feed.").into()
            };
            let secret = Secret::parse(SecretKind::OAuth1Token, t).map_err(|_| not_linked())?;
            let link = state
                .store
                .link_token(&secret.hash(&state.hash_key()?))
                .await?
                .filter(|l| l.feed_id == feed.id && l.client_id == client)
                .ok_or_else(not_linked)?;
            Some(link.user_id)
        }
    };
    let image_png = thumbnail(&state, &p).await?;
    let now = state.now();
    let n = NewNotification {
        topic_id: topic.id.clone(),
        topic: topic.uri.clone(),
        topic_name: Some(topic.name.clone()),
        feed_id: feed.id.clone(),
        client_id: client.clone(),
        to_user,
        message: message.to_owned(),
        link,
        image_png,
        created_at: now,
    };
    let (id, recipients) = state.store.insert_notification(&n).await?;
    tracing::info!(id, topic = %topic.id, recipients = recipients.len(), "notification accepted");
    // The fan-out task reads it from the store (as every other node does) and delivers.
    state.wave.stored.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
