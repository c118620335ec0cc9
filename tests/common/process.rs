//! The real `countersign` binary as a child process: credentials from the CLI, and servers that
//! are killed when dropped, so a failing test leaves nothing running.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

/// A running `countersign serve`.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary under test.
pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_countersign"))
}

/// Makes a client credential allowed `bank:*` with the CLI, using the key file in `dir` that
/// [`start`] gives the server; returns its id and secret.
pub fn client_credential(url: &str, dir: &Path) -> (Uuid, String) {
    let added = binary()
        .arg("--key-file")
        .arg(dir.join("t.keys"))
        .args([
            "--database-url",
            url,
            "credentials",
            "add",
            "--role",
            "client",
        ])
        .args(["--name", "bank", "--actions", "bank:*", "--json"])
        .output()
        .expect("the CLI runs");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let credential: Value = serde_json::from_slice(&added.stdout).expect("JSON on stdout");
    assert_eq!(credential["role"], "client");
    (
        credential["id"].as_str().unwrap().parse().unwrap(),
        credential["secret"].as_str().unwrap().to_owned(),
    )
}

/// Starts `serve` on a free port with the key file in `dir` and waits until it answers.
pub async fn start(url: &str, dir: &Path, extra: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("server-{port}.log")))
        .unwrap();
    let child = binary()
        .args(["--database-url", url, "serve"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--key-file")
        .arg(dir.join("t.keys"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the server starts");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    super::eventually(Duration::from_secs(30), || async {
        let answer = http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .ok()?;
        (answer.status() == StatusCode::OK).then_some(())
    })
    .await;
    server
}
