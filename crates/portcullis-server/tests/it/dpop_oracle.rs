//! DPoP (RFC 9449) end to end with a client we did not write: openid-client, run by node on
//! `scripts/dpop-client/client.mjs`, gets a DPoP-bound token from the token endpoint and
//! calls an API through the real Debian nginx with the shipped configuration
//! (`deploy/nginx/portcullis.conf`), unmodified on both sides. The same token with another
//! key pair, and the accepted request sent again with its proof, are refused. With server
//! nonces (`--dpop-nonce`), the client learns the nonce from each refusal (at the token
//! endpoint directly, at the gateway through nginx) and retries by itself. Last, every
//! algorithm discovery lists, with a key pair openid-client makes for it (its Ed25519 keys
//! sign under RFC 9864's name `Ed25519`, not `EdDSA`).
//!
//! Needs nginx (see `nginx.rs`), node, and the packages of `scripts/dpop-client` (`npm ci`
//! there; `.ci/run` does it). Without them these tests print why and pass, except under CI
//! (`CI` set), where they fail.

use crate::common;
use crate::nginx::{API_PATH, Api, Nginx, nginx_installed};

use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The path and query the client calls through nginx.
const CLIENT_PATH: &str = "/v1/th%C3%A9ngs/a%20b?page=2";

/// `node` (`PORTCULLIS_TEST_NODE`, else `node` on the PATH) and the client's directory
/// with its packages installed; `None` (after saying why) outside CI when either is missing.
fn dpop_client() -> Option<(String, PathBuf)> {
    let node = std::env::var("PORTCULLIS_TEST_NODE").unwrap_or_else(|_| "node".into());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dpop-client");
    let node_runs = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = dir
        .join("node_modules/openid-client/package.json")
        .is_file();
    let missing = match (node_runs, installed) {
        (true, true) => return Some((node, dir)),
        (false, _) => format!("{node} does not run (apt-get install nodejs npm)"),
        (true, false) => format!(
            "openid-client is not installed in {} (npm ci there)",
            dir.display()
        ),
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs the DPoP oracle, but {missing}: .ci/run should have installed it"
    );
    eprintln!("skipped: {missing}");
    None
}

/// What the oracle did against Portcullis (`nonces`: started with `--dpop-nonce`) behind
/// nginx, as the JSON it printed, with the app it used and the API.
struct Run {
    out: Value,
    w: GatewayWorld,
    api: Api,
    /// The URL the client called, as a DPoP proof's `htu` names it (no query).
    htu: String,
}

async fn run_oracle(nonces: bool) -> Option<Run> {
    let (node, dir) = dpop_client()?;
    if !nginx_installed() {
        return None;
    }
    // nginx reaches Portcullis from 127.0.0.1: trust it, so its X-Forwarded-Proto and
    // X-Forwarded-Host count, and no --public-origin: the origin is rebuilt from them.
    let app = TestApp::spawn_with(Options {
        gateway: portcullis_server::config::GatewayConfig {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            dpop_nonce: nonces,
            ..Default::default()
        },
        ..Options::default()
    })
    .await;
    let w = app.gateway_world(false).await;
    let api = Api::spawn().await;
    let nginx = Nginx::start(&app.base, api.addr, &[w.resource.as_str()]).await;
    // A path with percent-encoded bytes: the proof names it as the client encoded it, and
    // X-Original-URI carries it as sent.
    let api_url = nginx.url(0).replace(API_PATH, CLIENT_PATH);
    let htu = api_url.split('?').next().unwrap().to_owned();

    let child = tokio::process::Command::new(&node)
        .arg(dir.join("client.mjs"))
        .current_dir(&dir)
        .env("PORTCULLIS_ISSUER", &app.issuer)
        .env("CLIENT_ID", &w.client_id)
        .env("CLIENT_SECRET", &w.secret)
        .env("ORG", &w.org)
        .env("API_URL", &api_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the oracle finished within 60 s")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the oracle failed ({}):\n{stderr}\nnginx:\n{}",
        output.status,
        nginx.error_log()
    );
    let out: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", String::from_utf8_lossy(&output.stdout)));
    Some(Run { out, w, api, htu })
}

fn requests(step: &Value) -> &Vec<Value> {
    step["requests"].as_array().unwrap()
}

/// Every proof of `step` names `htm` and the URL the client called.
fn proofs_name(step: &Value, htm: &str, htu: &str) {
    for r in requests(step) {
        assert_eq!(r["proof"]["htm"], htm, "{r}");
        assert_eq!(r["proof"]["htu"], htu, "{r}");
    }
}

/// The checks common to both runs; the nonce exchanges are checked by the callers.
fn assert_the_flow(run: &Run) {
    let o = &run.out;
    let w = &run.w;
    assert!(
        o["discovery"]["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256")),
        "{o}"
    );

    // The token is bound to the client's key.
    let token = &o["token"];
    // openid-client lowercases token_type; the server's own answer says "DPoP".
    assert_eq!(token["token_type"], "dpop", "{token}");
    let issued = requests(token).last().unwrap();
    assert_eq!(issued["answer"]["token_type"], "DPoP", "{token}");
    assert_eq!(token["cnf"]["jkt"], token["jkt"], "{token}");
    proofs_name(
        token,
        "POST",
        o["discovery"]["token_endpoint"].as_str().unwrap(),
    );

    // The API got the request, with the check's answer.
    let resource = &o["resource"];
    assert_eq!(resource["status"], 200, "{resource}");
    let echo = &resource["body"];
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["uri"], CLIENT_PATH);
    assert_eq!(
        echo["headers"]["x-portcullis-client-id"],
        json!([w.client_id])
    );
    assert_eq!(
        echo["headers"]["x-portcullis-authenticated"],
        json!(["true"])
    );
    assert!(
        echo["headers"]["authorization"][0]
            .as_str()
            .unwrap()
            .starts_with("DPoP "),
        "{echo}"
    );
    proofs_name(resource, "GET", &run.htu);

    // Another key pair with the same token: refused for the key, and the API never sees it.
    let other = &o["other_key"];
    assert_eq!(other["status"], 401, "{other}");
    assert_eq!(other["code"], "PCS-0454-401", "{other}");
    let challenge = other["www_authenticate"].as_str().unwrap();
    assert!(
        challenge.starts_with("DPoP error=\"invalid_token\""),
        "{challenge}"
    );

    // The accepted request again, proof and all: refused as a replay.
    let replay = &o["replay"];
    assert_eq!(replay["status"], 401, "{replay}");
    assert_eq!(replay["code"], "PCS-0453-401", "{replay}");
    assert!(
        replay["www_authenticate"]
            .as_str()
            .unwrap()
            .starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{replay}"
    );

    // And a fresh proof is accepted again.
    assert_eq!(o["fresh_proof"]["status"], 200, "{o}");

    // Every algorithm discovery lists works with openid-client's keys of that kind.
    let algs = o["discovery"]["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    for alg in algs {
        let alg = alg.as_str().unwrap();
        let step = &o["algorithms"][alg];
        assert_eq!(step["bound"], true, "{alg}: {step}");
        assert_eq!(step["status"], 200, "{alg}: {step}");
    }
    // openid-client signs with an Ed25519 key under RFC 9864's name, whichever name it
    // was asked for.
    for alg in ["Ed25519", "EdDSA"] {
        for r in requests(&o["algorithms"][alg]) {
            assert_eq!(r["proof_alg"], "Ed25519", "{alg}: {r}");
        }
    }
    assert_eq!(
        run.api.hits(),
        2 + algs.len(),
        "only the accepted requests reach the API"
    );
}

#[tokio::test]
async fn openid_client_gets_a_dpop_token_and_the_api_through_nginx() {
    let Some(run) = run_oracle(false).await else {
        return;
    };
    assert_the_flow(&run);
    // No nonces: one request each, no nonce asked for or sent.
    for step in ["token", "resource", "other_key", "fresh_proof"] {
        let r = requests(&run.out[step]);
        assert_eq!(r.len(), 1, "{step}: {r:?}");
        assert!(r[0]["proof"].get("nonce").is_none(), "{step}: {r:?}");
        assert!(r[0]["dpop_nonce"].is_null(), "{step}: {r:?}");
    }
}

/// A first proof without a nonce, refused with `status` and a nonce; the retry carries it.
fn nonce_dance(step: &Value, status: u16, code: Option<&str>) {
    let r = requests(step);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0]["proof"].get("nonce").is_none(), "{r:?}");
    assert_eq!(r[0]["status"], status, "{r:?}");
    if let Some(code) = code {
        assert_eq!(r[0]["code"], code, "{r:?}");
    }
    let given = r[0]["dpop_nonce"].as_str().expect("a DPoP-Nonce header");
    assert_eq!(r[1]["proof"]["nonce"], given, "{r:?}");
}

#[tokio::test]
async fn openid_client_follows_server_nonces_through_nginx() {
    let Some(run) = run_oracle(true).await else {
        return;
    };
    assert_the_flow(&run);
    let o = &run.out;
    // The token endpoint answers use_dpop_nonce (400) with a nonce.
    nonce_dance(&o["token"], 400, None);
    assert_eq!(
        requests(&o["token"])[0]["answer"]["error"],
        "use_dpop_nonce"
    );
    assert_eq!(requests(&o["token"])[1]["status"], 200);
    // The gateway, through nginx: 401 PCS-0452-401, the DPoP challenge and the nonce reach
    // the client, and the retry gets through.
    nonce_dance(&o["resource"], 401, Some("PCS-0452-401"));
    let first = &requests(&o["resource"])[0];
    assert!(
        first["www_authenticate"]
            .as_str()
            .unwrap()
            .starts_with("DPoP error=\"use_dpop_nonce\""),
        "{first}"
    );
    assert_eq!(requests(&o["resource"])[1]["status"], 200);
    // The other key pair has no nonce yet either: it learns one, then is refused for its key.
    nonce_dance(&o["other_key"], 401, Some("PCS-0452-401"));
    // The client keeps the gateway's nonce: a fresh proof needs no new exchange.
    let fresh = requests(&o["fresh_proof"]);
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert!(fresh[0]["proof"]["nonce"].is_string(), "{fresh:?}");
}
