//! The hub's HTTP surface fed arbitrary requests (issue 18, "the hub's parsers fuzzed"): every
//! REST body, query option, number and path parameter reaches its real parser through the real
//! router — the Azure REST API, the Functions adaptor (`SendMessageToUser`), the Graph presence
//! stand-in (`$top`, `$skiptoken`, `expirationDuration`, …), the simulator and dev sign-in.
//!
//! The property: no request makes a handler panic. The hub's catch-panic layer would turn a panic
//! into `500`, so a `500` fails the target as a crash would. The input picks a route shape, fills
//! its parameters, query and body with fuzzed bytes and chooses a credential (none, the access key
//! as `x-functions-key`, a valid service JWT, a dev user token), so the parsers behind each
//! credential check are reached too.
#![no_main]
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request};
use axum::response::Response;
use libfuzzer_sys::fuzz_target;
use switchboard_hub::HubConfig;
use switchboard_hub::auth::{AccessKey, DevTokens};
use switchboard_hub::quota::ClientAddr;
use tower::ServiceExt;
use tower::util::BoxCloneService;

const KEY: &str = "fuzz-access-key-0123456789abcdef0123456789";

/// Route shapes; `{}` is filled with a fuzzed path segment.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/SendMessageToUser"),
    ("POST", "/api/sendmessagetouser"),
    ("GET", "/api/calls/{}"),
    ("POST", "/api/negotiate"),
    ("POST", "/api/userclient"),
    ("POST", "/dev/token"),
    ("POST", "/client/negotiate"),
    ("POST", "/api/v1/hubs/{}"),
    ("POST", "/api/v1/hubs/switchboard/users/{}"),
    ("HEAD", "/api/v1/hubs/switchboard/users/{}"),
    ("POST", "/api/hubs/switchboard/users/{}/:send"),
    ("POST", "/api/hubs/switchboard/groups/{}/:send"),
    ("POST", "/api/hubs/{}/:send"),
    ("POST", "/simulator/ring"),
    ("POST", "/simulator/calls/{}/abandon"),
    ("POST", "/simulator/calls/{}/far-end"),
    ("POST", "/simulator/presence"),
    ("GET", "/graph/v1.0/me/presence"),
    ("GET", "/graph/v1.0/users"),
    ("GET", "/graph/v1.0/users/{}/presence"),
    ("POST", "/graph/v1.0/users/{}/presence/setPresence"),
    ("POST", "/graph/v1.0/users/{}/presence/setUserPreferredPresence"),
    ("POST", "/graph/v1.0/users/{}/presence/clearPresence"),
    ("POST", "/graph/v1.0/users/{}/presence/{}"),
    ("POST", "/graph/v1.0/communications/getPresencesByUserId"),
    ("POST", "/api/sip/credentials"),
    ("POST", "/dev/users/{}/drop"),
    ("GET", "/metrics"),
    ("GET", "/{}"),
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    hub: Arc<switchboard_hub::Hub>,
    service_token: String,
    user_token: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let hub = runtime.block_on(async {
            switchboard_hub::Hub::try_new(HubConfig::new(KEY), switchboard_hub::hub_methods()).expect("hub")
        });
        let now = switchboard_hub::auth::unix_now();
        let service_token = AccessKey::new(KEY).sign(
            "http://127.0.0.1/api/v1/hubs/switchboard",
            None,
            now,
            now + 3600,
        );
        let user_token = DevTokens::new(KEY).issue("alice", now).access_token;
        Fixture {
            runtime,
            hub,
            service_token,
            user_token,
        }
    })
}

/// Percent-encodes what a URI path or query may not hold, so the fuzzed text reaches the router.
fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [route, ctype, cred, seg_len, query_len, rest @ ..] = data else {
        return;
    };
    let fx = fixture();
    let (method, shape) = ROUTES[*route as usize % ROUTES.len()];
    let seg_len = (*seg_len as usize % 48).min(rest.len());
    let (segment, rest) = rest.split_at(seg_len);
    let query_len = (*query_len as usize % 96).min(rest.len());
    let (query, body) = rest.split_at(query_len);
    let mut path = shape.replace("{}", &escape(segment));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&escape(query).replace("%3D", "=").replace("%26", "&"));
    }
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(&path)
        .header("host", "127.0.0.1");
    let content_type = CONTENT_TYPES[*ctype as usize % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        request = request.header("content-type", content_type);
    }
    request = match cred % 4 {
        1 => request.header("x-functions-key", KEY),
        2 => request.header("authorization", format!("Bearer {}", fx.service_token)),
        3 => request.header("authorization", format!("Bearer {}", fx.user_token)),
        _ => request,
    };
    let Ok(mut request) = request.body(Body::from(body.to_vec())) else {
        return; // not a URI the HTTP layer would ever hand to the router
    };
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    request.extensions_mut().insert(ConnectInfo(ClientAddr(peer)));
    // The router is built once per fuzzing thread (its layers read config and files at build
    // time); each input gets a cheap clone.
    thread_local! {
        static APP: BoxCloneService<Request<Body>, Response, Infallible> =
            BoxCloneService::new(switchboard_hub::routes::app(fixture().hub.clone()));
    }
    let app = APP.with(Clone::clone);
    let status = fx.runtime.block_on(async move {
        match app.oneshot(request).await {
            Ok(response) => response.status(),
            Err(never) => match never {},
        }
    });
    assert_ne!(
        status.as_u16(),
        500,
        "{method} {path}: a handler panicked (the catch-panic layer answered 500)"
    );
});
