//! The client core fed arbitrary server bytes in both protocols, with stateful reconnect:
//! never panics, whatever arrives.
#![no_main]
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard_signalr::{HubConnectionCore, HubConnectionOptions, HubProtocolKind};

fuzz_target!(|data: &[u8]| {
    for protocol in [HubProtocolKind::Json, HubProtocolKind::MessagePack] {
        let options = HubConnectionOptions {
            protocol,
            stateful_reconnect: data.first().is_some_and(|b| b & 1 == 1),
            ..HubConnectionOptions::default()
        };
        let mut core = HubConnectionCore::new(options, Duration::ZERO);
        core.handle_binary(Duration::ZERO, b"{}\x1e");
        for (i, chunk) in data.chunks(7).enumerate() {
            let now = Duration::from_millis(i as u64 * 300);
            core.handle_binary(now, chunk);
            core.handle_timeout(now);
            if i == 3 && core.handle_transport_lost(now, None) {
                let _ = core.resume(now);
            }
            while core.poll_event().is_some() {}
            while core.poll_transmit_frame().is_some() {}
        }
    }
});
