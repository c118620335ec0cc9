//! A webhook receiver on a real port, for callbacks and gateways: it records what it is sent
//! and can refuse the first deliveries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;

/// A callback receiver on a real port that refuses the first `fail_first` deliveries.
#[derive(Clone, Default)]
pub struct Receiver {
    /// (signature header, body) of each accepted delivery.
    pub received: Arc<Mutex<Vec<(String, String)>>>,
    /// Deliveries tried, refused ones included.
    pub calls: Arc<AtomicUsize>,
    /// How many deliveries to refuse first.
    pub fail_first: usize,
}

impl Receiver {
    /// Serves `/hook` on `listener` until the test ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let receiver = self.clone();
                async move {
                    let call = receiver.calls.fetch_add(1, Ordering::SeqCst);
                    if call < receiver.fail_first {
                        return AxumStatus::INTERNAL_SERVER_ERROR;
                    }
                    let signed = headers
                        .get("countersign-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    receiver.received.lock().unwrap().push((signed, body));
                    AxumStatus::NO_CONTENT
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    }

    /// What was accepted so far.
    pub fn deliveries(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().clone()
    }
}

/// A free loopback port, with nothing listening on it yet.
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
