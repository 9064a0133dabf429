//! The server side of one hub connection, sans IO: the counterpart of
//! [`HubConnectionCore`](crate::client::HubConnectionCore), driven by `switchboard-hub`'s
//! `connection.rs`.
//!
//! [`HubServerSession`] is fed the bytes a transport received and the current time, and gives
//! back frames to send ([`HubServerSession::poll_transmit`]), [`ServerEvent`]s
//! ([`HubServerSession::poll_event`]) and the next instant it must be woken at
//! ([`HubServerSession::poll_timeout`], [`HubServerSession::handle_timeout`]). It owns:
//!
//! - the handshake (`HubProtocol.md`, "Overview"): the first record must be a handshake request
//!   for a known protocol, version 1 or 2; `messagepack` only where the transport carries binary
//!   ([`HubServerOptions::binary_transfer`]; not Server-Sent Events). The answer is `{}` (in a
//!   binary frame for MessagePack) or `{"error":"..."}` in a text frame, after which the session
//!   ends without a Close message. No handshake within
//!   [`HubServerOptions::handshake_timeout`], or a handshake record longer than
//!   [`HubServerOptions::max_message_bytes`], ends it quietly too;
//! - message framing with a per-message limit (a longer message closes with
//!   [`message_too_large`]) and a cap on messages per read;
//! - keep-alive (`HubProtocol.md`, "Ping"): a Ping after
//!   [`HubServerOptions::keep_alive_interval`] without sending, and a Close with error
//!   [`CLIENT_TIMEOUT`] (reconnect allowed) after [`HubServerOptions::client_timeout`] without
//!   receiving;
//! - stateful reconnect (`HubProtocol.md`, "Stateful Reconnect"; handshake version 2 when
//!   [`HubServerOptions::stateful_reconnect`]): numbering, acks and replay through the
//!   [`ReplayBuffer`] the client core shares; when the transport is lost
//!   ([`HubServerSession::handle_transport_lost`]) the session waits
//!   [`HubServerOptions::reconnect_window`] for a new one ([`HubServerSession::resume`]), which
//!   gets `Sequence{first unacked}` and the replay. The buffer is bounded: beyond
//!   [`HubServerOptions::replay_buffer_bytes`] [`HubServerSession::has_room`] says to stop
//!   feeding hub messages (backpressure); beyond [`HubServerOptions::replay_close_factor`] times
//!   that, the session closes with [`REPLAY_BUFFER_FULL`] (reconnect allowed).
//!
//! Hub methods are not its business: invocations, stream invocations, cancels, completions
//! and stream items come out as [`ServerEvent::Message`], and the answers go in through
//! [`HubServerSession::send`]. The messages of one read are split at once but applied one at a
//! time as [`HubServerSession::poll_event`] is called, so answers sent while handling one
//! message go out before the next message is looked at (and a Close from the client, or a
//! close caused by an answer, stops what follows it).
//!
//! Time is a [`Duration`] since any fixed origin the caller chooses, as in the client core.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ProtocolError;
use crate::handshake::{HandshakeRequest, HandshakeResponse};
use crate::message::HubMessage;
use crate::protocol::{
    DEFAULT_MAX_MESSAGES_PER_READ, HubProtocolKind, MessageReader, ReadResult, Transmit,
};
use crate::resume::ReplayBuffer;

/// The Close error sent when the client sent nothing for [`HubServerOptions::client_timeout`].
pub const CLIENT_TIMEOUT: &str = "Client timeout";
/// The Close error of a stateful-reconnect connection whose replay buffer went past
/// [`HubServerOptions::replay_close_factor`] times [`HubServerOptions::replay_buffer_bytes`]
/// (hub messages stop at 1×; stream items and completions beyond it mean the client does not
/// ack).
pub const REPLAY_BUFFER_FULL: &str =
    "Connection closed: the stateful reconnect buffer is full (the client does not ack)";
/// The handshake error when `messagepack` is asked for over a text-only transport (ASP.NET
/// Core's text).
pub const BINARY_NOT_SUPPORTED: &str = "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.";
/// ASP.NET Core's default largest message from a client: 32 KB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// The Close error for a message longer than `limit` bytes.
pub fn message_too_large(limit: usize) -> String {
    format!(
        "Message exceeds the maximum message size of {limit} bytes ({} KB)",
        limit / 1024
    )
}

/// Options of a server session; the defaults are ASP.NET Core's and Azure SignalR's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubServerOptions {
    /// The handshake request must arrive within this (15 s).
    pub handshake_timeout: Duration,
    /// A Ping is sent after this long without sending (15 s, `KeepAliveInterval`).
    pub keep_alive_interval: Duration,
    /// Close with [`CLIENT_TIMEOUT`] after this long without receiving (30 s,
    /// `ClientTimeoutInterval`).
    pub client_timeout: Duration,
    /// Largest message accepted from the client, in bytes (32 KB, `MaximumReceiveMessageSize`).
    pub max_message_bytes: usize,
    /// Messages one read may carry (see [`MessageReader::with_max_messages`]).
    pub max_messages_per_read: usize,
    /// Whether the transport carries binary frames (WebSockets, long polling): MessagePack is
    /// refused at the handshake without it (Server-Sent Events).
    pub binary_transfer: bool,
    /// Whether stateful reconnect was negotiated (`useStatefulReconnect`) and the transport
    /// can be resumed (WebSockets): then a version-2 handshake turns it on.
    pub stateful_reconnect: bool,
    /// With stateful reconnect: how long after receiving a message the Ack goes out (1 s).
    pub ack_interval: Duration,
    /// With stateful reconnect: unacknowledged bytes beyond which [`HubServerSession::has_room`]
    /// is false (100 000, ASP.NET Core's `StatefulReconnectBufferSize`).
    pub replay_buffer_bytes: usize,
    /// With stateful reconnect: the session closes with [`REPLAY_BUFFER_FULL`] when the
    /// unacknowledged bytes exceed this many times `replay_buffer_bytes` (8).
    pub replay_close_factor: usize,
    /// With stateful reconnect: how long a lost transport may take to be replaced (30 s).
    pub reconnect_window: Duration,
}

impl Default for HubServerOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(15),
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_messages_per_read: DEFAULT_MAX_MESSAGES_PER_READ,
            binary_transfer: true,
            stateful_reconnect: false,
            ack_interval: Duration::from_secs(1),
            replay_buffer_bytes: 100_000,
            replay_close_factor: 8,
            reconnect_window: Duration::from_secs(30),
        }
    }
}

/// Why a session ended ([`ServerEvent::Closed`]). Where a Close message went out, its error
/// and `allowReconnect` are given.
#[derive(Debug, Clone, PartialEq)]
pub enum CloseReason {
    /// The handshake was refused with this error (answered `{"error":...}`; no Close message).
    HandshakeRefused(String),
    /// No handshake request within [`HubServerOptions::handshake_timeout`] (no answer).
    HandshakeTimeout,
    /// The handshake request grew past [`HubServerOptions::max_message_bytes`] (no answer).
    HandshakeTooLarge,
    /// The client sent a Close message (none goes back).
    ClientClosed,
    /// Nothing received for [`HubServerOptions::client_timeout`]: Close [`CLIENT_TIMEOUT`],
    /// reconnect allowed (a client that was asleep or cut off should come back).
    ClientTimeout,
    /// A message too large, too many messages in one read or broken framing: Close with the
    /// error's text ([`message_too_large`] for a long message), no reconnect.
    BadFraming(ProtocolError),
    /// The client's Sequence was past what was received: Close
    /// [`SEQUENCE_TOO_HIGH`](crate::resume::SEQUENCE_TOO_HIGH), no reconnect.
    SequenceTooHigh,
    /// The replay buffer went past its close bound: Close [`REPLAY_BUFFER_FULL`], reconnect
    /// allowed. The figures are the buffer's at that moment; `message_type` is the type of the
    /// message that crossed the bound.
    ReplayBufferFull {
        unacked: usize,
        unacked_bytes: usize,
        first: u64,
        message_type: u8,
    },
    /// The transport was lost without stateful reconnect (or before the handshake).
    TransportClosed,
    /// Stateful reconnect: no new transport within [`HubServerOptions::reconnect_window`].
    ReconnectWindowElapsed,
    /// [`HubServerSession::close`]: the server's own Close message.
    Closed {
        error: Option<String>,
        allow_reconnect: bool,
    },
    /// [`HubServerSession::end`]: ended without a Close message.
    Ended,
}

/// What happened on the session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The handshake succeeded (the answer `{}` is queued): register the connection.
    Connected {
        protocol: HubProtocolKind,
        /// Whether stateful reconnect is on (version 2 and allowed by the options).
        stateful: bool,
    },
    /// A message for the application: Invocation, StreamInvocation, CancelInvocation,
    /// Completion or StreamItem (Ping, Ack, Sequence and Close are handled here; duplicates of
    /// a replay are dropped).
    Message(HubMessage),
    /// A record could not be understood; it was dropped and the connection goes on.
    Malformed(ProtocolError),
    /// The session is over; queued frames (the Close message, if any) are still to be sent,
    /// then the transport is closed. Always the last event.
    Closed(CloseReason),
}

/// A new transport that [`HubServerSession::resume`] cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The handshake has not completed, or stateful reconnect is off.
    #[error("the connection cannot be resumed (no handshake or no stateful reconnect)")]
    NotResumable,
    /// The session is over.
    #[error("the connection is closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking {
        deadline: Duration,
    },
    Connected,
    /// Stateful reconnect: the transport is gone; a new one may come until `until`.
    Detached {
        until: Duration,
    },
    Closed,
}

/// One client connection, server side (see the module docs).
#[derive(Debug)]
pub struct HubServerSession {
    /// Shared: a server holds many sessions, most with the same options
    /// ([`with_shared_options`](Self::with_shared_options)).
    options: Arc<HubServerOptions>,
    phase: Phase,
    handshake_buffer: Vec<u8>,
    protocol: Option<HubProtocolKind>,
    reader: Option<MessageReader>,
    /// Results of the last reads with the time each arrived, applied one per
    /// [`poll_event`](Self::poll_event) step.
    inbound: VecDeque<(Duration, ReadResult)>,
    /// Boxed: only stateful-reconnect sessions have one, and a server holds many sessions.
    replay: Option<Box<ReplayBuffer>>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<ServerEvent>,
    last_sent: Duration,
    last_received: Duration,
    messages_received: u64,
}

impl HubServerSession {
    /// A session whose transport just opened at `now`; the handshake is awaited.
    pub fn new(options: HubServerOptions, now: Duration) -> Self {
        Self::with_shared_options(Arc::new(options), now)
    }

    /// [`new`](Self::new) with options shared between sessions (a server with many connections
    /// keeps one copy instead of one per session).
    pub fn with_shared_options(options: Arc<HubServerOptions>, now: Duration) -> Self {
        Self {
            phase: Phase::Handshaking {
                deadline: now + options.handshake_timeout,
            },
            options,
            handshake_buffer: Vec::new(),
            protocol: None,
            reader: None,
            inbound: VecDeque::new(),
            replay: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            last_sent: now,
            last_received: now,
            messages_received: 0,
        }
    }

    /// The options the session was made with.
    pub fn options(&self) -> &HubServerOptions {
        &self.options
    }

    /// The hub protocol, once the handshake succeeded.
    pub fn protocol(&self) -> Option<HubProtocolKind> {
        self.protocol
    }

    /// Whether stateful reconnect is on (after a version-2 handshake).
    pub fn is_stateful(&self) -> bool {
        self.replay.is_some()
    }

    /// Whether the handshake succeeded and the session is not over (attached or not).
    pub fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected | Phase::Detached { .. })
    }

    /// Whether the transport is lost and a stateful reconnect is awaited.
    pub fn is_detached(&self) -> bool {
        matches!(self.phase, Phase::Detached { .. })
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// How many hub messages were received and applied (every type, Ping and Ack included;
    /// duplicates too).
    pub fn messages_received(&self) -> u64 {
        self.messages_received
    }

    /// Messages sent and not yet acknowledged (stateful reconnect only).
    pub fn unacked_len(&self) -> usize {
        self.replay.as_ref().map_or(0, |r| r.unacked_len())
    }

    /// Encoded bytes sent and not yet acknowledged (stateful reconnect only).
    pub fn unacked_bytes(&self) -> usize {
        self.replay.as_ref().map_or(0, |r| r.unacked_bytes())
    }

    /// Whether the replay buffer takes more application messages: always without stateful
    /// reconnect; with it, while the unacknowledged bytes are below
    /// [`HubServerOptions::replay_buffer_bytes`]. A driver stops feeding hub messages while
    /// this is false (it is a bound, not an error: acks make room again).
    pub fn has_room(&self) -> bool {
        self.replay
            .as_ref()
            .is_none_or(|r| r.unacked_bytes() < self.options.replay_buffer_bytes)
    }

    /// Feeds bytes the transport received at `now` (a WebSocket message or a POST body): the
    /// handshake request first (its `0x1E`-terminated JSON record, possibly split), then hub
    /// messages in the negotiated protocol. Ignored once closed or while detached.
    pub fn handle_bytes(&mut self, now: Duration, mut bytes: &[u8]) {
        if !matches!(self.phase, Phase::Handshaking { .. } | Phase::Connected) {
            return;
        }
        self.last_received = now;
        if let Phase::Handshaking { .. } = self.phase {
            let Some(end) = bytes.iter().position(|b| *b == 0x1e) else {
                self.handshake_buffer.extend_from_slice(bytes);
                if self.handshake_buffer.len() > self.options.max_message_bytes {
                    self.close_with(now, CloseReason::HandshakeTooLarge, None);
                }
                return;
            };
            self.handshake_buffer.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let record = std::mem::take(&mut self.handshake_buffer);
            self.handshake(now, &String::from_utf8_lossy(&record));
            if self.phase != Phase::Connected || bytes.is_empty() {
                return;
            }
        }
        let Some(reader) = &mut self.reader else {
            return;
        };
        match reader.push(bytes) {
            Ok(results) => self
                .inbound
                .extend(results.into_iter().map(|result| (now, result))),
            Err(e) => {
                let error = match &e {
                    ProtocolError::TooLarge(_) => message_too_large(self.options.max_message_bytes),
                    other => other.to_string(),
                };
                self.close_with(now, CloseReason::BadFraming(e), Some((Some(error), false)));
            }
        }
    }

    fn handshake(&mut self, now: Duration, record: &str) {
        let result = match HandshakeRequest::decode(record) {
            Ok(r) => match HubProtocolKind::from_name(&r.protocol) {
                Some(p) if p.is_binary() && !self.options.binary_transfer => {
                    Err(BINARY_NOT_SUPPORTED.to_owned())
                }
                Some(p) if r.version == 1 || r.version == 2 => Ok((p, r.version == 2)),
                Some(_) => Err(format!(
                    "The server does not support version {} of the '{}' protocol.",
                    r.version, r.protocol
                )),
                None => Err(format!(
                    "Requested protocol '{}' is not available.",
                    r.protocol
                )),
            },
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok((protocol, version_2)) => {
                let answer = HandshakeResponse::default().encode();
                self.push_frame(
                    now,
                    if protocol.is_binary() {
                        Transmit::Binary(answer.into_bytes())
                    } else {
                        Transmit::Text(answer)
                    },
                );
                let stateful = version_2 && self.options.stateful_reconnect;
                self.replay = stateful.then(|| Box::new(ReplayBuffer::new()));
                self.protocol = Some(protocol);
                self.reader = Some(self.new_reader(protocol));
                self.phase = Phase::Connected;
                self.events
                    .push_back(ServerEvent::Connected { protocol, stateful });
            }
            Err(error) => {
                self.push_frame(
                    now,
                    Transmit::Text(
                        HandshakeResponse {
                            error: Some(error.clone()),
                        }
                        .encode(),
                    ),
                );
                self.close_with(now, CloseReason::HandshakeRefused(error), None);
            }
        }
    }

    fn new_reader(&self, protocol: HubProtocolKind) -> MessageReader {
        MessageReader::new(protocol, self.options.max_message_bytes)
            .with_max_messages(self.options.max_messages_per_read)
    }

    /// The next event. Received messages are applied here, one at a time (see the module
    /// docs): call it until `None` after every `handle_*` and act on each event before asking
    /// for the next.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.phase != Phase::Connected {
                self.inbound.clear();
                return None;
            }
            let (at, result) = self.inbound.pop_front()?;
            match result {
                Ok(Some(message)) => {
                    self.messages_received += 1;
                    self.handle_message(at, message);
                }
                Ok(None) => {} // a type this side does not know: ignored, as the spec asks
                Err(e) => self.events.push_back(ServerEvent::Malformed(e)),
            }
        }
    }

    fn handle_message(&mut self, now: Duration, message: HubMessage) {
        if let Some(replay) = &mut self.replay {
            match &message {
                HubMessage::Ack { sequence_id } => {
                    replay.handle_ack(*sequence_id);
                    return;
                }
                HubMessage::Sequence { sequence_id } => {
                    if let Err(e) = replay.handle_sequence(*sequence_id) {
                        self.close_with(
                            now,
                            CloseReason::SequenceTooHigh,
                            Some((Some(e.to_string()), false)),
                        );
                    }
                    return;
                }
                // A duplicate replayed by the client.
                m if m.is_sequenced()
                    && !replay.handle_received(now, self.options.ack_interval) =>
                {
                    return;
                }
                _ => {}
            }
        }
        match message {
            HubMessage::Close { .. } => self.close_with(now, CloseReason::ClientClosed, None),
            // Ping only refreshed the receive clock; Ack and Sequence without stateful
            // reconnect mean nothing.
            HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
            other => self.events.push_back(ServerEvent::Message(other)),
        }
    }

    /// Sends `message` at `now`: encoded in the session's protocol and, with stateful
    /// reconnect, numbered and kept for replay when it is of types 1–5. While detached it is
    /// only kept (replayed on [`resume`](Self::resume)). Ignored before the handshake and
    /// once closed. When the replay buffer goes past its close bound, the message is queued
    /// and the session closes ([`CloseReason::ReplayBufferFull`]).
    pub fn send(&mut self, now: Duration, message: &HubMessage) {
        let Some(protocol) = self.protocol else {
            return;
        };
        if !self.is_connected() {
            return;
        }
        let frame = protocol.encode(message);
        let mut full = None;
        if let Some(replay) = &mut self.replay
            && replay.record_sent(message, &frame).is_some()
            && replay.unacked_bytes()
                > self.options.replay_close_factor * self.options.replay_buffer_bytes
        {
            full = Some(CloseReason::ReplayBufferFull {
                unacked: replay.unacked_len(),
                unacked_bytes: replay.unacked_bytes(),
                first: replay.first_unacked(),
                message_type: message.type_id(),
            });
        }
        if self.phase == Phase::Connected {
            self.push_frame(now, frame);
        }
        if let Some(reason) = full {
            self.close_with(now, reason, Some((Some(REPLAY_BUFFER_FULL.into()), true)));
        }
    }

    /// Closes the session with a Close message (`error`, `allowReconnect`) when the handshake
    /// is done and a transport is attached; quietly otherwise. Ignored once closed.
    pub fn close(&mut self, now: Duration, error: Option<String>, allow_reconnect: bool) {
        self.close_with(
            now,
            CloseReason::Closed {
                error: error.clone(),
                allow_reconnect,
            },
            Some((error, allow_reconnect)),
        );
    }

    /// Ends the session without a Close message (a DELETE of long polling, the hub going away
    /// before the handshake). Ignored once closed.
    pub fn end(&mut self) {
        self.close_with(self.last_sent, CloseReason::Ended, None);
    }

    /// The transport closed under the session at `now`. With stateful reconnect after the
    /// handshake the session stays (returns `true`) and waits
    /// [`HubServerOptions::reconnect_window`] for [`resume`](Self::resume); frames not yet
    /// taken are dropped (the replay has the numbered ones). Otherwise it ends
    /// ([`CloseReason::TransportClosed`]) and returns `false`.
    pub fn handle_transport_lost(&mut self, now: Duration) -> bool {
        match self.phase {
            Phase::Detached { .. } => true,
            Phase::Connected if self.replay.is_some() => {
                self.phase = Phase::Detached {
                    until: now + self.options.reconnect_window,
                };
                self.outbox.clear();
                true
            }
            Phase::Closed => false,
            _ => {
                self.close_with(now, CloseReason::TransportClosed, None);
                false
            }
        }
    }

    /// A new transport for this connection at `now` (stateful reconnect: a WebSocket with the
    /// same connection token), whether or not the old one was seen to go: frames not yet taken
    /// are dropped, the reader starts afresh, and `Sequence{first unacked}` then every
    /// unacknowledged message are queued.
    ///
    /// # Errors
    /// [`ResumeError::NotResumable`] before the handshake or without stateful reconnect,
    /// [`ResumeError::Closed`] once over; the session is unchanged (close the new transport).
    pub fn resume(&mut self, now: Duration) -> Result<(), ResumeError> {
        let (Some(protocol), true) = (self.protocol, self.is_connected()) else {
            return Err(match self.phase {
                Phase::Closed => ResumeError::Closed,
                _ => ResumeError::NotResumable,
            });
        };
        let Some(replay) = &self.replay else {
            return Err(ResumeError::NotResumable);
        };
        let frames: Vec<Transmit> = replay.replay(protocol).collect();
        self.phase = Phase::Connected;
        self.reader = Some(self.new_reader(protocol));
        self.inbound.clear();
        self.outbox.clear();
        self.last_received = now;
        for frame in frames {
            self.push_frame(now, frame);
        }
        Ok(())
    }

    /// The next frame to send (text or binary, as the protocol sends it).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// Frees what the session's empty queues (received messages, events, frames to send) grew
    /// to. A driver serving many mostly idle connections calls it before it waits, so a
    /// connection does not keep the queues of its last burst; the next message allocates again.
    pub fn release_idle_buffers(&mut self) {
        if self.inbound.is_empty() {
            self.inbound = VecDeque::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if self.outbox.is_empty() {
            self.outbox = VecDeque::new();
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Handshaking { deadline } => Some(deadline),
            Phase::Detached { until } => Some(until),
            Phase::Connected => {
                let mut at = (self.last_sent + self.options.keep_alive_interval)
                    .min(self.last_received + self.options.client_timeout);
                if let Some(due) = self.replay.as_ref().and_then(|r| r.ack_due()) {
                    at = at.min(due);
                }
                Some(at)
            }
            Phase::Closed => None,
        }
    }

    /// Runs the timers due at `now`: the handshake timeout, the reconnect window, the client
    /// timeout, the timed Ack and the keep-alive Ping.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.phase {
            Phase::Handshaking { deadline } if now >= deadline => {
                self.close_with(now, CloseReason::HandshakeTimeout, None);
            }
            Phase::Detached { until } if now >= until => {
                self.close_with(now, CloseReason::ReconnectWindowElapsed, None);
            }
            Phase::Connected => {
                if now >= self.last_received + self.options.client_timeout {
                    self.close_with(
                        now,
                        CloseReason::ClientTimeout,
                        Some((Some(CLIENT_TIMEOUT.into()), true)),
                    );
                    return;
                }
                if let Some(replay) = &mut self.replay
                    && replay.ack_due().is_some_and(|due| now >= due)
                {
                    let ack = replay.take_ack();
                    self.send(now, &ack);
                }
                if now >= self.last_sent + self.options.keep_alive_interval {
                    self.send(now, &HubMessage::Ping);
                }
            }
            _ => {}
        }
    }

    fn push_frame(&mut self, now: Duration, frame: Transmit) {
        self.last_sent = now;
        self.outbox.push_back(frame);
    }

    /// Ends the session for `reason`, queuing a Close message (`error`, `allowReconnect`)
    /// first when `close` is given, the handshake is done and a transport is attached.
    fn close_with(
        &mut self,
        now: Duration,
        reason: CloseReason,
        close: Option<(Option<String>, bool)>,
    ) {
        if self.phase == Phase::Closed {
            return;
        }
        if let (Some((error, allow_reconnect)), Some(protocol), Phase::Connected) =
            (close, self.protocol, self.phase)
        {
            let frame = protocol.encode(&HubMessage::Close {
                error,
                allow_reconnect,
            });
            self.push_frame(now, frame);
        }
        self.phase = Phase::Closed;
        self.inbound.clear();
        self.events.push_back(ServerEvent::Closed(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use crate::message::CompletionOutcome;
    use crate::resume::SEQUENCE_TOO_HIGH;
    use serde_json::json;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn text(t: Transmit) -> String {
        match t {
            Transmit::Text(text) => text,
            Transmit::Binary(b) => panic!("binary frame {b:?}"),
        }
    }

    fn sent(s: &mut HubServerSession) -> Vec<String> {
        std::iter::from_fn(|| s.poll_transmit()).map(text).collect()
    }

    fn events(s: &mut HubServerSession) -> Vec<ServerEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn record(m: &HubMessage) -> String {
        json::encode(m)
    }

    fn invocation(id: &str) -> HubMessage {
        HubMessage::Invocation {
            invocation_id: Some(id.into()),
            target: "echo".into(),
            arguments: vec![json!(id)],
            stream_ids: vec![],
        }
    }

    fn session(options: HubServerOptions, version: u32) -> HubServerSession {
        let mut s = HubServerSession::new(options, S(0));
        s.handle_bytes(
            S(0),
            format!("{{\"protocol\":\"json\",\"version\":{version}}}\u{1e}").as_bytes(),
        );
        assert_eq!(sent(&mut s), ["{}\u{1e}"]);
        assert_eq!(
            events(&mut s),
            [ServerEvent::Connected {
                protocol: HubProtocolKind::Json,
                stateful: version == 2 && options.stateful_reconnect
            }]
        );
        s
    }

    fn stateful() -> HubServerSession {
        session(
            HubServerOptions {
                stateful_reconnect: true,
                ..HubServerOptions::default()
            },
            2,
        )
    }

    fn close(error: &str, allow_reconnect: bool) -> String {
        record(&HubMessage::Close {
            error: Some(error.into()),
            allow_reconnect,
        })
    }

    #[test]
    fn handshake_split_across_reads_then_messages_in_the_same_read() {
        let mut s = HubServerSession::new(HubServerOptions::default(), S(0));
        assert_eq!(s.poll_timeout(), Some(S(15)));
        s.handle_bytes(S(1), b"{\"protocol\":\"js");
        assert!(sent(&mut s).is_empty() && events(&mut s).is_empty());
        let mut rest = b"on\",\"version\":1}\x1e".to_vec();
        rest.extend_from_slice(record(&invocation("1")).as_bytes());
        s.handle_bytes(S(2), &rest);
        assert_eq!(sent(&mut s), ["{}\u{1e}"]);
        assert_eq!(
            events(&mut s),
            [
                ServerEvent::Connected {
                    protocol: HubProtocolKind::Json,
                    stateful: false
                },
                ServerEvent::Message(invocation("1"))
            ]
        );
        assert_eq!(s.messages_received(), 1);
        assert!(s.is_connected() && !s.is_stateful());
        // Version 2 without stateful reconnect negotiated: an ordinary connection.
        let s = session(HubServerOptions::default(), 2);
        assert!(!s.is_stateful());
    }

    #[test]
    fn release_idle_buffers_frees_drained_queues_and_keeps_queued_ones() {
        let mut s = session(HubServerOptions::default(), 1);
        let mut burst = String::new();
        for i in 0..8 {
            burst.push_str(&record(&invocation(&i.to_string())));
        }
        s.handle_bytes(S(1), burst.as_bytes());
        s.send(S(1), &HubMessage::Ping);
        s.send(S(1), &HubMessage::Ping);
        // Not drained yet: nothing is lost.
        s.release_idle_buffers();
        assert_eq!(events(&mut s).len(), 8);
        assert_eq!(sent(&mut s).len(), 2);
        assert!(s.inbound.capacity() > 0 && s.outbox.capacity() > 0);
        s.release_idle_buffers();
        assert_eq!(s.inbound.capacity(), 0);
        assert_eq!(s.events.capacity(), 0);
        assert_eq!(s.outbox.capacity(), 0);
        // The session goes on as before.
        s.handle_bytes(S(2), record(&invocation("9")).as_bytes());
        assert_eq!(events(&mut s), [ServerEvent::Message(invocation("9"))]);
    }

    #[cfg(feature = "messagepack")]
    #[test]
    fn messagepack_handshake_answers_in_a_binary_frame() {
        let mut s = HubServerSession::new(HubServerOptions::default(), S(0));
        s.handle_bytes(S(0), b"{\"protocol\":\"messagepack\",\"version\":1}\x1e");
        assert_eq!(
            s.poll_transmit(),
            Some(Transmit::Binary(b"{}\x1e".to_vec()))
        );
        assert_eq!(s.protocol(), Some(HubProtocolKind::MessagePack));
        s.handle_bytes(S(1), &crate::msgpack::encode(&invocation("7")));
        s.poll_event();
        assert_eq!(s.poll_event(), Some(ServerEvent::Message(invocation("7"))));
        s.send(S(1), &HubMessage::Ping);
        assert!(matches!(s.poll_transmit(), Some(Transmit::Binary(_))));
    }

    fn refused(options: HubServerOptions, request: &str, error: &str) {
        let mut s = HubServerSession::new(options, S(0));
        s.handle_bytes(S(0), request.as_bytes());
        assert_eq!(
            sent(&mut s),
            [HandshakeResponse {
                error: Some(error.into())
            }
            .encode()]
        );
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::HandshakeRefused(
                error.into()
            ))]
        );
        assert!(s.is_closed());
        assert_eq!(s.poll_timeout(), None);
        // Nothing more is taken.
        s.handle_bytes(S(1), record(&invocation("1")).as_bytes());
        assert!(events(&mut s).is_empty() && sent(&mut s).is_empty());
    }

    #[test]
    fn handshake_failures_answer_an_error_and_end_without_a_close() {
        let options = HubServerOptions::default();
        refused(
            options,
            "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
            "Requested protocol 'xml' is not available.",
        );
        refused(
            options,
            "{\"protocol\":\"json\",\"version\":3}\u{1e}",
            "The server does not support version 3 of the 'json' protocol.",
        );
        let mut s = HubServerSession::new(options, S(0));
        s.handle_bytes(S(0), b"{\"type\":1}\x1e");
        let answer = sent(&mut s);
        assert!(
            answer[0].starts_with("{\"error\":") && answer[0].contains("invalid handshake request"),
            "{answer:?}"
        );
        assert!(matches!(
            events(&mut s)[..],
            [ServerEvent::Closed(CloseReason::HandshakeRefused(_))]
        ));
    }

    #[cfg(feature = "messagepack")]
    #[test]
    fn messagepack_is_refused_on_a_text_only_transport() {
        refused(
            HubServerOptions {
                binary_transfer: false,
                ..HubServerOptions::default()
            },
            "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}",
            BINARY_NOT_SUPPORTED,
        );
    }

    #[test]
    fn handshake_timeout_and_oversized_handshake_end_quietly() {
        let mut s = HubServerSession::new(HubServerOptions::default(), S(0));
        s.handle_timeout(S(14));
        assert!(!s.is_closed());
        s.handle_timeout(S(15));
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::HandshakeTimeout)]
        );
        assert!(sent(&mut s).is_empty());

        let mut s = HubServerSession::new(HubServerOptions::default(), S(0));
        s.handle_bytes(S(0), &vec![b' '; DEFAULT_MAX_MESSAGE_BYTES]);
        assert!(!s.is_closed());
        s.handle_bytes(S(0), b" ");
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::HandshakeTooLarge)]
        );
        assert!(sent(&mut s).is_empty());
    }

    #[test]
    fn pings_after_keep_alive_without_sending() {
        let mut s = session(HubServerOptions::default(), 1);
        assert_eq!(s.poll_timeout(), Some(S(15)));
        s.handle_timeout(S(14));
        assert!(sent(&mut s).is_empty());
        s.handle_timeout(S(15));
        assert_eq!(sent(&mut s), ["{\"type\":6}\u{1e}"]);
        // Sending restarts the interval.
        s.handle_bytes(S(20), record(&HubMessage::Ping).as_bytes());
        s.send(S(20), &HubMessage::send("x", vec![]));
        sent(&mut s);
        assert_eq!(s.poll_timeout(), Some(S(35)));
        s.handle_timeout(S(30));
        assert!(sent(&mut s).is_empty());
        s.handle_timeout(S(35));
        assert_eq!(sent(&mut s), ["{\"type\":6}\u{1e}"]);
    }

    #[test]
    fn client_timeout_closes_with_reconnect_allowed() {
        let mut s = session(HubServerOptions::default(), 1);
        s.handle_bytes(S(10), record(&HubMessage::Ping).as_bytes());
        assert!(events(&mut s).is_empty());
        s.handle_timeout(S(15));
        assert_eq!(sent(&mut s), ["{\"type\":6}\u{1e}"]);
        assert_eq!(s.poll_timeout(), Some(S(30)));
        s.handle_timeout(S(39));
        assert!(!s.is_closed());
        assert_eq!(
            sent(&mut s),
            ["{\"type\":6}\u{1e}"],
            "the keep-alive goes on meanwhile"
        );
        s.handle_timeout(S(40));
        assert_eq!(sent(&mut s), [close(CLIENT_TIMEOUT, true)]);
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::ClientTimeout)]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn oversized_message_and_too_many_messages_close_without_reconnect() {
        let mut s = session(HubServerOptions::default(), 1);
        s.handle_bytes(S(1), &vec![b'x'; DEFAULT_MAX_MESSAGE_BYTES + 1]);
        assert_eq!(
            sent(&mut s),
            [close(&message_too_large(DEFAULT_MAX_MESSAGE_BYTES), false)]
        );
        assert_eq!(
            message_too_large(32 * 1024),
            "Message exceeds the maximum message size of 32768 bytes (32 KB)"
        );
        assert!(matches!(
            events(&mut s)[..],
            [ServerEvent::Closed(CloseReason::BadFraming(
                ProtocolError::TooLarge(_)
            ))]
        ));

        let mut s = session(
            HubServerOptions {
                max_messages_per_read: 2,
                ..HubServerOptions::default()
            },
            1,
        );
        s.handle_bytes(S(1), "{\"type\":6}\u{1e}".repeat(3).as_bytes());
        assert_eq!(sent(&mut s).len(), 1);
        assert!(s.is_closed());
    }

    #[test]
    fn malformed_messages_are_reported_and_the_connection_goes_on() {
        let mut s = session(HubServerOptions::default(), 1);
        let mut bytes = b"{\"type\":1}\x1e{\"type\":99}\x1e".to_vec();
        bytes.extend_from_slice(record(&invocation("2")).as_bytes());
        s.handle_bytes(S(1), &bytes);
        let got = events(&mut s);
        assert!(matches!(got[0], ServerEvent::Malformed(_)), "{got:?}");
        assert_eq!(got[1..], [ServerEvent::Message(invocation("2"))]);
    }

    #[test]
    fn answers_to_one_message_go_out_before_the_next_is_applied() {
        let mut s = session(HubServerOptions::default(), 1);
        let mut bytes = record(&invocation("1")).into_bytes();
        bytes.extend_from_slice(
            record(&HubMessage::Close {
                error: None,
                allow_reconnect: false,
            })
            .as_bytes(),
        );
        bytes.extend_from_slice(record(&invocation("2")).as_bytes());
        s.handle_bytes(S(1), &bytes);
        assert_eq!(s.poll_event(), Some(ServerEvent::Message(invocation("1"))));
        let done = HubMessage::Completion {
            invocation_id: "1".into(),
            outcome: CompletionOutcome::Void,
        };
        s.send(S(1), &done);
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Closed(CloseReason::ClientClosed))
        );
        assert_eq!(s.poll_event(), None);
        // The completion went out; no Close answers the client's.
        assert_eq!(sent(&mut s), [record(&done)]);
    }

    #[test]
    fn close_and_end() {
        let mut s = session(HubServerOptions::default(), 1);
        s.close(S(1), Some("Hub is shutting down".into()), true);
        assert_eq!(sent(&mut s), [close("Hub is shutting down", true)]);
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::Closed {
                error: Some("Hub is shutting down".into()),
                allow_reconnect: true
            })]
        );
        s.send(S(2), &HubMessage::Ping);
        s.close(S(2), None, false);
        assert!(sent(&mut s).is_empty() && events(&mut s).is_empty());

        // Before the handshake a close is quiet.
        let mut s = HubServerSession::new(HubServerOptions::default(), S(0));
        s.close(S(0), Some("x".into()), true);
        assert!(sent(&mut s).is_empty());
        assert!(s.is_closed());

        let mut s = session(HubServerOptions::default(), 1);
        s.end();
        assert!(sent(&mut s).is_empty());
        assert_eq!(events(&mut s), [ServerEvent::Closed(CloseReason::Ended)]);
    }

    #[test]
    fn without_stateful_reconnect_a_lost_transport_ends_and_nothing_is_numbered() {
        let mut s = session(HubServerOptions::default(), 1);
        s.send(S(1), &invocation("1"));
        assert_eq!(s.unacked_len(), 0);
        s.handle_bytes(
            S(1),
            b"{\"type\":8,\"sequenceId\":5}\x1e{\"type\":9,\"sequenceId\":50}\x1e",
        );
        assert!(events(&mut s).is_empty());
        assert_eq!(s.resume(S(2)), Err(ResumeError::NotResumable));
        assert!(!s.handle_transport_lost(S(2)));
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::TransportClosed)]
        );
        assert_eq!(s.resume(S(2)), Err(ResumeError::Closed));
    }

    #[test]
    fn stateful_acks_after_a_second_and_drops_duplicates() {
        let mut s = stateful();
        assert!(s.is_stateful());
        s.handle_bytes(S(1), record(&invocation("1")).as_bytes());
        s.handle_bytes(MS(1500), record(&invocation("2")).as_bytes());
        assert_eq!(events(&mut s).len(), 2);
        assert_eq!(s.poll_timeout(), Some(S(2)));
        s.handle_timeout(S(2));
        assert_eq!(sent(&mut s), [record(&HubMessage::Ack { sequence_id: 2 })]);
        // Pings and acks are not numbered; the client's Sequence after its resume rewinds.
        s.handle_bytes(S(3), b"{\"type\":6}\x1e{\"type\":9,\"sequenceId\":2}\x1e");
        s.handle_bytes(S(3), record(&invocation("2")).as_bytes());
        s.handle_bytes(S(3), record(&invocation("3")).as_bytes());
        assert_eq!(events(&mut s), [ServerEvent::Message(invocation("3"))]);
    }

    #[test]
    fn stateful_sequence_past_what_was_received_closes() {
        let mut s = stateful();
        s.handle_bytes(S(1), record(&invocation("1")).as_bytes());
        s.handle_bytes(S(1), b"{\"type\":9,\"sequenceId\":3}\x1e");
        assert_eq!(
            events(&mut s)[1..],
            [ServerEvent::Closed(CloseReason::SequenceTooHigh)]
        );
        assert_eq!(sent(&mut s), [close(SEQUENCE_TOO_HIGH, false)]);
    }

    #[test]
    fn stateful_resume_sends_sequence_and_replays_the_unacked() {
        let mut s = stateful();
        for id in ["a", "b", "c"] {
            s.send(S(1), &invocation(id));
        }
        s.send(S(1), &HubMessage::Ping);
        assert_eq!(sent(&mut s).len(), 4);
        assert_eq!(s.unacked_len(), 3);
        s.handle_bytes(S(2), b"{\"type\":8,\"sequenceId\":1}\x1e");
        assert!(events(&mut s).is_empty());
        assert_eq!(s.unacked_len(), 2);

        assert!(s.handle_transport_lost(S(3)));
        assert!(s.is_detached() && s.is_connected());
        assert_eq!(s.poll_timeout(), Some(S(33)));
        // Sent while detached: kept for the replay, not queued; pings are not kept.
        s.send(S(4), &invocation("d"));
        s.send(S(4), &HubMessage::Ping);
        assert!(sent(&mut s).is_empty());
        // Bytes while detached are not taken; timers other than the window do not run.
        s.handle_bytes(S(4), record(&invocation("x")).as_bytes());
        s.handle_timeout(S(32));
        assert!(events(&mut s).is_empty() && sent(&mut s).is_empty());

        s.resume(S(10)).unwrap();
        assert!(!s.is_detached());
        assert_eq!(
            sent(&mut s),
            [
                record(&HubMessage::Sequence { sequence_id: 2 }),
                record(&invocation("b")),
                record(&invocation("c")),
                record(&invocation("d")),
            ]
        );
        assert_eq!(s.poll_timeout(), Some(S(25)));
        // A resume while attached replaces the transport the same way.
        s.handle_bytes(S(11), b"{\"type\":8,\"sequenceId\":3}\x1e");
        assert!(events(&mut s).is_empty());
        s.resume(S(12)).unwrap();
        assert_eq!(
            sent(&mut s),
            [
                record(&HubMessage::Sequence { sequence_id: 4 }),
                record(&invocation("d"))
            ]
        );
    }

    #[test]
    fn stateful_reconnect_window_elapses_quietly() {
        let mut s = stateful();
        assert!(s.handle_transport_lost(S(5)));
        assert!(
            s.handle_transport_lost(S(20)),
            "a second loss keeps the first window"
        );
        s.handle_timeout(S(34));
        assert!(!s.is_closed());
        s.handle_timeout(S(35));
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::ReconnectWindowElapsed)]
        );
        assert!(sent(&mut s).is_empty());
    }

    #[test]
    fn resume_before_the_handshake_is_refused() {
        let mut s = HubServerSession::new(
            HubServerOptions {
                stateful_reconnect: true,
                ..HubServerOptions::default()
            },
            S(0),
        );
        assert_eq!(s.resume(S(0)), Err(ResumeError::NotResumable));
        assert!(!s.handle_transport_lost(S(0)));
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::TransportClosed)]
        );
    }

    #[test]
    fn replay_buffer_bounds_backpressure_then_close() {
        let message = HubMessage::send("x", vec![json!("y".repeat(90))]);
        let size = record(&message).len();
        let mut s = session(
            HubServerOptions {
                stateful_reconnect: true,
                replay_buffer_bytes: size * 2,
                replay_close_factor: 2,
                ..HubServerOptions::default()
            },
            2,
        );
        s.send(S(1), &message);
        assert!(s.has_room());
        s.send(S(1), &message);
        assert!(!s.has_room(), "at the buffer size a driver stops feeding");
        assert_eq!(s.unacked_bytes(), 2 * size);
        s.handle_bytes(S(1), b"{\"type\":8,\"sequenceId\":1}\x1e");
        assert!(!s.has_room(), "applied by poll_event");
        assert!(events(&mut s).is_empty());
        assert!(s.has_room(), "an ack makes room");
        for _ in 0..3 {
            s.send(S(2), &message);
        }
        assert!(!s.is_closed(), "4 × size is the close bound, not past it");
        s.send(S(2), &message);
        assert!(s.is_closed());
        let out = sent(&mut s);
        assert_eq!(out.len(), 7, "every message goes out, then the Close");
        assert_eq!(out[6], close(REPLAY_BUFFER_FULL, true));
        assert_eq!(
            events(&mut s),
            [ServerEvent::Closed(CloseReason::ReplayBufferFull {
                unacked: 5,
                unacked_bytes: 5 * size,
                first: 2,
                message_type: 1
            })]
        );
    }
}
