//! Key custody and backups with the real binary: `master-key rotate` / `retire` while a
//! server runs, and `backup` during writes then `restore` into a new data directory.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Server, grant, portcullis, run, stderr};

const ADMIN: &str = "custody-admin-token-0123456789abcdefghij";

fn serve(dir: &Path) -> Server {
    Server::start(
        portcullis()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("PORTCULLIS_ADMIN_TOKEN", ADMIN),
    )
}

async fn post(http: &reqwest::Client, addr: &str, path: &str, body: Value) -> reqwest::Response {
    http.post(format!("http://{addr}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An org, an app and a secret: `(client_id, secret)`.
async fn client(http: &reqwest::Client, addr: &str) -> (String, String) {
    let org: Value = post(http, addr, "/admin/v1/orgs", json!({"name": "Acme"}))
        .await
        .json()
        .await
        .unwrap();
    let app: Value = post(
        http,
        addr,
        "/admin/v1/apps",
        json!({"org_id": org["id"], "name": "a"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = app["client_id"].as_str().unwrap().to_owned();
    let s: Value = post(
        http,
        addr,
        &format!("/admin/v1/apps/{id}/secrets"),
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    (id, s["secret"].as_str().unwrap().to_owned())
}

fn key_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("master.key"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

#[tokio::test]
async fn master_key_rotation_while_serving_keeps_grants_working_and_a_restart_needs_only_the_new_key()
 {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = serve(dir.path());
    let (id, secret) = client(&http, &server.addr).await;
    assert_eq!(grant(&http, &server.addr, &id, &secret).await, 200);
    let old_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();

    let out = run(portcullis()
        .args(["master-key", "rotate", "--data-dir"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(key_lines(dir.path()), 2);
    // The server reloads the re-encrypted keys (re-reading its key file); grants go on.
    // A key rotation makes it decrypt a signing key it never saw under the old key.
    let out = run(portcullis()
        .args(["keys", "rotate", "--force", "--data-dir"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut grants = 0;
    while Instant::now() < deadline {
        assert_eq!(grant(&http, &server.addr, &id, &secret).await, 200);
        grants += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(grants > 10);
    let out = run(portcullis()
        .args(["master-key", "retire", "--data-dir"])
        .arg(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(key_lines(dir.path()), 1);
    let new_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(old_key.trim(), new_key.trim());
    server.stop();

    // Only the new key is left, and a restarted server works with it.
    let server = serve(dir.path());
    assert_eq!(grant(&http, &server.addr, &id, &secret).await, 200);
    server.stop();
}

#[tokio::test]
async fn a_backup_taken_during_writes_restores_everything_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = serve(dir.path());
    let addr = server.addr.clone();
    // Writers keep creating orgs while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, String)>::new()));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (http, addr, stop, acked) = (http.clone(), addr.clone(), stop.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = post(&http, &addr, "/admin/v1/orgs", json!({"name": "w"})).await;
                if r.status() == 201 {
                    let v: Value = r.json().await.unwrap();
                    acked
                        .lock()
                        .unwrap()
                        .push((Instant::now(), v["id"].as_str().unwrap().to_owned()));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backup = dir.path().join("snapshot.db");
    let began = Instant::now();
    let out = run(portcullis()
        .args(["backup"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let before: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t < began)
        .map(|(_, id)| id.clone())
        .collect();
    assert!(!before.is_empty());

    // Restoring under the running server is refused.
    let out = run(portcullis()
        .args(["restore", "--force"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(dir.path()));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    server.stop();

    let check = portcullis_store::sqlite::check_file(&backup).await.unwrap();
    assert_eq!(check.integrity, "ok");
    let seal = dir.path().join("snapshot.db.seal");
    // Password and secret hashes: the backup and its seal are the owner's alone.
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [&backup, &seal] {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }
    // A new data directory with the same master key.
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("data");
    std::fs::create_dir(&target).unwrap();
    // Without the master key in place, restore refuses and says where to put it.
    let out = run(portcullis()
        .arg("restore")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&target));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no master key"), "{}", stderr(&out));
    assert!(!target.join("portcullis.db").exists());
    // A wrong master key is refused.
    std::fs::write(
        target.join("master.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let out = run(portcullis()
        .args(["restore", "--force"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(&target));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    assert!(!target.join("portcullis.db").exists());
    std::fs::copy(dir.path().join("master.key"), target.join("master.key")).unwrap();
    // An existing database needs --force.
    let out = run(portcullis()
        .arg("restore")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&target));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(portcullis()
        .arg("restore")
        .arg(&backup)
        .arg("--data-dir")
        .arg(&target));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let out = run(portcullis()
        .args(["restore", "--force"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(&target));
    assert!(out.status.success(), "{}", stderr(&out));
    let restored = serve(&target);
    let mut missing = 0;
    for id in &before {
        let r = http
            .get(format!("http://{}/admin/v1/orgs/{id}", restored.addr))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            missing += 1;
        }
    }
    println!(
        "backup: {} orgs acknowledged before the backup began, {} missing after restore",
        before.len(),
        missing
    );
    assert_eq!(missing, 0);
    restored.stop();
    let check = portcullis_store::sqlite::check_file(&target.join("portcullis.db"))
        .await
        .unwrap();
    assert_eq!(check.integrity, "ok");
}

/// Someone who can write where backups are kept edits one (here one row, with SQLite
/// itself; a password hash copied over an administrator's would be the same kind of edit)
/// and keeps the real seal beside it, or drops the seal. Restore refuses both, and leaves
/// the data directory as it was.
#[tokio::test]
async fn an_edited_backup_or_one_without_its_seal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let server = serve(dir.path());
    client(&http, &server.addr).await;
    server.stop();
    let backup = dir.path().join("b.db");
    let out = run(portcullis()
        .arg("backup")
        .arg(&backup)
        .arg("--data-dir")
        .arg(dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));

    let target = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.path().join("master.key"),
        target.path().join("master.key"),
    )
    .unwrap();
    let restore = |file: &Path| {
        run(portcullis()
            .args(["restore", "--force"])
            .arg(file)
            .arg("--data-dir")
            .arg(target.path()))
    };

    // Edited: one row changed with SQLite itself, the original seal copied beside it.
    let edited = dir.path().join("edited.db");
    std::fs::copy(&backup, &edited).unwrap();
    std::fs::copy(
        dir.path().join("b.db.seal"),
        dir.path().join("edited.db.seal"),
    )
    .unwrap();
    {
        use sqlx::{ConnectOptions, Connection};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&edited)
            .connect()
            .await
            .unwrap();
        let changed = sqlx::query("UPDATE orgs SET doc = replace(doc, 'Acme', 'Evil')")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        conn.close().await.unwrap();
    }
    let out = restore(&edited);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("changed after"), "{}", stderr(&out));
    assert!(!target.path().join("portcullis.db").exists());
    // Nothing of the refused copy is left behind.
    let left: Vec<_> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("restore-") || n.starts_with("portcullis.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // No seal.
    std::fs::remove_file(dir.path().join("edited.db.seal")).unwrap();
    let out = restore(&edited);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read the backup's seal"),
        "{}",
        stderr(&out)
    );
    assert!(!target.path().join("portcullis.db").exists());

    // The untouched backup with its seal restores, owner-only, and says when it was taken.
    let out = restore(&backup);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        support::stdout(&out).contains("taken at 20"),
        "{}",
        support::stdout(&out)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target.path().join("portcullis.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Something planted where the backup is to be written (a file, or a symbolic link to a
/// file its planter can read) is never opened: the backup is refused and nothing is
/// written through the link.
#[tokio::test]
async fn backup_never_writes_through_a_planted_file_or_link() {
    let dir = tempfile::tempdir().unwrap();
    serve(dir.path()).stop();
    let drop_box = tempfile::tempdir().unwrap();
    let bait = drop_box.path().join("bait");
    std::fs::write(&bait, b"").unwrap();
    let file = drop_box.path().join("b.db");
    std::os::unix::fs::symlink(&bait, &file).unwrap();
    let out = run(portcullis()
        .arg("backup")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path()));
    assert!(!out.status.success());
    assert_eq!(
        std::fs::metadata(&bait).unwrap().len(),
        0,
        "written through the link"
    );
    assert!(!drop_box.path().join("b.db.seal").exists());
    // A planted seal: refused as well, and the backup file it had created is removed.
    let other = drop_box.path().join("c.db");
    std::fs::write(drop_box.path().join("c.db.seal"), b"planted").unwrap();
    let out = run(portcullis()
        .arg("backup")
        .arg(&other)
        .arg("--data-dir")
        .arg(dir.path()));
    assert!(!out.status.success());
    assert!(!other.exists());
    // No snapshot is left in the data directory either.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("backup-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A database without its master key beside it (copied, or restored before the key was
/// put back): the server refuses to start, says what to do, and creates no key of its own.
#[test]
fn serve_refuses_to_make_a_new_master_key_beside_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    serve(dir.path()).stop();
    // The key is kept elsewhere (as it should be for backups) and not put back.
    let kept = tempfile::tempdir().unwrap();
    std::fs::rename(
        dir.path().join("master.key"),
        kept.path().join("master.key"),
    )
    .unwrap();
    let out = support::run_expecting_exit(
        portcullis()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path()),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no master key"), "{}", stderr(&out));
    assert!(!dir.path().join("master.key").exists());
    // With the key back, it starts.
    std::fs::rename(
        kept.path().join("master.key"),
        dir.path().join("master.key"),
    )
    .unwrap();
    serve(dir.path()).stop();
}

/// Two servers on one SQLite data directory: the second exits with a clear message.
#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path());
    let out = support::run_expecting_exit(
        portcullis()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("PORTCULLIS_ADMIN_TOKEN", ADMIN),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("already serving"), "{}", stderr(&out));
    // The first one is unaffected.
    let ready = reqwest::get(format!("http://{}/readyz", first.addr))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    first.stop();
}
