//! How much memory the usage counter takes for many active apps: `apps` apps of `orgs`
//! organizations, each calling `resources` resources in one minute, counted from two
//! threads (the server's request threads on a 2-core machine) into one counter, then
//! drained as a flush does. Heap bytes are counted exactly by a counting allocator.
//!
//! ```sh
//! cargo run --release -p portcullis-core --example usage_memory -- 100000 10
//! ```

use portcullis_core::ids::{ClientId, OrgId, RecordId};
use portcullis_core::usage::{Subject, UsageCounter, UsageKey};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live now and the most ever live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (apps, resources, orgs) = (arg(1, 100_000), arg(2, 10), arg(3, 1_000));
    // The view's ids, made before measuring: the counter shares them (reference counts).
    let org_ids: Vec<OrgId> = (0..orgs).map(|_| OrgId::generate()).collect();
    let app_ids: Vec<ClientId> = (0..apps).map(|_| ClientId::generate()).collect();
    let resource_ids: Vec<RecordId> = (0..resources).map(|_| RecordId::generate("res")).collect();
    let keys = apps * resources;
    let counter = UsageCounter::new(4, keys);

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for half in 0..2 {
            let (counter, org_ids, app_ids, resource_ids) =
                (&counter, &org_ids, &app_ids, &resource_ids);
            s.spawn(move || {
                for (i, app) in app_ids.iter().enumerate().skip(half).step_by(2) {
                    for r in resource_ids {
                        counter.count(
                            UsageKey {
                                minute: 60,
                                org: Some(org_ids[i % org_ids.len()].clone()),
                                app: Some(app.clone()),
                                subject: Subject::Resource(Some(r.clone())),
                                outcome: "allowed",
                            },
                            1,
                        );
                    }
                }
            });
        }
    });
    let counting = started.elapsed();
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(counter.keys(), keys);
    assert_eq!(counter.folded(), 0);

    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let batch = counter.drain();
    let drain_peak = PEAK.load(Ordering::Relaxed) - before;
    let batch_bytes = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(batch.len(), keys);
    drop(batch);
    let after = LIVE.load(Ordering::Relaxed).saturating_sub(before);

    println!(
        "{apps} apps x {resources} resources = {keys} keys in one minute, counted from 2 threads in {:.2} s",
        counting.as_secs_f64()
    );
    println!(
        "counter holding them: {} ({} bytes a key)",
        mib(held),
        held / keys
    );
    println!(
        "drained for a flush: {} at the peak of the drain, {} as the batch",
        mib(drain_peak),
        mib(batch_bytes)
    );
    println!("after the batch is written and dropped: {}", mib(after));
}
