//! Black-box tests of the `portcullis` binary as an operator meets it: its help, its config
//! file reference, its exit codes and messages, the precedence of its settings, and one
//! whole life of `serve` (first start, bootstrap token, `keys` commands beside it, SIGTERM,
//! second start). The HTTP API itself is tested in `portcullis-server`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Server, WAIT, portcullis, run, serve_cmd, stderr, stdout};

const SETTINGS: [&str; 9] = [
    "listen",
    "issuer",
    "data_dir",
    "database_url",
    "master_key_file",
    "signing_alg",
    "jwks_max_age",
    "log_format",
    "log_level",
];

fn flag(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

#[test]
fn serve_help_mentions_every_flag_and_its_variable() {
    let out = run(portcullis().args(["serve", "--help"]));
    assert!(out.status.success());
    let help = stdout(&out);
    for key in SETTINGS.iter().chain(&["config"]) {
        assert!(help.contains(&flag(key)), "{} missing:\n{help}", flag(key));
        let env = format!("PORTCULLIS_{}", key.to_uppercase());
        assert!(help.contains(&env), "{env} missing:\n{help}");
    }
    for secret in ["PORTCULLIS_MASTER_KEY ", "PORTCULLIS_ADMIN_TOKEN"] {
        assert!(help.contains(secret), "{secret} missing:\n{help}");
    }
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
}

/// `config default` with every `# key = value` line made live.
fn uncommented_reference() -> String {
    let out = run(portcullis().args(["config", "default"]));
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest)
                if SETTINGS
                    .iter()
                    .any(|k| rest.starts_with(&format!("{k} = "))) =>
            {
                rest
            }
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn config_default_is_a_valid_config_file_with_every_key() {
    let text = uncommented_reference();
    let table: toml::Table = toml::from_str(&text).expect("the reference parses as TOML");
    let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = SETTINGS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected);

    // The binary accepts it: the command gets past the settings to the missing data (exit 1,
    // not 2), looking where the file's example values say.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("portcullis.toml"), &text).unwrap();
    let out = run(portcullis().current_dir(dir.path()).args([
        "keys",
        "list",
        "--config",
        "portcullis.toml",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/etc/portcullis/master.key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn keys_list_without_data_fails_with_1_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let out = run(portcullis()
        .args(["keys", "list", "--data-dir"])
        .arg(&missing));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&*missing.to_string_lossy()), "{err}");
    assert!(
        err.contains("--data-dir") && err.contains("portcullis serve"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_bad_signing_alg_exits_with_2_from_any_source() {
    let out = run(portcullis().args(["serve", "--signing-alg", "HS256"]));
    assert_eq!(out.status.code(), Some(2), "flag: {}", stderr(&out));
    assert!(stderr(&out).contains("HS256"));

    let out = run(portcullis()
        .arg("serve")
        .env("PORTCULLIS_SIGNING_ALG", "HS256"));
    assert_eq!(out.status.code(), Some(2), "env: {}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "signing_alg = \"HS256\"\n").unwrap();
    let out = run(portcullis().arg("serve").arg("--config").arg(&file));
    assert_eq!(out.status.code(), Some(2), "file: {}", stderr(&out));
    assert!(stderr(&out).contains("line 1") && stderr(&out).contains("HS256"));
}

#[test]
fn an_unknown_key_in_the_config_file_exits_with_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let out = run(portcullis().arg("serve").arg("--config").arg(&file));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: ") && err.contains("`listen_port`"),
        "{err}"
    );
}

#[test]
fn flags_beat_variables_beat_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "data_dir = \"/from/file\"\n").unwrap();
    let keys_list = || {
        let mut cmd = portcullis();
        cmd.args(["keys", "list", "--config"]).arg(&file);
        cmd
    };

    let out = run(&mut keys_list());
    assert!(stderr(&out).contains("/from/file"), "{}", stderr(&out));

    let out = run(keys_list().env("PORTCULLIS_DATA_DIR", "/from/env"));
    assert!(stderr(&out).contains("/from/env"), "{}", stderr(&out));

    let out = run(keys_list()
        .env("PORTCULLIS_DATA_DIR", "/from/env")
        .args(["--data-dir", "/from/flag"]));
    assert!(stderr(&out).contains("/from/flag"), "{}", stderr(&out));

    // The file itself can come from the environment.
    let out = run(portcullis()
        .args(["keys", "list"])
        .env("PORTCULLIS_CONFIG", &file));
    assert!(stderr(&out).contains("/from/file"), "{}", stderr(&out));
}

/// Status code of `GET path` with a bearer token, over a plain socket.
fn get_status(addr: &str, path: &str, bearer: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}

#[test]
fn serve_writes_the_token_once_works_with_the_keys_commands_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // First start, stderr a pipe (as under a service manager), JSON logs: the generated
    // admin token is not in the log stream but in <data-dir>/admin-token, and it works.
    let server = Server::start(serve_cmd(&data).args(["--log-format", "json"]));
    let startup = server.startup.join("\n");
    let token_file = data.join("admin-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap_or_else(|e| panic!("no {} ({e}); stderr:\n{startup}", token_file.display()));
    let token = token.trim_end_matches('\n');
    assert!(
        token.starts_with("pcsa_") && !token.contains(char::is_whitespace),
        "{token:?}"
    );
    assert!(
        server.startup.iter().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["fields"]["path"] == token_file.display().to_string()
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("bootstrap admin token"))
        }),
        "the log names the file:\n{startup}"
    );
    assert!(
        !startup.contains("Bootstrap admin token (shown once"),
        "{startup}"
    );
    assert_eq!(get_status(&server.addr, "/admin/v1/orgs", token), 200);
    assert_eq!(
        get_status(&server.addr, "/admin/v1/orgs", "pcsa_wrong"),
        401
    );
    // The data directory and the master key are the owner's only.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "data directory mode");
        assert_eq!(mode(&data.join("master.key")), 0o600, "master key mode");
        assert_eq!(mode(&token_file), 0o600, "admin token file mode");
    }

    // The keys commands work on the same data directory while it runs.
    let out = run(portcullis().args(["keys", "list", "--data-dir"]).arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("KID"), "{table}");
    assert!(
        table.contains(" current ") && table.contains(" next "),
        "{table}"
    );

    let out = run(portcullis()
        .args(["keys", "rotate", "--data-dir"])
        .arg(&data));
    assert_eq!(out.status.code(), Some(1), "a fresh next key is too young");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));

    let out = run(portcullis()
        .args(["keys", "rotate", "--force", "--data-dir"])
        .arg(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("retired"), "{}", stdout(&out));

    let (status, rest) = server.stop();
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let all = format!("{startup}\n{}", rest.join("\n"));
    for line in all.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(!line.contains("pcsa_"), "a token in the log: {line}");
    }
    let master_key = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(
        !all.contains(master_key.trim()),
        "the master key leaked:\n{all}"
    );

    // Second start: JSON logs, an operator-chosen token that is never echoed, no banner.
    let chosen = "operator-chosen-admin-token-0123456789";
    let server = Server::start(
        serve_cmd(&data)
            .args(["--log-format", "json"])
            .env("PORTCULLIS_ADMIN_TOKEN", chosen),
    );
    assert_eq!(get_status(&server.addr, "/admin/v1/orgs", chosen), 200);
    assert_eq!(get_status(&server.addr, "/admin/v1/orgs", token), 401);
    let startup = server.startup.clone();
    let (status, rest) = server.stop();
    assert!(status.success());
    // Nothing generated, nothing written: the file is still the first start's.
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim_end(),
        token
    );
    let all: Vec<String> = startup.into_iter().chain(rest).collect();
    for line in &all {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(
            !line.contains(chosen) && !line.contains("pcsa_"),
            "secret in: {line}"
        );
    }
    assert!(all.iter().any(|l| l.contains("shutdown requested")));
    // The chosen token replaced the generated one, and the log says so (without either).
    let replaced = "replaced the stored bootstrap admin token: the old one no longer works";
    assert!(all.iter().any(|l| l.contains(replaced)), "{all:?}");

    // The same token again replaces nothing, and the log is silent about it.
    let server = Server::start(
        serve_cmd(&data)
            .args(["--log-format", "json"])
            .env("PORTCULLIS_ADMIN_TOKEN", chosen),
    );
    assert_eq!(get_status(&server.addr, "/admin/v1/orgs", chosen), 200);
    let startup = server.startup.clone();
    let (status, rest) = server.stop();
    assert!(status.success());
    assert!(!startup.iter().chain(&rest).any(|l| l.contains(replaced)));
}

/// The server's whole log (debug level, JSON) during a full flow — org, app, secret,
/// tokens by both client auth methods, introspection, revocation, a user's sign-in, failed
/// attempts — contains no secret, password, session token, access token or key material.
#[tokio::test(flavor = "multi_thread")]
async fn the_log_of_a_full_flow_holds_no_secret_key_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = "log-test-admin-token-0123456789abcdefghijkl";
    let mut cmd = serve_cmd(&data);
    cmd.args(["--log-format", "json", "--log-level", "debug"])
        .env("PORTCULLIS_ADMIN_TOKEN", admin)
        .env_remove("RUST_LOG");
    let server = Server::start(&mut cmd);
    // A chosen admin token: nothing generated, so nothing written.
    assert!(!data.join("admin-token").exists());
    let api = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value, bearer: &str| {
        http.post(format!("{api}{path}"))
            .bearer_auth(bearer)
            .json(&body)
            .send()
    };

    let org: serde_json::Value = post("/admin/v1/orgs", serde_json::json!({"name": "Acme"}), admin)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let app: serde_json::Value = post(
        "/admin/v1/apps",
        serde_json::json!({"org_id": org_id, "name": "a", "scopes": ["read", "introspect"]}),
        admin,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let cid = app["client_id"].as_str().unwrap().to_owned();
    let created: serde_json::Value = post(
        &format!("/admin/v1/apps/{cid}/secrets"),
        serde_json::json!({}),
        admin,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();

    let basic: serde_json::Value = http
        .post(format!("{api}/oauth/token"))
        .basic_auth(&cid, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = basic["access_token"].as_str().unwrap().to_owned();
    let posted: serde_json::Value = http
        .post(format!("{api}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token2 = posted["access_token"].as_str().unwrap().to_owned();
    let wrong = http
        .post(format!("{api}/oauth/token"))
        .basic_auth(&cid, Some(format!("{secret}x")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for path in ["/oauth/introspect", "/oauth/revoke", "/oauth/introspect"] {
        let r = http
            .post(format!("{api}{path}"))
            .basic_auth(&cid, Some(&secret))
            .form(&[("token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let password = "a long user password 42";
    let user = post(
        "/admin/v1/users",
        serde_json::json!({"email": "dev@example.com", "password": password, "roles": {org_id.clone(): "developer"}}),
        admin,
    )
    .await
    .unwrap();
    assert_eq!(user.status(), 201);
    let session: serde_json::Value = http
        .post(format!("{api}/admin/v1/sessions"))
        .json(&serde_json::json!({"email": "dev@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_token = session["token"].as_str().unwrap().to_owned();
    let bad_login = http
        .post(format!("{api}/admin/v1/sessions"))
        .json(&serde_json::json!({"email": "dev@example.com", "password": "wrong password 123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_login.status(), 401);
    assert_eq!(
        get_status(&server.addr, "/admin/v1/orgs", &session_token),
        200
    );

    let startup = server.startup.clone();
    let (status, rest) = server.stop();
    assert!(status.success());
    let log = [startup, rest].concat().join("\n");
    let master = std::fs::read_to_string(data.join("master.key")).unwrap();
    assert!(
        log.contains("issued access token") && log.contains("client secret created"),
        "the captured log covers the flow:\n{log}"
    );
    let forbidden: Vec<(&str, &str)> = vec![
        ("admin token", admin),
        ("client secret", &secret),
        ("client secret body", &secret[5..]),
        ("access token", &token),
        ("second access token", &token2),
        ("access token signature", token.rsplit('.').next().unwrap()),
        ("password", password),
        ("session token", &session_token),
        ("master key", master.trim()),
    ];
    for (what, value) in forbidden {
        assert!(!log.contains(value), "the log contains the {what}");
    }
    for marker in ["pcss_", "pcsu_", "pcsa_", "PRIVATE KEY"] {
        assert!(!log.contains(marker), "the log contains '{marker}'");
    }
}

/// The credentials file `bench-seed` wrote: (client_id, secret, org, resource) per line.
fn seeded_credentials(path: &Path) -> Vec<[String; 4]> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "four tab-separated fields: {l}");
            [f[0], f[1], f[2], f[3]].map(String::from)
        })
        .collect()
}

/// `POST /oauth/token` with client_secret_basic; the access token, or the status.
async fn client_credentials(
    http: &reqwest::Client,
    api: &str,
    id: &str,
    secret: &str,
) -> Result<String, u16> {
    let res = http
        .post(format!("{api}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    if !res.status().is_success() {
        return Err(res.status().as_u16());
    }
    let body: serde_json::Value = res.json().await.unwrap();
    Ok(body["access_token"].as_str().unwrap().to_owned())
}

/// `bench-seed` makes a fresh data directory that the server loads: every sampled app gets
/// a token that passes the gateway check on its org's resource and introspects as active;
/// seeding again beside the running server reaches it (the bulk write's resync).
#[tokio::test(flavor = "multi_thread")]
async fn bench_seed_writes_a_store_the_server_serves_and_a_running_server_picks_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let creds = dir.path().join("creds.tsv");
    let out = run(portcullis()
        .args([
            "bench-seed",
            "--orgs",
            "3",
            "--apps",
            "50",
            "--sample",
            "10",
        ])
        .arg("--credentials-out")
        .arg(&creds)
        .arg("--data-dir")
        .arg(&data));
    assert!(out.status.success(), "bench-seed failed: {}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the credentials file is owner-only");
    let sample = seeded_credentials(&creds);
    assert_eq!(sample.len(), 10);
    let ids: std::collections::HashSet<&str> = sample.iter().map(|c| c[0].as_str()).collect();
    assert_eq!(ids.len(), 10, "distinct apps");
    let orgs: std::collections::HashSet<&str> = sample.iter().map(|c| c[2].as_str()).collect();
    assert_eq!(orgs.len(), 3, "the sample spans every org");
    let printed = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        printed.contains("50 apps"),
        "it says what it wrote: {printed}"
    );
    for c in &sample {
        assert!(!printed.contains(&c[1]), "a secret was printed");
    }

    let server = Server::start(&mut serve_cmd(&data));
    let api = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    for [id, secret, org, resource] in &sample {
        let token = client_credentials(&http, &api, id, secret)
            .await
            .unwrap_or_else(|s| panic!("no token for a seeded app: {s}"));
        let check = http
            .get(format!("{api}/gateway/v1/check?resource={resource}"))
            .bearer_auth(&token)
            .header("x-api-key", id)
            .header("x-gw-ims-org-id", org)
            .send()
            .await
            .unwrap();
        assert_eq!(check.status(), 200, "{}", check.text().await.unwrap());
        let intro: serde_json::Value = http
            .post(format!("{api}/oauth/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(intro["active"], true, "{intro}");
    }
    // A wrong secret for a seeded app is refused: the stored hashes are real.
    let [id, secret, ..] = &sample[0];
    // The last character changed, never to itself (a secret may end in 'x').
    let (head, last) = secret.split_at(secret.len() - 1);
    let wrong = format!("{head}{}", if last == "x" { 'y' } else { 'x' });
    assert_eq!(client_credentials(&http, &api, id, &wrong).await, Err(401));

    let more = dir.path().join("more.tsv");
    let out = run(portcullis()
        .args(["bench-seed", "--orgs", "1", "--apps", "5", "--sample", "1"])
        .arg("--credentials-out")
        .arg(&more)
        .arg("--data-dir")
        .arg(&data));
    assert!(out.status.success(), "second bench-seed: {}", stderr(&out));
    let [id, secret, ..] = &seeded_credentials(&more)[0];
    let deadline = Instant::now() + WAIT;
    loop {
        match client_credentials(&http, &api, id, secret).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status, 401, "only 'unknown client' until the view reloads");
                assert!(
                    Instant::now() < deadline,
                    "the running server never saw the bulk write"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let (status, _) = server.stop();
    assert!(status.success());
}

#[test]
fn bench_seed_is_hidden_from_the_main_help_but_documented() {
    let main = stdout(&run(portcullis().arg("--help")));
    assert!(!main.contains("bench-seed"), "{main}");
    let own = stdout(&run(portcullis().args(["bench-seed", "--help"])));
    assert!(
        own.contains("--credentials-out")
            && own.contains("0600")
            && own.contains("Stop the server"),
        "{own}"
    );
}

#[test]
fn completions_are_shell_scripts_that_know_the_subcommands() {
    let out = run(portcullis().args(["completions", "bash"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let script = stdout(&out);
    for word in ["serve", "keys", "--listen", "--data-dir", "completions"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    // bash parses it without running it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portcullis.bash");
    std::fs::write(&file, &script).unwrap();
    let check = run(Command::new("bash").arg("-n").arg(&file));
    assert!(check.status.success(), "bash -n: {}", stderr(&check));
    // And defines the completion function it registers.
    let loaded = run(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p portcullis",
        file.display()
    )));
    assert!(loaded.status.success(), "{}", stderr(&loaded));
    assert!(
        stdout(&loaded).contains("portcullis"),
        "{}",
        stdout(&loaded)
    );

    for (shell, marker) in [
        ("zsh", "#compdef portcullis"),
        ("fish", "complete -c portcullis"),
    ] {
        let out = run(portcullis().args(["completions", shell]));
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("serve"), "{shell}");
    }
    let out = run(portcullis().args(["completions", "tcsh"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_man_page_is_roff_for_portcullis_and_hidden_from_help() {
    let out = run(portcullis().arg("man"));
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    // The title comes first (after the string definitions clap_mangen puts before it).
    let first_macro = page
        .lines()
        .find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or_default();
    assert!(first_macro.starts_with(".TH portcullis 1"), "{page}");
    assert!(
        page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"),
        "{page}"
    );
    assert!(page.contains("serve"), "{page}");
    let help = stdout(&run(portcullis().arg("--help")));
    assert!(help.contains("completions"), "{help}");
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("man ")),
        "{help}"
    );
}

/// The subcommands `--help` lists under "Commands:" (but `help`), each as its words
/// (`["keys", "rotate"]`), nested ones included.
fn subcommands(words: &[String]) -> Vec<Vec<String>> {
    let out = run(portcullis().args(words).arg("--help"));
    assert!(out.status.success(), "{words:?}: {}", stderr(&out));
    let help = stdout(&out);
    let Some(listed) = help.split("\nCommands:\n").nth(1) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    // A command's line starts with two spaces and its name; a longer description goes on
    // in lines indented further; a blank line ends the list.
    for line in listed.lines().take_while(|l| !l.is_empty()) {
        let Some(name) = line
            .strip_prefix("  ")
            .filter(|rest| !rest.starts_with(' '))
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        if name == "help" {
            continue;
        }
        let mut path = words.to_vec();
        path.push(name.to_owned());
        found.extend(subcommands(&path));
        found.push(path);
    }
    found
}

/// `portcullis man --dir` writes portcullis(1) and a page per subcommand that `--help`
/// lists, nested ones included (`portcullis-keys-rotate.1`), each roff titled with its
/// name and showing its own command line; and no page for what `--help` hides.
#[test]
fn every_subcommand_has_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(portcullis()
        .args(["man", "--dir"])
        .arg(dir.path().join("man")));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut written: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    written.sort();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    on_disk.sort();
    assert_eq!(written, on_disk, "it prints the paths it wrote");

    let commands = subcommands(&[]);
    for nested in [
        ["keys", "rotate"],
        ["config", "default"],
        ["admin", "create"],
    ] {
        assert!(
            commands.contains(&nested.map(String::from).to_vec()),
            "{commands:?}"
        );
    }
    let mut expected = vec!["portcullis".to_owned()];
    for words in &commands {
        let name = format!("portcullis-{}", words.join("-"));
        let path = dir.path().join("man").join(format!("{name}.1"));
        let page =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let roff = |s: &str| s.replace('-', "\\-");
        let first_macro = page
            .lines()
            .find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"))
            .unwrap_or_default();
        assert!(
            first_macro.starts_with(&format!(".TH {name} 1 ")),
            "{name}: {page}"
        );
        assert!(
            page.contains(&format!(".SH NAME\n{} \\- ", roff(&name))),
            "{name}: {page}"
        );
        let synopsis = format!(
            ".SH SYNOPSIS\n\\fBportcullis {}\\fR",
            roff(&words.join(" "))
        );
        assert!(page.contains(&synopsis), "{name}: {page}");
        assert!(
            page.contains(&format!("\"portcullis {}\"", env!("CARGO_PKG_VERSION"))),
            "{name}: the footer names the program: {page}"
        );
        expected.push(name);
    }
    let mut pages: Vec<String> = on_disk
        .iter()
        .map(|p| {
            p.rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".1")
                .to_owned()
        })
        .collect();
    pages.sort();
    expected.sort();
    assert_eq!(pages, expected, "a page per subcommand, and no other");

    // portcullis(1) names each subcommand's page, and none for `help`.
    let main = std::fs::read_to_string(dir.path().join("man/portcullis.1")).unwrap();
    for words in commands.iter().filter(|w| w.len() == 1) {
        assert!(
            main.contains(&format!("portcullis\\-{}(1)", words[0].replace('-', "\\-"))),
            "{words:?}: {main}"
        );
    }
    assert!(!main.contains("portcullis\\-help(1)"), "{main}");
    assert_eq!(
        main,
        stdout(&run(portcullis().arg("man"))),
        "`portcullis man` prints the same portcullis(1)"
    );
}

/// `--access-log`: one JSON line per request (even with most logs at `warn`), with the
/// method, route pattern, status, latency, client id when the answer names one and the
/// denial code — and no credential, query string or one-time link.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_has_a_line_per_request_and_no_credential() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "access-log-admin-token-0123456789abcdefghij";
    let mut cmd = serve_cmd(&dir.path().join("data"));
    // The server's own info lines (its "listening" line) and nothing else at info: the
    // access log shows all the same.
    cmd.args([
        "--log-format",
        "json",
        "--log-level",
        "warn,portcullis_server=info",
        "--access-log",
    ])
    .env("PORTCULLIS_ADMIN_TOKEN", admin);
    let server = Server::start(&mut cmd);
    let api = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let json = |r: reqwest::Response| async move {
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<serde_json::Value>().await.unwrap()
    };
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{api}{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    let org = json(
        post(
            "/admin/v1/orgs",
            serde_json::json!({"name": "Acme", "sandboxes": ["prod"]}),
        )
        .await
        .unwrap(),
    )
    .await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    let res = json(
        post(
            &format!("/admin/v1/orgs/{org_id}/resources"),
            serde_json::json!({"name": "Orders", "sandbox": "prod"}),
        )
        .await
        .unwrap(),
    )
    .await;
    let res_id = res["id"].as_str().unwrap().to_owned();
    let app = json(
        post(
            "/admin/v1/apps",
            serde_json::json!({"org_id": org_id, "name": "a", "sandboxes": {"prod": "read"}}),
        )
        .await
        .unwrap(),
    )
    .await;
    let cid = app["client_id"].as_str().unwrap().to_owned();
    let secret = json(
        post(
            &format!("/admin/v1/apps/{cid}/secrets"),
            serde_json::json!({}),
        )
        .await
        .unwrap(),
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = client_credentials(&http, &api, &cid, &secret)
        .await
        .unwrap();
    let check = |method: reqwest::Method| {
        http.request(method, format!("{api}/gateway/v1/check/{res_id}"))
            .bearer_auth(&token)
            .header("x-api-key", &cid)
            .header("x-gw-ims-org-id", &org_id)
            .send()
    };
    assert_eq!(check(reqwest::Method::GET).await.unwrap().status(), 200);
    assert_eq!(check(reqwest::Method::POST).await.unwrap().status(), 401);
    // Credentials where a careless log would keep them: a query string, a link's path.
    let in_query = "pcss_InAQueryStringNeverLogged0123456789";
    http.get(format!("{api}/admin/v1/orgs?client_secret={in_query}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let link = "pcsl_AOneTimeLinkNeverLogged0123456789abc";
    http.get(format!("{api}/console/invite/{link}"))
        .send()
        .await
        .unwrap();

    let startup = server.startup.clone();
    let (status, rest) = server.stop();
    assert!(status.success());
    let all: Vec<String> = [startup, rest].concat();
    let access: Vec<serde_json::Value> = all
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "access")
        .collect();
    assert!(access.len() >= 9, "{all:#?}");
    for line in &access {
        let f = &line["fields"];
        assert_eq!(f["message"], "request", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        for key in ["method", "route", "client_id", "code"] {
            assert!(f[key].is_string(), "{key} in {line}");
        }
        assert!(f["status"].is_u64() && f["latency_ms"].is_f64(), "{line}");
    }
    let find = |method: &str, route: &str, status: u64| {
        access
            .iter()
            .find(|l| {
                l["fields"]["method"] == method
                    && l["fields"]["route"] == route
                    && l["fields"]["status"] == status
            })
            .unwrap_or_else(|| panic!("no {method} {route} {status} in {access:#?}"))
            .clone()
    };
    let passed = find("GET", "/gateway/v1/check/{*rest}", 200);
    assert_eq!(passed["fields"]["client_id"], cid.as_str());
    let denied = find("POST", "/gateway/v1/check/{*rest}", 401);
    assert_eq!(denied["fields"]["code"], "EXEG-0506-401");
    find("POST", "/admin/v1/apps/{client_id}/secrets", 201);
    find("POST", "/oauth/token", 200);
    let text = all.join("\n");
    for (what, value) in [
        ("admin token", admin),
        ("client secret", secret.as_str()),
        ("access token", token.as_str()),
        ("query string", in_query),
        ("one-time link", link),
    ] {
        assert!(!text.contains(value), "the log contains the {what}");
    }
}

/// On a terminal (a pseudo-terminal made by util-linux's `script`), the generated admin
/// token is shown in its box, as before, and no token file is written.
#[test]
fn on_a_terminal_the_token_is_shown_and_no_file_written() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `exec`: the server itself is the terminal's foreground process, not a shell that
    // a Ctrl-C would kill (a non-interactive dash dies of SIGINT while it waits).
    let serve = format!(
        "exec {} serve --listen 127.0.0.1:0 --data-dir {}",
        env!("CARGO_BIN_EXE_portcullis"),
        data.display()
    );
    let mut cmd = Command::new("script");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PORTCULLIS_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .env("SHELL", "/bin/sh")
        .args(["-q", "-f", "-e", "-c", &serve, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("util-linux's script runs");
    let (tx, lines) = std::sync::mpsc::channel();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("listening")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("no 'listening' line ({e:?}):\n{}", seen.join("\n"));
            }
        }
    }
    // Ctrl-C on the terminal: SIGINT to the server, which stops cleanly.
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let text = seen.join("\n");
    assert!(
        text.contains("Bootstrap admin token (shown once, store it now):"),
        "{text}"
    );
    assert_eq!(text.matches("pcsa_").count(), 1, "{text}");
    assert!(!data.join("admin-token").exists());
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait()));
    let status = exited
        .recv_timeout(WAIT)
        .expect("the server stops on Ctrl-C")
        .unwrap();
    assert!(status.success(), "a clean stop: {status:?}");
}
