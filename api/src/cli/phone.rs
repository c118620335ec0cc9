//! A bank back end and a push authenticator as HTTP clients, for the demo and the benchmark.
//!
//! They speak only the public API, exactly as an integrator's code would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use countersign_domain::approval::{approval_message, Decision};
use countersign_domain::binding::Binding;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use reqwest::header::{ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// One HTTP exchange: status and JSON body (`null` when empty).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON.
    pub body: Value,
    /// The `ETag` header, when the server sent one.
    pub etag: Option<String>,
}

/// How a request authenticates.
enum Auth<'a> {
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

async fn send(
    http: &reqwest::Client,
    url: String,
    method: Method,
    auth: Auth<'_>,
    body: Option<&Value>,
) -> anyhow::Result<Answer> {
    let mut request = http.request(method, url);
    request = match auth {
        Auth::Basic(id, secret) => request.basic_auth(id, Some(secret)),
        Auth::Bearer(token) => request.bearer_auth(token),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
    let response = request.send().await?;
    let status = response.status();
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok(Answer { status, body, etag })
}

/// A relying party with client credentials.
#[derive(Clone)]
pub struct Bank {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Bank {
    /// A client of the server at `base` (`http://host:port`).
    pub fn new(http: reqwest::Client, base: &str, id: &str, secret: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            id: id.to_owned(),
            secret: secret.to_owned(),
        }
    }

    /// Sends an authenticated request.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let auth = Auth::Basic(&self.id, &self.secret);
        send(&self.http, url, method, auth, body).await
    }

    /// Enrols a push device for `uid`.
    pub async fn enrol(&self, uid: &str, name: &str, public_key: &str) -> anyhow::Result<Answer> {
        let body = json!({"kind": "push", "name": name, "public_key": public_key});
        let path = format!("/v1/users/{}/devices", segment(uid));
        self.call(Method::POST, &path, Some(&body)).await
    }
}

/// `text` as one URL path segment: all but RFC 3986's unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A push authenticator holding a P-256 device key.
#[derive(Clone)]
pub struct Phone {
    http: reqwest::Client,
    base: String,
    key: SigningKey,
    /// Set once enrolled.
    pub device_id: Option<Uuid>,
    /// Set once enrolled.
    pub device_token: Option<String>,
}

impl Phone {
    /// A phone with a fresh device key.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: SigningKey::random(&mut rand::rngs::OsRng),
            device_id: None,
            device_token: None,
        }
    }

    /// A phone that was enrolled before, with its key and the enrolment's device id and token.
    pub fn restore(
        http: reqwest::Client,
        base: &str,
        pkcs8: &[u8],
        device_id: Uuid,
        device_token: &str,
    ) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_der(pkcs8)
            .map_err(|_| anyhow::anyhow!("the device key is not a P-256 PKCS#8 key"))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            device_id: Some(device_id),
            device_token: Some(device_token.to_owned()),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The private key as PKCS#8 DER, for keeping it in a file.
    pub fn private_key_pkcs8(&self) -> Vec<u8> {
        self.key
            .to_pkcs8_der()
            .expect("a P-256 key encodes")
            .as_bytes()
            .to_vec()
    }

    /// The public key as base64url SPKI DER, for enrolment.
    pub fn public_key(&self) -> String {
        let der = self
            .key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 key encodes");
        URL_SAFE_NO_PAD.encode(der.as_bytes())
    }

    /// Remembers the enrolment answer's device id and token.
    pub fn enrolled(&mut self, answer: &Answer) -> anyhow::Result<()> {
        let id = answer.body["device_id"].as_str().unwrap_or_default();
        self.device_id = Some(id.parse()?);
        self.device_token = answer.body["device_token"].as_str().map(str::to_owned);
        anyhow::ensure!(
            self.device_token.is_some(),
            "enrolment returned no device token"
        );
        Ok(())
    }

    /// Signs a decision (raw r‖s, base64url) over the approval message.
    pub fn sign(
        &self,
        id: Uuid,
        decision: Decision,
        binding: &str,
        nonce: &str,
    ) -> anyhow::Result<String> {
        let binding = Binding::parse(binding)?;
        let message = approval_message(id, decision, &binding, nonce);
        let signature: Signature = self.key.sign(message.as_bytes());
        Ok(URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let auth = Auth::Bearer(self.device_token.as_deref().unwrap_or_default());
        send(&self.http, url, method, auth, body).await
    }

    /// The device's inbox.
    pub async fn inbox(&self) -> anyhow::Result<Answer> {
        let id = self.device_id.unwrap_or_default();
        self.call(Method::GET, &format!("/v1/devices/{id}/inbox"), None)
            .await
    }

    /// The device's inbox, long-polled: unless its entity tag differs from `etag` already, the
    /// answer comes when the inbox changes, or after `wait_seconds` as `304` without a body.
    pub async fn inbox_wait(&self, wait_seconds: u64, etag: &str) -> anyhow::Result<Answer> {
        let id = self.device_id.unwrap_or_default();
        let url = format!("{}/v1/devices/{id}/inbox?wait={wait_seconds}", self.base);
        let request = self
            .http
            .get(url)
            .bearer_auth(self.device_token.as_deref().unwrap_or_default())
            .header(IF_NONE_MATCH, etag);
        answer(request).await
    }

    /// Signs and sends a decision on an inbox item (`id`, `binding`, `nonce`).
    pub async fn decide(&self, item: &Value, decision: Decision) -> anyhow::Result<Answer> {
        let id: Uuid = item["id"].as_str().unwrap_or_default().parse()?;
        let binding = item["binding"].as_str().unwrap_or_default();
        let nonce = item["nonce"].as_str().unwrap_or_default();
        let signature = self.sign(id, decision, binding, nonce)?;
        let verb = match decision {
            Decision::Confirm => "confirm",
            Decision::Reject => "reject",
        };
        let body = json!({"device_id": self.device_id, "signature": signature});
        self.call(
            Method::POST,
            &format!("/v1/action-requests/{id}/{verb}"),
            Some(&body),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_is_one_path_segment_whatever_it_holds() {
        assert_eq!(segment("anna-1_b.c~"), "anna-1_b.c~");
        assert_eq!(segment("a b/c?d#é"), "a%20b%2Fc%3Fd%23%C3%A9");
    }
}
