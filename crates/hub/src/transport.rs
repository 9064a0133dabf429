//! The transports of the client endpoint (`TransportProtocols.md`), moving bytes between HTTP
//! and a session ([`crate::connection`]):
//!
//! - **WebSockets** — `GET /client/?hub=H&id=TOKEN` with an upgrade (token in
//!   `access_token` or `Authorization: Bearer`). JSON in text frames, MessagePack in binary
//!   frames. With stateful reconnect, a second upgrade with the same `id` re-attaches to the
//!   running session.
//! - **Server-Sent Events** — `GET /client/?hub=H&id=TOKEN&access_token=T` with
//!   `Accept: text/event-stream`: `text/event-stream` with the preamble `:\r\n`, then each frame
//!   as `data: <record>\r\n\r\n` (a `data:` line per line). Text (JSON) only.
//! - **Long polling** — `GET /client/?hub=H&id=TOKEN` (`Authorization: Bearer`): the first poll
//!   answers 200 empty at once; later polls answer 200 with every queued frame
//!   (`application/octet-stream`), 200 empty after `Timeouts::long_poll` with nothing to send,
//!   or 204 once the connection is closed.
//! - `POST /client/?hub=H&id=TOKEN` (SSE and long polling): the body is data from the client;
//!   200. `DELETE /client/?hub=H&id=TOKEN`: ends the connection; 202.
//!
//! Errors: 401 bad token; 404 `{"error":"No Connection with that ID"}` for an unknown, used or
//! expired id, or one of another hub or user; 400 for a request the connection's transport
//! does not take (e.g. POST to a WebSocket connection).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::connection::{
    self, Control, Frame, MAX_TRANSPORT_MESSAGE_BYTES, TransportEnd, TransportKind, Wire,
};
use crate::hub::{ConnectionInfo, Hub, random_id};
use crate::routes::{ApiError, bad_request};
use crate::sessions::SessionHandle;

/// The WebSocket read buffer: tungstenite allocates it up front, so it decides the memory of
/// an idle connection (~6 KB with 4 KiB, ~134 KB with the 128 KiB default; FIELD-NOTES).
pub const READ_BUFFER_SIZE: usize = 4096;

/// WebSocket close code of the dev drop hook (1011, "internal error": an unclean close, so a
/// stateful-reconnect client reconnects).
pub const DROP_CLOSE_CODE: u16 = connection::DROP_CLOSE_CODE;

fn not_found() -> ApiError {
    ApiError::Json(StatusCode::NOT_FOUND, "No Connection with that ID".into())
}

/// Which transport a `GET /client/` asks for.
pub fn requested_transport(headers: &HeaderMap, is_upgrade: bool) -> TransportKind {
    if is_upgrade {
        TransportKind::WebSockets
    } else if headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
    {
        TransportKind::ServerSentEvents
    } else {
        TransportKind::LongPolling
    }
}

/// `GET /client/`: opens (or, for WebSockets with stateful reconnect, re-opens) a transport,
/// or is a long poll. `user` is the validated token's user.
pub(crate) async fn connect(
    hub: Arc<Hub>,
    hub_name: String,
    user: Option<String>,
    roles: Vec<String>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    upgrade: Option<WebSocketUpgrade>,
) -> Result<Response, ApiError> {
    let kind = requested_transport(headers, upgrade.is_some());
    let id = query.get("id").cloned();

    if let Some(id) = &id
        && let Some(handle) = hub.session(id)
    {
        if handle.info.user != user || handle.info.hub != hub_name.to_ascii_lowercase() {
            return Err(not_found());
        }
        return match (kind, handle.transport, upgrade) {
            (TransportKind::WebSockets, TransportKind::WebSockets, Some(upgrade)) => {
                Ok(configure(upgrade)
                    .on_upgrade(move |socket| async move {
                        // The running session takes the socket over (or drops it, closing it).
                        handle.control(Control::Attach(Box::new(socket)));
                    })
                    .into_response())
            }
            (TransportKind::LongPolling, TransportKind::LongPolling, _) => {
                Ok(long_poll(&hub, &handle).await)
            }
            _ => Err(bad_request(
                "This connection uses another transport; a connection token is good for one transport",
            )),
        };
    }

    let info = match &id {
        Some(id) => {
            let info = hub.take_pending(id, &hub_name).ok_or_else(not_found)?;
            if info.user != user {
                return Err(not_found());
            }
            info
        }
        None if kind == TransportKind::WebSockets => ConnectionInfo {
            connection_id: random_id(16),
            hub: hub_name.to_ascii_lowercase(),
            user,
            stateful: false,
            roles,
        },
        None => {
            return Err(bad_request(
                "The id query parameter is required for Server-Sent Events and long polling (negotiate first)",
            ));
        }
    };
    let token = id.unwrap_or_else(|| random_id(32));

    match (kind, upgrade) {
        (TransportKind::WebSockets, Some(upgrade)) => {
            // Boxed: axum keeps the callback's room in the connection's task for its whole life.
            let start = Box::new((hub, info, token));
            Ok(configure(upgrade)
                .on_upgrade(move |socket| {
                    // One task per WebSocket connection: the session reads and writes the socket.
                    let (hub, info, token) = *start;
                    let wire = Wire::socket(socket);
                    connection::run_session(start_session(
                        &hub, info, token, kind, wire, None, None,
                    ))
                })
                .into_response())
        }
        (TransportKind::ServerSentEvents, _) => {
            let (link, end) = connection::link();
            let TransportEnd { inbound, outbound } = end;
            tokio::spawn(connection::run_session(start_session(
                &hub,
                info,
                token,
                kind,
                Wire::Link(link),
                Some(inbound),
                None,
            )));
            Ok(sse_response(outbound))
        }
        _ => {
            let (link, end) = connection::link();
            let TransportEnd { inbound, outbound } = end;
            let poll = Arc::new(tokio::sync::Mutex::new(outbound));
            tokio::spawn(connection::run_session(start_session(
                &hub,
                info,
                token,
                TransportKind::LongPolling,
                Wire::Link(link),
                Some(inbound),
                Some(poll),
            )));
            // The first poll answers at once: the connection is established.
            Ok((
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/octet-stream")],
                Body::empty(),
            )
                .into_response())
        }
    }
}

fn configure(upgrade: WebSocketUpgrade) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(READ_BUFFER_SIZE)
        .max_message_size(MAX_TRANSPORT_MESSAGE_BYTES)
        .max_frame_size(MAX_TRANSPORT_MESSAGE_BYTES)
}

/// Records a session in the hub's session table and makes it ready to run.
fn start_session(
    hub: &Arc<Hub>,
    info: ConnectionInfo,
    token: String,
    kind: TransportKind,
    wire: Wire,
    inbound: Option<flume::Sender<Bytes>>,
    poll: Option<Arc<tokio::sync::Mutex<flume::Receiver<Frame>>>>,
) -> connection::Prepared {
    let handle = Arc::new(SessionHandle {
        info,
        transport: kind,
        mailbox: Default::default(),
        inbound,
        poll,
    });
    let token: Arc<str> = token.into();
    hub.add_session(token.clone(), handle.clone());
    connection::prepare(hub, handle, token, wire)
}

fn sse_response(outbound: flume::Receiver<Frame>) -> Response {
    let preamble =
        futures_util::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b":\r\n")) });
    let frames = futures_util::stream::unfold(outbound, |rx| async move {
        match rx.recv_async().await.ok()? {
            Frame::Text(text) => {
                let mut event = String::with_capacity(text.len() + 16);
                for line in text.as_str().split('\n') {
                    event.push_str("data: ");
                    event.push_str(line.trim_end_matches('\r'));
                    event.push_str("\r\n");
                }
                event.push_str("\r\n");
                Some((Ok::<_, Infallible>(Bytes::from(event)), rx))
            }
            // SSE is text only (the handshake refuses MessagePack); a drop ends the stream.
            Frame::Binary(_) | Frame::Drop => None,
        }
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(preamble.chain(frames)),
    )
        .into_response()
}

async fn long_poll(hub: &Hub, handle: &SessionHandle) -> Response {
    let Some(poll) = &handle.poll else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let wait = hub.config().timeouts.long_poll;
    let Ok(rx) = tokio::time::timeout(wait, poll.lock()).await else {
        return StatusCode::CONFLICT.into_response();
    };
    let first = match tokio::time::timeout(wait, rx.recv_async()).await {
        Err(_) => return (StatusCode::OK, Body::empty()).into_response(),
        Ok(Err(_)) | Ok(Ok(Frame::Drop)) => return StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(frame)) => frame,
    };
    let mut body = Vec::new();
    let mut push = |frame: Frame| match frame {
        Frame::Text(t) => body.extend_from_slice(t.as_bytes()),
        Frame::Binary(b) => body.extend_from_slice(&b),
        Frame::Drop => {}
    };
    push(first);
    while let Ok(frame) = rx.try_recv() {
        push(frame);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response()
}

/// `POST /client/?id=TOKEN`: data from an SSE or long-polling client.
pub(crate) async fn post(
    hub: &Hub,
    hub_name: &str,
    user: Option<String>,
    id: Option<&String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = id.ok_or_else(|| bad_request("The id query parameter is required"))?;
    let handle = hub.session(id).ok_or_else(not_found)?;
    if handle.info.user != user || handle.info.hub != hub_name.to_ascii_lowercase() {
        return Err(not_found());
    }
    let inbound = handle.inbound.clone().ok_or_else(|| {
        bad_request("This connection uses WebSockets; send on the socket, not with POST")
    })?;
    inbound.send_async(body).await.map_err(|_| not_found())?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /client/?id=TOKEN`: ends the connection (202).
pub(crate) async fn delete(
    hub: &Hub,
    hub_name: &str,
    user: Option<String>,
    id: Option<&String>,
) -> Result<Response, ApiError> {
    let id = id.ok_or_else(|| bad_request("The id query parameter is required"))?;
    let handle = hub.session(id).ok_or_else(not_found)?;
    if handle.info.user != user || handle.info.hub != hub_name.to_ascii_lowercase() {
        return Err(not_found());
    }
    handle.control(Control::End);
    Ok(StatusCode::ACCEPTED.into_response())
}
