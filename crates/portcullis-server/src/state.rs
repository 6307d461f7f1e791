//! What every handler shares: the live view, the store, the clock, key material.

use crate::live_view::LiveView;
use crate::master_key::MasterKey;
use crate::metrics::Metrics;
use portcullis_core::clock::Clock;
use portcullis_core::ids::RecordId;
use portcullis_store::Store;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The in-memory view hot paths read. Never the store.
    pub view: Arc<LiveView>,
    /// Writes (admin API) and cold reads (listings).
    pub store: Arc<dyn Store>,
    pub master: Arc<MasterKey>,
    /// Injected so tests can control expiry exactly.
    pub clock: Arc<dyn Clock>,
    /// `iss` of every token, and the base of the endpoint URLs in discovery.
    pub issuer: String,
    /// `Cache-Control: max-age` of the JWKS, and how long a next key must be published
    /// before it may sign.
    pub jwks_max_age: u64,
    /// Shared with the request-tracking middleware ([`crate::metrics::Tracking`]).
    pub metrics: Arc<Metrics>,
    /// Access tokens whose signature the gateway has verified (only the signature work
    /// is skipped on a hit; the live checks always run).
    pub token_cache: portcullis_core::token_cache::VerifiedTokenCache,
    /// Secret last-use times, batched here and flushed to the store off the hot path.
    pub secret_usage: Mutex<HashMap<RecordId, i64>>,
    /// The gateway's settings: header names, trusted proxies, secrets over HTTP.
    pub gateway: crate::config::GatewayConfig,
    /// How long a request, body included, may take before it is answered `408`.
    pub request_timeout: std::time::Duration,
    /// Log one line per request ([`crate::access_log`]).
    pub access_log: bool,
    /// Header names and values together, at most (`431` past it).
    pub max_header_bytes: usize,
    /// Failed authentications per client address and per (app, address).
    pub failures: portcullis_core::limits::FailureLimiter,
    /// Failed password sign-ins per account (admin API, console, Wave subscribers).
    pub logins: portcullis_core::limits::AccountLockout,
    /// Failed password sign-ins per client address, on the same paths.
    pub password_failures: portcullis_core::limits::FailureLimiter,
    /// Per-app request quotas.
    pub quotas: portcullis_core::limits::QuotaLimiter,
    /// Adobe Wave: settings, live fan-out of notifications, the API-token cache.
    pub wave: crate::wave::state::WaveState,
    /// The audit trail's recorder (changes written at once, failures queued).
    pub audit: crate::audit::Audit,
    /// Every `jti` of a JWT an app signed that this node accepted — app-signed bearer JWTs
    /// at the gateway, RFC 7523 client assertions and grants — one memory for all of them,
    /// so a JWT spent on one path is spent on every path. Per client id, until each JWT
    /// could no longer be accepted anyway. With a shared store (`--redis-url`) the `jti`s
    /// are spent there instead ([`portcullis_shared::Shared::confirm_first_use`]).
    pub jtis: portcullis_core::app_jwt::ReplayCache,
    /// Redis shared by every node and verifier (`--redis-url`): app-signed JWT `jti`s,
    /// OAuth 1.0 nonces and failure limits are checked there instead of per node.
    pub shared: Option<portcullis_shared::Shared>,
    /// The shared store's failure-limit answers, remembered for a second.
    pub shared_verdicts: crate::limits::SharedVerdicts,
    /// Requests counted per app and minute, flushed to the store off the request path.
    pub usage: crate::usage::Usage,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Note a secret's use (flushed by [`AppState::flush_secret_usage`]).
    pub fn note_secret_use(&self, id: &RecordId, at: i64) {
        if let Ok(mut m) = self.secret_usage.lock() {
            m.insert(id.clone(), at);
        }
    }

    pub async fn flush_secret_usage(&self) {
        let batch: Vec<(RecordId, i64)> = match self.secret_usage.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return,
        };
        if let Err(e) = self.store.touch_secrets(&batch).await {
            tracing::warn!(error = %e, "recording secret last-use failed");
        }
    }

    /// The key of the secret hash (client secrets, session and admin tokens). Always in the
    /// view once the server has started; its absence is our failure, not the caller's.
    pub fn hash_key(&self) -> Result<portcullis_core::secret::HashKey, crate::problem::Problem> {
        self.view
            .get()
            .hash_key()
            .cloned()
            .ok_or_else(|| crate::problem::Problem::internal(&"no secret-hash key in the view"))
    }

    /// After a write: bring the view up to date before answering, so the caller's next
    /// request (a token with the new secret, say) sees the change.
    pub async fn refreshed(&self) -> Result<(), crate::problem::Problem> {
        self.view
            .refresh()
            .await
            .map(|_| ())
            .map_err(|e| crate::problem::Problem::internal(&e))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
