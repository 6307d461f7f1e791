//! `portcullis explain` as a developer meets it: the real server (the `TestApp` harness of
//! `portcullis-server`) holds an org, two apps and a resource; the binary explains requests
//! from that server's data directory and by asking the server, and the two must agree with
//! each other and with a direct call to `/gateway/v1/check`.

#[path = "../../portcullis-server/tests/common/mod.rs"]
mod common;
mod support;

use common::{TestApp, claims};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use support::{portcullis, stderr, stdout};
use tokio::io::AsyncWriteExt;

struct World {
    app: TestApp,
    org: String,
    /// The app the token belongs to: scopes read + write, read access to the sandbox.
    client_id: String,
    secret: String,
    /// Another app of the same org.
    other_client: String,
    /// Needs the `read` scope, product `events`, sandbox `prod`.
    resource: String,
    token: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let org = app.create_org(&["events"], &["prod"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create_app = |name: &'static str| {
        app.call(
            Method::POST,
            "/admin/v1/apps",
            Some(
                json!({"org_id": org, "name": name, "scopes": ["read", "write"],
                "products": ["events"], "sandboxes": {"prod": "read"}}),
            ),
        )
    };
    let (status, caller) = create_app("caller").await;
    assert_eq!(status, StatusCode::CREATED, "{caller}");
    let (_, other) = create_app("other").await;
    let client_id = caller["client_id"].as_str().unwrap().to_owned();
    let (_, secret) = app.create_secret(&client_id).await;
    let (status, resource) = app
        .call(
            Method::POST,
            &format!("/admin/v1/orgs/{org}/resources"),
            Some(
                json!({"name": "datastream", "sandbox": "prod", "product": "events",
                "scopes": ["read"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resource}");
    let token = app.access_token(&client_id, &secret, None).await;
    World {
        org,
        client_id,
        secret,
        other_client: other["client_id"].as_str().unwrap().to_owned(),
        resource: resource["id"].as_str().unwrap().to_owned(),
        token,
        app,
    }
}

impl World {
    fn data_dir(&self) -> PathBuf {
        self.app.data_dir.path().join("data")
    }

    /// `--data-dir`, and `--database-url` when the server's store is PostgreSQL (the
    /// harness under `PORTCULLIS_TEST_BACKEND=postgres`): where the CLI finds its data.
    fn data_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--data-dir".into(), self.data_dir().into_os_string()];
        if let Some(url) = &self.app.database_url {
            args.extend(["--database-url".into(), url.into()]);
        }
        args
    }

    /// `--token`, `--api-key`, `--org` as a well-behaved client sends them.
    fn good(&self) -> Vec<String> {
        self.sent_with(&self.client_id)
    }

    /// The token and the org, with `api_key` as x-api-key.
    fn sent_with(&self, api_key: &str) -> Vec<String> {
        strings(&[
            "--token",
            &self.token,
            "--api-key",
            api_key,
            "--org",
            &self.org,
        ])
    }

    /// `explain` from the data directory, as the server's issuer, with `stdin`.
    async fn here(&self, args: &[String], stdin: &str) -> Output {
        let mut cmd = portcullis();
        cmd.args(["explain", "--resource", &self.resource, "--issuer"])
            .arg(&self.app.issuer)
            .args(self.data_args())
            .args(args);
        explain(cmd, stdin).await
    }

    /// `explain --server` against the running server.
    async fn there(&self, args: &[String]) -> Output {
        let mut cmd = portcullis();
        cmd.args([
            "explain",
            "--resource",
            &self.resource,
            "--server",
            &self.app.base,
        ])
        .args(args);
        explain(cmd, "").await
    }
}

/// Run the binary without blocking the runtime the in-process server answers on.
async fn explain(mut cmd: std::process::Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that does not read stdin may have exited already: that is its business.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_request_shows_the_token_and_the_upstream_headers() {
    let w = world().await;
    let out = w.here(&w.good(), "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("decoded without verification"), "{text}");
    assert!(
        text.contains(&format!("{}…", &w.token[..12])) && !text.contains(&w.token[..13]),
        "the token is shown shortened only:\n{text}"
    );
    assert!(
        text.contains(&format!("client_id  {}", w.client_id)),
        "{text}"
    );
    assert!(text.contains("typ at+jwt"), "{text}");
    assert!(text.contains("(expires in "), "{text}");
    assert!(text.contains("ALLOWED (200)"), "{text}");
    assert!(text.contains("x-portcullis-scope: read write"), "{text}");
    assert!(
        text.contains(&format!("x-portcullis-client-id: {}", w.client_id)),
        "{text}"
    );
    assert!(text.contains("x-portcullis-authenticated: true"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_apps_api_key_is_denied_with_403003_naming_the_tokens_client() {
    let w = world().await;
    let out = w.here(&w.sent_with(&w.other_client), "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("DENIED (403): 403003 Api Key is invalid"),
        "{text}"
    );
    let detail = text
        .lines()
        .find(|l| l.contains("another application's API key"))
        .unwrap_or_else(|| panic!("no detail in:\n{text}"));
    assert!(detail.contains(&w.client_id), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn now_reproduces_the_decision_after_and_before_expiry() {
    let w = world().await;
    let exp = claims(&w.token)["exp"].as_i64().unwrap();
    let at = |t: i64| {
        let mut args = w.good();
        args.extend(["--now".to_owned(), t.to_string()]);
        args
    };
    let out = w.here(&at(exp + 42), "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("DENIED (401): EXEG-0503-401 Invalid authorization token"),
        "{text}"
    );
    assert!(text.contains(", 42 s ago. Request a new token."), "{text}");
    assert!(text.contains("(expired 42 s ago)"), "{text}");

    let out = w.here(&at(exp - 1), "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("(expires in 1 s)"),
        "{}",
        stdout(&out)
    );

    // --now is for the data directory only.
    let mut args = w.good();
    args.extend(["--now".to_owned(), exp.to_string()]);
    let out = w.there(&args).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_holds_the_token_and_the_servers_own_detail() {
    let w = world().await;
    let mut args = w.good();
    args.push("--json".into());
    let out = w.here(&args, "").await;
    assert_eq!(out.status.code(), Some(0));
    let v = json_of(&out);
    let token_claims = claims(&w.token);
    assert_eq!(v["token"]["verified"], false);
    assert_eq!(v["token"]["claims"], token_claims);
    assert_eq!(
        v["token"]["shortened"],
        format!("{}…", &w.token[..12]).as_str()
    );
    assert_eq!(v["token"]["header"]["typ"], "at+jwt");
    assert_eq!(
        v["decision"],
        json!({"allowed": true, "status": 200, "code": null, "title": null, "detail": null,
            "headers": {"x-portcullis-authenticated": "true",
                "x-portcullis-client-id": w.client_id, "x-portcullis-org": w.org,
                "x-portcullis-scope": "read write"}})
    );
    assert!(
        !stdout(&out).contains(&w.token),
        "the whole token is printed"
    );

    // A denial's detail is the one the gateway gives the client.
    let direct = w
        .app
        .http
        .get(
            w.app
                .url(&format!("/gateway/v1/check?resource={}", w.resource)),
        )
        .bearer_auth(&w.token)
        .header("x-api-key", &w.other_client)
        .header("x-gw-ims-org-id", &w.org)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::FORBIDDEN);
    let problem: Value = direct.json().await.unwrap();
    let mut args = w.sent_with(&w.other_client);
    args.push("--json".into());
    let out = w.here(&args, "").await;
    assert_eq!(out.status.code(), Some(1));
    let d = &json_of(&out)["decision"];
    assert_eq!(d["allowed"], false);
    assert_eq!(d["status"], 403);
    for key in ["code", "title", "detail"] {
        assert_eq!(d[key], problem[key], "{key}");
    }
    assert_eq!(d["headers"]["x-portcullis-code"], "403003");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_and_the_data_directory_give_the_same_answers() {
    let w = world().await;
    // One character of the signature changed: well-formed, but not signed by the server.
    let mut forged = w.token.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let json = |mut args: Vec<String>| {
        args.push("--json".into());
        args
    };
    let also = |extra: &[&str]| {
        let mut args = w.good();
        args.extend(strings(extra));
        json(args)
    };
    let cases = [
        ("allowed", json(w.good())),
        ("other app's key", json(w.sent_with(&w.other_client))),
        (
            "no org header",
            json(strings(&["--token", &w.token, "--api-key", &w.client_id])),
        ),
        (
            "other org",
            json(strings(&[
                "--token",
                &w.token,
                "--api-key",
                &w.client_id,
                "--org",
                "0000000000000000DEADBEEF@Org",
            ])),
        ),
        ("a write, read-only sandbox", also(&["--method", "POST"])),
        ("no credentials", json(vec![])),
        (
            "Authentication typo",
            json(strings(&["-H", "Authentication: Bearar x"])),
        ),
        (
            "a forged token",
            json(strings(&[
                "--token",
                &forged,
                "--api-key",
                &w.client_id,
                "--org",
                &w.org,
            ])),
        ),
    ];
    let mut codes = Vec::new();
    for (case, args) in &cases {
        let here = w.here(args, "").await;
        let there = w.there(args).await;
        assert_eq!(
            here.status.code(),
            there.status.code(),
            "{case}: {}{}",
            stderr(&here),
            stderr(&there)
        );
        let (h, t) = (json_of(&here), json_of(&there));
        assert_eq!(h["decision"], t["decision"], "{case}");
        assert_eq!(h["token"]["claims"], t["token"]["claims"], "{case}");
        assert_eq!(t["source"]["server"], w.app.base.as_str());
        codes.push(h["decision"]["code"].clone());
    }
    assert_eq!(
        codes,
        [
            Value::Null,
            "403003".into(),
            "EXEG-0500-401".into(),
            "PCS-0403-403".into(),
            "EXEG-0506-401".into(),
            "EXEG-0500-401".into(),
            "EXEG-0500-401".into(),
            "EXEG-0502-401".into(),
        ],
        "the cases cover what they say"
    );

    // The text of a server's answer names where it came from.
    let out = w.there(&w.good()).await;
    assert!(
        stdout(&out).contains(&format!("Decision of the server at {}:", w.app.base)),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_and_the_secret_can_come_from_stdin_and_the_secret_is_never_shown() {
    let w = world().await;
    let args = strings(&["--token", "-", "--api-key", &w.client_id, "--org", &w.org]);
    let out = w.here(&args, &format!("{}\n", w.token)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("ALLOWED"));
    assert!(stdout(&out).contains(&format!("client_id  {}", w.client_id)));

    let args = strings(&["--user-key", &w.client_id, "--secret", "-"]);
    // From the data directory, the question is only whether the credentials are good.
    let here = w.here(&args, &format!("{}\n", w.secret)).await;
    // The live server is asked over plain HTTP, where a secret is refused (TLS only).
    let there = {
        let mut cmd = portcullis();
        cmd.args([
            "explain",
            "--resource",
            &w.resource,
            "--server",
            &w.app.base,
        ])
        .args(&args);
        explain(cmd, &format!("{}\n", w.secret)).await
    };
    for (out, code) in [(here, 0), (there, 1)] {
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(code), "{all}");
        assert!(all.contains("Decision"), "{all}");
        assert!(!all.contains(&w.secret[5..]), "the secret is shown: {all}");
        if code == 1 {
            assert!(
                all.contains("EXEG-0500-401") && all.contains("TLS"),
                "{all}"
            );
        } else {
            assert!(all.contains("ALLOWED"), "{all}");
        }
    }

    // Nothing on stdin is a usage error, not an empty token.
    let args = strings(&["--token", "-", "--api-key", &w.client_id, "--org", &w.org]);
    let out = w.here(&args, "").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("stdin"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn deciding_as_another_issuer_says_to_pass_the_servers() {
    let w = world().await;
    let mut cmd = portcullis();
    // No --issuer: the default, http://127.0.0.1:8080, is not this server's.
    cmd.args(["explain", "--resource", &w.resource])
        .args(w.data_args())
        .args(w.good());
    let out = explain(cmd, "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(text.contains("EXEG-0502-401"), "{text}");
    assert!(
        text.contains("as issuer http://127.0.0.1:8080")
            && text.contains(&format!("pass --issuer {}", w.app.issuer)),
        "{text}"
    );
}

#[test]
fn a_missing_data_directory_exits_with_2_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let out = support::run(
        portcullis()
            .args(["explain", "--resource", "res_x", "--data-dir"])
            .arg(&missing),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    assert!(
        err.contains("--data-dir") && err.contains("--server"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    assert!(!missing.exists(), "explain created the data directory");
}

#[test]
fn an_unreachable_server_exits_with_2_and_says_what_to_check() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = support::run(portcullis().args(["explain", "--resource", "res_x", "--server", &url]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach the server at {url}")) && err.contains("--server"),
        "{err}"
    );

    let out = support::run(portcullis().args([
        "explain",
        "--resource",
        "res_x",
        "--server",
        "https://auth.example.com",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("plain HTTP"), "{}", stderr(&out));
}

#[test]
fn explain_help_documents_every_flag_and_reading_secrets_from_stdin() {
    let out = support::run(portcullis().args(["explain", "--help"]));
    assert!(out.status.success());
    // Unwrapped: a default may be split across lines.
    let help = stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for flag in [
        "--resource",
        "--method",
        "--token",
        "--user-key",
        "--secret",
        "--api-key",
        "--org",
        "--header",
        "--server",
        "--data-dir",
        "--issuer",
        "--now",
        "--json",
        "PORTCULLIS_DATA_DIR",
        "PORTCULLIS_ISSUER",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    assert!(
        help.contains("[default: ./portcullis-data]")
            && help.contains("[default: http://<listen address>]"),
        "{help}"
    );
    assert!(help.matches("from stdin").count() >= 2, "{help}");
    assert!(help.contains("0 allowed, 1 denied, 2"), "{help}");
}

/// A DPoP-bound token and its proof: `explain` decodes the proof beside the token, says
/// whether its key is the token's, and the decision (here and from the server) names the
/// check that fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_dpop_proof_is_decoded_beside_the_token_and_its_failing_check_named() {
    let w = world().await;
    let key = common::DpopKey::new();
    let r = w
        .app
        .dpop_token(
            &w.client_id,
            &w.secret,
            Some(&key.proof("POST", &w.app.token_endpoint(), None, None)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/orders/7", w.app.base);
    let args = |proof: &str, url: &str| {
        strings(&[
            "--token",
            &token,
            "--dpop",
            proof,
            "--url",
            url,
            "--api-key",
            &w.client_id,
            "--org",
            &w.org,
        ])
    };

    let good = key.proof("GET", &url, Some(&token), None);
    let out = w.here(&args(&good, &url), "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("DPoP proof"), "{text}");
    assert!(text.contains("(the key the token is bound to)"), "{text}");
    assert!(text.contains("ath        the hash of the token"), "{text}");
    assert!(!text.contains(&good[..13]), "the proof is shown shortened");

    // Another key's proof: named in the decoding and refused with its code.
    let thief = common::DpopKey::new();
    let stolen = thief.proof("GET", &url, Some(&token), None);
    let out = w.here(&args(&stolen, &url), "").await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT the key the token is bound to"), "{text}");
    assert!(text.contains("PCS-0454-401"), "{text}");

    // A proof for another URL, asked of the server (which spends proofs: a fresh one).
    let elsewhere = key.proof(
        "GET",
        &format!("{}/orders/8", w.app.base),
        Some(&token),
        None,
    );
    let out = w.there(&args(&elsewhere, &url)).await;
    let v = {
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
        assert!(text.contains("PCS-0449-401"), "{text}");
        text
    };
    assert!(v.contains("/orders/8"), "the decoded htu is shown: {v}");
    let fresh = key.proof("GET", &url, Some(&token), None);
    let out = w.there(&args(&fresh, &url)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
