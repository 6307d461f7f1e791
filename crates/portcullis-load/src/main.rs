//! # portcullis-load
//!
//! The load generator `bench/load.sh` needs beside `wrk` (BENCHMARKS.md):
//!
//! - `mint`: trades the sampled credentials that `portcullis bench-seed` wrote for access
//!   tokens, one per app or many per app, into a token file that the wrk scripts read
//!   (for "tokens never seen": each request its own token).
//! - `rate`: gateway checks **open-loop at a fixed rate**, with latency measured from the
//!   moment each request was due (so a stalled server is not hidden by the generator
//!   waiting for it: no coordinated omission), reporting p50 / p99 from an HDR histogram.
//!   This is what wrk2 does; wrk2 is not packaged by Debian.
//! - `dpop`: one key and one DPoP-bound token per app, and a file of requests each with a
//!   fresh DPoP proof (RFC 9449) for a token seen before, for `bench/wrk/dpop.lua`.
//!
//! It runs on one thread (pin it with `taskset`), over HTTP/1.1 keep-alive connections
//! opened up front.

mod dpop;
mod files;
mod http;
mod rate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis-load",
    about = "Load generator for Portcullis benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get access tokens (client_credentials, client_secret_basic) for the apps of a
    /// credentials file and write `token \t client_id \t org \t resource` lines (mode 0600)
    Mint {
        /// Base URL of the server, e.g. http://127.0.0.1:8080
        #[arg(long)]
        url: String,
        /// The file `portcullis bench-seed --credentials-out` wrote
        #[arg(long)]
        credentials: PathBuf,
        /// How many tokens, rotating over the apps (default: one per app)
        #[arg(long)]
        count: Option<usize>,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Gateway checks at a fixed rate for a fixed time, rotating over a token file;
    /// prints one `key=value` line: rate, achieved, requests, errors, p50_us, p99_us, …
    Rate {
        #[arg(long)]
        url: String,
        /// A file `mint` wrote
        #[arg(long)]
        tokens: PathBuf,
        /// Requests per second to send
        #[arg(long)]
        rate: u64,
        /// Seconds to run
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// One P-256 key and one DPoP-bound token per app of a credentials file, then `count`
    /// lines of `token \t client_id \t org \t resource \t proof` (mode 0600), rotating
    /// over the apps, each with a fresh proof (new jti, iat now) for GET of one URL. The
    /// server takes a proof for 60 s: make the file right before the load
    Dpop {
        /// Base URL of the server, e.g. http://127.0.0.1:8080 (the proofs' htu is this
        /// and --path)
        #[arg(long)]
        url: String,
        /// The file `portcullis bench-seed --credentials-out` wrote
        #[arg(long)]
        credentials: PathBuf,
        /// How many proof lines
        #[arg(long)]
        count: usize,
        /// The URL path the proofs are for: what the gateway check takes as the client's
        /// path (what follows the resource id in /gateway/v1/check/<id>/…)
        #[arg(long, default_value = "/api")]
        path: String,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = rt.block_on(async {
        match cli.command {
            Command::Mint {
                url,
                credentials,
                count,
                connections,
                out,
            } => rate::mint(&url, &credentials, count, connections, &out).await,
            Command::Dpop {
                url,
                credentials,
                count,
                path,
                out,
            } => dpop::run(&url, &credentials, count, &path, &out).await,
            Command::Rate {
                url,
                tokens,
                rate,
                duration,
                connections,
            } => {
                let report = rate::run(&url, &tokens, rate, duration, connections).await?;
                println!("{report}");
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
