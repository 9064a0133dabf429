//! The user agent: registration (RFC 3261 §10, RFC 5626 outbound), calls (§13–15),
//! re-INVITE (hold/resume), INFO DTMF, REFER (RFC 3515) with Replaces (RFC 3891), over one
//! SIP WebSocket connection (RFC 7118), sans IO.
//!
//! Drive it like the SignalR core: feed each received WebSocket text frame to
//! [`UserAgent::handle_text`], send every [`UserAgent::poll_transmit`] frame, act on
//! [`UserAgent::poll_event`], and call [`UserAgent::handle_timeout`] at
//! [`UserAgent::poll_timeout`]. Time is a [`Duration`] since any fixed origin. Random values
//! (tags, branches, Call-IDs, cnonces, the `.invalid` Contact host) come from
//! [`UaConfig::seed`]: give it 64 random bits (`crypto.getRandomValues`).
//!
//! Transport (RFC 7118 §5): Via `SIP/2.0/WSS <random>.invalid` (WS when not secure), Contact
//! `<sip:<random>@<random>.invalid;transport=ws;ob>` registered with `+sip.instance` and
//! `reg-id` (RFC 5626 §4.2), so after [`UserAgent::transport_lost`] and
//! [`UserAgent::transport_connected`] the new REGISTER replaces the old flow. Keep-alive
//! (RFC 5626 §4.4.1): CRLFCRLF every 80–100 % of [`UaConfig::keep_alive_interval`] while
//! registered; when the registrar said `Require: outbound`, a missing CRLF pong within 10 s
//! raises [`Event::FlowFailed`] (reconnect).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::auth::{Challenge, Credentials};
use crate::dialog::Dialog;
use crate::header::{AuthParams, Method, NameAddr, parse_bounded};
use crate::message::{Message, Request, Response, reason_phrase};
use crate::sdp::{Direction, set_direction};
use crate::transaction::{ClientTransaction, ServerState, ServerTransaction, Timers};
use crate::uri::{SipUri, Uri};

/// How DTMF goes in SIP INFO (RFC 6086) when RFC 4733 through the media path is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfInfoFormat {
    /// `application/dtmf-relay`: `Signal=5\r\nDuration=160\r\n` (Cisco/Asterisk/FreeSWITCH).
    DtmfRelay,
    /// `application/dtmf`: the digit alone.
    Dtmf,
}

/// Configuration of a [`UserAgent`].
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our address of record, `sip:<hub user id>@<domain>`.
    pub aor: String,
    /// Display name in From.
    pub display_name: Option<String>,
    /// Digest credentials (ephemeral `<expiry>:<user>` or static); `None` answers no challenge.
    pub credentials: Option<Credentials>,
    /// A route for every out-of-dialog request (the WebSocket edge), e.g.
    /// `sip:edge.example.com;transport=ws;lr`. `None` sends to the Request-URI's host.
    pub outbound_proxy: Option<String>,
    /// Request-URI of REGISTER; default `sip:<domain of aor>`.
    pub registrar: Option<String>,
    /// `wss:` transport (Via `WSS`) rather than `ws:`.
    pub secure: bool,
    /// Requested registration lifetime in seconds (600).
    pub register_expires: u32,
    /// `+sip.instance` (RFC 5626 §4.1), `urn:uuid:...`, stable per browser.
    pub instance_id: String,
    /// `reg-id` (RFC 5626 §4.2), 1.
    pub reg_id: u32,
    /// Keep-alive interval (RFC 5626 §4.4.1 suggests 95–120 s on connection-oriented flows;
    /// a `Flow-Timer` from the registrar overrides it).
    pub keep_alive_interval: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// The INFO body format for [`UserAgent::send_dtmf_info`].
    pub dtmf_info: DtmfInfoFormat,
    /// T1/T2.
    pub timers: Timers,
    /// Seed of the random values (see the module docs).
    pub seed: u64,
}

impl UaConfig {
    /// A configuration with defaults for everything but the identity.
    pub fn new(aor: &str, credentials: Option<Credentials>, seed: u64) -> UaConfig {
        UaConfig {
            aor: aor.to_owned(),
            display_name: None,
            credentials,
            outbound_proxy: None,
            registrar: None,
            secure: true,
            register_expires: 600,
            instance_id: format!("urn:uuid:{}", uuid_from(seed)),
            reg_id: 1,
            keep_alive_interval: Duration::from_secs(100),
            user_agent: "Switchboard".into(),
            dtmf_info: DtmfInfoFormat::DtmfRelay,
            timers: Timers::default(),
            seed,
        }
    }
}

fn uuid_from(seed: u64) -> String {
    let mut r = Rng(seed ^ 0x5555_aaaa_1234_5678);
    let (a, b) = (r.next(), r.next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// splitmix64.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

/// A call's handle, unique in one [`UserAgent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up an established call (BYE sent).
    LocalHangup,
    /// We cancelled our call before it was answered (CANCEL sent).
    LocalCancel,
    /// We rejected an incoming call with this code.
    LocalReject(u16),
    /// The far end hung up (BYE received).
    RemoteHangup,
    /// The caller cancelled while it rang (CANCEL received).
    RemoteCancel,
    /// Our call was refused with a final response (486 busy, 480, 603, 404, ...).
    Rejected {
        /// The status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No final response within 64·T1 (Timer B), or 408/481 to an in-dialog request.
    Timeout,
    /// We answered but the ACK never came within 64·T1 (RFC 3261 §13.3.1.4); BYE sent.
    AckTimeout,
    /// The WebSocket closed while the call was being set up.
    TransportLost,
    /// An INVITE with Replaces took this call's place (RFC 3891).
    Replaced,
    /// The far end transferred us (REFER) and the new call was answered: this one was ended by
    /// BYE ([`Event::Transferred`] came just before).
    Transferred,
}

/// What happened, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The registrar accepted us for `expires` seconds (a refresh is scheduled before then).
    Registered {
        /// Granted lifetime in seconds.
        expires: u32,
    },
    /// REGISTER failed: 403 (wrong or foreign credentials), 401/407 again after answering
    /// the challenge, 408 (timeout), or another final code.
    RegistrationFailed {
        /// The status code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The un-REGISTER was accepted.
    Unregistered,
    /// An INVITE arrived (180 Ringing was sent). Answer with [`UserAgent::answer`] or
    /// [`UserAgent::reject`].
    IncomingCall {
        /// Its handle.
        call: CallHandle,
        /// The caller's URI (From).
        from: String,
        /// The caller's display name.
        display: Option<String>,
        /// The SDP offer (absent for an offerless INVITE; then `answer` carries the offer).
        sdp: Option<String>,
        /// The call this one replaces (attended transfer, RFC 3891), when it carries a
        /// matching `Replaces` header: answering this call ends that one ([`EndReason::Replaced`],
        /// BYE or CANCEL). An INVITE whose `Replaces` cannot be honoured was refused already
        /// (400/481/486/603, RFC 3891 §3) and raises no event.
        replaces: Option<CallHandle>,
    },
    /// Our INVITE got 180/183; `sdp` is early media (183) when present.
    Ringing {
        /// The call.
        call: CallHandle,
        /// Early SDP answer, if any.
        sdp: Option<String>,
    },
    /// Our INVITE got 2xx (ACK sent); `sdp` is the answer.
    Answered {
        /// The call.
        call: CallHandle,
        /// The SDP answer.
        sdp: Option<String>,
    },
    /// The call is over (see [`EndReason`]).
    Ended {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
    /// The far end sent a re-INVITE (hold, resume, ICE restart): answer with
    /// [`UserAgent::answer`] (SDP answer to `sdp`) or [`UserAgent::reject`] (e.g. 488).
    Renegotiate {
        /// The call.
        call: CallHandle,
        /// The offer.
        sdp: Option<String>,
    },
    /// Our re-INVITE (hold/resume) got 2xx; `sdp` is the answer.
    RenegotiationAnswered {
        /// The call.
        call: CallHandle,
        /// The SDP answer.
        sdp: Option<String>,
    },
    /// Our re-INVITE failed; the previous session stays (491: glare, retry after 2–4 s).
    RenegotiationFailed {
        /// The call.
        call: CallHandle,
        /// The status code.
        code: u16,
    },
    /// A DTMF digit arrived by SIP INFO.
    Dtmf {
        /// The call.
        call: CallHandle,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
        /// Duration in ms (0 when not given).
        duration_ms: u32,
    },
    /// The far end asks us to call `target` (REFER, RFC 3515; 202 and a NOTIFY `100 Trying`
    /// were sent). Go with [`UserAgent::accept_transfer`] (which places the call, `target` may
    /// carry `?Replaces=` for an attended transfer, and reports its outcome by itself), or
    /// refuse with [`UserAgent::decline_transfer`].
    TransferRequested {
        /// The call the REFER came in.
        call: CallHandle,
        /// The Refer-To URI.
        target: String,
    },
    /// Progress of our REFER: 202 accepted, then the status of the transferee's call from
    /// NOTIFY `message/sipfrag` bodies; `done` on the final one. On 2xx, hang up the call
    /// ([`UserAgent::hangup`]): the transferor ends it itself.
    TransferProgress {
        /// The call the REFER went in.
        call: CallHandle,
        /// The status code.
        code: u16,
        /// Whether this is the last report.
        done: bool,
    },
    /// We were transferred: the call [`UserAgent::accept_transfer`] placed (`to`) was
    /// answered; the final NOTIFY (200) went to the transferor and the call the REFER came in
    /// (`from`) is ended by BYE ([`EndReason::Transferred`]) if it was still up. `to` takes its
    /// place. (A `to` that fails raises only its own [`Event::Ended`]: the NOTIFY carries its
    /// code and `from` goes on.)
    Transferred {
        /// The call the REFER came in.
        from: CallHandle,
        /// The call to the Refer-To target, now established.
        to: CallHandle,
    },
    /// RFC 5626 keep-alive: no pong came within 10 s. Close the WebSocket and reconnect.
    FlowFailed,
    /// A received frame was not a SIP message (dropped; a 400 was sent when possible).
    Malformed {
        /// What was wrong.
        error: String,
    },
}

/// A call the UA cannot act on now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UaError {
    /// No call with this handle (ended, or never existed).
    #[error("no such call")]
    NoSuchCall,
    /// The call is not in a state that allows this (e.g. answering an outgoing call).
    #[error("not possible in this call state: {0}")]
    InvalidState(&'static str),
    /// The target is not a usable URI.
    #[error("invalid target `{0}`")]
    InvalidTarget(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// Our INVITE is out.
    Calling,
    /// Their INVITE rings here.
    Incoming,
    /// 2xx sent or received.
    Confirmed,
    /// Over (kept only until transactions finish).
    Ended,
}

#[derive(Debug, Clone)]
struct Retransmit {
    response: Response,
    next: Duration,
    interval: Duration,
    give_up: Duration,
}

#[derive(Debug, Clone)]
struct Call {
    outgoing: bool,
    state: CallState,
    /// Our INVITE (UAC) or theirs (UAS).
    invite: Request,
    local_tag: String,
    dialog: Option<Dialog>,
    provisional_seen: bool,
    cancel_requested: bool,
    invite_tx: Option<ServerTransaction>,
    reinvite_in: Option<ServerTransaction>,
    reinvite_out: bool,
    pending_2xx: Option<Retransmit>,
    last_ack: Option<Request>,
    /// We accepted a REFER in this dialog: NOTIFYs go out here.
    refer_subscription: bool,
    /// The call this incoming one replaces (RFC 3891): ended when this one is answered.
    replaces: Option<CallHandle>,
    /// The Refer-To target of a REFER received in this call, not yet acted on.
    refer_target: Option<String>,
    /// This outgoing call was placed for a REFER received in that call (we are the
    /// transferee): its outcome goes there as NOTIFY, and answered it ends that call.
    transferred_from: Option<CallHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Invite(CallHandle),
    Reinvite(CallHandle),
    Cancel(CallHandle),
    Bye(CallHandle),
    Refer(CallHandle),
    InDialog(CallHandle),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegState {
    Idle,
    Registering,
    Registered,
    Unregistering,
}

#[derive(Debug, Clone)]
struct Registration {
    state: RegState,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    refresh_at: Option<Duration>,
    outbound: bool,
    keep_alive: Duration,
    next_ping: Option<Duration>,
    pong_deadline: Option<Duration>,
}

/// The user agent (see the module docs).
#[derive(Debug)]
pub struct UserAgent {
    config: UaConfig,
    rng: Rng,
    contact_user: String,
    host: String,
    outbox: VecDeque<String>,
    events: VecDeque<Event>,
    clients: Vec<(ClientTransaction, Purpose)>,
    calls: BTreeMap<CallHandle, Call>,
    next_call: u64,
    reg: Registration,
    connected: bool,
    /// (Call-ID, local tag, remote tag) of the last dialogs that ended, so a late `Replaces`
    /// gets 603 rather than 481 (RFC 3891 §3).
    ended_dialogs: VecDeque<(String, String, String)>,
}

/// How many ended dialogs [`UserAgent`] remembers for `Replaces`.
const ENDED_DIALOGS: usize = 16;

const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY";
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

impl UserAgent {
    /// A user agent whose WebSocket just opened at `now`. Nothing is sent until
    /// [`register`](Self::register) or [`call`](Self::call).
    pub fn new(config: UaConfig, now: Duration) -> UserAgent {
        let _ = now;
        let mut rng = Rng(config.seed);
        let host = format!("{}.invalid", rng.token(12));
        let contact_user = rng.token(8);
        let reg = Registration {
            state: RegState::Idle,
            call_id: rng.token(20),
            from_tag: rng.token(10),
            cseq: 0,
            expires: config.register_expires,
            refresh_at: None,
            outbound: false,
            keep_alive: config.keep_alive_interval,
            next_ping: None,
            pong_deadline: None,
        };
        UserAgent {
            config,
            rng,
            contact_user,
            host,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            clients: Vec::new(),
            calls: BTreeMap::new(),
            next_call: 1,
            reg,
            connected: true,
            ended_dialogs: VecDeque::new(),
        }
    }

    /// Replaces the digest credentials (ephemeral ones renewed before they expire); the next
    /// challenge is answered with them. Nothing is sent.
    pub fn set_credentials(&mut self, credentials: Option<Credentials>) {
        self.config.credentials = credentials;
    }

    /// The `.invalid` host of our Via and Contact (RFC 7118 §5).
    pub fn contact_host(&self) -> &str {
        &self.host
    }

    fn aor_uri(&self) -> Uri {
        Uri::parse(&self.config.aor).unwrap_or_else(|_| Uri::Other(self.config.aor.clone()))
    }

    fn domain(&self) -> String {
        match self.aor_uri() {
            Uri::Sip(u) => u.host,
            Uri::Other(s) => s,
        }
    }

    fn via(&mut self) -> String {
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK{};rport",
            if self.config.secure { "WSS" } else { "WS" },
            self.host,
            self.rng.token(16)
        )
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{};transport=ws;ob>", self.contact_user, self.host)
    }

    fn local_name_addr(&self, tag: &str) -> String {
        let mut n = NameAddr::new(self.aor_uri());
        n.display = self.config.display_name.clone();
        n.params.set("tag", Some(tag));
        n.to_string()
    }

    fn out_of_dialog(
        &mut self,
        method: Method,
        uri: Uri,
        to: &str,
        from_tag: &str,
        call_id: &str,
        cseq: u32,
    ) -> Request {
        let mut r = Request::new(method.clone(), uri);
        let via = self.via();
        r.headers.push("Via", via);
        r.headers.push("Max-Forwards", "70");
        if let Some(proxy) = &self.config.outbound_proxy {
            r.headers.push("Route", format!("<{proxy}>"));
        }
        r.headers.push("To", to);
        r.headers.push("From", self.local_name_addr(from_tag));
        r.headers.push("Call-ID", call_id);
        r.headers.push("CSeq", format!("{cseq} {method}"));
        r.headers.push("User-Agent", self.config.user_agent.clone());
        r
    }

    fn send_request(&mut self, now: Duration, request: Request, purpose: Purpose) {
        self.outbox
            .push_back(String::from_utf8_lossy(&request.to_bytes()).into_owned());
        if request.method != Method::Ack {
            self.clients.push((
                ClientTransaction::new(request, now, self.config.timers),
                purpose,
            ));
        }
    }

    fn send_response(&mut self, response: &Response) {
        self.outbox
            .push_back(String::from_utf8_lossy(&response.to_bytes()).into_owned());
    }

    fn respond(&mut self, request: &Request, code: u16, tag: Option<&str>) {
        let fresh;
        let tag = match tag {
            Some(t) => t,
            None => {
                fresh = self.rng.token(10);
                &fresh
            }
        };
        let mut r = Response::to_request(request, code, reason_phrase(code), Some(tag));
        if code == 405 || code == 501 {
            r.headers.push("Allow", ALLOW);
        }
        self.send_response(&r);
    }

    // ----- registration -----

    /// Sends REGISTER (RFC 3261 §10.2, RFC 5626 §4.2): Contact with `+sip.instance`,
    /// `reg-id` and `expires`; the refresh is scheduled from the granted lifetime.
    /// Results: [`Event::Registered`] or [`Event::RegistrationFailed`].
    pub fn register(&mut self, now: Duration) {
        self.reg.state = RegState::Registering;
        self.send_register(now, self.config.register_expires);
    }

    /// Un-REGISTERs our contact (expires=0) and stops refreshing ([`Event::Unregistered`]).
    pub fn unregister(&mut self, now: Duration) {
        self.reg.state = RegState::Unregistering;
        self.reg.refresh_at = None;
        self.reg.next_ping = None;
        self.reg.pong_deadline = None;
        self.send_register(now, 0);
    }

    fn send_register(&mut self, now: Duration, expires: u32) {
        self.clients.retain(|(_, p)| *p != Purpose::Register);
        self.reg.cseq += 1;
        let registrar = self
            .config
            .registrar
            .clone()
            .unwrap_or_else(|| format!("sip:{}", self.domain()));
        let uri = Uri::parse(&registrar).unwrap_or_else(|_| Uri::Other(registrar.clone()));
        let to = NameAddr::new(self.aor_uri()).to_string();
        let (tag, id, seq) = (
            self.reg.from_tag.clone(),
            self.reg.call_id.clone(),
            self.reg.cseq,
        );
        let mut r = self.out_of_dialog(Method::Register, uri, &to, &tag, &id, seq);
        r.headers.push(
            "Contact",
            format!(
                "{};+sip.instance=\"<{}>\";reg-id={};expires={expires}",
                self.contact(),
                self.config.instance_id,
                self.config.reg_id
            ),
        );
        r.headers.push("Expires", expires.to_string());
        r.headers.push("Supported", "path, outbound, replaces");
        r.headers.push("Allow", ALLOW);
        self.send_request(now, r, Purpose::Register);
    }

    fn on_register_response(&mut self, now: Duration, request: &Request, response: &Response) {
        let code = response.code;
        if code < 200 {
            return;
        }
        if (code == 401 || code == 407)
            && let Some(retry) = self.authenticated_retry(request, response)
        {
            self.reg.cseq = retry.headers.cseq().map(|c| c.seq).unwrap_or(self.reg.cseq);
            self.send_request(now, retry, Purpose::Register);
            return;
        }
        if code == 423
            && let Some(min) = response
                .headers
                .get("Min-Expires")
                .and_then(|v| parse_bounded(v, u32::MAX as u64).ok())
            && self.reg.state == RegState::Registering
        {
            self.config.register_expires = min;
            self.send_register(now, min);
            return;
        }
        if !(200..300).contains(&code) {
            if self.reg.state == RegState::Unregistering {
                self.reg.state = RegState::Idle;
                self.events.push_back(Event::Unregistered);
                return;
            }
            self.reg.state = RegState::Idle;
            self.reg.refresh_at = None;
            self.events.push_back(Event::RegistrationFailed {
                code,
                reason: response.reason.clone(),
            });
            return;
        }
        if self.reg.state == RegState::Unregistering {
            self.reg.state = RegState::Idle;
            self.events.push_back(Event::Unregistered);
            return;
        }
        let ours = response
            .headers
            .name_addrs("Contact")
            .unwrap_or_default()
            .into_iter()
            .find(|c| {
                c.params
                    .get_unquoted("+sip.instance")
                    .is_some_and(|i| i.trim_matches(['<', '>']) == self.config.instance_id)
                    || c.sip_uri().is_some_and(|u| {
                        u.host.eq_ignore_ascii_case(&self.host)
                            && u.user.as_deref() == Some(self.contact_user.as_str())
                    })
            });
        let granted = ours
            .and_then(|c| {
                c.params
                    .get("expires")
                    .and_then(|e| parse_bounded(e, u32::MAX as u64).ok())
            })
            .or_else(|| response.headers.expires())
            .unwrap_or(self.config.register_expires);
        self.reg.state = RegState::Registered;
        self.reg.expires = granted;
        // Refresh at 3/4 of the lifetime, and at least 5 s before it ends.
        let refresh = (granted as u64 * 750).min((granted as u64 * 1000).saturating_sub(5000));
        self.reg.refresh_at = Some(now + Duration::from_millis(refresh.max(1000)));
        self.reg.outbound = response.headers.has_option("Require", "outbound");
        if let Some(t) = response
            .headers
            .get("Flow-Timer")
            .and_then(|v| parse_bounded(v, 86_400).ok())
        {
            self.reg.keep_alive = Duration::from_secs(t as u64);
        }
        self.schedule_ping(now);
        self.events
            .push_back(Event::Registered { expires: granted });
    }

    fn schedule_ping(&mut self, now: Duration) {
        // RFC 5626 §4.4.1: a random time between 80 % and 100 % of the interval.
        let base = self.reg.keep_alive.as_millis() as u64;
        let jitter = if base == 0 {
            0
        } else {
            self.rng.next() % (base / 5 + 1)
        };
        self.reg.next_ping = Some(now + Duration::from_millis(base - jitter));
    }

    // ----- transport -----

    /// The WebSocket closed: in-flight transactions fail as on a timeout (calls being set
    /// up end with [`EndReason::TransportLost`]); registration and dialogs are kept.
    pub fn transport_lost(&mut self, now: Duration) {
        let _ = now;
        self.connected = false;
        self.reg.next_ping = None;
        self.reg.pong_deadline = None;
        let clients = std::mem::take(&mut self.clients);
        for (tx, purpose) in clients {
            if let Purpose::Invite(call) = purpose
                && !tx.is_terminated()
                && self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.state == CallState::Calling)
            {
                self.end_call(now, call, EndReason::TransportLost);
            }
        }
    }

    /// A new WebSocket is open: when registered (or registering), REGISTER again at once with
    /// the same instance and reg-id, which replaces the lost flow (RFC 5626 §4.2.1).
    pub fn transport_connected(&mut self, now: Duration) {
        self.connected = true;
        if matches!(self.reg.state, RegState::Registered | RegState::Registering) {
            self.reg.state = RegState::Registering;
            self.send_register(now, self.config.register_expires);
        }
    }

    // ----- calls -----

    fn new_handle(&mut self) -> CallHandle {
        let h = CallHandle(self.next_call);
        self.next_call += 1;
        h
    }

    fn target_uri(&self, target: &str) -> Result<Uri, UaError> {
        let text = if target.contains(':') {
            target.to_owned()
        } else {
            format!("sip:{target}@{}", self.domain())
        };
        Uri::parse(&text).map_err(|_| UaError::InvalidTarget(target.to_owned()))
    }

    /// Calls `target` (a SIP URI, or a user/number at our domain) with an SDP offer. URI
    /// headers of the target (`?Replaces=...` from a REFER) become request headers (RFC 3261
    /// §19.1.5). Events: [`Event::Ringing`], [`Event::Answered`], [`Event::Ended`].
    pub fn call(
        &mut self,
        now: Duration,
        target: &str,
        sdp_offer: &str,
    ) -> Result<CallHandle, UaError> {
        let uri = self.target_uri(target)?;
        let (uri, extra_headers) = match uri {
            Uri::Sip(u) => {
                let headers: Vec<(String, String)> = u
                    .headers
                    .iter()
                    .map(|(n, _)| (n.clone(), u.header(n).unwrap_or_default()))
                    .collect();
                (Uri::Sip(u.without_headers()), headers)
            }
            other => (other, Vec::new()),
        };
        let handle = self.new_handle();
        let tag = self.rng.token(10);
        let call_id = format!("{}@{}", self.rng.token(20), self.host);
        let to = NameAddr::new(uri.clone()).to_string();
        let mut r = self.out_of_dialog(Method::Invite, uri, &to, &tag, &call_id, 1);
        r.headers.push("Contact", self.contact());
        r.headers.push("Allow", ALLOW);
        r.headers.push("Supported", "replaces, outbound");
        for (name, value) in extra_headers {
            if !name.eq_ignore_ascii_case("body") {
                r.headers.push(&name, value);
            }
        }
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp_offer.as_bytes().to_vec();
        self.calls.insert(
            handle,
            Call {
                outgoing: true,
                state: CallState::Calling,
                invite: r.clone(),
                local_tag: tag,
                dialog: None,
                provisional_seen: false,
                cancel_requested: false,
                invite_tx: None,
                reinvite_in: None,
                reinvite_out: false,
                pending_2xx: None,
                last_ack: None,
                refer_subscription: false,
                refer_target: None,
                transferred_from: None,
                replaces: None,
            },
        );
        self.send_request(now, r, Purpose::Invite(handle));
        Ok(handle)
    }

    /// Answers an incoming call, or a re-INVITE ([`Event::Renegotiate`]), with 200 OK and
    /// `sdp`. The 2xx is retransmitted (T1 doubling to T2) until the ACK arrives; without ACK
    /// for 64·T1 the call ends with [`EndReason::AckTimeout`] (RFC 3261 §13.3.1.4).
    pub fn answer(&mut self, now: Duration, call: CallHandle, sdp: &str) -> Result<(), UaError> {
        let contact = self.contact();
        let timers = self.config.timers;
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let initial = c.state == CallState::Incoming;
        let tx = if initial {
            c.state = CallState::Confirmed;
            c.invite_tx.as_mut()
        } else if c.reinvite_in.is_some() {
            c.reinvite_in.as_mut()
        } else {
            return Err(UaError::InvalidState("nothing to answer"));
        }
        .ok_or(UaError::InvalidState("nothing to answer"))?;
        let mut r = Response::to_request(&tx.request, 200, "OK", Some(&c.local_tag));
        if initial {
            copy_record_route(&tx.request, &mut r);
        }
        r.headers.push("Contact", contact);
        r.headers.push("Allow", ALLOW);
        r.headers.push("Supported", "replaces, outbound");
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp.as_bytes().to_vec();
        let r = tx.respond(now, r);
        c.reinvite_in = None;
        c.pending_2xx = Some(Retransmit {
            response: r.clone(),
            next: now + timers.t1,
            interval: timers.t1,
            give_up: now + timers.t64(),
        });
        let replaced = if initial { c.replaces.take() } else { None };
        self.send_response(&r);
        if let Some(old) = replaced {
            self.end_replaced(now, old);
        }
        Ok(())
    }

    /// The call a `Replaces` INVITE took over ends (RFC 3891 §3): BYE when it was confirmed,
    /// CANCEL when it was our early dialog; [`EndReason::Replaced`].
    fn end_replaced(&mut self, now: Duration, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        match c.state {
            CallState::Confirmed => self.send_bye(now, call),
            CallState::Calling => {
                let send_now = c.provisional_seen;
                if let Some(c) = self.calls.get_mut(&call) {
                    c.cancel_requested = true;
                }
                if send_now {
                    self.send_cancel(now, call);
                }
            }
            CallState::Incoming | CallState::Ended => return,
        }
        self.end_call(now, call, EndReason::Replaced);
    }

    /// Rejects an incoming call (486 busy, 480, 603 decline, ...; [`EndReason::LocalReject`])
    /// or a re-INVITE (e.g. 488; the call goes on).
    pub fn reject(&mut self, now: Duration, call: CallHandle, code: u16) -> Result<(), UaError> {
        let code = if (300..700).contains(&code) {
            code
        } else {
            486
        };
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let (tx, ends) = if c.state == CallState::Incoming {
            (c.invite_tx.as_mut(), true)
        } else if c.reinvite_in.is_some() {
            (c.reinvite_in.as_mut(), false)
        } else {
            return Err(UaError::InvalidState("nothing to reject"));
        };
        let tx = tx.ok_or(UaError::InvalidState("nothing to reject"))?;
        let r = Response::to_request(&tx.request, code, reason_phrase(code), Some(&c.local_tag));
        let r = tx.respond(now, r);
        if !ends {
            c.reinvite_in = None;
        }
        self.send_response(&r);
        if ends {
            self.end_call(now, call, EndReason::LocalReject(code));
        }
        Ok(())
    }

    /// Ends a call: CANCEL while our INVITE is unanswered (sent once a provisional response
    /// came, RFC 3261 §9.1), 486 to an incoming call still ringing, BYE once established.
    /// [`Event::Ended`] follows at once.
    pub fn hangup(&mut self, now: Duration, call: CallHandle) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoSuchCall)?;
        match c.state {
            CallState::Ended => Err(UaError::NoSuchCall),
            CallState::Incoming => self.reject(now, call, 486),
            CallState::Calling => {
                let send_now = c.provisional_seen;
                if let Some(c) = self.calls.get_mut(&call) {
                    c.cancel_requested = true;
                }
                if send_now {
                    self.send_cancel(now, call);
                }
                self.end_call(now, call, EndReason::LocalCancel);
                Ok(())
            }
            CallState::Confirmed => {
                self.send_bye(now, call);
                self.end_call(now, call, EndReason::LocalHangup);
                Ok(())
            }
        }
    }

    fn send_cancel(&mut self, now: Duration, call: CallHandle) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        // RFC 3261 §9.1: same Request-URI, top Via, Call-ID, From, To, CSeq number, Route.
        let inv = &c.invite;
        let mut r = Request::new(Method::Cancel, inv.uri.clone());
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(v) = inv.headers.get(name) {
                r.headers.push(name, v);
            }
        }
        for route in inv.headers.all("Route") {
            r.headers.push("Route", route);
        }
        let seq = inv.headers.cseq().map(|c| c.seq).unwrap_or(1);
        r.headers.push("CSeq", format!("{seq} CANCEL"));
        self.send_request(now, r, Purpose::Cancel(call));
    }

    fn send_bye(&mut self, now: Duration, call: CallHandle) {
        let via = self.via();
        let Some(d) = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()) else {
            return;
        };
        let mut r = d.request(Method::Bye, &via, None);
        r.headers.push("User-Agent", self.config.user_agent.clone());
        self.send_request(now, r, Purpose::Bye(call));
    }

    fn in_dialog(&mut self, call: CallHandle, method: Method) -> Result<Request, UaError> {
        let via = self.via();
        let contact = self.contact();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.state != CallState::Confirmed {
            return Err(UaError::InvalidState("the call is not established"));
        }
        let d = c
            .dialog
            .as_mut()
            .ok_or(UaError::InvalidState("no dialog"))?;
        let mut r = d.request(method.clone(), &via, None);
        if matches!(method, Method::Invite | Method::Refer | Method::Notify) {
            r.headers.push("Contact", contact);
        }
        Ok(r)
    }

    /// Sends a re-INVITE with `sdp_offer` (an ICE restart, a codec change). Results:
    /// [`Event::RenegotiationAnswered`] or [`Event::RenegotiationFailed`].
    pub fn reinvite(
        &mut self,
        now: Duration,
        call: CallHandle,
        sdp_offer: &str,
    ) -> Result<(), UaError> {
        if self
            .calls
            .get(&call)
            .is_some_and(|c| c.reinvite_out || c.reinvite_in.is_some())
        {
            return Err(UaError::InvalidState("a re-INVITE is already under way"));
        }
        let mut r = self.in_dialog(call, Method::Invite)?;
        r.headers.push("Allow", ALLOW);
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp_offer.as_bytes().to_vec();
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite_out = true;
        }
        self.send_request(now, r, Purpose::Reinvite(call));
        Ok(())
    }

    /// Puts the call on hold: re-INVITE with `sdp_offer` rewritten to `a=sendonly` (RFC 3264
    /// §8.4). Use [`crate::sdp::set_direction`] with `Inactive` and [`reinvite`](Self::reinvite)
    /// for a hold that also stops our audio.
    pub fn hold(
        &mut self,
        now: Duration,
        call: CallHandle,
        sdp_offer: &str,
    ) -> Result<(), UaError> {
        self.reinvite(now, call, &set_direction(sdp_offer, Direction::SendOnly))
    }

    /// Takes the call off hold: re-INVITE with `sdp_offer` rewritten to `a=sendrecv`.
    pub fn resume(
        &mut self,
        now: Duration,
        call: CallHandle,
        sdp_offer: &str,
    ) -> Result<(), UaError> {
        self.reinvite(now, call, &set_direction(sdp_offer, Direction::SendRecv))
    }

    /// Sends one DTMF digit by SIP INFO (RFC 6086) in the configured format; `duration_ms`
    /// is the tone length (100–250 ms is usual). Prefer RFC 4733 through the media path
    /// (`RTCDTMFSender`); this is the fallback.
    pub fn send_dtmf_info(
        &mut self,
        now: Duration,
        call: CallHandle,
        digit: char,
        duration_ms: u32,
    ) -> Result<(), UaError> {
        let digit = digit.to_ascii_uppercase();
        if !(digit.is_ascii_digit() || "*#ABCD".contains(digit)) {
            return Err(UaError::InvalidTarget(digit.to_string()));
        }
        let mut r = self.in_dialog(call, Method::Info)?;
        match self.config.dtmf_info {
            DtmfInfoFormat::DtmfRelay => {
                r.headers.push("Content-Type", "application/dtmf-relay");
                r.body = format!("Signal={digit}\r\nDuration={duration_ms}\r\n").into_bytes();
            }
            DtmfInfoFormat::Dtmf => {
                r.headers.push("Content-Type", "application/dtmf");
                r.body = digit.to_string().into_bytes();
            }
        }
        self.send_request(now, r, Purpose::InDialog(call));
        Ok(())
    }

    /// Blind transfer (RFC 3515, RFC 5589 §6): REFER with `Refer-To: <target>` and
    /// `Referred-By`. Progress: [`Event::TransferProgress`].
    pub fn transfer_blind(
        &mut self,
        now: Duration,
        call: CallHandle,
        target: &str,
    ) -> Result<(), UaError> {
        let uri = self.target_uri(target)?;
        self.send_refer(now, call, format!("<{uri}>"))
    }

    /// Attended transfer (RFC 5589 §7, RFC 3891): REFER on `call` whose Refer-To is the
    /// consultation call's peer (its AOR, which the proxy can route) with
    /// `?Replaces=<call-id>;to-tag=<its tag>;from-tag=<our tag>` of the consultation dialog.
    pub fn transfer_attended(
        &mut self,
        now: Duration,
        call: CallHandle,
        consultation: CallHandle,
    ) -> Result<(), UaError> {
        let c = self.calls.get(&consultation).ok_or(UaError::NoSuchCall)?;
        let d = c
            .dialog
            .as_ref()
            .filter(|_| c.state == CallState::Confirmed)
            .ok_or(UaError::InvalidState(
                "the consultation call is not established",
            ))?;
        let replaces = format!(
            "{};to-tag={};from-tag={}",
            d.call_id, d.remote_tag, d.local_tag
        );
        let mut target = match &d.remote_uri.uri {
            Uri::Sip(u) => u.without_headers(),
            Uri::Other(s) => return Err(UaError::InvalidTarget(s.clone())),
        };
        target.params = Default::default();
        let refer_to = format!(
            "<{target}?Replaces={}>",
            crate::syntax::escape(&replaces, "")
        );
        self.send_refer(now, call, refer_to)
    }

    fn send_refer(
        &mut self,
        now: Duration,
        call: CallHandle,
        refer_to: String,
    ) -> Result<(), UaError> {
        let mut r = self.in_dialog(call, Method::Refer)?;
        r.headers.push("Refer-To", refer_to);
        r.headers
            .push("Referred-By", format!("<{}>", self.config.aor));
        self.send_request(now, r, Purpose::Refer(call));
        Ok(())
    }

    /// Reports the progress of a transfer we were asked for ([`Event::TransferRequested`]):
    /// NOTIFY `message/sipfrag` `SIP/2.0 <code> <reason>` (RFC 3515 §2.4.5); a final code
    /// terminates the implicit subscription.
    pub fn notify_transfer(
        &mut self,
        now: Duration,
        call: CallHandle,
        code: u16,
    ) -> Result<(), UaError> {
        if !self.calls.get(&call).is_some_and(|c| c.refer_subscription) {
            return Err(UaError::InvalidState(
                "no transfer was requested in this call",
            ));
        }
        self.send_notify(now, call, code)
    }

    /// Being transferred (RFC 3515, RFC 5589 §6 as the transferee): places the call the REFER
    /// in `call` asked for ([`Event::TransferRequested`]), with `sdp_offer`; Refer-To URI
    /// headers such as `Replaces` go into the INVITE (RFC 3891 §1). Its outcome is reported to
    /// the transferor by itself: NOTIFY `200 OK` and BYE on `call` when answered
    /// ([`Event::Transferred`]), NOTIFY with the failure's code when not (then `call` goes on).
    /// Errors: no REFER pending in `call`, or the target is not a URI.
    pub fn accept_transfer(
        &mut self,
        now: Duration,
        call: CallHandle,
        sdp_offer: &str,
    ) -> Result<CallHandle, UaError> {
        let target = self
            .calls
            .get_mut(&call)
            .filter(|c| c.refer_subscription)
            .and_then(|c| c.refer_target.take())
            .ok_or(UaError::InvalidState(
                "no transfer was requested in this call",
            ))?;
        match self.call(now, &target, sdp_offer) {
            Ok(new) => {
                if let Some(c) = self.calls.get_mut(&new) {
                    c.transferred_from = Some(call);
                }
                Ok(new)
            }
            Err(e) => {
                let _ = self.send_notify(now, call, 400);
                Err(e)
            }
        }
    }

    /// Refuses the transfer asked for in `call` (e.g. 603 Decline, or 488 when no media could
    /// be set up): the final NOTIFY carries `code` (RFC 3515 §2.4.5) and the call goes on.
    pub fn decline_transfer(
        &mut self,
        now: Duration,
        call: CallHandle,
        code: u16,
    ) -> Result<(), UaError> {
        if let Some(c) = self.calls.get_mut(&call) {
            c.refer_target = None;
        }
        let code = if (300..700).contains(&code) {
            code
        } else {
            603
        };
        self.notify_transfer(now, call, code)
    }

    /// `call` was answered: if a REFER asked for it, report 200 to the transferor, say
    /// [`Event::Transferred`] and end the transferor's call (BYE, [`EndReason::Transferred`]).
    fn transfer_done(&mut self, now: Duration, call: CallHandle) {
        let Some(old) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.transferred_from.take())
        else {
            return;
        };
        let _ = self.send_notify(now, old, 200);
        self.events.push_back(Event::Transferred {
            from: old,
            to: call,
        });
        if self
            .calls
            .get(&old)
            .is_some_and(|c| c.state == CallState::Confirmed)
        {
            self.send_bye(now, old);
            self.end_call(now, old, EndReason::Transferred);
        }
    }

    fn send_notify(&mut self, now: Duration, call: CallHandle, code: u16) -> Result<(), UaError> {
        let mut r = self.in_dialog(call, Method::Notify)?;
        r.headers.push("Event", "refer");
        r.headers.push(
            "Subscription-State",
            if code >= 200 {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        r.headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        r.body = format!("SIP/2.0 {code} {}\r\n", reason_phrase(code)).into_bytes();
        if code >= 200
            && let Some(c) = self.calls.get_mut(&call)
        {
            c.refer_subscription = false;
        }
        self.send_request(now, r, Purpose::InDialog(call));
        Ok(())
    }

    fn end_call(&mut self, now: Duration, call: CallHandle, reason: EndReason) {
        // The call a REFER asked for failed before it was answered: the final NOTIFY says
        // so and the transferor keeps its call with us (RFC 3515 §2.4.5, RFC 5589 §6).
        if let Some(old) = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.transferred_from.take())
        {
            let code = match &reason {
                EndReason::Rejected { code, .. } => *code,
                EndReason::Timeout => 408,
                EndReason::LocalCancel => 487,
                EndReason::TransportLost => 503,
                _ => 500,
            };
            let _ = self.send_notify(now, old, code);
        }
        if let Some(c) = self.calls.get_mut(&call)
            && c.state != CallState::Ended
        {
            c.state = CallState::Ended;
            if let Some(d) = &c.dialog {
                if self.ended_dialogs.len() == ENDED_DIALOGS {
                    self.ended_dialogs.pop_front();
                }
                self.ended_dialogs.push_back((
                    d.call_id.clone(),
                    d.local_tag.clone(),
                    d.remote_tag.clone(),
                ));
            }
            self.events.push_back(Event::Ended { call, reason });
        }
    }

    // ----- input -----

    /// Feeds a received WebSocket text frame: a SIP message, or a keep-alive CRLF (pong)
    /// / CRLFCRLF (ping, answered with a pong).
    pub fn handle_text(&mut self, now: Duration, text: &str) {
        self.handle_bytes(now, text.as_bytes());
    }

    /// [`handle_text`](Self::handle_text) for a binary frame.
    pub fn handle_bytes(&mut self, now: Duration, bytes: &[u8]) {
        if bytes == b"\r\n" {
            self.reg.pong_deadline = None;
            return;
        }
        if bytes == b"\r\n\r\n" {
            self.outbox.push_back("\r\n".into());
            return;
        }
        let message = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.events.push_back(Event::Malformed {
                    error: e.to_string(),
                });
                return;
            }
        };
        if let Err(e) = message.validate() {
            if let Message::Request(r) = &message
                && r.method != Method::Ack
            {
                let mut resp = Response::to_request(r, 400, &e.to_string(), Some("x"));
                resp.reason = resp.reason.replace(['\r', '\n'], " ");
                self.send_response(&resp);
            }
            self.events.push_back(Event::Malformed {
                error: e.to_string(),
            });
            return;
        }
        match message {
            Message::Response(r) => self.on_response(now, r),
            Message::Request(r) => self.on_request(now, r),
        }
    }

    fn authenticated_retry(&mut self, request: &Request, response: &Response) -> Option<Request> {
        let creds = self.config.credentials.clone()?;
        let (challenge_header, answer_header) = if response.code == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let challenge = response
            .headers
            .all(challenge_header)
            .filter_map(|v| Challenge::parse(v).ok())
            .max_by_key(|c| {
                matches!(
                    c.algorithm,
                    crate::auth::Algorithm::Sha256 | crate::auth::Algorithm::Sha256Sess
                )
            })?;
        // The same nonce again means the credentials were refused, unless it is stale.
        let tried = request
            .headers
            .all(answer_header)
            .filter_map(|v| AuthParams::parse(v).ok())
            .any(|p| p.get("nonce") == Some(challenge.nonce.as_str()));
        if tried && !challenge.stale {
            return None;
        }
        let mut retry = request.clone();
        let seq = retry.headers.cseq().ok()?.seq + 1;
        retry.headers.set("CSeq", format!("{seq} {}", retry.method));
        let via = self.via();
        retry.headers.set("Via", via);
        let cnonce = self.rng.token(16);
        let uri = retry.uri.to_string();
        let value = challenge
            .respond(&creds, retry.method.as_str(), &uri, &retry.body, &cnonce, 1)
            .ok()?;
        retry.headers.set(answer_header, value);
        Some(retry)
    }

    fn on_response(&mut self, now: Duration, response: Response) {
        let Some(i) = self
            .clients
            .iter()
            .position(|(tx, _)| tx.matches(&response))
        else {
            return; // stray: no transaction (RFC 3261 §17.1.3 drops it)
        };
        let action = self.clients[i].0.on_response(now, &response);
        let purpose = self.clients[i].1;
        let request = self.clients[i].0.request.clone();
        if let Some(ack) = action.ack {
            self.outbox
                .push_back(String::from_utf8_lossy(&ack.to_bytes()).into_owned());
        }
        if self.clients[i].0.is_terminated() {
            self.clients.remove(i);
        }
        if !action.pass_up {
            return;
        }
        match purpose {
            Purpose::Register => self.on_register_response(now, &request, &response),
            Purpose::Invite(call) => self.on_invite_response(now, call, &request, &response),
            Purpose::Reinvite(call) => self.on_reinvite_response(now, call, &request, &response),
            Purpose::Refer(call) => {
                if response.code >= 200 {
                    let ok = (200..300).contains(&response.code);
                    self.events.push_back(Event::TransferProgress {
                        call,
                        code: response.code,
                        done: !ok,
                    });
                }
            }
            Purpose::Bye(_) | Purpose::Cancel(_) => {}
            Purpose::InDialog(call) => {
                if matches!(response.code, 408 | 481) {
                    self.end_call(now, call, EndReason::Timeout);
                }
            }
        }
    }

    fn on_invite_response(
        &mut self,
        now: Duration,
        call: CallHandle,
        request: &Request,
        response: &Response,
    ) {
        let code = response.code;
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let state = c.state;
        if code < 200 {
            if code == 100 {
                return;
            }
            let cancel = c.cancel_requested && !c.provisional_seen;
            if let Some(c) = self.calls.get_mut(&call) {
                c.provisional_seen = true;
                if c.dialog.is_none()
                    && let Ok(d) = Dialog::uac(request, response)
                {
                    c.dialog = Some(d);
                }
            }
            if cancel {
                self.send_cancel(now, call);
            } else if state == CallState::Calling {
                self.events.push_back(Event::Ringing {
                    call,
                    sdp: response.body_text(),
                });
            }
            return;
        }
        if code < 300 {
            // A retransmitted 2xx: ACK again (RFC 3261 §13.2.2.4).
            if let Some(ack) = self.calls.get(&call).and_then(|c| c.last_ack.clone())
                && state != CallState::Calling
            {
                self.outbox
                    .push_back(String::from_utf8_lossy(&ack.to_bytes()).into_owned());
                return;
            }
            let Ok(mut dialog) = Dialog::uac(request, response) else {
                return;
            };
            let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(1);
            let via = self.via();
            let ack = dialog.request(Method::Ack, &via, Some(seq));
            self.outbox
                .push_back(String::from_utf8_lossy(&ack.to_bytes()).into_owned());
            let answered = state == CallState::Calling;
            if let Some(c) = self.calls.get_mut(&call) {
                c.dialog = Some(dialog);
                c.last_ack = Some(ack);
                if answered {
                    c.state = CallState::Confirmed;
                }
            }
            if answered {
                self.events.push_back(Event::Answered {
                    call,
                    sdp: response.body_text(),
                });
                self.transfer_done(now, call);
            } else {
                // Answered after we gave up (CANCEL race): end it properly.
                if let Some(c) = self.calls.get_mut(&call) {
                    c.state = CallState::Confirmed;
                }
                self.send_bye(now, call);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.state = CallState::Ended;
                }
            }
            return;
        }
        if (code == 401 || code == 407)
            && state == CallState::Calling
            && let Some(retry) = self.authenticated_retry(request, response)
        {
            if let Some(c) = self.calls.get_mut(&call) {
                c.invite = retry.clone();
                c.provisional_seen = false;
                c.dialog = None;
            }
            self.send_request(now, retry, Purpose::Invite(call));
            return;
        }
        self.end_call(
            now,
            call,
            EndReason::Rejected {
                code,
                reason: response.reason.clone(),
            },
        );
    }

    fn on_reinvite_response(
        &mut self,
        now: Duration,
        call: CallHandle,
        request: &Request,
        response: &Response,
    ) {
        let code = response.code;
        if code < 200 {
            return;
        }
        if code < 300 {
            let via = self.via();
            let Some(c) = self.calls.get_mut(&call) else {
                return;
            };
            let Some(d) = c.dialog.as_mut() else { return };
            if !c.reinvite_out {
                // Retransmitted 2xx: ACK again.
                if let Some(ack) = c.last_ack.clone() {
                    self.outbox
                        .push_back(String::from_utf8_lossy(&ack.to_bytes()).into_owned());
                }
                return;
            }
            d.refresh_target(&response.headers);
            let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(1);
            let ack = d.request(Method::Ack, &via, Some(seq));
            c.last_ack = Some(ack.clone());
            c.reinvite_out = false;
            self.outbox
                .push_back(String::from_utf8_lossy(&ack.to_bytes()).into_owned());
            self.events.push_back(Event::RenegotiationAnswered {
                call,
                sdp: response.body_text(),
            });
            return;
        }
        if (code == 401 || code == 407)
            && let Some(mut retry) = self.authenticated_retry(request, response)
        {
            // The dialog's CSeq moves on with the retry.
            if let Some(d) = self.calls.get_mut(&call).and_then(|c| c.dialog.as_mut()) {
                d.local_seq += 1;
                retry.headers.set("CSeq", format!("{} INVITE", d.local_seq));
            }
            self.send_request(now, retry, Purpose::Reinvite(call));
            return;
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite_out = false;
        }
        if matches!(code, 408 | 481) {
            // RFC 3261 §14.1: the dialog is gone.
            self.send_bye(now, call);
            self.end_call(now, call, EndReason::Timeout);
        } else {
            self.events
                .push_back(Event::RenegotiationFailed { call, code });
        }
    }

    fn find_call_by_dialog(&self, request: &Request) -> Option<CallHandle> {
        self.calls
            .iter()
            .find(|(_, c)| {
                c.state != CallState::Ended
                    && c.dialog
                        .as_ref()
                        .is_some_and(|d| d.matches_request(request))
            })
            .map(|(h, _)| *h)
    }

    fn on_request(&mut self, now: Duration, request: Request) {
        // Retransmission or ACK of an INVITE server transaction.
        for c in self.calls.values_mut() {
            for tx in [c.invite_tx.as_mut(), c.reinvite_in.as_mut()]
                .into_iter()
                .flatten()
            {
                if tx.matches(&request) {
                    if let Some(resend) = tx.on_request(&request) {
                        self.outbox
                            .push_back(String::from_utf8_lossy(&resend.to_bytes()).into_owned());
                    }
                    if request.method != Method::Ack || tx.state() != ServerState::Accepted {
                        return;
                    }
                }
            }
        }
        match request.method {
            Method::Ack => {
                // ACK for our 2xx (a new transaction, RFC 3261 §13.3.1.4).
                if let Some(call) = self.find_call_by_dialog(&request)
                    && let Some(c) = self.calls.get_mut(&call)
                {
                    c.pending_2xx = None;
                }
            }
            Method::Cancel => self.on_cancel(now, &request),
            _ if request.method != Method::Invite && request.headers.has("Replaces") => {
                // RFC 3891 §3: Replaces belongs in an INVITE only.
                self.respond(&request, 400, None);
            }
            _ => {
                let has_to_tag = request.headers.to().is_ok_and(|t| t.tag().is_some());
                if has_to_tag {
                    self.on_in_dialog(now, request);
                } else if request.method == Method::Invite {
                    self.on_invite(now, request);
                } else if request.method == Method::Options {
                    self.respond(&request, 200, None);
                } else if matches!(
                    request.method,
                    Method::Extension(_)
                        | Method::Update
                        | Method::Prack
                        | Method::Subscribe
                        | Method::Message
                ) {
                    self.respond(&request, 501, None);
                } else {
                    self.respond(&request, 481, None);
                }
            }
        }
    }

    fn on_cancel(&mut self, now: Duration, request: &Request) {
        let branch = request
            .headers
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned));
        let found = self.calls.iter().find(|(_, c)| {
            c.state == CallState::Incoming
                && c.invite_tx
                    .as_ref()
                    .is_some_and(|tx| Some(&tx.branch) == branch.as_ref())
        });
        let Some((&call, _)) = found else {
            self.respond(request, 481, None);
            return;
        };
        let tag = self.calls.get(&call).map(|c| c.local_tag.clone());
        self.respond(request, 200, tag.as_deref());
        if let Some(c) = self.calls.get_mut(&call)
            && let Some(tx) = c.invite_tx.as_mut()
        {
            let r =
                Response::to_request(&tx.request, 487, "Request Terminated", Some(&c.local_tag));
            let r = tx.respond(now, r);
            self.outbox
                .push_back(String::from_utf8_lossy(&r.to_bytes()).into_owned());
        }
        self.end_call(now, call, EndReason::RemoteCancel);
    }

    fn on_invite(&mut self, now: Duration, request: Request) {
        let tag = self.rng.token(10);
        let mut tx = ServerTransaction::new(request.clone(), self.config.timers);
        let dialog = match Dialog::uas(&request, &tag) {
            Ok(d) => d,
            Err(e) => {
                let mut r = Response::to_request(&request, 400, "Bad Request", Some(&tag));
                r.reason = format!("Bad Request ({e})").replace(['\r', '\n'], " ");
                let r = tx.respond(now, r);
                self.send_response(&r);
                return;
            }
        };
        let replaces = match self.match_replaces(&request) {
            Ok(r) => r,
            Err(code) => {
                let r = tx.respond(
                    now,
                    Response::to_request(&request, code, reason_phrase(code), Some(&tag)),
                );
                self.send_response(&r);
                return;
            }
        };
        let from = request.headers.from().ok();
        let call = self.new_handle();
        let trying = tx.respond(now, Response::to_request(&request, 100, "Trying", None));
        self.send_response(&trying);
        let mut ringing = Response::to_request(&request, 180, "Ringing", Some(&tag));
        copy_record_route(&request, &mut ringing);
        ringing.headers.push("Contact", self.contact());
        let ringing = tx.respond(now, ringing);
        self.send_response(&ringing);
        self.calls.insert(
            call,
            Call {
                outgoing: false,
                state: CallState::Incoming,
                invite: request.clone(),
                local_tag: tag,
                dialog: Some(dialog),
                provisional_seen: true,
                cancel_requested: false,
                invite_tx: Some(tx),
                reinvite_in: None,
                reinvite_out: false,
                pending_2xx: None,
                last_ack: None,
                refer_subscription: false,
                refer_target: None,
                transferred_from: None,
                replaces,
            },
        );
        self.events.push_back(Event::IncomingCall {
            call,
            from: from.as_ref().map(|f| f.uri.to_string()).unwrap_or_default(),
            display: from.and_then(|f| f.display),
            sdp: request.body_text(),
            replaces,
        });
    }

    /// The call an INVITE's `Replaces` header (RFC 3891) names, or the status to refuse the
    /// INVITE with, per RFC 3891 §3: 400 for more than one header or one without `to-tag` and
    /// `from-tag`; 481 when it names no dialog of ours, or an early dialog we did not initiate
    /// (a call still ringing here); 486 when it names a confirmed dialog and carries
    /// `early-only`; 603 when the dialog has already ended. `Ok(None)` without the header.
    /// The `to-tag` is matched against our tag and the `from-tag` against the far end's (§6.1).
    fn match_replaces(&self, request: &Request) -> Result<Option<CallHandle>, u16> {
        let mut all = request.headers.all("Replaces");
        let Some(value) = all.next() else {
            return Ok(None);
        };
        if all.next().is_some() {
            return Err(400);
        }
        let mut parts = value.split(';');
        let call_id = parts.next().unwrap_or_default().trim();
        let mut params = crate::syntax::Params::default();
        for p in parts {
            match p.split_once('=') {
                Some((n, v)) => params.set(n.trim(), Some(v.trim())),
                None => params.set(p.trim(), None),
            }
        }
        let (Some(to_tag), Some(from_tag)) = (params.get("to-tag"), params.get("from-tag")) else {
            return Err(400);
        };
        if call_id.is_empty() {
            return Err(400);
        }
        let same = |c: &str, local: &str, remote: &str| {
            c == call_id && local == to_tag && remote == from_tag
        };
        let found = self.calls.iter().find(|(_, c)| {
            c.dialog
                .as_ref()
                .is_some_and(|d| same(&d.call_id, &d.local_tag, &d.remote_tag))
        });
        let Some((&call, c)) = found else {
            let ended = self.ended_dialogs.iter().any(|(c, l, r)| same(c, l, r));
            return Err(if ended { 603 } else { 481 });
        };
        match c.state {
            CallState::Ended => Err(603),
            CallState::Incoming => Err(481),
            CallState::Confirmed if params.has("early-only") => Err(486),
            CallState::Confirmed | CallState::Calling => Ok(Some(call)),
        }
    }

    fn on_in_dialog(&mut self, now: Duration, request: Request) {
        let Some(call) = self.find_call_by_dialog(&request) else {
            self.respond(&request, 481, None);
            return;
        };
        let seq = request.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let tag = self
            .calls
            .get(&call)
            .map(|c| c.local_tag.clone())
            .unwrap_or_default();
        let in_order = self
            .calls
            .get_mut(&call)
            .and_then(|c| c.dialog.as_mut())
            .is_some_and(|d| d.accept_remote_seq(seq));
        if !in_order {
            self.respond(&request, 500, Some(&tag));
            return;
        }
        match request.method {
            Method::Bye => {
                self.respond(&request, 200, Some(&tag));
                self.end_call(now, call, EndReason::RemoteHangup);
            }
            Method::Invite => {
                let busy = self.calls.get(&call).is_some_and(|c| {
                    c.reinvite_out || c.reinvite_in.is_some() || c.state != CallState::Confirmed
                });
                if busy {
                    self.respond(&request, 491, Some(&tag)); // RFC 3261 §14.2
                    return;
                }
                let mut tx = ServerTransaction::new(request.clone(), self.config.timers);
                let trying = tx.respond(now, Response::to_request(&request, 100, "Trying", None));
                self.send_response(&trying);
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(d) = c.dialog.as_mut() {
                        d.refresh_target(&request.headers);
                    }
                    c.reinvite_in = Some(tx);
                }
                self.events.push_back(Event::Renegotiate {
                    call,
                    sdp: request.body_text(),
                });
            }
            Method::Info => {
                let ct = request.headers.content_type().unwrap_or_default();
                let body = String::from_utf8_lossy(&request.body).into_owned();
                let dtmf = match ct.as_str() {
                    "application/dtmf-relay" => {
                        let mut digit = None;
                        let mut duration = 0;
                        for line in body.lines() {
                            if let Some((k, v)) = line.split_once('=') {
                                match k.trim().to_ascii_lowercase().as_str() {
                                    "signal" => digit = v.trim().chars().next(),
                                    "duration" => duration = v.trim().parse().unwrap_or(0),
                                    _ => {}
                                }
                            }
                        }
                        digit.map(|d| (d, duration))
                    }
                    "application/dtmf" => body.trim().chars().next().map(|d| (d, 0)),
                    _ => None,
                };
                self.respond(&request, 200, Some(&tag));
                if let Some((digit, duration_ms)) = dtmf {
                    self.events.push_back(Event::Dtmf {
                        call,
                        digit,
                        duration_ms,
                    });
                }
            }
            Method::Refer => {
                let target = request
                    .headers
                    .name_addrs("Refer-To")
                    .ok()
                    .and_then(|v| v.into_iter().next());
                let Some(target) = target else {
                    self.respond(&request, 400, Some(&tag));
                    return;
                };
                self.respond(&request, 202, Some(&tag));
                if let Some(c) = self.calls.get_mut(&call) {
                    c.refer_subscription = true;
                    c.refer_target = Some(target.uri.to_string());
                }
                let _ = self.send_notify(now, call, 100);
                self.events.push_back(Event::TransferRequested {
                    call,
                    target: target.uri.to_string(),
                });
            }
            Method::Notify => {
                self.respond(&request, 200, Some(&tag));
                let is_refer = request.headers.get("Event").is_some_and(|e| {
                    e.split(';')
                        .next()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("refer"))
                });
                let frag = String::from_utf8_lossy(&request.body).into_owned();
                let code = frag
                    .strip_prefix("SIP/2.0 ")
                    .and_then(|s| s.get(..3))
                    .and_then(|c| c.parse::<u16>().ok());
                if is_refer && let Some(code) = code {
                    let terminated = request.headers.get("Subscription-State").is_some_and(|s| {
                        s.trim_start()
                            .to_ascii_lowercase()
                            .starts_with("terminated")
                    });
                    self.events.push_back(Event::TransferProgress {
                        call,
                        code,
                        done: code >= 200 || terminated,
                    });
                }
            }
            Method::Options => self.respond(&request, 200, Some(&tag)),
            _ => self.respond(&request, 501, Some(&tag)),
        }
    }

    // ----- output and timers -----

    /// The next frame to send on the WebSocket (a SIP message, or a keep-alive CRLF).
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant [`handle_timeout`](Self::handle_timeout) must run at.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let mut deadlines: Vec<Duration> = Vec::new();
        deadlines.extend(self.clients.iter().filter_map(|(tx, _)| tx.poll_timeout()));
        for c in self.calls.values() {
            deadlines.extend(c.invite_tx.as_ref().and_then(|t| t.poll_timeout()));
            deadlines.extend(c.pending_2xx.as_ref().map(|p| p.next.min(p.give_up)));
        }
        deadlines.extend(self.reg.refresh_at);
        if self.connected {
            deadlines.extend(self.reg.next_ping);
            deadlines.extend(self.reg.pong_deadline);
        }
        deadlines.into_iter().min()
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        // Client transactions (Timers B, F, M).
        let mut i = 0;
        while i < self.clients.len() {
            let timed_out = self.clients[i].0.handle_timeout(now);
            if self.clients[i].0.is_terminated() {
                let (_, purpose) = self.clients.remove(i);
                if timed_out {
                    self.on_client_timeout(now, purpose);
                }
            } else {
                i += 1;
            }
        }
        // INVITE server transactions (Timers H, L) and 2xx retransmission.
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for call in handles {
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            if let Some(tx) = c.invite_tx.as_mut() {
                tx.handle_timeout(now);
                if tx.is_terminated() {
                    c.invite_tx = None;
                }
            }
            let mut ack_timeout = false;
            if let Some(p) = c.pending_2xx.as_mut() {
                if now >= p.give_up {
                    ack_timeout = true;
                } else if now >= p.next {
                    self.outbox
                        .push_back(String::from_utf8_lossy(&p.response.to_bytes()).into_owned());
                    p.interval = (p.interval * 2).min(self.config.timers.t2);
                    p.next = now + p.interval;
                }
            }
            if ack_timeout {
                c.pending_2xx = None;
                if c.state == CallState::Confirmed {
                    self.send_bye(now, call);
                    self.end_call(now, call, EndReason::AckTimeout);
                }
            }
        }
        // Forget calls that are over and have nothing in flight.
        let busy: Vec<CallHandle> = self
            .clients
            .iter()
            .filter_map(|(_, p)| match p {
                Purpose::Invite(c) | Purpose::Cancel(c) | Purpose::Bye(c) => Some(*c),
                _ => None,
            })
            .collect();
        self.calls.retain(|h, c| {
            c.state != CallState::Ended || busy.contains(h) || c.invite_tx.is_some()
        });
        // Registration refresh and keep-alive.
        if self.reg.refresh_at.is_some_and(|t| t <= now) {
            self.reg.refresh_at = None;
            if self.reg.state == RegState::Registered && self.connected {
                self.send_register(now, self.config.register_expires);
            }
        }
        if self.connected {
            if self.reg.pong_deadline.is_some_and(|t| t <= now) {
                self.reg.pong_deadline = None;
                self.reg.next_ping = None;
                self.events.push_back(Event::FlowFailed);
            }
            if self.reg.next_ping.is_some_and(|t| t <= now) {
                self.outbox.push_back("\r\n\r\n".into());
                if self.reg.outbound {
                    self.reg.pong_deadline = Some(now + PONG_TIMEOUT);
                }
                self.schedule_ping(now);
            }
        }
    }

    fn on_client_timeout(&mut self, now: Duration, purpose: Purpose) {
        match purpose {
            Purpose::Register => {
                if self.reg.state == RegState::Unregistering {
                    self.reg.state = RegState::Idle;
                    self.events.push_back(Event::Unregistered);
                } else {
                    self.reg.state = RegState::Idle;
                    self.events.push_back(Event::RegistrationFailed {
                        code: 408,
                        reason: "Request Timeout".into(),
                    });
                }
            }
            Purpose::Invite(call) => self.end_call(now, call, EndReason::Timeout),
            Purpose::Reinvite(call) | Purpose::InDialog(call) => {
                // RFC 3261 §14.1 / §12.2.1.2: a timeout ends the dialog.
                if let Some(c) = self.calls.get_mut(&call) {
                    c.reinvite_out = false;
                }
                self.send_bye(now, call);
                self.end_call(now, call, EndReason::Timeout);
            }
            Purpose::Refer(call) => self.events.push_back(Event::TransferProgress {
                call,
                code: 408,
                done: true,
            }),
            Purpose::Cancel(_) | Purpose::Bye(_) => {}
        }
    }

    /// Whether the call with this handle is still known (not ended).
    pub fn has_call(&self, call: CallHandle) -> bool {
        self.calls
            .get(&call)
            .is_some_and(|c| c.state != CallState::Ended)
    }

    /// Whether the call was placed by us.
    pub fn is_outgoing(&self, call: CallHandle) -> Option<bool> {
        self.calls.get(&call).map(|c| c.outgoing)
    }
}

/// RFC 3261 §12.1.1: a UAS copies the Record-Route values of a dialog-creating request, in
/// order, into its 18x and 2xx responses, so the proxies stay on the dialog's path (the caller
/// builds its route set from them; without it its ACK goes to our `.invalid` Contact).
fn copy_record_route(request: &Request, response: &mut Response) {
    let routes: Vec<String> = request
        .headers
        .all("Record-Route")
        .map(str::to_owned)
        .collect();
    for route in routes {
        response.headers.push("Record-Route", route);
    }
}

/// The SIP URI of `aor`, for callers that need its parts (e.g. the domain).
pub fn parse_aor(aor: &str) -> Result<SipUri, crate::ParseError> {
    SipUri::parse(aor)
}
