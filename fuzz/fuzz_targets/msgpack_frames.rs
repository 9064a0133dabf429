//! MessagePack hub protocol: arbitrary bytes through the frame buffer (split in two reads) and
//! decoder; whatever decodes must re-encode and decode to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_signalr::msgpack::{FrameBuffer, decode, encode, parse_frames};

fuzz_target!(|data: &[u8]| {
    let _ = parse_frames(data);
    let mut buffer = FrameBuffer::with_limit(64 * 1024);
    let (a, b) = data.split_at(data.len() / 2);
    let mut bodies = buffer.push(a).unwrap_or_default();
    bodies.extend(buffer.push(b).unwrap_or_default());
    for body in bodies {
        if let Ok(Some(message)) = decode(&body) {
            let frame = encode(&message);
            let frames = parse_frames(&frame).expect("re-encoded frame parses");
            assert_eq!(decode(frames[0]).expect("re-encoded message decodes"), Some(message));
        }
    }
});
