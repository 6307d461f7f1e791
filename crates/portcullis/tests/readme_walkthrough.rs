//! The README's first steps, run as written against the real binary: "Protect your first
//! API" (its shell blocks, with Debian's real nginx in front of the stand-in API, and
//! `portcullis explain`), and "First sign-in to the console" (the command the first start
//! prints, then the link it prints). Only the addresses and the admin token are pointed at
//! this test's server; everything else is the README's text.
//!
//! Needs `bash`, `curl`, `jq` and `/usr/sbin/nginx` (`.ci/run` installs them). Without
//! nginx the walkthrough test prints why and passes, except under CI, where it fails.

#[path = "../../portcullis-server/tests/support/browser.rs"]
mod browser;
mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const NGINX: &str = "/usr/sbin/nginx";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

/// The fenced blocks of `lang` in the section that starts with `heading` (up to the next
/// `## ` heading).
fn blocks(text: &str, heading: &str, lang: &str) -> Vec<String> {
    let start = text.find(heading).expect("the section's heading");
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let fence = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = section;
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```").expect("closed fence");
        // Blocks inside a list item are indented; the shell does not mind, the
        // `ADMIN=` / `API=` matching below does.
        out.push(
            body[..end]
                .lines()
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join("\n"),
        );
        rest = &body[end + 3..];
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// bash with the directory of the binary under test first on PATH (the README calls it
/// `portcullis`), run from the repository's root (the README includes
/// `$PWD/deploy/nginx/portcullis.conf`).
fn bash(script: &str) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_portcullis"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:/usr/sbin:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(repo_root())
        .env("PATH", path)
        .output()
        .expect("bash runs")
}

fn tools_present() {
    for tool in ["curl", "jq"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is needed by the README walkthrough test; install it (apt-get install {tool})"
        );
    }
}

fn nginx_installed() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{NGINX} is missing under CI: .ci/run should have installed the Debian package nginx"
    );
    eprintln!("skipped: {NGINX} is not installed (apt-get install nginx)");
    false
}

#[test]
fn protect_your_first_api_works_as_written_behind_real_nginx() {
    tools_present();
    if !nginx_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let admin = "readme-walkthrough-admin-token-0123456789";
    let server =
        Server::start(serve_cmd(&dir.path().join("data")).env("PORTCULLIS_ADMIN_TOKEN", admin));
    let api = format!("http://{}", server.addr);
    let (entrance, upstream) = (free_port(), free_port());

    let text = readme();
    let sh = blocks(&text, "## Protect your first API", "sh");
    let json_blocks = blocks(&text, "## Protect your first API", "json");
    assert_eq!(sh.len(), 4, "the walkthrough has four shell blocks");
    let point = |block: &str| -> String {
        block
            .lines()
            .map(|l| {
                if l.starts_with("ADMIN=") {
                    format!("ADMIN={admin}")
                } else if l.starts_with("API=") {
                    format!("API={api}")
                } else {
                    l.replace("127.0.0.1:8080", &server.addr)
                        .replace("127.0.0.1:8000", &format!("127.0.0.1:{entrance}"))
                        .replace("127.0.0.1:9000", &format!("127.0.0.1:{upstream}"))
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, block) in sh.iter().enumerate() {
        assert!(
            block.contains("127.0.0.1:") || i > 0,
            "the first block names the addresses"
        );
    }
    // nginx is stopped however the script ends; the denial block's explain exits 1 by
    // design ("denied"), so it alone runs without `set -e`.
    let script = format!(
        "set -euo pipefail\n\
         trap 'if [ -n \"${{DEMO:-}}\" ] && [ -f \"$DEMO/nginx.pid\" ]; then kill $(cat \"$DEMO/nginx.pid\"); fi' EXIT\n\
         {}\n{}\necho \"client=$CLIENT_ID\"\necho '--- denied'\nset +e\n{}\necho \"explain-exit=$?\"\n\
         set -e\necho '--- written'\n{}\n",
        point(&sh[0]),
        point(&sh[1]),
        point(&sh[2]),
        point(&sh[3]),
    );
    let out = bash(&script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(out.status.success(), "the walkthrough failed:\n{context}");

    let (allowed, denied) = stdout.split_once("--- denied\n").expect(&context);
    let mut lines = allowed.lines();
    let answer: Value =
        serde_json::from_str(lines.next().expect(&context)).expect("the API answers JSON");
    let client = lines
        .next()
        .and_then(|l| l.strip_prefix("client="))
        .expect(&context);
    assert!(!client.is_empty(), "{context}");
    // The API was called through nginx, and told who called.
    assert_eq!(answer, json!({"orders": [], "caller": client}), "{context}");
    let documented: Value =
        serde_json::from_str(&json_blocks[0]).expect("the README's answer parses");
    assert_eq!(
        documented.as_object().unwrap().keys().collect::<Vec<_>>(),
        answer.as_object().unwrap().keys().collect::<Vec<_>>(),
        "the README shows the API's answer"
    );

    let (denied, written) = denied.split_once("--- written\n").expect(&context);
    // Once the app may write to prod, the same token's write reaches the API.
    let wrote: Value = serde_json::from_str(written.trim()).expect(&context);
    assert_eq!(wrote, json!({"orders": [], "caller": client}), "{context}");

    // The write: refused by nginx with Portcullis's problem, and explained.
    let problem_end = denied.find("\n}\n").expect(&context) + 3;
    let problem: Value = serde_json::from_str(&denied[..problem_end]).expect(&context);
    assert_eq!(problem["code"], "EXEG-0506-401", "{context}");
    assert_eq!(problem["status"], 401, "{context}");
    assert_eq!(problem["title"], "Sandbox not accessible for write");
    let explained = &denied[problem_end..];
    assert!(
        explained.contains("DENIED (401): EXEG-0506-401 Sandbox not accessible for write"),
        "{context}"
    );
    assert!(explained.contains("explain-exit=1"), "{context}");
    assert!(
        !explained.contains(admin),
        "explain never shows the admin token"
    );
}

/// Choose a password with a one-time link's token, as the console's page does: the status.
async fn accept(http: &reqwest::Client, base: &str, token: &str, password: &str) -> u16 {
    http.post(format!("{base}/admin/v1/user-links/current/accept"))
        .bearer_auth(token)
        .json(&json!({"password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A fresh server, and step 1 of what its first start printed, run as printed with the
/// reader's own email: the server, its base URL and the one-time link.
fn first_start_and_step_one(data: &Path, email: &str) -> (Server, String, String) {
    let server = Server::start(&mut serve_cmd(data));
    let startup = server.startup.join("\n");
    let command = server
        .startup
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("portcullis admin create "))
        .unwrap_or_else(|| panic!("the first start prints the command:\n{startup}"))
        .to_owned();
    let base = format!("http://{}", server.addr);
    assert!(
        startup.contains(&format!("Console: {base}/console/")),
        "{startup}"
    );
    assert!(command.contains(&format!("--issuer {base}")), "{command}");
    let command = command.replace("you@example.com", email);
    let out = bash(&command);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{command}\n{stdout}\n{stderr}");
    let link = stdout.trim().to_owned();
    assert!(
        link.starts_with(&format!("{base}/console/invite/pcsl_")),
        "a link to this server's console: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{} is an admin of the organization 'My organization'",
            email.to_lowercase()
        )),
        "{stderr}"
    );
    (server, base, link)
}

/// The first start prints how to get a console login; following it (the command, then
/// the link) gives a session that administers the organization.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_says_how_to_sign_in_and_following_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, base, link) = first_start_and_step_one(&data, "Ada@Example.com");
    let link = link.as_str();
    let token = link.rsplit('/').next().unwrap();

    // Step 2: the link's page, then the password, then a session.
    let http = reqwest::Client::new();
    let page = http.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("ada@example.com"));
    assert_eq!(
        accept(&http, &base, token, "a good long password").await,
        200
    );
    let session: Value = http
        .post(format!("{base}/admin/v1/sessions"))
        .json(&json!({"email": "ada@example.com", "password": "a good long password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = session["token"].as_str().expect("a session token");
    let orgs: Value = http
        .get(format!("{base}/admin/v1/orgs"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = orgs["items"]
        .as_array()
        .expect("a page of orgs")
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["My organization"]);

    // The first administrator is a platform administrator: they may create organizations.
    let me: Value = http
        .get(format!("{base}/admin/v1/sessions/current"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["platform_admin"], true, "{me}");
    let created = http
        .post(format!("{base}/admin/v1/orgs"))
        .bearer_auth(session)
        .json(&json!({"name": "Second organization"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // The link was the only way in, and it is spent.
    assert_eq!(
        accept(&http, &base, token, "another long password").await,
        410
    );

    // Once someone can sign in, the hint is gone; running the command again for the same
    // email and org gives a reset link, not a second user or org.
    let (_, _) = server.stop();
    let server = Server::start(&mut serve_cmd(&data));
    let startup = server.startup.join("\n");
    assert!(!startup.contains("admin create"), "{startup}");
    let out = bash(&format!(
        "portcullis admin create --email ada@example.com --org 'My organization' --data-dir {} --issuer {base}",
        data.display()
    ));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .trim()
            .starts_with(&format!("{base}/console/reset/pcsl_")),
        "{stdout}"
    );

    // A second administrator is a platform administrator only when asked for.
    for (email, flag, platform) in [
        ("bob@example.com", "", false),
        ("cy@example.com", " --platform", true),
    ] {
        let out = bash(&format!(
            "portcullis admin create --email {email} --org 'My organization'{flag} --data-dir {} --issuer {base}",
            data.display()
        ));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains(&format!("{email} is a platform administrator")),
            platform,
            "{stderr}"
        );
    }
}

#[test]
fn admin_create_refuses_what_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // No data directory yet: it says which flag to pass.
    let out = run(portcullis()
        .args([
            "admin",
            "create",
            "--email",
            "a@example.com",
            "--org",
            "Acme",
            "--data-dir",
        ])
        .arg(&data));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--data-dir"), "{}", stderr(&out));
    // Not an email: a usage error, before anything is opened.
    let out = run(portcullis()
        .args([
            "admin",
            "create",
            "--email",
            "not-an-email",
            "--org",
            "Acme",
            "--data-dir",
        ])
        .arg(&data));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not an email address"),
        "{}",
        stderr(&out)
    );
}

/// The same two steps in real Chromium: the printed command, then the printed link opened
/// in the browser, a password chosen there, and a sign-in that lands on the organization.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_sign_in_in_chromium_follows_what_the_first_start_printed() {
    use browser::*;
    if !browser_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, link) =
        first_start_and_step_one(&dir.path().join("data"), "ada@example.com");
    let driver = Driver::start().await;
    let c = driver.browser().await;
    c.goto(&link).await.unwrap();
    wait_for_title(&c, "Welcome: choose your password").await;
    type_into(&c, "#password", "a good long password").await;
    type_into(&c, "#confirm", "a good long password").await;
    click_button(&c, "Set password").await;
    wait_for_title(&c, "Your password is set").await;
    c.goto(&format!("{base}/console/")).await.unwrap();
    wait_for_title(&c, "Sign in").await;
    type_into(&c, "#email", "ada@example.com").await;
    type_into(&c, "#password", "a good long password").await;
    click_button(&c, "Sign in").await;
    wait_for_title(&c, "Your organizations").await;
    click_link(&c, "My organization").await;
    wait_for_title(&c, "My organization").await;
    shot(&c, "50-first-sign-in").await;
    c.close().await.unwrap();
}
