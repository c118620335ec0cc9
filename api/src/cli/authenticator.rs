//! `countersign authenticator`: a reference push authenticator, so a back end can be tested
//! without a phone. It keeps its device key in a local file ([`device_file`]) and speaks only the
//! public HTTP API through [`Phone`]; the demo's phone runs the same code. The command line is in
//! [`command`].

mod command;
mod device_file;

use std::time::{Duration, Instant};

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_domain::approval::Decision;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

pub use self::command::{run, AuthenticatorCommand};
use self::device_file::DeviceFile;
use super::phone::{Answer, Bank, Phone};

/// The longest wait the server grants one long-poll, in seconds.
const MAX_POLL_SECONDS: u64 = 30;

/// An enrolled push authenticator: a [`Phone`] with the user it belongs to.
pub struct Authenticator {
    phone: Phone,
    uid: String,
}

impl Authenticator {
    /// Makes a fresh device key and enrols it for `uid` through `bank`'s credentials on the server
    /// at `server`; returns the authenticator and the server's answer.
    pub async fn enrol(
        bank: &Bank,
        http: reqwest::Client,
        server: &str,
        uid: &str,
        name: &str,
    ) -> anyhow::Result<(Self, Answer)> {
        let mut phone = Phone::new(http, server);
        let answer = bank
            .enrol(uid, name, &phone.public_key())
            .await
            .with_context(|| unreachable_server(server))?;
        expect(&answer, StatusCode::CREATED, "the enrolment")?;
        phone.enrolled(&answer)?;
        let uid = uid.to_owned();
        Ok((Self { phone, uid }, answer))
    }

    /// The authenticator kept in `file`.
    pub fn open(file: &DeviceFile, http: reqwest::Client) -> anyhow::Result<Self> {
        let key = file.private_key_der()?;
        let phone = Phone::restore(http, &file.server, &key, file.device_id, &file.device_token)?;
        let uid = file.uid.clone();
        Ok(Self { phone, uid })
    }

    /// What to keep in the device file.
    pub fn file(&self) -> DeviceFile {
        DeviceFile {
            server: self.phone.base().to_owned(),
            uid: self.uid.clone(),
            device_id: self.device_id(),
            device_token: self.phone.device_token.clone().unwrap_or_default(),
            private_key: URL_SAFE_NO_PAD.encode(self.phone.private_key_pkcs8()),
        }
    }

    /// The device id.
    pub fn device_id(&self) -> Uuid {
        self.phone.device_id.unwrap_or_default()
    }

    /// The inbox. While it is empty, long-polls it for up to `wait`, and answers as soon as a
    /// request arrives.
    pub async fn inbox(&self, wait: Duration) -> anyhow::Result<Answer> {
        let server = self.phone.base();
        let mut answer = self
            .phone
            .inbox()
            .await
            .with_context(|| unreachable_server(server))?;
        expect(&answer, StatusCode::OK, "reading the inbox")?;
        let deadline = Instant::now() + wait;
        while answer.body.as_array().is_some_and(Vec::is_empty) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(etag) = answer.etag.clone().filter(|_| !left.is_zero()) else {
                break;
            };
            let seconds = (left.as_secs_f64().ceil() as u64).min(MAX_POLL_SECONDS);
            let polled = self
                .phone
                .inbox_wait(seconds, &etag)
                .await
                .with_context(|| unreachable_server(server))?;
            if polled.status != StatusCode::NOT_MODIFIED {
                expect(&polled, StatusCode::OK, "reading the inbox")?;
                answer = polled;
            }
        }
        Ok(answer)
    }

    /// Signs `decision` on an inbox item and sends it; fails unless the server takes it.
    pub async fn decide(&self, item: &Value, decision: Decision) -> anyhow::Result<Answer> {
        let answer = self
            .phone
            .decide(item, decision)
            .await
            .with_context(|| unreachable_server(self.phone.base()))?;
        let what = match decision {
            Decision::Confirm => "the approval",
            Decision::Reject => "the rejection",
        };
        expect(&answer, StatusCode::OK, what)?;
        Ok(answer)
    }
}

/// The inbox item with `id`, or without one the oldest (ids are time-ordered).
pub fn pick(inbox: &Value, id: Option<Uuid>) -> anyhow::Result<Value> {
    let items = inbox.as_array().context("the inbox is not a list")?;
    let with_ids = items.iter().filter_map(|item| {
        let item_id: Uuid = item["id"].as_str()?.parse().ok()?;
        Some((item_id, item))
    });
    let found = match id {
        Some(id) => with_ids.into_iter().find(|(item_id, _)| *item_id == id),
        None => with_ids.min_by_key(|(item_id, _)| *item_id),
    };
    match (found, id) {
        (Some((_, item)), _) => Ok(item.clone()),
        (None, Some(id)) => anyhow::bail!(
            "request {id} is not in this device's inbox: it is not pending or not addressed to this device"
        ),
        (None, None) => anyhow::bail!("the inbox is empty: there is no pending request to decide on"),
    }
}

fn unreachable_server(server: &str) -> String {
    format!("cannot talk to the server at {server}")
}

/// Fails with the server's problem document in one sentence unless `answer` has `status`.
fn expect(answer: &Answer, status: StatusCode, what: &str) -> anyhow::Result<()> {
    if answer.status == status {
        return Ok(());
    }
    let detail = answer.body["detail"].as_str().unwrap_or("no details given");
    let code = answer.body["code"].as_str().unwrap_or_default();
    anyhow::bail!(
        "the server refused {what}: {detail} ({} {code})",
        answer.status.as_u16()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: Uuid) -> Value {
        json!({"id": id, "action": "bank:transfers:create", "display": {"Amount": "1.00 EUR"},
               "binding": "ab", "nonce": "n", "challenge": null, "expires_at": "2030-01-01T00:00:00.000Z"})
    }

    #[test]
    fn an_authenticator_reopened_from_its_file_signs_with_the_same_key() {
        let mut phone = Phone::new(reqwest::Client::new(), "http://127.0.0.1:8080/");
        phone.device_id = Some(Uuid::now_v7());
        phone.device_token = Some("csd_token".into());
        let first = Authenticator {
            phone,
            uid: "anna".into(),
        };
        let file = first.file();
        assert_eq!(file.server, "http://127.0.0.1:8080");
        let again = Authenticator::open(&file, reqwest::Client::new()).unwrap();
        assert_eq!(again.phone.public_key(), first.phone.public_key());
        assert_eq!(again.file(), file);
    }

    #[test]
    fn first_picks_the_oldest_request() {
        let (old, new) = (Uuid::now_v7(), Uuid::now_v7());
        let inbox = json!([item(new), item(old)]);
        assert_eq!(pick(&inbox, None).unwrap()["id"], json!(old));
        assert_eq!(pick(&inbox, Some(new)).unwrap()["id"], json!(new));
    }

    #[test]
    fn a_request_not_in_the_inbox_is_one_clear_error() {
        let error = pick(&json!([item(Uuid::now_v7())]), Some(Uuid::nil())).unwrap_err();
        assert!(error.to_string().contains("is not in this device's inbox"));
        let error = pick(&json!([]), None).unwrap_err();
        assert!(error.to_string().contains("the inbox is empty"));
    }

    #[test]
    fn a_refusal_names_the_servers_detail_and_code() {
        let answer = Answer {
            status: StatusCode::CONFLICT,
            body: json!({"code": "not_pending", "detail": "the action request is no longer pending"}),
            etag: None,
        };
        let error = expect(&answer, StatusCode::OK, "the approval").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the server refused the approval: the action request is no longer pending (409 not_pending)"
        );
    }
}
