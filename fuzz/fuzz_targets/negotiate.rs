//! Negotiate answers and the URL helpers never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_signalr::negotiate::{self, NegotiateResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = NegotiateResponse::decode(text);
        let _ = negotiate::negotiate_url(text);
        let _ = negotiate::websocket_url(text, Some(text));
        let _ = negotiate::resolve_url("http://127.0.0.1:8080/api", text);
    }
});
