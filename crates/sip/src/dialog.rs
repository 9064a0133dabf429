//! Dialogs (RFC 3261 §12): identity, route set, remote target and CSeq, and building the
//! requests sent inside one.

use crate::error::ParseError;
use crate::header::{Method, NameAddr};
use crate::message::{Request, Response};
use crate::uri::Uri;

/// One dialog's state, from this UA's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// Our URI (From of our requests), without tag.
    pub local_uri: NameAddr,
    /// The peer's URI (To of our requests), without tag.
    pub remote_uri: NameAddr,
    /// Where our requests go: the peer's Contact (updated by target refreshes).
    pub remote_target: Uri,
    /// Route set from Record-Route (RFC 3261 §12.1.1 / §12.1.2), in the order our requests
    /// carry it.
    pub route_set: Vec<String>,
    /// The last CSeq we used.
    pub local_seq: u32,
    /// The highest CSeq received from the peer.
    pub remote_seq: Option<u32>,
}

fn contact_uri(headers: &crate::message::Headers) -> Result<Uri, ParseError> {
    headers
        .name_addrs("Contact")?
        .into_iter()
        .next()
        .map(|c| c.uri)
        .ok_or(ParseError::MissingHeader("Contact"))
}

fn strip_tag(mut n: NameAddr) -> NameAddr {
    n.params.remove("tag");
    n
}

impl Dialog {
    /// The UAC side, from our INVITE (or REFER...) and a 1xx-with-tag or 2xx response
    /// (RFC 3261 §12.1.2): route set = Record-Route reversed, remote target = Contact.
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, ParseError> {
        let from = request.headers.from()?;
        let to = response.headers.to()?;
        let mut route_set: Vec<String> = response
            .headers
            .all("Record-Route")
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        Ok(Dialog {
            call_id: request.headers.call_id()?.to_owned(),
            local_tag: from.tag().unwrap_or_default().to_owned(),
            remote_tag: to
                .tag()
                .ok_or_else(|| ParseError::header("To", "no tag in a dialog-creating response"))?
                .to_owned(),
            local_uri: strip_tag(from),
            remote_uri: strip_tag(to),
            remote_target: contact_uri(&response.headers)?,
            route_set,
            local_seq: request.headers.cseq()?.seq,
            remote_seq: None,
        })
    }

    /// The UAS side, from a received INVITE and our tag (RFC 3261 §12.1.1): route set =
    /// Record-Route in order, remote target = Contact.
    pub fn uas(request: &Request, local_tag: &str) -> Result<Dialog, ParseError> {
        let from = request.headers.from()?;
        let to = request.headers.to()?;
        Ok(Dialog {
            call_id: request.headers.call_id()?.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: from.tag().unwrap_or_default().to_owned(),
            local_uri: strip_tag(to),
            remote_uri: strip_tag(from),
            remote_target: contact_uri(&request.headers)?,
            route_set: request
                .headers
                .all("Record-Route")
                .map(str::to_owned)
                .collect(),
            local_seq: 0,
            remote_seq: Some(request.headers.cseq()?.seq),
        })
    }

    /// Whether a received request belongs to this dialog (Call-ID, To tag = ours, From tag =
    /// theirs; RFC 3261 §12.2.2).
    pub fn matches_request(&self, request: &Request) -> bool {
        let (Ok(id), Ok(from), Ok(to)) = (
            request.headers.call_id(),
            request.headers.from(),
            request.headers.to(),
        ) else {
            return false;
        };
        id == self.call_id
            && to.tag() == Some(self.local_tag.as_str())
            && from.tag() == Some(self.remote_tag.as_str())
    }

    /// Checks an in-dialog request's CSeq (RFC 3261 §12.2.2: lower than the last one → 500)
    /// and records it. Returns `false` when it is out of order.
    pub fn accept_remote_seq(&mut self, seq: u32) -> bool {
        match self.remote_seq {
            Some(last) if seq < last => false,
            _ => {
                self.remote_seq = Some(seq);
                true
            }
        }
    }

    /// Replaces the remote target from a target refresh (re-INVITE or its 2xx, RFC 3261
    /// §12.2.1.2, §12.2.2).
    pub fn refresh_target(&mut self, headers: &crate::message::Headers) {
        if let Ok(uri) = contact_uri(headers) {
            self.remote_target = uri;
        }
    }

    /// A request inside the dialog (RFC 3261 §12.2.1.1) with the given top Via value. CSeq is
    /// incremented except for ACK and CANCEL, which reuse `cseq_for_ack`. With a loose-routing
    /// first route (`;lr`) the Request-URI is the remote target and Route the route set;
    /// otherwise (strict routing) the first route becomes the Request-URI and the remote target
    /// the last Route.
    pub fn request(&mut self, method: Method, via: &str, cseq_for_ack: Option<u32>) -> Request {
        let seq = match (&method, cseq_for_ack) {
            (Method::Ack | Method::Cancel, Some(seq)) => seq,
            _ => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        let (uri, routes) = self.request_target();
        let mut r = Request::new(method.clone(), uri);
        r.headers.push("Via", via);
        r.headers.push("Max-Forwards", "70");
        for route in routes {
            r.headers.push("Route", route);
        }
        let mut to = self.remote_uri.clone();
        to.params.set("tag", Some(&self.remote_tag));
        let mut from = self.local_uri.clone();
        from.params.set("tag", Some(&self.local_tag));
        r.headers.push("From", from.to_string());
        r.headers.push("To", to.to_string());
        r.headers.push("Call-ID", self.call_id.clone());
        r.headers.push("CSeq", format!("{seq} {method}"));
        r
    }

    fn request_target(&self) -> (Uri, Vec<String>) {
        let first = self.route_set.first().and_then(|r| NameAddr::parse(r).ok());
        match first {
            Some(route) if !route.sip_uri().is_some_and(|u| u.params.has("lr")) => {
                // Strict routing (RFC 3261 §12.2.1.1).
                let uri = match route.uri {
                    Uri::Sip(u) => Uri::Sip(u.without_headers()),
                    other => other,
                };
                let mut rest: Vec<String> = self.route_set[1..].to_vec();
                rest.push(format!("<{}>", self.remote_target));
                (uri, rest)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn parse(text: &str) -> Message {
        Message::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/WSS a.invalid;branch=z9hG4bK1;rport
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.com>;tag=ali
To: <sip:bob@example.com>
Call-ID: call-1
CSeq: 10 INVITE
Contact: <sip:x@a.invalid;transport=ws;ob>
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;transport=ws;lr>
Content-Length: 0

";

    #[test]
    fn uac_route_set_is_reversed_and_uas_keeps_order() {
        let Message::Request(invite) = parse(INVITE) else {
            panic!()
        };
        let mut ok = Response::to_request(&invite, 200, "OK", Some("bobtag"));
        for rr in invite.headers.all("Record-Route") {
            ok.headers.push("Record-Route", rr);
        }
        ok.headers.push("Contact", "<sip:bob@192.0.2.4:5060>");
        let mut d = Dialog::uac(&invite, &ok).unwrap();
        assert_eq!(
            d.route_set,
            [
                "<sip:p1.example.com;transport=ws;lr>",
                "<sip:p2.example.com;lr>"
            ]
        );
        assert_eq!(d.remote_target.to_string(), "sip:bob@192.0.2.4:5060");
        let bye = d.request(Method::Bye, "SIP/2.0/WSS a.invalid;branch=z9hG4bK2", None);
        assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.4:5060");
        assert_eq!(bye.headers.cseq().unwrap().seq, 11);
        assert_eq!(bye.headers.to().unwrap().tag(), Some("bobtag"));
        assert_eq!(bye.headers.from().unwrap().tag(), Some("ali"));
        assert_eq!(
            bye.headers.all("Route").next(),
            Some("<sip:p1.example.com;transport=ws;lr>")
        );
        let ack = d.request(
            Method::Ack,
            "SIP/2.0/WSS a.invalid;branch=z9hG4bK3",
            Some(10),
        );
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "10 ACK");

        let mut uas = Dialog::uas(&invite, "bobtag").unwrap();
        assert_eq!(uas.route_set[0], "<sip:p2.example.com;lr>");
        assert_eq!(
            uas.remote_target.to_string(),
            "sip:x@a.invalid;transport=ws;ob"
        );
        assert!(!uas.accept_remote_seq(9));
        assert!(uas.accept_remote_seq(11));
        let bye = uas.request(Method::Bye, "SIP/2.0/WSS b.invalid;branch=z9hG4bK4", None);
        assert_eq!(bye.headers.cseq().unwrap().seq, 1);
        assert_eq!(bye.headers.to().unwrap().tag(), Some("ali"));
    }

    #[test]
    fn strict_routing() {
        let Message::Request(mut invite) = parse(INVITE) else {
            panic!()
        };
        invite.headers.remove("Record-Route");
        invite
            .headers
            .push("Record-Route", "<sip:strict.example.com>");
        let mut d = Dialog::uas(&invite, "t").unwrap();
        let bye = d.request(Method::Bye, "SIP/2.0/WSS b.invalid;branch=z9hG4bK5", None);
        assert_eq!(bye.uri.to_string(), "sip:strict.example.com");
        assert_eq!(
            bye.headers.all("Route").last(),
            Some("<sip:x@a.invalid;transport=ws;ob>")
        );
    }
}
