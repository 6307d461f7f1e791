//! The optional TOML config file (`--config`, `PORTCULLIS_CONFIG`) and its reference
//! (`portcullis config default`).
//!
//! [`SETTINGS`] is the one list of keys and their defaults. The built-in defaults are
//! parsed from it, the reference is printed from it (help text and environment variable
//! taken from the `serve` flag of the same name), and `--help` shows its defaults. Tests
//! check it against the file schema ([`Layer`]) and the `serve` flags, so a new setting
//! cannot be added to one place and forgotten in another.

use crate::settings::Layer;
use std::fmt::Write as _;
use std::path::Path;

/// One key of the config file, which is also a `serve` flag (`_` → `-`).
pub struct Setting {
    /// The TOML key, and the id of the clap argument.
    pub key: &'static str,
    pub default: Fallback,
}

/// What a setting is when no source gives it.
pub enum Fallback {
    /// A fixed value, written as TOML.
    Value(&'static str),
    /// Worked out at start from other settings; `example` (TOML) shows the syntax.
    Derived {
        meaning: &'static str,
        example: &'static str,
    },
}

impl Fallback {
    /// The default as `--help` shows it: `127.0.0.1:8080`, not `"127.0.0.1:8080"`.
    pub fn shown(&self) -> &'static str {
        match self {
            Fallback::Value(toml) => toml.trim_matches('"'),
            Fallback::Derived { meaning, .. } => meaning,
        }
    }
}

pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        default: Fallback::Value(r#""127.0.0.1:8080""#),
    },
    Setting {
        key: "issuer",
        default: Fallback::Derived {
            meaning: "http://<listen address>",
            example: r#""https://auth.example.com""#,
        },
    },
    Setting {
        key: "data_dir",
        default: Fallback::Value(r#""./portcullis-data""#),
    },
    Setting {
        key: "database_url",
        default: Fallback::Derived {
            meaning: "sqlite://<data-dir>/portcullis.db",
            example: r#""sqlite:///var/lib/portcullis/portcullis.db""#,
        },
    },
    Setting {
        key: "database_pool_size",
        default: Fallback::Value("10"),
    },
    Setting {
        key: "database_timeout",
        default: Fallback::Value("5"),
    },
    Setting {
        key: "master_key_file",
        default: Fallback::Derived {
            meaning: "<data-dir>/master.key",
            example: r#""/etc/portcullis/master.key""#,
        },
    },
    Setting {
        key: "signing_alg",
        default: Fallback::Value(r#""ES256""#),
    },
    Setting {
        key: "jwks_max_age",
        default: Fallback::Value("3600"),
    },
    Setting {
        key: "api_key_header",
        default: Fallback::Value(r#""x-api-key""#),
    },
    Setting {
        key: "org_header",
        default: Fallback::Value(r#""x-gw-ims-org-id""#),
    },
    Setting {
        key: "trusted_proxy",
        default: Fallback::Value("[]"),
    },
    Setting {
        key: "allow_secrets_over_http",
        default: Fallback::Value("false"),
    },
    Setting {
        key: "failure_limit",
        default: Fallback::Value("1000"),
    },
    Setting {
        key: "public_origin",
        default: Fallback::Derived {
            meaning: "rebuilt from each check request's forwarded headers",
            example: r#""https://api.example.com""#,
        },
    },
    Setting {
        key: "dpop_nonce",
        default: Fallback::Value("false"),
    },
    Setting {
        key: "allow_private_image_urls",
        default: Fallback::Value("false"),
    },
    Setting {
        key: "image_fetch_ca_file",
        default: Fallback::Derived {
            meaning: "none: the built-in Mozilla roots only",
            example: r#""/etc/portcullis/image-ca.pem""#,
        },
    },
    Setting {
        key: "tls_cert",
        default: Fallback::Derived {
            meaning: "none (plain HTTP)",
            example: r#""/etc/portcullis/tls/cert.pem""#,
        },
    },
    Setting {
        key: "tls_key",
        default: Fallback::Derived {
            meaning: "none (plain HTTP)",
            example: r#""/etc/portcullis/tls/key.pem""#,
        },
    },
    Setting {
        key: "resync_interval",
        default: Fallback::Value("300"),
    },
    Setting {
        key: "header_read_timeout",
        default: Fallback::Value("10"),
    },
    Setting {
        key: "request_timeout",
        default: Fallback::Value("30"),
    },
    Setting {
        key: "idle_timeout",
        default: Fallback::Value("60"),
    },
    Setting {
        key: "redis_url",
        default: Fallback::Derived {
            meaning: "none: jti, nonces and failure limits per node",
            example: r#""redis://127.0.0.1:6379/0""#,
        },
    },
    Setting {
        key: "log_format",
        default: Fallback::Value(r#""text""#),
    },
    Setting {
        key: "log_level",
        default: Fallback::Value(r#""info""#),
    },
    Setting {
        key: "access_log",
        default: Fallback::Value("false"),
    },
    Setting {
        key: "usage_analytics",
        default: Fallback::Value("true"),
    },
    Setting {
        key: "usage_retention",
        default: Fallback::Value("172800"),
    },
    Setting {
        key: "usage_hour_retention",
        default: Fallback::Value("7776000"),
    },
    Setting {
        key: "usage_max_keys",
        default: Fallback::Value("1000000"),
    },
];

/// The built-in defaults, as a layer below every other source.
pub fn defaults() -> Layer {
    let text: String = SETTINGS
        .iter()
        .filter_map(|s| match s.default {
            Fallback::Value(v) => Some(format!("{} = {v}\n", s.key)),
            Fallback::Derived { .. } => None,
        })
        .collect();
    parse(&text).expect("the built-in defaults are valid (see the tests)")
}

/// Parse config-file text; the error names the offending key and line.
pub fn parse(text: &str) -> Result<Layer, toml::de::Error> {
    toml::from_str(text)
}

/// Read and parse the file at `path`. Errors are one line for the operator.
pub fn load(path: &Path) -> Result<Layer, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| {
        // toml's message spans several lines (it quotes the line); keep it to one.
        let message = e.message().trim_end_matches('.');
        match e.span().map(|span| line_of(&text, span.start)) {
            Some(line) => format!(
                "in the config file {} (line {line}): {message}",
                path.display()
            ),
            None => format!("in the config file {}: {message}", path.display()),
        }
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

const HEADER: &str = "\
# Portcullis configuration file (TOML), read by `portcullis serve --config <FILE>` and
# by the `portcullis keys` commands (or set PORTCULLIS_CONFIG=<FILE>).
#
# Every key is optional. A flag wins over its PORTCULLIS_* environment variable, which
# wins over this file, which wins over the default shown. Relative paths are relative
# to the working directory. Unknown keys are an error.
#
# Secrets are never read from this file; set them in the environment:
#   PORTCULLIS_MASTER_KEY   base64 of the 32-byte master key (instead of the key file)
#   PORTCULLIS_ADMIN_TOKEN  the bootstrap admin token, at least 32 characters
";

/// The commented reference of every key, from [`SETTINGS`] and the help and environment
/// variable of the `serve` flags (`serve` is that subcommand's clap definition).
pub fn reference(serve: &clap::Command) -> String {
    let mut out = String::from(HEADER);
    for setting in SETTINGS {
        let arg = serve
            .get_arguments()
            .find(|a| a.get_id() == setting.key)
            .unwrap_or_else(|| panic!("`serve` has no flag for the setting '{}'", setting.key));
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut help = help.trim_end().to_owned();
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(h) => format!("\"{}\" ({h})", v.get_name()),
                None => format!("\"{}\"", v.get_name()),
            })
            .collect();
        if !values.is_empty() {
            help = format!("{help} One of: {}.", values.join(", "));
        }
        out.push('\n');
        for line in wrap(&help, 86) {
            let _ = writeln!(out, "# {line}");
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (shown, value) = match setting.default {
            Fallback::Value(v) => (setting.default.shown(), v),
            Fallback::Derived { meaning, example } => (meaning, example),
        };
        let _ = writeln!(out, "# Environment: {env}. Default: {shown}.");
        let _ = writeln!(out, "# {} = {value}", setting.key);
    }
    out
}

/// `text` as lines of at most `width` characters, breaking at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn serve() -> clap::Command {
        Cli::command()
            .find_subcommand("serve")
            .expect("a serve subcommand")
            .clone()
    }

    /// The reference with every `# key = value` line made live.
    fn uncommented(reference: &str) -> String {
        reference
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if SETTINGS
                        .iter()
                        .any(|s| rest.starts_with(&format!("{} = ", s.key))) =>
                {
                    rest
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_reference_uncommented_sets_every_key_of_the_file() {
        let layer = parse(&uncommented(&reference(&serve()))).expect("the reference parses");
        // No `..`: a new field in `Layer` fails to compile here until it is checked.
        let Layer {
            listen,
            issuer,
            data_dir,
            database_url,
            database_pool_size,
            database_timeout,
            master_key_file,
            signing_alg,
            jwks_max_age,
            resync_interval,
            log_format,
            log_level,
            access_log,
            usage_analytics,
            usage_retention,
            usage_hour_retention,
            usage_max_keys,
            api_key_header,
            org_header,
            trusted_proxy,
            allow_secrets_over_http,
            failure_limit,
            public_origin,
            dpop_nonce,
            allow_private_image_urls,
            image_fetch_ca_file,
            tls_cert,
            tls_key,
            header_read_timeout,
            request_timeout,
            idle_timeout,
            redis_url,
        } = layer;
        assert!(listen.is_some());
        assert!(issuer.is_some());
        assert!(data_dir.is_some());
        assert!(database_url.is_some());
        assert!(database_pool_size.is_some());
        assert!(database_timeout.is_some());
        assert!(master_key_file.is_some());
        assert!(signing_alg.is_some());
        assert!(jwks_max_age.is_some());
        assert!(resync_interval.is_some());
        assert!(log_format.is_some());
        assert!(log_level.is_some());
        assert!(access_log.is_some());
        assert!(usage_analytics.is_some());
        assert!(usage_retention.is_some());
        assert!(usage_hour_retention.is_some());
        assert!(usage_max_keys.is_some());
        assert!(api_key_header.is_some());
        assert!(org_header.is_some());
        assert!(trusted_proxy.is_some());
        assert!(allow_secrets_over_http.is_some());
        assert!(failure_limit.is_some());
        assert!(public_origin.is_some());
        assert!(dpop_nonce.is_some());
        assert!(allow_private_image_urls.is_some());
        assert!(image_fetch_ca_file.is_some());
        assert!(tls_cert.is_some());
        assert!(tls_key.is_some());
        assert!(header_read_timeout.is_some());
        assert!(request_timeout.is_some());
        assert!(idle_timeout.is_some());
        assert!(redis_url.is_some());
    }

    #[test]
    fn the_reference_defaults_are_the_built_in_defaults() {
        let layer = parse(&uncommented(&reference(&serve()))).unwrap();
        let defaults = defaults();
        assert_eq!(layer.listen, defaults.listen);
        assert_eq!(layer.data_dir, defaults.data_dir);
        assert_eq!(layer.signing_alg, defaults.signing_alg);
        assert_eq!(layer.jwks_max_age, defaults.jwks_max_age);
        assert_eq!(layer.resync_interval, defaults.resync_interval);
        assert_eq!(layer.database_pool_size, defaults.database_pool_size);
        assert_eq!(layer.database_timeout, defaults.database_timeout);
        assert_eq!(layer.log_format, defaults.log_format);
        assert_eq!(layer.log_level, defaults.log_level);
        assert_eq!(layer.api_key_header, defaults.api_key_header);
        assert_eq!(layer.org_header, defaults.org_header);
        assert_eq!(layer.trusted_proxy, defaults.trusted_proxy);
        assert_eq!(layer.failure_limit, defaults.failure_limit);
        assert_eq!(layer.header_read_timeout, defaults.header_read_timeout);
        assert_eq!(layer.request_timeout, defaults.request_timeout);
        assert_eq!(layer.idle_timeout, defaults.idle_timeout);
    }

    #[test]
    fn every_serve_flag_but_config_is_a_key() {
        let reference = reference(&serve());
        for arg in serve().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "config" | "help" | "version") {
                continue;
            }
            let key = long.replace('-', "_");
            assert!(
                reference.contains(&format!("\n# {key} = ")),
                "--{long} is missing from the reference"
            );
            assert_eq!(arg.get_id(), key.as_str(), "--{long}: key and flag differ");
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(
                env,
                Some(format!("PORTCULLIS_{}", key.to_uppercase())),
                "--{long}"
            );
            assert!(
                reference.contains(&format!("Environment: PORTCULLIS_{}.", key.to_uppercase()))
            );
        }
    }

    #[test]
    fn every_key_is_once_in_the_table() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                SETTINGS[i + 1..].iter().all(|t| t.key != s.key),
                "{} twice",
                s.key
            );
        }
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = parse("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.message().contains("listen_addr"), "{err}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, "# comment\nsigning_alg = \"HS256\"\n").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("line 2") && err.contains("HS256"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert!(wrap("", 5).is_empty());
    }
}
