//! Access tokens for the hub.
//!
//! Dev mode (DESIGN.md §3, "Dev sign-in"): `POST {tokenUrl}` with `{"user": "alice"}` answers
//! `{"accessToken": "<signed JWT>", "expiresOn": <unix seconds>}`. The token is kept in memory
//! only, never logged or stored, and fetched again for every negotiate so a reconnect after
//! expiry gets a fresh one.

/// Fetches a dev token for `user`: the one index.html's start-up script got for this user
/// before the wasm ran, if any (once; [`crate::browser::take_started`]), else a new `POST`.
/// Errors are sentences for the agent.
pub async fn dev_token(token_url: &str, user: &str) -> Result<String, String> {
    let (status, text) = match crate::browser::take_started("token", Some(user)).await {
        Some(answer) => (answer.status, Some(answer.text)),
        None => request_token(token_url, user).await?,
    };
    if !(200..300).contains(&status) {
        let text: String = text.unwrap_or_default().chars().take(200).collect();
        return Err(format!("Sign-in failed (HTTP {status}): {text}"));
    }
    // Read through `Value`: no derived deserializer in the download.
    let not_a_token =
        || "The sign-in service answered with something that is not a token.".to_owned();
    let text = text.ok_or_else(not_a_token)?;
    let body: serde_json::Value = serde_json::from_str(&text).map_err(|_| not_a_token())?;
    body.get("accessToken")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(not_a_token)
}

/// The token factory of a dev sign-in: each call is a [`dev_token`] for `user` from
/// `token_url` (the first one may be the start-up script's). Used for the hub connection (before
/// every negotiate) and, in dev mode, for Graph.
pub fn dev_tokens(
    token_url: &str,
    user: &str,
) -> std::rc::Rc<dyn Fn() -> crate::signalr::TokenFuture> {
    let (token_url, user) = (token_url.to_owned(), user.to_owned());
    std::rc::Rc::new(move || {
        let (url, user) = (token_url.clone(), user.clone());
        Box::pin(async move { dev_token(&url, &user).await })
    })
}

/// `POST {token_url}` with `{"user": user}`, bounded like negotiate
/// ([`NEGOTIATE_TIMEOUT_MS`](crate::signalr::NEGOTIATE_TIMEOUT_MS)): the status and the body
/// (`None` when it could not be read).
async fn request_token(token_url: &str, user: &str) -> Result<(u16, Option<String>), String> {
    let body = serde_json::json!({ "user": user }).to_string();
    // Bounded like negotiate: an unreachable hub must fail the attempt, not hang it.
    let controller = web_sys::AbortController::new().ok();
    let signal = controller.as_ref().map(web_sys::AbortController::signal);
    let _deadline = controller.map(|c| {
        gloo_timers::callback::Timeout::new(crate::signalr::NEGOTIATE_TIMEOUT_MS, move || c.abort())
    });
    let response = gloo_net::http::Request::post(token_url)
        .header("Content-Type", "application/json")
        .abort_signal(signal.as_ref())
        .body(body)
        .map_err(|_| "Could not build the sign-in request.".to_owned())?
        .send()
        .await
        .map_err(|_| format!("Cannot reach the sign-in service at {token_url}."))?;
    Ok((response.status(), response.text().await.ok()))
}
