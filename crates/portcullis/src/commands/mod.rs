//! What each subcommand does, and the one failure type they share, which decides the exit
//! code: a [`Failure::Config`] is the operator's settings (exit 2, like clap's own usage
//! errors), a [`Failure::Runtime`] is the work itself (exit 1).

mod keys;
mod serve;

use crate::cli::{Cli, Command, ConfigCommand, ConfigFileArg, KeysCommand};
use crate::config_file;
use crate::settings::{Layer, Settings};
use clap::CommandFactory;
use std::fmt::Display;
use std::process::ExitCode;

/// Why a command failed. The message is one line written for the operator; it never holds
/// a secret.
#[derive(Debug)]
pub enum Failure {
    /// A bad config file, setting or environment variable: exit 2.
    Config(String),
    /// The command could not do its work: exit 1.
    Runtime(String),
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
        };
        eprintln!("error: {message}");
        ExitCode::from(code)
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Config(ConfigCommand::Default) => {
            let serve = Cli::command();
            let serve = serve
                .find_subcommand("serve")
                .expect("the serve subcommand exists");
            print!("{}", config_file::reference(serve));
            Ok(())
        }
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::Keys(KeysCommand::List(args)) => runtime()?.block_on(keys::list(args)),
        Command::Keys(KeysCommand::Rotate(args)) => runtime()?.block_on(keys::rotate(args)),
    }
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
