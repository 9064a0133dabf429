//! One client connection, server side (`HubProtocol.md`, `TransportProtocols.md`).
//!
//! A *session* is the logical connection: a tokio task driving the sans-IO
//! [`HubServerSession`] of `switchboard-signalr` (which owns the handshake, the hub protocol,
//! the keep-alive and client timeout, and with stateful reconnect the replay buffer it shares
//! with the client core). The task feeds it received bytes and the time, writes what it
//! queues, sleeps until its next deadline, and maps its events to the hub's dispatch
//! ([`Hub::invoke`], the `counter` streams, the hub's outbox). It talks to its current
//! transport through a [`Wire`]: a WebSocket it reads and writes itself (one task per
//! WebSocket connection), or for Server-Sent Events and long polling a [`Link`] to the HTTP
//! handlers (bytes in, [`Frame`]s out) ([`crate::transport`]). A WebSocket can be replaced under
//! it on a stateful reconnect.
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
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{Sink, Stream};
use serde_json::{Value, json};
use switchboard_signalr::server::{CloseReason, HubServerOptions, HubServerSession, ServerEvent};
use switchboard_signalr::{CompletionOutcome, HubMessage, HubProtocolKind, Transmit};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::hub::{ConnectionInfo, Hub, Outbound};
use crate::mailbox::{Mail, Mailbox};

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
pub const CLIENT_TIMEOUT: &str = switchboard_signalr::server::CLIENT_TIMEOUT;
/// The Close error sent when the hub shuts down (with `allowReconnect: true`).
pub const SHUTTING_DOWN: &str = "Hub is shutting down";
/// Frames queued towards one transport before the connection is closed as overflowing (the
/// replay buffer still has them with stateful reconnect).
pub const TRANSPORT_QUEUE: usize = 1024;
/// WebSocket close code of the dev drop hook (1011, "internal error": an unclean close, so a
/// stateful-reconnect client reconnects).
pub const DROP_CLOSE_CODE: u16 = 1011;
/// Largest `count` of the `counter` streaming method.
pub const MAX_COUNTER: u64 = 100_000;

/// The Close error text for an oversized message.
pub fn message_too_large() -> String {
    switchboard_signalr::server::message_too_large(MAX_MESSAGE_BYTES)
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
}

/// The transport a session talks to.
// Not boxed: nearly every session is a WebSocket, and a box would add an allocation to each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Wire {
    /// A WebSocket the session task reads and writes itself.
    Socket(Socket),
    /// Server-Sent Events or long polling, through the HTTP handlers.
    Link(Link),
}

impl Wire {
    /// A WebSocket wire.
    pub fn socket(ws: WebSocket) -> Wire {
        Wire::Socket(Socket {
            ws,
            queue: VecDeque::new(),
            unflushed: false,
            waiting_since: None,
        })
    }
}

/// A WebSocket and the messages waiting for it.
#[derive(Debug)]
pub struct Socket {
    ws: WebSocket,
    /// Messages not yet handed to the socket (at most [`TRANSPORT_QUEUE`]).
    queue: VecDeque<Message>,
    /// Messages handed to the socket and not yet flushed.
    unflushed: bool,
    /// Since when output has waited for the peer without progress ([`crate::limits::WRITE_TIMEOUT`]).
    waiting_since: Option<Instant>,
}

/// What happened on a wire.
enum WireEvent {
    /// A WebSocket message.
    Message(Message),
    /// Bytes POSTed by an SSE or long-polling client.
    Bytes(Bytes),
    /// A WebSocket message over the transport's size limit.
    TooLong,
    /// Output went out (or the socket was flushed).
    Wrote,
    /// The transport is gone.
    Closed,
}

impl Socket {
    fn has_output(&self) -> bool {
        self.unflushed || !self.queue.is_empty()
    }

    /// Queues a message; `false` when the queue is full.
    fn push(&mut self, message: Message) -> bool {
        if self.queue.len() >= TRANSPORT_QUEUE {
            return false;
        }
        self.queue.push_back(message);
        self.waiting_since.get_or_insert_with(Instant::now);
        true
    }

    /// Writes what is queued as far as the socket takes it, then reads. Cancel-safe: all
    /// state is in `self`.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<WireEvent> {
        let mut wrote = false;
        while !self.queue.is_empty() {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let message = self.queue.pop_front().expect("not empty");
                    if Pin::new(&mut self.ws).start_send(message).is_err() {
                        return Poll::Ready(WireEvent::Closed);
                    }
                    self.unflushed = true;
                    wrote = true;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(WireEvent::Closed),
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    wrote = true;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(WireEvent::Closed),
                Poll::Pending => {}
            }
        }
        if wrote {
            self.waiting_since = self.has_output().then(Instant::now);
            if self.queue.is_empty() {
                // A burst's queue is not kept by an idle connection.
                self.queue = VecDeque::new();
            }
        }
        match Pin::new(&mut self.ws).poll_next(cx) {
            Poll::Ready(Some(Ok(message))) => return Poll::Ready(WireEvent::Message(message)),
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "websocket error");
                return Poll::Ready(if e.to_string().contains("too long") {
                    WireEvent::TooLong
                } else {
                    WireEvent::Closed
                });
            }
            Poll::Ready(None) => return Poll::Ready(WireEvent::Closed),
            Poll::Pending => {}
        }
        if wrote {
            Poll::Ready(WireEvent::Wrote)
        } else {
            Poll::Pending
        }
    }

    /// Writes what is queued (within [`crate::limits::WRITE_TIMEOUT`]) and closes the socket.
    async fn finish(&mut self) {
        use futures_util::SinkExt;
        let queue = std::mem::take(&mut self.queue);
        let ws = &mut self.ws;
        let written = tokio::time::timeout(crate::limits::WRITE_TIMEOUT, async move {
            for message in queue {
                ws.feed(message).await?;
            }
            ws.flush().await
        })
        .await;
        if written.is_err() {
            crate::metrics::overflow_close("write_timeout");
            tracing::warn!("websocket write timed out; closing");
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close()).await;
    }

    /// Closes the socket abruptly (close code [`DROP_CLOSE_CODE`]) in a task of its own.
    fn drop_abruptly(self) {
        let mut ws = self.ws;
        tokio::spawn(async move {
            let close = Message::Close(Some(CloseFrame {
                code: DROP_CLOSE_CODE,
                reason: "dropped by the dev hook".into(),
            }));
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.send(close)).await;
        });
    }
}

/// The session's side of a transport: bytes received, frames to send.
#[derive(Debug)]
pub struct Link {
    /// Bytes from the client (WebSocket frames or POST bodies). Closed = transport gone.
    pub inbound: flume::Receiver<Bytes>,
    /// Frames to the client. Closed = transport gone.
    pub outbound: flume::Sender<Frame>,
}

/// The transport's side of a [`Link`].
#[derive(Debug)]
pub struct TransportEnd {
    /// Where to put received bytes.
    pub inbound: flume::Sender<Bytes>,
    /// Frames to write to the client.
    pub outbound: flume::Receiver<Frame>,
}

/// A new link and its transport end (Server-Sent Events and long polling).
///
/// A link's two queues are `flume` channels: they allocate per queued message instead of a
/// 32-slot block plus a cache-padded channel struct up front as tokio's do (docs/benchmarks.md).
/// The hub's outbox and the control requests of every session go through its
/// [`SessionHandle`]'s [`Mailbox`] instead; a WebSocket session has no link.
pub fn link() -> (Link, TransportEnd) {
    let (in_tx, in_rx) = flume::bounded(64);
    let (out_tx, out_rx) = flume::bounded(TRANSPORT_QUEUE);
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
    Attach(Box<WebSocket>),
    /// Drop the transport without closing the logical connection (dev hook); without stateful
    /// reconnect the connection ends.
    Drop,
    /// End the connection (DELETE of SSE/long polling).
    End,
    /// The hub could not queue a message for this connection: close it with
    /// [`crate::limits::OUTBOX_OVERFLOW`] (`allowReconnect: true`).
    Overflow,
}

/// A running session, as routes find it by connection token (see [`crate::connection`]). One
/// per connection, shared by the session task, the session table and the connection table.
#[derive(Debug)]
pub(crate) struct SessionHandle {
    pub info: ConnectionInfo,
    pub transport: TransportKind,
    /// The hub's messages (outbox) and the routes' control requests for the session task.
    pub mailbox: Mailbox<Outbound, Control>,
    /// SSE and long polling: where POST bodies go.
    pub inbound: Option<flume::Sender<Bytes>>,
    /// Long polling: the frames waiting for the next poll.
    pub poll: Option<Arc<tokio::sync::Mutex<flume::Receiver<Frame>>>>,
}

/// The session task's state: the sans-IO session and what the hub attaches to it.
struct Driver {
    hub: Arc<Hub>,
    /// Who the connection is, its transport and its mailbox (shared with the hub's tables).
    handle: Arc<SessionHandle>,
    /// The origin of the session's clock (`now` is the time since).
    origin: Instant,
    session: HubServerSession,
    wire: Option<Wire>,
    /// Whether the hub knows the connection (from the handshake on; its messages come through
    /// the mailbox).
    registered: bool,
    /// The protocol the connection was counted under in the metrics (after the handshake).
    counted: Option<HubProtocolKind>,
    /// The `counter` streams, made by the first stream (a tokio channel allocates a 32-slot
    /// block when it is made: ~4 KiB here, which most connections never use).
    streams: Option<Box<Streams>>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Also when the task is dropped unfinished: the hub's sends are refused from now on.
        self.handle.mailbox.close();
    }
}

/// A connection's running `counter` streams and the channel their items come through.
struct Streams {
    tx: mpsc::Sender<(String, HubMessage)>,
    rx: mpsc::Receiver<(String, HubMessage)>,
    running: HashMap<String, AbortHandle>,
}

/// The session options of a hub connection over `transport`.
fn session_options(hub: &Hub, info: &ConnectionInfo, transport: TransportKind) -> HubServerOptions {
    let t = hub.config.timeouts;
    HubServerOptions {
        handshake_timeout: t.handshake,
        keep_alive_interval: t.keep_alive,
        client_timeout: t.client_timeout,
        max_message_bytes: MAX_MESSAGE_BYTES,
        max_messages_per_read: crate::limits::MAX_MESSAGES_PER_READ,
        binary_transfer: transport != TransportKind::ServerSentEvents,
        stateful_reconnect: info.stateful && transport == TransportKind::WebSockets,
        ack_interval: Duration::from_secs(1),
        replay_buffer_bytes: hub.config.replay_buffer_bytes,
        replay_close_factor: REPLAY_CLOSE_FACTOR,
        reconnect_window: t.reconnect_window,
    }
}

/// The session options, shared by every session made with the same ones (a few per hub: they
/// differ by transport and stateful reconnect) instead of 120 bytes in each session's state.
fn shared_options(options: HubServerOptions) -> Arc<HubServerOptions> {
    /// Distinct option sets kept at most (one process runs a few hubs; tests more).
    const MAX_SHARED: usize = 64;
    static SHARED: std::sync::Mutex<Vec<Arc<HubServerOptions>>> = std::sync::Mutex::new(Vec::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = shared.iter().find(|o| ***o == options) {
        return found.clone();
    }
    let options = Arc::new(options);
    if shared.len() < MAX_SHARED {
        shared.push(options.clone());
    }
    options
}

/// A session ready to run ([`run_session`]).
pub(crate) struct Prepared {
    driver: Driver,
    /// The connection token (shared with the session table's key).
    token: Arc<str>,
}

/// Makes the session of a transport that just opened. `token` is its connection token (its key
/// in the hub's session table); the handle's mailbox carries the hub's messages and the
/// reattachments, drops and DELETEs.
pub(crate) fn prepare(
    hub: &Arc<Hub>,
    handle: Arc<SessionHandle>,
    token: Arc<str>,
    wire: Wire,
) -> Prepared {
    let options = session_options(hub, &handle.info, handle.transport);
    Prepared {
        driver: Driver {
            hub: hub.clone(),
            handle,
            origin: Instant::now(),
            session: HubServerSession::with_shared_options(shared_options(options), Duration::ZERO),
            wire: Some(wire),
            registered: false,
            counted: None,
            streams: None,
        },
        token,
    }
}

/// Runs a session until it ends.
#[allow(clippy::manual_async_fn)] // see the comment inside
pub(crate) fn run_session(mut prepared: Prepared) -> impl Future<Output = ()> + Send {
    // The async block borrows the captured `prepared` in place: an `async fn` would also move its
    // argument into a local, and every connection's future would hold the driver twice.
    async move {
        let d = &mut prepared.driver;
        let token = &prepared.token;
        let hub = d.hub.clone();
        let handle = d.handle.clone();
        let origin = d.origin;
        tracing::debug!(connection_id = %handle.info.connection_id, transport = ?handle.transport, "transport open");
        // Shutdown is a flag of the hub, not a watch per session: `Hub::shutdown` wakes every
        // session through its mailbox, and each looks here.
        let mut shut = hub.is_shutting_down();
        if shut {
            d.session.end();
        }

        // What this connection adds to `switchboard_replay_buffered_bytes`.
        let mut buffered = 0usize;
        loop {
            if !shut && hub.is_shutting_down() {
                shut = true;
                // A Close (reconnect allowed) after the handshake; before it, quietly.
                let now = d.now();
                d.session.close(now, Some(SHUTTING_DOWN.into()), true);
            }
            d.pump();
            d.session.release_idle_buffers();
            let now_buffered = d.session.unacked_bytes();
            if now_buffered != buffered {
                crate::metrics::replay_buffered(now_buffered as f64 - buffered as f64);
                buffered = now_buffered;
            }
            let Some(deadline) = d.session.poll_timeout() else {
                break; // closed
            };
            let mut deadline = origin + deadline;
            if let Some(since) = d.write_waiting_since() {
                deadline = deadline.min(since + crate::limits::WRITE_TIMEOUT);
            }
            let take_hub = d.registered && d.wire.is_some() && d.session.has_room();
            tokio::select! {
                event = wire_event(&mut d.wire) => d.wire_event(event),
                mail = handle.mailbox.recv(take_hub) => match mail {
                    Mail::Message(Outbound::Message(message)) => d.send(&message),
                    Mail::Message(Outbound::Close { error, allow_reconnect }) => {
                        let now = d.now();
                        d.session.close(now, error, allow_reconnect);
                    }
                    Mail::Control(Control::Attach(ws)) => d.attach(*ws),
                    Mail::Control(Control::Drop) => {
                        tracing::info!(connection_id = %handle.info.connection_id, "transport dropped (dev hook)");
                        drop_wire(d.wire.take());
                        d.transport_gone();
                    }
                    Mail::Control(Control::Overflow) => d.overflow("outbox"),
                    Mail::Control(Control::End) => d.session.end(),
                    // The hub is shutting down: looked at at the top of the loop.
                    Mail::Notified => {}
                },
                Some((id, message)) = recv_stream(&mut d.streams), if d.session.has_room() => {
                    if matches!(message, HubMessage::Completion { .. })
                        && let Some(streams) = &mut d.streams
                    {
                        streams.running.remove(&id);
                    }
                    d.send(&message);
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if d.write_waiting_since().is_some_and(|since| since.elapsed() >= crate::limits::WRITE_TIMEOUT) {
                        crate::metrics::overflow_close("write_timeout");
                        tracing::warn!(connection_id = %handle.info.connection_id, "websocket write timed out; closing");
                        d.transport_gone();
                    }
                    let now = d.now();
                    d.session.handle_timeout(now);
                }
            }
        }

        if buffered > 0 {
            crate::metrics::replay_buffered(-(buffered as f64));
        }
        if let Some(streams) = &mut d.streams {
            for (_, stream) in streams.running.drain() {
                stream.abort();
            }
        }
        hub.remove_session(token);
        // Later hub messages and requests are refused (what is queued is dropped).
        handle.mailbox.close();
        if d.registered {
            hub.unregister(&handle.info.connection_id);
            if let Some(protocol) = d.counted {
                crate::metrics::connection(
                    crate::metrics::transport_name(handle.transport),
                    protocol.name(),
                    -1.0,
                );
            }
        }
        tracing::info!(connection_id = %handle.info.connection_id, "connection closed");
        // A WebSocket gets what is queued and a Close frame; dropping a link closes its transport
        // after it has written what is queued.
        if let Some(Wire::Socket(socket)) = &mut d.wire {
            socket.finish().await;
        }
    }
}

async fn wire_event(wire: &mut Option<Wire>) -> WireEvent {
    match wire {
        Some(Wire::Socket(socket)) => std::future::poll_fn(|cx| socket.poll_io(cx)).await,
        Some(Wire::Link(link)) => match link.inbound.recv_async().await {
            Ok(bytes) => WireEvent::Bytes(bytes),
            Err(_) => WireEvent::Closed,
        },
        None => std::future::pending().await,
    }
}

/// Drops a transport abruptly (dev hook, or replaced by a stateful reconnect).
fn drop_wire(wire: Option<Wire>) {
    match wire {
        Some(Wire::Socket(socket)) => socket.drop_abruptly(),
        Some(Wire::Link(link)) => {
            let _ = link.outbound.try_send(Frame::Drop);
        }
        None => {}
    }
}

async fn recv_stream(streams: &mut Option<Box<Streams>>) -> Option<(String, HubMessage)> {
    match streams {
        Some(streams) => streams.rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// The session's clock: time since the session started.
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.origin)
    }

    /// Writes what the session queued and acts on its events until it has nothing more.
    fn pump(&mut self) {
        loop {
            self.flush();
            let before = self.session.messages_received();
            let event = self.session.poll_event();
            let received = self.session.messages_received() - before;
            if received > 0 {
                crate::metrics::messages_in(received);
            }
            let Some(event) = event else { break };
            match event {
                ServerEvent::Connected { protocol, stateful } => self.connected(protocol, stateful),
                ServerEvent::Message(message) => self.handle_message(message),
                ServerEvent::Malformed(e) => {
                    crate::limits::log_bad_input(&self.handle.info.connection_id, &e)
                }
                ServerEvent::Closed(reason) => self.log_close(reason),
            }
        }
    }

    /// Moves the session's queued frames to the transport.
    fn flush(&mut self) {
        while let Some(transmit) = self.session.poll_transmit() {
            let full = match &mut self.wire {
                None => continue,
                Some(Wire::Socket(socket)) => !socket.push(match Frame::from_transmit(transmit) {
                    Frame::Text(text) => Message::Text(text),
                    Frame::Binary(bytes) => Message::Binary(bytes),
                    Frame::Drop => unreachable!("a transmit is text or binary"),
                }),
                Some(Wire::Link(link)) => {
                    match link.outbound.try_send(Frame::from_transmit(transmit)) {
                        Ok(()) => false,
                        Err(flume::TrySendError::Full(_)) => true,
                        Err(flume::TrySendError::Disconnected(_)) => {
                            self.transport_gone();
                            false
                        }
                    }
                }
            };
            if full {
                crate::metrics::frame_dropped("transport_full");
                if !self.session.is_closed() {
                    self.overflow("transport");
                }
            }
        }
    }

    /// Since when WebSocket output has waited for the peer, if it has.
    fn write_waiting_since(&self) -> Option<Instant> {
        match &self.wire {
            Some(Wire::Socket(socket)) => socket.waiting_since,
            _ => None,
        }
    }

    /// Acts on what happened on the wire.
    fn wire_event(&mut self, event: WireEvent) {
        let now = self.now();
        match event {
            WireEvent::Message(Message::Text(text)) => {
                self.session.handle_bytes(now, text.as_bytes())
            }
            WireEvent::Message(Message::Binary(bytes)) | WireEvent::Bytes(bytes) => {
                self.session.handle_bytes(now, &bytes)
            }
            WireEvent::Message(Message::Close(_)) => {
                // Answer the client's Close frame (tungstenite queued the reply) off this task.
                if let Some(Wire::Socket(mut socket)) = self.wire.take() {
                    tokio::spawn(async move { socket.finish().await });
                }
                self.transport_gone();
            }
            WireEvent::Closed => self.transport_gone(),
            WireEvent::Message(Message::Ping(_) | Message::Pong(_)) | WireEvent::Wrote => {}
            WireEvent::TooLong => {
                // The session answers with its Close message: an oversized message.
                let oversized = vec![b'x'; MAX_MESSAGE_BYTES + 1];
                self.session.handle_bytes(now, &oversized);
            }
        }
    }

    fn connected(&mut self, protocol: HubProtocolKind, stateful: bool) {
        self.hub.register(self.handle.clone());
        self.registered = true;
        self.counted = Some(protocol);
        crate::metrics::connection(
            crate::metrics::transport_name(self.handle.transport),
            protocol.name(),
            1.0,
        );
        tracing::info!(
            connection_id = %self.handle.info.connection_id,
            user = self.handle.info.user.as_deref().unwrap_or("(anonymous)"),
            hub = %self.handle.info.hub,
            protocol = protocol.name(),
            transport = ?self.handle.transport,
            stateful,
            "connected"
        );
    }

    fn log_close(&self, reason: CloseReason) {
        let connection_id = &self.handle.info.connection_id;
        match reason {
            CloseReason::HandshakeRefused(error) => {
                tracing::info!(%connection_id, %error, "handshake refused")
            }
            CloseReason::HandshakeTimeout => {
                tracing::info!(%connection_id, "handshake timeout")
            }
            CloseReason::ClientTimeout => tracing::info!(%connection_id, "client timeout"),
            CloseReason::ReconnectWindowElapsed => {
                tracing::info!(%connection_id, "no reconnect within the window")
            }
            CloseReason::BadFraming(error) => {
                tracing::warn!(%connection_id, %error, "message too large or bad framing; closing")
            }
            CloseReason::ReplayBufferFull {
                unacked,
                unacked_bytes,
                first,
                message_type,
            } => {
                crate::metrics::overflow_close("replay_buffer");
                tracing::warn!(
                    %connection_id,
                    unacked,
                    unacked_bytes,
                    first,
                    message_type,
                    "replay buffer full; closing"
                );
            }
            CloseReason::HandshakeTooLarge
            | CloseReason::ClientClosed
            | CloseReason::SequenceTooHigh
            | CloseReason::TransportClosed
            | CloseReason::Closed { .. }
            | CloseReason::Ended => {}
        }
    }

    /// The transport went away: with stateful reconnect the session waits for a new one.
    fn transport_gone(&mut self) {
        self.wire = None;
        let was_detached = self.session.is_detached();
        let now = self.now();
        if self.session.handle_transport_lost(now) && !was_detached {
            tracing::info!(connection_id = %self.handle.info.connection_id, "transport lost; waiting for a stateful reconnect");
        }
    }

    /// A WebSocket came back with the same connection token: replay onto it. Before the
    /// handshake or without stateful reconnect it is dropped (which closes it).
    fn attach(&mut self, ws: WebSocket) {
        let now = self.now();
        if self.session.resume(now).is_err() {
            return;
        }
        tracing::info!(connection_id = %self.handle.info.connection_id, "stateful reconnect");
        drop_wire(self.wire.take());
        self.wire = Some(Wire::socket(ws));
    }

    /// Sends one message through the session (numbered and buffered with stateful reconnect).
    fn send(&mut self, message: &HubMessage) {
        let now = self.now();
        self.session.send(now, message);
    }

    /// A queue towards the client overflowed: close with a clear error, never drop silently.
    fn overflow(&mut self, queue: &'static str) {
        crate::metrics::overflow_close(queue);
        tracing::warn!(connection_id = %self.handle.info.connection_id, queue, "queue full; closing the connection");
        let now = self.now();
        self.session
            .close(now, Some(crate::limits::OUTBOX_OVERFLOW.into()), true);
    }

    fn handle_message(&mut self, message: HubMessage) {
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
                    self.hub.invoke(&self.handle.info, &target, &arguments)
                };
                if let (Some(id), Some(cluster), Ok(_)) =
                    (&invocation_id, self.hub.cluster(), &result)
                    && !cluster.all_written()
                {
                    // --redis: answer once the change is in Redis, so that an accepted call
                    // stays accepted if this node dies right after (docs/scale-out.md).
                    self.complete_when_written(id.clone(), cluster.clone(), result);
                    return;
                }
                self.complete(invocation_id, &target, result);
            }
            HubMessage::StreamInvocation {
                invocation_id,
                target,
                arguments,
                ..
            } => self.start_stream(invocation_id, &target, &arguments),
            HubMessage::CancelInvocation { invocation_id } => {
                if let Some(stream) = self
                    .streams
                    .as_mut()
                    .and_then(|s| s.running.remove(&invocation_id))
                {
                    stream.abort();
                }
            }
            // Completions (client results) and stream items have nothing to act on here.
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
        if self.streams.as_ref().map_or(0, |s| s.running.len())
            >= crate::limits::MAX_STREAMS_PER_CONNECTION
        {
            self.complete(
                Some(invocation_id),
                target,
                Err(crate::limits::too_many_streams()),
            );
            return;
        }
        let count = count.min(MAX_COUNTER);
        let delay = Duration::from_millis(delay.min(10_000));
        let streams = self.streams_channel();
        let tx = streams.tx.clone();
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
        streams.running.insert(invocation_id, task.abort_handle());
    }

    /// The `counter` streams' channel (also carries completions delayed until Redis has the
    /// change), made on first use.
    fn streams_channel(&mut self) -> &mut Streams {
        self.streams.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(64);
            Box::new(Streams {
                tx,
                rx,
                running: HashMap::new(),
            })
        })
    }

    /// Sends the completion once every write queued so far is in Redis (at most 2 s), on
    /// the channel streams use.
    fn complete_when_written(
        &mut self,
        invocation_id: String,
        cluster: Arc<crate::cluster::Cluster>,
        result: Result<Option<Value>, String>,
    ) {
        let tx = self.streams_channel().tx.clone();
        let outcome = match result {
            Ok(None) => CompletionOutcome::Void,
            Ok(Some(value)) => CompletionOutcome::Result(value),
            Err(error) => CompletionOutcome::Error(error),
        };
        tokio::spawn(async move {
            if !cluster.written(Duration::from_secs(2)).await {
                tracing::warn!("an invocation's change did not reach Redis within 2 s");
            }
            let done = HubMessage::Completion {
                invocation_id: invocation_id.clone(),
                outcome,
            };
            let _ = tx.send((invocation_id, done)).await;
        });
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
                    tracing::info!(connection_id = %self.handle.info.connection_id, target, %error, "non-blocking invocation failed");
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
