//! Panic safety for requests: a handler that panics answers `500 {"error": "Internal server
//! error"}`, the panic is logged (message only, never the request) and counted
//! (`switchboard_panics_total`), and the process lives. The release profile unwinds for this
//! (workspace `Cargo.toml`); the widget's wasm build keeps `panic = "abort"`.

use std::any::Any;

use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;

/// The body of the 500 answer.
pub const INTERNAL_ERROR: &str = r#"{"error":"Internal server error"}"#;

/// What a panic answers: a function of the panic payload.
pub type PanicHandler = fn(Box<dyn Any + Send + 'static>) -> Response<Body>;

/// The catch-panic layer of [`crate::routes::router`].
pub fn catch_panic_layer() -> CatchPanicLayer<PanicHandler> {
    CatchPanicLayer::custom(panic_response as PanicHandler)
}

fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    tracing::error!(panic = %message, "request handler panicked; answered 500");
    crate::metrics::panic();
    let mut response = Response::new(Body::from(INTERNAL_ERROR));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_request_answers_500_and_the_service_lives() {
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    let n: u64 = std::hint::black_box(u64::MAX);
                    // Checked arithmetic everywhere else; this one panics on purpose.
                    let _ = n.checked_add(1).expect("overflow on purpose");
                    "unreachable"
                }),
            )
            .route("/ok", get(|| async { "ok" }))
            .layer(catch_panic_layer());
        let request = |path: &str| {
            axum::http::Request::builder()
                .uri(path)
                .body(Body::empty())
                .unwrap()
        };
        let boom = app.clone().oneshot(request("/boom")).await.unwrap();
        assert_eq!(boom.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(boom.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], INTERNAL_ERROR.as_bytes());
        let ok = app.oneshot(request("/ok")).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
