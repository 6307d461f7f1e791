//! Answers that leave the request body unread, over raw HTTP/1.1 connections: a large
//! unread body gets `Connection: close` (and the connection is closed), a small one is
//! drained so that the connection serves the next request.

use crate::common;

use common::TestApp;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

struct Answer {
    status: u16,
    /// Header names in lower case, with their values.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (head and `Content-Length` body) from `stream`, keeping any bytes
/// after it in `buf`; `None` if the connection ends first.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin), buf: &mut Vec<u8>) -> Option<Answer> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("a length"))
        .unwrap_or(0);
    buf.drain(..head_end + 4);
    while buf.len() < length {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..length).collect();
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn request(method: &str, path: &str, body_len: usize) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
    )
    .into_bytes();
    r.resize(r.len() + body_len, b'x');
    r
}

/// After a `Connection: close` answer the server ends the connection: reading gives EOF
/// (or a reset), never another answer.
async fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection");
    if let Ok(n) = read {
        assert_eq!(
            n,
            0,
            "more after the answer: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// A fresh connection serves `GET /healthz`.
async fn healthz_on_a_new_connection(app: &TestApp) {
    let mut stream = TcpStream::connect(addr(app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: portcullis\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut stream, &mut Vec::new())
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200);
}

/// Sends `request` while reading the answer (the server may answer, and close, before it
/// has read all of it; a write refused by the closed connection is expected).
async fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Option<Answer> {
    let (mut rd, mut wr) = stream.split();
    let (_, answer) = tokio::join!(wr.write_all(request), read_answer(&mut rd, buf));
    answer
}

/// `status` and a problem+json body of that status, with `Connection: close`; then the
/// connection ends, and a new one is served.
async fn assert_refused_and_closed(
    app: &TestApp,
    method: &str,
    path: &str,
    len: usize,
    status: u16,
) {
    let mut stream = TcpStream::connect(addr(app)).await.unwrap();
    let answer = exchange(&mut stream, &request(method, path, len), &mut Vec::new())
        .await
        .expect("an answer before the close");
    assert_eq!(answer.status, status, "{method} {path}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(problem["status"], status);
    assert_eq!(
        answer.header("connection"),
        Some("close"),
        "{method} {path} with {len} unread bytes: {:?}",
        answer.headers
    );
    assert_closed(&mut stream).await;
    healthz_on_a_new_connection(app).await;
}

#[tokio::test]
async fn a_large_unread_body_gets_connection_close() {
    let app = TestApp::spawn().await;
    // The gateway check reads no body; this one is 100 KB, too much to drain.
    assert_refused_and_closed(&app, "GET", "/gateway/v1/check", 100_000, 404).await;
    // Refused by the body limit on its Content-Length alone (2 MiB > 1 MiB).
    assert_refused_and_closed(&app, "POST", "/admin/v1/orgs", 2 * 1024 * 1024, 413).await;
}

/// A small body nobody reads (60 KB, within the drain limit) is read and discarded: the
/// answer does not close the connection, and the same connection answers the next
/// request.
#[tokio::test]
async fn a_small_unread_body_is_drained_and_the_connection_kept() {
    let app = TestApp::spawn().await;
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    let mut buf = Vec::new();
    for round in 0..3 {
        let answer = exchange(
            &mut stream,
            &request("GET", "/gateway/v1/check", 60_000),
            &mut buf,
        )
        .await
        .unwrap_or_else(|| panic!("round {round}: the connection was closed"));
        assert_eq!(answer.status, 404, "round {round}");
        assert_eq!(answer.header("connection"), None, "round {round}");
    }
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: portcullis\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut stream, &mut buf)
        .await
        .expect("the kept connection answers");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, br#"{"status":"ok"}"#);
}

/// A body that arrives too slowly gets `408` — and `Connection: close` at once, without
/// waiting to drain a body that is not coming.
#[tokio::test]
async fn a_timed_out_body_gets_408_and_connection_close() {
    let app = TestApp::spawn_with(common::Options {
        limits: portcullis_server::config::Limits {
            request_timeout: Duration::from_millis(500),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    // A sign-in reads its body first: 10 of the 100 bytes announced, and no more.
    let mut head = request("POST", "/admin/v1/sessions", 100);
    head.truncate(head.len() - 90);
    stream.write_all(&head).await.unwrap();
    let answer = read_answer(&mut stream, &mut Vec::new())
        .await
        .expect("an answer");
    assert_eq!(answer.status, 408);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_closed(&mut stream).await;
    healthz_on_a_new_connection(&app).await;
}
