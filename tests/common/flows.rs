//! The steps of an approval as the tests take them: enrol a phone, create, read the inbox,
//! decide, poll; and reading the log behind the server.

use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::device::{b64, Phone};
use super::{create_body, Auth, Reply, TestApp};

impl TestApp {
    /// Enrols a push device for `uid` as the default client.
    pub async fn enrol_phone(&self, uid: &str) -> Phone {
        self.enrol_phone_as(Auth::Basic(&self.client_id, &self.secret), uid)
            .await
    }

    /// Enrols a push device for `uid` with the given client authentication.
    pub async fn enrol_phone_as(&self, auth: Auth<'_>, uid: &str) -> Phone {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let der = key
            .verifying_key()
            .to_public_key_der()
            .expect("SPKI encodes");
        let body = json!({"kind": "push", "name": "Anna's phone",
            "public_key": b64(der.as_bytes())});
        let reply = self
            .call(
                Method::POST,
                &format!("/v1/users/{uid}/devices"),
                auth,
                Some(&body),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "enrolment: {:?}",
            reply.body
        );
        Phone {
            id: reply.body["device_id"].as_str().unwrap().parse().unwrap(),
            token: reply.body["device_token"].as_str().unwrap().to_owned(),
            key,
        }
    }

    /// Creates a request for `uid` with `payload` (and no display); asserts 201.
    pub async fn create_request(&self, uid: &str, payload: Value) -> Value {
        let reply = self
            .client(
                Method::POST,
                "/v1/action-requests",
                Some(&create_body(uid, payload)),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create: {:?}",
            reply.body
        );
        reply.body
    }

    /// The default client's poll of request `id`.
    pub async fn poll(&self, id: &str) -> Reply {
        self.client(Method::GET, &format!("/v1/action-requests/{id}"), None)
            .await
    }

    /// The inbox entry of request `id` for `phone`; panics when it is not listed.
    pub async fn inbox_item(&self, phone: &Phone, id: &str) -> Value {
        let reply = self
            .call(
                Method::GET,
                &format!("/v1/devices/{}/inbox", phone.id),
                Auth::Bearer(&phone.token),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "inbox: {:?}", reply.body);
        let items = reply.body.as_array().expect("the inbox is a list");
        items
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .expect("the request is in the inbox")
    }

    /// Sends `phone`'s decision (`confirm` or `reject`) with `signature` on request `id`.
    pub async fn decide(&self, phone: &Phone, id: &str, verb: &str, signature: &str) -> Reply {
        let body = json!({"device_id": phone.id, "signature": signature});
        let path = format!("/v1/action-requests/{id}/{verb}");
        self.call(Method::POST, &path, Auth::Bearer(&phone.token), Some(&body))
            .await
    }

    /// Reads the inbox, signs `verb` (raw r‖s) and sends it.
    pub async fn sign_and_decide(&self, phone: &Phone, id: &str, verb: &str) -> Reply {
        let item = self.inbox_item(phone, id).await;
        let signature = phone.sign(&item, verb);
        self.decide(phone, id, verb, &signature).await
    }

    /// Creates a request for a fresh phone's user and confirms it: (request view, token).
    pub async fn confirmed_request(
        &self,
        phone: &Phone,
        uid: &str,
        payload: Value,
    ) -> (Value, String) {
        let created = self.create_request(uid, payload).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let reply = self.sign_and_decide(phone, &id, "confirm").await;
        assert_eq!(reply.status, StatusCode::OK, "confirm: {:?}", reply.body);
        let polled = self.poll(&id).await;
        let token = polled.body["token"].as_str().expect("a token").to_owned();
        (polled.body, token)
    }

    /// The position of the last event in the log.
    pub async fn head(&self) -> u64 {
        self.state.store.head().await.expect("the head")
    }

    /// The event types of request `id`'s stream, in order.
    pub async fn event_types(&self, id: &str) -> Vec<String> {
        let events = self
            .state
            .store
            .read_stream(&format!("action-request-{id}"))
            .await
            .expect("the stream");
        events.into_iter().map(|e| e.event_type).collect()
    }
}
