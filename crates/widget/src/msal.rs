//! Sign-in with MSAL.js (`@azure/msal-browser`, the UMD bundle's global `msal`), loaded only
//! when `config.json` says `"auth": {"mode": "msal"}`: dev-mode agents download nothing extra.
//!
//! The bindings cover exactly what the widget calls: `PublicClientApplication` with
//! `initialize`, `handleRedirectPromise`, `getActiveAccount`/`getAllAccounts`/
//! `setActiveAccount`, `acquireTokenSilent`, `acquireTokenPopup`, `acquireTokenRedirect`,
//! `ssoSilent` and `clearCache`.
//!
//! Where the widget runs decides the interactive flow (`switchboard_core::signin`): a top-level
//! tab redirects (`auth.interaction`, default `redirect`); a frame uses a popup, and a frame
//! under another site's page (a CRM) opens it through MSAL's popup relay page
//! (`popup-relay.html`, `auth.popupRelayUri`), because the redirect bridge's
//! `BroadcastChannel` is partitioned by top-level site.
//! Errors become [`SignInProblem`]s (`switchboard-core`), whose messages say what to do.
//! Tokens are never logged: the diagnostics say when one was renewed and how long it lives.

use js_sys::{Array, Promise, Reflect};
use serde_json::{Value, json};
use switchboard_core::AuthConfig;
use switchboard_core::signin::{self, SignInProblem, classify};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// `msal.PublicClientApplication`.
    #[wasm_bindgen(js_namespace = msal)]
    pub type PublicClientApplication;
    #[wasm_bindgen(constructor, js_namespace = msal)]
    fn new(config: &JsValue) -> PublicClientApplication;
    #[wasm_bindgen(method)]
    fn initialize(this: &PublicClientApplication) -> Promise;
    #[wasm_bindgen(method, js_name = handleRedirectPromise)]
    fn handle_redirect_promise(this: &PublicClientApplication) -> Promise;
    #[wasm_bindgen(method, js_name = getActiveAccount)]
    fn get_active_account(this: &PublicClientApplication) -> JsValue;
    #[wasm_bindgen(method, js_name = getAllAccounts)]
    fn get_all_accounts(this: &PublicClientApplication) -> Array;
    #[wasm_bindgen(method, js_name = setActiveAccount)]
    fn set_active_account(this: &PublicClientApplication, account: &JsValue);
    #[wasm_bindgen(method, js_name = acquireTokenSilent)]
    fn acquire_token_silent(this: &PublicClientApplication, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = acquireTokenPopup)]
    fn acquire_token_popup(this: &PublicClientApplication, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = acquireTokenRedirect)]
    fn acquire_token_redirect(this: &PublicClientApplication, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = ssoSilent)]
    fn sso_silent(this: &PublicClientApplication, request: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = clearCache)]
    fn clear_cache(this: &PublicClientApplication, request: &JsValue) -> Promise;
}

/// The `type` of the message by which MSAL's popup relay page hands the IdP's answer to the
/// widget (`POPUP_RELAY_RESPONSE_TYPE`, msal-browser 5.29 `popup_relay/constants`).
const RELAY_ANSWER: &str = "msal:popup-relay-response:v1";

/// What the widget answers the relay page once an answer of type [`RELAY_ANSWER`] has been
/// delivered here: `popup-relay.html` closes itself only then.
const RELAY_ANSWER_RECEIVED: &str = "switchboard:popup-relay-answer-received";

/// Tells the popup relay page when its answer has reached this page, so that it closes only
/// after MSAL here has taken the answer.
///
/// MSAL 5.29's relay page closes itself right after posting the answer, and MSAL here polls
/// that window's `closed` every 500 ms: a poll that runs before the posted message is handled
/// (a busy or throttled page) rejects with `user_cancelled` and drops the answer. The relay
/// page (`popup-relay.html`) therefore waits for this acknowledgement. It is posted from the
/// `message` event's own dispatch, in which MSAL's listener settles too, so the window cannot
/// be seen closed before. Only messages from this page's origin with the relay's `type` are
/// answered, and only to their source window, at this origin. Installed once per page.
fn acknowledge_relay_answers(own_origin: &str) {
    thread_local!(static INSTALLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if INSTALLED.with(|i| i.replace(true)) {
        return;
    }
    let Some(window) = web_sys::window() else {
        return;
    };
    let origin = own_origin.to_owned();
    let listener =
        Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if event.origin() != origin {
                return;
            }
            let kind = Reflect::get(&event.data(), &"type".into())
                .ok()
                .and_then(|t| t.as_string());
            if kind.as_deref() != Some(RELAY_ANSWER) {
                return;
            }
            // The relay window is another realm: `instanceof Window` (dyn_into) is false for
            // its WindowProxy, so the source is taken unchecked; a source that is not a window
            // makes post_message fail, which is recorded below.
            let Some(source) = event
                .source()
                .map(|s| s.unchecked_into::<web_sys::Window>())
            else {
                return;
            };
            let reply = js_sys::Object::new();
            let _ = Reflect::set(&reply, &"type".into(), &RELAY_ANSWER_RECEIVED.into());
            if source.post_message(&reply, &origin).is_err() {
                crate::diagnostics::record(
                    "sign-in: the relay window could not be told the answer arrived".into(),
                );
            }
        });
    let _ = window.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref());
    listener.forget(); // once per page, for its lifetime
}

/// The MSAL bundle, copied next to the widget by the build (pinned in package-lock.json).
const SCRIPT: &str = "msal-browser.min.js";

fn js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

fn text(object: &JsValue, key: &str) -> String {
    Reflect::get(object, &key.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// An MSAL rejection as a problem (its `errorCode` and message; never a token).
pub fn problem(error: &JsValue) -> SignInProblem {
    let code = text(error, "errorCode");
    let message = text(error, "errorMessage") + " " + &text(error, "message");
    let code = if code.is_empty() {
        text(error, "name")
    } else {
        code
    };
    crate::diagnostics::record(format!("sign-in error: {code}"));
    classify(&code, &message)
}

async fn load_script() -> Result<(), SignInProblem> {
    let window = web_sys::window().ok_or(SignInProblem::Other("no window".into()))?;
    if Reflect::has(&window, &"msal".into()).unwrap_or(false) {
        return Ok(());
    }
    let document = window
        .document()
        .ok_or(SignInProblem::Other("no document".into()))?;
    let script = document
        .create_element("script")
        .map_err(|_| SignInProblem::Other("script".into()))?;
    let _ = script.set_attribute("src", SCRIPT);
    let loaded = Promise::new(&mut |resolve, reject| {
        let _ = Reflect::set(&script, &"onload".into(), &resolve);
        let _ = Reflect::set(&script, &"onerror".into(), &reject);
    });
    if let Some(head) = document.head() {
        let _ = head.append_child(&script);
    }
    JsFuture::from(loaded)
        .await
        .map(|_| ())
        .map_err(|_| SignInProblem::Other(format!("{SCRIPT} missing")))
}

/// A signed-in (or signing-in) MSAL client for one app registration.
#[derive(Clone)]
pub struct Msal {
    app: std::rc::Rc<PublicClientApplication>,
    api_scopes: Vec<String>,
    graph_scopes: Vec<String>,
    prompt: Option<String>,
    /// The "Sign in" button redirects (top level, `auth.interaction` `redirect`).
    redirect: bool,
}

/// What a token call gives back: the token and its account's user name.
pub struct Token {
    pub access_token: String,
    pub username: String,
}

fn result(value: &JsValue) -> Token {
    let account = Reflect::get(value, &"account".into()).unwrap_or(JsValue::NULL);
    Token {
        access_token: text(value, "accessToken"),
        username: text(&account, "username"),
    }
}

impl Msal {
    /// Loads MSAL, creates and initialises the client and handles a redirect response.
    pub async fn start(auth: &AuthConfig) -> Result<Self, SignInProblem> {
        let AuthConfig::Msal {
            client_id,
            authority,
            scopes,
            graph_scopes,
            redirect_uri,
            cache_location,
            popup_relay_uri,
            known_authorities,
            protocol_mode,
            prompt,
            interaction,
        } = auth
        else {
            return Err(SignInProblem::Other("auth.mode".into()));
        };
        load_script().await?;
        let window = web_sys::window().ok_or(SignInProblem::Other("no window".into()))?;
        let location = window.location();
        let framed = window
            .parent()
            .ok()
            .flatten()
            .is_some_and(|p| !js_sys::Object::is(&p, &window));
        // The top-level page's origin: the last of `location.ancestorOrigins` (Chromium,
        // Safari); unknown elsewhere, which means the relay.
        let ancestors = Reflect::get(&location, &"ancestorOrigins".into()).unwrap_or_default();
        let top = Reflect::get(&ancestors, &"length".into())
            .ok()
            .and_then(|n| n.as_f64())
            .filter(|n| *n >= 1.0)
            .and_then(|n| Reflect::get(&ancestors, &(n - 1.0).into()).ok())
            .and_then(|o| o.as_string());
        let own = location.origin().unwrap_or_default();
        let base = location.href().unwrap_or_default();
        let base = base.split(['?', '#']).next().unwrap_or_default();
        let base = &base[..base.rfind('/').map_or(base.len(), |i| i + 1)];
        let redirect = redirect_uri
            .clone()
            .unwrap_or_else(|| format!("{base}redirect.html"));
        let mut auth = json!({
            "clientId": client_id,
            "authority": authority,
            "redirectUri": redirect,
            "postLogoutRedirectUri": redirect,
            "knownAuthorities": known_authorities,
        });
        if signin::needs_popup_relay(&own, framed, top.as_deref()) {
            // MSAL resolves a relative relay URI against the origin, not the page: anchor it
            // next to the widget unless it is already a path from the root.
            let relay = match popup_relay_uri.as_deref() {
                Some(path) if path.starts_with('/') => path.to_owned(),
                Some(path) => format!("{base}{path}"),
                None => format!("{base}popup-relay.html"),
            };
            crate::diagnostics::record("sign-in: popup relay (framed by another site)".into());
            auth["popupRelayUri"] = json!(relay);
            acknowledge_relay_answers(&own);
        }
        let config = json!({
            "auth": auth,
            "cache": { "cacheLocation": cache_location },
            "system": { "protocolMode": protocol_mode },
        });
        let app = PublicClientApplication::new(&js(&config));
        JsFuture::from(app.initialize())
            .await
            .map_err(|e| problem(&e))?;
        match JsFuture::from(app.handle_redirect_promise()).await {
            Ok(r) if !r.is_null() && !r.is_undefined() => {
                crate::diagnostics::record("sign-in: redirect answer taken".into());
                app.set_active_account(
                    &Reflect::get(&r, &"account".into()).unwrap_or(JsValue::NULL),
                );
            }
            Ok(_) => {}
            Err(e) => return Err(problem(&e)),
        }
        Ok(Self {
            app: std::rc::Rc::new(app),
            api_scopes: scopes.clone(),
            graph_scopes: graph_scopes.clone(),
            prompt: prompt.clone(),
            redirect: signin::use_redirect(*interaction, framed),
        })
    }

    /// Whether the "Sign in" button redirects the tab ([`Msal::redirect`]) rather than open a
    /// popup ([`Msal::popup`]).
    pub fn redirects(&self) -> bool {
        self.redirect
    }

    fn interactive_request(&self) -> JsValue {
        let mut request = json!({ "scopes": self.api_scopes });
        if let Some(prompt) = &self.prompt {
            request["prompt"] = json!(prompt);
        }
        js(&request)
    }

    /// Interactive sign-in by redirect (`acquireTokenRedirect`): the tab goes to the identity
    /// provider, whose answer comes back through the redirect bridge (`redirect.html`) to this
    /// page, where [`Msal::start`]'s `handleRedirectPromise` takes it. Resolves when the
    /// navigation starts; an error (e.g. the authority is unreachable) comes back as a problem.
    pub async fn redirect(&self) -> Result<(), SignInProblem> {
        crate::diagnostics::record("sign-in: redirecting to the identity provider".into());
        JsFuture::from(self.app.acquire_token_redirect(&self.interactive_request()))
            .await
            .map(|_| ())
            .map_err(|e| problem(&e))
    }

    /// The account to use: the active one, else the only one (made active). `None` when there
    /// are none or several (then the agent picks in the popup).
    fn account(&self) -> Option<JsValue> {
        let active = self.app.get_active_account();
        if !active.is_null() && !active.is_undefined() {
            return Some(active);
        }
        let all = self.app.get_all_accounts();
        (all.length() == 1).then(|| {
            let only = all.get(0);
            self.app.set_active_account(&only);
            only
        })
    }

    /// Graph presence scopes configured (empty: Graph presence off).
    pub fn has_graph(&self) -> bool {
        !self.graph_scopes.is_empty()
    }

    async fn silent(&self, scopes: &[String]) -> Result<Token, SignInProblem> {
        let account = self.account().ok_or(SignInProblem::InteractionRequired)?;
        let request = js(&json!({ "scopes": scopes }));
        let _ = Reflect::set(&request, &"account".into(), &account);
        JsFuture::from(self.app.acquire_token_silent(&request))
            .await
            .map(|r| result(&r))
            .map_err(|e| problem(&e))
    }

    /// An access token for the hub API scope (cached by MSAL, refreshed when near expiry).
    pub async fn api_token(&self) -> Result<Token, SignInProblem> {
        self.silent(&self.api_scopes).await
    }

    /// An access token for Graph presence.
    pub async fn graph_token(&self) -> Result<String, SignInProblem> {
        self.silent(&self.graph_scopes)
            .await
            .map(|t| t.access_token)
    }

    /// `ssoSilent` with the host's user as login hint (CIF `getEnvironment`), when known.
    pub async fn sso(&self, login_hint: &str) -> Result<Token, SignInProblem> {
        let request = js(&json!({ "scopes": self.api_scopes, "loginHint": login_hint }));
        let token = JsFuture::from(self.app.sso_silent(&request))
            .await
            .map(|r| result(&r))
            .map_err(|e| problem(&e))?;
        Ok(token)
    }

    /// Interactive sign-in in a popup. Call it straight from a click handler: the popup opens
    /// synchronously, inside the user gesture, so the browser does not block it.
    pub fn popup(&self) -> impl std::future::Future<Output = Result<Token, SignInProblem>> + use<> {
        let promise = self.app.acquire_token_popup(&self.interactive_request());
        let app = self.app.clone();
        async move {
            let r = JsFuture::from(promise).await.map_err(|e| problem(&e))?;
            app.set_active_account(&Reflect::get(&r, &"account".into()).unwrap_or(JsValue::NULL));
            Ok(result(&r))
        }
    }

    /// Forgets this app's tokens and accounts in this browser (MSAL's cache for the client id).
    pub async fn sign_out(&self) {
        let request = js(&json!({}));
        if let Some(account) = self.account() {
            let _ = Reflect::set(&request, &"account".into(), &account);
        }
        let _ = JsFuture::from(self.app.clear_cache(&request)).await;
        self.app.set_active_account(&JsValue::NULL);
    }
}
