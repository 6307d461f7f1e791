//! In-process cost of building the in-memory [`View`] from a store snapshot's records, at
//! 10k / 100k / 1M apps (each with one secret, 1,000 orgs): what the server does at start
//! and when it resyncs after a bulk load. Two stages, as the startup benchmark
//! (`bench/startup.sh`) splits them in BENCHMARKS.md's "Where the time goes":
//!
//! - `view build`: records already decoded (the persistent maps' inserts alone);
//! - `decode + view build`: from the JSON documents the SQLite store keeps (serde), up
//!   to 100k apps (1M documents would need more memory than the measurement is worth:
//!   the cost is linear).
//!
//! Run: `cargo bench -p portcullis-core --bench view` (the 1M case takes a few minutes).

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis_core::model::{App, Org, Resource, SandboxAccess, SecretRecord};
use portcullis_core::secret::{HashKey, Secret, SecretKind};
use portcullis_core::view::{AppEntry, View};
use std::time::Duration;

const ORGS: usize = 1_000;

/// A snapshot's records: orgs with one resource each, apps with one secret each.
#[derive(Clone)]
struct Records {
    orgs: Vec<Org>,
    resources: Vec<Resource>,
    apps: Vec<(App, SecretRecord)>,
}

fn records(apps: usize) -> Records {
    let hash_key = HashKey::from_bytes(&[7; 32]);
    let orgs: Vec<Org> = (0..ORGS)
        .map(|i| common::org(&format!("org {i}")))
        .collect();
    let resources = orgs.iter().map(|o| common::resource_in(&o.id)).collect();
    let apps = (0..apps)
        .map(|i| {
            let app = common::app_in(&orgs[i % ORGS].id, SandboxAccess::Write);
            let secret = Secret::generate(SecretKind::ClientSecret);
            let record = SecretRecord::of(&secret, &app.client_id, &hash_key, 0, None);
            (app, record)
        })
        .collect();
    Records {
        orgs,
        resources,
        apps,
    }
}

fn build(r: Records) -> View {
    let mut view = View::default();
    for o in r.orgs {
        view.upsert_org(o);
    }
    for res in r.resources {
        view.upsert_resource(res);
    }
    for (app, secret) in r.apps {
        let (entry, _) = AppEntry::with_keys(app, vec![secret], vec![]);
        view.upsert_app(entry);
    }
    view
}

/// The records as the SQLite store keeps them: one JSON document each.
struct Docs {
    orgs: Vec<String>,
    resources: Vec<String>,
    apps: Vec<(String, String)>,
}

fn doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

fn docs(r: &Records) -> Docs {
    Docs {
        orgs: r.orgs.iter().map(doc).collect(),
        resources: r.resources.iter().map(doc).collect(),
        apps: r.apps.iter().map(|(a, s)| (doc(a), doc(s))).collect(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(s: &str) -> T {
    serde_json::from_str(s).expect("documents decode")
}

fn decode_and_build(d: &Docs) -> View {
    build(Records {
        orgs: d.orgs.iter().map(|s| decode(s)).collect(),
        resources: d.resources.iter().map(|s| decode(s)).collect(),
        apps: d.apps.iter().map(|(a, s)| (decode(a), decode(s))).collect(),
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("view build");
    group.sample_size(10);
    for n in [10_000, 100_000, 1_000_000] {
        group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 60 } else { 10 }));
        let recs = records(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &recs, |b, recs| {
            b.iter_batched(|| recs.clone(), build, BatchSize::LargeInput)
        });
    }
    group.finish();
    let mut group = c.benchmark_group("decode + view build");
    group.sample_size(10);
    for n in [10_000, 100_000] {
        let d = docs(&records(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &d, |b, d| {
            b.iter(|| decode_and_build(d))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
