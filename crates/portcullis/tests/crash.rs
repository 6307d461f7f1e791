//! Crash safety with the real binary: `portcullis serve` is SIGKILLed in the middle of a
//! burst of concurrent admin writes (apps, and a client secret for each), restarted on the
//! same data directory, and every write it acknowledged with a 2xx must be there — on
//! SQLite, whose file must also pass `PRAGMA integrity_check`, and on PostgreSQL with
//! `PORTCULLIS_TEST_BACKEND=postgres`.

mod support;

use portcullis_store::test_db::TestDatabase;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Server, WAIT, grant, portcullis};
use tokio::sync::Notify;

const ADMIN: &str = "crash-admin-token-0123456789abcdefghijklm";
/// Concurrent writers.
const WRITERS: usize = 8;
/// Acknowledged writes (apps and secrets together) after which the server is killed.
const KILL_AT: usize = 600;

/// Whether this run is against PostgreSQL (`PORTCULLIS_TEST_BACKEND=postgres`).
fn postgres_requested() -> bool {
    std::env::var("PORTCULLIS_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

fn serve(dir: &Path, database_url: Option<&str>) -> Server {
    let mut cmd = portcullis();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("PORTCULLIS_ADMIN_TOKEN", ADMIN);
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    Server::start(&mut cmd)
}

/// What one write came to.
enum Write {
    /// A 2xx, and the object's JSON.
    Acked(Value),
    /// An error or a status that is not 2xx, described.
    Failed(String),
}

async fn post(http: &reqwest::Client, addr: &str, path: &str, body: Value) -> Write {
    let response = match http
        .post(format!("http://{addr}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Write::Failed(format!("POST {path}: {e}")),
    };
    let status = response.status();
    // The body is part of the acknowledgement: without it the client never learns the id.
    match response.json::<Value>().await {
        Ok(v) if status.is_success() => Write::Acked(v),
        Ok(v) => Write::Failed(format!("POST {path}: {status} {v}")),
        Err(e) => Write::Failed(format!("POST {path}: {status}, body unread: {e}")),
    }
}

async fn get(http: &reqwest::Client, addr: &str, path: &str) -> Value {
    let r = http
        .get(format!("http://{addr}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Every item of a paginated admin listing.
async fn list_all(http: &reqwest::Client, addr: &str, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page_path = match &after {
            Some(a) => format!("{path}{sep}limit=1000&after={a}"),
            None => format!("{path}{sep}limit=1000"),
        };
        let page = get(http, addr, &page_path).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn field(v: &Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no '{name}' in {v}"))
        .to_owned()
}

/// What the writers share.
struct Burst {
    http: reqwest::Client,
    addr: String,
    org: String,
    acked: AtomicUsize,
    /// Set just before the SIGKILL: from then on a failed write is the kill's doing.
    killed: AtomicBool,
    /// Woken when `acked` reaches [`KILL_AT`], or when a write fails before the kill.
    kill_now: Notify,
    /// A write that failed while the server was alive.
    unexpected: Mutex<Vec<String>>,
}

/// What one writer saw acknowledged.
#[derive(Default)]
struct Tally {
    /// Client ids of the acknowledged apps.
    apps: Vec<String>,
    /// `(client_id, secret id, secret)` of the acknowledged secrets.
    secrets: Vec<(String, String, String)>,
    /// Writes in flight (or begun) when the server died.
    failed: usize,
}

impl Burst {
    fn ack(&self) {
        if self.acked.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AT {
            self.kill_now.notify_one();
        }
    }

    /// `Some(value)` for an acknowledged write; `None` when the writer should stop.
    fn outcome(&self, write: Write, tally: &mut Tally) -> Option<Value> {
        match write {
            Write::Acked(v) => {
                self.ack();
                Some(v)
            }
            Write::Failed(_) if self.killed.load(Ordering::SeqCst) => {
                tally.failed += 1;
                None
            }
            Write::Failed(why) => {
                self.unexpected.lock().unwrap().push(why);
                self.kill_now.notify_one();
                None
            }
        }
    }

    async fn write(self: Arc<Self>, writer: usize) -> Tally {
        let mut tally = Tally::default();
        for n in 0.. {
            if self.killed.load(Ordering::SeqCst) {
                break;
            }
            let body = json!({"org_id": self.org, "name": format!("w{writer}-{n}")});
            let created = post(&self.http, &self.addr, "/admin/v1/apps", body).await;
            let Some(app) = self.outcome(created, &mut tally) else {
                break;
            };
            let client_id = field(&app, "client_id");
            tally.apps.push(client_id.clone());
            let path = format!("/admin/v1/apps/{client_id}/secrets");
            let created = post(&self.http, &self.addr, &path, json!({})).await;
            let Some(secret) = self.outcome(created, &mut tally) else {
                break;
            };
            tally
                .secrets
                .push((client_id, field(&secret, "id"), field(&secret, "secret")));
        }
        tally
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_writes_loses_no_acknowledged_write() {
    let database = if postgres_requested() {
        match TestDatabase::create().await {
            Some(db) => Some(db),
            None => return,
        }
    } else {
        None
    };
    let url = database.as_ref().map(|db| db.url.as_str());
    let backend = if url.is_some() { "postgres" } else { "sqlite" };
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let server = serve(dir.path(), url);
    let org = match post(
        &http,
        &server.addr,
        "/admin/v1/orgs",
        json!({"name": "Crash"}),
    )
    .await
    {
        Write::Acked(v) => field(&v, "id"),
        Write::Failed(why) => panic!("creating the org: {why}"),
    };
    let burst = Arc::new(Burst {
        http: http.clone(),
        addr: server.addr.clone(),
        org: org.clone(),
        acked: AtomicUsize::new(0),
        killed: AtomicBool::new(false),
        kill_now: Notify::new(),
        unexpected: Mutex::new(Vec::new()),
    });
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(burst.clone().write(w)))
        .collect();
    let woken = tokio::time::timeout(WAIT, burst.kill_now.notified()).await;
    burst.killed.store(true, Ordering::SeqCst);
    let acked_at_kill = burst.acked.load(Ordering::SeqCst);
    server.kill();
    assert!(
        woken.is_ok(),
        "only {acked_at_kill} of {KILL_AT} writes acknowledged within {WAIT:?}"
    );
    let mut tally = Tally::default();
    for w in writers {
        let t = tokio::time::timeout(WAIT, w)
            .await
            .expect("a writer stops once the server is gone")
            .unwrap();
        tally.apps.extend(t.apps);
        tally.secrets.extend(t.secrets);
        tally.failed += t.failed;
    }
    let unexpected = burst.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "writes failed while the server was alive: {unexpected:#?}"
    );
    let db_file = dir.path().join("portcullis.db");
    if url.is_none() {
        // The file exactly as the crash left it, before a restart could repair anything.
        let check = portcullis_store::sqlite::check_file(&db_file)
            .await
            .unwrap();
        assert_eq!(check.integrity, "ok", "after the SIGKILL");
        assert!(check.sealed_hash_key.is_some());
    }

    let server = serve(dir.path(), url);
    let listed: HashSet<String> =
        list_all(&http, &server.addr, &format!("/admin/v1/apps?org={org}"))
            .await
            .iter()
            .map(|a| field(a, "client_id"))
            .collect();
    let apps_present = tally.apps.iter().filter(|id| listed.contains(*id)).count();
    let mut secrets_present = 0;
    let mut secrets_listed = HashSet::new();
    for id in &tally.apps {
        if listed.contains(id) {
            let path = format!("/admin/v1/apps/{id}/secrets");
            for s in list_all(&http, &server.addr, &path).await {
                secrets_listed.insert(field(&s, "id"));
            }
        }
    }
    for (_, secret_id, _) in &tally.secrets {
        if secrets_listed.contains(secret_id) {
            secrets_present += 1;
        }
    }
    // The last acknowledged secret of the burst, and a few others, still grant tokens:
    // the stored hash and the key it is made with both survived.
    let mut granted = 0;
    for (client_id, _, secret) in tally.secrets.iter().rev().step_by(50) {
        assert_eq!(
            grant(&http, &server.addr, client_id, secret).await,
            200,
            "an acknowledged secret of {client_id} no longer grants"
        );
        granted += 1;
    }
    let acked = tally.apps.len() + tally.secrets.len();
    let present = apps_present + secrets_present;
    println!(
        "crash ({backend}): {WRITERS} writers, SIGKILL after {acked_at_kill} acknowledged writes; \
         {acked} acknowledged in all ({} apps, {} secrets), {} failed by the kill; \
         after restart {present} of {acked} present ({apps_present} apps, {secrets_present} secrets), \
         {} apps listed (unacknowledged ones included), {granted} secrets checked by a grant",
        tally.apps.len(),
        tally.secrets.len(),
        tally.failed,
        listed.len(),
    );
    assert!(acked >= KILL_AT);
    assert!(
        tally.failed >= 1,
        "no write was in flight when the server died"
    );
    assert_eq!(apps_present, tally.apps.len(), "acknowledged apps lost");
    assert_eq!(
        secrets_present,
        tally.secrets.len(),
        "acknowledged secrets lost"
    );
    let (status, _) = server.stop();
    assert!(
        status.success(),
        "the restarted server stops cleanly: {status}"
    );
    if url.is_none() {
        let check = portcullis_store::sqlite::check_file(&db_file)
            .await
            .unwrap();
        assert_eq!(check.integrity, "ok", "after the restart");
    }
    drop(database);
}
