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
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
}

/// An independent parser (Python's prometheus_client, both its OpenMetrics parser — the
/// format `/metrics` declares — and its Prometheus text parser) reads the whole scrape and
/// finds the build info and the process series.
#[tokio::test]
async fn metrics_parse_with_prometheus_client() {
    let Some(python) = python_with("prometheus_client") else {
        return;
    };
    let app = TestApp::spawn().await;
    let text = app.metrics_text().await;
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus
text = sys.stdin.read()
out = {}
for name, parse in (("openmetrics", openmetrics), ("prometheus", prometheus)):
    samples = {}
    for family in parse(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append({"labels": s.labels, "value": s.value, "type": family.type})
    out[name] = samples
print(json.dumps(out))
"#;
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
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    for parser in ["openmetrics", "prometheus"] {
        let samples = &parsed[parser];
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
            "portcullis_build_info",
            "portcullis_store_up",
        ] {
            assert!(
                samples[name].as_array().is_some_and(|s| !s.is_empty()),
                "{parser}: no {name} in {samples}"
            );
        }
        let build = &samples["portcullis_build_info"][0];
        assert_eq!(build["value"], 1.0, "{parser}: {build}");
        assert_eq!(
            build["labels"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{parser}"
        );
        assert!(
            build["labels"]["commit"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{parser}: {build}"
        );
    }
    assert_eq!(
        parsed["openmetrics"]["process_cpu_seconds_total"][0]["type"],
        "counter"
    );
}
