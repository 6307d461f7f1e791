//! Running the `portcullis` binary in tests: a clean environment, and its output as text.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// The binary, with none of the test runner's own PORTCULLIS_* or RUST_LOG variables.
pub fn portcullis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("PORTCULLIS_") || key == "RUST_LOG" {
            cmd.env_remove(&*key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
