//! A thin Microsoft Graph presence client over `fetch` (gloo-net): the routes of
//! `docs/presence.md` against `graph.baseUrl` (the hub's stand-in `/graph/v1.0` in dev mode,
//! `https://graph.microsoft.com/v1.0` with MSAL).
//!
//! Answers are read through `serde_json::Value` (no derived deserializers in the download).
//! `429 Too Many Requests` waits for `Retry-After` (at most 30 s, three times) and retries;
//! 401 fetches a fresh token once; 401/403 otherwise end in a sentence for the agent.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_net::http::{Request, RequestBuilder};
use serde_json::Value;
use switchboard_core::presence::{Presence, batches, read_presence};

/// Tries per request when Graph answers 429.
const MAX_THROTTLED_TRIES: u32 = 3;
/// Longest `Retry-After` we wait for, in seconds.
const MAX_RETRY_AFTER_SECONDS: u32 = 30;
/// Directory pages read at most (`$top=999`: about a million colleagues).
const MAX_PAGES: usize = 1000;

/// A colleague from the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Colleague {
    /// The Graph user id.
    pub id: String,
    /// `displayName`, or the id when there is none.
    pub name: String,
}

/// The client for one signed-in user. Tokens stay in memory.
pub struct Graph {
    base: String,
    token_source: Rc<dyn Fn() -> crate::signalr::TokenFuture>,
    user: String,
    token: RefCell<Option<String>>,
}

enum Method {
    Get,
    Post(String),
}

impl Graph {
    /// A client for Graph user `user` whose bearer tokens come from `token_source` (dev tokens,
    /// or MSAL's `acquireTokenSilent` for the Graph presence scopes); one is fetched again after
    /// a 401.
    pub fn new(
        base: &str,
        user: &str,
        token_source: Rc<dyn Fn() -> crate::signalr::TokenFuture>,
    ) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token_source,
            user: user.to_owned(),
            token: RefCell::new(None),
        }
    }

    async fn token(&self, fresh: bool) -> Result<String, String> {
        if let (false, Some(token)) = (fresh, self.token.borrow().clone()) {
            return Ok(token);
        }
        let token = (self.token_source)().await?;
        *self.token.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    /// One request with the bearer token; `url` is absolute, root-relative or under the base.
    async fn call(&self, url: &str, method: &Method) -> Result<Value, String> {
        let url = if url.starts_with('/') || url.contains("://") {
            url.to_owned()
        } else {
            format!("{}/{url}", self.base)
        };
        let mut fresh = false;
        let mut throttled = 0;
        loop {
            let token = self.token(fresh).await?;
            let builder: RequestBuilder = match method {
                Method::Get => Request::get(&url),
                Method::Post(_) => Request::post(&url).header("Content-Type", "application/json"),
            }
            .header("Authorization", &format!("Bearer {token}"));
            let request = match method {
                Method::Get => builder.build(),
                Method::Post(body) => builder.body(body.clone()),
            }
            .map_err(|_| "Could not build the Microsoft Graph request.".to_owned())?;
            let response = request
                .send()
                .await
                .map_err(|_| format!("Microsoft Graph at {} cannot be reached.", self.base))?;
            match response.status() {
                401 if !fresh => fresh = true,
                401 => {
                    return Err(
                        "Microsoft Graph did not accept your sign-in (HTTP 401). Sign out and in again."
                            .into(),
                    );
                }
                403 => {
                    return Err("Microsoft Graph refused this (HTTP 403): your account lacks the presence permissions (Presence.ReadWrite, Presence.Read.All). Ask your administrator.".into());
                }
                429 if throttled + 1 < MAX_THROTTLED_TRIES => {
                    throttled += 1;
                    let seconds = response
                        .headers()
                        .get("Retry-After")
                        .and_then(|s| s.trim().parse::<u32>().ok())
                        .unwrap_or(2)
                        .clamp(1, MAX_RETRY_AFTER_SECONDS);
                    gloo_timers::future::TimeoutFuture::new(seconds * 1000).await;
                }
                429 => {
                    return Err(
                        "Microsoft Graph is throttling presence requests; try again in a minute."
                            .into(),
                    );
                }
                status if (200..300).contains(&status) => {
                    let text = response.text().await.unwrap_or_default();
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                status => {
                    let text = response.text().await.unwrap_or_default();
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let message: String = message.chars().take(200).collect();
                    return Err(format!("Microsoft Graph answered HTTP {status}. {message}")
                        .trim_end()
                        .to_owned());
                }
            }
        }
    }

    /// `GET /me/presence`.
    pub async fn my_presence(&self) -> Result<Presence, String> {
        let value = self.call("me/presence", &Method::Get).await?;
        Presence::from_wire(&value)
            .ok_or_else(|| "Microsoft Graph answered with an unknown presence.".into())
    }

    /// `POST /users/{me}/presence/{action}` with `body` (`setPresence`, `clearPresence`,
    /// `setUserPreferredPresence`, `clearUserPreferredPresence`).
    pub async fn presence_action(&self, action: &str, body: &Value) -> Result<(), String> {
        let url = format!(
            "users/{}/presence/{action}",
            switchboard_signalr::negotiate::encode_uri_component(&self.user)
        );
        self.call(&url, &Method::Post(body.to_string()))
            .await
            .map(drop)
    }

    /// The directory: `GET /users?$top=999`, following `@odata.nextLink`.
    pub async fn colleagues(&self) -> Result<Vec<Colleague>, String> {
        let mut out = Vec::new();
        let mut next = Some("users?$top=999".to_owned());
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let page = self.call(&url, &Method::Get).await?;
            for user in page
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = user.get("id").and_then(Value::as_str) {
                    let name = user
                        .get("displayName")
                        .and_then(Value::as_str)
                        .filter(|n| !n.trim().is_empty())
                        .unwrap_or(id);
                    out.push(Colleague {
                        id: id.to_owned(),
                        name: name.chars().take(120).collect(),
                    });
                }
            }
            next = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Ok(out)
    }

    /// `POST /communications/getPresencesByUserId`, in batches of at most 650 ids.
    pub async fn presences(&self, ids: &[String]) -> Result<Vec<(String, Presence)>, String> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in batches(ids) {
            let body = serde_json::json!({ "ids": batch }).to_string();
            let answer = self
                .call("communications/getPresencesByUserId", &Method::Post(body))
                .await?;
            out.extend(read_presences(&answer));
        }
        Ok(out)
    }
}

/// `{"value": [{"id", "availability", "activity"}, ...]}` → pairs (unknown values left out).
pub fn read_presences(answer: &Value) -> impl Iterator<Item = (String, Presence)> + '_ {
    answer
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(read_presence)
}
