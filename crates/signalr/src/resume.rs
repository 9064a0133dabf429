//! The stateful-reconnect bookkeeping that both ends of a connection keep (`HubProtocol.md`,
//! "Stateful Reconnect", "Ack Message", "Sequence Message"; the official client's
//! `MessageBuffer.ts`), shared by the client core ([`crate::client`]) and the server session
//! ([`crate::server`]).
//!
//! Both directions number the messages of types 1–5 ([`HubMessage::is_sequenced`]) from 1:
//!
//! - sending: every sequenced frame is numbered and kept ([`ReplayBuffer::record_sent`]) until
//!   the peer's `Ack` covers it ([`ReplayBuffer::handle_ack`]); after a new transport the first
//!   kept id goes out as `Sequence` followed by every kept frame ([`ReplayBuffer::replay`]);
//! - receiving: every sequenced message is counted ([`ReplayBuffer::handle_received`]); ones at
//!   or below the highest id already received are duplicates of a replay and dropped; the
//!   highest id goes back as an `Ack` ([`ReplayBuffer::take_ack`]) once a timer
//!   ([`ReplayBuffer::ack_due`]) expires; the peer's `Sequence` rewinds the counter
//!   ([`ReplayBuffer::handle_sequence`]).
//!
//! The buffer counts what it keeps in frames and in encoded bytes ([`ReplayBuffer::unacked_len`],
//! [`ReplayBuffer::unacked_bytes`]); what to do when that grows too large is the owner's policy
//! (the server stops taking hub messages and then closes; the client does not bound it).
//!
//! No clock is read: times are [`Duration`]s since an origin the caller chooses.

use std::collections::VecDeque;
use std::time::Duration;

use crate::message::HubMessage;
use crate::protocol::{HubProtocolKind, Transmit};

/// The Close error (and the official client's text) when the peer's `Sequence` id is beyond
/// what was received.
pub const SEQUENCE_TOO_HIGH: &str = "Sequence ID greater than amount of messages we've received.";

/// The peer's `Sequence` named an id past the next one expected (`HubProtocol.md`, "Sequence
/// Message": the connection must close). Its text is [`SEQUENCE_TOO_HIGH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Sequence ID greater than amount of messages we've received.")]
pub struct SequenceTooHigh;

/// One end's stateful-reconnect state: the numbered frames sent and not yet acknowledged, and
/// the count of messages received (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ReplayBuffer {
    next_send_id: u64,
    unacked: VecDeque<(u64, Transmit)>,
    unacked_bytes: usize,
    next_receive_id: u64,
    latest_received: u64,
    ack_due: Option<Duration>,
    last_acked: u64,
}

impl ReplayBuffer {
    /// An empty buffer: the first message sent and the first expected are both id 1.
    pub fn new() -> Self {
        Self {
            next_send_id: 1,
            next_receive_id: 1,
            ..Self::default()
        }
    }

    /// Numbers and keeps `frame` (the encoding of `message`) when `message` is sequenced
    /// (types 1–5); returns its id, or `None` for messages that are not numbered (Ping, Close,
    /// Ack, Sequence).
    pub fn record_sent(&mut self, message: &HubMessage, frame: &Transmit) -> Option<u64> {
        if !message.is_sequenced() {
            return None;
        }
        let id = self.next_send_id;
        self.next_send_id += 1;
        self.unacked_bytes += frame.len();
        self.unacked.push_back((id, frame.clone()));
        Some(id)
    }

    /// The peer's `Ack{sequence_id}`: drops every kept frame up to and including that id.
    /// Ids beyond what was sent simply empty the buffer.
    pub fn handle_ack(&mut self, sequence_id: u64) {
        while self
            .unacked
            .front()
            .is_some_and(|(id, _)| *id <= sequence_id)
        {
            if let Some((_, frame)) = self.unacked.pop_front() {
                self.unacked_bytes -= frame.len();
            }
        }
    }

    /// The peer's `Sequence{sequence_id}` on a new transport: the next message received is that
    /// id. It is compared with what was received, not with the receive counter: a transport
    /// lost in the middle of a replay leaves the counter behind messages received (and acked)
    /// before, and the peer rightly restarts after them.
    ///
    /// # Errors
    /// [`SequenceTooHigh`] when `sequence_id` is more than one past the highest id received;
    /// the caller closes the connection ([`SEQUENCE_TOO_HIGH`], no reconnect).
    pub fn handle_sequence(&mut self, sequence_id: u64) -> Result<(), SequenceTooHigh> {
        if sequence_id > self.latest_received + 1 {
            return Err(SequenceTooHigh);
        }
        self.next_receive_id = sequence_id;
        Ok(())
    }

    /// A sequenced message (types 1–5) arrived at `now`: `true` when it is new (act on it),
    /// `false` for a duplicate of a replay (drop it). A new one arms the Ack timer at
    /// `now + ack_interval` unless it is armed already.
    pub fn handle_received(&mut self, now: Duration, ack_interval: Duration) -> bool {
        let current = self.next_receive_id;
        self.next_receive_id += 1;
        if current <= self.latest_received {
            return false;
        }
        self.latest_received = current;
        if self.ack_due.is_none() {
            self.ack_due = Some(now + ack_interval);
        }
        true
    }

    /// When the timed Ack is due; `None` when nothing new arrived since the last one.
    pub fn ack_due(&self) -> Option<Duration> {
        self.ack_due
    }

    /// Disarms the Ack timer without acknowledging (a transport was lost; a resumed one acks
    /// afresh).
    pub fn cancel_ack(&mut self) {
        self.ack_due = None;
    }

    /// The `Ack` to send now (`Ack{highest id received}`); disarms the timer and remembers the
    /// id as acknowledged.
    pub fn take_ack(&mut self) -> HubMessage {
        self.ack_due = None;
        self.last_acked = self.latest_received;
        HubMessage::Ack {
            sequence_id: self.latest_received,
        }
    }

    /// The highest sequence id received.
    pub fn latest_received(&self) -> u64 {
        self.latest_received
    }

    /// How many messages arrived since the last [`take_ack`](Self::take_ack).
    pub fn unacked_received(&self) -> u64 {
        self.latest_received - self.last_acked
    }

    /// The id of the first frame kept (the `Sequence` of a replay): the oldest unacknowledged
    /// one, or the next to be sent when all are acknowledged.
    pub fn first_unacked(&self) -> u64 {
        self.unacked
            .front()
            .map_or(self.next_send_id, |(id, _)| *id)
    }

    /// What a new transport gets first: `Sequence{first unacked}` encoded in `protocol`, then
    /// every kept frame, oldest first.
    pub fn replay(&self, protocol: HubProtocolKind) -> impl Iterator<Item = Transmit> + '_ {
        let sequence = protocol.encode(&HubMessage::Sequence {
            sequence_id: self.first_unacked(),
        });
        std::iter::once(sequence).chain(self.unacked.iter().map(|(_, frame)| frame.clone()))
    }

    /// Frames kept (sent, not yet acknowledged).
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Encoded bytes kept (the sum of the kept frames' lengths).
    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn sent(buffer: &mut ReplayBuffer, n: u64) -> Option<u64> {
        let message = HubMessage::send("x", vec![json!(n)]);
        let frame = HubProtocolKind::Json.encode(&message);
        buffer.record_sent(&message, &frame)
    }

    #[test]
    fn numbers_sequenced_messages_and_frees_them_on_ack() {
        let mut b = ReplayBuffer::new();
        assert_eq!(sent(&mut b, 0), Some(1));
        let ping = HubProtocolKind::Json.encode(&HubMessage::Ping);
        assert_eq!(b.record_sent(&HubMessage::Ping, &ping), None);
        assert_eq!(sent(&mut b, 1), Some(2));
        assert_eq!(sent(&mut b, 2), Some(3));
        assert_eq!(b.unacked_len(), 3);
        let one = b.unacked_bytes() / 3;
        assert!(one > 0);
        b.handle_ack(2);
        assert_eq!((b.unacked_len(), b.unacked_bytes()), (1, one));
        assert_eq!(b.first_unacked(), 3);
        let replay: Vec<_> = b.replay(HubProtocolKind::Json).collect();
        assert_eq!(
            replay[0],
            HubProtocolKind::Json.encode(&HubMessage::Sequence { sequence_id: 3 })
        );
        assert_eq!(replay.len(), 2);
        b.handle_ack(99);
        assert_eq!((b.unacked_len(), b.unacked_bytes()), (0, 0));
        assert_eq!(b.first_unacked(), 4);
    }

    #[test]
    fn counts_received_drops_duplicates_and_times_the_ack() {
        let mut b = ReplayBuffer::new();
        assert!(b.handle_received(S(1), S(1)));
        assert!(b.handle_received(S(1), S(1)));
        assert_eq!(b.ack_due(), Some(S(2)));
        assert_eq!(b.unacked_received(), 2);
        assert_eq!(b.take_ack(), HubMessage::Ack { sequence_id: 2 });
        assert_eq!((b.ack_due(), b.unacked_received()), (None, 0));
        // The peer replays from 1 after a new transport: 1 and 2 are duplicates, 3 is new.
        assert_eq!(b.handle_sequence(1), Ok(()));
        assert!(!b.handle_received(S(5), S(1)));
        assert!(!b.handle_received(S(5), S(1)));
        assert_eq!(b.ack_due(), None);
        assert!(b.handle_received(S(5), S(1)));
        assert_eq!(b.latest_received(), 3);
        assert_eq!(b.ack_due(), Some(S(6)));
        assert_eq!(b.handle_sequence(5), Err(SequenceTooHigh));
        assert_eq!(b.handle_sequence(4), Ok(()));
        assert_eq!(SequenceTooHigh.to_string(), SEQUENCE_TOO_HIGH);
    }
}
