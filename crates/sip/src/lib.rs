//! Sans-IO SIP user agent for Switchboard's browser softphone.
//!
//! Nothing here performs I/O or reads a clock: the widget's WebSocket adapter (RFC 7118, the
//! `sip` subprotocol) feeds received frames and the current time, and moves the messages the
//! core returns; timers are deadlines the adapter wakes the core at. The layers follow
//! RFC 3261: [`message`] (syntax), [`auth`] (digest, RFC 7616/8760), [`transaction`] (§17),
//! [`dialog`] (§12), and [`ua`], the user-agent facade with registration (§10, RFC 5626
//! outbound), calls (§13–15), REFER (RFC 3515) and Replaces (RFC 3891). [`sdp`] has the small
//! SDP direction rewriter hold needs; media stays in the adapter. [`ice`] decides when a call
//! needs an ICE restart and sends it by re-INVITE. [`quality`] turns `getStats` figures into an
//! E-model MOS and watches the microphone's level for the agent's hints.

pub mod auth;
pub mod dialog;
pub mod error;
pub mod header;
pub mod ice;
pub mod message;
pub mod quality;
pub mod sdp;
pub mod syntax;
pub mod transaction;
pub mod ua;
pub mod uri;

pub use error::ParseError;
pub use header::{AuthParams, CSeq, Method, NameAddr, Via};
pub use message::{Headers, Message, Request, Response};
pub use uri::{SipUri, Uri};
