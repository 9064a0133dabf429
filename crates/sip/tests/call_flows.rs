//! Whole flows through `UserAgent`, with the far side written as the literal messages a
//! Kamailio edge (Record-Route, rport/received) and a PBX would send. The fake clock is a
//! `Duration` the test moves.

use std::time::Duration;

use switchboard_sip::auth::Credentials;
use switchboard_sip::ua::{CallHandle, EndReason, Event, UaConfig, UserAgent};
use switchboard_sip::{Message, Method, Request};

const S: fn(u64) -> Duration = Duration::from_secs;
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=sendrecv\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.9\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n";

fn ua() -> UserAgent {
    let mut config = UaConfig::new(
        "sip:agent7@example.com",
        Some(Credentials::new("1767225600:agent7", "c2VjcmV0")),
        42,
    );
    config.outbound_proxy = Some("sip:edge.example.com;transport=ws;lr".into());
    UserAgent::new(config, S(0))
}

fn sent(ua: &mut UserAgent) -> Vec<String> {
    std::iter::from_fn(|| ua.poll_transmit()).collect()
}

fn events(ua: &mut UserAgent) -> Vec<Event> {
    std::iter::from_fn(|| ua.poll_event()).collect()
}

fn request(text: &str) -> Request {
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.code),
    }
}

/// A response to `req` as Kamailio relays it: our Via with `received` and `rport` filled in,
/// Record-Route of the edge, the far end's To tag and Contact.
fn reply(req: &Request, code: u16, reason: &str, extra: &str, body: &str) -> String {
    let via = req
        .headers
        .get("Via")
        .unwrap()
        .replace(";rport", ";rport=51234;received=198.51.100.7");
    let to = req.headers.get("To").unwrap();
    let to = if code > 100 && !to.contains("tag=") {
        format!("{to};tag=pbx-tag-1")
    } else {
        to.to_owned()
    };
    format!(
        "SIP/2.0 {code} {reason}\r\nVia: {via}\r\nRecord-Route: <sip:192.0.2.1;lr>\r\nRecord-Route: <sip:edge.example.com;transport=ws;r2=on;lr>\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@192.0.2.9:5060>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        req.headers.get("From").unwrap(),
        req.headers.call_id().unwrap(),
        req.headers.get("CSeq").unwrap(),
        body.len()
    )
}

/// The far end's 200 OK to `invite`, with its SDP answer.
fn ok_with_answer(invite: &Request) -> String {
    reply(
        invite,
        200,
        "OK",
        "Content-Type: application/sdp\r\n",
        ANSWER,
    )
}

/// REGISTERs at 0 s and takes the registrar's 200 OK with the extra `headers(REGISTER)`;
/// returns the REGISTER.
fn register_accepted(ua: &mut UserAgent, headers: impl FnOnce(&Request) -> String) -> Request {
    ua.register(S(0));
    let reg = request(&sent(ua)[0]);
    ua.handle_text(S(0), &reply(&reg, 200, "OK", &headers(&reg), ""));
    reg
}

fn register(ua: &mut UserAgent) {
    register_accepted(ua, |reg| {
        format!(
            "Contact: {}\r\n",
            reg.headers
                .get("Contact")
                .unwrap()
                .replace("expires=600", "expires=300")
        )
    });
    assert_eq!(events(ua), [Event::Registered { expires: 300 }]);
}

#[test]
fn register_with_digest_then_refresh_and_unregister() {
    let mut ua = ua();
    ua.register(S(0));
    let first = request(&sent(&mut ua)[0]);
    assert_eq!(first.method, Method::Register);
    assert_eq!(first.uri.to_string(), "sip:example.com");
    assert_eq!(
        first.headers.get("Route"),
        Some("<sip:edge.example.com;transport=ws;lr>")
    );
    let contact = first.headers.get("Contact").unwrap();
    assert!(contact.contains(".invalid;transport=ws;ob>"), "{contact}");
    assert!(contact.contains("+sip.instance=\"<urn:uuid:") && contact.contains("reg-id=1"));
    let via = first.headers.top_via().unwrap();
    assert_eq!(via.transport, "WSS");
    assert!(via.host.ends_with(".invalid") && via.params.has("rport"));
    assert!(via.branch().unwrap().starts_with("z9hG4bK"));

    ua.handle_text(S(0), &reply(&first, 401, "Unauthorized", "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc123\", qop=\"auth\", algorithm=SHA-256\r\n", ""));
    let second = request(&sent(&mut ua)[0]);
    assert_eq!(
        second.headers.cseq().unwrap().seq,
        first.headers.cseq().unwrap().seq + 1
    );
    assert_eq!(
        second.headers.call_id().unwrap(),
        first.headers.call_id().unwrap()
    );
    assert_ne!(second.headers.top_via().unwrap().branch(), via.branch());
    let auth = second.headers.get("Authorization").unwrap();
    assert!(
        auth.contains("username=\"1767225600:agent7\"")
            && auth.contains("algorithm=SHA-256")
            && auth.contains("nc=00000001")
    );

    // The same nonce again (not stale): the credentials were refused.
    ua.handle_text(S(1), &reply(&second, 401, "Unauthorized", "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc123\", qop=\"auth\", algorithm=SHA-256\r\n", ""));
    assert!(sent(&mut ua).is_empty());
    assert_eq!(
        events(&mut ua),
        [Event::RegistrationFailed {
            code: 401,
            reason: "Unauthorized".into()
        }]
    );

    // Register again, succeed, and check the refresh is due before expiry.
    register(&mut ua);
    // Keep-alive pings come first (no pong deadline: the registrar did not require outbound).
    let (refresh, again) = loop {
        let t = ua.poll_timeout().unwrap();
        ua.handle_timeout(t);
        let out = sent(&mut ua);
        if let Some(r) = out.iter().find(|m| m.starts_with("REGISTER ")) {
            break (t, request(r));
        }
        assert_eq!(out, ["\r\n\r\n"], "only pings before the refresh");
        assert!(events(&mut ua).is_empty());
    };
    assert!(
        refresh < S(300) && refresh >= S(200),
        "refresh at {refresh:?}"
    );
    ua.handle_text(refresh, &reply(&again, 200, "OK", "Expires: 300\r\n", ""));
    assert_eq!(events(&mut ua), [Event::Registered { expires: 300 }]);

    ua.unregister(refresh + S(1));
    let un = request(&sent(&mut ua)[0]);
    assert!(un.headers.get("Contact").unwrap().contains("expires=0"));
    assert_eq!(un.headers.get("Expires"), Some("0"));
    ua.handle_text(refresh + S(1), &reply(&un, 200, "OK", "", ""));
    assert_eq!(events(&mut ua), [Event::Unregistered]);
}

#[test]
fn keep_alive_pings_and_flow_failure_with_outbound() {
    let mut ua = ua();
    let reg = register_accepted(&mut ua, |_| {
        "Require: outbound\r\nFlow-Timer: 30\r\nExpires: 600\r\n".into()
    });
    events(&mut ua);
    let ping_at = ua.poll_timeout().unwrap();
    assert!(ping_at <= S(30) && ping_at >= S(24), "ping at {ping_at:?}");
    ua.handle_timeout(ping_at);
    assert_eq!(sent(&mut ua), ["\r\n\r\n"]);
    ua.handle_text(ping_at + S(1), "\r\n"); // pong
    let next = ua.poll_timeout().unwrap();
    assert!(
        next > ping_at + S(10),
        "no pong deadline pending after the pong"
    );
    ua.handle_timeout(next);
    assert_eq!(sent(&mut ua), ["\r\n\r\n"]);
    ua.handle_timeout(next + S(10));
    assert_eq!(events(&mut ua), [Event::FlowFailed]);
    // Reconnect: a new REGISTER with the same instance replaces the flow.
    ua.transport_lost(next + S(10));
    ua.transport_connected(next + S(11));
    let re = request(&sent(&mut ua)[0]);
    assert_eq!(
        re.headers.call_id().unwrap(),
        reg.headers.call_id().unwrap()
    );
    assert_eq!(re.headers.get("Contact"), reg.headers.get("Contact"));
    // A server ping gets a pong.
    ua.handle_text(next + S(12), "\r\n\r\n");
    assert_eq!(sent(&mut ua), ["\r\n"]);
}

fn outgoing_call(ua: &mut UserAgent) -> (CallHandle, Request) {
    let call = ua.call(S(0), "sip:bob@example.com", OFFER).unwrap();
    let invite = request(&sent(ua)[0]);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(
        invite.headers.content_type().as_deref(),
        Some("application/sdp")
    );
    assert_eq!(invite.body, OFFER.as_bytes());
    (call, invite)
}

#[test]
fn outgoing_call_with_proxy_auth_ringing_answer_hold_and_bye() {
    let mut ua = ua();
    let (call, invite) = outgoing_call(&mut ua);
    ua.handle_text(
        S(0),
        &reply(
            &invite,
            407,
            "Proxy Authentication Required",
            "Proxy-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", qop=\"auth\"\r\n",
            "",
        ),
    );
    let out = sent(&mut ua);
    assert!(
        out[0].starts_with("ACK sip:bob@example.com SIP/2.0"),
        "non-2xx ACK first: {out:?}"
    );
    let invite = request(&out[1]);
    assert_eq!(invite.headers.cseq().unwrap().seq, 2);
    assert!(
        invite
            .headers
            .get("Proxy-Authorization")
            .unwrap()
            .contains("uri=\"sip:bob@example.com\"")
    );

    ua.handle_text(S(1), &reply(&invite, 100, "Trying", "", ""));
    ua.handle_text(S(1), &reply(&invite, 180, "Ringing", "", ""));
    assert_eq!(events(&mut ua), [Event::Ringing { call, sdp: None }]);
    ua.handle_text(S(3), &ok_with_answer(&invite));
    assert_eq!(
        events(&mut ua),
        [Event::Answered {
            call,
            sdp: Some(ANSWER.into())
        }]
    );
    let ack = request(&sent(&mut ua)[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.uri.to_string(),
        "sip:bob@192.0.2.9:5060",
        "ACK goes to the Contact"
    );
    let routes: Vec<_> = ack.headers.all("Route").collect();
    assert_eq!(
        routes,
        [
            "<sip:edge.example.com;transport=ws;r2=on;lr>",
            "<sip:192.0.2.1;lr>"
        ],
        "Record-Route reversed"
    );
    assert_eq!(ack.headers.cseq().unwrap().to_string(), "2 ACK");
    // A retransmitted 2xx is ACKed again.
    ua.handle_text(S(4), &ok_with_answer(&invite));
    assert!(sent(&mut ua)[0].starts_with("ACK "));
    assert!(events(&mut ua).is_empty());

    // Hold: re-INVITE with sendonly.
    ua.hold(S(10), call, OFFER).unwrap();
    let reinvite = request(&sent(&mut ua)[0]);
    assert_eq!(reinvite.headers.cseq().unwrap().seq, 3);
    assert!(
        reinvite.body_text().unwrap().contains("a=sendonly")
            && !reinvite.body_text().unwrap().contains("a=sendrecv")
    );
    assert_eq!(reinvite.headers.to().unwrap().tag(), Some("pbx-tag-1"));
    ua.handle_text(
        S(10),
        &reply(
            &reinvite,
            200,
            "OK",
            "Content-Type: application/sdp\r\n",
            "v=0\r\na=recvonly\r\n",
        ),
    );
    assert_eq!(
        events(&mut ua),
        [Event::RenegotiationAnswered {
            call,
            sdp: Some("v=0\r\na=recvonly\r\n".into())
        }]
    );
    assert!(sent(&mut ua)[0].starts_with("ACK sip:bob@192.0.2.9:5060"));

    // DTMF by INFO.
    ua.send_dtmf_info(S(11), call, '5', 160).unwrap();
    let info = request(&sent(&mut ua)[0]);
    assert_eq!(
        info.headers.content_type().as_deref(),
        Some("application/dtmf-relay")
    );
    assert_eq!(info.body, b"Signal=5\r\nDuration=160\r\n");
    ua.handle_text(S(11), &reply(&info, 200, "OK", "", ""));

    ua.hangup(S(20), call).unwrap();
    assert_ended(&mut ua, call, EndReason::LocalHangup);
    let bye = request(&sent(&mut ua)[0]);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.headers.cseq().unwrap().seq, 5);
    ua.handle_text(S(20), &reply(&bye, 200, "OK", "", ""));
    assert!(!ua.has_call(call));
}

#[test]
fn cancel_waits_for_a_provisional_and_487_is_acked() {
    let mut ua = ua();
    let (call, invite) = outgoing_call(&mut ua);
    ua.hangup(S(1), call).unwrap();
    assert!(
        sent(&mut ua).is_empty(),
        "no CANCEL before a provisional response"
    );
    assert_ended(&mut ua, call, EndReason::LocalCancel);
    ua.handle_text(S(1), &reply(&invite, 180, "Ringing", "", ""));
    let cancel = request(&sent(&mut ua)[0]);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.top_via().unwrap().branch(),
        invite.headers.top_via().unwrap().branch()
    );
    assert_eq!(cancel.headers.cseq().unwrap().to_string(), "1 CANCEL");
    assert_eq!(cancel.headers.get("To"), invite.headers.get("To"));
    ua.handle_text(S(1), &reply(&cancel, 200, "OK", "", ""));
    ua.handle_text(S(1), &reply(&invite, 487, "Request Terminated", "", ""));
    let ack = request(&sent(&mut ua)[0]);
    assert_eq!(
        (ack.method, ack.headers.cseq().unwrap().seq),
        (Method::Ack, 1)
    );
    assert!(events(&mut ua).is_empty(), "Ended was already reported");
}

#[test]
fn busy_and_timer_b() {
    let mut ua = ua();
    let (call, invite) = outgoing_call(&mut ua);
    ua.handle_text(S(1), &reply(&invite, 486, "Busy Here", "", ""));
    assert_ended(
        &mut ua,
        call,
        EndReason::Rejected {
            code: 486,
            reason: "Busy Here".into(),
        },
    );
    assert!(sent(&mut ua)[0].starts_with("ACK "));
    let (call, _) = outgoing_call(&mut ua);
    assert_eq!(ua.poll_timeout(), Some(S(32)), "Timer B = 64·T1");
    ua.handle_timeout(S(32));
    assert_ended(&mut ua, call, EndReason::Timeout);
}

/// An INVITE from a plain phone through Kamailio toward the browser's contact.
fn incoming_invite(branch: &str, call_id: &str) -> String {
    let sdp = ANSWER;
    format!(
        "INVITE sip:abc@h.invalid;transport=ws;ob SIP/2.0\r\n\
Record-Route: <sip:edge.example.com;transport=ws;r2=on;lr>\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
Via: SIP/2.0/WSS edge.example.com;branch={branch}\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;rport=5060;branch=z9hG4bKphone1\r\n\
Max-Forwards: 69\r\n\
From: \"Customer\" <sip:alice@192.0.2.9>;tag=phone-tag\r\n\
To: <sip:agent7@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 20 INVITE\r\n\
Contact: <sip:alice@192.0.2.9:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn in_dialog_from_phone(
    method: &str,
    seq: u32,
    to_tag: &str,
    call_id: &str,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:abc@h.invalid;transport=ws;ob SIP/2.0\r\n\
Via: SIP/2.0/WSS edge.example.com;branch=z9hG4bK{method}{seq}\r\n\
Max-Forwards: 69\r\n\
From: \"Customer\" <sip:alice@192.0.2.9>;tag=phone-tag\r\n\
To: <sip:agent7@example.com>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {seq} {method}\r\n\
Contact: <sip:alice@192.0.2.9:5060>\r\n\
{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An INVITE from the phone (`incoming_invite`) handled at `now`: the call it rings and what the
/// UA sent.
fn incoming_call(
    ua: &mut UserAgent,
    now: Duration,
    branch: &str,
    call_id: &str,
) -> (CallHandle, Vec<String>) {
    ua.handle_text(now, &incoming_invite(branch, call_id));
    let out = sent(ua);
    let Event::IncomingCall { call, .. } = events(ua).remove(0) else {
        panic!()
    };
    (call, out)
}

/// The To tag of the response `text`.
fn to_tag_of(text: &str) -> String {
    response(text)
        .headers
        .to()
        .unwrap()
        .tag()
        .unwrap()
        .to_owned()
}

/// Answers `call` with OFFER at `now` and takes the phone's ACK (CSeq 20) for dialog `call_id`.
fn answer_and_ack(
    ua: &mut UserAgent,
    now: Duration,
    call: CallHandle,
    to_tag: &str,
    call_id: &str,
) {
    ua.answer(now, call, OFFER).unwrap();
    ua.handle_text(
        now,
        &in_dialog_from_phone("ACK", 20, to_tag, call_id, "", ""),
    );
    sent(ua);
}

/// The UA's pending events are exactly `call` ending for `reason`.
#[track_caller]
fn assert_ended(ua: &mut UserAgent, call: CallHandle, reason: EndReason) {
    assert_eq!(events(ua), [Event::Ended { call, reason }]);
}

fn response(text: &str) -> switchboard_sip::Response {
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Response(r) => r,
        Message::Request(_) => panic!("expected a response"),
    }
}

#[test]
fn incoming_call_answered_reinvite_info_bye() {
    let mut ua = ua();
    ua.handle_text(S(0), &incoming_invite("z9hG4bKin1", "in-1"));
    let out = sent(&mut ua);
    assert_eq!(response(&out[0]).code, 100);
    let ringing = response(&out[1]);
    assert_eq!(ringing.code, 180);
    // RFC 3261 §12.1.1: the Record-Route values come back in the same order (18x and 2xx).
    let edge_path = [
        "<sip:edge.example.com;transport=ws;r2=on;lr>",
        "<sip:192.0.2.1;lr>",
    ];
    assert_eq!(
        ringing.headers.all("Record-Route").collect::<Vec<_>>(),
        edge_path
    );
    let to_tag = ringing.headers.to().unwrap().tag().unwrap().to_owned();
    let Event::IncomingCall {
        call,
        from,
        display,
        sdp,
        replaces,
    } = events(&mut ua).remove(0)
    else {
        panic!()
    };
    assert_eq!(
        (from.as_str(), display.as_deref(), replaces),
        ("sip:alice@192.0.2.9", Some("Customer"), None)
    );
    assert_eq!(sdp.as_deref(), Some(ANSWER));
    // A retransmitted INVITE gets the 180 again.
    ua.handle_text(S(0), &incoming_invite("z9hG4bKin1", "in-1"));
    assert_eq!(response(&sent(&mut ua)[0]).code, 180);

    ua.answer(S(2), call, OFFER).unwrap();
    let ok = response(&sent(&mut ua)[0]);
    assert_eq!(ok.code, 200);
    assert_eq!(ok.headers.to().unwrap().tag(), Some(to_tag.as_str()));
    assert_eq!(ok.body, OFFER.as_bytes());
    assert_eq!(ok.headers.all("Via").count(), 2);
    assert_eq!(
        ok.headers.all("Record-Route").collect::<Vec<_>>(),
        edge_path
    );
    // No ACK yet: the 2xx is retransmitted at T1.
    ua.handle_timeout(S(2) + Duration::from_millis(500));
    assert_eq!(response(&sent(&mut ua)[0]).code, 200);
    ua.handle_text(
        S(3),
        &in_dialog_from_phone("ACK", 20, &to_tag, "in-1", "", ""),
    );
    ua.handle_timeout(S(10));
    assert!(sent(&mut ua).is_empty(), "no retransmission after the ACK");

    // The phone puts us on hold.
    ua.handle_text(
        S(20),
        &in_dialog_from_phone(
            "INVITE",
            21,
            &to_tag,
            "in-1",
            "Content-Type: application/sdp\r\n",
            "v=0\r\na=sendonly\r\n",
        ),
    );
    assert_eq!(response(&sent(&mut ua)[0]).code, 100);
    assert_eq!(
        events(&mut ua),
        [Event::Renegotiate {
            call,
            sdp: Some("v=0\r\na=sendonly\r\n".into())
        }]
    );
    ua.answer(S(20), call, "v=0\r\na=recvonly\r\n").unwrap();
    assert_eq!(response(&sent(&mut ua)[0]).code, 200);
    ua.handle_text(
        S(20),
        &in_dialog_from_phone("ACK", 21, &to_tag, "in-1", "", ""),
    );

    // DTMF INFO in both formats, then an out-of-order CSeq.
    ua.handle_text(
        S(21),
        &in_dialog_from_phone(
            "INFO",
            22,
            &to_tag,
            "in-1",
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=#\r\nDuration=250\r\n",
        ),
    );
    ua.handle_text(
        S(21),
        &in_dialog_from_phone(
            "INFO",
            23,
            &to_tag,
            "in-1",
            "Content-Type: application/dtmf\r\n",
            "7",
        ),
    );
    assert_eq!(
        events(&mut ua),
        [
            Event::Dtmf {
                call,
                digit: '#',
                duration_ms: 250
            },
            Event::Dtmf {
                call,
                digit: '7',
                duration_ms: 0
            },
        ]
    );
    ua.handle_text(
        S(21),
        &in_dialog_from_phone("INFO", 5, &to_tag, "in-1", "", ""),
    );
    let codes: Vec<u16> = sent(&mut ua).iter().map(|m| response(m).code).collect();
    assert_eq!(codes, [200, 200, 500]);

    // We hang up: BYE to the phone's Contact through the route set in order.
    ua.hangup(S(30), call).unwrap();
    let bye = request(&sent(&mut ua)[0]);
    assert_eq!(bye.uri.to_string(), "sip:alice@192.0.2.9:5060");
    let routes: Vec<_> = bye.headers.all("Route").collect();
    assert_eq!(
        routes,
        [
            "<sip:edge.example.com;transport=ws;r2=on;lr>",
            "<sip:192.0.2.1;lr>"
        ]
    );
    assert_eq!(bye.headers.to().unwrap().tag(), Some("phone-tag"));
    assert_eq!(bye.headers.cseq().unwrap().seq, 1);
}

#[test]
fn incoming_call_cancelled_rejected_remote_bye_and_ack_timeout() {
    let mut ua = ua();
    let (call, _) = incoming_call(&mut ua, S(0), "z9hG4bKin2", "in-2");
    let cancel = "CANCEL sip:abc@h.invalid;transport=ws;ob SIP/2.0\r\nVia: SIP/2.0/WSS edge.example.com;branch=z9hG4bKin2\r\nMax-Forwards: 69\r\nFrom: \"Customer\" <sip:alice@192.0.2.9>;tag=phone-tag\r\nTo: <sip:agent7@example.com>\r\nCall-ID: in-2\r\nCSeq: 20 CANCEL\r\nContent-Length: 0\r\n\r\n";
    ua.handle_text(S(1), cancel);
    let codes: Vec<u16> = sent(&mut ua).iter().map(|m| response(m).code).collect();
    assert_eq!(codes, [200, 487]);
    assert_ended(&mut ua, call, EndReason::RemoteCancel);

    let (call, _) = incoming_call(&mut ua, S(2), "z9hG4bKin3", "in-3");
    ua.reject(S(2), call, 603).unwrap();
    assert_eq!(response(&sent(&mut ua)[0]).code, 603);
    assert_ended(&mut ua, call, EndReason::LocalReject(603));

    let (call, out) = incoming_call(&mut ua, S(3), "z9hG4bKin4", "in-4");
    let to_tag = to_tag_of(&out[1]);
    answer_and_ack(&mut ua, S(3), call, &to_tag, "in-4");
    ua.handle_text(
        S(9),
        &in_dialog_from_phone("BYE", 21, &to_tag, "in-4", "", ""),
    );
    assert_eq!(response(&sent(&mut ua)[0]).code, 200);
    assert_ended(&mut ua, call, EndReason::RemoteHangup);

    // Unknown dialog → 481.
    ua.handle_text(
        S(9),
        &in_dialog_from_phone("BYE", 22, "nope", "in-4", "", ""),
    );
    assert_eq!(response(&sent(&mut ua)[0]).code, 481);

    // Answered, never ACKed: give up after 64·T1 and send BYE.
    let (call, _) = incoming_call(&mut ua, S(10), "z9hG4bKin5", "in-5");
    ua.answer(S(10), call, OFFER).unwrap();
    while let Some(t) = ua.poll_timeout() {
        if t > S(60) {
            break;
        }
        ua.handle_timeout(t);
    }
    let out = sent(&mut ua);
    let retransmissions = out.iter().filter(|m| m.starts_with("SIP/2.0 200")).count();
    assert!(
        (7..=12).contains(&retransmissions),
        "{retransmissions} retransmissions (T1 doubling, capped at T2)"
    );
    assert!(out.last().unwrap().starts_with("BYE "));
    assert_ended(&mut ua, call, EndReason::AckTimeout);
}

#[test]
fn blind_transfer_with_sipfrag_notifies() {
    let mut ua = ua();
    let (call, invite) = outgoing_call(&mut ua);
    ua.handle_text(S(1), &ok_with_answer(&invite));
    sent(&mut ua);
    events(&mut ua);
    ua.transfer_blind(S(2), call, "sip:carol@example.com")
        .unwrap();
    let refer = request(&sent(&mut ua)[0]);
    assert_eq!(refer.method, Method::Refer);
    assert_eq!(
        refer.headers.get("Refer-To"),
        Some("<sip:carol@example.com>")
    );
    assert_eq!(
        refer.headers.get("Referred-By"),
        Some("<sip:agent7@example.com>")
    );
    ua.handle_text(S(2), &reply(&refer, 202, "Accepted", "", ""));
    let notify = |seq: u32, frag: &str, state: &str| {
        format!(
            "NOTIFY sip:x@h.invalid SIP/2.0\r\nVia: SIP/2.0/WSS edge.example.com;branch=z9hG4bKn{seq}\r\nMax-Forwards: 69\r\nFrom: <sip:bob@example.com>;tag=pbx-tag-1\r\nTo: <sip:bob@example.com>;tag={}\r\nCall-ID: {}\r\nCSeq: {seq} NOTIFY\r\nEvent: refer\r\nSubscription-State: {state}\r\nContent-Type: message/sipfrag;version=2.0\r\nContent-Length: {}\r\n\r\n{frag}",
            invite.headers.from().unwrap().tag().unwrap(),
            invite.headers.call_id().unwrap(),
            frag.len()
        )
    };
    ua.handle_text(
        S(3),
        &notify(1, "SIP/2.0 100 Trying\r\n", "active;expires=60"),
    );
    ua.handle_text(
        S(4),
        &notify(2, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource"),
    );
    assert_eq!(
        events(&mut ua),
        [
            Event::TransferProgress {
                call,
                code: 202,
                done: false
            },
            Event::TransferProgress {
                call,
                code: 100,
                done: false
            },
            Event::TransferProgress {
                call,
                code: 200,
                done: true
            },
        ]
    );
    let codes: Vec<u16> = sent(&mut ua).iter().map(|m| response(m).code).collect();
    assert_eq!(codes, [200, 200]);
}

#[test]
fn attended_transfer_refer_to_carries_replaces_and_the_target_matches_it() {
    // Transferor: call A (to bob) and consultation B (to carol).
    let mut ua = ua();
    let (a, inv_a) = outgoing_call(&mut ua);
    ua.handle_text(S(1), &reply(&inv_a, 200, "OK", "", ANSWER));
    let b = ua.call(S(2), "sip:carol@example.com", OFFER).unwrap();
    let inv_b = request(&sent(&mut ua).pop().unwrap());
    ua.handle_text(S(2), &reply(&inv_b, 200, "OK", "", ANSWER));
    sent(&mut ua);
    events(&mut ua);
    ua.transfer_attended(S(3), a, b).unwrap();
    let refer = request(&sent(&mut ua)[0]);
    let refer_to = refer.headers.name_addrs("Refer-To").unwrap().remove(0);
    let uri = refer_to.sip_uri().unwrap();
    assert_eq!(uri.host, "example.com");
    let replaces = uri.header("Replaces").unwrap();
    let from_tag = inv_b.headers.from().unwrap().tag().unwrap().to_owned();
    assert_eq!(
        replaces,
        format!(
            "{};to-tag=pbx-tag-1;from-tag={from_tag}",
            inv_b.headers.call_id().unwrap()
        )
    );

    // Transferee side: a REFER arrives in an established incoming call; it calls the target,
    // and the INVITE carries the Replaces header taken from the Refer-To.
    let mut bob = ua_named(7);
    let (call, out) = incoming_call(&mut bob, S(0), "z9hG4bKb1", "bob-1");
    let to_tag = to_tag_of(&out[1]);
    answer_and_ack(&mut bob, S(0), call, &to_tag, "bob-1");
    let refer_to_text = refer.headers.get("Refer-To").unwrap();
    bob.handle_text(
        S(1),
        &in_dialog_from_phone(
            "REFER",
            21,
            &to_tag,
            "bob-1",
            &format!("Refer-To: {refer_to_text}\r\n"),
            "",
        ),
    );
    let out = sent(&mut bob);
    assert_eq!(response(&out[0]).code, 202);
    let notify = request(&out[1]);
    assert_eq!(notify.method, Method::Notify);
    assert_eq!(notify.body, b"SIP/2.0 100 Trying\r\n");
    let Event::TransferRequested { call: c, target } = events(&mut bob).remove(0) else {
        panic!()
    };
    assert_eq!(c, call);
    bob.call(S(2), &target, OFFER).unwrap();
    let invite = request(&sent(&mut bob)[0]);
    assert_eq!(invite.uri.to_string(), "sip:carol@example.com");
    assert_eq!(invite.headers.get("Replaces"), Some(replaces.as_str()));
    bob.notify_transfer(S(3), call, 200).unwrap();
    let final_notify = request(&sent(&mut bob)[0]);
    assert!(
        final_notify
            .headers
            .get("Subscription-State")
            .unwrap()
            .starts_with("terminated")
    );

    // The transfer target (carol) matches Replaces to her dialog with the transferor.
    let mut carol = ua_named(9);
    let (consult, out) = incoming_call(&mut carol, S(0), "z9hG4bKc1", "carol-1");
    let carol_tag = to_tag_of(&out[1]);
    carol.answer(S(0), consult, OFFER).unwrap();
    sent(&mut carol);
    let with_replaces = incoming_invite("z9hG4bKc2", "carol-2").replace(
        "Content-Type:",
        &format!("Replaces: carol-1;to-tag={carol_tag};from-tag=phone-tag\r\nContent-Type:"),
    );
    carol.handle_text(S(1), &with_replaces);
    let Event::IncomingCall { replaces, .. } = events(&mut carol).remove(0) else {
        panic!()
    };
    assert_eq!(replaces, Some(consult));
    let unknown = incoming_invite("z9hG4bKc3", "carol-3").replace(
        "Content-Type:",
        "Replaces: nope;to-tag=a;from-tag=b\r\nContent-Type:",
    );
    sent(&mut carol);
    carol.handle_text(S(1), &unknown);
    assert_eq!(response(&sent(&mut carol)[0]).code, 481);
}

fn ua_named(seed: u64) -> UserAgent {
    UserAgent::new(UaConfig::new("sip:other@example.com", None, seed), S(0))
}

#[test]
fn malformed_input_is_reported_and_answered() {
    let mut ua = ua();
    ua.handle_text(S(0), "garbage\r\n\r\n");
    assert!(matches!(events(&mut ua)[0], Event::Malformed { .. }));
    let mismatch = "OPTIONS sip:x@h.invalid SIP/2.0\r\nVia: SIP/2.0/WSS e.example.com;branch=z9hG4bKm\r\nMax-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@h.invalid>\r\nCall-ID: m1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    ua.handle_text(S(0), mismatch);
    assert_eq!(response(&sent(&mut ua)[0]).code, 400);
    let options = mismatch.replace("1 INVITE", "1 OPTIONS");
    ua.handle_text(S(0), &options);
    assert_eq!(response(&sent(&mut ua)[0]).code, 200);
}

/// An INVITE for a new dialog (`call_id`) carrying `replaces` (the header's value or values).
fn invite_with_replaces(branch: &str, call_id: &str, replaces: &[&str]) -> String {
    let headers: String = replaces
        .iter()
        .map(|r| format!("Replaces: {r}\r\n"))
        .collect();
    incoming_invite(branch, call_id).replace("Content-Type:", &format!("{headers}Content-Type:"))
}

/// carol with one answered, ACKed incoming call (`carol-1`); returns it and her tag.
fn carol_in_a_call() -> (UserAgent, CallHandle, String) {
    let mut carol = ua_named(9);
    let (call, out) = incoming_call(&mut carol, S(0), "z9hG4bKc1", "carol-1");
    let tag = to_tag_of(&out[1]);
    answer_and_ack(&mut carol, S(0), call, &tag, "carol-1");
    events(&mut carol);
    (carol, call, tag)
}

#[test]
fn replaces_a_confirmed_dialog_answering_the_new_call_sends_bye_on_the_old() {
    let (mut carol, consult, tag) = carol_in_a_call();
    let replaces = format!("carol-1;to-tag={tag};from-tag=phone-tag");
    carol.handle_text(
        S(1),
        &invite_with_replaces("z9hG4bKc2", "carol-2", &[&replaces]),
    );
    let out = sent(&mut carol);
    assert_eq!(response(&out[0]).code, 100);
    assert_eq!(response(&out[1]).code, 180);
    let Event::IncomingCall { call, replaces, .. } = events(&mut carol).remove(0) else {
        panic!()
    };
    assert_eq!(replaces, Some(consult));
    // Nothing happens to the old call until the new one is answered.
    assert!(sent(&mut carol).is_empty());
    carol.answer(S(2), call, OFFER).unwrap();
    let out = sent(&mut carol);
    assert_eq!(response(&out[0]).code, 200);
    let bye = request(&out[1]);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.headers.call_id().unwrap(), "carol-1");
    assert_eq!(
        events(&mut carol),
        [Event::Ended {
            call: consult,
            reason: EndReason::Replaced
        }]
    );
    assert!(carol.has_call(call));
}

#[test]
fn replaces_with_early_only_on_a_confirmed_dialog_is_486_and_a_repeat_after_the_end_603() {
    let (mut carol, consult, tag) = carol_in_a_call();
    let early_only = format!("carol-1;to-tag={tag};from-tag=phone-tag;early-only");
    carol.handle_text(
        S(1),
        &invite_with_replaces("z9hG4bKc2", "carol-2", &[&early_only]),
    );
    assert_eq!(response(&sent(&mut carol)[0]).code, 486);
    assert!(events(&mut carol).is_empty());
    // The dialog is over (hung up, its transactions done): the same Replaces is declined.
    carol.hangup(S(2), consult).unwrap();
    carol.handle_timeout(S(100));
    sent(&mut carol);
    events(&mut carol);
    let replaces = format!("carol-1;to-tag={tag};from-tag=phone-tag");
    carol.handle_text(
        S(101),
        &invite_with_replaces("z9hG4bKc3", "carol-3", &[&replaces]),
    );
    assert_eq!(response(&sent(&mut carol)[0]).code, 603);
    assert!(events(&mut carol).is_empty());
}

#[test]
fn replaces_of_an_early_dialog_we_did_not_initiate_is_481_and_leaves_it_ringing() {
    let mut carol = ua_named(9);
    let (ringing, out) = incoming_call(&mut carol, S(0), "z9hG4bKc1", "carol-1");
    let tag = to_tag_of(&out[1]);
    let replaces = format!("carol-1;to-tag={tag};from-tag=phone-tag");
    carol.handle_text(
        S(1),
        &invite_with_replaces("z9hG4bKc2", "carol-2", &[&replaces]),
    );
    assert_eq!(response(&sent(&mut carol)[0]).code, 481);
    assert!(events(&mut carol).is_empty());
    carol.answer(S(2), ringing, OFFER).unwrap();
    assert_eq!(response(&sent(&mut carol)[0]).code, 200);
}

#[test]
fn replaces_of_our_own_early_dialog_is_accepted_and_cancels_it() {
    let mut ua = ua();
    let (old, invite) = outgoing_call(&mut ua);
    ua.handle_text(S(0), &reply(&invite, 180, "Ringing", "", ""));
    events(&mut ua);
    let from_tag = invite.headers.from().unwrap().tag().unwrap().to_owned();
    let replaces = format!(
        "{};to-tag={from_tag};from-tag=pbx-tag-1",
        invite.headers.call_id().unwrap()
    );
    ua.handle_text(
        S(1),
        &invite_with_replaces("z9hG4bKr1", "new-1", &[&replaces]),
    );
    assert_eq!(
        sent(&mut ua)
            .iter()
            .map(|m| response(m).code)
            .collect::<Vec<_>>(),
        [100, 180]
    );
    let Event::IncomingCall { call, replaces, .. } = events(&mut ua).remove(0) else {
        panic!()
    };
    assert_eq!(replaces, Some(old));
    ua.answer(S(2), call, OFFER).unwrap();
    let out = sent(&mut ua);
    assert_eq!(response(&out[0]).code, 200);
    let cancel = request(&out[1]);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.call_id().unwrap(),
        invite.headers.call_id().unwrap()
    );
    assert_eq!(
        events(&mut ua),
        [Event::Ended {
            call: old,
            reason: EndReason::Replaced
        }]
    );
}

#[test]
fn malformed_replaces_is_400_and_an_unknown_dialog_481() {
    let (mut carol, consult, tag) = carol_in_a_call();
    let good = format!("carol-1;to-tag={tag};from-tag=phone-tag");
    for (i, values) in [
        vec![good.as_str(), good.as_str()],
        vec!["carol-1;to-tag=abc"],
        vec![";to-tag=a;from-tag=b"],
    ]
    .iter()
    .enumerate()
    {
        carol.handle_text(
            S(1),
            &invite_with_replaces(&format!("z9hG4bKm{i}"), &format!("m-{i}"), values),
        );
        assert_eq!(response(&sent(&mut carol)[0]).code, 400, "{values:?}");
    }
    // Tags swapped (from the other side's view): no such dialog here.
    let swapped = format!("carol-1;to-tag=phone-tag;from-tag={tag}");
    carol.handle_text(S(1), &invite_with_replaces("z9hG4bKm9", "m-9", &[&swapped]));
    assert_eq!(response(&sent(&mut carol)[0]).code, 481);
    // Replaces outside an INVITE.
    carol.handle_text(
        S(1),
        &in_dialog_from_phone(
            "INFO",
            21,
            &tag,
            "carol-1",
            &format!("Replaces: {good}\r\n"),
            "",
        ),
    );
    assert_eq!(response(&sent(&mut carol)[0]).code, 400);
    assert!(events(&mut carol).is_empty());
    assert!(carol.has_call(consult));
}

/// Bob's established incoming call `bob-1` and a REFER in it to `refer_to`; returns the UA, the
/// call and its To tag, with the 202 and the NOTIFY `100 Trying` checked.
fn bob_referred(refer_to: &str) -> (UserAgent, CallHandle, String) {
    let mut bob = ua_named(7);
    let (call, out) = incoming_call(&mut bob, S(0), "z9hG4bKb1", "bob-1");
    let to_tag = to_tag_of(&out[1]);
    answer_and_ack(&mut bob, S(0), call, &to_tag, "bob-1");
    bob.handle_text(
        S(1),
        &in_dialog_from_phone(
            "REFER",
            21,
            &to_tag,
            "bob-1",
            &format!("Refer-To: {refer_to}\r\nReferred-By: <sip:alice@192.0.2.9>\r\n"),
            "",
        ),
    );
    let out = sent(&mut bob);
    assert_eq!(response(&out[0]).code, 202);
    let trying = request(&out[1]);
    assert_eq!(trying.method, Method::Notify);
    assert_eq!(trying.headers.get("Event"), Some("refer"));
    assert_eq!(trying.body, b"SIP/2.0 100 Trying\r\n");
    (bob, call, to_tag)
}

/// A NOTIFY of the refer subscription in dialog `bob-1` with this sipfrag, and whether it ends
/// the subscription.
#[track_caller]
fn assert_sipfrag(text: &str, sipfrag: &str, terminated: bool) {
    let notify = request(text);
    assert_eq!(notify.method, Method::Notify);
    assert_eq!(notify.headers.call_id().ok(), Some("bob-1"));
    assert_eq!(notify.headers.get("Event"), Some("refer"));
    assert_eq!(
        notify.headers.get("Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    assert_eq!(String::from_utf8_lossy(&notify.body), sipfrag);
    let state = notify.headers.get("Subscription-State").unwrap();
    assert_eq!(state.starts_with("terminated"), terminated, "{state}");
}

#[test]
fn being_transferred_calls_the_target_with_replaces_notifies_200_and_ends_the_old_call_by_bye() {
    let (mut bob, call, _) =
        bob_referred("<sip:carol@example.com?Replaces=consult-9%3Bto-tag%3Dc1%3Bfrom-tag%3Da1>");
    let Event::TransferRequested { call: c, target } = events(&mut bob).remove(0) else {
        panic!()
    };
    assert_eq!(c, call);
    assert!(
        target.starts_with("sip:carol@example.com?Replaces="),
        "{target}"
    );
    let new = bob.accept_transfer(S(2), call, OFFER).unwrap();
    assert_ne!(new, call);
    // RFC 3891 §1: the Refer-To's Replaces header goes into the INVITE.
    let invite = request(&sent(&mut bob)[0]);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(invite.uri.to_string(), "sip:carol@example.com");
    assert_eq!(
        invite.headers.get("Replaces"),
        Some("consult-9;to-tag=c1;from-tag=a1")
    );
    assert_ne!(invite.headers.call_id().ok(), Some("bob-1"));
    // One transfer per REFER: a second accept has nothing to act on.
    assert!(bob.accept_transfer(S(2), call, OFFER).is_err());

    bob.handle_text(S(3), &reply(&invite, 180, "Ringing", "", ""));
    assert_eq!(
        events(&mut bob),
        [Event::Ringing {
            call: new,
            sdp: None
        }]
    );
    assert!(
        sent(&mut bob).is_empty(),
        "no NOTIFY for 180 (only 100 and the final one)"
    );
    bob.handle_text(S(4), &ok_with_answer(&invite));
    assert_eq!(
        events(&mut bob),
        [
            Event::Answered {
                call: new,
                sdp: Some(ANSWER.into())
            },
            Event::Transferred {
                from: call,
                to: new
            },
            Event::Ended {
                call,
                reason: EndReason::Transferred
            },
        ]
    );
    let out = sent(&mut bob);
    assert_eq!(request(&out[0]).method, Method::Ack);
    assert_sipfrag(&out[1], "SIP/2.0 200 OK\r\n", true);
    let bye = request(&out[2]);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.headers.call_id().ok(), Some("bob-1"));
    assert_eq!(out.len(), 3);
    assert!(!bob.has_call(call));
    assert!(bob.has_call(new));
}

#[test]
fn being_transferred_to_a_busy_target_notifies_486_and_keeps_the_old_call() {
    let (mut bob, call, to_tag) = bob_referred("<sip:dave@example.com>");
    events(&mut bob);
    let new = bob.accept_transfer(S(2), call, OFFER).unwrap();
    let invite = request(&sent(&mut bob)[0]);
    assert_eq!(invite.uri.to_string(), "sip:dave@example.com");
    assert_eq!(invite.headers.get("Replaces"), None);
    bob.handle_text(S(3), &reply(&invite, 486, "Busy Here", "", ""));
    assert_eq!(
        events(&mut bob),
        [Event::Ended {
            call: new,
            reason: EndReason::Rejected {
                code: 486,
                reason: "Busy Here".into()
            }
        }]
    );
    let out = sent(&mut bob);
    let notify = out
        .iter()
        .find(|m| m.starts_with("NOTIFY"))
        .expect("a final NOTIFY");
    assert_sipfrag(notify, "SIP/2.0 486 Busy Here\r\n", true);
    assert!(!out.iter().any(|m| m.starts_with("BYE")));
    // The old call goes on: it still takes in-dialog requests, and no REFER is pending.
    assert!(bob.has_call(call));
    assert!(bob.accept_transfer(S(4), call, OFFER).is_err());
    bob.handle_text(
        S(5),
        &in_dialog_from_phone("BYE", 22, &to_tag, "bob-1", "", ""),
    );
    assert_ended(&mut bob, call, EndReason::RemoteHangup);
}

#[test]
fn a_declined_transfer_notifies_its_code_and_no_transfer_without_a_refer() {
    let (mut bob, call, _) = bob_referred("<sip:erin@example.com>");
    events(&mut bob);
    bob.decline_transfer(S(2), call, 603).unwrap();
    assert_sipfrag(&sent(&mut bob)[0], "SIP/2.0 603 Decline\r\n", true);
    assert!(bob.accept_transfer(S(3), call, OFFER).is_err());
    assert!(bob.has_call(call));

    let mut carol = ua_named(9);
    let (other, out) = incoming_call(&mut carol, S(0), "z9hG4bKc1", "carol-1");
    let tag = to_tag_of(&out[1]);
    answer_and_ack(&mut carol, S(0), other, &tag, "carol-1");
    assert!(carol.accept_transfer(S(1), other, OFFER).is_err());
    assert!(sent(&mut carol).is_empty());
}
