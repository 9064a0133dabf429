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

/// A failed Graph request: the sentence for the agent, and for 429/503 (when the caller did
/// not let [`Graph`] wait) the `Retry-After` wait in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What went wrong, for the agent.
    pub message: String,
    /// 429 or 503.
    pub throttled: bool,
    /// `Retry-After` (seconds or an HTTP-date), in ms from now.
    pub retry_after_ms: Option<u64>,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            message,
            throttled: false,
            retry_after_ms: None,
        }
    }
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
    /// 429 waits for `Retry-After` and retries (at most three tries).
    async fn call(&self, url: &str, method: &Method) -> Result<Value, String> {
        self.request(url, method, true).await.map_err(|f| f.message)
    }

    /// [`Self::call`]; with `wait_on_429` false a 429 or 503 is returned at once with its
    /// `Retry-After` (for the poller, which schedules the retry itself).
    async fn request(
        &self,
        url: &str,
        method: &Method,
        wait_on_429: bool,
    ) -> Result<Value, Failure> {
        let url = if url.starts_with('/') || url.contains("://") {
            url.to_owned()
        } else {
            format!("{}/{url}", self.base)
        };
        let mut fresh = false;
        let mut throttled = 0;
        loop {
            let token = self.token(fresh).await.map_err(Failure::from)?;
            let builder: RequestBuilder = match method {
                Method::Get => Request::get(&url),
                Method::Post(_) => Request::post(&url).header("Content-Type", "application/json"),
            }
            .header("Authorization", &format!("Bearer {token}"));
            let request = match method {
                Method::Get => builder.build(),
                Method::Post(body) => builder.body(body.clone()),
            }
            .map_err(|_| {
                Failure::from("Could not build the Microsoft Graph request.".to_owned())
            })?;
            let response = request.send().await.map_err(|_| {
                Failure::from(format!(
                    "Microsoft Graph at {} cannot be reached.",
                    self.base
                ))
            })?;
            match response.status() {
                401 if !fresh => fresh = true,
                401 => {
                    return Err(Failure::from(
                        "Microsoft Graph did not accept your sign-in (HTTP 401). Sign out and in again."
                            .to_owned(),
                    ));
                }
                403 => {
                    return Err(Failure::from("Microsoft Graph refused this (HTTP 403): your account lacks the permissions docs/presence.md lists (Presence.Read.All, Presence.ReadWrite, GroupMember.Read.All, User.ReadBasic.All). Ask your administrator.".to_owned()));
                }
                429 | 503 if !wait_on_429 => {
                    let retry_after_ms = response.headers().get("Retry-After").and_then(|v| {
                        switchboard_core::presence::poll::parse_retry_after(
                            &v,
                            crate::browser::now_ms().max(0.0) as u64,
                        )
                    });
                    return Err(Failure {
                        message: format!(
                            "Microsoft Graph is throttling presence requests (HTTP {}).",
                            response.status()
                        ),
                        throttled: true,
                        retry_after_ms,
                    });
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
                    return Err(Failure::from(
                        "Microsoft Graph is throttling presence requests; try again in a minute."
                            .to_owned(),
                    ));
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
                    return Err(Failure::from(
                        format!("Microsoft Graph answered HTTP {status}. {message}")
                            .trim_end()
                            .to_owned(),
                    ));
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
        self.users_paged("users?$top=999".to_owned()).await
    }

    /// A group's members: `GET /groups/{id}/members?$select=id,displayName,userPrincipalName`,
    /// following `@odata.nextLink` (Graph pages members 100 at a time by default).
    pub async fn group_members(&self, group: &str) -> Result<Vec<Colleague>, String> {
        let group = switchboard_signalr::negotiate::encode_uri_component(group);
        self.users_paged(format!(
            "groups/{group}/members?$select=id,displayName,userPrincipalName"
        ))
        .await
    }

    /// Users by id or UPN: `GET /users/{id|UPN}?$select=id,displayName,userPrincipalName`, one
    /// request each, in order. A user Graph does not know (404) is an error naming it.
    pub async fn users(&self, keys: &[String]) -> Result<Vec<Colleague>, String> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let url = format!(
                "users/{}?$select=id,displayName,userPrincipalName",
                switchboard_signalr::negotiate::encode_uri_component(key)
            );
            let user = self
                .call(&url, &Method::Get)
                .await
                .map_err(|e| format!("presence.team: {key}: {e}"))?;
            out.extend(colleague(&user));
        }
        Ok(out)
    }

    /// Pages of users from `first`, following `@odata.nextLink`.
    async fn users_paged(&self, first: String) -> Result<Vec<Colleague>, String> {
        let mut out = Vec::new();
        let mut next = Some(first);
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else { break };
            let page = self.call(&url, &Method::Get).await?;
            for user in page
                .get("value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(colleague(user));
            }
            next = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Ok(out)
    }

    /// One poll: `POST /communications/getPresencesByUserId` in batches of at most 650 ids; a
    /// 429/503 ends it at once with its `Retry-After` ([`Failure`]).
    pub async fn poll_presences(&self, ids: &[String]) -> Result<Vec<(String, Presence)>, Failure> {
        let mut out = Vec::with_capacity(ids.len());
        for batch in batches(ids) {
            let body = serde_json::json!({ "ids": batch }).to_string();
            let answer = self
                .request(
                    "communications/getPresencesByUserId",
                    &Method::Post(body),
                    false,
                )
                .await?;
            out.extend(read_presences(&answer));
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

/// A Graph `user` (`{"id", "displayName"?}`) as a colleague (the id when it has no name).
fn colleague(user: &Value) -> Option<Colleague> {
    let id = user.get("id").and_then(Value::as_str)?;
    let name = user
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(id);
    Some(Colleague {
        id: id.to_owned(),
        name: name.chars().take(120).collect(),
    })
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
