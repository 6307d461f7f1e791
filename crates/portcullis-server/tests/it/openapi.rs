//! The OpenAPI document of the admin API: the copy in `docs/openapi.json` matches what the
//! handlers generate, it documents every route the router serves, and the running server
//! serves the same document.
//!
//! After changing the admin API, regenerate the copy with
//! `UPDATE_OPENAPI=1 cargo test -p portcullis-server --test it openapi::`.

use crate::common;

use common::*;
use portcullis_server::admin::openapi::document;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(|p| p.parent())
        .expect("the workspace root");
    root.join("docs").join("openapi.json")
}

/// The committed file's exact contents: the generated document and a final newline.
fn generated_file() -> String {
    format!("{}\n", document())
}

#[test]
fn docs_openapi_json_matches_the_generated_document() {
    let path = committed_path();
    let generated = generated_file();
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let Ok(committed) = std::fs::read_to_string(&path) else {
        panic!(
            "{} is missing. Generate it with:\n\n    UPDATE_OPENAPI=1 cargo test -p portcullis-server --test it openapi::\n",
            path.display()
        );
    };
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()) + 1);
        panic!(
            "{} is out of date with the admin API (first difference at line {line}).\n\
             Regenerate it with:\n\n    UPDATE_OPENAPI=1 cargo test -p portcullis-server --test it openapi::\n\n\
             and commit the result.",
            path.display()
        );
    }
}

/// `path → methods` of every `.route(...)` in the admin router's source.
fn routes_in_router_source() -> BTreeMap<String, BTreeSet<String>> {
    let src = include_str!("../../src/admin/mod.rs");
    let mut out = BTreeMap::new();
    for (start, _) in src.match_indices(".route(") {
        let rest = &src[start + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find_map(|(i, ch)| {
                match ch {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })
            .expect("a closed .route( call");
        let args = &rest[..end];
        let q1 = args.find('"').expect("a path literal");
        let q2 = q1 + 1 + args[q1 + 1..].find('"').unwrap();
        let path = &args[q1 + 1..q2];
        let handlers = &args[q2 + 1..];
        let methods: BTreeSet<String> = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| {
                handlers.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                })
            })
            .map(str::to_owned)
            .collect();
        assert!(!methods.is_empty(), "no method found for route {path}");
        out.insert(format!("/admin/v1{path}"), methods);
    }
    out
}

#[test]
fn the_document_is_openapi_3_1_and_describes_every_admin_route() {
    let doc: Value = serde_json::from_str(&document()).unwrap();
    let version = doc["openapi"].as_str().expect("an openapi field");
    assert!(version.starts_with("3.1"), "OpenAPI {version}");

    let routes = routes_in_router_source();
    assert!(
        routes.len() >= 10,
        "the router source was parsed: {routes:?}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut missing = Vec::new();
    for (path, methods) in &routes {
        if path == "/admin/v1/openapi.json" {
            continue;
        }
        for m in methods {
            if paths.get(path).and_then(|p| p.get(m)).is_none() {
                missing.push(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an OpenAPI operation: {missing:?}"
    );
    // And nothing documented that the router does not serve.
    for path in paths.keys() {
        assert!(
            routes.contains_key(path),
            "{path} is documented but not routed"
        );
    }
    // A path parameter is a `{name}` of its path; everything else (paging, filters) is
    // in the query, and optional there.
    let mut misplaced = Vec::new();
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                let in_path = path.contains(&format!("{{{name}}}"));
                let expected = if in_path { "path" } else { "query" };
                if p["in"] != expected {
                    misplaced.push(format!("{method} {path}: '{name}' is in {}", p["in"]));
                }
            }
        }
    }
    assert!(misplaced.is_empty(), "misplaced parameters: {misplaced:#?}");
}

#[tokio::test]
async fn the_running_server_serves_the_same_document() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = r.json().await.unwrap();
    let generated: Value = serde_json::from_str(&document()).unwrap();
    assert_eq!(served, generated);
}

/// The served document, as a client generator would fetch it.
async fn served_document() -> String {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(app.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    r.text().await.unwrap()
}

/// Client generators name their methods after `operationId`, which OpenAPI requires to be
/// unique across the document: every operation has one, and no two share it. And they
/// parse error bodies by the media type documented: `application/problem+json`.
#[tokio::test]
async fn every_operation_has_a_unique_operation_id() {
    let doc: Value = serde_json::from_str(&served_document().await).unwrap();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut count = 0;
    for (path, methods) in doc["paths"].as_object().expect("paths") {
        for (method, op) in methods.as_object().unwrap() {
            count += 1;
            let at = format!("{} {path}", method.to_uppercase());
            // Errors are documented as what they are: problem+json bodies.
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                if status.starts_with('4')
                    && let Some(content) = response["content"].as_object()
                    && !content.contains_key("application/problem+json")
                {
                    problems.push(format!("{at} {status} is not application/problem+json"));
                }
            }
            match op["operationId"].as_str() {
                None => problems.push(format!("{at} has no operationId")),
                Some(id) => {
                    if let Some(other) = seen.insert(id.to_owned(), at.clone()) {
                        problems.push(format!("{id} is both {other} and {at}"));
                    }
                }
            }
        }
    }
    assert!(count >= 60, "only {count} operations were read");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// An independent validator (Python's openapi-spec-validator, against the OpenAPI 3.1
/// schema) accepts the served document.
#[tokio::test]
async fn the_served_document_passes_openapi_spec_validator() {
    let Some(python) = python_with("openapi_spec_validator") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, served_document().await).unwrap();
    let script = r#"
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
with open(sys.argv[1]) as f:
    spec = json.load(f)
try:
    validate(spec)
except OpenAPIValidationError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
print("valid")
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
}
