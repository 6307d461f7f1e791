//! Opening the data directory: the store, the master key, and on first start the
//! secret-hash key, the bootstrap admin token and the signing keys. Shared by
//! `portcullis serve` and the CLI commands that work on a data directory.
//!
//! The store is picked by the database URL's scheme: none or `sqlite:` is the embedded
//! file, `postgres:` / `postgresql:` the shared database of a cluster. The master key
//! stays a local matter either way (the data directory's key file, or
//! `PORTCULLIS_MASTER_KEY`): every node of a cluster must be given the same one, since
//! the signing keys in the database are encrypted under it.

use crate::keys::{KeyOpError, ensure_keys};
use crate::live_view::{SETTING_ADMIN_TOKEN, SETTING_HASH_KEY};
use crate::master_key::{MasterKey, MasterKeyError};
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_core::token::Alg;
pub use portcullis_store::postgres::PgOptions;
use portcullis_store::postgres::PostgresStore;
use portcullis_store::sqlite::SqliteStore;
use portcullis_store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the data directory {path}: {err}")]
    DataDir { path: String, err: std::io::Error },
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyOpError),
    #[error(
        "the database URL '{0}' is not supported: use sqlite://<path>, postgres://user@host/database, or leave it unset for <data-dir>/portcullis.db"
    )]
    UnsupportedDatabase(String),
    #[error(
        "the database already holds keys encrypted under a master key, but there is no master key at {key_file} (nor in PORTCULLIS_MASTER_KEY): put the key that was in use when this database was written there (mode 0600), or set PORTCULLIS_MASTER_KEY to it. A new key would not decrypt them, so none was created"
    )]
    MasterKeyMissing { key_file: String },
    #[error(
        "another Portcullis server is already serving the data directory {0} (it holds portcullis.lock there): stop it first, or give this server a --data-dir of its own. Several servers share one database through PostgreSQL (--database-url)"
    )]
    DataDirInUse(String),
    #[error("PORTCULLIS_ADMIN_TOKEN must be at least 32 characters long")]
    WeakAdminToken,
}

/// Where the pieces of a data directory live.
#[derive(Default)]
pub struct Locations {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// Pool size and timeouts of a PostgreSQL store (unused by SQLite).
    pub pool: PgOptions,
}

impl Locations {
    fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// Which store a database URL names.
enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

fn backend_of(loc: &Locations) -> Result<Backend, OpenError> {
    match loc.database_url.as_deref() {
        None => Ok(Backend::Sqlite(loc.data_dir.join("portcullis.db"))),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Backend::Postgres(url.to_owned()))
        }
        Some(url) => url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| Backend::Sqlite(PathBuf::from(p)))
            .ok_or_else(|| OpenError::UnsupportedDatabase(url.to_owned())),
    }
}

/// Open the store and master key. `create` makes the data directory and key file if
/// missing (the server); the CLI passes `false` so it never invents a key of its own.
pub async fn open(
    loc: &Locations,
    create: bool,
) -> Result<(Arc<dyn Store>, Arc<MasterKey>), OpenError> {
    if create {
        create_data_dir(&loc.data_dir)?;
    }
    // A key given (the variable) or one that must already exist (the CLI) is read first:
    // a missing key file is the likelier mistake to report.
    let given = match &loc.master_key {
        Some(b64) => Some(MasterKey::from_base64(b64)?),
        None if !create => Some(MasterKey::load(&loc.key_file())?),
        None => None,
    };
    let store: Arc<dyn Store> = match backend_of(loc)? {
        Backend::Sqlite(path) => {
            if !create && !path.exists() {
                return Err(OpenError::Store(StoreError::Backend(format!(
                    "no database at {}; start the server once with this data directory first",
                    path.display()
                ))));
            }
            Arc::new(SqliteStore::open(&path).await?)
        }
        Backend::Postgres(url) => Arc::new(PostgresStore::open(&url, &loc.pool).await?),
    };
    let master = match given {
        Some(key) => key,
        None => {
            let key_file = loc.key_file();
            // A store that already holds secrets was sealed under some key: a new one
            // would only stand beside it, unable to open them (after a restore, say).
            if !key_file.exists() && store.setting(SETTING_HASH_KEY).await?.is_some() {
                return Err(OpenError::MasterKeyMissing {
                    key_file: key_file.display().to_string(),
                });
            }
            let (k, created) = MasterKey::load_or_create(&key_file)?;
            if created {
                tracing::info!(path = %key_file.display(), "created a new master key (mode 0600); back it up: without it the signing keys cannot be decrypted");
            }
            k
        }
    };
    Ok((store, Arc::new(master)))
}

/// First-start initialisation. Returns a newly generated admin token, to print once.
pub async fn initialise(
    store: &dyn Store,
    master: &MasterKey,
    admin_token: Option<&str>,
    alg: Alg,
    now: i64,
) -> Result<Option<Secret>, OpenError> {
    let fresh = portcullis_core::random_bytes::<32>();
    store
        .init_setting(SETTING_HASH_KEY, &master.seal(SETTING_HASH_KEY, &fresh))
        .await?;
    let hash_key = hash_key(store, master).await?;

    let mut generated = None;
    match admin_token {
        Some(t) => {
            if t.len() < 32 {
                return Err(OpenError::WeakAdminToken);
            }
            let h = hash_key.hash_text(t).to_hex();
            let stored = store.setting(SETTING_ADMIN_TOKEN).await?;
            if stored.as_deref() != Some(h.as_str()) {
                store.set_setting(SETTING_ADMIN_TOKEN, &h).await?;
                // Only the fact, never a value: an operator who set the variable to get in
                // again learns that whoever held the old token no longer can.
                if stored.is_some() {
                    tracing::warn!(
                        "PORTCULLIS_ADMIN_TOKEN replaced the stored bootstrap admin token: the old one no longer works"
                    );
                }
            }
        }
        None => {
            let token = Secret::generate(SecretKind::AdminToken);
            if store
                .init_setting(SETTING_ADMIN_TOKEN, &token.hash(&hash_key).to_hex())
                .await?
            {
                generated = Some(token);
            }
        }
    }
    ensure_keys(store, master, alg, now).await?;
    Ok(generated)
}

/// The secret-hash key of an initialised store, decrypted with the master key: what client
/// secrets are hashed with.
pub async fn hash_key(store: &dyn Store, master: &MasterKey) -> Result<HashKey, OpenError> {
    let sealed = store
        .setting(SETTING_HASH_KEY)
        .await?
        .ok_or_else(|| StoreError::Backend("the store has no secret-hash key".into()))?;
    let raw = master.open(SETTING_HASH_KEY, &sealed)?;
    let bytes: [u8; 32] = raw
        .try_into()
        .map_err(|_| StoreError::Backend("the secret-hash key has the wrong length".into()))?;
    Ok(HashKey::from_bytes(&bytes))
}

/// Create a data directory (and its parents) if it does not exist: owner only, since it
/// holds secret hashes and encrypted keys. An existing one is left as it is.
pub fn create_data_dir(dir: &Path) -> Result<(), OpenError> {
    if dir.exists() {
        return Ok(());
    }
    let dir_err = |err| OpenError::DataDir {
        path: dir.display().to_string(),
        err,
    };
    std::fs::create_dir_all(dir).map_err(dir_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
    }
    Ok(())
}

/// For `serve` on a SQLite store: create the data directory if needed and take its lock
/// *before* the database is opened (or migrated) or a master key is made, so a second
/// server changes nothing before it is refused. `None` for PostgreSQL, whose nodes share
/// the database by design.
pub fn lock_for_serving(loc: &Locations) -> Result<Option<std::fs::File>, OpenError> {
    if matches!(backend_of(loc)?, Backend::Postgres(_)) {
        return Ok(None);
    }
    create_data_dir(&loc.data_dir)?;
    let dir = loc.data_dir.display().to_string();
    match lock_data_dir(&loc.data_dir) {
        Ok(Some(lock)) => Ok(Some(lock)),
        Ok(None) => Err(OpenError::DataDirInUse(dir)),
        Err(err) => Err(OpenError::DataDir {
            path: format!("{dir} (its lock file {LOCK_FILE})"),
            err,
        }),
    }
}

/// Whether `path` looks like a data directory the server has initialised.
pub fn is_initialised(data_dir: &Path) -> bool {
    data_dir.join("portcullis.db").exists()
}

/// The lock file a serving process holds (an advisory `flock`, released when it exits,
/// even by SIGKILL), so that `portcullis restore` can tell a running server's data
/// directory.
const LOCK_FILE: &str = "portcullis.lock";

/// Take the data directory's lock for a server. `Ok(None)` when another process holds it:
/// the server then refuses to start (two servers on one SQLite file would each keep a
/// view the other's writes reach only by polling, and a restore under them would corrupt
/// it).
pub fn lock_data_dir(data_dir: &Path) -> std::io::Result<Option<std::fs::File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether a server holds the data directory's lock right now. A lock file that exists
/// but cannot be opened counts as held: better a refused command than a corrupted store.
pub fn data_dir_in_use(data_dir: &Path) -> bool {
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .open(data_dir.join(LOCK_FILE))
    {
        Ok(file) => file,
        Err(e) => return e.kind() != std::io::ErrorKind::NotFound,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}
