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
