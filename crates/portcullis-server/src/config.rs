//! The server's resolved configuration. The binary builds it from flags, `PORTCULLIS_*`
//! environment variables and an optional TOML file; tests build it directly.

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
    /// `sqlite://<path>`; default `<data-dir>/portcullis.db`.
    pub database_url: Option<String>,
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
    /// How often to poll the store for writes made by other processes.
    pub poll_interval: Duration,
    /// How long to wait for in-flight requests on shutdown.
    pub shutdown_grace: Duration,
    pub clock: Arc<dyn Clock>,
}

impl ServerConfig {
    /// Defaults of API.md: `127.0.0.1:8080`, `./portcullis-data`, ES256.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            data_dir,
            database_url: None,
            master_key: None,
            master_key_file: None,
            admin_token: None,
            signing_alg: Alg::ES256,
            jwks_max_age: 3600,
            poll_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
        }
    }
}
