//! `portcullis explain`: would the gateway let this request through, and if not, why?
//!
//! A denial's detail already says what to fix; this command lets a developer or an operator
//! ask the question without a proxy, a curl line or a log search. The question (resource,
//! method, the headers the client sends) is built once ([`Question`]) and asked of one of
//! two sources:
//!
//! - `--server URL`: the live server, over HTTP, at `/gateway/v1/check`;
//! - otherwise the data directory: the store opened as `portcullis keys` does, the view
//!   loaded as the server loads it, and core's [`decide`] called here, its outcome turned
//!   into the server's own response (`portcullis_server::gateway::{allowed, denied}`).
//!
//! Both give an [`Answer`], printed for people or as JSON ([`report`]). Exit codes: 0
//! allowed, 1 denied, 2 no answer ([`Failure::Operational`], or clap's usage errors).
//!
//! Secrets: `--token -` and `--secret -` read stdin, output shows the token shortened and
//! never the secret, and nothing here logs.

mod answer;
mod proof;
mod report;
mod token;

use super::{Failure, open_data};
use crate::cli::ExplainArgs;
use answer::Answer;
use portcullis_core::clock::{Clock, ManualClock, SystemClock};
use portcullis_core::gateway::{API_KEY_HEADER, CheckRequest, ORG_HEADER, decide};
use portcullis_server::gateway::{allowed, denied};
use portcullis_server::live_view::LiveView;
use reqwest::header::{HeaderName, HeaderValue};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The `userKey` + `secret` headers.
const USER_KEY_HEADER: &str = "x-user-key";
const USER_SECRET_HEADER: &str = "x-user-secret";

/// How long `--server` waits for the whole answer.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: ExplainArgs) -> Result<ExitCode, Failure> {
    let question = Question::from_args(&args, &mut std::io::stdin().lock())?;
    let (answer, source) = match &args.source.server {
        Some(url) => (
            ask_server(url, &question).await?,
            Source::Server(url.clone()),
        ),
        None => decide_here(&args, &question).await?,
    };
    let now = match &source {
        Source::DataDir { now, .. } => *now,
        Source::Server(_) => SystemClock.now(),
    };
    let token = question.bearer_token().map(token::Decoded::of);
    let proof = question
        .header("dpop")
        .map(|p| proof::Decoded::of(p, question.bearer_token()));
    let report = report::Report {
        token: token.as_ref(),
        proof: proof.as_ref(),
        answer: &answer,
        source: &source,
        now,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(if answer.allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where the answer came from, for the report.
pub enum Source {
    Server(String),
    DataDir {
        dir: PathBuf,
        issuer: String,
        now: i64,
    },
}

/// The request to ask about, as the client would send it.
#[derive(Debug)]
struct Question {
    resource: String,
    /// Upper case, a valid HTTP method.
    method: String,
    /// Lower-case names, each at most once, in the order given.
    headers: Vec<(String, String)>,
    /// With a DPoP proof: the URL the client called.
    url: Option<String>,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Operational(message.into())
}

impl Question {
    /// The flags as headers; `-` values are read from `stdin`, one line each, the token's
    /// first.
    fn from_args(args: &ExplainArgs, stdin: &mut dyn BufRead) -> Result<Question, Failure> {
        let method = args.method.trim().to_ascii_uppercase();
        if reqwest::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(usage(format!(
                "--method '{}' is not an HTTP method: give one like GET or POST",
                args.method
            )));
        }
        let mut headers = Vec::new();
        if let Some(token) = &args.credentials.token {
            let token = from_stdin(token, "--token", stdin)?;
            let scheme = if args.credentials.dpop.is_some() {
                "DPoP"
            } else {
                "Bearer"
            };
            headers.push(("authorization".to_owned(), format!("{scheme} {token}")));
        }
        if let Some(proof) = &args.credentials.dpop {
            headers.push(("dpop".to_owned(), from_stdin(proof, "--dpop", stdin)?));
        }
        let url = args.credentials.url.as_deref().map(str::trim);
        if let Some(u) = url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(usage(format!(
                "--url '{u}' is not the URL the client called: give it whole, like https://api.example.com/orders/7"
            )));
        }
        let flags = [
            (API_KEY_HEADER, &args.credentials.api_key),
            (ORG_HEADER, &args.credentials.org),
            (USER_KEY_HEADER, &args.credentials.user_key),
        ];
        for (name, value) in flags {
            if let Some(v) = value {
                headers.push((name.to_owned(), v.clone()));
            }
        }
        if let Some(secret) = &args.credentials.secret {
            let secret = from_stdin(secret, "--secret", stdin)?;
            headers.push((USER_SECRET_HEADER.to_owned(), secret));
        }
        for line in &args.credentials.headers {
            headers.push(parse_header(line)?);
        }
        for (i, (name, _)) in headers.iter().enumerate() {
            if headers[..i].iter().any(|(n, _)| n == name) {
                return Err(usage(format!(
                    "the header {name} is given twice (by -H and by a flag like --api-key, or by two -H): give it once"
                )));
            }
        }
        Ok(Question {
            resource: args.resource.clone(),
            method,
            headers,
            url: url.map(str::to_owned),
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `Authorization: Bearer <token>` (or `DPoP <token>`), however it was
    /// given.
    fn bearer_token(&self) -> Option<&str> {
        let (scheme, token) = self.header("authorization")?.trim().split_once(' ')?;
        let token = token.trim();
        ((scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
            && !token.is_empty())
        .then_some(token)
    }
}

/// `value`, or for `-` one line of `stdin`.
fn from_stdin(value: &str, flag: &str, stdin: &mut dyn BufRead) -> Result<String, Failure> {
    if value != "-" {
        return Ok(value.to_owned());
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| usage(format!("{flag} -: cannot read stdin: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).trim();
    if line.is_empty() {
        return Err(usage(format!(
            "{flag} -: stdin has no line to read the value from: pipe it in, e.g. {flag} - < file"
        )));
    }
    Ok(line.to_owned())
}

/// `Name: value` as a lower-case name and a value, both valid in HTTP.
fn parse_header(line: &str) -> Result<(String, String), Failure> {
    let bad = |why: &str| {
        // The value may be a credential: name only what was wrong.
        usage(format!(
            "-H takes 'Name: value', like -H 'X-Forwarded-Method: POST'; {why}"
        ))
    };
    let (name, value) = line.split_once(':').ok_or_else(|| bad("there is no ':'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| bad("the name is not a valid header name"))?;
    let value = value.trim();
    HeaderValue::from_str(value)
        .map_err(|_| bad("the value has characters a header cannot hold"))?;
    Ok((name.as_str().to_owned(), value.to_owned()))
}

/// The decision made here, from the data directory, as the server would make it.
async fn decide_here(args: &ExplainArgs, q: &Question) -> Result<(Answer, Source), Failure> {
    let (settings, store, master) =
        open_data(args.layer(), &args.config)
            .await
            .map_err(|failure| match failure {
                Failure::Runtime(m) => Failure::Operational(format!(
                    "{m}; or ask a running server with --server <URL>"
                )),
                other => other,
            })?;
    let now = args.source.now.unwrap_or_else(|| SystemClock.now());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
    let view = LiveView::load(store, master, clock)
        .await
        .map_err(|e| {
            Failure::Operational(format!(
                "cannot load the data in {}: {e}",
                settings.data_dir.display()
            ))
        })?
        .get();
    // As `serve` works it out (portcullis_server::Application::build).
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen))
        .trim_end_matches('/')
        .to_owned();
    // The same headers as the server's `gateway::evaluate` reads.
    let method = q
        .header("x-forwarded-method")
        .or_else(|| q.header("x-original-method"))
        .unwrap_or(&q.method);
    let user_key = q.header(USER_KEY_HEADER);
    let user_secret = q.header(USER_SECRET_HEADER);
    let req = CheckRequest {
        resource: Some(&q.resource),
        method,
        authorization: q.header("authorization"),
        authentication: q.header("authentication"),
        api_key: q.header(API_KEY_HEADER),
        org_header: q.header(ORG_HEADER),
        user_key,
        user_secret,
        // There is no transport here to be plain HTTP: the question is whether the
        // credentials are good.
        secrets_allowed: user_key.is_some() && user_secret.is_some(),
        dpop: q.header("dpop"),
        htu: q.url.as_deref(),
        ..Default::default()
    };
    let response = match decide(&req, &view, &issuer, now) {
        Ok(allow) => allowed(&allow),
        Err(denial) => denied(&denial),
    };
    let answer = Answer::from_response(response.status().as_u16(), response.headers(), None)
        .ok_or_else(|| Failure::Runtime("internal error: the decision has no answer".into()))?;
    let source = Source::DataDir {
        dir: settings.data_dir,
        issuer,
        now,
    };
    Ok((answer, source))
}

/// The live server's answer to the question.
async fn ask_server(url: &str, q: &Question) -> Result<Answer, Failure> {
    let base = url.trim().trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(usage(format!(
            "--server {base}: this build of portcullis speaks plain HTTP only; use the server's http:// address (from its machine), or leave --server out to read the data directory"
        )));
    }
    if !base.starts_with("http://") {
        return Err(usage(format!(
            "--server '{base}' is not a URL: give the server's base URL, like http://127.0.0.1:8080"
        )));
    }
    let client = reqwest::Client::builder()
        .timeout(SERVER_TIMEOUT)
        .build()
        .map_err(|e| usage(format!("cannot set up the HTTP client: {e}")))?;
    let method = reqwest::Method::from_bytes(q.method.as_bytes())
        .map_err(|_| usage(format!("--method '{}' is not an HTTP method", q.method)))?;
    let mut request = client
        .request(method, format!("{base}/gateway/v1/check"))
        .query(&[("resource", &q.resource)]);
    for (name, value) in &q.headers {
        request = request.header(name, value);
    }
    // The URL the client called, as a proxy forwards it: its host and its path.
    if let Some((host, path)) =
        q.url
            .as_deref()
            .and_then(|u| u.split_once("://"))
            .map(|(_, rest)| {
                rest.split_once('/')
                    .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")))
            })
    {
        request = request.header("host", host).header("x-original-uri", path);
    }
    let response = request.send().await.map_err(|e| {
        usage(format!(
            "cannot reach the server at {base} ({}): is `portcullis serve` running there? Check --server, or leave it out to read the data directory instead",
            causes(&e)
        ))
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Answer::from_response(status, &headers, body).ok_or_else(|| {
        usage(format!(
            "the server at {base} answered {status} without a gateway decision: give the base URL of a Portcullis server (without /gateway/v1/check)"
        ))
    })
}

/// An error and its causes on one line (reqwest's own message omits the cause, such as
/// "connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn question(argv: &[&str], stdin: &str) -> Result<Question, Failure> {
        let argv = ["portcullis", "explain", "--resource", "res_1"]
            .iter()
            .chain(argv);
        let Command::Explain(args) = Cli::try_parse_from(argv).expect("valid flags").command else {
            panic!("not explain");
        };
        Question::from_args(&args, &mut stdin.as_bytes())
    }

    fn message(f: Failure) -> String {
        match f {
            Failure::Operational(m) => m,
            other => panic!("not operational: {other:?}"),
        }
    }

    #[test]
    fn flags_become_the_headers_the_client_sends() {
        let q = question(
            &[
                "--token",
                "a.b.c",
                "--api-key",
                "c1",
                "--org",
                "O@Org",
                "-H",
                "X-Forwarded-Method:  post ",
            ],
            "",
        )
        .unwrap();
        assert_eq!(q.method, "GET");
        assert_eq!(q.header("authorization"), Some("Bearer a.b.c"));
        assert_eq!(q.header("x-api-key"), Some("c1"));
        assert_eq!(q.header("x-gw-ims-org-id"), Some("O@Org"));
        assert_eq!(q.header("x-forwarded-method"), Some("post"));
        assert_eq!(q.bearer_token(), Some("a.b.c"));
    }

    #[test]
    fn dash_reads_the_token_then_the_secret_from_stdin() {
        let q = question(
            &["--token", "-", "--user-key", "c1", "--secret", "-"],
            "tok.en.x\r\npcss_secret\n",
        )
        .unwrap();
        assert_eq!(q.bearer_token(), Some("tok.en.x"));
        assert_eq!(q.header("x-user-secret"), Some("pcss_secret"));
        let err = message(question(&["--token", "-"], "").unwrap_err());
        assert!(err.contains("stdin"), "{err}");
    }

    #[test]
    fn a_header_given_twice_is_refused() {
        let err = message(question(&["--api-key", "a", "-H", "X-Api-Key: b"], "").unwrap_err());
        assert!(err.contains("x-api-key") && err.contains("twice"), "{err}");
    }

    #[test]
    fn a_malformed_header_or_method_is_refused_without_echoing_the_value() {
        let err = message(question(&["-H", "Authorization Bearer secret-ish"], "").unwrap_err());
        assert!(
            err.contains("Name: value") && !err.contains("secret-ish"),
            "{err}"
        );
        let err = message(question(&["-H", "Bad Name: v"], "").unwrap_err());
        assert!(err.contains("header name"), "{err}");
        let err = message(question(&["--method", "G T"], "").unwrap_err());
        assert!(err.contains("--method"), "{err}");
    }

    #[test]
    fn the_token_can_come_from_a_raw_authorization_header() {
        let q = question(&["-H", "Authorization: bearer x.y.z"], "").unwrap();
        assert_eq!(q.bearer_token(), Some("x.y.z"));
        let q = question(&["-H", "Authorization: Basic abc"], "").unwrap();
        assert_eq!(q.bearer_token(), None);
    }
}
