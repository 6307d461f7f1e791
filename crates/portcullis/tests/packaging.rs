//! The Debian package (crates/portcullis/Cargo.toml's `[package.metadata.deb]`, its
//! maintainer scripts), the systemd unit (deploy/portcullis.service) and the container
//! recipe (Dockerfile) describe one installation: the same binary, configuration file,
//! data directory and user. deploy/package-test.sh installs and runs the package; the
//! container recipe cannot be built here, so this test is what keeps it in line.

mod support;

use std::path::PathBuf;
use support::{portcullis, run, stdout};

const BIN: &str = "/usr/bin/portcullis";
const CONFIG: &str = "/etc/portcullis/portcullis.toml";
const DATA: &str = "/var/lib/portcullis";
const USER: &str = "portcullis";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.parent())
        .expect("the workspace root")
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `Key=value` lines of a unit file (every value of a repeated key).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

fn unit_value(unit: &str, key: &str) -> String {
    let v = unit_values(unit, key);
    assert_eq!(v.len(), 1, "{key}= in the unit: {v:?}");
    v[0].clone()
}

#[test]
fn the_unit_runs_the_packaged_binary_as_its_user_hardened() {
    let unit = read("deploy/portcullis.service");
    assert_eq!(unit_value(&unit, "User"), USER);
    assert_eq!(unit_value(&unit, "Group"), USER);
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        format!("{BIN} serve --config {CONFIG}")
    );
    assert_eq!(unit_value(&unit, "StateDirectory"), "portcullis");
    assert_eq!(unit_value(&unit, "ReadWritePaths"), DATA);
    assert_eq!(unit_value(&unit, "WorkingDirectory"), DATA);
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("NoNewPrivileges", "true"),
        ("PrivateTmp", "true"),
        ("PrivateDevices", "true"),
        ("CapabilityBoundingSet", ""),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(unit_value(&unit, key), value, "{key}");
    }
}

#[test]
fn the_package_installs_what_the_unit_uses() {
    let manifest: toml::Table = toml::from_str(&read("crates/portcullis/Cargo.toml")).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_owned(),
                format!("/{}", a[1].as_str().unwrap()),
            )
        })
        .collect();
    let installs = |dest: &str| assets.iter().any(|(_, d)| d == dest);
    // `usr/bin/` installs the binary under its own name.
    assert!(
        assets
            .iter()
            .any(|(src, d)| src == "target/release/portcullis" && format!("{d}portcullis") == BIN),
        "{assets:?}"
    );
    assert!(installs(CONFIG), "{assets:?}");
    // Every manual page `portcullis man --dir` writes, gzipped by deploy/build-deb.sh.
    assert!(
        assets
            .iter()
            .any(|(src, d)| src == "target/release/deb-assets/man/*.1.gz"
                && d == "/usr/share/man/man1/"),
        "{assets:?}"
    );
    let build = read("deploy/build-deb.sh");
    assert!(
        build.contains(r#""$bin" man --dir "$assets/man""#)
            && build.contains(r#"gzip -9n "$assets"/man/*.1"#),
        "{build}"
    );
    assert!(installs(
        "/usr/share/bash-completion/completions/portcullis"
    ));
    let conf_files: Vec<&str> = deb["conf-files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(conf_files, [CONFIG]);
    // cargo-deb takes <unit-scripts>/<unit-name>.service: the unit above.
    let units = &deb["systemd-units"];
    let unit_dir = root()
        .join("crates/portcullis")
        .join(units["unit-scripts"].as_str().unwrap());
    let unit_file = unit_dir.join(format!("{}.service", units["unit-name"].as_str().unwrap()));
    assert_eq!(
        unit_file.canonicalize().unwrap(),
        root()
            .join("deploy/portcullis.service")
            .canonicalize()
            .unwrap()
    );
    // The maintainer script makes the unit's user, with the data directory as its home.
    let scripts = root()
        .join("crates/portcullis")
        .join(deb["maintainer-scripts"].as_str().unwrap());
    let postinst = std::fs::read_to_string(scripts.join("postinst")).unwrap();
    assert!(
        postinst.contains(&format!("--home-dir {DATA}")),
        "{postinst}"
    );
    assert!(postinst.contains("/usr/sbin/nologin"), "{postinst}");
    assert!(
        postinst.contains(&format!("-o {USER} -g {USER} -m 0700 {DATA}")),
        "{postinst}"
    );
    assert!(postinst.contains("#DEBHELPER#"));
}

#[test]
fn the_container_uses_the_same_paths_and_user_as_the_package() {
    let docker = read("Dockerfile");
    let unit = read("deploy/portcullis.service");
    let instructions: Vec<&str> = docker
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' ') && !l.is_empty())
        .collect();
    let has = |line: &str| instructions.contains(&line);
    assert!(has(&format!("USER {USER}")), "{instructions:#?}");
    assert!(has(&format!("VOLUME {DATA}")));
    assert!(has(&format!("WORKDIR {DATA}")));
    assert!(has(&format!("COPY --from=build /out/portcullis {BIN}")));
    assert!(has(&format!(
        "COPY --from=build /out/portcullis.toml {CONFIG}"
    )));
    assert!(has(&format!(r#"ENTRYPOINT ["{BIN}"]"#)));
    assert!(has(&format!(r#"CMD ["serve", "--config", "{CONFIG}"]"#)));
    // The same command line as the unit's ExecStart.
    assert_eq!(
        unit_value(&unit, "ExecStart"),
        format!("{BIN} serve --config {CONFIG}")
    );
    assert!(docker.contains(&format!("--home-dir {DATA}")));
    assert!(docker.contains(&format!("-o {USER} -g {USER} -m 0700 {DATA}")));
    assert!(docker.contains("HEALTHCHECK") && docker.contains("/readyz"));
    assert!(has("STOPSIGNAL SIGTERM"));
}

/// Both recipes make the configuration file from `portcullis config default` with the
/// same substitution; applied to this binary's output it gives a valid file whose data
/// directory is the package's.
#[test]
fn the_packaged_configuration_file_points_at_the_data_directory() {
    let substitution = r#"sed 's|^# data_dir = .*$|data_dir = "/var/lib/portcullis"|'"#;
    assert!(read("deploy/build-deb.sh").contains(substitution));
    assert!(read("Dockerfile").contains(substitution));
    let reference = stdout(&run(portcullis().args(["config", "default"])));
    let lines: Vec<&str> = reference
        .lines()
        .filter(|l| l.starts_with("# data_dir = "))
        .collect();
    assert_eq!(lines.len(), 1, "{reference}");
    let packaged = reference.replace(lines[0], &format!("data_dir = \"{DATA}\""));
    let table: toml::Table = toml::from_str(&packaged).expect("valid TOML");
    assert_eq!(table.len(), 1, "only the data directory is set: {table:?}");
    assert_eq!(table["data_dir"].as_str(), Some(DATA));
}
