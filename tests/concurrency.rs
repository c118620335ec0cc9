//! Races: many consumes of one token, and confirm, reject and cancel of one request at once.

mod common;

use std::sync::Arc;

use common::{spawn_app, transfer, Auth, ACTION};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_consumes_of_one_token_succeed_exactly_once() {
    let app = Arc::new(spawn_app().await);
    let phone = app.enrol_phone("anna").await;
    let payload = transfer("anna", "99.00");
    let (view, token) = app.confirmed_request(&phone, "anna", payload.clone()).await;
    let body = json!({"token": token, "action": ACTION, "payload": payload});
    let replies = join_all((0..40).map(|_| {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move {
            app.client(Method::POST, "/v1/tokens/consume", Some(&body))
                .await
        })
    }))
    .await;
    let replies: Vec<_> = replies.into_iter().map(|r| r.unwrap()).collect();
    let won: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "exactly one consume wins");
    for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
        common::assert_problem(lost, 409, "token_already_consumed");
    }
    let id = view["id"].as_str().unwrap();
    let consumed = app
        .event_types(id)
        .await
        .iter()
        .filter(|t| *t == "TokenConsumed")
        .count();
    assert_eq!(consumed, 1, "one TokenConsumed event");
    assert_eq!(app.poll(id).await.body["status"], "CONSUMED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_reject_and_cancel_racing_have_exactly_one_outcome() {
    let app = Arc::new(spawn_app().await);
    let phone = Arc::new(app.enrol_phone("anna").await);
    for round in 0..20 {
        let created = app
            .create_request("anna", transfer("anna", &format!("{round}.00")))
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let item = app.inbox_item(&phone, &id).await;
        let (confirm, reject) = (phone.sign(&item, "confirm"), phone.sign(&item, "reject"));
        let calls = [
            ("confirm", confirm),
            ("reject", reject),
            ("cancel", String::new()),
        ]
        .map(|(verb, signature)| {
            let (app, phone, id) = (app.clone(), phone.clone(), id.clone());
            tokio::spawn(async move {
                let reply = if verb == "cancel" {
                    let path = format!("/v1/action-requests/{id}/cancel");
                    app.call(
                        Method::POST,
                        &path,
                        Auth::Basic(&app.client_id, &app.secret),
                        None,
                    )
                    .await
                } else {
                    app.decide(&phone, &id, verb, &signature).await
                };
                (verb, reply)
            })
        });
        let replies: Vec<_> = join_all(calls)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let winners: Vec<_> = replies
            .iter()
            .filter(|(_, r)| r.status == StatusCode::OK)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: one winner among {replies:?}"
        );
        for (_, lost) in replies.iter().filter(|(_, r)| r.status != StatusCode::OK) {
            common::assert_problem(lost, 409, "not_pending");
        }
        let types = app.event_types(&id).await;
        let decisions: Vec<_> = types
            .iter()
            .filter(|t| *t == "Confirmed" || *t == "Rejected")
            .collect();
        assert_eq!(
            decisions.len(),
            1,
            "round {round}: one decision in {types:?}"
        );
        let (verb, _) = winners[0];
        let expected = match *verb {
            "confirm" => ("Confirmed", "CONFIRMED"),
            _ => ("Rejected", "REJECTED"),
        };
        assert_eq!(decisions[0], expected.0, "round {round}");
        assert_eq!(
            app.poll(&id).await.body["status"],
            expected.1,
            "round {round}"
        );
    }
}
