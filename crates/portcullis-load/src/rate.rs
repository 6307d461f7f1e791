//! `mint` (closed loop: as fast as the connections go) and `rate` (open loop: request
//! `k` is due at `start + k / rate`, whatever happened to the ones before it).
//!
//! Latency in `rate` is measured from when the request was *due*, not from when it was
//! sent: if the server stalls, the requests queued behind the stall count their wait, as
//! a real client's would (wrk2's correction for coordinated omission). Tokio's timer has
//! millisecond granularity, so the last stretch before a due time is waited by yielding,
//! not sleeping: the generator's core is busy, and the measured latency stays precise to
//! microseconds.

use crate::files::{self, Credential, Minted};
use crate::http::{Conn, authority};
use base64::Engine as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::Full;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn mint(
    url: &str,
    credentials: &Path,
    count: Option<usize>,
    connections: usize,
    out: &Path,
) -> Result<(), String> {
    let creds = Arc::new(files::credentials(credentials)?);
    let count = count.unwrap_or(creds.len());
    let authority = authority(url)?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.clamp(1, count.max(1)) {
        let mut conn = Conn::open(&authority).await?;
        let (creds, next) = (creds.clone(), next.clone());
        tasks.spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, String>(got);
                }
                let c = &creds[i % creds.len()];
                let json = client_credentials(&mut conn, c, None).await?;
                let token = json["access_token"]
                    .as_str()
                    .ok_or("token response without access_token")?;
                got.push((
                    i,
                    Minted {
                        token: token.to_owned(),
                        client_id: c.client_id.clone(),
                        org: c.org.clone(),
                        resource: c.resource.clone(),
                    },
                ));
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = tasks.join_next().await {
        all.extend(done.map_err(|e| e.to_string())??);
    }
    all.sort_by_key(|(i, _)| *i);
    let minted: Vec<Minted> = all.into_iter().map(|(_, m)| m).collect();
    files::write_tokens(out, &minted)?;
    eprintln!("minted {} tokens into {}", minted.len(), out.display());
    Ok(())
}

/// One `client_credentials` token request for `c` (client_secret_basic), with a DPoP
/// proof when given; the token response's JSON, or why there is none.
pub async fn client_credentials(
    conn: &mut Conn,
    c: &Credential,
    dpop: Option<&str>,
) -> Result<serde_json::Value, String> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.client_id, c.secret));
    let mut req = conn
        .request("POST", "/oauth/token")
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(proof) = dpop {
        req = req.header("dpop", proof);
    }
    let req = req
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .map_err(|e| e.to_string())?;
    let (status, body) = conn.send(req).await?;
    if !status.is_success() {
        return Err(format!(
            "token request for {} answered {status}: {}",
            c.client_id,
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("token response is not JSON: {e}"))
}

/// What one `rate` run measured.
#[derive(Debug)]
pub struct Report {
    pub rate: u64,
    pub requests: u64,
    /// Responses other than 200 (and failed requests).
    pub errors: u64,
    pub achieved: f64,
    pub latency_us: Histogram<u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.latency_us;
        write!(
            f,
            "rate={} achieved={:.0} requests={} errors={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={}",
            self.rate,
            self.achieved,
            self.requests,
            self.errors,
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.90),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max()
        )
    }
}

/// Wait until `due`: sleep while it is more than 2 ms away, then yield until it has come.
async fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        if due - now > Duration::from_millis(2) {
            tokio::time::sleep_until((due - Duration::from_millis(1)).into()).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Gateway checks at `rate` per second for `duration` seconds over `connections`
/// connections, rotating over the tokens of `tokens`.
pub async fn run(
    url: &str,
    tokens: &Path,
    rate: u64,
    duration: u64,
    connections: usize,
) -> Result<Report, String> {
    if rate == 0 || duration == 0 {
        return Err("--rate and --duration must be at least 1".into());
    }
    let tokens = Arc::new(files::tokens(tokens)?);
    let authority = authority(url)?;
    let total = rate * duration;
    let interval_ns = 1e9 / rate as f64;
    let mut conns = Vec::with_capacity(connections.max(1));
    for _ in 0..connections.max(1) {
        conns.push(Conn::open(&authority).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (tokens, next, first_error) = (tokens.clone(), next.clone(), first_error.clone());
        let authority = authority.clone();
        tasks.spawn(async move {
            let mut hist = histogram();
            let mut errors = 0u64;
            let mut last = start;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    return (hist, errors, last);
                }
                let due = start + Duration::from_nanos((k as f64 * interval_ns) as u64);
                wait_until(due).await;
                let t = &tokens[(k % tokens.len() as u64) as usize];
                let req = conn
                    .request("GET", &format!("/gateway/v1/check?resource={}", t.resource))
                    .header("authorization", format!("Bearer {}", t.token))
                    .header("x-api-key", &t.client_id)
                    .header("x-gw-ims-org-id", &t.org)
                    .body(Full::new(Bytes::new()))
                    .expect("a valid request");
                let outcome = conn.send(req).await;
                last = Instant::now();
                hist.saturating_record((last - due).as_micros().max(1) as u64);
                let problem = match outcome {
                    Ok((status, _)) if status == 200 => None,
                    Ok((status, body)) => Some(format!(
                        "answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    )),
                    Err(e) => Some(e),
                };
                if let Some(p) = problem {
                    errors += 1;
                    first_error.lock().unwrap().get_or_insert(p);
                    // A broken connection fails every request after it; reopen it.
                    if let Ok(fresh) = Conn::open(&authority).await {
                        conn = fresh;
                    }
                }
            }
        });
    }
    let mut latency_us = histogram();
    let mut errors = 0;
    let mut end = start;
    while let Some(done) = tasks.join_next().await {
        let (h, e, last) = done.map_err(|e| e.to_string())?;
        latency_us.add(&h).map_err(|e| e.to_string())?;
        errors += e;
        end = end.max(last);
    }
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!("first failed request: {e}");
    }
    let secs = end.saturating_duration_since(start).as_secs_f64().max(1e-9);
    Ok(Report {
        rate,
        requests: latency_us.len(),
        errors,
        achieved: latency_us.len() as f64 / secs,
        latency_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A minimal HTTP/1.1 server on 127.0.0.1:0 answering every request with `status`
    /// and an empty body; enough to test the generator's schedule and counting.
    async fn tiny_server(status: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        // Requests are GETs without a body: one per blank line.
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                            if sock.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    fn token_file(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("tokens.tsv");
        let minted: Vec<Minted> = (0..3)
            .map(|i| Minted {
                token: format!("t{i}"),
                client_id: format!("c{i}"),
                org: "O@Org".into(),
                resource: format!("res_{i}"),
            })
            .collect();
        files::write_tokens(&path, &minted).unwrap();
        path
    }

    #[tokio::test]
    async fn rate_sends_exactly_rate_times_duration_requests_on_schedule() {
        let url = tiny_server("200 OK").await;
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let report = run(&url, &token_file(dir.path()), 500, 1, 4).await.unwrap();
        assert_eq!(report.requests, 500);
        assert_eq!(report.errors, 0);
        // Open loop: it takes the duration, not less, even against a fast server.
        assert!(started.elapsed() >= Duration::from_millis(990));
        assert!(
            (400.0..=600.0).contains(&report.achieved),
            "achieved {}",
            report.achieved
        );
        assert!(report.latency_us.value_at_quantile(0.5) >= 1);
        let line = report.to_string();
        assert!(
            line.starts_with("rate=500 ") && line.contains(" p99_us="),
            "{line}"
        );
    }

    #[tokio::test]
    async fn refusals_are_counted_as_errors() {
        let url = tiny_server("403 Forbidden").await;
        let dir = tempfile::tempdir().unwrap();
        let report = run(&url, &token_file(dir.path()), 100, 1, 2).await.unwrap();
        assert_eq!(report.requests, 100);
        assert_eq!(report.errors, 100);
    }
}
