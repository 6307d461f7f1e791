//! Running the `portcullis` binary in tests: a clean environment, and its output as text.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

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

/// Run a command that is expected to exit by itself (a server that must refuse to start):
/// its output, or a panic naming it if it is still running after [`WAIT`].
pub fn run_expecting_exit(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    // Its output is read while it runs (a full pipe would stall it), on a thread of its own.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("{cmd:?} was expected to exit, and still ran after {WAIT:?}");
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `portcullis serve` on a free port of 127.0.0.1, with this data directory.
pub fn serve_cmd(data: &std::path::Path) -> Command {
    let mut cmd = portcullis();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    cmd
}

/// A running `portcullis serve`, its stderr read line by line.
pub struct Server {
    pub child: Child,
    pub lines: Receiver<String>,
    /// Stderr up to and including the "listening" line.
    pub startup: Vec<String>,
    pub addr: String,
}

pub const WAIT: Duration = Duration::from_secs(60);

impl Server {
    pub fn start(cmd: &mut Command) -> Server {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let (tx, lines) = std::sync::mpsc::channel();
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut startup = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let addr = listening_addr(&line);
                    startup.push(line);
                    if let Some(addr) = addr {
                        break addr;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "no 'listening' line ({e:?}); stderr so far:\n{}",
                        startup.join("\n")
                    );
                }
            }
        };
        Server {
            child,
            lines,
            startup,
            addr,
        }
    }

    /// SIGTERM, then the exit status and the rest of stderr.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("stderr stayed open"),
            }
        }
        (status, rest)
    }
}

impl Server {
    /// SIGKILL: no draining, no flushing; what the store made durable is all that is left.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bound address from the server's "listening" log line, text or JSON.
pub fn listening_addr(line: &str) -> Option<String> {
    if line.starts_with('{') {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = &event["fields"];
        (fields["message"] == "listening").then(|| fields["addr"].as_str().map(String::from))?
    } else {
        let rest = &line[line.find(" listening ")?..];
        let addr = &rest[rest.find("addr=")? + "addr=".len()..];
        Some(addr.split_whitespace().next()?.to_owned())
    }
}

/// A `client_credentials` grant with a client secret (HTTP Basic): the status it got.
pub async fn grant(http: &reqwest::Client, addr: &str, client_id: &str, secret: &str) -> u16 {
    http.post(format!("http://{addr}/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
