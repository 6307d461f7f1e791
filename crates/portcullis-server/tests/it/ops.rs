//! Operations endpoints: health, readiness, metrics, and clean shutdown.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["store"], app.backend());
    assert_eq!(v["view"]["apps"], 0);
    app.client(&["read"]).await;
    let v: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["view"]["apps"], 1, "the view counts the new app");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_outcome() {
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    for _ in 0..3 {
        app.access_token(&cid, &secret, None).await;
    }
    let bad = app.token(&cid, "pcss_nope", None).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let text = app.metrics_text().await;
    let line = |needle: &str| metric_value(&text, needle);
    assert_eq!(
        line(r#"portcullis_http_requests_total{route="/oauth/token",method="POST",outcome="2xx"}"#),
        3.0
    );
    assert_eq!(
        line(r#"portcullis_http_requests_total{route="/oauth/token",method="POST",outcome="4xx"}"#),
        1.0
    );
    assert_eq!(
        line(r#"portcullis_token_grants_total{grant="client_credentials",outcome="issued"}"#),
        3.0
    );
    assert!(text.contains("portcullis_http_request_duration_seconds_bucket{"));
    assert_eq!(line("portcullis_view_apps "), 1.0);
}

/// The gateway check has a lane of its own in the router (fewer layers): it is still
/// counted, once, by its route pattern, and still answers in the gateway's problem+json format.
#[tokio::test]
async fn the_gateway_lane_is_counted_like_every_route() {
    let app = TestApp::spawn().await;
    let w = app.gateway_world(false).await;
    for path in [
        format!("/gateway/v1/check?resource={}", w.resource),
        format!("/gateway/v1/check/{}/orders", w.resource),
    ] {
        let r = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // A query the handler's extractor cannot read: still a problem, not axum's text.
    let r = app
        .http
        .get(app.url("/gateway/v1/check?resource=%FF"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let text = app.metrics_text().await;
    let line = |needle: &str| metric_value(&text, needle);
    assert_eq!(
        line(
            r#"portcullis_http_requests_total{route="/gateway/v1/check",method="GET",outcome="4xx"}"#
        ),
        2.0
    );
    assert_eq!(
        line(
            r#"portcullis_http_requests_total{route="/gateway/v1/check/{*rest}",method="GET",outcome="4xx"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn stop_drains_and_returns_cleanly() {
    let app = TestApp::spawn().await;
    app.assert_ready().await;
    let base = app.base.clone();
    // `stop` panics unless the server task ends with Ok.
    app.stop().await;
    let after = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed after stop");
}

/// `/metrics` carries the build (version and commit, as `git rev-parse --short HEAD`
/// says at build time) and the standard `process_*` series, with plausible values.
#[tokio::test]
async fn metrics_carry_build_info_and_the_process_series() {
    let app = TestApp::spawn().await;
    let text = app.metrics_text().await;
    let build = text
        .lines()
        .find(|l| l.starts_with("portcullis_build_info{"))
        .unwrap_or_else(|| panic!("no build info in:\n{text}"));
    let version = format!(r#"version="{}""#, env!("CARGO_PKG_VERSION"));
    assert!(build.contains(&version), "{build}");
    assert!(build.ends_with("} 1"), "{build}");
    let commit = build
        .split(r#"commit=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a commit label");
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        // Built from this checkout: the commit it was built from is a commit of it
        // (HEAD itself, unless a commit was made since the build).
        Some(_) => {
            let known = std::process::Command::new("git")
                .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(known, "{commit} is not a commit of this repository");
        }
        None => assert_eq!(commit, "unknown"),
    }

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = metric_value(&text, "process_start_time_seconds ");
    assert!(
        start > now - 3600.0 && start <= now + 1.0,
        "{start} vs {now}"
    );
    assert!(metric_value(&text, "process_cpu_seconds_total ") > 0.0);
    assert!(metric_value(&text, "process_resident_memory_bytes ") > 1e6);
    assert!(metric_value(&text, "process_open_fds ") >= 3.0);
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter"),
        "{text}"
    );
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` with this `Accept` header: the answer's `Content-Type` and body.
async fn scrape(app: &TestApp, accept: &str) -> (String, String) {
    let r = app
        .http
        .get(app.url("/metrics"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["vary"], "accept");
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, r.text().await.unwrap())
}

/// The `Content-Type` of `GET /metrics` sent with no `Accept` header at all (an HTTP
/// client library adds `*/*`; this request is written by hand).
async fn content_type_without_accept(app: &TestApp) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: portcullis\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let head = answer.split("\r\n\r\n").next().unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    head.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                .map(|(_, value)| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no content-type in {head}"))
}

/// The scraper chooses the format with `Accept`, weights included: OpenMetrics when it
/// prefers it (as Prometheus does by default), the Prometheus text format otherwise,
/// and with no `Accept` header or `*/*`.
#[tokio::test]
async fn metrics_format_follows_the_accept_header() {
    let app = TestApp::spawn().await;
    // Prometheus 3's default scrape protocols.
    let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
        application/openmetrics-text;version=0.0.1;q=0.4,\
        text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
        text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    for (accept, want) in [
        ("application/openmetrics-text", OPENMETRICS),
        (prometheus, OPENMETRICS),
        ("text/plain", TEXT),
        ("text/plain;version=0.0.4", TEXT),
        (
            "text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5",
            TEXT,
        ),
        ("application/openmetrics-text;q=0", TEXT),
        ("*/*", TEXT),
        ("application/json", TEXT),
    ] {
        let (content_type, body) = scrape(&app, accept).await;
        assert_eq!(content_type, want, "Accept: {accept}");
        assert_eq!(body.ends_with("# EOF\n"), want == OPENMETRICS, "{accept}");
    }
    assert_eq!(content_type_without_accept(&app).await, TEXT);
}

/// An independent oracle, Python's prometheus_client, parses both formats: its OpenMetrics
/// parser the OpenMetrics scrape, its Prometheus text parser the text scrape. Both find
/// every series, of the same type, and after a scripted set of requests the same values;
/// the known counters have the values the requests made.
#[tokio::test]
async fn both_formats_parse_with_prometheus_client_and_agree() {
    let Some(python) = python_with("prometheus_client") else {
        return;
    };
    let app = TestApp::spawn().await;
    let (cid, secret, _) = app.client(&["read"]).await;
    for _ in 0..3 {
        app.access_token(&cid, &secret, None).await;
    }
    let bad = app.token(&cid, "pcss_nope", None).await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let w = app.gateway_world(false).await;
    for _ in 0..2 {
        let path = format!("/gateway/v1/check?resource={}", w.resource);
        let r = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // A first scrape, so that `/metrics`'s own series exist in both that follow.
    scrape(&app, "*/*").await;
    let (content_type, openmetrics_text) = scrape(&app, "application/openmetrics-text").await;
    assert_eq!(content_type, OPENMETRICS);
    let (content_type, prometheus_text) = scrape(&app, "text/plain;version=0.0.4").await;
    assert_eq!(content_type, TEXT);
    assert!(!prometheus_text.contains("# EOF"), "{prometheus_text}");
    assert!(!prometheus_text.contains("_created"), "{prometheus_text}");

    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus
formats = json.loads(sys.stdin.read())
out = {}
for name, parse in (("openmetrics", openmetrics), ("prometheus", prometheus)):
    samples = []
    for family in parse(formats[name]):
        for s in family.samples:
            labels = dict(s.labels)
            # A bucket's bound is a number, written 1e-06 in the text format (as the Go
            # client writes it) and 0.000001 in OpenMetrics.
            if "le" in labels:
                labels["le"] = repr(float(labels["le"]))
            samples.append({"family": family.name, "type": family.type, "name": s.name,
                            "labels": labels, "value": s.value})
    out[name] = samples
print(json.dumps(out))
"#;
    let input = serde_json::json!({"openmetrics": openmetrics_text, "prometheus": prometheus_text});
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n{openmetrics_text}\n{prometheus_text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Each series as `name{labels}` → (family type, value). OpenMetrics's `_created`
    // samples, should a counter ever carry one, have no counterpart in the text format.
    let series = |parser: &str| -> std::collections::BTreeMap<String, (String, f64)> {
        let samples = parsed[parser].as_array().unwrap();
        assert!(!samples.is_empty(), "{parser} found nothing");
        let mut all = std::collections::BTreeMap::new();
        for s in samples {
            let name = s["name"].as_str().unwrap();
            if parser == "openmetrics" && name.ends_with("_created") {
                continue;
            }
            let labels: std::collections::BTreeMap<String, String> =
                serde_json::from_value(s["labels"].clone()).unwrap();
            let key = format!("{name}{labels:?}");
            let kind = s["type"].as_str().unwrap().to_owned();
            let value = s["value"].as_f64().unwrap();
            assert!(
                all.insert(key.clone(), (kind, value)).is_none(),
                "{parser}: {key} twice"
            );
        }
        all
    };
    let om = series("openmetrics");
    let text = series("prometheus");
    assert_eq!(
        om.keys().collect::<Vec<_>>(),
        text.keys().collect::<Vec<_>>(),
        "the same series in both formats"
    );
    for (key, (kind, value)) in &om {
        let (text_kind, text_value) = &text[key];
        assert_eq!(kind, text_kind, "{key}");
        // What changes between the two scrapes: the process's own figures, and the
        // counts of `/metrics` itself.
        if key.starts_with("process_") || key.contains(r#""/metrics""#) {
            continue;
        }
        assert_eq!(value, text_value, "{key}");
    }
    let value = |key: &str| {
        let om = om
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {om:?}"))
            .1;
        assert_eq!(om, text[key].1, "{key}");
        om
    };
    let requests = |route: &str, method: &str, outcome: &str| {
        value(&format!(
            "portcullis_http_requests_total{{\"method\": \"{method}\", \"outcome\": \"{outcome}\", \"route\": \"{route}\"}}"
        ))
    };
    assert_eq!(requests("/oauth/token", "POST", "2xx"), 3.0);
    assert_eq!(requests("/oauth/token", "POST", "4xx"), 1.0);
    assert_eq!(requests("/gateway/v1/check", "GET", "4xx"), 2.0);
    // `/metrics` itself: the scrapes before each.
    let scrapes =
        r#"portcullis_http_requests_total{"method": "GET", "outcome": "2xx", "route": "/metrics"}"#;
    assert_eq!((om[scrapes].1, text[scrapes].1), (1.0, 2.0));
    assert_eq!(
        value(
            r#"portcullis_token_grants_total{"grant": "client_credentials", "outcome": "issued"}"#
        ),
        3.0
    );
    assert_eq!(value("portcullis_view_apps{}"), 2.0);
    assert_eq!(value("portcullis_store_up{}"), 1.0);
    // The process's CPU time goes on between the scrapes: each has some.
    let cpu = "process_cpu_seconds_total{}";
    assert!(
        om[cpu].1 > 0.0 && text[cpu].1 > 0.0,
        "{:?} {:?}",
        om[cpu],
        text[cpu]
    );
    assert_eq!(om[cpu].0, "counter");
    let build = om
        .keys()
        .find(|k| k.starts_with("portcullis_build_info{"))
        .expect("build info");
    assert!(
        build.contains(&format!(r#""version": "{}""#, env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert_eq!(value(build), 1.0);
}
