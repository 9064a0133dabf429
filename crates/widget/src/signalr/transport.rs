//! The three SignalR transports in the browser (`TransportProtocols.md`): WebSockets,
//! Server-Sent Events and long polling. Each only moves frames: it reports `Opened`, `Data` and
//! `Closed` to its owner through [`TransportEvent`] and sends what it is given, in order.
//!
//! Tokens: WebSockets and SSE cannot set headers in browsers, so the access token travels in the
//! `access_token` query parameter (the official client does the same); long polling and the
//! POSTs of SSE use `Authorization: Bearer`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use switchboard_signalr::negotiate::{TransportKind, append_query, websocket_url};
use switchboard_signalr::protocol::Transmit;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, EventSource, MessageEvent, WebSocket};

use crate::browser::StartedSocket;

/// What a transport tells its owner.
pub enum TransportEvent {
    /// Frames can flow.
    Opened,
    /// One or more records (text) received.
    Text(String),
    /// One or more length-prefixed frames (binary) received.
    Binary(Vec<u8>),
    /// The transport is gone; `opened` says whether it had opened.
    Closed { reason: String, opened: bool },
}

/// Where a transport reports to.
pub type Sink = Rc<dyn Fn(TransportEvent)>;

/// An open (or opening) transport.
pub enum Transport {
    WebSocket(WebSocketTransport),
    Sse {
        http: HttpTransport,
        /// Held so the event stream stays open; dropping it closes the stream.
        _receiver: SseReceiver,
    },
    LongPolling(HttpTransport),
}

impl Transport {
    /// Starts a transport to `url` (the hub URL with `id=` already added).
    pub fn open(
        kind: TransportKind,
        url: &str,
        token: &str,
        binary: bool,
        sink: Sink,
    ) -> Result<Self, String> {
        match kind {
            TransportKind::WebSockets => {
                WebSocketTransport::open(&websocket_url(url, Some(token)), binary, sink)
                    .map(Transport::WebSocket)
            }
            TransportKind::ServerSentEvents => {
                let receiver =
                    SseReceiver::open(&append_query(url, "access_token", token), sink.clone())?;
                Ok(Transport::Sse {
                    http: HttpTransport::new(url, token, sink, false),
                    _receiver: receiver,
                })
            }
            TransportKind::LongPolling => {
                let http = HttpTransport::new(url, token, sink, binary);
                http.start_polling();
                Ok(Transport::LongPolling(http))
            }
        }
    }

    /// Takes over the WebSocket the start-up script opened ([`StartedSocket`]): see
    /// [`WebSocketTransport::adopt`]. `Err` when the script's record is not usable.
    pub fn adopt(started: &StartedSocket, sink: Sink) -> Result<Self, String> {
        WebSocketTransport::adopt(started, sink).map(Transport::WebSocket)
    }

    /// Sends one frame; frames go out in the order given.
    pub fn send(&self, frame: Transmit) {
        match self {
            Transport::WebSocket(ws) => ws.send(frame),
            Transport::Sse { http, .. } | Transport::LongPolling(http) => http.send(frame),
        }
    }
}

/// WebSockets: text frames for JSON, binary for MessagePack.
pub struct WebSocketTransport {
    ws: WebSocket,
    /// The handshake request the start-up script already sent on an adopted socket: the core's
    /// own (the first frame it sends) is not sent again; when it is not the same text, the
    /// socket is closed instead (the attempt then fails, and the client negotiates itself).
    already_sent: std::cell::RefCell<Option<String>>,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl WebSocketTransport {
    fn open(url: &str, binary: bool, sink: Sink) -> Result<Self, String> {
        let ws = WebSocket::new(url)
            .map_err(|_| "The browser refused to open a WebSocket to the hub.".to_owned())?;
        if binary {
            ws.set_binary_type(BinaryType::Arraybuffer);
        }
        Ok(Self::listen(ws, Rc::default(), None, sink))
    }

    /// Takes over the start-up script's WebSocket (JSON protocol, text frames): its handlers
    /// become this transport's, and what it recorded before (`open`, each `message`, `close`)
    /// is reported to `sink` in order, in a microtask (after the caller has stored this
    /// transport, and before any later event of the socket, which comes in a task of its own).
    /// The handshake request the script sent is not sent again. `Err` when the script's record
    /// is not usable (the caller then negotiates itself).
    fn adopt(started: &StartedSocket, sink: Sink) -> Result<Self, String> {
        let (ws, events, sent) = started
            .take()
            .ok_or_else(|| "the start-up script's socket could not be taken".to_owned())?;
        let mut recorded = Vec::new();
        let mut opened = false;
        for event in events.iter() {
            let field = |name: &str| js_sys::Reflect::get(&event, &name.into()).ok();
            match field("type").and_then(|t| t.as_string()).as_deref() {
                Some("open") => {
                    opened = true;
                    recorded.push(TransportEvent::Opened);
                }
                Some("message") => match field("data").and_then(|d| d.as_string()) {
                    Some(text) => recorded.push(TransportEvent::Text(text)),
                    None => {
                        let _ = ws.close();
                        return Err("the hub sent a binary frame on a JSON connection".into());
                    }
                },
                Some("close") => recorded.push(TransportEvent::Closed {
                    reason: close_reason(
                        field("code").and_then(|c| c.as_f64()).unwrap_or(1006.0) as u16,
                        &field("reason")
                            .and_then(|r| r.as_string())
                            .unwrap_or_default(),
                    ),
                    opened,
                }),
                _ => {}
            }
        }
        let transport = Self::listen(
            ws,
            Rc::new(std::cell::Cell::new(opened)),
            sent,
            sink.clone(),
        );
        wasm_bindgen_futures::spawn_local(async move {
            for event in recorded {
                sink(event);
            }
        });
        Ok(transport)
    }

    /// Sets `ws`'s handlers to report to `sink` (`opened`: whether it has opened already).
    fn listen(
        ws: WebSocket,
        opened: Rc<std::cell::Cell<bool>>,
        already_sent: Option<String>,
        sink: Sink,
    ) -> Self {
        let on_open = {
            let (sink, opened) = (sink.clone(), opened.clone());
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                opened.set(true);
                sink(TransportEvent::Opened)
            })
        };
        let on_message = {
            let sink = sink.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data();
                if let Some(text) = data.as_string() {
                    sink(TransportEvent::Text(text));
                } else if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
                    sink(TransportEvent::Binary(
                        js_sys::Uint8Array::new(buffer).to_vec(),
                    ));
                }
            })
        };
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            sink(TransportEvent::Closed {
                reason: close_reason(event.code(), &event.reason()),
                opened: opened.get(),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Self {
            ws,
            already_sent: std::cell::RefCell::new(already_sent),
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        }
    }

    fn send(&self, frame: Transmit) {
        if let Some(sent) = self.already_sent.borrow_mut().take() {
            if !matches!(&frame, Transmit::Text(text) if *text == sent) {
                // The script's handshake is not the one this client would send (another
                // version): the connection cannot be used; closing it fails the attempt.
                let _ = self.ws.close();
            }
            return;
        }
        let _ = match frame {
            Transmit::Text(text) => self.ws.send_with_str(&text),
            Transmit::Binary(bytes) => self.ws.send_with_u8_array(&bytes),
        };
    }
}

/// The reason a closed WebSocket gives (as the official client words it).
fn close_reason(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("WebSocket closed with status code: {code}.")
    } else {
        format!("WebSocket closed with status code: {code} ({reason}).")
    }
}

impl Drop for WebSocketTransport {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// Server-Sent Events, server to client. The browser's automatic EventSource reconnect is not
/// used: SignalR connection ids are not reusable that way, so an error closes the transport.
pub struct SseReceiver {
    source: EventSource,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl SseReceiver {
    fn open(url: &str, sink: Sink) -> Result<Self, String> {
        let source = EventSource::new(url)
            .map_err(|_| "The browser refused to open an event stream to the hub.".to_owned())?;
        let opened = Rc::new(std::cell::Cell::new(false));
        let on_open = {
            let (sink, opened) = (sink.clone(), opened.clone());
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                if !opened.replace(true) {
                    sink(TransportEvent::Opened)
                }
            })
        };
        let on_message = {
            let sink = sink.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(text) = event.data().as_string() {
                    sink(TransportEvent::Text(text));
                }
            })
        };
        let on_error = {
            let source = source.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                source.close();
                sink(TransportEvent::Closed {
                    reason: "The event stream from the hub ended.".into(),
                    opened: opened.get(),
                })
            })
        };
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self {
            source,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
        })
    }
}

impl Drop for SseReceiver {
    fn drop(&mut self) {
        self.source.set_onopen(None);
        self.source.set_onmessage(None);
        self.source.set_onerror(None);
        self.source.close();
    }
}

/// Client → server over HTTP POST (SSE and long polling), one request at a time so frames
/// arrive in order; what queues meanwhile goes in the next request's body. With long polling,
/// also the poll loop (server → client).
pub struct HttpTransport(Rc<HttpShared>);

struct HttpShared {
    url: String,
    token: String,
    sink: Sink,
    binary: bool,
    queue: RefCell<VecDeque<Transmit>>,
    sending: std::cell::Cell<bool>,
    running: std::cell::Cell<bool>,
}

impl HttpTransport {
    fn new(url: &str, token: &str, sink: Sink, binary: bool) -> Self {
        HttpTransport(Rc::new(HttpShared {
            url: url.to_owned(),
            token: token.to_owned(),
            sink,
            binary,
            queue: RefCell::new(VecDeque::new()),
            sending: std::cell::Cell::new(false),
            running: std::cell::Cell::new(true),
        }))
    }

    fn send(&self, frame: Transmit) {
        self.0.queue.borrow_mut().push_back(frame);
        if !self.0.sending.replace(true) {
            let shared = self.0.clone();
            wasm_bindgen_futures::spawn_local(async move {
                loop {
                    let batch: Vec<Transmit> = shared.queue.borrow_mut().drain(..).collect();
                    if batch.is_empty() || !shared.running.get() {
                        break;
                    }
                    let mut body = Vec::new();
                    for frame in batch {
                        body.extend_from_slice(frame.as_bytes());
                    }
                    let request = gloo_net::http::Request::post(&shared.url)
                        .header("Authorization", &format!("Bearer {}", shared.token))
                        .body(js_sys::Uint8Array::from(body.as_slice()));
                    let ok = match request {
                        Ok(request) => request.send().await.map(|r| r.ok()).unwrap_or(false),
                        Err(_) => false,
                    };
                    if !ok && shared.running.replace(false) {
                        (shared.sink)(TransportEvent::Closed {
                            reason: "Sending to the hub failed.".into(),
                            opened: true,
                        });
                        break;
                    }
                }
                shared.sending.set(false);
            });
        }
    }

    /// Long polling: the first poll confirms the connection, then polls follow one another;
    /// 204 means the server closed the connection (`TransportProtocols.md`, "Long Polling").
    fn start_polling(&self) {
        let shared = self.0.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let mut opened = false;
            // Bounded by the connection's life: each poll waits on the server at most its
            // poll timeout, and the loop ends when the server answers 204, a request fails, or
            // the transport is dropped.
            while shared.running.get() {
                let url = append_query(&shared.url, "_", &(js_sys::Date::now() as u64).to_string());
                let response = gloo_net::http::Request::get(&url)
                    .header("Authorization", &format!("Bearer {}", shared.token))
                    .send()
                    .await;
                if !shared.running.get() {
                    break;
                }
                let reason = match response {
                    Ok(r) if r.status() == 204 => "The hub closed the connection.".to_owned(),
                    Ok(r) if r.ok() => {
                        if !opened {
                            opened = true;
                            (shared.sink)(TransportEvent::Opened);
                        }
                        let event = if shared.binary {
                            r.binary()
                                .await
                                .ok()
                                .filter(|b| !b.is_empty())
                                .map(TransportEvent::Binary)
                        } else {
                            r.text()
                                .await
                                .ok()
                                .filter(|t| !t.is_empty())
                                .map(TransportEvent::Text)
                        };
                        if let Some(event) = event {
                            (shared.sink)(event);
                        }
                        continue;
                    }
                    Ok(r) => format!("Long polling failed with HTTP {}.", r.status()),
                    Err(_) => "Long polling could not reach the hub.".to_owned(),
                };
                if shared.running.replace(false) {
                    (shared.sink)(TransportEvent::Closed { reason, opened });
                }
                break;
            }
        });
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        if self.0.running.replace(false) {
            // Tell the server the connection is over (long polling DELETE; harmless for SSE).
            let (url, token) = (self.0.url.clone(), self.0.token.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = gloo_net::http::Request::delete(&url)
                    .header("Authorization", &format!("Bearer {token}"))
                    .send()
                    .await;
            });
        }
    }
}
