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
    /// Terminate TLS with this certificate and key (`--tls-cert`, `--tls-key`); `None`:
    /// plain HTTP (behind a TLS-terminating proxy, or in development).
    pub tls: Option<TlsFiles>,
    /// Request sizes and timeouts.
    pub limits: Limits,
    /// Redis shared by every node: app-signed JWT and assertion `jti`s, OAuth 1.0 nonces
    /// and failure limits count across nodes (`portcullis_shared`). `None`: per node.
    pub redis_url: Option<String>,
    /// What every Redis key starts with (several clusters, or tests, on one Redis).
    pub redis_prefix: String,
    /// Log one line per request ([`crate::access_log`]).
    pub access_log: bool,
    /// Usage analytics ([`crate::usage`]).
    pub usage: UsageConfig,
}

/// Usage analytics: counting requests per app and minute ([`crate::usage`]).
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// Count at all (`--usage-analytics`).
    pub enabled: bool,
    /// Keys the counter holds between two flushes, at most; past it, new keys are counted
    /// without their app and resource.
    pub max_keys: usize,
    /// How often the counts are written to the store.
    pub flush_interval: Duration,
    /// How long per-minute counts are kept (`--usage-retention`).
    pub retention: Duration,
    /// How long per-hour counts are kept (`--usage-hour-retention`).
    pub hour_retention: Duration,
    /// How often counts past the retention window are pruned.
    pub prune_interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_keys: 1_000_000,
            flush_interval: Duration::from_secs(5),
            retention: Duration::from_secs(48 * 3600),
            hour_retention: Duration::from_secs(90 * 86_400),
            prune_interval: Duration::from_secs(600),
        }
    }
}

/// The PEM files of the server's TLS certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How big and how slow a request may be (see [`crate::listener`]).
#[derive(Debug, Clone)]
pub struct Limits {
    /// A TLS handshake, and the head of each request (also the wait for the next request
    /// on a kept-alive connection), must arrive within this; else the connection is closed.
    pub header_read_timeout: Duration,
    /// A request, body included, must be answered within this (`408`).
    pub request_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle_timeout: Duration,
    /// Header names and values together, at most: past it, `431` in the problem+json format.
    /// (hyper itself reads at most [`crate::listener::HEAD_BUFFER`] bytes of a request
    /// head, so that a 1 MB token still gets a formatted answer, and closes past that.)
    pub max_header_bytes: usize,
    /// Headers per request, at most (hyper answers `431` and closes).
    pub max_headers: usize,
}

/// Request bodies are at most 1 MiB on every route; `413` past it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
        }
    }
}

/// Adobe Wave's settings (Adobe Wave).
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

/// The gateway's settings: header names, trusted proxies, secrets over plain
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
    /// The scheme and host clients call the protected APIs at (`https://api.example.com`):
    /// with the original URI's path, the URL a DPoP proof must name. `None`: rebuilt from
    /// the check request's forwarded headers.
    pub public_origin: Option<String>,
    /// Require a nonce this server gave in every DPoP proof (token endpoint and gateway).
    pub dpop_nonce: bool,
    /// This server terminates TLS itself (`--tls-cert`): every request came over TLS.
    /// Set by [`crate::Application::build`] from [`ServerConfig::tls`].
    pub server_tls: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            api_key_header: HeaderName::from_static("x-api-key"),
            org_header: HeaderName::from_static("x-gw-ims-org-id"),
            trusted_proxies: Vec::new(),
            allow_secrets_over_http: false,
            failure_limit: 1000,
            public_origin: None,
            dpop_nonce: false,
            server_tls: false,
        }
    }
}

impl ServerConfig {
    /// Defaults: `127.0.0.1:8080`, `./portcullis-data`, ES256.
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
            tls: None,
            limits: Limits::default(),
            redis_url: None,
            redis_prefix: "pc:".into(),
            access_log: false,
            usage: UsageConfig::default(),
        }
    }
}
