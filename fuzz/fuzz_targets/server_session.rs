//! The server session fed arbitrary client bytes in both protocols, with and without stateful
//! reconnect, on every kind of transport, with arbitrary time steps, transport losses, resumes
//! and answers: never panics, whatever arrives, and keeps its own invariants.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_signalr::server::{HubServerOptions, HubServerSession, ServerEvent};
use switchboard_signalr::{CompletionOutcome, HubMessage};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let options = HubServerOptions {
        stateful_reconnect: flags & 1 == 1,
        binary_transfer: flags & 2 == 0,
        // Small bounds so that the fuzzer reaches them.
        replay_buffer_bytes: 64 + usize::from(flags >> 4) * 64,
        replay_close_factor: 2,
        max_message_bytes: 4096,
        max_messages_per_read: 64,
        ..HubServerOptions::default()
    };
    let mut session = HubServerSession::new(options, Duration::ZERO);
    // A valid handshake first half the time, so that message handling is reached.
    if flags & 4 == 0 {
        let protocol = if flags & 8 == 0 { "json" } else { "messagepack" };
        let version = if flags & 1 == 1 { 2 } else { 1 };
        session.handle_bytes(
            Duration::ZERO,
            format!("{{\"protocol\":\"{protocol}\",\"version\":{version}}}\x1e").as_bytes(),
        );
    }
    let mut now = Duration::ZERO;
    let mut closed_events = 0;
    // Each chunk: one control byte (time step and action), then up to 15 bytes of input.
    for chunk in rest.chunks(16) {
        let (control, bytes) = (chunk[0], &chunk[1..]);
        now += Duration::from_millis(u64::from(control & 0x1f) * 250);
        match control >> 5 {
            0 | 1 | 2 => session.handle_bytes(now, bytes),
            3 => {
                session.handle_timeout(now);
            }
            4 => {
                session.handle_transport_lost(now);
            }
            5 => {
                let _ = session.resume(now);
            }
            6 => session.send(
                now,
                &HubMessage::send(String::from_utf8_lossy(bytes), Vec::new()),
            ),
            _ => session.close(now, None, bytes.first().is_some_and(|b| b & 1 == 1)),
        }
        if session.poll_timeout().is_some_and(|at| at <= now) {
            session.handle_timeout(now);
        }
        while let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Message(HubMessage::Invocation {
                    invocation_id: Some(id),
                    ..
                }) => session.send(
                    now,
                    &HubMessage::Completion {
                        invocation_id: id,
                        outcome: CompletionOutcome::Void,
                    },
                ),
                ServerEvent::Closed(_) => closed_events += 1,
                _ => {}
            }
        }
        while session.poll_transmit().is_some() {}
        assert_eq!(closed_events, usize::from(session.is_closed()));
        assert_eq!(session.poll_timeout().is_none(), session.is_closed());
        if !session.is_stateful() {
            assert_eq!(session.unacked_len(), 0);
        }
    }
});

