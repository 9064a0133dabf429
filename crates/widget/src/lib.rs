//! Switchboard, the agent widget: a Leptos CSR app for wasm32.
//!
//! - [`app`] wires configuration, sign-in, the hub connection and the agent's [`Desk`]
//!   (from `switchboard-core`) into reactive state, and renders the [`ui`] components.
//! - [`signalr`] is the thin browser driver of the sans-IO SignalR core.
//! - [`auth`] gets dev tokens; [`msal`] signs in with MSAL.js (Entra ID or any OIDC authority).
//! - [`presence`] (own presence, team list, Teams ⇄ agent-state sync) over the [`graph`] client.
//! - [`host`] is the CRM around the widget (CIF, postMessage, Open CTI, a tab of its own).
//! - [`i18n`] holds every visible string.
//!
//! [`Desk`]: switchboard_core::Desk

pub mod app;
pub mod auth;
pub mod calls;
pub mod diagnostics;
pub mod graph;
pub mod host;
pub mod i18n;
pub mod msal;
pub mod presence;
pub mod signalr;
pub mod softphone;
pub mod tabs;
pub mod ui;
