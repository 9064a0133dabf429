//! Sans-IO SignalR for Switchboard: the hub message model, the JSON and MessagePack hub
//! protocols, the handshake,
//! negotiate, the client connection state machine, the server session (sharing the
//! stateful-reconnect buffer with the client) and reconnect policies.
//!
//! Nothing here performs I/O or reads a clock: the browser widget and the `switchboard-hub`
//! server feed it bytes and time and move what it returns. The authority is the ASP.NET Core
//! SignalR specification (dotnet/aspnetcore `src/SignalR/docs/specs/HubProtocol.md` and
//! `TransportProtocols.md`) and, where the specs are silent, the official TypeScript client
//! (`src/SignalR/clients/ts/signalr/src/`).

pub mod client;
pub mod error;
pub mod handshake;
pub mod json;
pub mod message;
#[cfg(feature = "messagepack")]
pub mod msgpack;
pub mod negotiate;
pub mod protocol;
pub mod resume;
pub mod retry;
pub mod server;

pub use client::{
    ConnectionError, ConnectionState, Event, HubConnectionCore, HubConnectionOptions,
};
pub use error::ProtocolError;
pub use message::{CompletionOutcome, HubMessage};
pub use negotiate::{NegotiateConnection, NegotiateResponse, TransportKind};
pub use protocol::{HubProtocolKind, Transmit};
pub use resume::ReplayBuffer;
pub use server::{CloseReason, HubServerOptions, HubServerSession, ResumeError, ServerEvent};
