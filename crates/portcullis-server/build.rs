//! Build information for `portcullis_build_info`: the short commit of the source being
//! built (`PORTCULLIS_BUILD_COMMIT` if set, for builds from a tarball; else
//! `git rev-parse --short HEAD`; else "unknown", since a build without git must work).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=PORTCULLIS_BUILD_COMMIT");
    let commit = std::env::var("PORTCULLIS_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Built again when HEAD moves: its file, the branch it names, packed refs. Only paths
    // that exist: cargo would rerun this script on every build for a missing one.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", branch.as_deref().unwrap_or("HEAD"), "packed-refs"];
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=PORTCULLIS_BUILD_COMMIT={commit}");
}
