//! The floor: a bare tokio-tungstenite echo server with the hub's WebSocket settings (4 KiB read
//! buffer, 256 KiB message and frame limits) and nothing else. What it costs per idle connection
//! is what this stack costs before any SignalR state of ours.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The hub's transport limits (crates/hub: `READ_BUFFER_SIZE`, `MAX_TRANSPORT_MESSAGE_BYTES`).
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(256 * 1024))
        .max_frame_size(Some(256 * 1024))
}

/// Listens on `127.0.0.1:0`, prints `listening on http://ADDR`, echoes text and binary messages
/// until the process is killed.
pub async fn run() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config())).await
            else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if message.is_close() {
                    return;
                }
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}
