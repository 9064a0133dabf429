//! The client side of one hub connection, sans IO.
//!
//! [`HubConnectionCore`] is fed received frames and the current time, and gives back frames to
//! send, [`Event`]s and the next instant it needs to be woken at. It owns the handshake
//! (`HubProtocol.md`, "Overview"), invocation ids and pending invocations, the keep-alive ping
//! and the server timeout (defaults of the official client, `HubConnection.ts`: ping after 15 s
//! without sending, close after 30 s without receiving, handshake within 15 s).
//!
//! Protocols: JSON (default; [`HubConnectionCore::handle_text`], [`HubConnectionCore::poll_transmit`])
//! or MessagePack ([`HubConnectionCore::with_protocol`], [`HubConnectionCore::handle_binary`],
//! [`HubConnectionCore::poll_transmit_frame`]). The handshake is a JSON text record in both; with
//! MessagePack the server's `{}\x1e` arrives in a binary frame, possibly followed by messages.
//!
//! Stateful reconnect (`HubProtocol.md`, "Stateful Reconnect"; set
//! [`HubConnectionOptions::stateful_reconnect`] only when negotiate answered
//! `"useStatefulReconnect": true` and the transport is WebSockets): handshake version 2; every
//! sent message of types 1–5 is numbered from 1 and kept until the server acks it; received
//! ones are counted, duplicates dropped, and an Ack with the highest id is sent about once a
//! second after receiving (a timer in [`HubConnectionCore::poll_timeout`]). When the socket
//! drops, [`HubConnectionCore::handle_transport_lost`] keeps the logical connection; after
//! reopening the WebSocket to the same URL (no negotiate, no handshake),
//! [`HubConnectionCore::resume`] queues `Sequence` and replays every unacked message; messages
//! other than the server's `Sequence` are ignored until it arrives. No [`Event`] marks a
//! successful resume (as the official client raises no `onreconnecting`).
//!
//! Time is a [`Duration`] since any fixed origin the caller chooses (`performance.now()` in the
//! browser, `Instant` natively): the core never reads a clock. Because the deadlines are
//! recomputed on every receive, a throttled background tab that wakes the core late still
//! closes or pings correctly as soon as anything arrives.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use serde_json::Value;

use crate::error::ProtocolError;
use crate::handshake::{HandshakeRequest, HandshakeResponse};
use crate::message::{CompletionOutcome, HubMessage};
use crate::protocol::{HubProtocolKind, MessageReader, Transmit};
use crate::resume::ReplayBuffer;
pub use crate::resume::SEQUENCE_TOO_HIGH;

/// The states of a hub connection as the official client names them (`HubConnectionState`),
/// which the widget shows to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Not connected and not trying.
    Disconnected,
    /// The first start is under way (negotiate, transport, handshake), or being retried.
    Connecting,
    /// Handshake done; messages flow.
    Connected,
    /// A started connection was lost and is being re-established.
    Reconnecting,
    /// `stop()` was called and the connection is closing.
    Disconnecting,
}

impl ConnectionState {
    /// The official client's name for the state (`Connected`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "Disconnected",
            ConnectionState::Connecting => "Connecting",
            ConnectionState::Connected => "Connected",
            ConnectionState::Reconnecting => "Reconnecting",
            ConnectionState::Disconnecting => "Disconnecting",
        }
    }
}

/// Options; the defaults are the official client's (JSON, no stateful reconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConnectionOptions {
    /// Send a ping when nothing was sent for this long (`keepAliveIntervalInMilliseconds`).
    pub keep_alive_interval: Duration,
    /// Close when nothing was received for this long (`serverTimeoutInMilliseconds`).
    pub server_timeout: Duration,
    /// Close when the handshake answer has not come within this long.
    pub handshake_timeout: Duration,
    /// The hub protocol (`json` by default).
    pub protocol: HubProtocolKind,
    /// Stateful reconnect (handshake version 2, Ack/Sequence). Only when negotiate answered
    /// `"useStatefulReconnect": true` and the transport is WebSockets.
    pub stateful_reconnect: bool,
    /// With stateful reconnect: how long after receiving a message the Ack goes out (1 s).
    pub ack_interval: Duration,
    /// With stateful reconnect: the longest a resume may take, from the loss of the transport
    /// to the server's `Sequence` (default 20 s, inside the 30 s window that Azure SignalR and
    /// ASP.NET Core keep a disconnected connection). Then the connection closes with reconnect
    /// allowed ([`RESUME_TIMEOUT`]), so the caller starts over with a fresh negotiate.
    pub resume_timeout: Duration,
    /// With stateful reconnect: how many transport losses in a row may be resumed before the
    /// connection is given up (default 10; a successful resume starts the count again). The
    /// time bound usually ends a hopeless resume first; this one stops a peer that accepts the
    /// reopened socket and drops it at once from looping for the whole window.
    pub max_resume_attempts: u32,
}

impl Default for HubConnectionOptions {
    fn default() -> Self {
        Self {
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            protocol: HubProtocolKind::Json,
            stateful_reconnect: false,
            ack_interval: Duration::from_secs(1),
            resume_timeout: Duration::from_secs(20),
            max_resume_attempts: 10,
        }
    }
}

/// What happened on the connection, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake succeeded; invocations may flow.
    Connected,
    /// The server calls a client method. With an `invocation_id` the server waits for a result:
    /// answer with [`HubConnectionCore::complete`].
    Invocation {
        target: String,
        arguments: Vec<Value>,
        invocation_id: Option<String>,
    },
    /// One of our invocations finished (or failed because the connection closed).
    Completion {
        invocation_id: String,
        outcome: CompletionOutcome,
    },
    /// An item of one of our stream invocations.
    StreamItem { invocation_id: String, item: Value },
    /// Stateful reconnect: the server's `Sequence` arrived on the reopened transport; messages
    /// flow again and nothing was lost.
    Resumed,
    /// A record could not be understood; it was dropped and the connection goes on.
    Malformed(ProtocolError),
    /// The connection is over. `allow_reconnect` is the server's word when it sent a Close;
    /// timeouts and transport losses allow reconnecting.
    Closed {
        error: Option<String>,
        allow_reconnect: bool,
    },
}

/// The text of the official client when the connection closes under a pending invocation.
pub const INVOCATION_CANCELED: &str =
    "Invocation canceled due to the underlying connection being closed.";
/// The text of the official client when the server stays silent too long.
pub const SERVER_TIMEOUT: &str =
    "Server timeout elapsed without receiving a message from the server.";
/// The handshake did not complete in time.
pub const HANDSHAKE_TIMEOUT: &str = "Server handshake timeout elapsed.";
/// A stateful resume took longer than [`HubConnectionOptions::resume_timeout`].
pub const RESUME_TIMEOUT: &str =
    "The connection could not be resumed in time; reconnecting with a new connection.";
/// The reopened transport was refused (the server no longer knows the connection, or it is
/// unreachable).
pub const RESUME_REFUSED: &str =
    "The hub no longer knows this connection; reconnecting with a new connection.";
/// The transport was lost more than [`HubConnectionOptions::max_resume_attempts`] times in a row.
pub const RESUME_ATTEMPTS: &str =
    "The connection kept dropping while it was resumed; reconnecting with a new connection.";
/// With stateful reconnect, an Ack goes out at once (not after `ack_interval`) once this many
/// messages arrived since the last one, so a burst does not fill the server's replay buffer
/// (ASP.NET Core's is 100 000 bytes) between two timed acks.
pub const ACK_EVERY_MESSAGES: u64 = 32;
/// Largest message accepted from the server (bytes); larger closes the connection.
pub const MAX_RECEIVE_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A call that the connection cannot take in its present state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The handshake has not completed yet.
    #[error("Cannot send data if the connection is not in the 'Connected' State.")]
    NotConnected,
    /// The connection has closed.
    #[error("The connection is closed.")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking {
        deadline: Duration,
    },
    Connected,
    /// Stateful reconnect: the transport dropped; waiting for [`HubConnectionCore::resume`].
    Resuming,
    /// Stateful reconnect: resumed; ignoring everything until the server's Sequence.
    AwaitingSequence,
    Closed,
}

/// Stateful reconnect bookkeeping: the shared [`ReplayBuffer`] (`HubProtocol.md`, "Ack
/// Message", "Sequence Message"; TS `MessageBuffer.ts`) and the client's resume bounds.
#[derive(Debug)]
struct Stateful {
    buffer: ReplayBuffer,
    /// While resuming: when the transport was first lost, and how many losses in a row.
    resume: Option<(Duration, u32)>,
}

/// One hub connection's protocol state over an open transport (see the module docs).
#[derive(Debug)]
pub struct HubConnectionCore {
    options: HubConnectionOptions,
    phase: Phase,
    handshake_buffer: Vec<u8>,
    reader: MessageReader,
    outbox: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_invocation_id: u64,
    pending: BTreeSet<String>,
    cancelled: BTreeSet<String>,
    stateful: Option<Stateful>,
    last_sent: Duration,
    last_received: Duration,
}

impl HubConnectionCore {
    /// A connection whose transport just opened, with the protocol and stateful reconnect of
    /// `options`: the handshake request (`{"protocol":"json","version":1}` + `0x1E`, version 2
    /// with stateful reconnect) is queued.
    pub fn new(options: HubConnectionOptions, now: Duration) -> Self {
        let version = if options.stateful_reconnect { 2 } else { 1 };
        let mut core = Self {
            options,
            phase: Phase::Handshaking {
                deadline: now + options.handshake_timeout,
            },
            handshake_buffer: Vec::new(),
            reader: MessageReader::new(options.protocol, MAX_RECEIVE_MESSAGE_BYTES),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            next_invocation_id: 0,
            pending: BTreeSet::new(),
            cancelled: BTreeSet::new(),
            stateful: options.stateful_reconnect.then(|| Stateful {
                buffer: ReplayBuffer::new(),
                resume: None,
            }),
            last_sent: now,
            last_received: now,
        };
        core.outbox.push_back(Transmit::Text(
            HandshakeRequest {
                protocol: options.protocol.name().into(),
                version,
            }
            .encode(),
        ));
        core
    }

    /// [`new`](Self::new) with `protocol` instead of `options.protocol`
    /// (`{"protocol":"messagepack","version":1}` for MessagePack).
    pub fn with_protocol(
        options: HubConnectionOptions,
        now: Duration,
        protocol: HubProtocolKind,
    ) -> Self {
        Self::new(
            HubConnectionOptions {
                protocol,
                ..options
            },
            now,
        )
    }

    /// The hub protocol of this connection.
    pub fn protocol(&self) -> HubProtocolKind {
        self.options.protocol
    }

    /// Whether the handshake has completed and the connection is not closed (nor resuming).
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether a stateful reconnect is under way (transport lost or resumed without the
    /// server's Sequence yet).
    pub fn is_resuming(&self) -> bool {
        matches!(self.phase, Phase::Resuming | Phase::AwaitingSequence)
    }

    /// Feeds text received from the transport (one or more records, possibly partial).
    pub fn handle_text(&mut self, now: Duration, text: &str) {
        self.handle_bytes(now, text.as_bytes());
    }

    /// Feeds a binary frame received from the transport (MessagePack frames, possibly partial,
    /// possibly preceded by the handshake answer `{}\x1e`).
    pub fn handle_binary(&mut self, now: Duration, bytes: &[u8]) {
        self.handle_bytes(now, bytes);
    }

    fn handle_bytes(&mut self, now: Duration, mut bytes: &[u8]) {
        if matches!(self.phase, Phase::Closed | Phase::Resuming) {
            return;
        }
        self.last_received = now;
        if let Phase::Handshaking { .. } = self.phase {
            let Some(end) = bytes.iter().position(|b| *b == 0x1e) else {
                self.handshake_buffer.extend_from_slice(bytes);
                if self.handshake_buffer.len() > MAX_RECEIVE_MESSAGE_BYTES {
                    self.close_with(Some("handshake response too large".into()), false);
                }
                return;
            };
            self.handshake_buffer.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let record = std::mem::take(&mut self.handshake_buffer);
            let result = std::str::from_utf8(&record)
                .map_err(|_| ProtocolError::Handshake("handshake response is not UTF-8".into()))
                .and_then(HandshakeResponse::decode);
            match result {
                Ok(()) => {
                    self.phase = Phase::Connected;
                    self.events.push_back(Event::Connected);
                    // The official client pings right after the handshake.
                    self.queue(now, &HubMessage::Ping);
                }
                Err(e) => {
                    self.close_with(Some(e.to_string()), false);
                    return;
                }
            }
            if bytes.is_empty() {
                return;
            }
        }
        match self.reader.push(bytes) {
            Ok(results) => {
                for result in results {
                    if self.phase == Phase::Closed {
                        break;
                    }
                    match result {
                        Ok(Some(message)) => self.handle_message(now, message),
                        Ok(None) => {} // unknown type: ignored, as the spec asks
                        Err(e) => self.events.push_back(Event::Malformed(e)),
                    }
                }
                // Keep-alive from the receive path: a background tab's timers may run once a
                // minute (Chromium's intensive throttling) while the server's pings still
                // arrive every 15 s, so the ping that keeps the server's client timeout (30 s)
                // away goes out here once half the keep-alive interval has passed.
                if self.phase == Phase::Connected
                    && now >= self.last_sent + self.options.keep_alive_interval / 2
                {
                    self.queue(now, &HubMessage::Ping);
                }
                if self.phase == Phase::Connected
                    && let Some(st) = &self.stateful
                    && st.buffer.unacked_received() >= ACK_EVERY_MESSAGES
                {
                    self.send_ack(now);
                }
            }
            Err(e) => {
                let text = e.to_string();
                self.events.push_back(Event::Malformed(e));
                self.close_with(Some(text), false);
            }
        }
    }

    fn handle_message(&mut self, now: Duration, message: HubMessage) {
        let sequenced = message.is_sequenced();
        if let Some(stateful) = &mut self.stateful {
            match &message {
                HubMessage::Ack { sequence_id } => {
                    stateful.buffer.handle_ack(*sequence_id);
                    return;
                }
                HubMessage::Sequence { sequence_id } => {
                    if let Err(e) = stateful.buffer.handle_sequence(*sequence_id) {
                        self.close_with(Some(e.to_string()), false);
                        return;
                    }
                    if self.phase == Phase::AwaitingSequence {
                        self.phase = Phase::Connected;
                        stateful.resume = None;
                        stateful.buffer.cancel_ack();
                        let received = stateful.buffer.latest_received();
                        self.events.push_back(Event::Resumed);
                        // Ack at once what arrived before the loss: the server frees its replay
                        // buffer now instead of replaying it again at the next drop (a link
                        // that keeps dropping would otherwise fill it).
                        if received > 0 {
                            self.send_ack(now);
                        }
                    }
                    return;
                }
                _ if self.phase == Phase::AwaitingSequence => return,
                // A duplicate replayed by the server.
                _ if sequenced
                    && !stateful
                        .buffer
                        .handle_received(now, self.options.ack_interval) =>
                {
                    return;
                }
                _ => {}
            }
        }
        match message {
            HubMessage::Invocation {
                invocation_id,
                target,
                arguments,
                ..
            } => self.events.push_back(Event::Invocation {
                target,
                arguments,
                invocation_id,
            }),
            HubMessage::Completion {
                invocation_id,
                outcome,
            } => {
                if self.pending.remove(&invocation_id) {
                    self.events.push_back(Event::Completion {
                        invocation_id,
                        outcome,
                    });
                } else if !self.cancelled.remove(&invocation_id) {
                    self.events
                        .push_back(Event::Malformed(ProtocolError::InvalidField(
                            "invocationId",
                        )));
                }
            }
            HubMessage::StreamItem {
                invocation_id,
                item,
            } => {
                if !self.cancelled.contains(&invocation_id) {
                    self.events.push_back(Event::StreamItem {
                        invocation_id,
                        item,
                    })
                }
            }
            HubMessage::Close {
                error,
                allow_reconnect,
            } => self.close_with(error, allow_reconnect),
            // Ping only refreshed `last_received`. Ack/Sequence without stateful reconnect
            // mean nothing; stream invocations and cancels go client → server.
            HubMessage::Ping
            | HubMessage::Ack { .. }
            | HubMessage::Sequence { .. }
            | HubMessage::StreamInvocation { .. }
            | HubMessage::CancelInvocation { .. } => {}
        }
    }

    /// Queues a blocking invocation of `target`; its [`Event::Completion`] carries the returned
    /// id. Ids are a counter from `"0"`, as in the official client.
    pub fn invoke(
        &mut self,
        now: Duration,
        target: &str,
        arguments: Vec<Value>,
    ) -> Result<String, ConnectionError> {
        self.start_invocation(now, |id| HubMessage::Invocation {
            invocation_id: Some(id),
            target: target.into(),
            arguments,
            stream_ids: Vec::new(),
        })
    }

    /// Queues a stream invocation (type 4) of `target`: items come as [`Event::StreamItem`]
    /// and the end as [`Event::Completion`] with the returned id.
    pub fn stream(
        &mut self,
        now: Duration,
        target: &str,
        arguments: Vec<Value>,
    ) -> Result<String, ConnectionError> {
        self.start_invocation(now, |id| HubMessage::StreamInvocation {
            invocation_id: id,
            target: target.into(),
            arguments,
            stream_ids: Vec::new(),
        })
    }

    /// Queues the invocation `message` makes with the next id and awaits its completion.
    fn start_invocation(
        &mut self,
        now: Duration,
        message: impl FnOnce(String) -> HubMessage,
    ) -> Result<String, ConnectionError> {
        self.check_connected()?;
        let id = self.next_id();
        self.pending.insert(id.clone());
        self.queue(now, &message(id.clone()));
        Ok(id)
    }

    /// Cancels a stream invocation (type 5); later items and its completion are dropped.
    pub fn cancel_stream(
        &mut self,
        now: Duration,
        invocation_id: &str,
    ) -> Result<(), ConnectionError> {
        self.check_connected()?;
        if self.pending.remove(invocation_id) {
            self.cancelled.insert(invocation_id.to_owned());
            self.queue(
                now,
                &HubMessage::CancelInvocation {
                    invocation_id: invocation_id.to_owned(),
                },
            );
        }
        Ok(())
    }

    fn next_id(&mut self) -> String {
        let id = self.next_invocation_id.to_string();
        self.next_invocation_id += 1;
        id
    }

    /// Queues a non-blocking invocation (no completion will come).
    pub fn send(
        &mut self,
        now: Duration,
        target: &str,
        arguments: Vec<Value>,
    ) -> Result<(), ConnectionError> {
        self.queue_connected(now, &HubMessage::send(target, arguments))
    }

    /// Answers a server invocation that carried an id (client results).
    pub fn complete(
        &mut self,
        now: Duration,
        invocation_id: String,
        outcome: CompletionOutcome,
    ) -> Result<(), ConnectionError> {
        self.queue_connected(
            now,
            &HubMessage::Completion {
                invocation_id,
                outcome,
            },
        )
    }

    /// Queues `message` once connected.
    fn queue_connected(
        &mut self,
        now: Duration,
        message: &HubMessage,
    ) -> Result<(), ConnectionError> {
        self.check_connected()?;
        self.queue(now, message);
        Ok(())
    }

    /// Starts a graceful close: a Close message is queued and the connection is over.
    pub fn close(&mut self, now: Duration) {
        if self.phase == Phase::Connected {
            self.queue(
                now,
                &HubMessage::Close {
                    error: None,
                    allow_reconnect: false,
                },
            );
        }
        self.close_with(None, false);
    }

    /// The transport closed under the connection (socket error, network loss): the connection
    /// is over ([`Event::Closed`], reconnect allowed once it had connected).
    pub fn handle_transport_closed(&mut self, reason: Option<String>) {
        let allow = matches!(
            self.phase,
            Phase::Connected | Phase::Resuming | Phase::AwaitingSequence
        );
        self.close_with(
            reason.or_else(|| Some("The transport closed.".into())),
            allow,
        );
    }

    /// The transport dropped. With stateful reconnect negotiated and the handshake done, the
    /// logical connection stays (returns `true`): reopen the WebSocket to the same URL and call
    /// [`resume`](Self::resume); if the reopened transport is refused, call
    /// [`handle_resume_refused`](Self::handle_resume_refused). A resume is bounded: it must
    /// complete within [`HubConnectionOptions::resume_timeout`] of the first loss
    /// ([`poll_timeout`](Self::poll_timeout) says when), and at most
    /// [`HubConnectionOptions::max_resume_attempts`] losses in a row are resumed; past either the
    /// connection closes with reconnect allowed. Without stateful reconnect this is
    /// `handle_transport_closed` and returns `false`.
    pub fn handle_transport_lost(&mut self, now: Duration, reason: Option<String>) -> bool {
        let resumable = self.stateful.is_some()
            && matches!(self.phase, Phase::Connected | Phase::AwaitingSequence);
        if !resumable {
            self.handle_transport_closed(reason);
            return false;
        }
        let max = self.options.max_resume_attempts;
        let Some(stateful) = &mut self.stateful else {
            return false;
        };
        let (since, attempts) = stateful.resume.unwrap_or((now, 0));
        if attempts >= max {
            self.close_with(Some(RESUME_ATTEMPTS.into()), true);
            return false;
        }
        stateful.resume = Some((since, attempts + 1));
        stateful.buffer.cancel_ack();
        self.phase = Phase::Resuming;
        self.outbox.clear();
        self.reader = MessageReader::new(self.options.protocol, MAX_RECEIVE_MESSAGE_BYTES);
        self.last_received = now;
        true
    }

    /// While resuming, the reopened transport closed before it opened: the server refused it
    /// (it no longer knows the connection: a restarted hub answers 404) or cannot be reached.
    /// Browsers do not expose the HTTP status of a refused WebSocket, so both end the same
    /// way: the connection closes at once with reconnect allowed, and the caller negotiates a
    /// new one ([`RESUME_REFUSED`]). Ignored when not resuming.
    pub fn handle_resume_refused(&mut self) {
        if self.phase == Phase::Resuming {
            self.close_with(Some(RESUME_REFUSED.into()), true);
        }
    }

    /// When the resume under way must be complete; `None` when not resuming.
    fn resume_deadline(&self) -> Option<Duration> {
        let (since, _) = self.stateful.as_ref()?.resume?;
        Some(since + self.options.resume_timeout)
    }

    /// A new transport is open after [`handle_transport_lost`](Self::handle_transport_lost):
    /// queues `Sequence{first unacked id}` and every unacked message, in order.
    pub fn resume(&mut self, now: Duration) -> Result<(), ConnectionError> {
        if self.phase != Phase::Resuming {
            return Err(match self.phase {
                Phase::Closed => ConnectionError::Closed,
                _ => ConnectionError::NotConnected,
            });
        }
        let protocol = self.options.protocol;
        let Some(stateful) = &self.stateful else {
            return Err(ConnectionError::NotConnected);
        };
        self.outbox.clear();
        self.outbox.extend(stateful.buffer.replay(protocol));
        self.phase = Phase::AwaitingSequence;
        self.last_received = now;
        self.last_sent = now;
        Ok(())
    }

    /// Messages sent but not yet acknowledged by the server (stateful reconnect only).
    pub fn unacked_count(&self) -> usize {
        self.stateful.as_ref().map_or(0, |s| s.buffer.unacked_len())
    }

    /// The next *text* frame to send, if the next frame is text (always, with JSON). With
    /// MessagePack use [`poll_transmit_frame`](Self::poll_transmit_frame): this returns `None`
    /// while a binary frame is next.
    pub fn poll_transmit(&mut self) -> Option<String> {
        match self.outbox.front() {
            Some(Transmit::Text(_)) => match self.outbox.pop_front() {
                Some(Transmit::Text(text)) => Some(text),
                _ => None,
            },
            _ => None,
        }
    }

    /// The next frame to send, text or binary.
    pub fn poll_transmit_frame(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` once closed.
    /// While a stateful reconnect is under way this is the end of its time bound.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Handshaking { deadline } => Some(deadline),
            Phase::Connected => {
                let mut at = (self.last_sent + self.options.keep_alive_interval)
                    .min(self.last_received + self.options.server_timeout);
                if let Some(due) = self.stateful.as_ref().and_then(|s| s.buffer.ack_due()) {
                    at = at.min(due);
                }
                Some(at)
            }
            Phase::AwaitingSequence => {
                let at = self.last_received + self.options.server_timeout;
                Some(self.resume_deadline().map_or(at, |d| d.min(at)))
            }
            Phase::Resuming => self.resume_deadline(),
            Phase::Closed => None,
        }
    }

    /// Runs the timers due at `now`: handshake timeout, server timeout, keep-alive ping, and
    /// with stateful reconnect the Ack and the resume bound. (Receiving also sends the
    /// keep-alive ping once half its interval has passed, so a throttled page stays alive.)
    pub fn handle_timeout(&mut self, now: Duration) {
        if matches!(self.phase, Phase::Resuming | Phase::AwaitingSequence)
            && self.resume_deadline().is_some_and(|d| now >= d)
        {
            self.close_with(Some(RESUME_TIMEOUT.into()), true);
            return;
        }
        match self.phase {
            Phase::Handshaking { deadline } if now >= deadline => {
                self.close_with(Some(HANDSHAKE_TIMEOUT.into()), false)
            }
            Phase::Connected | Phase::AwaitingSequence => {
                if now >= self.last_received + self.options.server_timeout {
                    self.close_with(Some(SERVER_TIMEOUT.into()), true);
                    return;
                }
                if self.phase != Phase::Connected {
                    return;
                }
                if self
                    .stateful
                    .as_ref()
                    .is_some_and(|s| s.buffer.ack_due().is_some_and(|due| now >= due))
                {
                    self.send_ack(now);
                }
                if now >= self.last_sent + self.options.keep_alive_interval {
                    self.queue(now, &HubMessage::Ping);
                }
            }
            _ => {}
        }
    }

    /// Queues `Ack{latest received}` and clears the timed one.
    fn send_ack(&mut self, now: Duration) {
        let Some(st) = &mut self.stateful else { return };
        let ack = st.buffer.take_ack();
        self.queue(now, &ack);
    }

    fn check_connected(&self) -> Result<(), ConnectionError> {
        match self.phase {
            Phase::Connected => Ok(()),
            Phase::Resuming | Phase::AwaitingSequence => Ok(()),
            Phase::Handshaking { .. } => Err(ConnectionError::NotConnected),
            Phase::Closed => Err(ConnectionError::Closed),
        }
    }

    fn queue(&mut self, now: Duration, message: &HubMessage) {
        let frame = self.options.protocol.encode(message);
        if let Some(stateful) = &mut self.stateful {
            stateful.buffer.record_sent(message, &frame);
        }
        if self.phase == Phase::Resuming {
            return; // replayed by `resume`, or not needed (pings, acks)
        }
        self.last_sent = now;
        self.outbox.push_back(frame);
    }

    fn close_with(&mut self, error: Option<String>, allow_reconnect: bool) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
        self.cancelled.clear();
        for invocation_id in std::mem::take(&mut self.pending) {
            self.events.push_back(Event::Completion {
                invocation_id,
                outcome: CompletionOutcome::Error(INVOCATION_CANCELED.into()),
            });
        }
        self.events.push_back(Event::Closed {
            error,
            allow_reconnect,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    #[cfg(feature = "messagepack")]
    use crate::msgpack;
    use serde_json::json;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn connected() -> HubConnectionCore {
        let mut core = HubConnectionCore::new(HubConnectionOptions::default(), S(0));
        assert_eq!(
            core.poll_transmit().unwrap(),
            "{\"protocol\":\"json\",\"version\":1}\u{1e}"
        );
        core.handle_text(S(0), "{}\u{1e}");
        assert_eq!(core.poll_event(), Some(Event::Connected));
        assert_eq!(core.poll_transmit().unwrap(), "{\"type\":6}\u{1e}");
        core
    }

    #[test]
    fn handshake_then_invocations_both_ways() {
        let mut core = connected();
        let id = core.invoke(S(1), "acceptCall", vec![json!("c1")]).unwrap();
        assert_eq!(id, "0");
        let sent = core.poll_transmit().unwrap();
        assert_eq!(
            json::decode(sent.trim_end_matches('\u{1e}'))
                .unwrap()
                .unwrap(),
            HubMessage::Invocation {
                invocation_id: Some("0".into()),
                target: "acceptCall".into(),
                arguments: vec![json!("c1")],
                stream_ids: vec![]
            }
        );
        core.handle_text(
            S(1),
            "{\"type\":3,\"invocationId\":\"0\",\"result\":true}\u{1e}{\"type\":1,\"target\":\"ReceiveNotification\",\"arguments\":[\"x\"]}\u{1e}",
        );
        assert_eq!(
            core.poll_event(),
            Some(Event::Completion {
                invocation_id: "0".into(),
                outcome: CompletionOutcome::Result(json!(true))
            })
        );
        assert_eq!(
            core.poll_event(),
            Some(Event::Invocation {
                target: "ReceiveNotification".into(),
                arguments: vec![json!("x")],
                invocation_id: None
            })
        );
        assert_eq!(core.invoke(S(2), "x", vec![]).unwrap(), "1");
    }

    #[test]
    fn cannot_invoke_before_handshake() {
        let mut core = HubConnectionCore::new(HubConnectionOptions::default(), S(0));
        assert_eq!(
            core.send(S(0), "x", vec![]),
            Err(ConnectionError::NotConnected)
        );
    }

    #[test]
    fn handshake_error_and_timeout_close() {
        let mut core = HubConnectionCore::new(HubConnectionOptions::default(), S(0));
        core.handle_text(S(0), "{\"error\":\"nope\"}\u{1e}");
        assert_eq!(
            core.poll_event(),
            Some(Event::Closed {
                error: Some("handshake failed: nope".into()),
                allow_reconnect: false
            })
        );

        let mut core = HubConnectionCore::new(HubConnectionOptions::default(), S(0));
        assert_eq!(core.poll_timeout(), Some(S(15)));
        core.handle_timeout(S(14));
        assert!(!core.is_closed());
        core.handle_timeout(S(15));
        assert_eq!(
            core.poll_event(),
            Some(Event::Closed {
                error: Some(HANDSHAKE_TIMEOUT.into()),
                allow_reconnect: false
            })
        );
    }

    /// A page whose timers are throttled to one run a minute still pings: receiving the
    /// server's ping sends ours once half the keep-alive interval (7.5 s) has passed.
    #[test]
    fn a_throttled_page_pings_from_the_receive_path() {
        let mut core = connected();
        while core.poll_transmit().is_some() {}
        let ping = "{\"type\":6}\u{1e}";
        core.handle_text(S(5), ping);
        assert_eq!(core.poll_transmit(), None, "too soon after the last send");
        core.handle_text(S(8), ping);
        assert_eq!(core.poll_transmit().as_deref(), Some(ping));
        core.handle_text(S(9), ping);
        assert_eq!(core.poll_transmit(), None);
    }

    #[test]
    fn keep_alive_pings_when_idle_and_server_timeout_closes() {
        let mut core = connected();
        assert_eq!(core.poll_timeout(), Some(S(15)));
        core.handle_timeout(S(15));
        assert_eq!(core.poll_transmit().unwrap(), "{\"type\":6}\u{1e}");
        // Received a ping at 20 s: the server timeout moves to 50 s.
        core.handle_text(S(20), "{\"type\":6}\u{1e}");
        assert_eq!(core.poll_timeout(), Some(S(30)));
        core.handle_timeout(S(30));
        assert!(core.poll_transmit().is_some());
        assert_eq!(core.poll_timeout(), Some(S(45)));
        core.handle_timeout(S(45));
        core.poll_transmit();
        assert_eq!(core.poll_timeout(), Some(S(50)));
        core.handle_timeout(S(50));
        assert_eq!(
            core.poll_event(),
            Some(Event::Closed {
                error: Some(SERVER_TIMEOUT.into()),
                allow_reconnect: true
            })
        );
        assert_eq!(core.poll_timeout(), None);
    }

    #[test]
    fn a_late_wake_after_a_long_sleep_times_out_at_once() {
        // A throttled tab wakes 5 minutes later: the first timer run closes the connection.
        let mut core = connected();
        core.handle_timeout(S(300));
        assert!(core.is_closed());
    }

    #[test]
    fn pending_invocations_fail_on_close() {
        let mut core = connected();
        core.invoke(S(1), "a", vec![]).unwrap();
        core.invoke(S(1), "b", vec![]).unwrap();
        core.handle_text(
            S(2),
            "{\"type\":7,\"error\":\"shutting down\",\"allowReconnect\":true}\u{1e}",
        );
        let events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
        assert_eq!(events.len(), 3);
        assert!(
            matches!(&events[0], Event::Completion { outcome: CompletionOutcome::Error(e), .. } if e == INVOCATION_CANCELED)
        );
        assert_eq!(
            events[2],
            Event::Closed {
                error: Some("shutting down".into()),
                allow_reconnect: true
            }
        );
        assert_eq!(core.send(S(3), "x", vec![]), Err(ConnectionError::Closed));
    }

    #[test]
    fn malformed_records_are_reported_and_the_rest_goes_on() {
        let mut core = connected();
        core.handle_text(
            S(1),
            "garbage\u{1e}{\"type\":1,\"target\":\"T\",\"arguments\":[]}\u{1e}",
        );
        assert!(matches!(
            core.poll_event(),
            Some(Event::Malformed(ProtocolError::InvalidJson(_)))
        ));
        assert!(matches!(core.poll_event(), Some(Event::Invocation { .. })));
        assert!(core.is_connected());
    }

    #[test]
    fn transport_loss_allows_reconnect_once_connected() {
        let mut core = connected();
        core.handle_transport_closed(None);
        assert!(matches!(
            core.poll_event(),
            Some(Event::Closed {
                allow_reconnect: true,
                ..
            })
        ));
        let mut core = HubConnectionCore::new(HubConnectionOptions::default(), S(0));
        core.handle_transport_closed(Some("refused".into()));
        assert_eq!(
            core.poll_event(),
            Some(Event::Closed {
                error: Some("refused".into()),
                allow_reconnect: false
            })
        );
    }

    #[test]
    #[cfg(feature = "messagepack")]
    fn messagepack_handshake_and_binary_frames() {
        let options = HubConnectionOptions::default();
        let mut core =
            HubConnectionCore::with_protocol(options, S(0), HubProtocolKind::MessagePack);
        assert_eq!(
            core.poll_transmit_frame(),
            Some(Transmit::Text(
                "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}".into()
            ))
        );
        // The handshake answer and a ping in one binary frame.
        let mut frame = b"{}\x1e".to_vec();
        frame.extend(msgpack::encode(&HubMessage::Ping));
        core.handle_binary(S(0), &frame);
        assert_eq!(core.poll_event(), Some(Event::Connected));
        assert_eq!(
            core.poll_transmit_frame(),
            Some(Transmit::Binary(vec![0x02, 0x91, 0x06]))
        );
        let id = core.invoke(S(1), "Add", vec![json!(40), json!(2)]).unwrap();
        assert_eq!(core.poll_transmit(), None, "binary frames are not text");
        assert_eq!(
            core.poll_transmit_frame().unwrap().into_bytes(),
            vec![
                0x0c, 0x95, 0x01, 0x80, 0xa1, 0x30, 0xa3, 0x41, 0x64, 0x64, 0x92, 0x28, 0x02
            ]
        );
        let reply = msgpack::encode(&HubMessage::Completion {
            invocation_id: id.clone(),
            outcome: CompletionOutcome::Result(json!(42)),
        });
        // Split across two reads.
        core.handle_binary(S(1), &reply[..3]);
        assert_eq!(core.poll_event(), None);
        core.handle_binary(S(1), &reply[3..]);
        assert_eq!(
            core.poll_event(),
            Some(Event::Completion {
                invocation_id: id,
                outcome: CompletionOutcome::Result(json!(42))
            })
        );
        // Garbage: reported, connection goes on.
        core.handle_binary(S(2), &[0x01, 0xc1]);
        assert!(matches!(core.poll_event(), Some(Event::Malformed(_))));
        assert!(core.is_connected());
    }

    fn stateful() -> HubConnectionCore {
        let options = HubConnectionOptions {
            stateful_reconnect: true,
            ..HubConnectionOptions::default()
        };
        let mut core = HubConnectionCore::new(options, S(0));
        assert_eq!(
            core.poll_transmit().unwrap(),
            "{\"protocol\":\"json\",\"version\":2}\u{1e}"
        );
        core.handle_text(S(0), "{}\u{1e}");
        assert_eq!(core.poll_event(), Some(Event::Connected));
        core.poll_transmit();
        core
    }

    fn notify(n: u64) -> String {
        json::encode(&HubMessage::send("N", vec![json!(n)]))
    }

    #[test]
    fn stateful_reconnect_acks_replays_and_drops_duplicates() {
        let mut core = stateful();
        core.invoke(S(1), "Add", vec![json!(1)]).unwrap();
        let sent = core.poll_transmit().unwrap();
        core.handle_text(S(1), &(notify(1) + &notify(2)));
        assert_eq!(std::iter::from_fn(|| core.poll_event()).count(), 2);
        // Ack about a second after receiving.
        assert_eq!(core.poll_timeout(), Some(S(2)));
        core.handle_timeout(S(2));
        assert_eq!(
            core.poll_transmit().unwrap(),
            "{\"sequenceId\":2,\"type\":8}\u{1e}"
        );
        // Socket drops; the logical connection stays.
        assert!(core.handle_transport_lost(S(3), None));
        assert!(core.is_resuming());
        assert_eq!(core.poll_event(), None);
        core.send(S(3), "Later", vec![]).unwrap(); // buffered, replayed below
        core.resume(S(4)).unwrap();
        assert_eq!(
            core.poll_transmit().unwrap(),
            "{\"sequenceId\":1,\"type\":9}\u{1e}"
        );
        assert_eq!(core.poll_transmit().unwrap(), sent);
        assert!(core.poll_transmit().unwrap().contains("Later"));
        // Until the server's Sequence, messages are ignored.
        core.handle_text(S(4), &notify(9));
        assert_eq!(core.poll_event(), None);
        // The server restarts at 2: message 2 is a duplicate, 3 is new.
        core.handle_text(
            S(4),
            &("{\"type\":9,\"sequenceId\":2}\u{1e}".to_owned() + &notify(2) + &notify(3)),
        );
        assert_eq!(core.poll_event(), Some(Event::Resumed));
        assert_eq!(
            core.poll_event(),
            Some(Event::Invocation {
                target: "N".into(),
                arguments: vec![json!(3)],
                invocation_id: None
            })
        );
        assert_eq!(core.poll_event(), None);
        assert!(core.is_connected());
        // Server acks our three messages.
        core.handle_text(S(5), "{\"type\":8,\"sequenceId\":3}\u{1e}");
        assert_eq!(core.unacked_count(), 0);
        // A Sequence beyond what was received closes.
        assert!(core.handle_transport_lost(S(6), None));
        core.resume(S(6)).unwrap();
        core.handle_text(S(6), "{\"type\":9,\"sequenceId\":99}\u{1e}");
        assert!(core.is_closed());
    }

    /// A socket lost in the middle of a replay: the server had acked up to 3 before, replays
    /// from 2, the socket drops after message 2, and the server then restarts at 4 (everything
    /// up to 3 is acked). That is not "beyond what was received": the connection goes on.
    #[test]
    fn a_replay_cut_short_then_a_sequence_after_the_acked_messages_goes_on() {
        let mut core = stateful();
        core.handle_text(S(1), &(notify(1) + &notify(2) + &notify(3)));
        assert_eq!(std::iter::from_fn(|| core.poll_event()).count(), 3);
        assert!(core.handle_transport_lost(S(2), None));
        core.resume(S(2)).unwrap();
        core.handle_text(
            S(2),
            &("{\"type\":9,\"sequenceId\":2}\u{1e}".to_owned() + &notify(2)),
        );
        assert_eq!(core.poll_event(), Some(Event::Resumed));
        assert_eq!(core.poll_event(), None, "2 is a duplicate");
        assert!(core.handle_transport_lost(S(3), None));
        core.resume(S(3)).unwrap();
        core.handle_text(
            S(3),
            &("{\"type\":9,\"sequenceId\":4}\u{1e}".to_owned() + &notify(4)),
        );
        assert!(core.is_connected());
        assert_eq!(core.poll_event(), Some(Event::Resumed));
        assert_eq!(
            core.poll_event(),
            Some(Event::Invocation {
                target: "N".into(),
                arguments: vec![json!(4)],
                invocation_id: None
            })
        );
        // Really beyond what was received (5 is missing): closes.
        assert!(core.handle_transport_lost(S(4), None));
        core.resume(S(4)).unwrap();
        core.handle_text(S(4), "{\"type\":9,\"sequenceId\":6}\u{1e}");
        assert!(core.is_closed());
    }

    fn closed_reason(core: &mut HubConnectionCore) -> (Option<String>, bool) {
        loop {
            match core.poll_event() {
                Some(Event::Closed {
                    error,
                    allow_reconnect,
                }) => return (error, allow_reconnect),
                Some(_) => {}
                None => panic!("no Closed event"),
            }
        }
    }

    /// A hub killed and restarted: the socket reopens nowhere (or is refused), and the resume
    /// must not go on for ever while the widget still believes it is connected (issue 13).
    #[test]
    fn a_resume_is_bounded_in_time() {
        let mut core = stateful();
        assert!(core.handle_transport_lost(S(10), Some("socket closed".into())));
        assert_eq!(core.poll_timeout(), Some(S(30)), "20 s after the loss");
        core.handle_timeout(S(29));
        assert!(core.is_resuming());
        core.handle_timeout(S(30));
        assert!(core.is_closed());
        assert_eq!(
            closed_reason(&mut core),
            (Some(RESUME_TIMEOUT.into()), true)
        );
    }

    /// The bound covers the whole resume, not each reopen: a socket that opens and drops again
    /// before the Sequence does not restart the clock.
    #[test]
    fn a_resume_that_reopens_but_never_gets_a_sequence_still_times_out() {
        let mut core = stateful();
        assert!(core.handle_transport_lost(S(10), None));
        core.resume(S(15)).unwrap();
        assert_eq!(core.poll_timeout(), Some(S(30)));
        assert!(core.handle_transport_lost(S(20), None));
        assert_eq!(core.poll_timeout(), Some(S(30)));
        core.handle_timeout(S(30));
        assert!(closed_reason(&mut core).1);
    }

    #[test]
    fn a_refused_reopen_falls_back_to_a_new_connection_at_once() {
        let mut core = stateful();
        core.invoke(S(1), "Add", vec![]).unwrap();
        assert!(core.handle_transport_lost(S(2), None));
        core.handle_resume_refused();
        assert!(core.is_closed());
        let mut events: Vec<_> = std::iter::from_fn(|| core.poll_event()).collect();
        assert_eq!(
            events.pop(),
            Some(Event::Closed {
                error: Some(RESUME_REFUSED.into()),
                allow_reconnect: true
            })
        );
        assert!(
            matches!(&events[..], [Event::Completion { outcome: CompletionOutcome::Error(e), .. }] if e == INVOCATION_CANCELED),
            "the pending invocation fails: {events:?}"
        );
        // Refusal outside a resume changes nothing.
        let mut other = stateful();
        other.handle_resume_refused();
        assert!(other.is_connected());
    }

    /// After a resume the client acks at once what it had received, so a link that keeps
    /// dropping does not leave the server's replay buffer to fill up.
    #[test]
    fn a_resume_acks_what_was_received_at_once() {
        let mut core = stateful();
        core.handle_text(S(1), &(notify(1) + &notify(2)));
        assert!(core.handle_transport_lost(S(1), None));
        core.resume(S(2)).unwrap();
        while core.poll_transmit().is_some() {}
        core.handle_text(S(2), "{\"type\":9,\"sequenceId\":3}\u{1e}");
        assert_eq!(
            core.poll_transmit().as_deref(),
            Some("{\"sequenceId\":2,\"type\":8}\u{1e}")
        );
    }

    /// A burst is acked every `ACK_EVERY_MESSAGES` messages, not only a second later.
    #[test]
    fn a_burst_is_acked_before_the_ack_interval() {
        let mut core = stateful();
        while core.poll_transmit().is_some() {}
        let burst: String = (1..=ACK_EVERY_MESSAGES).map(notify).collect();
        core.handle_text(S(1), &burst);
        assert_eq!(
            core.poll_transmit(),
            Some(format!(
                "{{\"sequenceId\":{ACK_EVERY_MESSAGES},\"type\":8}}\u{1e}"
            ))
        );
        core.handle_text(S(1), &notify(ACK_EVERY_MESSAGES + 1));
        assert_eq!(
            core.poll_transmit(),
            None,
            "the next one waits for the timed ack"
        );
    }

    #[test]
    fn a_resume_is_bounded_in_count_and_a_success_resets_the_count() {
        let mut core = stateful();
        for round in 0..2u64 {
            // Each round: lost, reopened, resumed.
            assert!(core.handle_transport_lost(S(10 * round + 1), None));
            core.resume(S(10 * round + 2)).unwrap();
            core.handle_text(S(10 * round + 2), "{\"type\":9,\"sequenceId\":1}\u{1e}");
            assert_eq!(core.poll_event(), Some(Event::Resumed));
        }
        // Ten losses in a row without a Sequence: the eleventh gives up.
        for n in 0..10u64 {
            assert!(core.handle_transport_lost(S(30 + n), None), "loss {n}");
            core.resume(S(30 + n)).unwrap();
        }
        assert!(!core.handle_transport_lost(S(41), None));
        assert_eq!(
            closed_reason(&mut core),
            (Some(RESUME_ATTEMPTS.into()), true)
        );
    }

    #[test]
    fn without_stateful_reconnect_a_lost_transport_closes() {
        let mut core = connected();
        assert!(!core.handle_transport_lost(S(1), None));
        assert!(matches!(
            core.poll_event(),
            Some(Event::Closed {
                allow_reconnect: true,
                ..
            })
        ));
    }

    #[test]
    fn streams_and_cancel() {
        let mut core = connected();
        let id = core.stream(S(1), "counter", vec![json!(3)]).unwrap();
        assert!(core.poll_transmit().unwrap().contains("\"type\":4"));
        core.handle_text(
            S(1),
            &json::encode(&HubMessage::StreamItem {
                invocation_id: id.clone(),
                item: json!(0),
            }),
        );
        assert!(matches!(core.poll_event(), Some(Event::StreamItem { .. })));
        core.cancel_stream(S(2), &id).unwrap();
        assert!(core.poll_transmit().unwrap().contains("\"type\":5"));
        core.handle_text(
            S(2),
            &json::encode(&HubMessage::Completion {
                invocation_id: id,
                outcome: CompletionOutcome::Void,
            }),
        );
        assert_eq!(core.poll_event(), None);
    }
}
