//! Switchboard, the agent widget: a Leptos CSR app for wasm32.
//!
//! Imports point one way: [`app`] (the top components) → [`ui`] (props and callbacks, no I/O)
//! → [`state`] → the adapters below and `switchboard-core` (`scripts/check-imports`).
//!
//! - [`app`] renders the [`ui`] components, wired to the state.
//! - [`state`] is the [`Widget`](state::Widget) store and its transitions: the agent's
//!   [`Desk`] (from `switchboard-core`), hub events, the agent's requests, desk actions as hub
//!   invocations.
//! - [`boot`] is start-up: config.json, the language, sign-in (MSAL or dev), the hub
//!   connection, sign-out. [`popout`], [`shortcuts`], [`theme`] and [`support`] (the
//!   Diagnostics facts and clipboard) each do one thing around it.
//! - [`calls`] (the call UI's requests, the local history), [`tabs`] (one ringing tab),
//!   [`softphone`] (SIP mode), [`browser`] (clock, storage, query parameters) and
//!   [`diagnostics`] (the support log) sit below the state.
//! - [`signalr`] is the thin browser driver of the sans-IO SignalR core; [`early`] starts it
//!   before the app is mounted when it can, and hands it over to [`boot`].
//! - [`auth`] gets dev tokens; [`msal`] signs in with MSAL.js (Entra ID or any OIDC authority).
//! - [`agent`] is the agent's contact-centre state as the hub keeps it (issue 15).
//! - [`presence`] (own presence, team list, Teams ⇄ agent-state sync) over the [`graph`] client.
//! - [`host`] is the CRM around the widget (CIF, postMessage, Open CTI, a tab of its own).
//! - [`i18n`] holds every visible string.
//!
//! [`Desk`]: switchboard_core::Desk

pub mod agent;
pub mod app;
pub mod auth;
pub mod boot;
pub mod browser;
pub mod calls;
pub mod diagnostics;
pub mod early;
pub mod graph;
pub mod host;
pub mod i18n;
pub mod msal;
pub mod popout;
pub mod presence;
pub mod shortcuts;
pub mod signalr;
pub mod softphone;
pub mod state;
pub mod support;
pub mod tabs;
pub mod theme;
pub mod ui;
