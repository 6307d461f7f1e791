//! Key custody and backups, on the data directory beside a running server:
//! `master-key rotate|retire`, `admin-token rotate|revoke`, `backup`, `restore`.
//!
//! **Rotating the master key without downtime.** `master-key rotate` (key file) writes a
//! fresh key in front of the old one in the key file, atomically (a key *ring*: the first
//! key seals, every key opens), then re-encrypts every signing key and the secret-hash key
//! under the new key. A running server keeps serving from the keys it has already
//! decrypted; when the change feed makes it reload them, its ring cannot open them, so it
//! re-reads its key file, finds the new key, and goes on. Nothing is ever sealed under a
//! key that is not yet in the file, and the old key stays in the file until
//! `master-key retire`, which removes it only after checking that every stored value opens
//! with the new key alone. With `PORTCULLIS_MASTER_KEY` (several nodes), the ring is the
//! variable: give every node `NEW,OLD` (a rolling restart), run `master-key rotate` with the
//! same value to re-encrypt under NEW, then give them `NEW` alone.
//!
//! Every command here appends an audit entry with the actor `cli`.

use super::{Failure, open_data};
use crate::cli::{AdminTokenArgs, BackupArgs, MasterKeyArgs, RestoreArgs};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::model::{AuditOutcome, NewAuditEntry};
use portcullis_core::secret::{Secret, SecretKind};
use portcullis_server::backup_seal;
use portcullis_server::bootstrap;
use portcullis_server::keys::{all_under_current, reseal_all};
use portcullis_server::live_view::{SETTING_ADMIN_TOKEN, SETTING_HASH_KEY};
use portcullis_server::master_key::{
    MasterKey, generate_key_line, key_file_lines, replace_key_file,
};
use portcullis_store::Store;
use portcullis_store::sqlite::check_file;
use std::io::Write;
use std::path::Path;

async fn audit(store: &dyn Store, action: &str, target: &str) {
    let entry = NewAuditEntry {
        at: SystemClock.now(),
        actor: "cli".into(),
        action: action.into(),
        target: target.into(),
        outcome: AuditOutcome::Success,
        org_id: None,
        address: None,
        details: Default::default(),
    };
    if let Err(e) = store.append_audit(&[entry]).await {
        eprintln!("warning: the audit entry for {action} could not be written: {e}");
    }
}

pub async fn master_key_rotate(args: MasterKeyArgs) -> Result<(), Failure> {
    let (_, store, master) = open_data(args.data.layer(), &args.config).await?;
    let written = match master.file() {
        Some(path) => {
            let path = path.to_owned();
            let mut lines = key_file_lines(&path)
                .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", path.display())))?;
            lines.insert(0, generate_key_line());
            replace_key_file(&path, &lines)
                .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
            master.reload();
            Some(path)
        }
        None if master.ring_len() < 2 => {
            return Err(Failure::Config(
                "the master key comes from PORTCULLIS_MASTER_KEY and holds one key: generate a new one (head -c 32 /dev/urandom | base64), give every node PORTCULLIS_MASTER_KEY=<new>,<old> (a rolling restart), then run this command with that same value to re-encrypt everything under <new>".into(),
            ));
        }
        None => None,
    };
    let done = reseal_all(&*store, &master)
        .await
        .map_err(Failure::runtime)?;
    audit(&*store, "master-key.rotate", "").await;
    match written {
        Some(path) => println!(
            "Wrote a new master key to {path} (the old key is kept on its second line, so a node that has not re-read the file yet still works).\n\
             Re-encrypted {} signing keys and the secret-hash key under the new key.\n\
             A running server on this key file picks the new key up by itself. Back up {path} now;\n\
             when every node has the new file, run `portcullis master-key retire` to drop the old key.",
            done.signing_keys,
            path = path.display()
        ),
        None => println!(
            "Re-encrypted {} signing keys and the secret-hash key under the first key of PORTCULLIS_MASTER_KEY.\n\
             Run `portcullis master-key retire` to check that nothing needs the old key, then give every node the new key alone.",
            done.signing_keys
        ),
    }
    Ok(())
}

pub async fn master_key_retire(args: MasterKeyArgs) -> Result<(), Failure> {
    let (_, store, master) = open_data(args.data.layer(), &args.config).await?;
    if !all_under_current(&*store, &master)
        .await
        .map_err(Failure::runtime)?
    {
        return Err(Failure::Runtime(
            "some stored values are still encrypted under an older key of the ring: run `portcullis master-key rotate` first (it re-encrypts everything), then retire".into(),
        ));
    }
    match master.file() {
        Some(path) => {
            let lines = key_file_lines(path)
                .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", path.display())))?;
            let dropped = lines.len().saturating_sub(1);
            replace_key_file(path, &lines[..1])
                .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
            audit(&*store, "master-key.retire", "").await;
            println!(
                "Dropped {dropped} old key(s) from {}: everything is encrypted under the current key.",
                path.display()
            );
        }
        None => println!(
            "Everything is encrypted under the first key of PORTCULLIS_MASTER_KEY: give every node that key alone."
        ),
    }
    Ok(())
}

pub async fn admin_token_rotate(args: AdminTokenArgs) -> Result<(), Failure> {
    let (_, store, master) = open_data(args.data.layer(), &args.config).await?;
    let hash_key = bootstrap::hash_key(&*store, &master)
        .await
        .map_err(Failure::runtime)?;
    let token = Secret::generate(SecretKind::AdminToken);
    store
        .set_setting(SETTING_ADMIN_TOKEN, &token.hash(&hash_key).to_hex())
        .await
        .map_err(Failure::runtime)?;
    audit(&*store, "admin-token.rotate", "").await;
    eprintln!(
        "The old bootstrap admin token no longer works (a running server sees the change within a second). The new one, shown once:"
    );
    println!("{}", token.expose());
    Ok(())
}

pub async fn admin_token_revoke(args: AdminTokenArgs) -> Result<(), Failure> {
    let (_, store, _) = open_data(args.data.layer(), &args.config).await?;
    // Not a hash: no token matches it, and a restart does not mint a new one.
    store
        .set_setting(SETTING_ADMIN_TOKEN, "revoked")
        .await
        .map_err(Failure::runtime)?;
    audit(&*store, "admin-token.revoke", "").await;
    println!(
        "Revoked the bootstrap admin token: no token is the bootstrap admin now. `portcullis admin-token rotate` (or a start with PORTCULLIS_ADMIN_TOKEN set) makes a new one."
    );
    Ok(())
}

pub async fn backup(args: BackupArgs) -> Result<(), Failure> {
    let (settings, store, master) = open_data(args.data.layer(), &args.config).await?;
    let seal_file = backup_seal::seal_path(&args.file);
    // Both names are taken first, new and owner-only: nothing planted at them (a file, a
    // symbolic link) is ever opened, and an error after this point removes both.
    let mut out = backup_seal::create_private(&args.file).map_err(|e| {
        Failure::Runtime(format!(
            "cannot create {} ({e}); choose a new file for the backup",
            args.file.display()
        ))
    })?;
    let mut seal_out = match backup_seal::create_private(&seal_file) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_file(&args.file);
            return Err(Failure::Runtime(format!(
                "cannot create {} ({e}); choose a new file for the backup",
                seal_file.display()
            )));
        }
    };
    let written = async {
        // The snapshot is taken and checked inside the data directory, which only the
        // server's user can write, then copied into the backup file through its handle.
        let snapshot = settings.data_dir.join(format!(
            "backup-{}.tmp",
            portcullis_core::ids::RecordId::generate("b")
        ));
        let copied = async {
            store.backup_to(&snapshot).await.map_err(Failure::runtime)?;
            let check = check_file(&snapshot).await.map_err(Failure::runtime)?;
            if check.integrity != "ok" {
                return Err(Failure::Runtime(format!(
                    "the snapshot fails its integrity check: {}",
                    check.integrity
                )));
            }
            let mut from = std::fs::File::open(&snapshot).map_err(Failure::runtime)?;
            backup_seal::copy_private(&mut from, &mut out)
                .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", args.file.display())))
        }
        .await;
        let _ = std::fs::remove_file(&snapshot);
        let digest = copied?;
        seal_out
            .write_all(backup_seal::seal(&master, &digest, SystemClock.now()).as_bytes())
            .and_then(|()| seal_out.sync_all())
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", seal_file.display())))
    }
    .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&args.file);
        let _ = std::fs::remove_file(&seal_file);
        return Err(e);
    }
    audit(&*store, "store.backup", "").await;
    let size = out.metadata().map(|m| m.len()).unwrap_or(0);
    let key = settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("master.key"));
    println!(
        "Wrote a consistent snapshot to {} ({size} bytes, integrity ok, readable by its owner only),\n\
         and its seal to {}: restore refuses the backup without its seal, or if either was changed.\n\
         It holds the signing keys and the secret-hash key encrypted under the master key, which it does NOT contain:\n\
         keep a copy of the master key ({} or PORTCULLIS_MASTER_KEY) with your backups, stored apart from them.",
        args.file.display(),
        seal_file.display(),
        key.display()
    );
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let settings = super::settings(args.data.layer(), &args.config)?;
    if settings.database_url.is_some() {
        return Err(Failure::Config(
            "restore writes the SQLite file of a data directory; with --database-url, use the database's own tools".into(),
        ));
    }
    let dir = &settings.data_dir;
    let db = dir.join("portcullis.db");
    bootstrap::create_data_dir(dir).map_err(Failure::runtime)?;
    // The server's own lock, held until the restored database is in place: a server
    // cannot start on the directory halfway through.
    let running = || {
        Failure::Runtime(format!(
            "a Portcullis server is running on {}: stop it first (restoring under it would corrupt its database)",
            dir.display()
        ))
    };
    let _lock = match bootstrap::lock_data_dir(dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Err(running()),
        Err(e) => {
            return Err(Failure::Runtime(format!(
                "cannot lock {} ({e}); restore must be sure no server runs on it",
                dir.display()
            )));
        }
    };
    if db.exists() && !args.force {
        return Err(Failure::Runtime(format!(
            "{} already holds a database; pass --force to replace it with the backup (its current contents are lost)",
            dir.display()
        )));
    }
    // The master key must be the one the backup was taken under: it checks the seal, and
    // the restored database's keys open only with it.
    let secrets = crate::settings::EnvSecrets::from_env().map_err(Failure::Config)?;
    let key_file = settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| dir.join("master.key"));
    let key_source = if secrets.master_key.is_some() {
        "PORTCULLIS_MASTER_KEY".to_owned()
    } else {
        key_file.display().to_string()
    };
    let master = match &secrets.master_key {
        Some(b64) => MasterKey::from_base64(b64).map_err(Failure::runtime)?,
        None if key_file.exists() => MasterKey::load(&key_file).map_err(Failure::runtime)?,
        None => {
            return Err(Failure::Runtime(format!(
                "there is no master key at {}: restore needs the master key that was in use when the backup was taken, to check the backup's seal and so that the server can decrypt its keys. Put it there (mode 0600) or set PORTCULLIS_MASTER_KEY, then restore again",
                key_file.display()
            )));
        }
    };
    let seal_file = backup_seal::seal_path(&args.file);
    let seal = read_seal(&seal_file).map_err(|e| {
        Failure::Runtime(format!(
            "cannot read the backup's seal {} ({e}): `portcullis backup` writes it beside the backup, and a backup is restored only with it. Copy it next to the backup and restore again",
            seal_file.display()
        ))
    })?;
    // Every check runs on a private copy in a new directory of its own (no stray journal
    // or WAL beside it), and that copy is what is installed: the backup cannot change
    // between being checked and being restored.
    let scratch = dir.join(format!(
        "restore-{}",
        portcullis_core::ids::RecordId::generate("r")
    ));
    let copy = scratch.join("portcullis.db");
    let checked = async {
        bootstrap::create_data_dir(&scratch).map_err(Failure::runtime)?;
        let cannot_copy = |e: std::io::Error| {
            Failure::Runtime(format!(
                "cannot copy {} into {}: {e}",
                args.file.display(),
                dir.display()
            ))
        };
        let mut from = open_regular(&args.file).map_err(cannot_copy)?;
        let mut to = backup_seal::create_private(&copy).map_err(cannot_copy)?;
        let digest = backup_seal::copy_private(&mut from, &mut to).map_err(cannot_copy)?;
        let taken_at = backup_seal::check(&master, &seal, &digest).map_err(|e| {
            Failure::Runtime(format!(
                "{} is refused: checked against its seal {} with the master key ({key_source}), {e}",
                args.file.display(),
                seal_file.display()
            ))
        })?;
        let check = check_file(&copy).await.map_err(|e| {
            Failure::Runtime(format!(
                "{} is not a readable SQLite database: {e}",
                args.file.display()
            ))
        })?;
        if check.integrity != "ok" {
            return Err(Failure::Runtime(format!(
                "{} fails its integrity check ({}); it cannot be restored",
                args.file.display(),
                check.integrity
            )));
        }
        let sealed = check.sealed_hash_key.ok_or_else(|| {
            Failure::Runtime(format!(
                "{} is not a Portcullis backup (it has no secret-hash key)",
                args.file.display()
            ))
        })?;
        if master.open(SETTING_HASH_KEY, &sealed).is_err() {
            return Err(Failure::Runtime(format!(
                "the master key ({key_source}) does not decrypt this backup: put the master key that was in use when the backup was taken there (or in PORTCULLIS_MASTER_KEY), then restore again"
            )));
        }
        install(&copy, &db)
            .map_err(|e| Failure::Runtime(format!("restoring into {}: {e}", db.display())))?;
        Ok(taken_at)
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let taken_at = checked?;
    println!(
        "Restored {} into {}: the backup taken at {}, its seal checked with the master key.",
        args.file.display(),
        db.display(),
        super::rfc3339(taken_at)
    );
    Ok(())
}

/// Largest seal file read: a seal is under 200 bytes.
const MAX_SEAL: u64 = 4096;

/// A seal file's text: a regular file of at most [`MAX_SEAL`] bytes.
fn read_seal(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut text = String::new();
    file.take(MAX_SEAL).read_to_string(&mut text)?;
    Ok(text)
}

/// Open a regular file (not a device, a FIFO or a directory) for reading.
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Put the checked private copy in place of `db`: drop the old database's journal, WAL
/// and shared-memory files (they belong to the database being replaced), and rename the
/// copy over `db`.
fn install(copy: &Path, db: &Path) -> std::io::Result<()> {
    for suffix in ["db-wal", "db-shm", "db-journal"] {
        match std::fs::remove_file(db.with_extension(suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(copy, db)?;
    if let Some(dir) = db.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
