//! The server's resolved configuration. The binary builds it from flags, `PORTCULLIS_*`
//! environment variables and an optional TOML file; tests build it directly.

use axum::http::HeaderName;
use ipnet::IpNet;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::token::Alg;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// `iss` of tokens and base of discovery URLs; default `http://<bound address>`.
    pub issuer: Option<String>,
    /// Holds `portcullis.db` and `master.key`.
    pub data_dir: PathBuf,
    /// `sqlite://<path>` or `postgres://…`; default `<data-dir>/portcullis.db`.
    pub database_url: Option<String>,
    /// Pool size and connect/acquire timeout of a PostgreSQL store.
    pub database_pool: portcullis_store::postgres::PgOptions,
    /// Base64 of 32 bytes; takes precedence over the key file.
    pub master_key: Option<String>,
    /// Default `<data-dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// An operator-chosen bootstrap admin token (never echoed). When absent, one is
    /// generated on first start and returned by `Application::build` to print once.
    pub admin_token: Option<String>,
    /// Algorithm of signing keys created at first start.
    pub signing_alg: Alg,
    /// JWKS `max-age` in seconds; also how long a next key is published before use.
    pub jwks_max_age: u64,
    /// How often to poll the store for writes made by other processes (a safety net
    /// under PostgreSQL's notifications).
    pub poll_interval: Duration,
    /// How often to rebuild the whole view from a snapshot, so that anything the feed
    /// did not deliver (a bug, a change made behind Portcullis's back) heals.
    pub resync_interval: Duration,
    /// How long to wait for in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    pub clock: Arc<dyn Clock>,
    /// How the gateway reads requests and limits failures.
    pub gateway: GatewayConfig,
    /// Adobe Wave's notification gateway.
    pub wave: WaveConfig,
}

/// Adobe Wave's settings (seed 004).
#[derive(Debug, Clone)]
pub struct WaveConfig {
    /// Let `imageurl` reach private, loopback and link-local addresses (development and
    /// tests only: in production that is a server-side request forgery hole).
    pub allow_private_image_urls: bool,
    /// How long fetching an `imageurl` may take, connection included.
    pub image_fetch_timeout: Duration,
    /// How long notifications are kept for subscribers who reconnect.
    pub retention: Duration,
    /// A PEM file of extra certificate authorities trusted for https `imageurl`s, beside
    /// the Mozilla roots (a private CA; tests trust their own). Verification is never off.
    pub image_fetch_ca_file: Option<std::path::PathBuf>,
    /// How often expired request tokens, API tokens and notifications past `retention`
    /// are pruned.
    pub prune_interval: Duration,
}

impl Default for WaveConfig {
    fn default() -> Self {
        Self {
            allow_private_image_urls: false,
            image_fetch_timeout: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            image_fetch_ca_file: None,
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// The gateway's settings (API.md §2): header names, trusted proxies, secrets over plain
/// HTTP, failure limits.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The header that names the client with an access token (default `x-api-key`).
    pub api_key_header: HeaderName,
    /// The header that names the org with an access token (default `x-gw-ims-org-id`).
    pub org_header: HeaderName,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Accept `userKey` + `secret` over plain HTTP (local development only).
    pub allow_secrets_over_http: bool,
    /// Failed authentications allowed per client address, and per (app, address), per
    /// minute; 0 turns the limit off.
    pub failure_limit: u32,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_key_header: HeaderName::from_static("x-api-key"),
            org_header: HeaderName::from_static("x-gw-ims-org-id"),
            trusted_proxies: Vec::new(),
            allow_secrets_over_http: false,
            failure_limit: 1000,
        }
    }
}

impl ServerConfig {
    /// Defaults of API.md: `127.0.0.1:8080`, `./portcullis-data`, ES256.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            data_dir,
            database_url: None,
            database_pool: Default::default(),
            master_key: None,
            master_key_file: None,
            admin_token: None,
            signing_alg: Alg::ES256,
            jwks_max_age: 3600,
            poll_interval: Duration::from_millis(250),
            resync_interval: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            gateway: GatewayConfig::default(),
            wave: WaveConfig::default(),
        }
    }
}
