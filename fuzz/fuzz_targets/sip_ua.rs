//! The user agent fed arbitrary frames between its own actions and timers (answering calls,
//! following or refusing REFERs): never panics.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_sip::auth::Credentials;
use switchboard_sip::ua::{UaConfig, UserAgent};

fuzz_target!(|data: &[u8]| {
    let config = UaConfig::new("sip:agent@example.com", Some(Credentials::new("u", "p")), 7);
    let mut ua = UserAgent::new(config, Duration::ZERO);
    ua.register(Duration::ZERO);
    let call = ua.call(Duration::ZERO, "sip:bob@example.com", "v=0\r\n").ok();
    for (i, frame) in data.split(|b| *b == 0xff).enumerate() {
        let now = Duration::from_millis(i as u64 * 700);
        ua.handle_bytes(now, frame);
        while let Some(event) = ua.poll_event() {
            match event {
                switchboard_sip::ua::Event::IncomingCall { call, .. } => {
                    let _ = ua.answer(now, call, "v=0\r\n");
                }
                // Being transferred: follow every other REFER, refuse the rest.
                switchboard_sip::ua::Event::TransferRequested { call, .. } => {
                    if i % 2 == 0 {
                        let _ = ua.accept_transfer(now, call, "v=0\r\n");
                    } else {
                        let _ = ua.decline_transfer(now, call, 603);
                    }
                }
                _ => {}
            }
        }
        if let Some(t) = ua.poll_timeout() {
            ua.handle_timeout(t.max(now));
        }
        if i == 3 {
            if let Some(call) = call {
                let _ = ua.hold(now, call, "v=0\r\nm=audio 9 RTP/AVP 0\r\n");
                let _ = ua.hangup(now, call);
            }
            ua.transport_lost(now);
            ua.transport_connected(now);
        }
        while ua.poll_transmit().is_some() {}
    }
});
