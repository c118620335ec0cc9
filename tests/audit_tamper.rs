//! Tampering with a stopped server's log is found by `countersign audit verify`, the real
//! binary, on both backends: an edited byte, a deleted row, two swapped rows and a forged row
//! each make it exit 1 naming the first bad position, and the clean log exits 0. A signed tree
//! head kept outside the database (`audit tree-head`) is extended by later appends, refuses the
//! log of another database of the same size, and is refused itself once its signature is
//! altered.
//!
//! The PostgreSQL cases need `COUNTERSIGN_TEST_POSTGRES_URL`; see `countersign_testing`.

mod common;

use std::path::Path;
use std::process::Output;

use common::device::{b64, Phone};
use common::process::{binary, client_credential, start, Server};
use common::{send, transfer, Auth, Reply, ACTION};
use countersign_testing::TestDatabase;
use p256::pkcs8::EncodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};
use uuid::Uuid;

/// Approval flows per built log: one enrolment and 3 events per flow, so at least 20 events.
const FLOWS: usize = 7;

// ---------------------------------------------------------------------------------------------
// Building a log with the real server.

/// A client of a running `countersign serve`.
struct Bank<'a> {
    server: &'a Server,
    client: (Uuid, String),
    http: reqwest::Client,
}

impl Bank<'_> {
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Reply {
        let body = body.map(|b| serde_json::to_vec(b).unwrap());
        let headers: &[(&str, &str)] = &[("content-type", "application/json")];
        let url = format!("{}{path}", self.server.base);
        send(&self.http, method, &url, auth, headers, body).await
    }

    async fn client(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let auth = Auth::Basic(&self.client.0, &self.client.1);
        self.call(method, path, auth, body).await
    }

    async fn phone(&self, uid: &str) -> Phone {
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let public_key = b64(key.verifying_key().to_public_key_der().unwrap().as_bytes());
        let body = json!({"kind": "push", "name": "phone", "public_key": public_key});
        let path = format!("/v1/users/{uid}/devices");
        let reply = self.client(Method::POST, &path, Some(&body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        Phone {
            id: reply.body["device_id"].as_str().unwrap().parse().unwrap(),
            token: reply.body["device_token"].as_str().unwrap().to_owned(),
            key,
        }
    }

    /// Create → the phone confirms → poll → consume.
    async fn approval(&self, phone: &Phone, uid: &str, amount: &str) {
        let payload = transfer(uid, amount);
        let body = json!({"action": ACTION, "uid": uid, "payload": payload, "method": "push"});
        let created = self
            .client(Method::POST, "/v1/action-requests", Some(&body))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let inbox = self
            .call(
                Method::GET,
                &format!("/v1/devices/{}/inbox", phone.id),
                Auth::Bearer(&phone.token),
                None,
            )
            .await;
        assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
        let item = inbox
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .cloned()
            .expect("the request is in the inbox");
        let decision = json!({"device_id": phone.id, "signature": phone.sign(&item, "confirm")});
        let confirmed = self
            .call(
                Method::POST,
                &format!("/v1/action-requests/{id}/confirm"),
                Auth::Bearer(&phone.token),
                Some(&decision),
            )
            .await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        let polled = self
            .client(Method::GET, &format!("/v1/action-requests/{id}"), None)
            .await;
        assert_eq!(polled.body["status"], "CONFIRMED", "{}", polled.body);
        let consume = json!({"token": polled.body["token"], "action": ACTION, "payload": payload});
        let consumed = self
            .client(Method::POST, "/v1/tokens/consume", Some(&consume))
            .await;
        assert_eq!(consumed.status, StatusCode::OK, "{}", consumed.body);
    }
}

/// Runs `countersign serve` on `url` (key file in `dir`), enrols a phone and takes `flows`
/// approvals through it, then stops the server.
async fn build_log(url: &str, dir: &Path, flows: usize) {
    let client = client_credential(url, dir);
    append(url, dir, client, flows).await;
}

/// Starts the server again on `url` and takes `flows` more approvals, then stops it.
async fn append(url: &str, dir: &Path, client: (Uuid, String), flows: usize) {
    let server = start(url, dir, &[]).await;
    let bank = Bank {
        server: &server,
        client,
        http: reqwest::Client::new(),
    };
    let uid = format!("u{}", Uuid::now_v7().simple());
    let phone = bank.phone(&uid).await;
    for n in 0..flows {
        bank.approval(&phone, &uid, &format!("{}.00", 10 + n)).await;
    }
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// Runs `countersign --key-file DIR/t.keys --database-url URL audit ARGS…`.
fn audit(url: &str, dir: &Path, args: &[&str]) -> Output {
    binary()
        .arg("--key-file")
        .arg(dir.join("t.keys"))
        .args(["--database-url", url, "audit"])
        .args(args)
        .output()
        .expect("the CLI runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `audit verify` on a log that must hold; returns its head position.
fn verify_clean(url: &str, dir: &Path) -> u64 {
    let out = audit(url, dir, &["verify", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a clean log verifies: {} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["first_bad_position"].is_null(), "{report}");
    let head = report["head_position"].as_u64().unwrap();
    assert_eq!(report["verified_events"], head, "{report}");
    assert_eq!(report["tree_size"], head, "{report}");
    let plain = audit(url, dir, &["verify"]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(
        text(&plain.stdout).contains(&format!("the log holds: {head} events verified")),
        "{}",
        text(&plain.stdout)
    );
    head
}

/// `audit verify` exits 1 and names `position` as the first bad one.
fn assert_broken_at(url: &str, dir: &Path, position: u64, case: &str) {
    let out = audit(url, dir, &["verify"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{case}: verify must fail: {stdout} {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("first bad position {position}:")),
        "{case}: the first bad position is {position}: {stdout}"
    );
    let json = audit(url, dir, &["verify", "--json"]);
    assert_eq!(json.status.code(), Some(1), "{case}");
    let report: Value = serde_json::from_slice(&json.stdout).expect("a JSON report");
    assert_eq!(report["ok"], false, "{case}: {report}");
    assert_eq!(report["first_bad_position"], position, "{case}: {report}");
    assert!(report["reason"].is_string(), "{case}: {report}");
}

// ---------------------------------------------------------------------------------------------
// Tampering, behind the append-only triggers' back.

#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// One digit of event 7's data changes.
    EditByte,
    /// The row at position 5 is deleted.
    Delete,
    /// The last row is deleted (its Merkle nodes stay).
    DeleteLast,
    /// The rows at positions 4 and 9 swap positions.
    Swap,
    /// A copy of event 3, with a new id and stream version, is appended at head + 1.
    Forge,
}

const CASES: [Tamper; 5] = [
    Tamper::EditByte,
    Tamper::Delete,
    Tamper::DeleteLast,
    Tamper::Swap,
    Tamper::Forge,
];

impl Tamper {
    /// The first position `audit verify` must name.
    fn first_bad(self, head: u64) -> u64 {
        match self {
            Tamper::EditByte => 7,
            Tamper::Delete => 5,
            Tamper::DeleteLast => head,
            Tamper::Swap => 4,
            Tamper::Forge => head + 1,
        }
    }
}

/// `data` with its first digit changed.
fn edited(data: &str) -> String {
    let at = data
        .find(|c: char| c.is_ascii_digit())
        .expect("a digit in the data");
    let digit = data.as_bytes()[at] - b'0';
    let mut out = data.to_owned();
    out.replace_range(at..=at, &((digit + 1) % 10).to_string());
    assert_ne!(out, data);
    out
}

const SWAP: [&str; 3] = [
    "update events set position = 1000000 where position = 4",
    "update events set position = 4 where position = 9",
    "update events set position = 9 where position = 1000000",
];

const FORGE_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
    schema_version, data, metadata, recorded_at, prev_hash, hash";

/// The statements that make one tampering, each changing exactly one row; `data_of_7` is the
/// stored data of event 7 (edited by [`Tamper::EditByte`]).
fn tamper_statements(tamper: Tamper, head: u64, data_of_7: &str) -> Vec<String> {
    match tamper {
        Tamper::EditByte => vec![format!(
            "update events set data = '{}' where position = 7",
            edited(data_of_7).replace('\'', "''")
        )],
        Tamper::Delete => vec!["delete from events where position = 5".to_owned()],
        Tamper::DeleteLast => vec![format!("delete from events where position = {head}")],
        Tamper::Swap => SWAP.iter().map(|sql| (*sql).to_owned()).collect(),
        Tamper::Forge => vec![format!(
            "insert into events ({FORGE_COLUMNS}) select {}, stream_id, stream_version + 1000, \
             '{}', event_type, schema_version, data, metadata, recorded_at, prev_hash, hash \
             from events where position = 3",
            head + 1,
            Uuid::now_v7()
        )],
    }
}

/// Event 7's stored data.
const DATA_OF_7: &str = "select data from events where position = 7";

/// Tampers with a SQLite log: drops the events triggers (their SQL read from `sqlite_master`),
/// changes the rows, and creates the triggers again.
async fn tamper_sqlite(url: &str, tamper: Tamper, head: u64) {
    let mut conn = SqliteConnection::connect(url).await.unwrap();
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'events'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!triggers.is_empty(), "the log has append-only triggers");
    let refused = sqlx::query("delete from events where position = 5")
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "the triggers refuse a delete");
    for (name, _) in &triggers {
        conn.execute(format!("drop trigger {name}").as_str())
            .await
            .unwrap();
    }
    let (data,): (String,) = sqlx::query_as(DATA_OF_7)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for sql in tamper_statements(tamper, head, &data) {
        let done = sqlx::query(&sql).execute(&mut conn).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }
    for (_, sql) in &triggers {
        conn.execute(sql.as_str()).await.unwrap();
    }
    conn.close().await.unwrap();
}

/// Tampers with a PostgreSQL log with its user triggers disabled for the while.
async fn tamper_postgres(url: &str, tamper: Tamper, head: u64) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let refused = sqlx::query("delete from events where position = 5")
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "the triggers refuse a delete");
    conn.execute("alter table events disable trigger user")
        .await
        .unwrap();
    let (data,): (String,) = sqlx::query_as(DATA_OF_7)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for sql in tamper_statements(tamper, head, &data) {
        let done = sqlx::query(&sql).execute(&mut conn).await.unwrap();
        assert_eq!(done.rows_affected(), 1, "{sql}");
    }
    conn.execute("alter table events enable trigger user")
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Copies a stopped server's SQLite database (with its write-ahead log, if any) to `to`; the
/// shared-memory index is rebuilt from them.
fn copy_sqlite(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let wal = format!("{}-wal", from.display());
    if Path::new(&wal).exists() {
        std::fs::copy(&wal, format!("{}-wal", to.display())).unwrap();
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

// ---------------------------------------------------------------------------------------------
// The tamper cases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tampering_is_found_at_the_first_bad_position() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.db");
    build_log(&sqlite_url(&original), dir.path(), FLOWS).await;
    let head = verify_clean(&sqlite_url(&original), dir.path());
    assert!(head >= 20, "the log has {head} events");
    for (n, tamper) in CASES.into_iter().enumerate() {
        let copy = dir.path().join(format!("case-{n}.db"));
        copy_sqlite(&original, &copy);
        let url = sqlite_url(&copy);
        assert_eq!(verify_clean(&url, dir.path()), head, "the copy holds");
        tamper_sqlite(&url, tamper, head).await;
        assert_broken_at(
            &url,
            dir.path(),
            tamper.first_bad(head),
            &format!("{tamper:?}"),
        );
    }
    // The original, never touched, still holds.
    assert_eq!(verify_clean(&sqlite_url(&original), dir.path()), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tampering_is_found_at_the_first_bad_position() {
    let Some(first) = TestDatabase::for_test().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    build_log(&first.url, dir.path(), FLOWS).await;
    let head = verify_clean(&first.url, dir.path());
    assert!(head >= 20, "the log has {head} events");
    let mut database = Some(first);
    for tamper in CASES {
        // A fresh database per case, with the log built again.
        let database = match database.take() {
            Some(database) => database,
            None => {
                let fresh = TestDatabase::for_test().await.unwrap();
                build_log(&fresh.url, dir.path(), FLOWS).await;
                fresh
            }
        };
        let head = verify_clean(&database.url, dir.path());
        assert!(head >= 20, "the log has {head} events");
        tamper_postgres(&database.url, tamper, head).await;
        assert_broken_at(
            &database.url,
            dir.path(),
            tamper.first_bad(head),
            &format!("{tamper:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Verifying against a signed tree head kept outside the database.

/// `audit tree-head` written to `file`; returns the head.
fn save_head(url: &str, dir: &Path, file: &Path) -> Value {
    let out = audit(url, dir, &["tree-head"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(file, &out.stdout).unwrap();
    let head: Value = serde_json::from_slice(&out.stdout).expect("a JSON tree head");
    assert_eq!(head["signature"].as_str().unwrap().len(), 128, "{head}");
    head
}

/// Two logs `a` and `b` built with the same flows (and so the same size) with one key file.
async fn against_cases(a: &str, b: &str, dir: &Path) {
    let a_client = client_credential(a, dir);
    append(a, dir, a_client.clone(), FLOWS).await;
    build_log(b, dir, FLOWS).await;
    let head_a = save_head(a, dir, &dir.join("head-a.json"));
    let head_b = save_head(b, dir, &dir.join("head-b.json"));
    assert_eq!(
        head_a["tree_size"], head_b["tree_size"],
        "same flows, same size"
    );
    assert_ne!(head_a["root_hash"], head_b["root_hash"]);
    let size = head_a["tree_size"].as_u64().unwrap();
    assert!(size >= 20);

    // Later appends extend the saved head.
    append(a, dir, a_client, 2).await;
    assert!(verify_clean(a, dir) > size);
    let head_file = dir.join("head-a.json");
    let head_file = head_file.to_str().unwrap();
    let out = audit(a, dir, &["verify", "--against", head_file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", text(&out.stderr));
    assert!(
        stdout.contains("it extends the trusted tree head"),
        "{stdout}"
    );
    // The same with the public key given, as text and as a file.
    let key = audit(a, dir, &["public-key"]);
    assert_eq!(key.status.code(), Some(0));
    let key_text = text(&key.stdout).trim().to_owned();
    let key_file = dir.join("audit.pub");
    std::fs::write(&key_file, format!("{key_text}\n")).unwrap();
    for given in [key_text.as_str(), key_file.to_str().unwrap()] {
        let out = audit(
            a,
            dir,
            &["verify", "--against", head_file, "--public-key", given],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }

    // A head of another log of the same size, signed with the same key, is refused.
    let other = dir.join("head-b.json");
    let out = audit(a, dir, &["verify", "--against", other.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("first bad position {size}:")),
        "{stdout}"
    );
    // And B verifies against its own head.
    let out = audit(b, dir, &["verify", "--against", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A head whose signature was altered is refused before the log is read.
    let signature = head_a["signature"].as_str().unwrap();
    let last = signature.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let mut altered = head_a.clone();
    altered["signature"] = format!("{}{flipped}", &signature[..127]).into();
    let altered_file = dir.join("head-altered.json");
    std::fs::write(&altered_file, serde_json::to_vec_pretty(&altered).unwrap()).unwrap();
    let out = audit(
        a,
        dir,
        &["verify", "--against", altered_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("not validly signed"),
        "{}",
        text(&out.stderr)
    );
    // As is a head whose size was changed under its signature.
    let mut resized = head_a.clone();
    resized["tree_size"] = (size - 1).into();
    std::fs::write(&altered_file, serde_json::to_vec_pretty(&resized).unwrap()).unwrap();
    let out = audit(
        a,
        dir,
        &["verify", "--against", altered_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_saved_tree_head_is_extended_and_another_logs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = sqlite_url(&dir.path().join("a.db"));
    let b = sqlite_url(&dir.path().join("b.db"));
    against_cases(&a, &b, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_saved_tree_head_is_extended_and_another_logs_is_refused() {
    let Some(a) = TestDatabase::for_test().await else {
        return;
    };
    let b = TestDatabase::for_test().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    against_cases(&a.url, &b.url, dir.path()).await;
}
