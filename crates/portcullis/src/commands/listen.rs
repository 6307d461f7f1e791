//! `portcullis listen`: sign in as a Wave subscriber and print notifications as they
//! arrive, from the server's Server-Sent Event stream
//! (`/notificationgateway/1.0/stream`). A stand-in for the Wave desktop client, and a way
//! to watch a feed from a terminal.
//!
//! The password comes from `PORTCULLIS_PASSWORD` or one line of stdin, never a flag. When
//! the connection drops, it reconnects with `Last-Event-ID`, so nothing is missed; a
//! refused sign-in ends it (exit 1).

use super::Failure;
use crate::cli::ListenArgs;
use futures_util::StreamExt;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

fn password() -> Result<String, Failure> {
    if let Ok(p) = std::env::var("PORTCULLIS_PASSWORD")
        && !p.is_empty()
    {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Failure::Runtime(format!("cannot read the password from stdin: {e}")))?;
    let p = line.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(Failure::Config(
            "no password: set PORTCULLIS_PASSWORD or give it as one line on stdin".into(),
        ));
    }
    Ok(p)
}

/// One event of the stream: its id and data.
struct Event {
    id: Option<i64>,
    data: String,
}

/// Take the complete events out of `buf` (SSE: fields per line, a blank line ends one).
fn take_events(buf: &mut String) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let (mut id, mut data) = (None, String::new());
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !data.is_empty() {
            out.push(Event { id, data });
        }
    }
    out
}

fn print(e: &Event, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", e.data);
    } else {
        let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        let when = v["created_at"]
            .as_i64()
            .map(super::rfc3339)
            .unwrap_or_default();
        let _ = write!(
            out,
            "[{when}] {}: {}",
            v["topic"].as_str().unwrap_or("?"),
            v["message"].as_str().unwrap_or("")
        );
        if let Some(l) = v["link"].as_str() {
            let _ = write!(out, " <{l}>");
        }
        if v["image"].is_string() {
            let _ = write!(out, " [image]");
        }
        let _ = writeln!(out);
    }
    let _ = out.flush();
}

pub async fn run(args: ListenArgs) -> Result<(), Failure> {
    let password = password()?;
    let base = args.server.trim_end_matches('/').to_owned();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Failure::Config(format!(
            "--server '{base}' is not a URL: give the server's base URL, e.g. http://127.0.0.1:8080"
        )));
    }
    let url = format!("{base}/notificationgateway/1.0/stream");
    let mut client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(path) = &args.ca_file {
        for ca in private_cas(path)? {
            client = client.add_root_certificate(ca);
        }
    }
    let client = client.build().map_err(Failure::runtime)?;
    let mut last = args.after;
    let mut printed = 0u64;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut req = client
            .get(&url)
            .basic_auth(&args.email, Some(&password))
            .header("accept", "text/event-stream");
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        let res = match req.send().await {
            Ok(r) => r,
            // A certificate that does not verify will not verify on the next try either.
            Err(e) if certificate_refused(&e) => {
                let hint = match &args.ca_file {
                    Some(path) => format!("the CAs of {} do not vouch for it", path.display()),
                    None => "if a private CA signed it, give that CA with --ca-file".to_owned(),
                };
                return Err(Failure::Runtime(format!(
                    "cannot verify the TLS certificate of {base}: {}; {hint}",
                    causes(&e)
                )));
            }
            Err(e) => {
                eprintln!(
                    "cannot reach {base} ({}); retrying in {} s",
                    causes(&e),
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Failure::Runtime(format!(
                "{base} refused the sign-in of {}: check the email and password",
                args.email
            )));
        }
        if !status.is_success() {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            return Err(Failure::Runtime(format!(
                "{base} answered {status}: {}",
                body["detail"].as_str().unwrap_or("no detail")
            )));
        }
        eprintln!("listening as {} on {base}", args.email);
        backoff = Duration::from_secs(1);
        let mut body = res.bytes_stream();
        let mut buf = String::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
            for e in take_events(&mut buf) {
                print(&e, args.json);
                last = e.id.or(last);
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    return Ok(());
                }
            }
        }
        eprintln!("the stream ended; reconnecting");
    }
}

/// The certificates of a `--ca-file`.
fn private_cas(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, Failure> {
    let pem = std::fs::read(path)
        .map_err(|e| Failure::Config(format!("cannot read --ca-file {}: {e}", path.display())))?;
    let cas = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Failure::Config(format!(
            "--ca-file {} is not PEM certificates: {e}",
            path.display()
        ))
    })?;
    if cas.is_empty() {
        return Err(Failure::Config(format!(
            "--ca-file {} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(cas)
}

/// An error and its causes, outermost first: reqwest's own message ("error sending
/// request") says nothing of what went wrong, its causes do (the TLS alert, the refused
/// connection).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// Whether the TLS handshake failed because the server's certificate did not verify.
fn certificate_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(cause) = next {
        if matches!(
            rustls_error(cause),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        ) {
            return true;
        }
        next = cause.source();
    }
    false
}

/// The rustls error `e` is or carries. It travels inside io::Errors (one in another),
/// whose source() skips it, hence get_ref.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let mut io = e.downcast_ref::<std::io::Error>();
    while let Some(inner) = io.and_then(|io| io.get_ref()) {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        io = inner.downcast_ref::<std::io::Error>();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_comments_skipped() {
        let mut buf =
            ":keep-alive\n\nid: 7\nevent: notification\ndata: {\"a\":1}\n\nid: 8\nda".to_owned();
        let got = take_events(&mut buf);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, Some(7));
        assert_eq!(got[0].data, "{\"a\":1}");
        assert_eq!(buf, "id: 8\nda");
    }
}
