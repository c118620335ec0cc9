//! Push delivery: with a push gateway configured, a new request records one `PushSent` per
//! device addressed and each notification reaches the gateway, signed, through the outbox —
//! even when the gateway refuses the first deliveries.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::receiver::Receiver;
use common::{spawn_app_with, transfer};
use countersign_api::channels::{Channel, ChannelsConfig};
use countersign_api::delivery::signature;
use serde_json::Value;

const SECRET: &str = "push gateway secret, 32+ chars";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_addressed_is_notified_through_the_gateway() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let gateway = Receiver {
        fail_first: 2,
        ..Receiver::default()
    };
    tokio::spawn(gateway.clone().serve(listener));
    let app = spawn_app_with(|c| {
        c.delivery_backoff = Duration::from_millis(100);
        c.delivery_interval = Duration::from_millis(100);
        c.channels = ChannelsConfig {
            channels: BTreeMap::from([(
                "push".to_owned(),
                Channel::Webhook {
                    url,
                    secret: SECRET.to_owned(),
                },
            )]),
        };
    })
    .await;
    let phone = app.enrol_phone("anna").await;
    let tablet = app.enrol_phone("anna").await;
    let view = app.create_request("anna", transfer("anna", "9.00")).await;
    let id = view["id"].as_str().unwrap();
    let types = app.event_types(id).await;
    assert_eq!(types, ["Created", "PushSent", "PushSent"]);

    let delivered = common::eventually(Duration::from_secs(10), || async {
        let got = gateway.deliveries();
        (got.len() == 2).then_some(got)
    })
    .await;
    let mut notified = Vec::new();
    for (header, body) in delivered {
        let t: i64 = header[2..header.find(',').unwrap()].parse().unwrap();
        let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
        assert_eq!(header, signature(SECRET.as_bytes(), at, &body), "signed");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["request_id"], id);
        assert_eq!(body["action"], common::ACTION);
        assert_eq!(body["display"], view["display"]);
        notified.push(body["device_id"].as_str().unwrap().to_owned());
    }
    notified.sort();
    let mut expected = vec![phone.id.to_string(), tablet.id.to_string()];
    expected.sort();
    assert_eq!(notified, expected);
    // The phone still reads what to sign from its inbox.
    assert_eq!(app.inbox_item(&phone, id).await["id"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_gateway_nothing_is_pushed() {
    let app = spawn_app_with(|_| {}).await;
    app.enrol_phone("anna").await;
    let view = app.create_request("anna", transfer("anna", "9.50")).await;
    let types = app.event_types(view["id"].as_str().unwrap()).await;
    assert_eq!(types, ["Created"]);
}
