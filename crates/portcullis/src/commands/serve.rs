//! `portcullis serve`: resolve the settings, set up logging, build the server, show the
//! bootstrap admin token if this start generated one (on the terminal, or in a file when
//! stderr is not one), and serve until SIGTERM or Ctrl-C.

use super::Failure;
use crate::cli::ServeArgs;
use crate::logging;
use crate::settings::{EnvSecrets, LogFormat, MASTER_KEY_ENV, Settings};
use portcullis_server::bootstrap::OpenError;
use portcullis_server::master_key::{MasterKeyError, write_private_file};
use portcullis_server::{Application, StartError};
use portcullis_store::PageRequest;
use std::future::Future;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use tokio::signal::unix::{SignalKind, signal};

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let settings = super::settings(args.layer(), &args.config)?;
    // The access log is on when asked for, whatever level the other logs are kept at.
    let filter = match settings.access_log {
        true => format!(
            "{},{}=info",
            settings.log_level,
            portcullis_server::access_log::TARGET
        ),
        false => settings.log_level.clone(),
    };
    logging::init(settings.log_format, &filter).map_err(Failure::Config)?;
    let secrets = EnvSecrets::from_env().map_err(Failure::Config)?;
    // Before building, so that a failure here cannot leave a server nobody can stop.
    let shutdown = shutdown_signal()
        .map_err(|e| Failure::Runtime(format!("cannot listen for SIGTERM and SIGINT: {e}")))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %settings.data_dir.display(),
        signing_alg = settings.signing_alg.alg().as_str(),
        "starting"
    );
    let app = Application::build(settings.server_config(&secrets))
        .await
        .map_err(start_failure)?;
    if let Some(token) = &app.generated_admin_token {
        show_generated_token(token.expose(), &app, &settings);
    }
    if let Some(hint) = first_admin_hint(&app, &settings, args.config.config.as_deref()).await {
        // Every stderr line of a JSON log is JSON: the hint is then a log event.
        match settings.log_format {
            LogFormat::Json => {
                tracing::info!(hint = %hint.trim_end(), "the console has no users yet")
            }
            LogFormat::Text => eprint!("{hint}"),
        }
    }
    // The server logs "listening" with the bound address and the issuer.
    app.run(shutdown)
        .await
        .map_err(|e| Failure::Runtime(format!("the server stopped with an error: {e}")))
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C); the server then drains in-flight
/// requests. A second signal stops at once, for an operator who will not wait.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutdown requested");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("error: second signal: stopping without waiting for in-flight requests");
            std::process::exit(1);
        });
    })
}

/// Settings the operator must fix exit with 2; everything else with 1.
fn start_failure(e: StartError) -> Failure {
    match e {
        StartError::Open(OpenError::UnsupportedDatabase(url)) => Failure::Config(format!(
            "the database URL '{}' is not supported: use sqlite://<path>, postgres://user@host/database, or leave it unset for <data-dir>/portcullis.db",
            redact_password(&url)
        )),
        StartError::Open(OpenError::MasterKey(MasterKeyError::Format(why))) => {
            Failure::Config(format!(
                "the master key (from {MASTER_KEY_ENV} or the key file) must be base64 of exactly 32 bytes ({why})"
            ))
        }
        StartError::Open(
            OpenError::WeakAdminToken
            | OpenError::MasterKeyMissing { .. }
            | OpenError::DataDirInUse(_),
        )
        | StartError::Tls(_) => Failure::Config(e.to_string()),
        other => Failure::runtime(other),
    }
}

/// `scheme://user:password@host/…` with the password replaced, for error messages.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `serve`'s defaults (config_file.rs), left out of the hint when in use.
const DEFAULT_DATA_DIR: &str = "./portcullis-data";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// While nobody can sign in to the console (no users yet): how to make its first
/// administrator, with the flags that point `admin create` at this server's data (and its
/// settings file, when the server read one: a service's data directory is named there).
async fn first_admin_hint(
    app: &Application,
    settings: &Settings,
    config: Option<&Path>,
) -> Option<String> {
    let first = PageRequest {
        after: None,
        limit: 1,
    };
    if !app.state().store.users(&first).await.ok()?.is_empty() {
        return None;
    }
    let issuer = app.issuer().trim_end_matches('/');
    let mut flags = String::new();
    if let Some(file) = config {
        flags.push_str(&format!(" --config {}", file.display()));
    }
    match &settings.database_url {
        Some(_) => flags.push_str(" --database-url <the same URL>"),
        None if settings.data_dir != Path::new(DEFAULT_DATA_DIR) => {
            flags.push_str(&format!(" --data-dir {}", settings.data_dir.display()))
        }
        None => {}
    }
    if issuer != format!("http://{DEFAULT_LISTEN}") {
        flags.push_str(&format!(" --issuer {issuer}"));
    }
    Some(format!(
        "Console: {issuer}/console/ — to create its first administrator, run\n  \
         portcullis admin create --email you@example.com --org \"My organization\"{flags}\n\
         and open the one-time link it prints.\n"
    ))
}

/// The file a generated bootstrap admin token is written to when stderr is not a terminal.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Where a generated bootstrap admin token goes.
#[derive(Debug, PartialEq, Eq)]
enum TokenDestination {
    /// A person is watching: the boxed banner on stderr.
    Terminal,
    /// A service manager, container runtime or pipe collects stderr and ships it as a log
    /// stream, which must never carry the token: a file only its owner can read.
    File(PathBuf),
}

fn token_destination(stderr_is_terminal: bool, data_dir: &Path) -> TokenDestination {
    if stderr_is_terminal {
        TokenDestination::Terminal
    } else {
        TokenDestination::File(data_dir.join(ADMIN_TOKEN_FILE))
    }
}

/// Shows a token this start generated exactly once: on the terminal, or in
/// `<data-dir>/admin-token` (mode 0600, never overwritten) with only its path logged.
fn show_generated_token(token: &str, app: &Application, settings: &Settings) {
    match token_destination(std::io::stderr().is_terminal(), &settings.data_dir) {
        TokenDestination::Terminal => {
            eprint!("{}", banner(token, app.local_addr(), app.serves_tls()))
        }
        TokenDestination::File(path) => {
            match write_private_file(&path, format!("{token}\n").as_bytes()) {
                Ok(()) => tracing::info!(
                    path = %path.display(),
                    "generated the bootstrap admin token; stderr is not a terminal, so it is not \
                     shown but written to this file, readable by its owner only: store it \
                     elsewhere and delete the file"
                ),
                Err(e) => tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "generated the bootstrap admin token but could not write it to this file \
                     (it is never overwritten); run `portcullis admin-token rotate` to make a \
                     new one"
                ),
            }
        }
    }
}

/// The one-time display of a generated bootstrap admin token, with how to use it.
fn banner(token: &str, addr: SocketAddr, tls: bool) -> String {
    const TITLE: &str = "Bootstrap admin token (shown once, store it now):";
    let width = TITLE.len().max(token.chars().count()).max(76);
    let rule = "─".repeat(width + 2);
    // A server listening on every interface is reachable on loopback too.
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let base = SocketAddr::new(host, addr.port());
    let scheme = if tls { "https" } else { "http" };
    format!(
        "┌{rule}┐\n│ {TITLE:<width$} │\n│ {token:<width$} │\n└{rule}┘\n\
         Use it as: curl -H \"Authorization: Bearer <token>\" {scheme}://{base}/admin/v1/orgs\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_is_a_box_around_the_token() {
        let token = "pcsa_5Hh3ExampleExampleExampleExampleExampleExample";
        let text = banner(token, "0.0.0.0:8080".parse().unwrap(), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[1].contains("shown once, store it now"));
        assert!(lines[2].contains(token));
        let widths: Vec<usize> = lines[..4].iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == 80), "{widths:?}\n{text}");
        assert!(
            lines[4].contains("http://127.0.0.1:8080/admin/v1/orgs"),
            "{text}"
        );
        assert!(lines[4].contains("Bearer <token>"));
    }

    #[test]
    fn a_long_token_widens_the_box() {
        let token = "pcsa_".to_owned() + &"x".repeat(100);
        let text = banner(&token, "[::]:9000".parse().unwrap(), true);
        assert!(
            text.lines().take(4).all(|l| l.chars().count() == 109),
            "{text}"
        );
        assert!(text.contains("https://[::1]:9000/"), "{text}");
    }

    #[test]
    fn the_token_goes_to_a_file_unless_stderr_is_a_terminal() {
        let dir = Path::new("/var/lib/portcullis");
        assert_eq!(token_destination(true, dir), TokenDestination::Terminal);
        assert_eq!(
            token_destination(false, dir),
            TokenDestination::File(PathBuf::from("/var/lib/portcullis/admin-token"))
        );
    }

    #[test]
    fn passwords_in_database_urls_are_not_echoed() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db:5432/portcullis"),
            "postgres://app:***@db:5432/portcullis"
        );
        assert_eq!(redact_password("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_password("mysql://u@h/x"), "mysql://u@h/x");
    }

    #[test]
    fn bad_settings_exit_with_2() {
        let e = StartError::Open(OpenError::UnsupportedDatabase("postgres://a:pw@h/d".into()));
        let Failure::Config(message) = start_failure(e) else {
            panic!("not a config failure")
        };
        assert!(!message.contains("pw@"), "{message}");
        assert!(matches!(
            start_failure(StartError::Open(OpenError::WeakAdminToken)),
            Failure::Config(_)
        ));
    }
}
