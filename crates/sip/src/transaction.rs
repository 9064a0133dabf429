//! Transactions (RFC 3261 §17, with the RFC 6026 "Accepted" state) over a reliable transport.
//!
//! WebSocket is reliable (RFC 7118 §5), so nothing is retransmitted by the transaction layer:
//! Timers A, E and G never run, and D, I, J, K are zero (the Completed/Confirmed states end at
//! once). What remains: Timer B (INVITE client gives up in Calling) and F (non-INVITE client)
//! = 64·T1, Timer H (INVITE server waits for the ACK of a 3xx–6xx) = 64·T1, and the RFC 6026
//! Timers M (INVITE client absorbs 2xx retransmissions) and L (INVITE server absorbs INVITE
//! retransmissions after a 2xx) = 64·T1. Each machine is fed `now` and says when it next
//! needs waking ([`ClientTransaction::poll_timeout`]).

use std::time::Duration;

use crate::header::Method;
use crate::message::{Request, Response};

/// RFC 3261 §17.1.1.1 timer values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (500 ms).
    pub t1: Duration,
    /// Longest non-INVITE retransmit interval (4 s); caps the UAS 2xx retransmissions.
    pub t2: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, L, M (32 s by default).
    pub fn t64(&self) -> Duration {
        self.t1 * 64
    }
}

/// States of a client transaction (RFC 3261 Figures 5 and 6, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, nothing received (Timer B runs).
    Calling,
    /// Non-INVITE sent, nothing received (Timer F runs).
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// INVITE got a 2xx: further 2xx are passed up until Timer M.
    Accepted,
    /// Over.
    Terminated,
}

/// What a client transaction does with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAction {
    /// Pass the response to the transaction user (false for a retransmission it already saw).
    pub pass_up: bool,
    /// The ACK to send (INVITE with a 3xx–6xx final response, RFC 3261 §17.1.1.3).
    pub ack: Option<Request>,
}

/// The branch of `request`'s top Via; empty when it has none.
fn top_branch(request: &Request) -> String {
    request
        .headers
        .top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_owned))
        .unwrap_or_default()
}

/// A client transaction: the request, its branch and the state machine.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    /// The request as sent.
    pub request: Request,
    /// The branch of its top Via.
    pub branch: String,
    state: ClientState,
    deadline: Option<Duration>,
    timers: Timers,
}

impl ClientTransaction {
    /// Starts a transaction for `request` (already carrying its Via branch) sent at `now`.
    pub fn new(request: Request, now: Duration, timers: Timers) -> ClientTransaction {
        let branch = top_branch(&request);
        let state = if request.method == Method::Invite {
            ClientState::Calling
        } else {
            ClientState::Trying
        };
        ClientTransaction {
            request,
            branch,
            state,
            deadline: Some(now + timers.t64()),
            timers,
        }
    }

    /// The state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether `response` belongs here (RFC 3261 §17.1.3: top Via branch and CSeq method).
    pub fn matches(&self, response: &Response) -> bool {
        let branch_ok = response
            .headers
            .top_via()
            .ok()
            .is_some_and(|v| v.branch() == Some(self.branch.as_str()));
        let method_ok = response
            .headers
            .cseq()
            .is_ok_and(|c| c.method == self.request.method);
        branch_ok && method_ok
    }

    /// Feeds a matching response.
    pub fn on_response(&mut self, now: Duration, response: &Response) -> ClientAction {
        let invite = self.request.method == Method::Invite;
        let code = response.code;
        let none = ClientAction {
            pass_up: false,
            ack: None,
        };
        match self.state {
            ClientState::Terminated => none,
            ClientState::Accepted => ClientAction {
                // RFC 6026 §8.4: 2xx retransmissions go to the TU (which ACKs again).
                pass_up: (200..300).contains(&code),
                ack: None,
            },
            ClientState::Calling | ClientState::Trying | ClientState::Proceeding => {
                if code < 200 {
                    self.state = ClientState::Proceeding;
                    if invite {
                        self.deadline = None; // Timer B runs only in Calling.
                    }
                    return ClientAction {
                        pass_up: true,
                        ack: None,
                    };
                }
                if invite && code < 300 {
                    self.state = ClientState::Accepted;
                    self.deadline = Some(now + self.timers.t64()); // Timer M
                    return ClientAction {
                        pass_up: true,
                        ack: None,
                    };
                }
                let ack = invite.then(|| self.ack_for(response));
                // Timer D / K are zero on a reliable transport.
                self.state = ClientState::Terminated;
                self.deadline = None;
                ClientAction { pass_up: true, ack }
            }
        }
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via,
    /// Call-ID, From, CSeq number and Route as the INVITE; To from the response.
    fn ack_for(&self, response: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        let h = &self.request.headers;
        if let Some(v) = h.get("Via") {
            ack.headers.push("Via", v);
        }
        for name in ["Max-Forwards", "From"] {
            if let Some(v) = h.get(name) {
                ack.headers.push(name, v);
            }
        }
        if let Some(to) = response.headers.get("To") {
            ack.headers.push("To", to);
        }
        if let Ok(id) = h.call_id() {
            ack.headers.push("Call-ID", id);
        }
        if let Ok(c) = h.cseq() {
            ack.headers.push("CSeq", format!("{} ACK", c.seq));
        }
        for r in h.all("Route") {
            ack.headers.push("Route", r);
        }
        ack
    }

    /// The next instant this transaction needs [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// Runs the timers due at `now`. Returns `true` when the transaction timed out without a
    /// final response (Timer B or F): the TU treats that as a 408 (RFC 3261 §8.1.3.1).
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        match self.deadline {
            Some(d) if d <= now => {
                let timed_out = matches!(
                    self.state,
                    ClientState::Calling | ClientState::Trying | ClientState::Proceeding
                );
                self.state = ClientState::Terminated;
                self.deadline = None;
                timed_out
            }
            _ => false,
        }
    }

    /// Whether it is over.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }
}

/// States of a server transaction (RFC 3261 Figures 7 and 8, RFC 6026 Figure 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE received, no response yet.
    Trying,
    /// INVITE received, or a provisional response sent.
    Proceeding,
    /// INVITE answered with 2xx (absorbs INVITE retransmissions until Timer L).
    Accepted,
    /// INVITE answered with 3xx–6xx: waiting for the ACK (Timer H).
    Completed,
    /// Over.
    Terminated,
}

/// A server transaction: the received request and the last response sent.
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    /// The request that created it.
    pub request: Request,
    /// Its top Via branch.
    pub branch: String,
    /// The last response sent (resent when the request is retransmitted).
    pub last_response: Option<Response>,
    state: ServerState,
    deadline: Option<Duration>,
    timers: Timers,
}

impl ServerTransaction {
    /// A transaction for a received `request`.
    pub fn new(request: Request, timers: Timers) -> ServerTransaction {
        let branch = top_branch(&request);
        let state = if request.method == Method::Invite {
            ServerState::Proceeding
        } else {
            ServerState::Trying
        };
        ServerTransaction {
            request,
            branch,
            last_response: None,
            state,
            deadline: None,
            timers,
        }
    }

    /// The state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Whether `request` belongs here (RFC 3261 §17.2.3: branch, sent-by and method, with ACK
    /// matching the INVITE). CANCEL is its own transaction and does not match.
    pub fn matches(&self, request: &Request) -> bool {
        let (Ok(mine), Ok(theirs)) = (self.request.headers.top_via(), request.headers.top_via())
        else {
            return false;
        };
        let method_ok = request.method == self.request.method
            || (request.method == Method::Ack && self.request.method == Method::Invite);
        theirs.branch() == Some(self.branch.as_str())
            && mine.host.eq_ignore_ascii_case(&theirs.host)
            && mine.port == theirs.port
            && method_ok
    }

    /// Records that `response` is being sent at `now`; returns it for sending.
    pub fn respond(&mut self, now: Duration, response: Response) -> Response {
        let code = response.code;
        let invite = self.request.method == Method::Invite;
        match self.state {
            ServerState::Trying | ServerState::Proceeding => {
                if code < 200 {
                    self.state = ServerState::Proceeding;
                } else if invite && code < 300 {
                    self.state = ServerState::Accepted;
                    self.deadline = Some(now + self.timers.t64()); // Timer L
                } else if invite {
                    self.state = ServerState::Completed;
                    self.deadline = Some(now + self.timers.t64()); // Timer H
                } else {
                    self.state = ServerState::Terminated; // Timer J = 0
                }
            }
            // RFC 6026 §8.7: the TU may pass 2xx retransmissions through Accepted.
            ServerState::Accepted | ServerState::Completed | ServerState::Terminated => {}
        }
        self.last_response = Some(response.clone());
        response
    }

    /// A retransmission of the request, or the ACK of a non-2xx final. Returns the response
    /// to resend, if any (RFC 3261 §17.2.1, §17.2.2).
    pub fn on_request(&mut self, request: &Request) -> Option<Response> {
        if request.method == Method::Ack {
            if self.state == ServerState::Completed {
                self.state = ServerState::Terminated; // Confirmed, Timer I = 0
                self.deadline = None;
            }
            return None;
        }
        match self.state {
            ServerState::Proceeding | ServerState::Completed | ServerState::Trying => {
                self.last_response.clone()
            }
            ServerState::Accepted | ServerState::Terminated => None,
        }
    }

    /// The next deadline.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    /// Runs timers. Returns `true` when Timer H fired (the ACK never came).
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        match self.deadline {
            Some(d) if d <= now => {
                let lost_ack = self.state == ServerState::Completed;
                self.state = ServerState::Terminated;
                self.deadline = None;
                lost_ack
            }
            _ => false,
        }
    }

    /// Whether it is over.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn req(method: &str) -> Request {
        let text = format!(
            "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bKx1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nRoute: <sip:edge.example.com;lr>\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn resp(r: &Request, code: u16) -> Response {
        Response::to_request(r, code, "x", Some("b"))
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn invite_client_timer_b_only_while_calling() {
        let t = Timers::default();
        let mut tx = ClientTransaction::new(req("INVITE"), S(0), t);
        assert_eq!(tx.poll_timeout(), Some(S(32)));
        assert!(!tx.handle_timeout(S(31)));
        assert!(tx.handle_timeout(S(32)), "Timer B fires in Calling");
        let mut tx = ClientTransaction::new(req("INVITE"), S(0), t);
        let r = tx.request.clone();
        assert!(tx.on_response(S(1), &resp(&r, 180)).pass_up);
        assert_eq!(tx.poll_timeout(), None, "no Timer B in Proceeding");
        assert_eq!(tx.state(), ClientState::Proceeding);
    }

    #[test]
    fn invite_client_acks_non_2xx_and_ends_at_once() {
        let mut tx = ClientTransaction::new(req("INVITE"), S(0), Timers::default());
        let r = tx.request.clone();
        let action = tx.on_response(S(1), &resp(&r, 486));
        let ack = action.ack.expect("ACK for 486");
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "1 ACK");
        assert_eq!(ack.headers.to().unwrap().tag(), Some("b"));
        assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKx1"));
        assert_eq!(ack.headers.get("Route"), Some("<sip:edge.example.com;lr>"));
        assert!(tx.is_terminated(), "Timer D is 0 on WebSocket");
    }

    #[test]
    fn invite_client_accepted_passes_2xx_retransmissions_until_timer_m() {
        let mut tx = ClientTransaction::new(req("INVITE"), S(0), Timers::default());
        let r = tx.request.clone();
        assert!(tx.on_response(S(1), &resp(&r, 200)).pass_up);
        assert_eq!(tx.state(), ClientState::Accepted);
        assert!(tx.on_response(S(2), &resp(&r, 200)).pass_up);
        assert!(!tx.on_response(S(2), &resp(&r, 180)).pass_up);
        assert!(!tx.handle_timeout(S(33)), "Timer M is not a timeout");
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_timer_f() {
        let mut tx = ClientTransaction::new(req("REGISTER"), S(0), Timers::default());
        let r = tx.request.clone();
        assert!(tx.matches(&resp(&r, 100)));
        tx.on_response(S(1), &resp(&r, 100));
        assert!(tx.handle_timeout(S(32)), "Timer F fires in Proceeding too");
        let mut tx = ClientTransaction::new(req("BYE"), S(0), Timers::default());
        let action = tx.on_response(S(1), &resp(&r, 200));
        assert!(action.pass_up && action.ack.is_none() && tx.is_terminated());
    }

    #[test]
    fn matching_uses_branch_and_method() {
        let tx = ClientTransaction::new(req("INVITE"), S(0), Timers::default());
        let other = req("BYE");
        assert!(!tx.matches(&resp(&other, 200)), "CSeq method differs");
        let server = ServerTransaction::new(req("INVITE"), Timers::default());
        assert!(server.matches(&req("INVITE")));
        assert!(server.matches(&req("ACK")));
        assert!(!server.matches(&req("CANCEL")));
    }

    #[test]
    fn invite_server_timer_h_and_ack() {
        let t = Timers::default();
        let mut tx = ServerTransaction::new(req("INVITE"), t);
        let r = tx.request.clone();
        tx.respond(S(0), resp(&r, 180));
        assert_eq!(
            tx.on_request(&r).unwrap().code,
            180,
            "retransmitted INVITE gets the 180"
        );
        tx.respond(S(1), resp(&r, 486));
        assert_eq!(tx.state(), ServerState::Completed);
        assert_eq!(tx.on_request(&r).unwrap().code, 486);
        assert!(tx.handle_timeout(S(33)), "Timer H: no ACK");
        let mut tx = ServerTransaction::new(req("INVITE"), t);
        tx.respond(S(1), resp(&r, 603));
        tx.on_request(&req("ACK"));
        assert!(tx.is_terminated(), "Timer I is 0 on WebSocket");
    }

    #[test]
    fn invite_server_accepted_and_non_invite_server() {
        let t = Timers::default();
        let mut tx = ServerTransaction::new(req("INVITE"), t);
        let r = tx.request.clone();
        tx.respond(S(0), resp(&r, 200));
        assert_eq!(tx.state(), ServerState::Accepted);
        assert_eq!(
            tx.on_request(&r),
            None,
            "the TU retransmits 2xx, not the transaction"
        );
        assert!(!tx.handle_timeout(S(32)));
        assert!(tx.is_terminated(), "Timer L");
        let mut tx = ServerTransaction::new(req("BYE"), t);
        tx.respond(S(0), resp(&r, 200));
        assert!(tx.is_terminated(), "Timer J is 0 on WebSocket");
    }
}
