//! HTTP routes (DESIGN.md §3; every route is listed in `docs/hub-contract.md`).
//!
//! - [`adaptor`]: the Azure Functions adaptor API of the seed sample (`/api/negotiate`,
//!   `/api/userclient`, `/api/SendMessageToUser`), the call registry and dev sign-in.
//! - [`service`]: the Azure SignalR Service API: the client endpoint (`/client/negotiate`,
//!   the WebSocket at `/client/`) and the REST API (`/api/v1/hubs/...`).
//! - [`simulator`]: the telephony simulator page and its JSON endpoints (dev mode).
//! - [`supervisor`]: the supervisor view `/supervisor` (issue 15).
//! - [`hosts`]: the CRM host simulators (CIF, Open CTI, postMessage; dev mode).
//! - [`sip`]: ephemeral SIP credentials for the softphone (`/api/sip/credentials`).
//!
//! Errors: authentication failures are 401 `{"error": "..."}`; the adaptor's validation errors
//! are plain text, as the seed's Azure Functions answer them (`User Not Connected Currently`);
//! the other routes answer JSON `{"error": "..."}`.

pub mod adaptor;
pub mod hosts;
pub mod service;
pub mod simulator;
pub mod sip;
pub mod supervisor;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use tower_http::cors::{AllowHeaders, AllowMethods, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::hub::Hub;
pub use crate::rest::{ApiError, bad_request, field, json_object, string_field};

/// Request bodies are limited to 1 MB (Azure SignalR REST's limit).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The adaptor routes are Azure Functions routes, which match without regard to case:
/// `/api/SendMessageToUser` and `/api/sendmessagetouser` are the same function.
fn normalize_adaptor_path(mut request: Request) -> Request {
    const ROUTES: &[&str] = &[
        "/api/negotiate",
        "/api/userclient",
        "/api/sendmessagetouser",
    ];
    let path = request.uri().path();
    let lower = path.to_ascii_lowercase();
    if lower != path && ROUTES.contains(&lower.as_str()) {
        let rewritten = match request.uri().query() {
            Some(q) => format!("{lower}?{q}"),
            None => lower,
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// The whole application: the router behind the adaptor-path normaliser. Serve it with
/// `axum::serve(listener, app.into_make_service())` (see [`crate::start`]).
pub fn app(
    hub: Arc<Hub>,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static {
    tower::util::MapRequest::new(router(hub), normalize_adaptor_path)
}

/// All routes (without the path normaliser of [`app`]).
pub fn router(hub: Arc<Hub>) -> Router {
    // Browser-facing routes may be called from a widget served on another origin (a CRM page):
    // any origin, with credentials (the official client sends `credentials: include`).
    // Only allowed origins (crate::guard; dev mode on loopback: any, as before).
    let origins = Arc::new(crate::guard::OriginPolicy::of(&hub));
    let cors = CorsLayer::new()
        .allow_origin(crate::guard::cors_origin(origins.clone()))
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .max_age(Duration::from_secs(600));

    // Every router merged here opts out of axum 0.7 path checks: a merge turns them back on
    // when either side has them, and the REST routes have literal `:send` segments.
    let browser = Router::new()
        .without_v07_checks()
        .route("/dev/token", post(adaptor::dev_token))
        .route(
            "/api/negotiate",
            get(adaptor::negotiate).post(adaptor::negotiate),
        )
        .route("/api/userclient", post(adaptor::user_client))
        .route("/api/sip/credentials", post(sip::credentials))
        .route("/client/negotiate", post(service::client_negotiate))
        .route(
            "/client/",
            get(service::client_connect)
                .post(service::client_send)
                .delete(service::client_close),
        )
        .route(
            "/client",
            get(service::client_connect)
                .post(service::client_send)
                .delete(service::client_close),
        )
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::guard::negotiate_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::guard::require_redis,
        ))
        .layer(axum::middleware::from_fn_with_state(
            origins,
            crate::guard::check_origin,
        ))
        .layer(cors);

    let server = Router::new()
        .without_v07_checks()
        .route(
            "/api/sendmessagetouser",
            post(adaptor::send_message_to_user),
        )
        .route("/api/calls/{call_id}", get(adaptor::get_call))
        .merge(service::rest_routes())
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::guard::require_redis,
        ))
        .layer(axum::middleware::from_fn(crate::observe::time_sends));

    let mut app = Router::new()
        .without_v07_checks()
        .merge(browser)
        .merge(server)
        .merge(simulator::routes())
        .merge(supervisor::routes())
        .merge(hosts::routes())
        .merge(crate::observe::routes())
        .merge(crate::graph::router(&hub.config().graph.base_path))
        .merge(crate::graph_link::routes())
        .route("/healthz", get(healthz));

    // `--config FILE`: this file is the widget's /config.json (read at each request, so an
    // admin can edit it without a restart), whatever the static directory holds.
    if let Some(file) = &hub.config().widget_config {
        app = app.route_service("/config.json", ServeFile::new(file));
    }

    app = match &hub.config().static_dir {
        Some(dir) => {
            let index = dir.join("index.html");
            let files: Router = Router::new()
                // The build writes `.br` and `.gz` beside the wasm, JS and CSS
                // (scripts/build-widget); ServeDir picks one by Accept-Encoding.
                .fallback_service(
                    ServeDir::new(dir)
                        .precompressed_br()
                        .precompressed_gzip()
                        .fallback(ServeFile::new(index)),
                )
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(crate::csp::widget_headers(&hub)),
                    crate::csp::apply,
                ));
            app.fallback_service(files)
        }
        None => app
            .route("/", get(landing))
            .fallback(|| async { ApiError::Json(StatusCode::NOT_FOUND, "Not found".into()) }),
    };

    app.layer(axum::middleware::from_fn_with_state(
        hub.clone(),
        crate::guard::dev_hooks,
    ))
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(crate::safety::catch_panic_layer())
        .layer(
            // Spans name the path only: queries may carry access tokens and keys.
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                tracing::debug_span!("http", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(hub)
}

async fn landing() -> Html<&'static str> {
    Html(include_str!("landing.html"))
}

/// `GET /healthz`: `200 ok`; with `--redis` and Redis unreachable `503 {"error"}`
/// ([`crate::cluster`]).
async fn healthz(
    axum::extract::State(hub): axum::extract::State<Arc<Hub>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if hub.cluster().is_some_and(|c| !c.is_up()) {
        return crate::cluster::redis_down_response();
    }
    "ok".into_response()
}
