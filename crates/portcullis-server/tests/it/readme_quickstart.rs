//! The README's quickstart, run as written against a real server: the shell blocks are
//! taken from README.md, only the `ADMIN=` and `API=` lines are pointed at this test's
//! server. Needs `bash`, `curl` and `jq` (CI installs them).

use crate::common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md")
}

/// The fenced blocks of `lang` in the section that starts with `heading`.
fn blocks(text: &str, heading: &str, lang: &str) -> Vec<String> {
    let start = text.find(heading).expect("the quickstart heading");
    let section = &text[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut out = Vec::new();
    let mut rest = section;
    let fence = format!("```{lang}\n");
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```").expect("closed fence");
        out.push(body[..end].to_owned());
        rest = &body[end + 3..];
    }
    out
}

fn run(script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the quickstart failed:\n{}\nstderr: {}",
        script,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A README block with its `ADMIN=` and `API=` lines pointed at `admin` and `base`.
fn point(block: &str, admin: &str, base: &str) -> String {
    block
        .lines()
        .map(|l| {
            if l.starts_with("ADMIN=") {
                format!("ADMIN={admin}")
            } else if l.starts_with("API=") {
                format!("API={base}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// Multi-threaded: `run` blocks this thread on curl while the server must keep serving.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quickstart_works_as_written() {
    for tool in ["curl", "jq"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is needed by the README quickstart test; install it (apt-get install {tool})"
        );
    }
    let app = TestApp::spawn().await;
    let text = readme();
    let sh = blocks(&text, "## Quickstart", "sh");
    let json = blocks(&text, "## Quickstart", "json");
    assert_eq!(sh.len(), 2, "the quickstart has two shell blocks");
    let point = |block: &str| point(block, ADMIN_TOKEN, &app.base);
    let first = point(&sh[0]);
    assert!(first.contains(&app.base), "the block sets API=");
    let out = run(&first);
    let shown: Value = serde_json::from_str(&out).expect("introspection prints JSON");
    assert_eq!(shown["active"], true);
    assert_eq!(shown["scope"], "read");
    let documented: Value = serde_json::from_str(&json[0]).expect("the README's JSON parses");
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        keys(&shown),
        keys(&documented),
        "the README shows the fields introspection returns"
    );

    // The revoke block continues in the same shell session as the first.
    let out = run(&format!("{first} >/dev/null\n{}", point(&sh[1])));
    let last = out.lines().last().expect("output");
    let v: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(v, serde_json::json!({"active": false}));
}

/// The check after `API=` stops a reader with a wrong admin token at once, saying so,
/// instead of letting every later step carry `null` to a puzzling `invalid_client`.
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quickstart_says_at_once_when_the_admin_token_is_wrong() {
    let app = TestApp::spawn().await;
    let text = readme();
    let first = &blocks(&text, "## Quickstart", "sh")[0];
    let check = first
        .find("|| echo")
        .expect("the block checks the admin token");
    let setup = &first[..first[check..].find('\n').map_or(first.len(), |n| check + n)];
    let as_reader = |admin: &str| point(setup, admin, &app.base);
    let said = run(&as_reader("pcsa_..."));
    assert!(said.contains("ADMIN token"), "{said}");
    assert_eq!(
        run(&as_reader(ADMIN_TOKEN)),
        "",
        "a good token passes quietly"
    );
}
