//! `GET /metrics`: Prometheus text with the documented series after a connection and a send;
//! open to a direct loopback scraper, otherwise only with the access key.

mod common;

use serde_json::json;

use common::{Client, KEY, http, sent, start_hub};

#[tokio::test]
async fn metrics_answer_with_the_named_series_after_a_connection_and_a_send() {
    let hub = start_hub().await;
    let base = hub.base_url();
    let mut alice = Client::connect(&base, "alice").await;

    let r = sent(http().post(format!("{base}/api/SendMessageToUser?code={KEY}")).json(&json!({"userId": "alice", "message": "{\"PhoneNumber\":\"+15551234567\",\"comments\":\"Billing\"}"}))).await;
    assert_eq!(r.status(), 200);
    alice.expect_invocation("ReceiveNotification").await;

    let r = sent(http().get(format!("{base}/metrics"))).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for series in [
        "switchboard_connections{transport=\"websockets\",protocol=\"json\"}",
        "switchboard_messages_out_total",
        "switchboard_send_duration_seconds_bucket{route=\"adaptor\",le=\"0.001\"}",
        "switchboard_send_duration_seconds_count{route=\"adaptor\"}",
        "switchboard_calls{state=\"ringing\"}",
        "switchboard_calls{state=\"held\"}",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    // This hub holds one ringing call (other tests' hubs in this process add their own).
    let ringing = text
        .lines()
        .find(|l| l.starts_with("switchboard_calls{state=\"ringing\"}"))
        .unwrap();
    let n: f64 = ringing.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 1.0, "{ringing}");
}

#[tokio::test]
async fn metrics_through_a_proxy_need_the_access_key() {
    let hub = start_hub().await;
    let url = format!("{}/metrics", hub.base_url());
    let proxied = |req: reqwest::RequestBuilder| req.header("x-forwarded-for", "203.0.113.9");

    let r = proxied(http().get(&url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("access key"));
    let r = proxied(http().get(&url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for req in [
        proxied(http().get(&url)).bearer_auth(KEY),
        proxied(http().get(&url)).header("x-functions-key", KEY),
        proxied(http().get(format!("{url}?code={KEY}"))),
    ] {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
}

/// `switchboard_replay_buffered_bytes`: what stateful-reconnect connections keep until acked.
/// A stateful client that never acks holds the notifications sent to it in the gauge.
#[tokio::test]
async fn the_replay_buffer_shows_in_the_buffered_bytes_gauge() {
    use futures_util::{SinkExt, StreamExt};
    use switchboard_signalr::negotiate::{self, NegotiateResponse};
    use tokio_tungstenite::tungstenite::Message;

    let hub = start_hub().await;
    let base = hub.base_url();
    let token = common::dev_token(&base, "rita").await;
    let (url, access_token) = common::negotiate_redirect(&base, &token).await;
    let negotiate_url = negotiate::append_query(
        &negotiate::negotiate_url(&url),
        "useStatefulReconnect",
        "true",
    );
    let r = http()
        .post(negotiate_url)
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    let NegotiateResponse::Connection(c) =
        NegotiateResponse::decode(&r.text().await.unwrap()).unwrap()
    else {
        panic!("expected a connection")
    };
    assert!(c.use_stateful_reconnect);
    let ws_url = negotiate::websocket_url(
        &negotiate::connect_url(&url, c.connect_id()),
        Some(&access_token),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text("{\"protocol\":\"json\",\"version\":2}\u{1e}"))
        .await
        .unwrap();
    let handshake = ws.next().await.unwrap().unwrap();
    assert_eq!(handshake.into_text().unwrap().as_str(), "{}\u{1e}");

    let gauge = || async {
        let text = http()
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("switchboard_replay_buffered_bytes "))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .unwrap_or(0.0)
    };
    let before = gauge().await;
    for i in 0..3 {
        let message = format!(
            "{{\"PhoneNumber\":\"+1555123456{i}\",\"comments\":\"{}\"}}",
            "x".repeat(200)
        );
        let r = http()
            .post(format!("{base}/api/SendMessageToUser?code={KEY}"))
            .json(&json!({"userId": "rita", "message": message}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Read the three invocations (never acking them), then the gauge holds at least their bytes.
    let mut read = 0;
    while read < 3 {
        let frame = tokio::time::timeout(common::WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            read += text.matches("ReceiveNotification").count();
        }
    }
    let after = gauge().await;
    assert!(
        after - before >= 600.0,
        "gauge went from {before} to {after}"
    );
}
