//! The reference authenticator on the command line: `countersign authenticator enrol`, `inbox`,
//! `approve` and `reject` run as processes against a real `countersign serve`, and the bank sees
//! their outcome by polling.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::process::{binary, client_credential, start, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A server, a bank's credential, and a folder for the device file.
struct Setup {
    server: Server,
    client_id: Uuid,
    secret: String,
    http: reqwest::Client,
    file: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (client_id, secret) = client_credential(&url, dir.path());
        let server = start(&url, dir.path(), &[]).await;
        Self {
            server,
            client_id,
            secret,
            http: reqwest::Client::new(),
            file: dir.path().join("device.json"),
            dir,
        }
    }

    /// `countersign authenticator ARGS`, run in the temporary folder.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = binary();
        command.current_dir(self.dir.path()).arg("authenticator");
        command.args(args);
        command
    }

    /// Runs `countersign authenticator VERB --file FILE ARGS`.
    fn run(&self, verb: &str, args: &[&str]) -> Output {
        let mut command = self.command(&[verb, "--file", self.file.to_str().unwrap()]);
        command.args(args).output().expect("the CLI runs")
    }

    /// Enrols a device for `anna` with `enrol`'s extra `args`.
    fn enrol(&self, args: &[&str]) -> Output {
        let id = self.client_id.to_string();
        let base = ["--server", &self.server.base, "--client-id", &id];
        let mut all = base.to_vec();
        all.extend(["--client-secret", &self.secret, "--uid", "anna"]);
        all.extend(args);
        self.run("enrol", &all)
    }

    /// Creates a push request for `anna` as the bank; returns its id.
    async fn create(&self, amount: &str) -> String {
        let body = json!({
            "action": "bank:transfers:create", "uid": "anna", "method": "push",
            "payload": {"amount": amount, "currency": "EUR", "bankTransferRecipientId": "R1"},
            "display": {"Amount": format!("{amount} EUR"), "Payee": "ACME GmbH"},
        });
        let answer = self
            .http
            .post(format!("{}/v1/action-requests", self.server.base))
            .basic_auth(self.client_id, Some(&self.secret))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::CREATED);
        let view: Value = answer.json().await.unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    /// The bank's poll of request `id`.
    async fn poll(&self, id: &str) -> Value {
        let answer = self
            .http
            .get(format!("{}/v1/action-requests/{id}", self.server.base))
            .basic_auth(self.client_id, Some(&self.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.unwrap()
    }
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", stderr(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit status 1 with one sentence on stderr containing `needle`.
fn assert_fails(output: &Output, needle: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(text.contains(needle), "{text}");
}

#[tokio::test]
async fn an_enrolled_authenticator_approves_a_request_and_the_bank_gets_a_token() {
    let setup = Setup::new().await;
    let device_id: Uuid = stdout(&setup.enrol(&[])).trim().parse().unwrap();
    let saved: Value = serde_json::from_slice(&std::fs::read(&setup.file).unwrap()).unwrap();
    assert_eq!(saved["device_id"], device_id.to_string());
    assert_eq!(saved["uid"], "anna");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&setup.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_fails(&setup.enrol(&[]), "already exists");

    let path = setup.file.to_str().unwrap();
    let mut waiting = tokio::process::Command::from(
        setup.command(&["inbox", "--file", path, "--wait", "20", "--json"]),
    );
    let waiting = tokio::spawn(async move { waiting.output().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = setup.create("234.00").await;
    let arrived = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the long-poll answers when the request arrives")
        .unwrap()
        .unwrap();
    let items: Value = serde_json::from_str(&stdout(&arrived)).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["id"], id);

    let listed = stdout(&setup.run("inbox", &[]));
    assert!(listed.contains(&id), "{listed}");
    assert!(
        listed.contains("234.00 EUR") && listed.contains("ACME GmbH"),
        "{listed}"
    );

    let approved = stdout(&setup.run("approve", &[&id]));
    assert!(approved.contains("ACME GmbH"), "{approved}");
    assert!(approved.contains("status: CONFIRMED"), "{approved}");
    let polled = setup.poll(&id).await;
    assert_eq!(polled["status"], "CONFIRMED");
    assert!(
        polled["token"].as_str().unwrap().starts_with("cst_"),
        "{polled}"
    );

    assert_fails(
        &setup.run("approve", &[&id]),
        "is not in this device's inbox",
    );
    assert_eq!(
        stdout(&setup.run("inbox", &[])).trim(),
        "no pending requests"
    );
}

#[tokio::test]
async fn reject_and_first_decide_on_the_oldest_request() {
    let setup = Setup::new().await;
    stdout(&setup.enrol(&["--name", "test bench"]));
    let older = setup.create("1.00").await;
    let newer = setup.create("2.00").await;

    let rejected = stdout(&setup.run("reject", &["--first"]));
    assert!(rejected.contains(&older), "{rejected}");
    assert!(rejected.contains("status: REJECTED"), "{rejected}");
    assert_eq!(setup.poll(&older).await["status"], "REJECTED");
    assert_eq!(setup.poll(&newer).await["status"], "PENDING");

    let approved = stdout(&setup.run("approve", &["--first"]));
    assert!(approved.contains(&newer), "{approved}");
    assert_eq!(setup.poll(&newer).await["status"], "CONFIRMED");

    assert_fails(&setup.run("approve", &["--first"]), "the inbox is empty");
    let empty: Value = serde_json::from_str(&stdout(&setup.run("inbox", &["--json"]))).unwrap();
    assert_eq!(empty, json!([]));
}

#[tokio::test]
async fn a_refused_enrolment_is_one_sentence_and_writes_no_file() {
    let mut setup = Setup::new().await;
    setup.secret = "css_wrong".into();
    assert_fails(&setup.enrol(&[]), "the server refused the enrolment");
    assert!(!setup.file.exists());
    assert_fails(&setup.run("inbox", &[]), "enrol first");
}
