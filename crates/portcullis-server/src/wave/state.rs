//! What Wave's handlers share beyond the server's state: the live fan-out of
//! notifications to open streams, the shutdown signal, the API-token cache, and TLS for
//! `imageurl` fetches. Held in [`crate::state::AppState`]; imports no handler.

use super::fetch;
use crate::config::WaveConfig;
use portcullis_core::ids::{ClientId, RecordId};
use portcullis_core::secret::SecretHash;
use portcullis_core::wave::StoredNotification;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A notification on its way to the streams of its recipients.
#[derive(Debug)]
pub struct Delivery {
    pub notification: StoredNotification,
    pub recipients: Vec<RecordId>,
}

/// API tokens remembered by this process, so the notification path does not read the
/// store for the publisher's authentication (a miss — another node, a restart — does).
const API_TOKEN_CACHE: usize = 10_000;

/// What Wave's handlers share beyond [`AppState`].
pub struct WaveState {
    pub config: WaveConfig,
    /// Live fan-out to open streams, fed only by [`super::fanout`] from the store (so in id
    /// order, whichever node accepted them); a stream that falls behind re-reads the store.
    pub live: tokio::sync::broadcast::Sender<Arc<Delivery>>,
    /// Pinged when this node stored a notification, so [`super::fanout`] reads it at once.
    pub stored: tokio::sync::Notify,
    /// Set on shutdown, so open streams end and the server can drain.
    stopping: tokio::sync::watch::Sender<bool>,
    api_tokens: Mutex<HashMap<SecretHash, ApiToken>>,
    /// TLS for https `imageurl`s (the roots, with `--image-fetch-ca-file`'s).
    pub image_tls: Arc<rustls::ClientConfig>,
}

impl WaveState {
    /// Errors (an unreadable CA file) are for the operator.
    pub fn new(config: WaveConfig) -> Result<Self, String> {
        let image_tls = fetch::tls_config(config.image_fetch_ca_file.as_deref())?;
        Ok(Self {
            image_tls,
            config,
            live: tokio::sync::broadcast::channel(1024).0,
            stored: tokio::sync::Notify::new(),
            stopping: tokio::sync::watch::channel(false).0,
            api_tokens: Mutex::new(HashMap::new()),
        })
    }

    /// End every open notification stream (on shutdown).
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub(crate) fn remember_api_token(&self, hash: SecretHash, token: ApiToken) {
        if let Ok(mut m) = self.api_tokens.lock() {
            if m.len() >= API_TOKEN_CACHE {
                m.clear();
            }
            m.insert(hash, token);
        }
    }

    /// A remembered live API token: its app, when it expires, the secret it came from.
    pub(crate) fn cached_api_token(&self, hash: &SecretHash, now: i64) -> Option<ApiToken> {
        let m = self.api_tokens.lock().ok()?;
        m.get(hash).filter(|(_, exp, _)| now < *exp).cloned()
    }
}

/// A live publisher API token: its app, when it expires, and the client secret it was
/// obtained with (`None` for tokens stored before that was recorded).
pub type ApiToken = (ClientId, i64, Option<portcullis_core::ids::RecordId>);
