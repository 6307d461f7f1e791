//! The command line: subcommands, flags, their environment twins and their help text.
//!
//! Flags are `Option`s with no clap default, so that "not given" is visible and the config
//! file can fill it in (see [`crate::settings`]). The defaults still show in `--help`:
//! [`command`] appends them from [`crate::config_file::SETTINGS`], the same table the
//! config file reference and the built-in defaults come from. Parse with [`parse`], not
//! `Cli::parse`, to get that help.

use crate::config_file::SETTINGS;
use crate::settings::{Layer, LogFormat, SigningAlg};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Portcullis, an API access server: issues API credentials, trades them for short-lived tokens.",
    long_about = "Portcullis, an API access server: issues API credentials to applications and \
trades them for short-lived OAuth 2.0 access tokens.\n\n\
Start with `portcullis serve`. Every flag has a PORTCULLIS_* environment twin, and \
`portcullis config default` prints a config file with every setting.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGTERM or Ctrl-C
    #[command(after_long_help = SERVE_AFTER_HELP, after_help = SERVE_AFTER_HELP)]
    Serve(Box<ServeArgs>),
    /// Manage the keys Portcullis signs tokens with, directly in the data directory
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Rotate the master key that encrypts the signing keys, without downtime
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Rotate or revoke the bootstrap admin token
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
    /// Create a console administrator: prints a one-time link to choose a password
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Write a consistent snapshot of the SQLite store to FILE while the server runs
    #[command(long_about = BACKUP_ABOUT)]
    Backup(BackupArgs),
    /// Bring a backup back into a data directory (the server must be stopped)
    #[command(long_about = RESTORE_ABOUT)]
    Restore(RestoreArgs),
    /// Work with the config file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Say whether the gateway lets a request through, and if not, why: decodes the token
    /// and shows the decision
    #[command(long_about = EXPLAIN_ABOUT, after_long_help = EXPLAIN_AFTER_HELP)]
    Explain(Box<ExplainArgs>),
    /// Sign in as an Adobe Wave subscriber and print notifications as they arrive
    #[command(after_long_help = LISTEN_AFTER_HELP, after_help = LISTEN_AFTER_HELP)]
    Listen(ListenArgs),
    /// Fill a data directory with synthetic orgs, apps and secrets for benchmarks
    /// (BENCHMARKS.md). Hidden from the main help: it is a benchmark tool, not an operation
    #[command(hide = true, long_about = BENCH_SEED_ABOUT)]
    BenchSeed(BenchSeedArgs),
    /// Copy a data directory's SQLite store into PostgreSQL (to move up to several nodes),
    /// with a progress bar; checks the counts and leaves the source untouched
    MigrateStore(MigrateStoreArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout
    #[command(long_about = COMPLETIONS_ABOUT)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) to stdout, or write every page into a directory
    #[command(hide = true)]
    Man(ManArgs),
}

/// `portcullis man`: the manual pages, generated from this command line's own help.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write portcullis.1 and a page per subcommand (portcullis-serve.1,
    /// portcullis-keys-rotate.1, …) into DIR, and print their paths, instead of printing
    /// portcullis.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const COMPLETIONS_ABOUT: &str = "\
Print a shell completion script to stdout: subcommands and flags complete on Tab.

  bash:  portcullis completions bash > /etc/bash_completion.d/portcullis
  zsh:   portcullis completions zsh > \"${fpath[1]}/_portcullis\"
  fish:  portcullis completions fish > ~/.config/fish/completions/portcullis.fish

The Debian package installs all three.";

/// `portcullis completions`: the shell to write a completion script for.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// `portcullis migrate-store`: SQLite → PostgreSQL.
#[derive(Debug, Args)]
pub struct MigrateStoreArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// The PostgreSQL database to copy into (postgres://user:password@host:5432/db); it
    /// must be empty. Portcullis creates its tables there
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub to: String,

    /// Copy even though the target already holds orgs, apps or users
    #[arg(long)]
    pub into_non_empty: bool,

    #[command(flatten)]
    pub data: DataArgs,
}

const LISTEN_AFTER_HELP: &str = "\
The password is read from the PORTCULLIS_PASSWORD environment variable, or else as one
line from stdin; never from a flag, which would leave it in shell history and in the
process list. A dropped connection is resumed where it stopped (Last-Event-ID), so no
notification is missed within the server's retention window.

Example:
  portcullis listen --server https://wave.example --email me@example.com < password.txt";

/// `portcullis listen`: a small stand-in for the Wave desktop client.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Base URL of the Portcullis server, e.g. http://127.0.0.1:8080
    #[arg(long, value_name = "URL")]
    pub server: String,

    /// The subscriber's email (the account's password comes from PORTCULLIS_PASSWORD or
    /// stdin)
    #[arg(long, value_name = "EMAIL")]
    pub email: String,

    /// Start after this notification id (the last one printed before) instead of with
    /// the notifications that arrive from now on
    #[arg(long, value_name = "ID")]
    pub after: Option<i64>,

    /// Print each notification as one JSON object per line
    #[arg(long)]
    pub json: bool,

    /// Stop after printing this many notifications
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// A PEM file of certificate authorities to trust for an https --server, beside the
    /// built-in Mozilla roots: for a server whose certificate a private CA signed
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

const BENCH_SEED_ABOUT: &str = "\
Fill a data directory with synthetic data for benchmarks (see BENCHMARKS.md).

Writes --orgs organizations (product `events`, sandbox `prod`), one protected resource in each \
(sandbox `prod`, product `events`, scope `read`), and --apps applications spread evenly over \
them (scopes `read write introspect`, product `events`, write access to `prod`), each with one \
client secret. The data directory is created and initialised as on the server's first start \
if it does not exist (set PORTCULLIS_ADMIN_TOKEN to choose the admin token).

Records are written in bulk, in a few large transactions. Stop the server first: a running \
server would rebuild its whole view from a snapshot after each transaction (correct, but slow \
with many apps).

Secrets are stored as keyed hashes only. The plaintext credentials of --sample apps, spread \
over the orgs, go to --credentials-out (mode 0600), one per line, tab-separated: \
client_id, secret, org id, resource id. Nothing secret is printed.";

/// `portcullis bench-seed`: synthetic data for the load and startup benchmarks.
#[derive(Debug, Args)]
pub struct BenchSeedArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// How many organizations (each with one resource)
    #[arg(long, value_name = "N")]
    pub orgs: u32,

    /// How many applications, spread evenly over the organizations
    #[arg(long, value_name = "M")]
    pub apps: u32,

    /// Write the plaintext credentials of --sample apps to this file (mode 0600)
    #[arg(long, value_name = "FILE")]
    pub credentials_out: Option<PathBuf>,

    /// How many apps' credentials go to --credentials-out
    #[arg(long, value_name = "COUNT", default_value_t = 500)]
    pub sample: u32,

    #[command(flatten)]
    pub data: DataArgs,
}

const SERVE_AFTER_HELP: &str = "\
Secrets are read only from the environment, never from flags or the config file:
  PORTCULLIS_MASTER_KEY   Base64 of the 32-byte master key that encrypts the signing keys;
                          replaces the key file. All nodes of a cluster and the CLI share it.
  PORTCULLIS_ADMIN_TOKEN  The bootstrap admin token (at least 32 characters). When unset, one
                          is generated on first start and printed once to the terminal; when
                          stderr is not a terminal (a service, a container, a pipe), it is
                          written to <data-dir>/admin-token (mode 0600) and only the file's
                          path is logged.

Precedence: flag > PORTCULLIS_* variable > config file > default.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// Address and port to listen on. Use 0.0.0.0 to accept connections from other machines,
    /// port 0 to pick any free port
    #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,

    /// Public base URL of this server, as clients reach it: the `iss` of its tokens and the
    /// base of its discovery document. Set it in production, e.g. https://auth.example.com
    #[arg(long, env = "PORTCULLIS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// Redis shared by every node (redis://host:6379/0, rediss:// for TLS): app-signed JWT
    /// and assertion ids, OAuth 1.0 nonces and failure limits then count across nodes and
    /// portcullis-verify verifiers. Without it they are per node (nonces in the database)
    #[arg(
        long,
        env = "PORTCULLIS_REDIS_URL",
        value_name = "URL",
        // A Redis URL may hold a password: never print it in --help.
        hide_env_values = true
    )]
    pub redis_url: Option<String>,

    /// Algorithm of the signing keys created on first start (to change it later, use
    /// `portcullis keys rotate --alg`)
    #[arg(long, env = "PORTCULLIS_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<SigningAlg>,

    #[command(flatten)]
    pub jwks: JwksArg,

    /// Seconds between full rebuilds of the in-memory view from the store. Changes reach the
    /// view within a second in between (from the store's change feed); the full rebuild only
    /// repairs a view that missed some. Lower it to test, raise it for very large stores
    #[arg(long, env = "PORTCULLIS_RESYNC_INTERVAL", value_name = "SECONDS")]
    pub resync_interval: Option<u64>,

    // Sets the help heading of the flags after it: keep the un-headed flags above.
    #[command(flatten)]
    pub data: DataArgs,

    #[command(flatten)]
    pub gateway: GatewayArgs,

    #[command(flatten)]
    pub transport: TransportArgs,

    /// Log format on stderr
    #[arg(
        long,
        env = "PORTCULLIS_LOG_FORMAT",
        value_name = "FORMAT",
        help_heading = "Logging"
    )]
    pub log_format: Option<LogFormat>,

    /// Which logs to show: a level (error, warn, info, debug, trace) or a filter such as
    /// `info,portcullis_server=debug`. When neither this flag nor its variable is set,
    /// RUST_LOG is used
    #[arg(
        long,
        env = "PORTCULLIS_LOG_LEVEL",
        value_name = "FILTER",
        help_heading = "Logging"
    )]
    pub log_level: Option<String>,

    /// Log one line per request (target `access`, at info level whatever --log-level says):
    /// method, route pattern, status, latency, the client id when the answer names one,
    /// and the denial code. Never a query string, a header value or a credential
    #[arg(
        long,
        env = "PORTCULLIS_ACCESS_LOG",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        help_heading = "Logging"
    )]
    pub access_log: Option<bool>,

    /// Count gateway decisions, token requests and introspections per app and minute, by
    /// resource or grant and outcome, for /admin/v1/orgs/{org_id}/usage and
    /// /admin/v1/apps/{client_id}/usage. Counted in memory, written to the database every 5
    /// seconds; /metrics gets no per-app series
    #[arg(
        long,
        env = "PORTCULLIS_USAGE_ANALYTICS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        help_heading = "Usage analytics"
    )]
    pub usage_analytics: Option<bool>,

    /// Seconds per-minute usage counts are kept; older minutes are pruned (reads with a
    /// step of whole hours use the hour counts instead)
    #[arg(
        long,
        env = "PORTCULLIS_USAGE_RETENTION",
        value_name = "SECONDS",
        help_heading = "Usage analytics"
    )]
    pub usage_retention: Option<u64>,

    /// Seconds per-hour usage counts are kept; older hours are pruned
    #[arg(
        long,
        env = "PORTCULLIS_USAGE_HOUR_RETENTION",
        value_name = "SECONDS",
        help_heading = "Usage analytics"
    )]
    pub usage_hour_retention: Option<u64>,

    /// Distinct counts (minute, app, resource or grant, outcome) a node holds between two
    /// writes to the database; past it, new ones are counted without their app and
    /// resource (and portcullis_usage_folded_total says how many)
    #[arg(
        long,
        env = "PORTCULLIS_USAGE_MAX_KEYS",
        value_name = "COUNT",
        help_heading = "Usage analytics"
    )]
    pub usage_max_keys: Option<u64>,
}

impl ServeArgs {
    /// What the flags and their environment twins say.
    pub fn layer(&self) -> Layer {
        Layer {
            listen: self.listen,
            issuer: self.issuer.clone(),
            redis_url: self.redis_url.clone(),
            signing_alg: self.signing_alg,
            jwks_max_age: self.jwks.jwks_max_age,
            resync_interval: self.resync_interval,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            access_log: self.access_log,
            usage_analytics: self.usage_analytics,
            usage_retention: self.usage_retention,
            usage_hour_retention: self.usage_hour_retention,
            usage_max_keys: self.usage_max_keys,
            api_key_header: self.gateway.api_key_header.clone(),
            org_header: self.gateway.org_header.clone(),
            trusted_proxy: self.gateway.trusted_proxy.clone(),
            allow_secrets_over_http: self.gateway.allow_secrets_over_http,
            failure_limit: self.gateway.failure_limit,
            public_origin: self.gateway.public_origin.clone(),
            dpop_nonce: self.gateway.dpop_nonce,
            allow_private_image_urls: self.gateway.allow_private_image_urls,
            image_fetch_ca_file: self.gateway.image_fetch_ca_file.clone(),
            tls_cert: self.transport.tls_cert.clone(),
            tls_key: self.transport.tls_key.clone(),
            header_read_timeout: self.transport.header_read_timeout,
            request_timeout: self.transport.request_timeout,
            idle_timeout: self.transport.idle_timeout,
            ..self.data.layer()
        }
    }
}

/// How the gateway reads requests.
#[derive(Debug, Args)]
#[command(next_help_heading = "Gateway")]
pub struct GatewayArgs {
    /// Header that carries the client id (API key) beside an access token
    #[arg(long, env = "PORTCULLIS_API_KEY_HEADER", value_name = "NAME")]
    pub api_key_header: Option<String>,

    /// Header that carries the organization id beside an access token
    #[arg(long, env = "PORTCULLIS_ORG_HEADER", value_name = "NAME")]
    pub org_header: Option<String>,

    /// A proxy (IP address or CIDR range) whose X-Forwarded-For and X-Forwarded-Proto
    /// headers are believed: the client address for failure limits, and whether the client
    /// used TLS. Repeat the flag, or separate with commas in the variable
    #[arg(
        long,
        env = "PORTCULLIS_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Option<Vec<ipnet::IpNet>>,

    /// Accept client secrets (userKey + secret) over plain HTTP. For local development
    /// only: in production, secrets must only travel over TLS
    #[arg(
        long,
        env = "PORTCULLIS_ALLOW_SECRETS_OVER_HTTP",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_secrets_over_http: Option<bool>,

    /// Failed authentications allowed per minute from one client address, and from one
    /// address for one app; past it, that address (or pair) gets 429 until the minute has
    /// passed. 0 turns the limit off
    #[arg(long, env = "PORTCULLIS_FAILURE_LIMIT", value_name = "COUNT")]
    pub failure_limit: Option<u32>,

    /// The scheme and host clients call the protected APIs at (like
    /// https://api.example.com): a DPoP proof sent through the gateway must name this
    /// origin and the original request's path. Without it, the origin is rebuilt from the
    /// check request's X-Forwarded-Proto and X-Forwarded-Host (from a --trusted-proxy)
    /// or its Host header
    #[arg(long, env = "PORTCULLIS_PUBLIC_ORIGIN", value_name = "URL")]
    pub public_origin: Option<String>,

    /// Require a nonce this server gave in every DPoP proof, at the token endpoint and
    /// the gateway: a proof without a current one is refused with a fresh nonce in the
    /// DPoP-Nonce header, and DPoP clients retry with it. Nonces are good for 5 to 10
    /// minutes and shared by every node of one store
    #[arg(
        long,
        env = "PORTCULLIS_DPOP_NONCE",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub dpop_nonce: Option<bool>,

    /// Let a Wave notification's imageurl reach private, loopback and link-local
    /// addresses. For development and tests only: in production it lets publishers make
    /// the server request internal services (SSRF)
    #[arg(
        long,
        env = "PORTCULLIS_ALLOW_PRIVATE_IMAGE_URLS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_private_image_urls: Option<bool>,

    /// A PEM file of extra certificate authorities to trust when fetching a Wave
    /// notification's https imageurl, beside the built-in Mozilla roots: for a private CA,
    /// or a test's own. Certificates are always verified; this only adds trust
    #[arg(long, env = "PORTCULLIS_IMAGE_FETCH_CA_FILE", value_name = "FILE")]
    pub image_fetch_ca_file: Option<PathBuf>,
}

/// TLS and the limits on slow clients.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS and limits")]
pub struct TransportArgs {
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. Requests
    /// then count as TLS for the secrets-over-TLS rules without a proxy. Without it the
    /// server speaks plain HTTP (put a TLS-terminating proxy in front in production)
    #[arg(
        long,
        env = "PORTCULLIS_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC); keep it readable by the
    /// server's user only
    #[arg(
        long,
        env = "PORTCULLIS_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Seconds a client may take to send a request's headers (and a TLS handshake, and the
    /// next request on a kept-alive connection) before the connection is closed
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,

    /// Seconds a request, body included, may take before it is answered 408 and its
    /// connection closed (streamed responses such as Wave's notification stream are not cut)
    #[arg(long, env = "PORTCULLIS_REQUEST_TIMEOUT", value_name = "SECONDS")]
    pub request_timeout: Option<u64>,

    /// Seconds a connection may stay open with no byte moving either way (one that never
    /// sends a request, or a kept-alive one nobody uses) before it is closed
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
}

/// `--config`, shared by every command that reads settings.
#[derive(Debug, Args)]
pub struct ConfigFileArg {
    /// Read settings from this TOML file (`portcullis config default` prints one with every
    /// key). Flags and PORTCULLIS_* variables override it
    #[arg(long, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Where the data lives; shared by `serve` and the commands that work on its data.
#[derive(Debug, Args)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// Directory of the SQLite database (portcullis.db) and the master key (master.key).
    /// The server creates it on first start. With PostgreSQL it holds only the master key
    /// file (unless PORTCULLIS_MASTER_KEY is set)
    #[arg(long, env = "PORTCULLIS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database to use instead of the one in the data directory: sqlite://<path>, or
    /// postgres://user:password@host:5432/database for several nodes sharing one database
    /// (every node must then have the same master key)
    #[arg(
        long,
        env = "PORTCULLIS_DATABASE_URL",
        value_name = "URL",
        // A database URL may hold a password: never print it in --help.
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Connections to PostgreSQL this process opens at most (one more for change
    /// notifications). Ignored by SQLite
    #[arg(long, env = "PORTCULLIS_DATABASE_POOL_SIZE", value_name = "COUNT")]
    pub database_pool_size: Option<u32>,

    /// Seconds connecting to PostgreSQL, or waiting for a free pooled connection, may take
    /// before the request fails (503) or readiness reports the store unreachable
    #[arg(long, env = "PORTCULLIS_DATABASE_TIMEOUT", value_name = "SECONDS")]
    pub database_timeout: Option<u64>,

    /// File holding the master key (base64 of 32 bytes) that encrypts the signing keys; back
    /// it up. Not used when PORTCULLIS_MASTER_KEY is set
    #[arg(long, env = "PORTCULLIS_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl DataArgs {
    pub fn layer(&self) -> Layer {
        Layer {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            database_pool_size: self.database_pool_size,
            database_timeout: self.database_timeout,
            master_key_file: self.master_key_file.clone(),
            ..Layer::default()
        }
    }
}

/// `--jwks-max-age`, shared by `serve` (which publishes the JWKS) and `keys rotate` (which
/// must not use a key before verifiers can have fetched it).
#[derive(Debug, Args)]
pub struct JwksArg {
    /// How long, in seconds, verifiers may cache the JWKS (its Cache-Control max-age). A new
    /// signing key is published at least this long before it signs tokens
    #[arg(long, env = "PORTCULLIS_JWKS_MAX_AGE", value_name = "SECONDS")]
    pub jwks_max_age: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Write a new master key in front of the old one and re-encrypt everything under it
    #[command(long_about = MASTER_ROTATE_ABOUT)]
    Rotate(MasterKeyArgs),
    /// Drop the old keys from the key file, once nothing is encrypted under them
    Retire(MasterKeyArgs),
}

const MASTER_ROTATE_ABOUT: &str = "\
Write a new master key in front of the old one and re-encrypt everything under it.

The key file becomes a ring: its first line (the new key) encrypts, every line decrypts. \
Every signing key and the secret-hash key are then re-encrypted under the new key. A running \
server keeps serving; when it reloads the re-encrypted keys it re-reads its key file and finds \
the new key, so no restart is needed. When every node has the new file, `portcullis \
master-key retire` removes the old key. With PORTCULLIS_MASTER_KEY, set it to NEW,OLD on every \
node first, then run this with the same value: it re-encrypts under NEW.";

#[derive(Debug, Args)]
pub struct MasterKeyArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give an email the admin role in an organization (made if there is none of that
    /// name), and print a one-time link to choose a password and sign in to the console
    #[command(after_long_help = ADMIN_CREATE_AFTER_HELP, after_help = ADMIN_CREATE_AFTER_HELP)]
    Create(AdminCreateArgs),
}

const ADMIN_CREATE_AFTER_HELP: &str = "\
This is how the first person gets into the console. The link works once, for 24 hours; it is \
printed here and nowhere else (not logged).

For an email that already has an account, it adds the admin role in the organization and \
resets the password at once: the old password stops working, the person's sessions end, and \
they sign in again only after choosing a new password with the link. To give an existing \
person a role without that, use the console's Users tab, or PATCH /admin/v1/users/{user_id} \
{\"roles\": {\"<org id>\": \"admin\"}} with the admin API.

Run it on the server's machine with the server's data directory (and \
--issuer, if the server has one, so the link points at the server); the running server sees \
the new user at once.

The first administrator made this way is also a platform administrator: they may create \
organizations in the console and change any organization's name, products, sandboxes and \
status (inside an organization they have only the rights of their role there). Later ones are \
platform administrators only with --platform; a platform administrator (or the bootstrap admin \
token) can also make one with PATCH /admin/v1/users/{user_id} {\"platform_admin\": true}, and \
stop one being one with false.

Example:
  portcullis admin create --email you@example.com --org \"My organization\"";

/// `portcullis admin create`.
#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// The administrator's email address: what they sign in with
    #[arg(long, value_name = "EMAIL")]
    pub email: String,

    /// The organization to administer: the id or the name of an existing one, or the name
    /// of one to create (with the sandbox `prod`)
    #[arg(long, value_name = "NAME|ID")]
    pub org: String,

    /// The person's name, shown in the console and the audit log
    #[arg(long, value_name = "NAME", default_value = "")]
    pub name: String,

    /// Make the person a platform administrator, who may create organizations (without
    /// this flag, only when there is no platform administrator yet)
    #[arg(long)]
    pub platform: bool,

    /// The server's issuer (its public base URL), which the link starts with
    #[arg(long, env = "PORTCULLIS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// The server's listen address, used only to work out the default issuer the way
    /// `serve` does (http://<listen address>)
    #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,

    #[command(flatten)]
    pub data: DataArgs,
}

impl AdminCreateArgs {
    pub fn layer(&self) -> Layer {
        Layer {
            listen: self.listen,
            issuer: self.issuer.clone(),
            ..self.data.layer()
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Make a new bootstrap admin token (printed once) and end the old one
    Rotate(AdminTokenArgs),
    /// End the bootstrap admin token without making a new one
    Revoke(AdminTokenArgs),
}

#[derive(Debug, Args)]
pub struct AdminTokenArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,
    #[command(flatten)]
    pub data: DataArgs,
}

const BACKUP_ABOUT: &str = "\
Write a consistent snapshot of the SQLite store to FILE while the server runs and writes \
(VACUUM INTO: one read transaction, so every write acknowledged before it began is in it). \
FILE must not exist; it is created readable by its owner only (it holds password and secret \
hashes). Beside it, FILE.seal holds its SHA-256 digest sealed with the master key: restore \
refuses a backup without its seal, or one changed after it was written. The snapshot holds \
the signing keys and the secret-hash key encrypted under the master key, which is not in it: \
keep a copy of the master key apart from the backups.";

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub config: ConfigFileArg,
    #[command(flatten)]
    pub data: DataArgs,
}

const RESTORE_ABOUT: &str = "\
Bring a backup made by `portcullis backup` back into a data directory.

The backup is checked (PRAGMA integrity_check) and must be a Portcullis database. A data \
directory a server is running on is refused: stop the server first. One that already holds a \
database is refused unless --force. The master key must be in place first, and be the one in \
use when the backup was taken (the data directory's master.key, --master-key-file or \
PORTCULLIS_MASTER_KEY): with it, restore checks the backup against its seal (FILE.seal, \
written beside it by `portcullis backup`) and refuses a backup that was changed, that has no \
seal, or that another key sealed.";

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace the database the data directory already holds
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub config: ConfigFileArg,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show the signing keys: id, algorithm, state and when each state began
    List(KeysListArgs),
    /// Start signing with the next key, retire the current one and publish a fresh next key
    #[command(long_about = ROTATE_ABOUT)]
    Rotate(KeysRotateArgs),
}

const ROTATE_ABOUT: &str = "\
Start signing with the next key, retire the current one and publish a fresh next key.

A key is published in the JWKS as `next` before it signs anything, so that verifiers caching \
the JWKS already know it; rotation refuses until the next key has been published for the JWKS \
max-age, unless --force. The retired key stays published until the last token it signed has \
expired. A running server picks up the change within a second.";

#[derive(Debug, Args)]
pub struct KeysListArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Args)]
pub struct KeysRotateArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// Algorithm of the keys from now on (default: the algorithm of the next key). A change
    /// publishes a next key of the new algorithm first; rotate again after the JWKS max-age
    #[arg(long, value_name = "ALG")]
    pub alg: Option<SigningAlg>,

    /// Rotate now even if the next key was published less than the JWKS max-age ago.
    /// Verifiers holding an older copy of the JWKS reject new tokens until they refetch it
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub jwks: JwksArg,
    #[command(flatten)]
    pub data: DataArgs,
}

impl KeysRotateArgs {
    pub fn layer(&self) -> Layer {
        Layer {
            jwks_max_age: self.jwks.jwks_max_age,
            ..self.data.layer()
        }
    }
}

const EXPLAIN_ABOUT: &str = "\
Say whether the gateway (/gateway/v1/check) lets a request through, and if not, why.

Give the resource and the credentials the client sends. explain prints the token decoded \
(without verification: the decision verifies it), then the decision: ALLOWED with the headers \
the gateway passes upstream, or DENIED with the status, code, title and detail the client gets.

It asks one of two sources. With --server, a running server answers over HTTP. Without it, \
explain reads the data directory (like `portcullis keys`) and makes the same decision itself; \
the server need not run, but tokens verify only if --issuer is the server's issuer.";

const EXPLAIN_AFTER_HELP: &str = "\
Exit status: 0 allowed, 1 denied, 2 when there is no answer (bad flags, no data directory, \
server unreachable).

Secrets passed as flags stay in your shell history and show in `ps`: give `-` to --token or \
--secret to read the value from stdin instead (one line each; with both, the token is the first \
line and the secret the second). Output shows the token shortened and never the secret.

Example:
  portcullis explain --resource res_... --api-key <client id> --org <org id> --token - < token.txt";

/// `portcullis explain`: the question (resource, method, credentials, headers) and where
/// to ask it.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigFileArg,

    /// Id of the resource the request is for, as the proxy names it in
    /// /gateway/v1/check?resource=<id> (see GET /admin/v1/orgs/{org}/resources)
    #[arg(long, value_name = "ID")]
    pub resource: String,

    /// Method of the client's request. Anything but GET, HEAD and OPTIONS is a write, which
    /// needs write access to the resource's sandbox
    #[arg(long, value_name = "METHOD", default_value = "GET")]
    pub method: String,

    /// Print one JSON object ({"token": …, "decision": …}) instead of text, for scripts
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub credentials: ExplainCredentials,

    #[command(flatten)]
    pub source: ExplainSource,

    // Sets the help heading of the flags after it: keep it last.
    #[command(flatten)]
    pub data: DataArgs,
}

impl ExplainArgs {
    pub fn layer(&self) -> Layer {
        Layer {
            listen: self.source.listen,
            issuer: self.source.issuer.clone(),
            ..self.data.layer()
        }
    }
}

/// What the client sends, as `explain` flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Credentials (as the client sends them)")]
pub struct ExplainCredentials {
    /// The access token the client sends as `Authorization: Bearer <TOKEN>`, or `-` to read
    /// it from stdin (one line), which keeps it out of your shell history
    #[arg(long, value_name = "TOKEN|-")]
    pub token: Option<String>,

    /// The DPoP proof the client sends with a DPoP-bound token, or `-` to read it from stdin
    /// (the line after the token's when both are `-`). The token then goes as
    /// `Authorization: DPoP <TOKEN>`; give the URL the client called with --url
    #[arg(long, value_name = "PROOF|-", requires_all = ["token", "url"])]
    pub dpop: Option<String>,

    /// With --dpop: the URL the client called (scheme, host, path), which the proof's htu
    /// must name
    #[arg(long, value_name = "URL", requires = "dpop")]
    pub url: Option<String>,

    /// An application's client id, sent as x-user-key with --secret (the userKey + secret way
    /// of calling an API)
    #[arg(long, value_name = "CLIENT_ID", requires = "secret")]
    pub user_key: Option<String>,

    /// One of that application's client secrets (pcss_…), sent as x-user-secret, or `-` to
    /// read it from stdin (one line). Never printed
    #[arg(long, value_name = "SECRET|-", requires = "user_key")]
    pub secret: Option<String>,

    /// The x-api-key header: the client id of the application the token was issued to
    #[arg(long, value_name = "CLIENT_ID")]
    pub api_key: Option<String>,

    /// The x-gw-ims-org-id header: the organization id, like 4F2A9C1B7D3E5A6B8C0D1E2F@Org
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,

    /// Another request header, as `Name: value`; repeat for more. For example
    /// -H 'X-Forwarded-Method: POST', or -H 'Authorization: …' to try a malformed one
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

/// `--server`, or how to decide from the data directory.
#[derive(Debug, Args)]
#[command(next_help_heading = "Where to ask")]
pub struct ExplainSource {
    /// Ask the server running at this base URL (e.g. http://127.0.0.1:8080) instead of
    /// reading the data directory: explain sends the request to
    /// <URL>/gateway/v1/check?resource=<ID> and shows what came back. The data directory
    /// flags are then not used
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Without --server: the issuer to decide as. It must be the server's issuer (its
    /// `serve --issuer`, the `iss` of its tokens), or no token verifies
    #[arg(long, env = "PORTCULLIS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,

    /// Without --server: the server's listen address, used only to work out the default
    /// issuer the way `serve` does (http://<listen address>)
    #[arg(long, env = "PORTCULLIS_LISTEN", value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,

    /// Without --server: decide as if it were this time (unix seconds) instead of now, to
    /// reproduce a past decision, or one at a token's expiry. The rest (deleted apps, revoked
    /// tokens, suspended orgs) is as the data directory has it now
    #[arg(
        long,
        value_name = "UNIX_SECONDS",
        conflicts_with = "server",
        hide_short_help = true
    )]
    pub now: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a config file listing every key, its environment variable and its default
    Default,
}

/// The clap command, with each setting's default added to its help.
pub fn command() -> clap::Command {
    with_defaults(Cli::command())
}

fn with_defaults(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let Some(setting) = SETTINGS.iter().find(|s| arg.get_id() == s.key) else {
                return arg;
            };
            let suffix = format!("[default: {}]", setting.default.shown());
            let help = arg.get_help().map(|h| format!("{h} {suffix}"));
            let long = arg.get_long_help().map(|h| format!("{h}\n\n{suffix}"));
            let arg = match help {
                Some(help) => arg.help(help),
                None => arg.help(suffix),
            };
            match long {
                Some(long) => arg.long_help(long),
                None => arg,
            }
        })
        .mut_subcommands(with_defaults)
}

/// Parse the process's arguments; on a usage error, print it and exit with 2.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ADMIN_TOKEN_ENV, MASTER_KEY_ENV};

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }

    fn render_help(path: &[&str]) -> String {
        let mut cmd = command();
        let mut cmd = &mut cmd;
        for name in path {
            cmd = cmd.find_subcommand_mut(name).expect("subcommand");
        }
        // Unwrapped, so that a default is never split across lines.
        cmd.clone()
            .term_width(10_000)
            .render_long_help()
            .to_string()
    }

    #[test]
    fn help_shows_each_default_once() {
        let help = render_help(&["serve"]);
        for setting in SETTINGS {
            let shown = format!("[default: {}]", setting.default.shown());
            // Once per setting with that default (two flags default to false).
            let same = SETTINGS
                .iter()
                .filter(|s| s.default.shown() == setting.default.shown())
                .count();
            assert_eq!(help.matches(&shown).count(), same, "{shown} in\n{help}");
        }
    }

    #[test]
    fn help_names_the_secret_variables() {
        let help = render_help(&["serve"]);
        assert!(help.contains(MASTER_KEY_ENV) && help.contains(ADMIN_TOKEN_ENV));
    }

    #[test]
    fn keys_commands_share_the_data_flags() {
        for path in [["keys", "list"], ["keys", "rotate"]] {
            let help = render_help(&path);
            for flag in [
                "--config",
                "--data-dir",
                "--database-url",
                "--master-key-file",
            ] {
                assert!(help.contains(flag), "{flag} missing from {path:?}");
            }
        }
        assert!(render_help(&["keys", "rotate"]).contains("--jwks-max-age"));
    }

    #[test]
    fn a_bad_signing_alg_is_a_usage_error() {
        let err =
            Cli::try_parse_from(["portcullis", "serve", "--signing-alg", "HS256"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
    }
}
