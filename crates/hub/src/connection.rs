//! One client connection over WebSockets, server side (`HubProtocol.md`, `TransportProtocols.md`).
//!
//! - The first record must be a handshake request for protocol `json`, version 1 or 2; the
//!   answer is `{}` or `{"error":"Requested protocol 'X' is not available."}` (then the socket
//!   closes). The handshake must come within `Timeouts::handshake`.
//! - Records are joined and split with [`RecordBuffer`]: several per frame, or one across frames.
//! - A record (or an unfinished one) longer than [`MAX_MESSAGE_BYTES`] closes the connection with
//!   a Close message naming the limit (ASP.NET Core's default maximum message size, 32 KB).
//! - A malformed record is logged and dropped; the connection goes on.
//! - Keep-alive: a Ping after `Timeouts::keep_alive` without sending; a Close with error
//!   `Client timeout` after `Timeouts::client_timeout` without receiving.
//! - Hub shutdown: a Close with `allowReconnect: true`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_signalr::handshake::{HandshakeRequest, HandshakeResponse};
use switchboard_signalr::json::{self as signalr_json, RecordBuffer};
use switchboard_signalr::{CompletionOutcome, HubMessage};
use tokio::sync::mpsc;

use crate::hub::{ConnectionInfo, Hub, Outbound};

/// Largest hub message accepted from a client, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest WebSocket message or frame the transport reads at all; anything up to this gets a
/// proper Close message when it breaks [`MAX_MESSAGE_BYTES`].
pub const MAX_TRANSPORT_MESSAGE_BYTES: usize = 256 * 1024;
/// The Close error sent on client timeout.
pub const CLIENT_TIMEOUT: &str = "Client timeout";
/// The Close error sent when the hub shuts down (with `allowReconnect: true`).
pub const SHUTTING_DOWN: &str = "Hub is shutting down";

/// The Close error text for an oversized message.
pub fn message_too_large() -> String {
    format!("Message exceeds the maximum message size of {MAX_MESSAGE_BYTES} bytes (32 KB)")
}

enum End {
    /// Send a Close message, then close the socket.
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// Close the socket without a Close message (failed handshake, client left).
    Quiet,
}

struct Conn {
    hub: Arc<Hub>,
    info: ConnectionInfo,
    records: RecordBuffer,
    rx: Option<mpsc::Receiver<Outbound>>,
    out: Vec<String>,
    end: Option<End>,
}

async fn recv(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the connection until it closes.
pub(crate) async fn run(socket: WebSocket, hub: Arc<Hub>, info: ConnectionInfo) {
    let timeouts = hub.config.timeouts;
    let (mut sink, mut stream) = socket.split();
    let mut shutdown = hub.subscribe_shutdown();
    let started = Instant::now();
    let mut last_received = started;
    let mut last_sent = started;
    let handshake_deadline = started + timeouts.handshake;
    let mut conn = Conn {
        hub: hub.clone(),
        info,
        records: RecordBuffer::new(),
        rx: None,
        out: Vec::new(),
        end: None,
    };
    tracing::debug!(connection_id = %conn.info.connection_id, "websocket open");
    if *shutdown.borrow() {
        conn.end = Some(End::Quiet);
    }

    while conn.end.is_none() {
        let deadline = if conn.rx.is_none() {
            handshake_deadline
        } else {
            (last_sent + timeouts.keep_alive).min(last_received + timeouts.client_timeout)
        };
        tokio::select! {
            frame = stream.next() => {
                last_received = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => conn.handle_bytes(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => conn.handle_bytes(&bytes),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => conn.end = Some(End::Quiet),
                    Some(Err(e)) => {
                        tracing::debug!(connection_id = %conn.info.connection_id, error = %e, "websocket error");
                        // Too-large frames land here; say so if the socket still takes it.
                        conn.end = Some(if conn.rx.is_some() && e.to_string().contains("too long") {
                            End::Close { error: Some(message_too_large()), allow_reconnect: false }
                        } else {
                            End::Quiet
                        });
                    }
                }
            }
            outbound = recv(&mut conn.rx) => match outbound {
                Some(Outbound::Record(record)) => {
                    if sink.send(Message::Text(record)).await.is_err() {
                        conn.end = Some(End::Quiet);
                    }
                    last_sent = Instant::now();
                }
                Some(Outbound::Close { error, allow_reconnect }) => {
                    conn.end = Some(End::Close { error, allow_reconnect });
                }
                None => conn.end = Some(End::Quiet),
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if conn.rx.is_none() {
                    tracing::info!(connection_id = %conn.info.connection_id, "handshake timeout");
                    conn.end = Some(End::Quiet);
                } else if now >= last_received + timeouts.client_timeout {
                    tracing::info!(connection_id = %conn.info.connection_id, "client timeout");
                    conn.end = Some(End::Close { error: Some(CLIENT_TIMEOUT.into()), allow_reconnect: false });
                } else if now >= last_sent + timeouts.keep_alive {
                    conn.out.push(signalr_json::encode(&HubMessage::Ping));
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    conn.end = Some(if conn.rx.is_some() {
                        End::Close { error: Some(SHUTTING_DOWN.into()), allow_reconnect: true }
                    } else {
                        End::Quiet
                    });
                }
            }
        }

        if !conn.out.is_empty() {
            let text: String = conn.out.drain(..).collect();
            if sink
                .send(Message::Text(Utf8Bytes::from(text)))
                .await
                .is_err()
            {
                conn.end = Some(End::Quiet);
            }
            last_sent = Instant::now();
        }
    }

    if let Some(End::Close {
        error,
        allow_reconnect,
    }) = conn.end.take()
    {
        let close = signalr_json::encode(&HubMessage::Close {
            error,
            allow_reconnect,
        });
        let _ = sink.send(Message::Text(Utf8Bytes::from(close))).await;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), sink.close()).await;
    if conn.rx.is_some() {
        hub.unregister(&conn.info.connection_id);
    }
    tracing::info!(connection_id = %conn.info.connection_id, "connection closed");
}

impl Conn {
    fn handle_bytes(&mut self, bytes: &[u8]) {
        for record in self.records.push_bytes(bytes) {
            if self.end.is_some() {
                return;
            }
            match record {
                Ok(record) if record.len() > MAX_MESSAGE_BYTES => self.too_large(),
                Ok(record) => self.handle_record(&record),
                Err(e) => {
                    tracing::warn!(connection_id = %self.info.connection_id, error = %e, "malformed record dropped")
                }
            }
        }
        if self.end.is_none() && self.records.pending_len() > MAX_MESSAGE_BYTES {
            self.too_large();
        }
    }

    fn too_large(&mut self) {
        tracing::warn!(connection_id = %self.info.connection_id, "message too large; closing");
        self.end = Some(if self.rx.is_some() {
            End::Close {
                error: Some(message_too_large()),
                allow_reconnect: false,
            }
        } else {
            End::Quiet
        });
    }

    fn handle_record(&mut self, record: &str) {
        if self.rx.is_none() {
            self.handshake(record);
            return;
        }
        let message = match signalr_json::decode(record) {
            Ok(Some(message)) => message,
            Ok(None) => return, // a type this side does not know: ignored, as the spec asks
            Err(e) => {
                tracing::warn!(connection_id = %self.info.connection_id, error = %e, bytes = record.len(), "malformed record dropped");
                return;
            }
        };
        match message {
            HubMessage::Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
            } => {
                let result = if stream_ids.is_empty() {
                    self.hub.invoke(&self.info, &target, &arguments)
                } else {
                    Err(format!(
                        "Client-to-server streaming is not supported ('{target}')"
                    ))
                };
                self.complete(invocation_id, &target, result);
            }
            HubMessage::StreamInvocation {
                invocation_id,
                target,
                ..
            } => {
                let error = match crate::hub::is_hub_method(&target) {
                    true => format!("The method '{target}' is not a streaming method."),
                    false => format!("Unknown hub method '{target}'"),
                };
                self.complete(Some(invocation_id), &target, Err(error));
            }
            HubMessage::Close { .. } => self.end = Some(End::Quiet),
            // Ping refreshed the receive clock; completions (client results), stream items,
            // cancels, acks and sequences have nothing to act on here.
            _ => {}
        }
    }

    fn complete(
        &mut self,
        invocation_id: Option<String>,
        target: &str,
        result: Result<Option<Value>, String>,
    ) {
        match invocation_id {
            Some(invocation_id) => {
                let outcome = match result {
                    Ok(None) => CompletionOutcome::Void,
                    Ok(Some(value)) => CompletionOutcome::Result(value),
                    Err(error) => CompletionOutcome::Error(error),
                };
                self.out.push(signalr_json::encode(&HubMessage::Completion {
                    invocation_id,
                    outcome,
                }));
            }
            None => {
                if let Err(error) = result {
                    tracing::info!(connection_id = %self.info.connection_id, target, %error, "non-blocking invocation failed");
                }
            }
        }
    }

    fn handshake(&mut self, record: &str) {
        let error = match HandshakeRequest::decode(record) {
            Ok(r) if r.protocol == "json" && (r.version == 1 || r.version == 2) => None,
            Ok(r) if r.protocol == "json" => Some(format!(
                "The server does not support version {} of the 'json' protocol.",
                r.version
            )),
            Ok(r) => Some(format!(
                "Requested protocol '{}' is not available.",
                r.protocol
            )),
            Err(e) => Some(e.to_string()),
        };
        match error {
            None => {
                self.out.push(HandshakeResponse::default().encode());
                self.rx = Some(self.hub.register(&self.info));
                tracing::info!(
                    connection_id = %self.info.connection_id,
                    user = self.info.user.as_deref().unwrap_or("(anonymous)"),
                    hub = %self.info.hub,
                    "connected"
                );
            }
            Some(error) => {
                tracing::info!(connection_id = %self.info.connection_id, %error, "handshake refused");
                self.out
                    .push(HandshakeResponse { error: Some(error) }.encode());
                self.end = Some(End::Quiet);
            }
        }
    }
}
