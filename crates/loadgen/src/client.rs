//! The load generator's WebSocket clients: connect (with the SignalR JSON handshake, or the same
//! bytes echoed by the floor server), then hold the connection idle, answering nothing, sending
//! a Ping every 10 s (the hub drops a client silent for 30 s) and timing every `bench`
//! invocation that arrives. A held connection that drops reconnects when asked to (the
//! reconnect storm), with jitter, until the run's deadline.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use switchboard_signalr::HubMessage;
use switchboard_signalr::handshake::{HandshakeRequest, HandshakeResponse};
use switchboard_signalr::json::{self, RecordBuffer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The target name of the load generator's own invocations; the argument is the send time in
/// microseconds since [`Shared::epoch`].
pub const BENCH_TARGET: &str = "bench";

/// What every client of a run shares.
pub struct Shared {
    /// The zero of all timestamps in this process.
    pub epoch: Instant,
    /// Delivery latencies of `bench` invocations, in milliseconds.
    pub latencies_ms: Mutex<Vec<f64>>,
    /// Connections open (handshake done) now.
    pub open: AtomicUsize,
    /// Set to true to close every held connection.
    pub stop: watch::Sender<bool>,
    /// Whether a dropped connection reconnects, and until when.
    pub reconnect_until: Mutex<Option<Instant>>,
}

impl Shared {
    /// A fresh set of shared counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            latencies_ms: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            stop: watch::channel(false).0,
            reconnect_until: Mutex::new(None),
        })
    }

    /// Microseconds since [`Shared::epoch`].
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// Which server a client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// switchboard-hub: SignalR handshake, pings, `bench` invocations.
    Hub,
    /// The bare echo server: the handshake bytes come back as they went.
    Floor,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_config() -> WebSocketConfig {
    // Small buffers: the client process holds as many connections as the server does.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens one connection to `url` and completes the handshake, within `timeout`.
pub async fn connect(url: &str, peer: Peer, timeout: Duration) -> Result<Ws, String> {
    tokio::time::timeout(timeout, connect_inner(url, peer))
        .await
        .map_err(|_| format!("connect timed out after {timeout:?}"))?
}

async fn connect_inner(url: &str, peer: Peer) -> Result<Ws, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), false)
        .await
        .map_err(|e| e.to_string())?;
    let request = HandshakeRequest {
        protocol: "json".into(),
        version: 1,
    };
    ws.send(Message::text(request.encode()))
        .await
        .map_err(|e| e.to_string())?;
    let mut records = RecordBuffer::new();
    while let Some(message) = ws.next().await {
        let text = match message.map_err(|e| e.to_string())? {
            Message::Text(text) => text,
            Message::Close(_) => return Err("closed during the handshake".into()),
            _ => continue,
        };
        if let Some(record) = records.push_str(text.as_str()).into_iter().next() {
            let record = record.map_err(|e| e.to_string())?;
            return match peer {
                Peer::Hub => HandshakeResponse::decode(&record)
                    .map(|()| ws)
                    .map_err(|e| e.to_string()),
                Peer::Floor => Ok(ws),
            };
        }
    }
    Err("closed during the handshake".into())
}

/// Holds `ws` open until [`Shared::stop`]; reconnects to `url` while
/// [`Shared::reconnect_until`] allows. `seed` varies the reconnect jitter per client.
pub async fn hold(mut ws: Ws, url: String, peer: Peer, shared: Arc<Shared>, seed: u64) {
    let mut stop = shared.stop.subscribe();
    let mut jitter = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    loop {
        shared.open.fetch_add(1, Ordering::SeqCst);
        let stopped = serve(&mut ws, peer, &shared, &mut stop).await;
        shared.open.fetch_sub(1, Ordering::SeqCst);
        if stopped {
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            return;
        }
        // Dropped by the server: reconnect with jitter while the storm window lasts.
        loop {
            let until = *shared.reconnect_until.lock().expect("not poisoned");
            match until {
                Some(until) if Instant::now() < until => {}
                _ => return,
            }
            jitter ^= jitter << 13;
            jitter ^= jitter >> 7;
            jitter ^= jitter << 17;
            let wait = Duration::from_millis(50 + jitter % 450);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if let Ok(fresh) = connect(&url, peer, Duration::from_secs(10)).await {
                ws = fresh;
                break;
            }
        }
    }
}

/// Serves one connection; true when told to stop, false when the peer dropped it.
async fn serve(ws: &mut Ws, peer: Peer, shared: &Shared, stop: &mut watch::Receiver<bool>) -> bool {
    let mut records = RecordBuffer::new();
    let mut ping = tokio::time::interval(Duration::from_secs(10));
    ping.tick().await;
    let ping_record = json::encode(&HubMessage::Ping);
    loop {
        if *stop.borrow() {
            return true;
        }
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
                    Some(Ok(_)) => continue,
                };
                for record in records.push_str(text.as_str()).into_iter().flatten() {
                    if let Ok(Some(HubMessage::Invocation { target, arguments, .. })) = json::decode(&record)
                        && target == BENCH_TARGET
                        && let Some(sent_us) = arguments.first().and_then(serde_json::Value::as_u64)
                    {
                        let ms = shared.now_us().saturating_sub(sent_us) as f64 / 1000.0;
                        shared.latencies_ms.lock().expect("not poisoned").push(ms);
                    }
                }
            }
            _ = ping.tick(), if peer == Peer::Hub => {
                if ws.send(Message::text(ping_record.clone())).await.is_err() {
                    return false;
                }
            }
            _ = stop.changed() => return true,
        }
    }
}
