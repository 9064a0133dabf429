//! One client connection, server side (`HubProtocol.md`, `TransportProtocols.md`).
//!
//! A *session* is the logical connection: a task that owns the handshake, the hub protocol,
//! timers, streams and (with stateful reconnect) the replay buffer. It talks to its current
//! transport through a [`Link`] (bytes in, [`Frame`]s out), so the same session serves
//! WebSockets, Server-Sent Events and long polling ([`crate::transport`]), and a WebSocket can
//! be replaced under it on a stateful reconnect.
//!
//! - The first record must be a handshake request for `json` or `messagepack` (`messagepack`
//!   not over SSE, which is text only), version 1 or 2; the answer is `{}` (in a binary frame
//!   for MessagePack) or `{"error":"..."}` (then the transport closes), within
//!   `Timeouts::handshake`.
//! - A message (or an unfinished one) longer than [`MAX_MESSAGE_BYTES`] closes the connection
//!   with a Close message naming the limit (ASP.NET Core's default, 32 KB).
//! - A malformed message is logged and dropped; the connection goes on.
//! - Keep-alive: a Ping after `Timeouts::keep_alive` without sending; a Close with error
//!   `Client timeout` after `Timeouts::client_timeout` without receiving.
//! - Hub shutdown: a Close with `allowReconnect: true`.
//! - Stateful reconnect (`HubProtocol.md`, "Stateful Reconnect"; negotiated with
//!   `useStatefulReconnect=true`, handshake version 2, WebSockets only): messages of types 1–5
//!   are numbered from 1 both ways; sent ones stay in a replay buffer (at most
//!   `HubConfig::replay_buffer_bytes`; beyond it the session stops taking hub messages until
//!   acks free room) until the client acks them; an Ack with the highest received id goes out
//!   about a second after receiving. When the socket drops, the session waits
//!   `Timeouts::reconnect_window` for a WebSocket with the same connection token; then it sends
//!   `Sequence{first unacked}`, replays the buffer, and drops the client's duplicates.
//! - Streaming hub methods (`counter(count, delayMs)`): items as StreamItem, then a Completion;
//!   CancelInvocation stops them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};
use switchboard_signalr::handshake::{HandshakeRequest, HandshakeResponse};
use switchboard_signalr::protocol::MessageReader;
use switchboard_signalr::{
    CompletionOutcome, HubMessage, HubProtocolKind, ProtocolError, Transmit,
};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::hub::{ConnectionInfo, Hub, Outbound};

/// Largest hub message accepted from a client, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Largest WebSocket message or frame the transport reads at all; anything up to this gets a
/// proper Close message when it breaks [`MAX_MESSAGE_BYTES`].
pub const MAX_TRANSPORT_MESSAGE_BYTES: usize = 256 * 1024;
/// A stateful-reconnect connection is closed when its unacknowledged messages exceed this many
/// times `HubConfig::replay_buffer_bytes`. Hub messages already stop at 1× (backpressure);
/// beyond that only completions of the client's own invocations grow it, and a busy agent on a
/// link that keeps dropping legitimately has a few hundred KB in flight (issue 13's e2e).
pub const REPLAY_CLOSE_FACTOR: usize = 8;

/// The Close error sent on client timeout.
pub const CLIENT_TIMEOUT: &str = "Client timeout";
/// The Close error sent when the hub shuts down (with `allowReconnect: true`).
pub const SHUTTING_DOWN: &str = "Hub is shutting down";
/// Frames queued towards one transport before further ones are dropped (the replay buffer
/// still has them with stateful reconnect).
pub const TRANSPORT_QUEUE: usize = 1024;
/// Largest `count` of the `counter` streaming method.
pub const MAX_COUNTER: u64 = 100_000;

/// The Close error text for an oversized message.
pub fn message_too_large() -> String {
    format!("Message exceeds the maximum message size of {MAX_MESSAGE_BYTES} bytes (32 KB)")
}

/// The transports of `TransportProtocols.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// WebSockets: full duplex; JSON in text frames, MessagePack in binary frames.
    WebSockets,
    /// Server-Sent Events down, POST up; text (JSON) only.
    ServerSentEvents,
    /// Long polling: GET polls down, POST up.
    LongPolling,
}

/// A frame from the session to its transport.
#[derive(Debug, Clone)]
pub enum Frame {
    /// Text (JSON records, handshake answers).
    Text(Utf8Bytes),
    /// Binary (MessagePack frames, and the handshake answer of a MessagePack connection).
    Binary(Bytes),
    /// Close the transport abruptly (a WebSocket gets close code 1011): the dev drop hook.
    Drop,
}

impl Frame {
    fn from_transmit(t: Transmit) -> Frame {
        match t {
            Transmit::Text(text) => Frame::Text(Utf8Bytes::from(text)),
            Transmit::Binary(bytes) => Frame::Binary(Bytes::from(bytes)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
            Frame::Drop => 0,
        }
    }
}

/// The session's side of a transport: bytes received, frames to send.
#[derive(Debug)]
pub struct Link {
    /// Bytes from the client (WebSocket frames or POST bodies). Closed = transport gone.
    pub inbound: mpsc::Receiver<Bytes>,
    /// Frames to the client. Closed = transport gone.
    pub outbound: mpsc::Sender<Frame>,
}

/// The transport's side of a [`Link`].
#[derive(Debug)]
pub struct TransportEnd {
    /// Where to put received bytes.
    pub inbound: mpsc::Sender<Bytes>,
    /// Frames to write to the client.
    pub outbound: mpsc::Receiver<Frame>,
}

/// A new link and its transport end.
pub fn link() -> (Link, TransportEnd) {
    let (in_tx, in_rx) = mpsc::channel(64);
    let (out_tx, out_rx) = mpsc::channel(TRANSPORT_QUEUE);
    (
        Link {
            inbound: in_rx,
            outbound: out_tx,
        },
        TransportEnd {
            inbound: in_tx,
            outbound: out_rx,
        },
    )
}

/// What routes ask of a running session.
#[derive(Debug)]
pub enum Control {
    /// A WebSocket reconnected with the same connection token (stateful reconnect).
    Attach(Link),
    /// Drop the transport without closing the logical connection (dev hook); without stateful
    /// reconnect the connection ends.
    Drop,
    /// End the connection (DELETE of SSE/long polling).
    End,
    /// The hub could not queue a message for this connection: close it with
    /// [`crate::limits::OUTBOX_OVERFLOW`] (`allowReconnect: true`).
    Overflow,
}

enum End {
    /// Send a Close message, then close the transport.
    Close {
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// Close the transport without a Close message (failed handshake, client left).
    Quiet,
}

struct ServerStateful {
    next_send_id: u64,
    unacked: VecDeque<(u64, Frame)>,
    unacked_bytes: usize,
    next_receive_id: u64,
    latest_received: u64,
    ack_due: Option<Instant>,
}

struct Session {
    hub: Arc<Hub>,
    info: ConnectionInfo,
    transport: TransportKind,
    link: Option<Link>,
    handshake: Vec<u8>,
    protocol: Option<HubProtocolKind>,
    reader: Option<MessageReader>,
    rx: Option<mpsc::Receiver<Outbound>>,
    streams_tx: mpsc::Sender<(String, HubMessage)>,
    streams: HashMap<String, AbortHandle>,
    stateful: Option<ServerStateful>,
    end: Option<End>,
    last_sent: Instant,
    last_received: Instant,
    detached_until: Option<Instant>,
}

/// Runs a session until it ends. `token` is its connection token (its key in the hub's session
/// table); `control` carries reattachments, drops and DELETEs.
pub(crate) async fn run_session(
    hub: Arc<Hub>,
    info: ConnectionInfo,
    token: String,
    transport: TransportKind,
    link: Link,
    mut control: mpsc::Receiver<Control>,
) {
    let timeouts = hub.config.timeouts;
    let mut shutdown = hub.subscribe_shutdown();
    let started = Instant::now();
    let handshake_deadline = started + timeouts.handshake;
    let (streams_tx, mut streams_rx) = mpsc::channel(64);
    let mut s = Session {
        hub: hub.clone(),
        info,
        transport,
        link: Some(link),
        handshake: Vec::new(),
        protocol: None,
        reader: None,
        rx: None,
        streams_tx,
        streams: HashMap::new(),
        stateful: None,
        end: None,
        last_sent: started,
        last_received: started,
        detached_until: None,
    };
    tracing::debug!(connection_id = %s.info.connection_id, ?transport, "transport open");
    if *shutdown.borrow() {
        s.end = Some(End::Quiet);
    }

    while s.end.is_none() {
        let deadline = s.deadline(handshake_deadline);
        let take_hub = s.rx.is_some()
            && s.link.is_some()
            && s.stateful
                .as_ref()
                .is_none_or(|st| st.unacked_bytes < s.hub.config.replay_buffer_bytes);
        tokio::select! {
            bytes = recv_inbound(&mut s.link) => match bytes {
                Some(bytes) => {
                    s.last_received = Instant::now();
                    s.handle_bytes(&bytes);
                }
                None => s.transport_gone(),
            },
            outbound = recv_hub(&mut s.rx), if take_hub => match outbound {
                Some(Outbound::Message(message)) => s.send(&message),
                Some(Outbound::Close { error, allow_reconnect }) => {
                    s.end = Some(End::Close { error, allow_reconnect });
                }
                None => s.end = Some(End::Quiet),
            },
            Some((id, message)) = streams_rx.recv(), if s.replay_has_room() => {
                if matches!(message, HubMessage::Completion { .. }) {
                    s.streams.remove(&id);
                }
                s.send(&message);
            }
            command = control.recv() => match command {
                Some(Control::Attach(link)) => s.attach(link),
                Some(Control::Drop) => {
                    tracing::info!(connection_id = %s.info.connection_id, "transport dropped (dev hook)");
                    if let Some(link) = s.link.take() {
                        let _ = link.outbound.try_send(Frame::Drop);
                    }
                    s.transport_gone();
                }
                Some(Control::Overflow) => s.overflow("outbox"),
                Some(Control::End) | None => s.end = Some(End::Quiet),
            },
            _ = tokio::time::sleep_until(deadline) => s.on_timer(handshake_deadline),
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    s.end = Some(if s.rx.is_some() {
                        End::Close { error: Some(SHUTTING_DOWN.into()), allow_reconnect: true }
                    } else {
                        End::Quiet
                    });
                }
            }
        }
    }

    if let Some(End::Close {
        error,
        allow_reconnect,
    }) = s.end.take()
    {
        let close = HubMessage::Close {
            error,
            allow_reconnect,
        };
        s.send(&close);
    }
    for (_, stream) in s.streams.drain() {
        stream.abort();
    }
    // Dropping the link closes the transport (after it has written what is queued).
    s.link = None;
    hub.remove_session(&token);
    if s.rx.is_some() {
        hub.unregister(&s.info.connection_id);
        if let Some(protocol) = s.protocol {
            crate::metrics::connection(
                crate::metrics::transport_name(s.transport),
                protocol.name(),
                -1.0,
            );
        }
    }
    tracing::info!(connection_id = %s.info.connection_id, "connection closed");
}

async fn recv_inbound(link: &mut Option<Link>) -> Option<Bytes> {
    match link {
        Some(link) => link.inbound.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_hub(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Session {
    fn deadline(&self, handshake_deadline: Instant) -> Instant {
        let t = self.hub.config.timeouts;
        if let Some(until) = self.detached_until {
            return until;
        }
        if self.rx.is_none() {
            return handshake_deadline;
        }
        let mut at = (self.last_sent + t.keep_alive).min(self.last_received + t.client_timeout);
        if let Some(due) = self.stateful.as_ref().and_then(|s| s.ack_due) {
            at = at.min(due);
        }
        at
    }

    fn on_timer(&mut self, handshake_deadline: Instant) {
        let now = Instant::now();
        let t = self.hub.config.timeouts;
        if let Some(until) = self.detached_until {
            if now >= until {
                tracing::info!(connection_id = %self.info.connection_id, "no reconnect within the window");
                self.end = Some(End::Quiet);
            }
            return;
        }
        if self.rx.is_none() {
            if now >= handshake_deadline {
                tracing::info!(connection_id = %self.info.connection_id, "handshake timeout");
                self.end = Some(End::Quiet);
            }
            return;
        }
        if now >= self.last_received + t.client_timeout {
            tracing::info!(connection_id = %self.info.connection_id, "client timeout");
            // Not a deliberate end: a client that was asleep or cut off should come back
            // (issue 13), so reconnecting is allowed.
            self.end = Some(End::Close {
                error: Some(CLIENT_TIMEOUT.into()),
                allow_reconnect: true,
            });
            return;
        }
        let ack = match &mut self.stateful {
            Some(st) if st.ack_due.is_some_and(|due| now >= due) => {
                st.ack_due = None;
                Some(st.latest_received)
            }
            _ => None,
        };
        if let Some(sequence_id) = ack {
            self.send(&HubMessage::Ack { sequence_id });
        }
        if now >= self.last_sent + t.keep_alive {
            self.send(&HubMessage::Ping);
        }
    }

    fn transport_gone(&mut self) {
        self.link = None;
        if self.stateful.is_some() && self.rx.is_some() {
            if self.detached_until.is_none() {
                tracing::info!(connection_id = %self.info.connection_id, "transport lost; waiting for a stateful reconnect");
                self.detached_until =
                    Some(Instant::now() + self.hub.config.timeouts.reconnect_window);
            }
        } else {
            self.end = Some(End::Quiet);
        }
    }

    fn attach(&mut self, link: Link) {
        let Some(protocol) = self.protocol else {
            return; // not handshaken: nothing to resume
        };
        if self.stateful.is_none() {
            return; // dropping `link` closes that socket
        }
        tracing::info!(connection_id = %self.info.connection_id, "stateful reconnect");
        if let Some(old) = self.link.take() {
            let _ = old.outbound.try_send(Frame::Drop);
        }
        self.link = Some(link);
        self.detached_until = None;
        self.reader = Some(
            MessageReader::new(protocol, MAX_MESSAGE_BYTES)
                .with_max_messages(crate::limits::MAX_MESSAGES_PER_READ),
        );
        let now = Instant::now();
        self.last_received = now;
        let Some(st) = &self.stateful else { return };
        let first = st.unacked.front().map_or(st.next_send_id, |(id, _)| *id);
        let mut frames = vec![Frame::from_transmit(
            protocol.encode(&HubMessage::Sequence { sequence_id: first }),
        )];
        frames.extend(st.unacked.iter().map(|(_, f)| f.clone()));
        for frame in frames {
            self.emit(frame);
        }
    }

    /// Encodes and sends one message (numbered and buffered with stateful reconnect).
    fn send(&mut self, message: &HubMessage) {
        let Some(protocol) = self.protocol else {
            return;
        };
        let frame = Frame::from_transmit(protocol.encode(message));
        if let Some(st) = &mut self.stateful
            && message.is_sequenced()
        {
            let id = st.next_send_id;
            st.next_send_id += 1;
            st.unacked_bytes += frame.len();
            st.unacked.push_back((id, frame.clone()));
            if st.unacked_bytes > REPLAY_CLOSE_FACTOR * self.hub.config.replay_buffer_bytes
                && self.end.is_none()
            {
                crate::metrics::overflow_close("replay_buffer");
                tracing::warn!(
                    connection_id = %self.info.connection_id,
                    unacked = st.unacked.len(),
                    unacked_bytes = st.unacked_bytes,
                    first = st.unacked.front().map(|(id, _)| *id),
                    kind = ?std::mem::discriminant(message),
                    "replay buffer full; closing"
                );
                self.end = Some(End::Close {
                    error: Some(crate::limits::REPLAY_BUFFER_FULL.into()),
                    allow_reconnect: true,
                });
            }
        }
        self.emit(frame);
    }

    /// Whether the replay buffer (stateful reconnect) takes more: always without it.
    fn replay_has_room(&self) -> bool {
        self.stateful
            .as_ref()
            .is_none_or(|st| st.unacked_bytes < self.hub.config.replay_buffer_bytes)
    }

    /// A queue towards the client overflowed: close with a clear error, never drop silently.
    fn overflow(&mut self, queue: &'static str) {
        crate::metrics::overflow_close(queue);
        tracing::warn!(connection_id = %self.info.connection_id, queue, "queue full; closing the connection");
        self.end = Some(End::Close {
            error: Some(crate::limits::OUTBOX_OVERFLOW.into()),
            allow_reconnect: true,
        });
    }

    fn emit(&mut self, frame: Frame) {
        self.last_sent = Instant::now();
        let Some(link) = &self.link else { return };
        match link.outbound.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                crate::metrics::frame_dropped("transport_full");
                if self.end.is_none() {
                    self.overflow("transport");
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.transport_gone(),
        }
    }

    fn handle_bytes(&mut self, mut bytes: &[u8]) {
        if self.protocol.is_none() {
            let Some(end) = bytes.iter().position(|b| *b == 0x1e) else {
                self.handshake.extend_from_slice(bytes);
                if self.handshake.len() > MAX_MESSAGE_BYTES {
                    self.end = Some(End::Quiet);
                }
                return;
            };
            self.handshake.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let record = std::mem::take(&mut self.handshake);
            self.do_handshake(&String::from_utf8_lossy(&record));
            if self.end.is_some() || bytes.is_empty() {
                return;
            }
        }
        let Some(reader) = &mut self.reader else {
            return;
        };
        match reader.push(bytes) {
            Ok(results) => {
                for result in results {
                    if self.end.is_some() {
                        return;
                    }
                    match result {
                        Ok(Some(message)) => {
                            crate::metrics::messages_in(1);
                            self.handle_message(message)
                        }
                        Ok(None) => {} // a type this side does not know: ignored
                        Err(e) => crate::limits::log_bad_input(&self.info.connection_id, &e),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(connection_id = %self.info.connection_id, error = %e, "message too large or bad framing; closing");
                self.end = Some(End::Close {
                    error: Some(match e {
                        ProtocolError::TooLarge(_) => message_too_large(),
                        other => other.to_string(),
                    }),
                    allow_reconnect: false,
                });
            }
        }
    }

    fn do_handshake(&mut self, record: &str) {
        let (protocol, error) = match HandshakeRequest::decode(record) {
            Ok(r) => match HubProtocolKind::from_name(&r.protocol) {
                Some(HubProtocolKind::MessagePack)
                    if self.transport == TransportKind::ServerSentEvents =>
                {
                    (
                        None,
                        Some(
                            "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format."
                                .to_owned(),
                        ),
                    )
                }
                Some(p) if r.version == 1 || r.version == 2 => {
                    let stateful = r.version == 2
                        && self.info.stateful
                        && self.transport == TransportKind::WebSockets;
                    if stateful {
                        self.stateful = Some(ServerStateful {
                            next_send_id: 1,
                            unacked: VecDeque::new(),
                            unacked_bytes: 0,
                            next_receive_id: 1,
                            latest_received: 0,
                            ack_due: None,
                        });
                    }
                    (Some(p), None)
                }
                Some(_) => (
                    None,
                    Some(format!(
                        "The server does not support version {} of the '{}' protocol.",
                        r.version, r.protocol
                    )),
                ),
                None => (
                    None,
                    Some(format!(
                        "Requested protocol '{}' is not available.",
                        r.protocol
                    )),
                ),
            },
            Err(e) => (None, Some(e.to_string())),
        };
        match (protocol, error) {
            (Some(protocol), _) => {
                let answer = HandshakeResponse::default().encode();
                self.emit(if protocol.is_binary() {
                    Frame::Binary(Bytes::from(answer.into_bytes()))
                } else {
                    Frame::Text(Utf8Bytes::from(answer))
                });
                self.protocol = Some(protocol);
                self.reader = Some(
                    MessageReader::new(protocol, MAX_MESSAGE_BYTES)
                        .with_max_messages(crate::limits::MAX_MESSAGES_PER_READ),
                );
                self.rx = Some(self.hub.register(&self.info));
                crate::metrics::connection(
                    crate::metrics::transport_name(self.transport),
                    protocol.name(),
                    1.0,
                );
                tracing::info!(
                    connection_id = %self.info.connection_id,
                    user = self.info.user.as_deref().unwrap_or("(anonymous)"),
                    hub = %self.info.hub,
                    protocol = protocol.name(),
                    transport = ?self.transport,
                    stateful = self.stateful.is_some(),
                    "connected"
                );
            }
            (None, error) => {
                let error = error.unwrap_or_default();
                tracing::info!(connection_id = %self.info.connection_id, %error, "handshake refused");
                self.emit(Frame::Text(Utf8Bytes::from(
                    HandshakeResponse { error: Some(error) }.encode(),
                )));
                self.end = Some(End::Quiet);
            }
        }
    }

    fn handle_message(&mut self, message: HubMessage) {
        let sequenced = message.is_sequenced();
        if let Some(st) = &mut self.stateful {
            match &message {
                HubMessage::Ack { sequence_id } => {
                    while st.unacked.front().is_some_and(|(id, _)| id <= sequence_id) {
                        if let Some((_, f)) = st.unacked.pop_front() {
                            st.unacked_bytes -= f.len();
                        }
                    }
                    return;
                }
                HubMessage::Sequence { sequence_id } => {
                    // Against what was received, not `next_receive_id`: a socket lost in the
                    // middle of a replay leaves that counter behind messages received (and
                    // acked) earlier, and the client rightly restarts after them.
                    if *sequence_id > st.latest_received + 1 {
                        self.end = Some(End::Close {
                            error: Some(
                                "Sequence ID greater than amount of messages we've received."
                                    .into(),
                            ),
                            allow_reconnect: false,
                        });
                    } else {
                        st.next_receive_id = *sequence_id;
                    }
                    return;
                }
                _ if sequenced => {
                    let current = st.next_receive_id;
                    st.next_receive_id += 1;
                    if current <= st.latest_received {
                        return; // replayed duplicate
                    }
                    st.latest_received = current;
                    if st.ack_due.is_none() {
                        st.ack_due = Some(Instant::now() + Duration::from_secs(1));
                    }
                }
                _ => {}
            }
        }
        match message {
            HubMessage::Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
            } => {
                let result = if !stream_ids.is_empty() {
                    Err(format!(
                        "Client-to-server streaming is not supported ('{target}')"
                    ))
                } else if is_streaming_method(&target) {
                    Err(format!(
                        "The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."
                    ))
                } else {
                    self.hub.invoke(&self.info, &target, &arguments)
                };
                self.complete(invocation_id, &target, result);
            }
            HubMessage::StreamInvocation {
                invocation_id,
                target,
                arguments,
                ..
            } => self.start_stream(invocation_id, &target, &arguments),
            HubMessage::CancelInvocation { invocation_id } => {
                if let Some(stream) = self.streams.remove(&invocation_id) {
                    stream.abort();
                }
            }
            HubMessage::Close { .. } => self.end = Some(End::Quiet),
            // Ping refreshed the receive clock; completions (client results) and stream
            // items have nothing to act on here.
            _ => {}
        }
    }

    fn start_stream(&mut self, invocation_id: String, target: &str, arguments: &[Value]) {
        if !is_streaming_method(target) {
            let error = match self.hub.is_hub_method(target) {
                true => format!(
                    "The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."
                ),
                false => format!("Unknown hub method '{target}'"),
            };
            self.complete(Some(invocation_id), target, Err(error));
            return;
        }
        let count = arguments.first().and_then(Value::as_u64);
        let delay = arguments.get(1).and_then(Value::as_u64).unwrap_or(0);
        let (Some(count), true) = (count, arguments.len() <= 2) else {
            self.complete(
                Some(invocation_id),
                target,
                Err(format!(
                    "{target} expects (count: number, delayMs?: number)"
                )),
            );
            return;
        };
        if self.streams.len() >= crate::limits::MAX_STREAMS_PER_CONNECTION {
            self.complete(
                Some(invocation_id),
                target,
                Err(crate::limits::too_many_streams()),
            );
            return;
        }
        let count = count.min(MAX_COUNTER);
        let delay = Duration::from_millis(delay.min(10_000));
        let tx = self.streams_tx.clone();
        let id = invocation_id.clone();
        let task = tokio::spawn(async move {
            for n in 0..count {
                if n > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let item = HubMessage::StreamItem {
                    invocation_id: id.clone(),
                    item: json!(n),
                };
                if tx.send((id.clone(), item)).await.is_err() {
                    return;
                }
            }
            let done = HubMessage::Completion {
                invocation_id: id.clone(),
                outcome: CompletionOutcome::Void,
            };
            let _ = tx.send((id, done)).await;
        });
        self.streams.insert(invocation_id, task.abort_handle());
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
                self.send(&HubMessage::Completion {
                    invocation_id,
                    outcome,
                });
            }
            None => {
                if let Err(error) = result {
                    tracing::info!(connection_id = %self.info.connection_id, target, %error, "non-blocking invocation failed");
                }
            }
        }
    }
}

/// The streaming hub methods (case-insensitive): `counter(count, delayMs?)` streams the
/// integers `0..count` (at most [`MAX_COUNTER`]), `delayMs` (at most 10 000) apart.
pub fn is_streaming_method(target: &str) -> bool {
    target.eq_ignore_ascii_case("counter")
}
