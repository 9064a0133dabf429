//! Switchboard's domain, free of any browser or server API so it runs under plain `cargo test`:
//! incoming-call notifications as the hub delivers them, the call states both sides agree on,
//! the widget's runtime configuration, and reading (not verifying) JWT claims.

pub mod call;
pub mod config;
pub mod desk;
pub mod jwt;
pub mod notification;

pub use call::{CallState, RejectReason};
pub use config::{AuthConfig, Config, ConfigError};
pub use desk::{Action, Desk, Outcome, Ringing};
pub use notification::{IncomingCall, NotificationError};
