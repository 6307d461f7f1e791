//! `portcullis bench-seed`: fills a data directory with synthetic orgs, resources, apps
//! and client secrets for the load and startup benchmarks (BENCHMARKS.md), fast enough
//! for a million apps. It goes through [`portcullis_store::DirectoryStore::insert_bulk`], a few large transactions,
//! rather than the admin API's one request and one transaction per record.
//!
//! Secrets are stored as keyed hashes, as the admin API stores them. The plaintext of a
//! sample goes to a file of mode 0600 for the load generator; nothing secret is printed.

use super::Failure;
use crate::cli::BenchSeedArgs;
use crate::logging;
use crate::settings::{EnvSecrets, LogFormat};
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_core::ids::{ClientId, OrgId, RecordId, TechAccountId};
use portcullis_core::model::{
    App, AppStatus, Org, OrgStatus, Resource, SandboxAccess, SecretRecord,
};
use portcullis_core::scope::ScopeSet;
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_server::bootstrap;
use portcullis_store::Bulk;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

/// Apps per transaction: bounds the memory of one batch (records and their JSON) while
/// keeping the transactions few (ten for a million apps).
const APPS_PER_BATCH: usize = 100_000;

const PRODUCT: &str = "events";
const SANDBOX: &str = "prod";
const APP_SCOPES: &str = "read write introspect";
const RESOURCE_SCOPES: &str = "read";

/// One sampled app's credentials, as written to `--credentials-out`.
struct Sampled {
    client_id: ClientId,
    secret: Secret,
    org: OrgId,
    resource: RecordId,
}

pub async fn run(args: BenchSeedArgs) -> Result<(), Failure> {
    if args.orgs == 0 {
        return Err(Failure::Config("--orgs must be at least 1".into()));
    }
    if args.credentials_out.is_some() && args.sample > args.apps {
        return Err(Failure::Config(format!(
            "--sample {} is more than --apps {}: every sampled app must exist",
            args.sample, args.apps
        )));
    }
    let settings = super::settings(args.data.layer(), &args.config)?;
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    logging::init(LogFormat::Text, &level).map_err(Failure::Config)?;
    let secrets = EnvSecrets::from_env().map_err(Failure::Config)?;
    let started = Instant::now();
    let now = SystemClock.now();
    // Like the server's first start: create and initialise the data directory if needed,
    // so a benchmark script needs no start-and-stop of the server before seeding.
    let (store, master) = bootstrap::open(&settings.locations(&secrets), true)
        .await
        .map_err(Failure::runtime)?;
    bootstrap::initialise(
        &*store,
        &master,
        secrets.admin_token.as_deref(),
        settings.signing_alg.alg(),
        now,
    )
    .await
    .map_err(Failure::runtime)?;
    let hash_key = bootstrap::hash_key(&*store, &master)
        .await
        .map_err(Failure::runtime)?;

    let (orgs, resources) = orgs_and_resources(args.orgs as usize, now);
    let org_ids: Vec<(OrgId, RecordId)> = orgs
        .iter()
        .zip(&resources)
        .map(|(o, r)| (o.id.clone(), r.id.clone()))
        .collect();
    let apps = args.apps as usize;
    let sample = if args.credentials_out.is_some() {
        args.sample as usize
    } else {
        0
    };
    // Every `stride`-th app is sampled: distinct apps, spread over the orgs.
    let stride = apps.checked_div(sample).unwrap_or(usize::MAX);
    let mut sampled = Vec::with_capacity(sample);
    let mut first = Some(Bulk {
        orgs,
        resources,
        ..Bulk::default()
    });
    let mut done = 0;
    while done < apps || first.is_some() {
        let mut bulk = first.take().unwrap_or_default();
        let end = (done + APPS_PER_BATCH).min(apps);
        for i in done..end {
            let (org, resource) = &org_ids[i % org_ids.len()];
            let (app, secret, record) = app_with_secret(org, &hash_key, now);
            if i % stride == 0 && sampled.len() < sample {
                sampled.push(Sampled {
                    client_id: app.client_id.clone(),
                    secret,
                    org: org.clone(),
                    resource: resource.clone(),
                });
            }
            bulk.apps.push(app);
            bulk.secrets.push(record);
        }
        store.insert_bulk(&bulk).await.map_err(Failure::runtime)?;
        done = end;
    }
    if let Some(path) = &args.credentials_out {
        write_credentials(path, &sampled)
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "Seeded {} orgs with one resource each and {apps} apps with one secret each in {:.1} s.",
        org_ids.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.credentials_out {
        println!(
            "Wrote the credentials of {} apps to {} (mode 0600).",
            sampled.len(),
            path.display()
        );
    }
    Ok(())
}

fn orgs_and_resources(n: usize, now: i64) -> (Vec<Org>, Vec<Resource>) {
    (0..n)
        .map(|i| {
            let org = Org {
                id: OrgId::generate(),
                name: format!("bench org {i}"),
                status: OrgStatus::Active,
                products: [PRODUCT.to_owned()].into(),
                sandboxes: [SANDBOX.to_owned()].into(),
                created_at: now,
                tokens_invalid_before: None,
            };
            let resource = Resource {
                id: RecordId::generate("res"),
                org_id: org.id.clone(),
                name: format!("bench resource {i}"),
                sandbox: SANDBOX.to_owned(),
                product: Some(PRODUCT.to_owned()),
                scopes: ScopeSet::parse(RESOURCE_SCOPES).expect("valid scopes"),
                allow_unauthenticated: false,
                cors_origins: vec![],
                created_at: now,
            };
            (org, resource)
        })
        .unzip()
}

fn app_with_secret(org: &OrgId, hash_key: &HashKey, now: i64) -> (App, Secret, SecretRecord) {
    let app = App {
        client_id: ClientId::generate(),
        org_id: org.clone(),
        name: "bench app".to_owned(),
        status: AppStatus::Active,
        technical_account_id: TechAccountId::generate(),
        products: [PRODUCT.to_owned()].into(),
        scopes: ScopeSet::parse(APP_SCOPES).expect("valid scopes"),
        group_id: None,
        sandboxes: [(SANDBOX.to_owned(), SandboxAccess::Write)].into(),
        token_ttl_seconds: None,
        quota: None,
        dpop_bound_access_tokens: false,
        created_at: now,
        tokens_invalid_before: None,
    };
    let secret = Secret::generate(SecretKind::ClientSecret);
    let record = SecretRecord::of(&secret, &app.client_id, hash_key, now, None);
    (app, secret, record)
}

/// One app a line: `client_id \t secret \t org \t resource`, after a `#` header line. The
/// file is created with mode 0600 (an existing one is made 0600 before it is written).
fn write_credentials(path: &Path, sampled: &[Sampled]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "# client_id\tsecret\torg\tresource")?;
    for s in sampled {
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            s.client_id,
            s.secret.expose(),
            s.org,
            s.resource
        )?;
    }
    out.flush()
}
