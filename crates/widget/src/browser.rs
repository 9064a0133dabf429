//! Small browser helpers the rest of the widget shares: the clock, `localStorage`, the page's
//! query parameters and document events. No state of the widget's own.

use wasm_bindgen::JsCast;

/// The widget's clock: Unix milliseconds (`Date.now()`), for call timers and records alike.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Milliseconds since the page loaded (`performance.now()`): a monotonic clock for the SignalR
/// core and the diagnostics log; 0 without one.
pub fn since_load_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = performance, js_name = mark)]
    fn performance_mark(name: &str) -> Result<(), wasm_bindgen::JsValue>;
}

/// A User Timing mark (`performance.mark(name)`, W3C User Timing Level 3 §3.1.1) on the
/// start-up path (`switchboard:mounted`, `switchboard:config`, `switchboard:hub-start`,
/// `switchboard:token` (a negotiate's token in hand), `switchboard:desk`), read by
/// `scripts/bench` for its cold-start breakdown and visible in the browser's performance
/// panel. Nothing happens where the API is missing.
pub fn mark(name: &str) {
    let _ = performance_mark(name);
}

/// [`next_task`]'s state.
#[derive(Default)]
struct TaskQueue {
    /// The functions waiting, in the order of the calls.
    waiting: std::collections::VecDeque<Box<dyn FnOnce()>>,
    /// The channel's sending port (made on first use; `None` where there is no `MessageChannel`).
    port: Option<web_sys::MessagePort>,
    /// Whether a message is posted and not yet handled.
    in_flight: bool,
}

thread_local! {
    static NEXT_TASK: std::cell::RefCell<TaskQueue> = std::cell::RefCell::default();
}

/// The channel's sending port, made with its receiving handler on first use.
fn task_port(q: &mut TaskQueue) -> Option<web_sys::MessagePort> {
    if q.port.is_none()
        && let Ok(channel) = web_sys::MessageChannel::new()
    {
        let run = wasm_bindgen::closure::Closure::<dyn Fn()>::new(|| {
            // One queued function per message: each runs in its own task; the next message
            // is posted first if more wait.
            let (f, again) = NEXT_TASK.with(|q| {
                let mut q = q.borrow_mut();
                let f = q.waiting.pop_front();
                q.in_flight = !q.waiting.is_empty();
                (f, q.port.clone().filter(|_| q.in_flight))
            });
            if let Some(port) = again {
                let _ = port.post_message(&wasm_bindgen::JsValue::NULL);
            }
            if let Some(f) = f {
                f();
            }
        });
        channel
            .port1()
            .set_onmessage(Some(run.as_ref().unchecked_ref()));
        run.forget();
        q.port = Some(channel.port2());
    }
    q.port.clone()
}

/// Runs `f` in a task of its own, soon after the current one and its microtasks (rendering
/// work included), in the order of the calls: a `MessageChannel` message (HTML §9.4.3), which
/// unlike a 0 ms timer is not held back to 1 s in a background tab. Used to keep work that
/// can wait a task (console output, the host's reaction to a ringing call, the clock) off the
/// path from a hub frame to the ringing dialog (issue 17, "notification latency"). One
/// message is in flight at a time: a task runs the first queued function and posts again if
/// more wait, so only the first call of a task pays for `postMessage`. Runs at once when
/// there is no `MessageChannel`.
pub fn next_task(f: impl FnOnce() + 'static) {
    enum Then {
        Post(web_sys::MessagePort),
        Wait,
        RunNow(Box<dyn FnOnce()>),
    }
    let then = NEXT_TASK.with(|q| {
        let mut q = q.borrow_mut();
        match task_port(&mut q) {
            None => Then::RunNow(Box::new(f)),
            Some(port) => {
                q.waiting.push_back(Box::new(f));
                if std::mem::replace(&mut q.in_flight, true) {
                    Then::Wait // the message in flight runs it in turn
                } else {
                    Then::Post(port)
                }
            }
        }
    });
    match then {
        Then::Post(port) => {
            let _ = port.post_message(&wasm_bindgen::JsValue::NULL);
        }
        Then::Wait => {}
        Then::RunNow(f) => f(),
    }
}

/// Runs `f` once when the browser is idle (`requestIdleCallback`, W3C Cooperative Scheduling
/// of Background Tasks §4), for work that only prepares for later (formatters a ring will need)
/// and must not delay what the agent waits for now. Where the API is missing (Safari 18 ships
/// it only behind a flag) `f` runs in a timer task 200 ms later instead.
pub fn when_idle(f: impl FnOnce() + 'static) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let has_idle = js_sys::Reflect::has(&window, &"requestIdleCallback".into()).unwrap_or(false);
    let callback = wasm_bindgen::closure::Closure::once_into_js(f);
    if has_idle {
        let _ = window.request_idle_callback(callback.unchecked_ref());
    } else {
        let _ = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), 200);
    }
}

/// Runs `f` once the browser has painted the current frame: in a task queued from the next
/// animation frame (HTML §8.1.7.3, "update the rendering": the frame is painted between that
/// frame's callbacks and the next task). Used to show a state (the early connection's
/// "Connected") before long work (mounting the app) takes the main thread. A hidden page draws
/// no frames: call [`next_task`] there instead.
pub fn after_next_paint(f: impl FnOnce() + 'static) {
    let Some(window) = web_sys::window() else {
        return f();
    };
    let frame = wasm_bindgen::closure::Closure::once_into_js(move || next_task(f));
    let _ = window.request_animation_frame(frame.unchecked_ref());
}

/// Whether the page is hidden (`document.hidden`: a background tab, a minimised window; Page
/// Visibility §4.1); `false` when there is no document.
pub fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// This origin's `localStorage`, when the browser allows it.
pub fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// A query parameter of the page (`?lang=de`); `None` when absent or blank.
pub fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
        .filter(|v| !v.trim().is_empty())
}

/// Listens to a document event for the page's lifetime.
pub fn on_document(event: &str, handler: impl Fn() + 'static) {
    let closure = wasm_bindgen::closure::Closure::<dyn Fn()>::new(handler);
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        let _ = document.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    }
    closure.forget();
}

/// The user `index.html`'s start-up script asked a dev token for (`window.__switchboardBoot.user`),
/// if it did.
pub fn started_user() -> Option<String> {
    let window: wasm_bindgen::JsValue = web_sys::window()?.into();
    let boot = js_sys::Reflect::get(&window, &"__switchboardBoot".into()).ok()?;
    if !boot.is_object() {
        return None;
    }
    js_sys::Reflect::get(&boot, &"user".into())
        .ok()?
        .as_string()
}

/// An answer `index.html`'s start-up script got before the wasm ran: the HTTP status and the
/// body as text (read there, so taking it needs no further network task).
pub struct StartedAnswer {
    /// The HTTP status (`Response.status`).
    pub status: u16,
    /// The body (`Response.text()`).
    pub text: String,
}

/// Takes, once, an answer that `index.html`'s start-up script got before the wasm ran
/// (`window.__switchboardBoot[name]`, a promise of `{status, text}` or `null`): `"config"` (GET
/// config.json) or `"token"` (the dev token `POST`, made only for `?user=` in dev mode; `user`
/// must be the user it was asked for, `boot.user`). The property is deleted when taken, so a
/// later request (a reconnect's token) goes to the network. `None` when the script did not
/// run, the request failed or was not made, or it was for another user; the caller then asks
/// itself (issue 17, "the order of config.json, token and negotiate requests").
pub async fn take_started(name: &str, user: Option<&str>) -> Option<StartedAnswer> {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;
    let window: JsValue = web_sys::window()?.into();
    let boot = Reflect::get(&window, &"__switchboardBoot".into()).ok()?;
    if !boot.is_object() {
        return None;
    }
    let promise = Reflect::get(&boot, &name.into()).ok()?;
    let _ = Reflect::delete_property(boot.unchecked_ref::<js_sys::Object>(), &name.into());
    if let Some(user) = user
        && Reflect::get(&boot, &"user".into())
            .ok()?
            .as_string()
            .as_deref()
            != Some(user)
    {
        return None;
    }
    let promise: js_sys::Promise = promise.dyn_into().ok()?;
    let answer: JsValue = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let status = Reflect::get(&answer, &"status".into()).ok()?.as_f64()?;
    let text = Reflect::get(&answer, &"text".into()).ok()?.as_string()?;
    Some(StartedAnswer {
        status: status as u16,
        text,
    })
}

/// The hub connection `index.html`'s start-up script opened before the wasm ran
/// (`window.__switchboardBoot.socket`, issue 17): the negotiate it made (following the hub's
/// redirects) and the WebSocket it opened with it, the JSON handshake sent once it opened, and
/// every event the socket had since, in order. Taken once by the hub client's first attempt
/// ([`take_started_socket`]), which adopts the socket only when it was made for its hub URL
/// with its token (`signalr::transport::WebSocketTransport::adopt`) and closes it otherwise.
pub struct StartedSocket {
    /// `hub.url` as config.json gave it (before resolving), for the client to compare with its own.
    pub hub_url: String,
    /// The access token the first negotiate was made with (the dev token).
    pub token: String,
    /// The hub URL after the negotiate's redirects (the transport connected to it with `id=`).
    pub url: String,
    /// The token the transport connected with (the last redirect's, else `token`).
    pub connect_token: String,
    /// The last negotiate's answer, as the hub sent it.
    pub negotiate: String,
    /// The script's record: `{ws, events: [{type: "open"|"message"|"close", data?, code?,
    /// reason?}], sent, taken}`.
    pub record: wasm_bindgen::JsValue,
}

impl StartedSocket {
    /// Marks the socket taken (the script's 20 s watchdog then leaves it open) and returns it
    /// with the events it had so far. `None` when the record is not what the script makes.
    pub fn take(&self) -> Option<(web_sys::WebSocket, js_sys::Array, Option<String>)> {
        use js_sys::Reflect;
        let _ = Reflect::set(&self.record, &"taken".into(), &true.into());
        let ws = Reflect::get(&self.record, &"ws".into())
            .ok()?
            .dyn_into::<web_sys::WebSocket>()
            .ok()?;
        let events = Reflect::get(&self.record, &"events".into())
            .ok()?
            .dyn_into::<js_sys::Array>()
            .ok()?;
        let sent = Reflect::get(&self.record, &"sent".into()).ok()?.as_string();
        Some((ws, events, sent))
    }

    /// Closes the socket (not adopted) for good: a Close message first when it is open (the
    /// script sent the handshake then; `HubProtocol.md` "Close"), so that the hub does not keep
    /// it for a stateful resume that never comes, and take calls there meanwhile.
    pub fn close(self) {
        if let Some((ws, _, _)) = self.take() {
            ws.set_onopen(None);
            ws.set_onmessage(None);
            ws.set_onclose(None);
            if ws.ready_state() == web_sys::WebSocket::OPEN {
                let _ = ws.send_with_str("{\"type\":7}\u{1e}");
            }
            let _ = ws.close();
        }
    }
}

/// Takes, once, the hub connection the start-up script opened ([`StartedSocket`]); `None`
/// when it did not open one (another sign-in or protocol, a failed negotiate) or it was taken.
pub async fn take_started_socket() -> Option<StartedSocket> {
    use js_sys::Reflect;
    use wasm_bindgen::JsValue;
    let window: JsValue = web_sys::window()?.into();
    let boot = Reflect::get(&window, &"__switchboardBoot".into()).ok()?;
    if !boot.is_object() {
        return None;
    }
    let promise = Reflect::get(&boot, &"socket".into()).ok()?;
    let _ = Reflect::delete_property(boot.unchecked_ref::<js_sys::Object>(), &"socket".into());
    let promise: js_sys::Promise = promise.dyn_into().ok()?;
    let record = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let text = |name: &str| Reflect::get(&record, &name.into()).ok()?.as_string();
    Some(StartedSocket {
        hub_url: text("hubUrl")?,
        token: text("token")?,
        url: text("url")?,
        connect_token: text("connectToken")?,
        negotiate: text("negotiate")?,
        record,
    })
}
