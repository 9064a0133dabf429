//! The SIP parser fed arbitrary bytes: never panics; whatever parses serializes to bytes that
//! parse again, and its typed headers can be read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_sip::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::parse(data) {
        let _ = message.validate();
        let h = message.headers();
        let _ = (h.vias(), h.from(), h.to(), h.cseq(), h.name_addrs("Contact"));
        let bytes = message.to_bytes();
        Message::parse(&bytes).expect("a parsed message re-serializes to a parseable one");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_sip::auth::Challenge::parse(text);
        let _ = switchboard_sip::sdp::set_direction(text, switchboard_sip::sdp::Direction::SendOnly);
    }
});
