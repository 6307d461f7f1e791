//! `portcullis migrate-store --to postgres://…`: copy a data directory's store (SQLite)
//! into PostgreSQL, with a progress bar, then compare the counts table by table. The
//! source is only read; a target that already holds orgs, apps or users is refused
//! unless `--into-non-empty`. Stop the server first, so nothing is written meanwhile.

use super::Failure;
use crate::cli::MigrateStoreArgs;
use portcullis_core::clock::{Clock, SystemClock};
use portcullis_server::bootstrap::{self, Locations};
use portcullis_store::migrate;

pub async fn run(args: MigrateStoreArgs) -> Result<(), Failure> {
    let (settings, from, _master) = super::open_data(args.data.layer(), &args.config).await?;
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        return Err(Failure::Config(
            "--to must be a PostgreSQL URL (postgres://user:password@host:5432/database)".into(),
        ));
    }
    let target = Locations {
        data_dir: settings.data_dir.clone(),
        database_url: Some(args.to.clone()),
        // The target needs no key of its own: sealed values are copied as they are.
        master_key: Some({
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(portcullis_core::random_bytes::<32>())
        }),
        master_key_file: None,
        pool: settings.database_pool(),
    };
    let (to, _) = bootstrap::open(&target, false)
        .await
        .map_err(Failure::runtime)?;
    if !args.into_non_empty && !migrate::is_empty(&*to).await.map_err(Failure::runtime)? {
        return Err(Failure::Runtime(
            "the target database already holds orgs, apps or users: give an empty database, or pass --into-non-empty to copy into it anyway (records with the same ids conflict)".into(),
        ));
    }
    let now = SystemClock.now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let source = migrate::copy(&*from, &*to, now, &progress)
        .await
        .map_err(Failure::runtime)?;
    bar.finish();
    let copied = migrate::count(&*to, now).await.map_err(Failure::runtime)?;
    let mut wrong = Vec::new();
    for (table, n) in &source {
        let got = copied.get(table).copied().unwrap_or(0);
        println!("{table:<13} {n:>9} copied, {got:>9} in the target");
        if got < *n || (!args.into_non_empty && got != *n) {
            wrong.push(format!("{table}: {n} in the source, {got} in the target"));
        }
    }
    if !wrong.is_empty() {
        return Err(Failure::Runtime(format!(
            "the counts differ ({}); the source is untouched: drop the target database and run again",
            wrong.join("; ")
        )));
    }
    println!(
        "done: start the nodes with --database-url pointing at the target and the master key of {} (PORTCULLIS_MASTER_KEY or --master-key-file); console sessions, Wave tokens, subscriptions and notifications are not copied",
        settings.data_dir.display()
    );
    Ok(())
}
