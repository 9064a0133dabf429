//! JSON hub protocol: arbitrary bytes through the record buffer and decoder; whatever decodes
//! must re-encode and decode to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_signalr::json::{RecordBuffer, decode, encode};

fuzz_target!(|data: &[u8]| {
    let mut buffer = RecordBuffer::new();
    for record in buffer.push_bytes(data).into_iter().flatten() {
        if let Ok(Some(message)) = decode(&record) {
            let text = encode(&message);
            let again = decode(&text[..text.len() - 1]).expect("re-encoded message decodes");
            assert_eq!(again, Some(message));
        }
    }
});
