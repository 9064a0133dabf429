//! The client side of one hub connection, sans IO.
//!
//! [`HubConnectionCore`] is fed received text and the current time, and gives back records to
//! send, [`Event`]s and the next instant it needs to be woken at. It owns the handshake
//! (`HubProtocol.md`, "Overview"), invocation ids and pending invocations, the keep-alive ping
//! and the server timeout (defaults of the official client, `HubConnection.ts`: ping after 15 s
//! without sending, close after 30 s without receiving, handshake within 15 s).
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
use crate::json::{self, RecordBuffer};
use crate::message::{CompletionOutcome, HubMessage};

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

/// Timing options; the defaults are the official client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubConnectionOptions {
    /// Send a ping when nothing was sent for this long (`keepAliveIntervalInMilliseconds`).
    pub keep_alive_interval: Duration,
    /// Close when nothing was received for this long (`serverTimeoutInMilliseconds`).
    pub server_timeout: Duration,
    /// Close when the handshake answer has not come within this long.
    pub handshake_timeout: Duration,
}

impl Default for HubConnectionOptions {
    fn default() -> Self {
        Self {
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
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
    Handshaking { deadline: Duration },
    Connected,
    Closed,
}

/// One hub connection's protocol state over an open transport (see the module docs).
#[derive(Debug)]
pub struct HubConnectionCore {
    options: HubConnectionOptions,
    phase: Phase,
    buffer: RecordBuffer,
    outbox: VecDeque<String>,
    events: VecDeque<Event>,
    next_invocation_id: u64,
    pending: BTreeSet<String>,
    last_sent: Duration,
    last_received: Duration,
}

impl HubConnectionCore {
    /// Starts a connection over a transport that has just opened at `now`: the handshake
    /// request for the JSON protocol, version 1, is the first record to send.
    pub fn new(options: HubConnectionOptions, now: Duration) -> Self {
        let mut core = Self {
            options,
            phase: Phase::Handshaking {
                deadline: now + options.handshake_timeout,
            },
            buffer: RecordBuffer::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            next_invocation_id: 0,
            pending: BTreeSet::new(),
            last_sent: now,
            last_received: now,
        };
        core.outbox.push_back(
            HandshakeRequest {
                protocol: json::PROTOCOL_NAME.into(),
                version: 1,
            }
            .encode(),
        );
        core
    }

    /// Whether the handshake has completed and the connection is not closed.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether the connection is over.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Feeds text received from the transport (one or more records, possibly partial).
    pub fn handle_text(&mut self, now: Duration, text: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_received = now;
        for record in self.buffer.push_str(text) {
            if self.phase == Phase::Closed {
                break;
            }
            match record {
                Ok(record) => self.handle_record(now, &record),
                Err(e) => self.events.push_back(Event::Malformed(e)),
            }
        }
    }

    fn handle_record(&mut self, now: Duration, record: &str) {
        if let Phase::Handshaking { .. } = self.phase {
            match HandshakeResponse::decode(record) {
                Ok(()) => {
                    self.phase = Phase::Connected;
                    self.events.push_back(Event::Connected);
                    // The official client pings right after the handshake.
                    self.queue(now, &HubMessage::Ping);
                }
                Err(e) => self.close_with(Some(e.to_string()), false),
            }
            return;
        }
        match json::decode(record) {
            Ok(Some(message)) => self.handle_message(now, message),
            Ok(None) => {} // unknown type: ignored, as the spec asks
            Err(e) => self.events.push_back(Event::Malformed(e)),
        }
    }

    fn handle_message(&mut self, _now: Duration, message: HubMessage) {
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
                } else {
                    self.events
                        .push_back(Event::Malformed(ProtocolError::InvalidField(
                            "invocationId",
                        )));
                }
            }
            HubMessage::StreamItem {
                invocation_id,
                item,
            } => self.events.push_back(Event::StreamItem {
                invocation_id,
                item,
            }),
            HubMessage::Close {
                error,
                allow_reconnect,
            } => self.close_with(error, allow_reconnect),
            // Ping only refreshed `last_received`. Ack/Sequence belong to stateful reconnect,
            // which this connection did not negotiate; stream invocations go client → server.
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
        self.check_connected()?;
        let id = self.next_invocation_id.to_string();
        self.next_invocation_id += 1;
        self.pending.insert(id.clone());
        self.queue(
            now,
            &HubMessage::Invocation {
                invocation_id: Some(id.clone()),
                target: target.into(),
                arguments,
                stream_ids: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Queues a non-blocking invocation (no completion will come).
    pub fn send(
        &mut self,
        now: Duration,
        target: &str,
        arguments: Vec<Value>,
    ) -> Result<(), ConnectionError> {
        self.check_connected()?;
        self.queue(now, &HubMessage::send(target, arguments));
        Ok(())
    }

    /// Answers a server invocation that carried an id (client results).
    pub fn complete(
        &mut self,
        now: Duration,
        invocation_id: String,
        outcome: CompletionOutcome,
    ) -> Result<(), ConnectionError> {
        self.check_connected()?;
        self.queue(
            now,
            &HubMessage::Completion {
                invocation_id,
                outcome,
            },
        );
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

    /// The transport closed under the connection (socket error, network loss).
    pub fn handle_transport_closed(&mut self, reason: Option<String>) {
        let allow = self.phase == Phase::Connected;
        self.close_with(
            reason.or_else(|| Some("The transport closed.".into())),
            allow,
        );
    }

    /// The next record to send, if any.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Handshaking { deadline } => Some(deadline),
            Phase::Connected => Some(
                (self.last_sent + self.options.keep_alive_interval)
                    .min(self.last_received + self.options.server_timeout),
            ),
            Phase::Closed => None,
        }
    }

    /// Runs the timers due at `now`: handshake timeout, server timeout, keep-alive ping.
    pub fn handle_timeout(&mut self, now: Duration) {
        match self.phase {
            Phase::Handshaking { deadline } if now >= deadline => {
                self.close_with(Some(HANDSHAKE_TIMEOUT.into()), false)
            }
            Phase::Connected => {
                if now >= self.last_received + self.options.server_timeout {
                    self.close_with(Some(SERVER_TIMEOUT.into()), true);
                } else if now >= self.last_sent + self.options.keep_alive_interval {
                    self.queue(now, &HubMessage::Ping);
                }
            }
            _ => {}
        }
    }

    fn check_connected(&self) -> Result<(), ConnectionError> {
        match self.phase {
            Phase::Connected => Ok(()),
            Phase::Handshaking { .. } => Err(ConnectionError::NotConnected),
            Phase::Closed => Err(ConnectionError::Closed),
        }
    }

    fn queue(&mut self, now: Duration, message: &HubMessage) {
        self.last_sent = now;
        self.outbox.push_back(json::encode(message));
    }

    fn close_with(&mut self, error: Option<String>, allow_reconnect: bool) {
        if self.phase == Phase::Closed {
            return;
        }
        self.phase = Phase::Closed;
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
}
