//! Where log lines go: `tracing` events to stderr, as text for people or one JSON object
//! per line for log collectors, filtered by `--log-level` / RUST_LOG. Stdout stays free for
//! command output (`keys list`, `config default`).
//!
//! What is logged is the server's business; it never logs a secret. Nothing here sees one:
//! the bootstrap admin token is printed by `serve` directly, not as a log event.

use crate::settings::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Install the global subscriber. `filter` is a level or an `EnvFilter` directive list.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = parse_filter(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| format!("cannot set up logging: {e}"))
}

/// `EnvFilter` reads a lone word as a target to log at every level, so a misspelt level
/// (`infos`) would silently log nothing of ours. Here a lone word must be a level; a target
/// is written `target=level`.
fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    let bad = |why: String| format!("invalid log level '{text}': {why}");
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let lone_word = !directive.contains(['=', '[', ':']);
        if lone_word && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(bad(format!(
                "'{directive}' is not one of {}; to filter by module write module=level",
                LEVELS.join(", ")
            )));
        }
    }
    EnvFilter::try_new(text).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_are_accepted() {
        for ok in [
            "info",
            "DEBUG",
            "warn,portcullis_server=debug",
            "portcullis::x=trace",
        ] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_misspelt_level_is_refused() {
        let err = parse_filter("infos").unwrap_err();
        assert!(
            err.contains("infos") && err.contains("module=level"),
            "{err}"
        );
        assert!(parse_filter("info,portcullis_server=loud").is_err());
    }
}
