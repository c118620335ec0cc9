//! `countersign demo`: one whole approval, played by a bank and a phone over real HTTP against a
//! server started in-process on a temporary SQLite file, then the request's event history.

use std::time::Duration;

use countersign_domain::approval::Decision;
use reqwest::Method;
use serde_json::{json, Value};

use super::authenticator::{pick, Authenticator};
use super::local::LocalServer;
use super::phone::{Answer, Bank};

/// The fields of an answer worth reading in a terminal, with long values shortened.
fn brief(value: &Value) -> String {
    const KEYS: &[&str] = &[
        "status",
        "code",
        "id",
        "device_id",
        "action_request_id",
        "binding",
        "nonce",
        "token",
        "attempts_left",
        "consumed_at",
        "version",
        "detail",
    ];
    let short = |k: &str, v: &Value| match v.as_str() {
        Some(s) if s.chars().count() > 20 && k != "detail" && k != "code" => {
            format!("{}…", s.chars().take(16).collect::<String>())
        }
        Some(s) => s.to_owned(),
        None => v.to_string(),
    };
    match value {
        Value::Object(map) => KEYS
            .iter()
            .filter_map(|k| map.get(*k).map(|v| format!("{k}={}", short(k, v))))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => format!(
            "[{} item(s)] {}",
            items.len(),
            items.first().map(brief).unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

fn show(who: &str, request: &str, answer: &Answer) {
    println!("{who:>5} → {request}");
    println!("      ← {} {}", answer.status.as_u16(), brief(&answer.body));
}

/// Runs the demo and prints what happens.
pub async fn run() -> anyhow::Result<()> {
    let server = LocalServer::start("Demo Bank", "bank:transfers:*", true, None).await?;
    let (base, client, store) = (&server.base, &server.client, server.db.events());
    println!(
        "Countersign demo: server on {base}, database {}\n",
        server.url
    );

    let http = reqwest::Client::new();
    let bank = Bank::new(http.clone(), base, &client.id.to_string(), &client.secret);
    let (phone, enrolled) = Authenticator::enrol(&bank, http, base, "anna", "Anna's phone").await?;
    show(
        "bank",
        "POST /v1/users/anna/devices {kind: push, public_key}",
        &enrolled,
    );

    let payload = json!({"amount": "234.00", "currency": "EUR", "bankTransferRecipientId": "R1", "uid": "anna"});
    let body = json!({
        "action": "bank:transfers:create",
        "uid": "anna",
        "payload": payload,
        "display": {"Amount": "234.00 EUR", "Payee": "ACME GmbH"},
    });
    let created = bank
        .call(Method::POST, "/v1/action-requests", Some(&body))
        .await?;
    show(
        "bank",
        "POST /v1/action-requests (234.00 EUR to ACME GmbH)",
        &created,
    );
    anyhow::ensure!(
        created.status.as_u16() == 201,
        "the request was not created"
    );
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();

    let inbox = phone.inbox(Duration::ZERO).await?;
    show("phone", "GET /v1/devices/{device}/inbox", &inbox);
    let item = pick(&inbox.body, Some(id.parse()?))?;

    let confirmed = phone.decide(&item, Decision::Confirm).await?;
    show(
        "phone",
        "POST /v1/action-requests/{id}/confirm (signed with the device key)",
        &confirmed,
    );

    let polled = bank
        .call(Method::GET, &format!("/v1/action-requests/{id}"), None)
        .await?;
    show("bank", "GET /v1/action-requests/{id}", &polled);
    let token = polled.body["token"].as_str().unwrap_or_default().to_owned();

    let consume = json!({"token": token, "action": "bank:transfers:create", "payload": payload});
    let consumed = bank
        .call(Method::POST, "/v1/tokens/consume", Some(&consume))
        .await?;
    show("bank", "POST /v1/tokens/consume", &consumed);
    anyhow::ensure!(
        consumed.status.as_u16() == 200,
        "the token was not consumed"
    );

    let again = bank
        .call(Method::POST, "/v1/tokens/consume", Some(&consume))
        .await?;
    show("bank", "POST /v1/tokens/consume (again)", &again);
    anyhow::ensure!(
        again.status.as_u16() == 409,
        "a second consume was not refused"
    );

    println!("\nEvent history of action request {id}:");
    let stream = countersign_domain::action_request::stream_id(id.parse()?);
    for event in store.read_stream(&stream).await? {
        println!(
            "  #{:<4} v{:<2} {:<20} by {:<6} at {}",
            event.position,
            event.stream_version,
            event.event_type,
            serde_json::to_value(event.metadata.actor.kind)?
                .as_str()
                .unwrap_or_default(),
            crate::time::format(event.recorded_at),
        );
    }
    Ok(())
}
