//! RFC 4475 §3.1.1 (valid) and §3.1.2 (invalid) torture messages from `rfc4475.txt`: every
//! valid one parses and validates; every invalid one is rejected with an error naming the
//! problem, by the parser (syntax) or by `Message::validate` (semantic).

use switchboard_sip::{Message, Method, ParseError};

struct Case {
    valid: bool,
    name: String,
    section: String,
    semantic: bool,
    expected: Option<String>,
    bytes: Vec<u8>,
}

/// Expands the RFC 4475 §2 conventions: `<allOneLine>`, `<hex>`, `<repeat count=N>`.
fn expand(lines: &[&str]) -> Vec<u8> {
    let mut text = String::new();
    let mut one_line = false;
    for line in lines {
        match *line {
            "<allOneLine>" => one_line = true,
            "</allOneLine>" => {
                one_line = false;
                text.push_str("\r\n");
            }
            l if one_line => text.push_str(l),
            l => {
                text.push_str(l);
                text.push_str("\r\n");
            }
        }
    }
    while let Some(start) = text.find("<repeat count=") {
        let count_end = start + text[start..].find('>').unwrap();
        let count: usize = text[start + 14..count_end].parse().unwrap();
        let end = start + text[start..].find("</repeat>").unwrap();
        let unit = text[count_end + 1..end].to_owned();
        text.replace_range(start..end + 9, &unit.repeat(count));
    }
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<hex>") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let end = start + rest[start..].find("</hex>").unwrap();
        let hex = &rest[start + 5..end];
        for i in (0..hex.len()).step_by(2) {
            out.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
        }
        rest = &rest[end + 6..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn cases() -> Vec<Case> {
    let text = include_str!("rfc4475.txt");
    let mut cases = Vec::new();
    let mut current: Option<(Vec<String>, Option<String>, Vec<&str>)> = None;
    let mut flush = |current: Option<(Vec<String>, Option<String>, Vec<&str>)>| {
        if let Some((words, expected, lines)) = current {
            cases.push(Case {
                valid: words[0] == "valid",
                name: words[1].clone(),
                section: words[2].clone(),
                semantic: words.get(3).is_some_and(|w| w == "semantic"),
                expected,
                bytes: expand(&lines),
            });
        }
    };
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("%%% ") {
            flush(current.take());
            let (words, expected) = match spec.split_once(" | ") {
                Some((w, e)) => (w, Some(e.to_owned())),
                None => (spec, None),
            };
            current = Some((
                words.split(' ').map(str::to_owned).collect(),
                expected,
                Vec::new(),
            ));
        } else if let Some((_, _, lines)) = &mut current {
            lines.push(line);
        }
    }
    flush(current);
    cases
}

#[test]
fn the_data_file_has_every_message_of_3_1() {
    let cases = cases();
    assert_eq!(
        cases.iter().filter(|c| c.valid).count(),
        13,
        "§3.1.1 has 13 messages"
    );
    assert_eq!(
        cases.iter().filter(|c| !c.valid).count(),
        19,
        "§3.1.2 has 19 messages"
    );
}

#[test]
fn valid_messages_parse_and_validate() {
    for case in cases().iter().filter(|c| c.valid) {
        let msg = Message::parse(&case.bytes)
            .unwrap_or_else(|e| panic!("{} (§{}) should parse: {e}", case.name, case.section));
        msg.validate()
            .unwrap_or_else(|e| panic!("{} (§{}) should validate: {e}", case.name, case.section));
        // What we send back parses to the same message.
        let again = Message::parse(&msg.to_bytes())
            .unwrap_or_else(|e| panic!("{} re-serialized does not parse: {e}", case.name));
        assert_eq!(
            again.headers().call_id(),
            msg.headers().call_id(),
            "{}",
            case.name
        );
    }
}

#[test]
fn invalid_messages_are_rejected_with_a_clear_error() {
    for case in cases().iter().filter(|c| !c.valid) {
        let error = if case.semantic {
            let msg = Message::parse(&case.bytes).unwrap_or_else(|e| {
                panic!("{} (§{}) is well-formed, got: {e}", case.name, case.section)
            });
            msg.validate().err().unwrap_or_else(|| {
                panic!("{} (§{}) should fail validation", case.name, case.section)
            })
        } else {
            Message::parse(&case.bytes)
                .err()
                .unwrap_or_else(|| panic!("{} (§{}) should not parse", case.name, case.section))
        };
        let text = error.to_string();
        if let Some(expected) = &case.expected {
            assert!(
                text.contains(expected.as_str()),
                "{} (§{}): error `{text}` should mention `{expected}`",
                case.name,
                case.section
            );
        }
    }
}

fn parse(name: &str) -> Message {
    let case = cases().into_iter().find(|c| c.name == name).unwrap();
    Message::parse(&case.bytes).unwrap()
}

#[test]
fn wsinv_fields() {
    let Message::Request(r) = parse("wsinv") else {
        panic!()
    };
    assert_eq!(r.method, Method::Invite);
    assert_eq!(
        r.uri.to_string(),
        "sip:vivekg@chair-dnrc.example.com;unknownparam"
    );
    let to = r.headers.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = r.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.get("Max-Forwards"), Some("0068"));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].host.as_str(), vias[0].branch()),
        ("192.0.2.2", Some("390skdjuw"))
    );
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(r.headers.get("Subject"), Some(""));
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        r.headers.get("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let contact = &r.headers.name_addrs("Contact").unwrap()[0];
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.params.get("newparam"), Some("newvalue"));
    assert_eq!(contact.params.get("secondparam"), Some(""));
    assert_eq!(contact.params.get("q"), Some("0.33"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn other_valid_details() {
    let Message::Request(r) = parse("intmeth") else {
        panic!()
    };
    assert_eq!(
        r.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert_eq!(
        r.headers.to().unwrap().display.as_deref(),
        Some("BEL:\u{7} NUL:\0 DEL:\u{7f}")
    );
    assert_eq!(
        r.headers
            .from()
            .unwrap()
            .params
            .get_unquoted("fromParam''~+*_!.-%")
            .as_deref(),
        Some("работающий")
    );
    let Message::Request(r) = parse("esc01") else {
        panic!()
    };
    let to = r.headers.to().unwrap();
    assert_eq!(
        to.sip_uri().unwrap().user_unescaped().as_deref(),
        Some("user")
    );
    let Message::Request(r) = parse("esc02") else {
        panic!()
    };
    assert_eq!(
        r.headers.name_addrs("Contact").unwrap().len(),
        2,
        "C%6Fntact is another header"
    );
    let Message::Request(r) = parse("longreq") else {
        panic!()
    };
    assert_eq!(r.headers.vias().unwrap().len(), 34);
    let Message::Request(r) = parse("dblreq") else {
        panic!()
    };
    assert_eq!(r.method, Method::Register);
    assert!(
        r.body.is_empty(),
        "the octets after Content-Length are ignored"
    );
    let Message::Request(r) = parse("semiuri") else {
        panic!()
    };
    assert_eq!(
        r.uri.as_sip().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    let Message::Request(r) = parse("transports") else {
        panic!()
    };
    let transports: Vec<_> = r
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let Message::Request(r) = parse("mpart01") else {
        panic!()
    };
    assert!(r.body.contains(&0x82) && r.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    let Message::Response(r) = parse("unreason") else {
        panic!()
    };
    assert!(r.reason.starts_with("= 2**3 * 5**2 но сто"));
    let Message::Response(r) = parse("noreason") else {
        panic!()
    };
    assert_eq!((r.code, r.reason.as_str()), (100, ""));
}

#[test]
fn error_kinds() {
    let find = |name: &str| cases().into_iter().find(|c| c.name == name).unwrap();
    assert!(matches!(
        Message::parse(&find("clerr").bytes),
        Err(ParseError::BodyTooShort { declared: 9999, .. })
    ));
    assert!(matches!(
        Message::parse(&find("bigcode").bytes),
        Err(ParseError::StatusCode(_))
    ));
    assert!(matches!(
        Message::parse(&find("lwsstart").bytes),
        Err(ParseError::StartLine(_))
    ));
    assert!(matches!(
        Message::parse(&find("ltgtruri").bytes),
        Err(ParseError::Uri { .. })
    ));
}
