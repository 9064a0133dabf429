//! `switchboard-hub`: the local hub (see the library docs and `docs/hub-contract.md`).
//!
//! Prints, one per line, `listening on http://ADDR` first (test harnesses read the port from
//! it), the Azure-style connection string, the dev-mode warning and the URLs to open.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use switchboard_hub::{HubConfig, random_access_key};

/// Local stand-in for Azure SignalR Service and the Switchboard Azure Functions.
#[derive(Debug, Parser)]
#[command(name = "switchboard-hub", version, about)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Directory of the built widget, served at `/` (index.html as SPA fallback).
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// The AccessKey (random when absent).
    #[arg(long, env = "SWITCHBOARD_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,
    /// Seconds a call may ring before the hub marks it missed.
    #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    ring_timeout: u64,
    /// Region (two-letter country code) of phone numbers dialled without a country code.
    #[arg(long, default_value = "US", value_parser = parse_region)]
    default_region: String,
    /// Simulator: milliseconds an external number that never answers (ending 0001) rings
    /// before the call ends no-answer.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    far_end_ring_timeout: u64,
    /// Simulator: milliseconds an external number rings before it answers.
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    far_end_answer_delay: u64,
    /// Served as `/config.json` (the widget's configuration) instead of the static directory's.
    #[arg(long = "config", value_name = "FILE")]
    widget_config: Option<PathBuf>,
    /// OpenID Connect authority whose access tokens sign agents in (Entra ID:
    /// `https://login.microsoftonline.com/TENANT/v2.0`). Turns dev sign-in off.
    #[arg(long, value_name = "URL")]
    oidc_authority: Option<String>,
    /// Accepted `aud` of access tokens (repeat for several; Entra ID v2 tokens carry the API's
    /// client id, v1 tokens its `api://` URI). Required with --oidc-authority.
    #[arg(long, value_name = "AUD")]
    oidc_audience: Vec<String>,
    /// The hub API's application (client) id in Entra ID: accepted as `aud`, as is its default
    /// App ID URI `api://CLIENT_ID` (v2 tokens carry the GUID, v1 tokens the URI).
    #[arg(long, value_name = "GUID")]
    oidc_client_id: Option<String>,
    /// Tenant (directory) id whose tokens are accepted (repeat for several). Required with a
    /// multi-tenant authority (`/organizations`, `/common`): the issuer's `{tenantid}` is the
    /// token's `tid`, which must be listed.
    #[arg(long, value_name = "TENANT_ID")]
    oidc_tenant: Vec<String>,
    /// Extra trusted certificate(s), PEM, for the authority's HTTPS (private or self-signed).
    #[arg(long, value_name = "PEM")]
    oidc_ca_file: Option<PathBuf>,
    /// Dev sign-in (`/dev/token`, the simulator, dev routes): on by default without
    /// --oidc-authority, off with it unless `--dev-auth on`.
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    dev_auth: Option<String>,
    /// Secret shared with the SIP server's auth_ephemeral (Kamailio) or a TURN server's
    /// static-auth-secret: turns on `POST /api/sip/credentials`.
    #[arg(long, env = "SWITCHBOARD_SIP_SECRET", hide_env_values = true)]
    sip_secret: Option<String>,
    /// Seconds the SIP credentials of `/api/sip/credentials` stay valid.
    #[arg(long, default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(60..=604_800))]
    sip_credentials_ttl: u64,
    /// STUN/TURN URL handed out with SIP credentials (repeat for several; TURN URLs get the
    /// same ephemeral credentials).
    #[arg(long, value_name = "URL")]
    sip_ice_server: Vec<String>,
    /// An origin allowed to frame the widget (the CRM, e.g. `https://contoso.crm.dynamics.com`;
    /// repeat for several). Goes into the Content-Security-Policy `frame-ancestors` of the
    /// `--static` pages (and their `script-src`, for the CRM's host library).
    #[arg(long, value_name = "ORIGIN")]
    frame_ancestor: Vec<String>,
    /// A browser origin allowed to call the hub (CORS and the WebSocket `Origin` check), besides
    /// the hub's own origin and the --frame-ancestor origins; repeat for several (e.g. the
    /// origin of a widget hosted elsewhere). Dev mode on loopback allows every origin.
    #[arg(long, value_name = "ORIGIN")]
    allowed_origin: Vec<String>,
    /// An extra origin the widget's pages may connect to (CSP `connect-src`; e.g. the SIP
    /// WebSocket when config.json does not name it); repeat for several.
    #[arg(long, value_name = "ORIGIN")]
    connect_src: Vec<String>,
    /// Log lines as text (default) or JSON objects, one a line (`json`: for log collectors).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Quota: TCP connections open at once from one IP address (429 beyond).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_address: u64,
    /// Quota: live hub connections of one user (429 at /client/negotiate beyond).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_connections_per_user: u64,
    /// Quota: negotiates a second from one address (burst: 5 times as many).
    #[arg(long, default_value_t = 20.0)]
    negotiates_per_second_per_address: f64,
    /// Quota: negotiates a second of one user (burst: 4 times as many).
    #[arg(long, default_value_t = 5.0)]
    negotiates_per_second_per_user: f64,
    /// Quota: calls one user may place (makeCall) a minute.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    calls_per_minute: u32,
    /// Agent state a ring may reach (repeatable; `*`: every state, and rings go out as before
    /// agent state existed). Default `Ready`.
    #[arg(long = "routable-state", value_name = "STATE", value_parser = parse_routable)]
    routable_state: Vec<String>,
    /// The state of an agent the hub has not seen yet.
    #[arg(long, value_name = "STATE", default_value = "Ready", value_parser = parse_state)]
    initial_agent_state: String,
    /// Seconds of WrapUp after an answered call (0: none, straight back to the state before).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    wrap_up_seconds: u64,
    /// Unanswered offers in a row that make an agent Missed (0: never).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    missed_offers: u32,
    /// Graph presence from real change notifications: the Entra tenant id of the hub's app
    /// registration (with --graph-client-id, --graph-client-secret, --graph-notification-url;
    /// docs/presence.md "Hub subscriptions").
    #[arg(long, env = "SWITCHBOARD_GRAPH_TENANT", value_name = "TENANT_ID")]
    graph_tenant: Option<String>,
    /// The hub's Graph app (client) id.
    #[arg(long, env = "SWITCHBOARD_GRAPH_CLIENT_ID", value_name = "GUID")]
    graph_client_id: Option<String>,
    /// The hub's Graph app client secret (never logged).
    #[arg(long, env = "SWITCHBOARD_GRAPH_CLIENT_SECRET", hide_env_values = true)]
    graph_client_secret: Option<String>,
    /// Microsoft Graph's base URL.
    #[arg(
        long,
        env = "SWITCHBOARD_GRAPH_BASE_URL",
        default_value = "https://graph.microsoft.com/v1.0"
    )]
    graph_base_url: String,
    /// The OAuth token endpoint (default: Entra v2 for --graph-tenant).
    #[arg(long, env = "SWITCHBOARD_GRAPH_TOKEN_URL", value_name = "URL")]
    graph_token_url: Option<String>,
    /// The public HTTPS URL at which Graph reaches this hub's `/api/graph/notifications`
    /// (lifecycle notifications go to `…/lifecycle` beside it).
    #[arg(long, env = "SWITCHBOARD_GRAPH_NOTIFICATION_URL", value_name = "URL")]
    graph_notification_url: Option<String>,
    /// Lifetime asked for presence subscriptions, in seconds (Graph allows at most 3600).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(10..=3600))]
    graph_subscription_seconds: u64,
    /// Renew a subscription when this many seconds are left.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=3000))]
    graph_renew_before_seconds: u64,
    /// Whether the dev Graph stand-in pushes `PresenceChanged` to `subscribePresence` watchers
    /// (`off`: the answer says `"push": "none"` and widgets poll, as against a hub without Graph
    /// credentials).
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"], default_value = "on")]
    graph_stand_in_push: String,
    /// Join the hub nodes sharing this Redis and access key (`redis://127.0.0.1:6379`;
    /// docs/scale-out.md). Without it the hub is one process with its state in memory.
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    redis: Option<String>,
}

fn parse_state(value: &str) -> Result<String, String> {
    if switchboard_hub::agents::is_valid_state(value) {
        Ok(value.to_owned())
    } else {
        Err("a state is 1 to 32 characters from A-Z a-z 0-9 space _ -".into())
    }
}

fn parse_routable(value: &str) -> Result<String, String> {
    if value == "*" {
        Ok(value.to_owned())
    } else {
        parse_state(value)
    }
}

/// The Graph subscriber's settings from the flags: `Ok(None)` when none is given, an error
/// naming what is missing when only some are.
fn graph_link(cli: &Cli) -> Result<Option<switchboard_hub::graph_link::LinkConfig>, String> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
    };
    let parts = (
        given(&cli.graph_tenant),
        given(&cli.graph_client_id),
        given(&cli.graph_client_secret),
        given(&cli.graph_notification_url),
    );
    let (tenant, client, secret, url) = match parts {
        (None, None, None, None) => return Ok(None),
        (Some(t), Some(c), Some(s), Some(u)) => (t, c, s, u),
        _ => {
            return Err("Graph subscriptions need all of --graph-tenant, --graph-client-id, --graph-client-secret and --graph-notification-url".into());
        }
    };
    for (flag, value) in [
        ("--graph-notification-url", Some(url.as_str())),
        ("--graph-base-url", Some(cli.graph_base_url.as_str())),
        ("--graph-token-url", cli.graph_token_url.as_deref()),
    ] {
        if let Some(v) = value
            && !(v.starts_with("https://") || v.starts_with("http://"))
        {
            return Err(format!("{flag} {v}: not an http(s) URL"));
        }
    }
    let mut link = switchboard_hub::graph_link::LinkConfig::new(&tenant, &client, &secret, &url);
    link.base_url = cli.graph_base_url.trim_end_matches('/').to_owned();
    if let Some(token_url) = &cli.graph_token_url {
        link.token_url = token_url.clone();
    }
    link.expiration = Duration::from_secs(cli.graph_subscription_seconds);
    link.renew_before = Duration::from_secs(cli.graph_renew_before_seconds);
    Ok(Some(link))
}

fn parse_region(value: &str) -> Result<String, String> {
    switchboard_hub::numbers::parse_region(value)
        .ok_or_else(|| switchboard_hub::numbers::unknown_region(value))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,tower_http=info".into())
    };
    if cli.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .with_env_filter(filter())
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_env_filter(filter())
            .init();
    }

    if let Some(dir) = &cli.static_dir
        && !dir.join("index.html").is_file()
    {
        eprintln!("error: --static {}: no index.html there", dir.display());
        return std::process::ExitCode::from(2);
    }
    if let Some(file) = &cli.widget_config
        && !file.is_file()
    {
        eprintln!("error: --config {}: no such file", file.display());
        return std::process::ExitCode::from(2);
    }
    let oidc = match oidc_config(&cli) {
        Ok(oidc) => oidc,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let graph = match graph_link(&cli) {
        Ok(link) => link,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let access_key = cli
        .access_key
        .filter(|k| !k.is_empty())
        .unwrap_or_else(random_access_key);
    let mut config = HubConfig::new(access_key.clone());
    config.ring_timeout = Duration::from_secs(cli.ring_timeout);
    config.static_dir = cli.static_dir;
    config.calls.default_region = cli.default_region;
    config.calls.far_end_ring_timeout = Duration::from_millis(cli.far_end_ring_timeout);
    config.calls.answer_delay = Duration::from_millis(cli.far_end_answer_delay);
    config.widget_config = cli.widget_config.clone();
    if !cli.routable_state.is_empty() {
        config.agents.routable = cli.routable_state.clone();
    }
    config.agents.initial_state = cli.initial_agent_state.clone();
    config.agents.wrap_up_ms = cli.wrap_up_seconds * 1000;
    config.agents.missed_offers = cli.missed_offers;
    for (flag, values) in [
        ("--frame-ancestor", &cli.frame_ancestor),
        ("--connect-src", &cli.connect_src),
        ("--allowed-origin", &cli.allowed_origin),
    ] {
        if let Some(bad) = values
            .iter()
            .find(|v| !switchboard_hub::csp::valid_origin(v))
        {
            eprintln!("error: {flag} {bad}: not an origin (https://host[:port])");
            return std::process::ExitCode::from(2);
        }
    }
    config.frame_ancestors = cli.frame_ancestor.clone();
    config.connect_src = cli.connect_src.clone();
    config.allowed_origins = cli.allowed_origin.clone();
    config.redis_url = cli.redis.clone();
    for (name, rate) in [
        (
            "--negotiates-per-second-per-address",
            cli.negotiates_per_second_per_address,
        ),
        (
            "--negotiates-per-second-per-user",
            cli.negotiates_per_second_per_user,
        ),
    ] {
        if !(rate.is_finite() && rate > 0.0) {
            eprintln!("error: {name} must be a positive number");
            return std::process::ExitCode::from(2);
        }
    }
    config.quotas = switchboard_hub::quota::QuotaConfig {
        connections_per_address: cli.max_connections_per_address as usize,
        connections_per_user: cli.max_connections_per_user as usize,
        negotiates_per_second_per_address: cli.negotiates_per_second_per_address,
        negotiate_burst_per_address: cli.negotiates_per_second_per_address * 5.0,
        negotiates_per_second_per_user: cli.negotiates_per_second_per_user,
        negotiate_burst_per_user: cli.negotiates_per_second_per_user * 4.0,
        calls_per_minute: cli.calls_per_minute,
    };
    config.graph.link = graph;
    config.graph.stand_in_push = cli.graph_stand_in_push == "on";
    if let Some(secret) = cli.sip_secret.clone().filter(|s| !s.is_empty()) {
        let mut sip = switchboard_hub::routes::sip::SipConfig::new(secret);
        sip.ttl = Duration::from_secs(cli.sip_credentials_ttl);
        sip.ice_servers = cli.sip_ice_server.clone();
        config.sip = Some(sip);
    } else if !cli.sip_ice_server.is_empty() {
        eprintln!("error: --sip-ice-server needs --sip-secret");
        return std::process::ExitCode::from(2);
    }
    let oidc_summary = oidc
        .as_ref()
        .map(|o| format!("{} (audience {})", o.authority, o.audiences.join(", ")));
    config.oidc = oidc;
    if cli.dev_auth.as_deref() == Some("off") && config.oidc.is_none() {
        eprintln!("error: --dev-auth off needs --oidc-authority (otherwise nobody can sign in)");
        return std::process::ExitCode::from(2);
    }
    config.dev_auth_with_oidc = cli.dev_auth.as_deref() == Some("on");
    let dev_on = config.oidc.is_none() || config.dev_auth_with_oidc;
    let loopback = listens_on_loopback(&cli.listen);
    if dev_on && !loopback && cli.dev_auth.as_deref() != Some("on") {
        eprintln!(
            "error: dev mode (no --oidc-authority) on {}, which is not a loopback address: anyone who reaches it could sign in as anyone. Configure --oidc-authority, listen on 127.0.0.1, or say --dev-auth on to accept the risk",
            cli.listen
        );
        return std::process::ExitCode::from(2);
    }
    let sip_on = config.sip.is_some();

    let running = match switchboard_hub::start(&cli.listen, config).await {
        Ok(running) => running,
        Err(e) if e.kind() == std::io::ErrorKind::Other => {
            eprintln!("error: --oidc-ca-file: {e}");
            return std::process::ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", cli.listen);
            return std::process::ExitCode::from(1);
        }
    };
    let base = running.base_url();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {base}");
        let _ = writeln!(out, "Endpoint={base};AccessKey={access_key};Version=1.0;");
        if sip_on {
            let _ = writeln!(
                out,
                "SIP credentials:     POST {base}/api/sip/credentials (Bearer user token)"
            );
        }
        if let Some(oidc) = &oidc_summary {
            let _ = writeln!(out, "sign-in: OIDC access tokens of {oidc}");
        }
        if dev_on && !loopback {
            let _ = writeln!(
                out,
                "WARNING: DEV MODE ON A NETWORK ADDRESS (--dev-auth on): every host that reaches {base} can sign in as any user."
            );
        }
        if dev_on {
            let _ = writeln!(
                out,
                "WARNING: DEV MODE: dev sign-in is ON. Anyone can get a token for any user at POST {base}/dev/token. Never run this in production."
            );
            let _ = writeln!(out, "widget as alice:     {base}/?user=alice");
            let _ = writeln!(out, "widget as bob:       {base}/?user=bob");
            let _ = writeln!(out, "telephony simulator: {base}/simulator");
        } else {
            let _ = writeln!(out, "widget:              {base}/");
        }
        let _ = out.flush();
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown(Duration::from_secs(3)).await;
    std::process::ExitCode::SUCCESS
}

/// Whether every address `listen` resolves to is a loopback address.
fn listens_on_loopback(listen: &str) -> bool {
    use std::net::ToSocketAddrs;
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

fn oidc_config(cli: &Cli) -> Result<Option<switchboard_hub::oidc::OidcConfig>, String> {
    let Some(authority) = &cli.oidc_authority else {
        if !cli.oidc_audience.is_empty()
            || cli.oidc_ca_file.is_some()
            || cli.oidc_client_id.is_some()
            || !cli.oidc_tenant.is_empty()
        {
            return Err(
                "--oidc-audience, --oidc-client-id, --oidc-tenant and --oidc-ca-file need --oidc-authority"
                    .into(),
            );
        }
        return Ok(None);
    };
    if !authority.starts_with("https://") {
        return Err(format!(
            "--oidc-authority {authority}: must be an https URL (MSAL.js refuses http authorities too)"
        ));
    }
    let mut audiences: Vec<String> = cli
        .oidc_audience
        .iter()
        .filter(|a| !a.trim().is_empty())
        .cloned()
        .collect();
    if let Some(client_id) = cli.oidc_client_id.as_deref().map(str::trim) {
        if client_id.is_empty() {
            return Err("--oidc-client-id: empty".into());
        }
        for aud in [client_id.to_owned(), format!("api://{client_id}")] {
            if !audiences.contains(&aud) {
                audiences.push(aud);
            }
        }
    }
    if audiences.is_empty() {
        return Err(
            "--oidc-authority needs --oidc-client-id GUID or --oidc-audience AUD (the hub API's client id or application id URI)".into(),
        );
    }
    let tenants: Vec<String> = cli
        .oidc_tenant
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    let path = authority.trim_end_matches('/').to_ascii_lowercase();
    let multi_tenant = [
        "/organizations",
        "/common",
        "/organizations/v2.0",
        "/common/v2.0",
    ]
    .iter()
    .any(|suffix| path.ends_with(suffix));
    if multi_tenant && tenants.is_empty() {
        return Err(format!(
            "--oidc-authority {authority} is multi-tenant: list the accepted tenants with --oidc-tenant TENANT_ID"
        ));
    }
    let mut config = switchboard_hub::oidc::OidcConfig::new(authority.clone(), audiences);
    config.tenants = tenants;
    if let Some(file) = &cli.oidc_ca_file {
        config.extra_ca_pem = Some(
            std::fs::read(file).map_err(|e| format!("--oidc-ca-file {}: {e}", file.display()))?,
        );
    }
    Ok(Some(config))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
