//! # portcullis
//!
//! The one binary operators run. `main` only parses the command line and turns the outcome
//! into an exit code: 0 when the command succeeded, 2 for a usage or configuration error
//! (clap exits with 2 on its own for bad flags), 1 when the work itself failed. Each failure
//! is one `error: …` line on stderr. `explain` is the exception: 0 allowed, 1 denied, 2 when
//! it could not get an answer.
//!
//! - [`cli`]: the flags and subcommands (clap), and their help text.
//! - [`config_file`]: the optional TOML file and its generated reference.
//! - [`settings`]: merging flags, environment, file and defaults into one set of values.
//! - [`logging`]: the `tracing` subscriber (text or JSON on stderr).
//! - [`commands`]: what each subcommand does.

mod cli;
mod commands;
mod config_file;
mod logging;
mod settings;

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc. A full view rebuild (every `--resync-interval`)
/// builds a new view beside the serving one and then frees the old; glibc kept those pages,
/// so the resident size grew by a view's worth at each rebuild (the soak run's steps).
/// mimalloc hands freed pages back to the system, and its small-object path is shorter on
/// the request path, where glibc's malloc and free were 16 % of a gateway check's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
