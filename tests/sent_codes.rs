//! Codes sent by SMS (a signed gateway webhook) and by email (a real SMTP server) together with
//! the transaction's display fields: the code reaches the user, confirms the request, and is
//! never stored.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::receiver::{free_port, Receiver};
use common::{assert_problem, create_body, spawn_app_with, transfer, TestApp};
use countersign_api::channels::{Channel, ChannelsConfig, SmtpTls};
use countersign_api::delivery::signature;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const SECRET: &str = "sms gateway secret, 32+ chars";

async fn app_with(channels: Vec<(&str, Channel)>) -> TestApp {
    let channels = channels
        .into_iter()
        .map(|(name, channel)| (name.to_owned(), channel))
        .collect::<BTreeMap<_, _>>();
    spawn_app_with(|c| {
        c.delivery_backoff = Duration::from_millis(100);
        c.delivery_interval = Duration::from_millis(100);
        c.channels = ChannelsConfig { channels };
    })
    .await
}

async fn send_code(app: &TestApp, method: &str, to: Option<&str>) -> common::Reply {
    let mut body = create_body("anna", transfer("anna", "42.00"));
    body["method"] = method.into();
    if let Some(to) = to {
        body["to"] = to.into();
    }
    app.client(Method::POST, "/v1/action-requests", Some(&body))
        .await
}

async fn verify(app: &TestApp, id: &str, otp: &str) -> common::Reply {
    let path = format!("/v1/action-requests/{id}/verify");
    app.client(Method::POST, &path, Some(&json!({"otp": otp})))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_code_reaches_the_gateway_with_the_display_and_confirms_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let gateway = Receiver {
        fail_first: 2,
        ..Receiver::default()
    };
    tokio::spawn(gateway.clone().serve(listener));
    let sms = Channel::Webhook {
        url,
        secret: SECRET.into(),
    };
    let app = app_with(vec![("sms", sms)]).await;
    let created = send_code(&app, "sms", Some("+33612345678")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.event_types(&id).await, ["Created", "CodeSent"]);

    let (header, body) = common::eventually(Duration::from_secs(10), || async {
        gateway.deliveries().first().cloned()
    })
    .await;
    let t: i64 = header[2..header.find(',').unwrap()].parse().unwrap();
    let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
    assert_eq!(header, signature(SECRET.as_bytes(), at, &body), "signed");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["to"], "+33612345678");
    assert_eq!(message["request_id"], id.as_str());
    let code = message["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("amount: 42.00") && text.contains(&code),
        "{text}"
    );

    let wrong = verify(&app, &id, "00000000").await;
    assert_problem(&wrong, 422, "invalid_otp");
    assert_eq!(wrong.body["attempts_left"], 4);
    let confirmed = verify(&app, &id, &code).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
    assert!(confirmed.body["token"]
        .as_str()
        .unwrap()
        .starts_with("cst_"));
    assert_problem(&verify(&app, &id, &code).await, 409, "not_pending");

    let log = app.state.store.read_all(0, 1000).await.unwrap();
    assert!(
        !serde_json::to_string(&log).unwrap().contains(&code),
        "never stored"
    );
    let outbox = app
        .state
        .pool()
        .rows("select body from outbox", &[])
        .await
        .unwrap();
    assert!(
        !format!("{outbox:?}").contains(&code),
        "not even in the outbox"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_without_its_channel_or_an_email_without_an_address_is_refused() {
    let app = app_with(Vec::new()).await;
    assert_problem(
        &send_code(&app, "voice", None).await,
        422,
        "invalid_request",
    );
    assert_problem(
        &send_code(&app, "email", None).await,
        400,
        "invalid_request",
    );
    assert_problem(
        &send_code(&app, "sms", Some("0612")).await,
        400,
        "invalid_request",
    );
    assert_eq!(app.head().await, 0);
}

/// A real SMTP server (Python's aiosmtpd) writing what it receives to a maildir.
struct SmtpServer {
    child: Child,
    maildir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts aiosmtpd, or says why it cannot (and fails if `COUNTERSIGN_REQUIRE_SMTP=1`).
fn smtp_server(port: u16) -> Option<SmtpServer> {
    let available = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var("COUNTERSIGN_REQUIRE_SMTP").as_deref() != Ok("1"),
            "COUNTERSIGN_REQUIRE_SMTP=1 but Python's aiosmtpd is not installed"
        );
        eprintln!("skipped: pip install aiosmtpd to run the SMTP test");
        return None;
    }
    let maildir = tempfile::tempdir().unwrap();
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("mail"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd starts");
    Some(SmtpServer { child, maildir })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_code_arrives_through_a_real_smtp_server_and_confirms() {
    let port = free_port().port();
    let Some(smtp) = smtp_server(port) else {
        return;
    };
    let email = Channel::Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Bank <no-reply@bank.example>".into(),
    };
    let app = app_with(vec![("email", email)]).await;
    let created = send_code(&app, "email", Some("anna@bank.example")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let new_mail = smtp.maildir.path().join("mail").join("new");
    let mail = common::eventually(Duration::from_secs(20), || async {
        let entry = std::fs::read_dir(&new_mail).ok()?.next()?.ok()?;
        std::fs::read_to_string(entry.path()).ok()
    })
    .await;
    assert!(mail.contains("anna@bank.example"), "{mail}");
    assert!(mail.contains("amount: 42.00"), "{mail}");
    let code = mail
        .lines()
        .find_map(|line| line.trim().strip_prefix("Code: "))
        .expect("the code is in the mail")
        .to_owned();
    let confirmed = verify(&app, &id, &code).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "CONFIRMED");
}
