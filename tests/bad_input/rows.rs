//! The table of malformed requests: what is sent, by whom, and the status and code expected.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::device::Phone;
use crate::common::{create_body, transfer};

/// Who sends a row's request.
#[derive(Clone, Copy)]
pub enum Who {
    /// The default client credential.
    Client,
    /// The enrolled phone's bearer token.
    Device,
}

const AR: &str = "/v1/action-requests";
const JSON: &str = "application/json";

/// One row of the table: what is sent and what must come back (400 `invalid_request` unless
/// the row says otherwise).
pub struct Row {
    /// What the row tries.
    pub name: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// Who sends it.
    pub who: Who,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The raw body.
    pub body: Option<Vec<u8>>,
    /// The expected status.
    pub status: u16,
    /// The expected problem code.
    pub code: &'static str,
}

impl Row {
    fn new(name: &'static str, method: Method, path: &str) -> Self {
        Row {
            name,
            method,
            path: path.to_owned(),
            who: Who::Client,
            headers: vec![],
            body: None,
            status: 400,
            code: "invalid_request",
        }
    }

    fn json(self, body: Value) -> Self {
        self.bytes(Some(JSON), serde_json::to_vec(&body).unwrap())
    }

    fn bytes(mut self, content_type: Option<&str>, body: Vec<u8>) -> Self {
        if let Some(content_type) = content_type {
            self.headers.push(("content-type", content_type.to_owned()));
        }
        self.body = Some(body);
        self
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    fn device(mut self) -> Self {
        self.who = Who::Device;
        self
    }

    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

fn get(name: &'static str, path: &str) -> Row {
    Row::new(name, Method::GET, path)
}

fn post(name: &'static str, path: &str, body: Value) -> Row {
    Row::new(name, Method::POST, path).json(body)
}

/// A create request whose `field` is `value` (removed when `value` is null).
fn create_with(field: &str, value: Value) -> Value {
    let mut body = create_body("anna", transfer("anna", "1.00"));
    if value.is_null() {
        body.as_object_mut().unwrap().remove(field);
    } else {
        body[field] = value;
    }
    body
}

fn field(name: &'static str, field: &str, value: Value) -> Row {
    post(name, AR, create_with(field, value))
}

/// Bad creations of action requests.
pub fn create_rows() -> Vec<Row> {
    let valid = serde_json::to_vec(&create_with("uid", json!("anna"))).unwrap();
    let nested = format!(
        "{{\"action\":\"{}\",\"uid\":\"anna\",\"payload\":{{\"x\":{}1{}}}}}",
        crate::common::ACTION,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let huge = create_with("payload", json!({"blob": "x".repeat(70 * 1024)}));
    let digits = br#"{"action":"bank:transfers:create","uid":"anna","payload":{},"ttl_seconds":99999999999999999999}"#;
    let raw = |name| Row::new(name, Method::POST, AR);
    vec![
        raw("malformed JSON").bytes(Some(JSON), b"{\"action\": ".to_vec()),
        raw("empty body").bytes(Some(JSON), vec![]),
        raw("invalid UTF-8").bytes(Some(JSON), vec![b'{', 0xff, 0xfe, b'}']),
        raw("deeply nested JSON").bytes(Some(JSON), nested.into_bytes()),
        raw("text/plain body").bytes(Some("text/plain"), valid.clone()),
        raw("no content type").bytes(None, valid),
        raw("ttl of 20 digits").bytes(Some(JSON), digits.to_vec()),
        post("body over 64 KiB", AR, huge).expect(413, "payload_too_large"),
        post("array body", AR, json!([])),
        field("user without device", "uid", json!("nobody")).expect(422, "no_active_device"),
        field("unknown field", "colour", json!("red")),
        field("missing action", "action", Value::Null),
        field("uid of wrong type", "uid", json!(5)),
        field("uid with a slash", "uid", json!("a/b")),
        field("uid too long", "uid", json!("u".repeat(129))),
        field("bad action name", "action", json!("bank transfers")),
        field("payload not an object", "payload", json!([1, 2])),
        field("ttl 1e30", "ttl_seconds", json!(1e30)),
        field("ttl below 30", "ttl_seconds", json!(29)),
        field("ttl above 900", "ttl_seconds", json!(901)),
        field("negative ttl", "ttl_seconds", json!(-1)),
        field("ttl as text", "ttl_seconds", json!("180")),
        field("nested display", "display", json!({"a": {"b": "c"}})),
        field("display of 21 entries", "display", Value::Object(many)),
        field("display with a number", "display", json!({"Amount": 5})),
        field("display as a list", "display", json!(["a"])),
        field("unknown method", "method", json!("telepathy")),
        field("unknown device selection", "devices", json!("some")),
        field("method not offered", "method", json!("sms")).expect(422, "invalid_request"),
        field("unknown fallback", "fallback", json!("sms")),
        field("fallback as a number", "fallback", json!(1)),
        field(
            "callback_url not http",
            "callback_url",
            json!("ftp://bank.example/cb"),
        ),
        field("callback_url relative", "callback_url", json!("/cb")),
        field("callback_url as a number", "callback_url", json!(7)),
        field("Idempotency-Key too long", "uid", json!("anna"))
            .header("idempotency-key", "k".repeat(256)),
        field("empty Idempotency-Key", "uid", json!("anna"))
            .header("idempotency-key", String::new()),
    ]
}

/// Bad paths, queries, enrolments, consumptions and decisions on the pending request `id`.
pub fn other_rows(id: &str, phone: &Phone, item: &Value) -> Vec<Row> {
    let poll = format!("{AR}/{id}");
    let confirm = format!("{AR}/{id}/confirm");
    let signature = phone.sign(item, "confirm");
    let decision = |name, extra: Value| {
        let mut body = json!({"device_id": phone.id, "signature": signature});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(name, &confirm, body).device()
    };
    let enrol = "/v1/users/anna/devices";
    let consume = "/v1/tokens/consume";
    vec![
        Row::new("wrong method", Method::PUT, AR).expect(405, "method_not_allowed"),
        get("unknown endpoint", "/v1/nothing-here").expect(404, "not_found"),
        get("unknown request", &format!("{AR}/{}", uuid::Uuid::now_v7())).expect(404, "not_found"),
        get("bad request id", &format!("{AR}/not-a-uuid")),
        Row::new(
            "bad id to cancel",
            Method::POST,
            &format!("{AR}/123/cancel"),
        ),
        get("wait over 30", &format!("{poll}?wait=31")),
        get("wait not a number", &format!("{poll}?wait=abc")),
        get("negative wait", &format!("{poll}?wait=-1")),
        Row::new(
            "bad device id to revoke",
            Method::DELETE,
            &format!("{enrol}/not-a-uuid"),
        ),
        get("uid with an encoded slash", "/v1/users/a%2Fb/devices"),
        post(
            "garbage public key",
            enrol,
            json!({"kind": "push", "name": "p", "public_key": "!!!"}),
        ),
        post(
            "key not SPKI",
            enrol,
            json!({"kind": "push", "name": "p", "public_key": "AAAA"}),
        ),
        post(
            "push device without key",
            enrol,
            json!({"kind": "push", "name": "p"}),
        ),
        post(
            "device without name",
            enrol,
            json!({"kind": "push", "public_key": "AAAA"}),
        ),
        post(
            "unknown device kind",
            enrol,
            json!({"kind": "fax", "name": "r"}),
        ),
        post(
            "ocra device with a public key",
            enrol,
            json!({"kind": "ocra", "name": "r", "public_key": "AAAA"}),
        ),
        post(
            "consume without payload",
            consume,
            json!({"token": "cst_x", "action": "a:b"}),
        ),
        post(
            "token as number",
            consume,
            json!({"token": 7, "action": "a:b", "payload": {}}),
        ),
        get("bad inbox id", "/v1/devices/not-a-uuid/inbox").device(),
        post("bad id to confirm", &format!("{AR}/xyz/confirm"), json!({})).device(),
        decision("device id not a uuid", json!({"device_id": "phone"})),
        decision("missing signature", json!({"signature": null})),
        decision("signature as number", json!({"signature": 12})),
        decision(
            "garbage base64 signature",
            json!({"signature": "%%% not base64 %%%"}),
        ),
        decision("unknown decision field", json!({"colour": "red"})),
    ]
}
