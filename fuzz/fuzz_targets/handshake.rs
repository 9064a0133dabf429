//! Handshake request and response parsing never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_signalr::handshake::{HandshakeRequest, HandshakeResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = HandshakeRequest::decode(text);
        let _ = HandshakeResponse::decode(text);
    }
});
