//! Switchboard's domain, free of any browser or server API so it runs under plain `cargo test`:
//! incoming-call notifications as the hub delivers them, the call states both sides agree on,
//! the widget's runtime configuration, reading (not verifying) JWT claims, and Teams presence
//! with its sync rules ([`presence`]).

pub mod agent_state;
pub mod call;
pub mod config;
pub mod desk;
pub mod diagnostics;
mod fields;
pub mod history;
pub mod host;
pub mod hub_event;
pub mod i18n;
pub mod invocation;
pub mod jwt;
pub mod notification;
pub mod presence;
pub mod signin;
pub mod transport;

pub use call::{CallState, RejectReason};
pub use config::{
    AuthConfig, Config, ConfigError, DtmfMode, GraphConfig, Interaction, SipConfig,
    TelephonyConfig, WrapUpConfig, WrapUpProblem,
};
pub use desk::{Action, ActiveCall, Desk, Outcome, Resync, Ringing};
pub use history::{CallDirection, CallRecord, History};
pub use notification::{IncomingCall, NotificationError};
pub use presence::{
    Activity, AgentSource, Availability, Command as PresenceCommand, Presence, PresenceMapping,
    PresenceSync, SyncConfig,
};
