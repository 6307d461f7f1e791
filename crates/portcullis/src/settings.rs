//! One set of values from four sources. A setting given as a flag wins over its
//! `PORTCULLIS_*` environment variable (clap does that part), which wins over the config
//! file, which wins over the built-in default.
//!
//! Every source is read into the same shape, a [`Layer`] where each key is optional, so
//! merging is one `or` per key and cannot treat two sources differently. Secrets are not
//! settings: they come only from the environment ([`EnvSecrets`]) and never pass through a
//! layer, a log line or a message.

use crate::config_file;
use clap::ValueEnum;
use portcullis_core::token::Alg;
use portcullis_server::bootstrap::{Locations, PgOptions};
use portcullis_server::config::{GatewayConfig, ServerConfig};
use portcullis_server::http::HeaderName;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The algorithm of Portcullis's token-signing keys, as flags and the file spell it
/// (the JOSE names, case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
pub enum SigningAlg {
    /// ECDSA with P-256: small keys and signatures, supported by every JWT library
    #[value(name = "ES256")]
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519: small and fast, but not every verifier supports it yet
    #[value(name = "EdDSA")]
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// RSA with SHA-256: for verifiers that only know RSA; larger tokens
    #[value(name = "RS256")]
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlg {
    pub fn alg(self) -> Alg {
        match self {
            SigningAlg::Es256 => Alg::ES256,
            SigningAlg::EdDsa => Alg::EdDSA,
            SigningAlg::Rs256 => Alg::RS256,
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// one readable line per event, for people
    Text,
    /// one JSON object per line, for log collectors
    Json,
}

/// What one source says about each setting; `None` leaves the key to the next source.
/// It is also the schema of the config file, so an unknown key there is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub issuer: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub database_pool_size: Option<u32>,
    pub database_timeout: Option<u64>,
    pub master_key_file: Option<PathBuf>,
    pub signing_alg: Option<SigningAlg>,
    pub jwks_max_age: Option<u64>,
    pub resync_interval: Option<u64>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub access_log: Option<bool>,
    pub usage_analytics: Option<bool>,
    pub usage_retention: Option<u64>,
    pub usage_hour_retention: Option<u64>,
    pub usage_max_keys: Option<u64>,
    pub api_key_header: Option<String>,
    pub org_header: Option<String>,
    pub trusted_proxy: Option<Vec<ipnet::IpNet>>,
    pub allow_secrets_over_http: Option<bool>,
    pub failure_limit: Option<u32>,
    pub public_origin: Option<String>,
    pub dpop_nonce: Option<bool>,
    pub allow_private_image_urls: Option<bool>,
    pub image_fetch_ca_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub header_read_timeout: Option<u64>,
    pub request_timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub redis_url: Option<String>,
}

impl Layer {
    /// Each key from `self` when it has one, else from `lower`.
    pub fn or(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            issuer: self.issuer.or(lower.issuer),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            database_pool_size: self.database_pool_size.or(lower.database_pool_size),
            database_timeout: self.database_timeout.or(lower.database_timeout),
            master_key_file: self.master_key_file.or(lower.master_key_file),
            signing_alg: self.signing_alg.or(lower.signing_alg),
            jwks_max_age: self.jwks_max_age.or(lower.jwks_max_age),
            resync_interval: self.resync_interval.or(lower.resync_interval),
            log_format: self.log_format.or(lower.log_format),
            log_level: self.log_level.or(lower.log_level),
            access_log: self.access_log.or(lower.access_log),
            usage_analytics: self.usage_analytics.or(lower.usage_analytics),
            usage_retention: self.usage_retention.or(lower.usage_retention),
            usage_hour_retention: self.usage_hour_retention.or(lower.usage_hour_retention),
            usage_max_keys: self.usage_max_keys.or(lower.usage_max_keys),
            api_key_header: self.api_key_header.or(lower.api_key_header),
            org_header: self.org_header.or(lower.org_header),
            trusted_proxy: self.trusted_proxy.or(lower.trusted_proxy),
            allow_secrets_over_http: self
                .allow_secrets_over_http
                .or(lower.allow_secrets_over_http),
            failure_limit: self.failure_limit.or(lower.failure_limit),
            public_origin: self.public_origin.or(lower.public_origin),
            dpop_nonce: self.dpop_nonce.or(lower.dpop_nonce),
            allow_private_image_urls: self
                .allow_private_image_urls
                .or(lower.allow_private_image_urls),
            image_fetch_ca_file: self.image_fetch_ca_file.or(lower.image_fetch_ca_file),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            request_timeout: self.request_timeout.or(lower.request_timeout),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            redis_url: self.redis_url.or(lower.redis_url),
        }
    }

    /// `RUST_LOG`, the conventional variable of Rust programs, as a layer of its own: it
    /// sits below `--log-level` / `PORTCULLIS_LOG_LEVEL` and above the config file.
    pub fn from_rust_log(value: Option<String>) -> Layer {
        Layer {
            log_level: value.filter(|v| !v.trim().is_empty()),
            ..Layer::default()
        }
    }
}

/// The merged settings, every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `None`: the server uses `http://<bound address>`.
    pub issuer: Option<String>,
    pub data_dir: PathBuf,
    /// `None`: `<data-dir>/portcullis.db`.
    pub database_url: Option<String>,
    /// Connections to PostgreSQL this node opens at most.
    pub database_pool_size: u32,
    /// Seconds connecting to PostgreSQL, or waiting for a pooled connection, may take.
    pub database_timeout: u64,
    /// `None`: `<data-dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    pub signing_alg: SigningAlg,
    pub jwks_max_age: u64,
    pub resync_interval: u64,
    pub log_format: LogFormat,
    pub log_level: String,
    /// One log line per request (`--access-log`).
    pub access_log: bool,
    /// Count requests per app and minute (`--usage-analytics`).
    pub usage_analytics: bool,
    /// Seconds per-minute usage counts are kept.
    pub usage_retention: u64,
    /// Seconds per-hour usage counts are kept.
    pub usage_hour_retention: u64,
    /// Usage counts a node holds between two flushes.
    pub usage_max_keys: u64,
    pub api_key_header: HeaderName,
    pub org_header: HeaderName,
    pub trusted_proxy: Vec<ipnet::IpNet>,
    pub allow_secrets_over_http: bool,
    pub failure_limit: u32,
    /// The origin DPoP proofs at the gateway must name; `None`: from the forwarded headers.
    pub public_origin: Option<String>,
    pub dpop_nonce: bool,
    pub allow_private_image_urls: bool,
    /// Extra CAs for https image URLs; `None`: the built-in roots only.
    pub image_fetch_ca_file: Option<PathBuf>,
    /// The TLS certificate chain and key files; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub header_read_timeout: u64,
    pub request_timeout: u64,
    pub idle_timeout: u64,
    /// `None`: state that must be one across nodes is per node.
    pub redis_url: Option<String>,
}

impl Settings {
    /// Merge `layers`, highest precedence first, over the built-in defaults.
    /// Errors are written for the operator.
    pub fn resolve(layers: impl IntoIterator<Item = Layer>) -> Result<Settings, String> {
        let merged = layers
            .into_iter()
            .fold(Layer::default(), Layer::or)
            .or(config_file::defaults());
        let issuer = merged.issuer.map(|i| i.trim().to_owned());
        if let Some(issuer) = &issuer
            && !(issuer.starts_with("https://") || issuer.starts_with("http://"))
        {
            return Err(format!(
                "the issuer '{issuer}' is not a URL: give the base URL clients use, e.g. https://auth.example.com"
            ));
        }
        let tls = match (merged.tls_cert, merged.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(
                    "tls_cert is set but tls_key is not: give both the certificate and its private key (--tls-key)".into(),
                );
            }
            (None, Some(_)) => {
                return Err(
                    "tls_key is set but tls_cert is not: give both the certificate (--tls-cert) and its private key".into(),
                );
            }
        };
        Ok(Settings {
            tls,
            header_read_timeout: required("header_read_timeout", merged.header_read_timeout)?,
            request_timeout: required("request_timeout", merged.request_timeout)?,
            idle_timeout: required("idle_timeout", merged.idle_timeout)?,
            listen: required("listen", merged.listen)?,
            issuer,
            data_dir: required("data_dir", merged.data_dir)?,
            database_url: merged.database_url,
            database_pool_size: required("database_pool_size", merged.database_pool_size)?,
            database_timeout: required("database_timeout", merged.database_timeout)?,
            master_key_file: merged.master_key_file,
            signing_alg: required("signing_alg", merged.signing_alg)?,
            jwks_max_age: required("jwks_max_age", merged.jwks_max_age)?,
            resync_interval: required("resync_interval", merged.resync_interval)?,
            log_format: required("log_format", merged.log_format)?,
            log_level: required("log_level", merged.log_level)?,
            access_log: required("access_log", merged.access_log)?,
            usage_analytics: required("usage_analytics", merged.usage_analytics)?,
            usage_retention: required("usage_retention", merged.usage_retention)?,
            usage_hour_retention: required("usage_hour_retention", merged.usage_hour_retention)?,
            usage_max_keys: required("usage_max_keys", merged.usage_max_keys)?,
            api_key_header: header_name("api_key_header", merged.api_key_header)?,
            org_header: header_name("org_header", merged.org_header)?,
            trusted_proxy: required("trusted_proxy", merged.trusted_proxy)?,
            allow_secrets_over_http: required(
                "allow_secrets_over_http",
                merged.allow_secrets_over_http,
            )?,
            failure_limit: required("failure_limit", merged.failure_limit)?,
            public_origin: merged
                .public_origin
                .filter(|o| !o.trim().is_empty())
                .map(|o| public_origin(&o))
                .transpose()?,
            dpop_nonce: required("dpop_nonce", merged.dpop_nonce)?,
            allow_private_image_urls: required(
                "allow_private_image_urls",
                merged.allow_private_image_urls,
            )?,
            image_fetch_ca_file: merged.image_fetch_ca_file,
            redis_url: merged.redis_url.filter(|u| !u.trim().is_empty()),
        })
    }

    /// The PostgreSQL pool settings (SQLite ignores them).
    pub fn database_pool(&self) -> PgOptions {
        PgOptions {
            pool_size: self.database_pool_size.max(1),
            timeout: std::time::Duration::from_secs(self.database_timeout.max(1)),
        }
    }

    /// Where the data directory's pieces are, for the server and the CLI commands alike.
    pub fn locations(&self, secrets: &EnvSecrets) -> Locations {
        Locations {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            master_key: secrets.master_key.clone(),
            master_key_file: self.master_key_file.clone(),
            pool: self.database_pool(),
        }
    }

    pub fn server_config(&self, secrets: &EnvSecrets) -> ServerConfig {
        let mut config = ServerConfig::new(self.data_dir.clone());
        config.listen = self.listen;
        config.issuer = self.issuer.clone();
        config.database_url = self.database_url.clone();
        config.database_pool = self.database_pool();
        config.master_key = secrets.master_key.clone();
        config.master_key_file = self.master_key_file.clone();
        config.admin_token = secrets.admin_token.clone();
        config.signing_alg = self.signing_alg.alg();
        config.jwks_max_age = self.jwks_max_age;
        config.resync_interval = std::time::Duration::from_secs(self.resync_interval.max(1));
        config.redis_url = self.redis_url.clone();
        config.access_log = self.access_log;
        config.usage = portcullis_server::config::UsageConfig {
            enabled: self.usage_analytics,
            retention: std::time::Duration::from_secs(self.usage_retention.max(60)),
            hour_retention: std::time::Duration::from_secs(self.usage_hour_retention.max(3600)),
            max_keys: usize::try_from(self.usage_max_keys.max(1)).unwrap_or(usize::MAX),
            ..Default::default()
        };
        config.gateway = GatewayConfig {
            api_key_header: self.api_key_header.clone(),
            org_header: self.org_header.clone(),
            trusted_proxies: self.trusted_proxy.clone(),
            allow_secrets_over_http: self.allow_secrets_over_http,
            failure_limit: self.failure_limit,
            public_origin: self.public_origin.clone(),
            dpop_nonce: self.dpop_nonce,
            server_tls: false,
        };
        config.tls = self
            .tls
            .as_ref()
            .map(|(cert, key)| portcullis_server::config::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        config.limits = portcullis_server::config::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout.max(1)),
            ..Default::default()
        };
        config.wave = portcullis_server::config::WaveConfig {
            allow_private_image_urls: self.allow_private_image_urls,
            image_fetch_ca_file: self.image_fetch_ca_file.clone(),
            ..Default::default()
        };
        config
    }
}

/// A header name setting, checked and lower-cased.
fn header_name(key: &str, value: Option<String>) -> Result<HeaderName, String> {
    let value = required(key, value)?;
    HeaderName::from_bytes(value.trim().to_ascii_lowercase().as_bytes()).map_err(|_| {
        format!("the {key} '{value}' is not an HTTP header name (letters, digits and '-')")
    })
}

/// An origin: `http(s)://host[:port]`, with no path, query or fragment (a trailing `/` is
/// dropped).
fn public_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.contains(['/', '?', '#', '@'])
                && host.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(origin.to_owned())
        }
        _ => Err(format!(
            "the public_origin '{value}' is not an origin: give the scheme and host clients call, like https://api.example.com (no path)"
        )),
    }
}

/// A key every complete set of defaults has; missing only if the defaults table is wrong,
/// which the tests of `config_file` rule out.
fn required<T>(key: &str, value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| format!("internal error: the setting '{key}' has no default"))
}

/// The two secrets, read only from the environment: never flags (other users can read a
/// process's arguments), never the config file (it gets copied and checked in).
#[derive(Default)]
pub struct EnvSecrets {
    /// `PORTCULLIS_MASTER_KEY`: base64 of the 32-byte master key.
    pub master_key: Option<String>,
    /// `PORTCULLIS_ADMIN_TOKEN`: an operator-chosen bootstrap admin token.
    pub admin_token: Option<String>,
}

pub const MASTER_KEY_ENV: &str = "PORTCULLIS_MASTER_KEY";
pub const ADMIN_TOKEN_ENV: &str = "PORTCULLIS_ADMIN_TOKEN";

impl EnvSecrets {
    pub fn from_env() -> Result<EnvSecrets, String> {
        Ok(EnvSecrets {
            master_key: env_secret(MASTER_KEY_ENV)?,
            admin_token: env_secret(ADMIN_TOKEN_ENV)?,
        })
    }
}

impl fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| {
            if v.is_some() {
                "set (redacted)"
            } else {
                "unset"
            }
        };
        f.debug_struct("EnvSecrets")
            .field("master_key", &shown(&self.master_key))
            .field("admin_token", &shown(&self.admin_token))
            .finish()
    }
}

/// The variable's value; the message on error names the variable, never its value.
fn env_secret(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve_flags(args: &[&str]) -> Layer {
        let argv = ["portcullis", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).expect("valid flags").command {
            Command::Serve(serve) => serve.layer(),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn file(text: &str) -> Layer {
        config_file::parse(text).expect("valid file")
    }

    #[test]
    fn defaults_alone_are_the_documented_defaults() {
        let s = Settings::resolve([]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.issuer, None);
        assert_eq!(s.data_dir, PathBuf::from("./portcullis-data"));
        assert_eq!(s.database_url, None);
        assert_eq!(s.database_pool_size, 10);
        assert_eq!(s.database_timeout, 5);
        assert_eq!(s.master_key_file, None);
        assert_eq!(s.signing_alg, SigningAlg::Es256);
        assert_eq!(s.jwks_max_age, 3600);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.log_level, "info");
        assert_eq!(s.api_key_header, "x-api-key");
        assert_eq!(s.org_header, "x-gw-ims-org-id");
        assert!(s.trusted_proxy.is_empty());
        assert!(!s.allow_secrets_over_http);
        assert_eq!(s.failure_limit, 1000);
    }

    #[test]
    fn gateway_flags_parse_and_bad_header_names_are_refused() {
        let flags = serve_flags(&[
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1/32",
            "--allow-secrets-over-http",
            "--api-key-header",
            "X-Client-Id",
            "--failure-limit",
            "5",
        ]);
        let s = Settings::resolve([flags]).unwrap();
        assert_eq!(s.trusted_proxy.len(), 2);
        assert!(s.allow_secrets_over_http);
        assert_eq!(s.api_key_header, "x-client-id");
        assert_eq!(s.failure_limit, 5);
        let err = Settings::resolve([file("org_header = \"bad header\"")]).unwrap_err();
        assert!(
            err.contains("org_header") && err.contains("bad header"),
            "{err}"
        );
    }

    #[test]
    fn tls_and_timeout_flags_reach_the_server_config() {
        let flags = serve_flags(&[
            "--tls-cert",
            "/etc/c.pem",
            "--tls-key",
            "/etc/k.pem",
            "--header-read-timeout",
            "3",
        ]);
        let s = Settings::resolve([flags, file("request_timeout = 7")]).unwrap();
        let config = s.server_config(&EnvSecrets::default());
        let tls = config.tls.expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/etc/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/etc/k.pem"));
        assert_eq!(config.limits.header_read_timeout.as_secs(), 3);
        assert_eq!(config.limits.request_timeout.as_secs(), 7);
        let defaults = Settings::resolve([Layer::default()]).unwrap();
        assert!(defaults.server_config(&EnvSecrets::default()).tls.is_none());
        let err = Settings::resolve([file("tls_cert = \"/etc/c.pem\"")]).unwrap_err();
        assert!(err.contains("tls_key"), "{err}");
    }

    #[test]
    fn usage_analytics_are_on_by_default_and_the_switch_turns_them_off() {
        let defaults = Settings::resolve([]).unwrap();
        let usage = defaults.server_config(&EnvSecrets::default()).usage;
        assert!(usage.enabled);
        assert_eq!(usage.retention.as_secs(), 48 * 3600);
        assert_eq!(usage.max_keys, 1_000_000);

        let flags = serve_flags(&["--usage-analytics", "false", "--usage-retention", "3600"]);
        let s = Settings::resolve([
            flags,
            file("usage_analytics = true\nusage_max_keys = 10\nusage_hour_retention = 86400"),
        ])
        .unwrap();
        let usage = s.server_config(&EnvSecrets::default()).usage;
        assert!(!usage.enabled, "the flag beats the file");
        assert_eq!(usage.retention.as_secs(), 3600);
        assert_eq!(usage.hour_retention.as_secs(), 86_400);
        assert_eq!(usage.max_keys, 10);
        let bare = Settings::resolve([serve_flags(&["--usage-analytics"])]).unwrap();
        assert!(bare.usage_analytics);
    }

    #[test]
    fn pool_flags_reach_the_store_options() {
        let flags = serve_flags(&[
            "--database-url",
            "postgres://portcullis@db/portcullis",
            "--database-pool-size",
            "32",
            "--database-timeout",
            "2",
        ]);
        let s = Settings::resolve([flags]).unwrap();
        let config = s.server_config(&EnvSecrets::default());
        assert_eq!(
            config.database_url.as_deref(),
            Some("postgres://portcullis@db/portcullis")
        );
        assert_eq!(config.database_pool.pool_size, 32);
        assert_eq!(
            config.database_pool.timeout,
            std::time::Duration::from_secs(2)
        );
        let s = Settings::resolve([file("database_pool_size = 0\ndatabase_timeout = 0")]).unwrap();
        assert_eq!(
            (
                s.database_pool().pool_size,
                s.database_pool().timeout.as_secs()
            ),
            (1, 1),
            "a pool is at least one connection, a timeout at least a second"
        );
    }

    #[test]
    fn the_file_beats_the_defaults() {
        let s = Settings::resolve([file(
            "listen = \"0.0.0.0:9000\"\nsigning_alg = \"EdDSA\"\njwks_max_age = 60\nlog_format = \"json\"",
        )])
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.signing_alg, SigningAlg::EdDsa);
        assert_eq!(s.jwks_max_age, 60);
        assert_eq!(s.log_format, LogFormat::Json);
        // Keys the file leaves out keep their defaults.
        assert_eq!(s.data_dir, PathBuf::from("./portcullis-data"));
    }

    #[test]
    fn flags_beat_the_file() {
        let flags = serve_flags(&[
            "--listen",
            "127.0.0.1:7000",
            "--data-dir",
            "/flag/dir",
            "--signing-alg",
            "RS256",
        ]);
        let from_file = file(
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/file/dir\"\nsigning_alg = \"EdDSA\"\nissuer = \"https://file.example\"",
        );
        let s = Settings::resolve([flags, from_file]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/flag/dir"));
        assert_eq!(s.signing_alg, SigningAlg::Rs256);
        // A key only the file gives still comes from the file.
        assert_eq!(s.issuer.as_deref(), Some("https://file.example"));
    }

    #[test]
    fn rust_log_sits_between_the_log_level_flag_and_the_file() {
        let from_file = || file("log_level = \"warn\"");
        let rust_log = || Layer::from_rust_log(Some("debug".into()));

        let s = Settings::resolve([Layer::default(), rust_log(), from_file()]).unwrap();
        assert_eq!(s.log_level, "debug");

        let flags = serve_flags(&["--log-level", "error"]);
        let s = Settings::resolve([flags, rust_log(), from_file()]).unwrap();
        assert_eq!(s.log_level, "error");

        let s = Settings::resolve([Layer::from_rust_log(Some(" ".into())), from_file()]).unwrap();
        assert_eq!(s.log_level, "warn", "an empty RUST_LOG is no setting");
    }

    #[test]
    fn an_issuer_must_be_a_url() {
        let err = Settings::resolve([file("issuer = \"auth.example.com\"")]).unwrap_err();
        assert!(
            err.contains("auth.example.com") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn signing_alg_names_are_the_core_names() {
        for alg in SigningAlg::value_variants() {
            let name = alg.to_possible_value().unwrap().get_name().to_owned();
            assert_eq!(Alg::parse(&name), Some(alg.alg()));
            assert_eq!(alg.alg().as_str(), name);
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let secrets = EnvSecrets {
            master_key: Some("c2VjcmV0".into()),
            admin_token: Some("pcsa_not-for-logs".into()),
        };
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("pcsa_"),
            "{shown}"
        );
    }
}
