//! What each subcommand does, and the one failure type they share, which decides the exit
//! code: a [`Failure::Config`] is the operator's settings (exit 2, like clap's own usage
//! errors), a [`Failure::Runtime`] is the work itself (exit 1), a [`Failure::Operational`]
//! is `explain` failing to get an answer (exit 2, because its 1 means "denied").

mod admin;
mod bench_seed;
mod custody;
mod explain;
mod keys;
mod listen;
mod migrate_store;
mod serve;

use crate::cli::{
    AdminCommand, AdminTokenCommand, Cli, Command, CompletionShell, ConfigCommand, ConfigFileArg,
    KeysCommand, MasterKeyCommand,
};
use crate::config_file;
use crate::logging;
use crate::settings::{EnvSecrets, Layer, LogFormat, Settings};
use clap::CommandFactory;
use portcullis_server::bootstrap;
use portcullis_server::master_key::MasterKey;
use portcullis_store::Store;
use std::fmt::Display;
use std::process::ExitCode;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Why a command failed. The message is one line written for the operator; it never holds
/// a secret.
#[derive(Debug)]
pub enum Failure {
    /// A bad config file, setting or environment variable: exit 2.
    Config(String),
    /// The command could not do its work: exit 1.
    Runtime(String),
    /// `explain` could not get an answer (no data directory, unreachable server, a bad
    /// question): exit 2, since its exit 1 is the answer "denied".
    Operational(String),
}

impl Failure {
    pub fn runtime(e: impl Display) -> Failure {
        Failure::Runtime(e.to_string())
    }

    /// Print `error: …` to stderr and give the exit code.
    pub fn report(self) -> ExitCode {
        let (message, code) = match self {
            Failure::Config(m) => (m, 2),
            Failure::Runtime(m) => (m, 1),
            Failure::Operational(m) => (m, 2),
        };
        eprintln!("error: {message}");
        ExitCode::from(code)
    }
}

/// Run the command; its exit code on success (`explain` answers with 0 or 1).
pub fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let done = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Config(ConfigCommand::Default) => {
            let serve = Cli::command();
            let serve = serve
                .find_subcommand("serve")
                .expect("the serve subcommand exists");
            print!("{}", config_file::reference(serve));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions(args) => {
            let shell = match args.shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut crate::cli::command(),
                "portcullis",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Man(args) => {
            man(args.dir.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => runtime()?.block_on(serve::run(*args)).map(done),
        Command::Keys(KeysCommand::List(args)) => runtime()?.block_on(keys::list(args)).map(done),
        Command::Keys(KeysCommand::Rotate(args)) => {
            runtime()?.block_on(keys::rotate(args)).map(done)
        }
        Command::MasterKey(MasterKeyCommand::Rotate(args)) => runtime()?
            .block_on(custody::master_key_rotate(args))
            .map(done),
        Command::MasterKey(MasterKeyCommand::Retire(args)) => runtime()?
            .block_on(custody::master_key_retire(args))
            .map(done),
        Command::AdminToken(AdminTokenCommand::Rotate(args)) => runtime()?
            .block_on(custody::admin_token_rotate(args))
            .map(done),
        Command::AdminToken(AdminTokenCommand::Revoke(args)) => runtime()?
            .block_on(custody::admin_token_revoke(args))
            .map(done),
        Command::Admin(AdminCommand::Create(args)) => {
            runtime()?.block_on(admin::create(args)).map(done)
        }
        Command::Backup(args) => runtime()?.block_on(custody::backup(args)).map(done),
        Command::Restore(args) => runtime()?.block_on(custody::restore(args)).map(done),
        Command::Explain(args) => runtime()?.block_on(explain::run(*args)),
        Command::Listen(args) => runtime()?.block_on(listen::run(args)).map(done),
        Command::BenchSeed(args) => runtime()?.block_on(bench_seed::run(args)).map(done),
        Command::MigrateStore(args) => runtime()?.block_on(migrate_store::run(args)).map(done),
    }
}

/// `portcullis man`: portcullis(1) to stdout; with a directory, that page and one per
/// subcommand, nested ones included (portcullis-keys-rotate(1)), named as clap_mangen
/// names them, and their paths printed. Hidden subcommands get none, nor does `help`:
/// portcullis(1)'s list of subcommands names each page, so it must not name that one.
fn man(dir: Option<&std::path::Path>) -> Result<(), Failure> {
    // Every page's footer names the program and its version ("portcullis 0.1.0"), not
    // the subcommand's own name.
    fn page(command: clap::Command) -> clap_mangen::Man {
        clap_mangen::Man::new(command).source(format!("portcullis {}", env!("CARGO_PKG_VERSION")))
    }
    fn write_pages(
        command: &clap::Command,
        dir: &std::path::Path,
        written: &mut Vec<std::path::PathBuf>,
    ) -> std::io::Result<()> {
        written.push(page(command.clone()).generate_to(dir)?);
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            write_pages(sub, dir, written)?;
        }
        Ok(())
    }
    let failed =
        |e: std::io::Error| Failure::Runtime(format!("cannot write the manual pages: {e}"));
    let mut command = crate::cli::command().disable_help_subcommand(true);
    let Some(dir) = dir else {
        return page(command).render(&mut std::io::stdout()).map_err(failed);
    };
    // Built, the subcommands carry their pages' names (portcullis-keys-rotate).
    command.build();
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut written = Vec::new();
    write_pages(&command, dir, &mut written).map_err(failed)?;
    for page in written {
        println!("{}", page.display());
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Merge `flags` (flags and their environment twins), RUST_LOG, the config file if one is
/// named, and the defaults.
fn settings(flags: Layer, config: &ConfigFileArg) -> Result<Settings, Failure> {
    let file = match &config.config {
        Some(path) => config_file::load(path).map_err(Failure::Config)?,
        None => Layer::default(),
    };
    let rust_log = Layer::from_rust_log(std::env::var("RUST_LOG").ok());
    Settings::resolve([flags, rust_log, file]).map_err(Failure::Config)
}

/// Settings, logging (warnings only; RUST_LOG overrides), and the store and master key of
/// an existing data directory, for the commands that work on one beside the server. Never
/// creates anything: a missing data directory is an error that says which flag to pass.
async fn open_data(
    flags: Layer,
    config: &ConfigFileArg,
) -> Result<(Settings, Arc<dyn Store>, Arc<MasterKey>), Failure> {
    let settings = settings(flags, config)?;
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    logging::init(LogFormat::Text, &level).map_err(Failure::Config)?;
    let secrets = EnvSecrets::from_env().map_err(Failure::Config)?;
    // Checked here first: otherwise the missing master key file is reported, which hides
    // the likelier mistake of a wrong --data-dir.
    if settings.database_url.is_none() && !bootstrap::is_initialised(&settings.data_dir) {
        return Err(Failure::Runtime(format!(
            "there is no Portcullis data in {} (no portcullis.db): pass the --data-dir the server uses (or set PORTCULLIS_DATA_DIR); `portcullis serve` creates it on first start",
            settings.data_dir.display()
        )));
    }
    let (store, master) = bootstrap::open(&settings.locations(&secrets), false)
        .await
        .map_err(Failure::runtime)?;
    Ok((settings, store, master))
}

/// RFC 3339 in UTC, e.g. `2025-06-01T12:00:00Z`.
fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
