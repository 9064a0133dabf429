//! `switchboard-hub`: a local stand-in for Azure SignalR Service plus the seed's Azure
//! Functions adaptor, for the demo and the tests (DESIGN.md §3, the binding wire contract;
//! every route, body and hub method is in `docs/hub-contract.md`).
//!
//! - SignalR server side: WebSockets, Server-Sent Events and long polling ([`transport`]);
//!   the JSON and MessagePack hub protocols and stateful reconnect ([`connection`]; codecs
//!   from `switchboard-signalr`).
//! - Azure Functions adaptor API (`/api/negotiate`, `/api/SendMessageToUser`,
//!   `/api/userclient`), the call registry (`/api/calls/{id}`) and dev sign-in (`/dev/token`):
//!   [`routes::adaptor`].
//! - Azure SignalR Service client endpoint and REST API: [`routes::service`].
//! - Telephony simulator page: [`routes::simulator`].
//! - Microsoft Graph presence stand-in (`/graph/v1.0/...`, `PresenceChanged` pushes): [`graph`];
//!   its change-notification subscriptions: [`graph_subscriptions`]; the hub as a subscriber of
//!   real Graph (app credentials, `/api/graph/notifications`): [`graph_link`].
//! - Shared state and delivery: [`hub`]; the hub method table: [`methods`] (filled by
//!   [`hub_methods`]); call control: [`calls`]; call states: [`registry`]; tokens and keys:
//!   [`auth`]; REST authorization: [`access`].
//! - Agent state (issue 15, `docs/agent-state.md`): the store [`agents`], its hub methods
//!   [`agent_state`], the supervisor view [`routes::supervisor`].
//!
//! Tests start it in-process with [`start`] on `127.0.0.1:0`.

#![warn(missing_docs)]

pub mod access;
pub mod agent_state;
pub mod agents;
pub mod auth;
pub mod calls;
pub mod cluster;
pub mod connection;
pub mod csp;
pub mod graph;
pub mod graph_access;
pub mod graph_client;
pub mod graph_link;
pub mod graph_subscriptions;
pub mod guard;
pub mod hub;
pub mod limits;
pub mod mailbox;
pub mod methods;
pub mod metrics;
pub mod numbers;
pub mod observe;
pub mod oidc;
pub mod presence;
pub mod quota;
pub mod registry;
pub mod rest;
pub mod routes;
pub mod safety;
pub mod sessions;
pub mod transport;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use hub::{Hub, HubMethods, Timeouts};

/// The default hub name (the demo's, and the adaptor routes' unless `?hub=` says otherwise).
pub const DEFAULT_HUB: &str = "switchboard";

/// How a hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The AccessKey: signs hub access tokens, checks REST tokens, and is the server credential
    /// (`x-functions-key` / `?code=`). Dev tokens are signed with a key derived from it.
    pub access_key: String,
    /// A call still ringing after this becomes `missed` (hub-side backstop; default 45 s).
    pub ring_timeout: Duration,
    /// The built widget, served at `/` with index.html as SPA fallback.
    pub static_dir: Option<PathBuf>,
    /// The hub name the adaptor routes use by default (`switchboard`).
    pub hub_name: String,
    /// The Graph presence stand-in ([`graph`]).
    pub graph: graph::GraphConfig,
    /// Protocol timers.
    pub timeouts: Timeouts,
    /// Grant stateful reconnect to clients that ask (`useStatefulReconnect=true`; default on).
    pub allow_stateful_reconnect: bool,
    /// Call control: default region of phone numbers, simulator far-end timings ([`calls`]).
    pub calls: calls::CallConfig,
    /// Stateful reconnect: bytes of unacknowledged messages kept per connection for replay
    /// (100 000, as ASP.NET Core's `StatefulReconnectBufferSize`); when full, the connection
    /// takes no further hub messages until the client acks.
    pub replay_buffer_bytes: usize,
    /// A real identity provider for user tokens; `None` is dev mode.
    pub oidc: Option<oidc::OidcConfig>,
    /// With `oidc` set: also accept dev tokens and keep `/dev/token`, the simulator and the
    /// dev routes on (`--dev-auth on`; off by default). Ignored without `oidc`.
    pub dev_auth_with_oidc: bool,
    /// Served at `/config.json` instead of the static directory's file (`--config FILE`).
    pub widget_config: Option<PathBuf>,
    /// Ephemeral SIP credentials (`--sip-secret`); `None`: `/api/sip/credentials` answers 404.
    pub sip: Option<routes::sip::SipConfig>,
    /// Quotas per user and per address ([`quota`]).
    pub quotas: quota::QuotaConfig,
    /// Origins allowed to frame the widget's pages (`--frame-ancestor`, besides `'self'`;
    /// [`csp`]).
    pub frame_ancestors: Vec<String>,
    /// Browser origins allowed to call the hub besides its own and the frame ancestors
    /// (`--allowed-origin`; [`guard`]).
    pub allowed_origins: Vec<String>,
    /// Extra `connect-src` origins of the widget's pages (`--connect-src`; [`csp`]).
    pub connect_src: Vec<String>,
    /// Agent state and routing (`--routable-state`, `--initial-agent-state`,
    /// `--wrap-up-seconds`, `--missed-offers`; [`agents`]).
    pub agents: agents::AgentConfig,
    /// The address the hub listens on (set by [`serve`]).
    pub listen_addr: Option<SocketAddr>,
    /// `--redis URL` (env `SWITCHBOARD_REDIS_URL`): join the hubs sharing this Redis and
    /// access key ([`cluster`], `docs/scale-out.md`); `None`: single-process, in memory.
    pub redis_url: Option<String>,
}

impl HubConfig {
    /// A configuration with this key and every default.
    pub fn new(access_key: impl Into<String>) -> Self {
        let access_key: String = access_key.into();
        Self {
            // The stand-in's dev token endpoint takes the AccessKey as the client secret.
            graph: graph::GraphConfig {
                app_secret: Some(access_key.clone()),
                ..graph::GraphConfig::default()
            },
            access_key,
            ring_timeout: Duration::from_secs(45),
            static_dir: None,
            hub_name: DEFAULT_HUB.into(),
            timeouts: Timeouts::default(),
            allow_stateful_reconnect: true,
            replay_buffer_bytes: 100_000,
            calls: calls::CallConfig::default(),
            oidc: None,
            dev_auth_with_oidc: false,
            widget_config: None,
            sip: None,
            quotas: quota::QuotaConfig::default(),
            frame_ancestors: Vec::new(),
            connect_src: Vec::new(),
            allowed_origins: Vec::new(),
            agents: agents::AgentConfig::default(),
            listen_addr: None,
            redis_url: None,
        }
    }
}

/// Every hub method clients may invoke: the modules that implement some register them here
/// ([`calls::register`], [`graph::register`], [`agent_state::register`]); [`hub::Hub::invoke`] dispatches through the table.
pub fn hub_methods() -> HubMethods {
    let mut methods = HubMethods::new();
    calls::register(&mut methods);
    graph::register(&mut methods);
    agent_state::register(&mut methods);
    methods
}

/// A random AccessKey: 32 random bytes, base64 (the shape of Azure's keys).
pub fn random_access_key() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A hub serving on a socket.
#[derive(Debug)]
pub struct RunningHub {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its state (for tests: calls, connection counts).
    pub hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningHub {
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection with `Close{allowReconnect: true}`, stops accepting, and waits
    /// (at most `grace`) for open connections to finish.
    pub async fn shutdown(mut self, grace: Duration) {
        self.hub.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout_at(deadline, &mut self.task).await;
        self.task.abort();
    }
}

/// Serves a hub on an already bound listener (its local address is `RunningHub::addr`).
///
/// Fails when the OIDC configuration cannot be used (an unreadable CA file).
pub fn serve(listener: TcpListener, mut config: HubConfig) -> std::io::Result<RunningHub> {
    let addr = listener.local_addr()?;
    config.listen_addr = Some(addr);
    let listener = quota::LimitedListener::new(listener, config.quotas.connections_per_address);
    let redis_url = config.redis_url.clone();
    let hub = Hub::try_new(config, hub_methods()).map_err(std::io::Error::other)?;
    if let Some(url) = redis_url {
        // Presence changes from other nodes go to the Graph stand-in (hub.rs names no graph).
        hub.on_presence(graph::replicate);
        hub.join_cluster(&url).map_err(std::io::Error::other)?;
    }
    graph_link::start(&hub);
    let app = routes::app(hub.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                quota::ClientAddr,
            >(app),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(RunningHub {
        addr,
        hub,
        stop: Some(stop),
        task,
    })
}

/// Binds `listen` (`127.0.0.1:0` picks a free port) and serves a hub on it.
pub async fn start(listen: &str, config: HubConfig) -> std::io::Result<RunningHub> {
    let listener = TcpListener::bind(listen).await?;
    serve(listener, config)
}
