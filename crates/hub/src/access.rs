//! REST authorization as one axum extractor: a handler that takes [`Authorized<S>`] runs only
//! for a request that scope `S` admits; otherwise the scope's rejection is the answer, with the
//! status and body each route gave before it had an extractor (401 `{"error"}` with
//! `WWW-Authenticate: Bearer` for tokens, [`crate::auth::AuthError`]).
//!
//! | scope | credential | principal |
//! |---|---|---|
//! | [`ServiceRest`] | `Authorization: Bearer` REST token signed with the AccessKey, `aud` = the request URL (Azure SignalR REST API) | — |
//! | [`ClientEndpoint`] | hub access token (`Authorization: Bearer` or `?access_token=`) for the hub of `?hub=` (400 without a valid hub name) | [`ClientAccess`] |
//! | [`ServerKey`] | the Azure Functions server credential (`x-functions-key` or `?code=`) | — |
//! | [`User`] | `Authorization: Bearer` user token (dev or OIDC; 503 when the authority is unreachable) | [`UserIdentity`] |
//! | [`UserOrServerKey`] | the server credential when one is sent, else a user token | the user, `None` for the server |
//! | [`Simulator`], [`HostSimulators`], [`DevHooks`] | dev mode (404 `{"error"}` otherwise; loopback or the key: [`crate::guard::dev_hooks`]) | — |
//!
//! The Graph stand-in has its own scope with Graph-shaped errors ([`crate::graph`]).
//!
//! An extractor runs before the handler reads the body: put it after the `Path` and `Query`
//! extractors a route has, so their rejections come first as before.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OriginalUri, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;

use crate::auth::{AuthError, UserIdentity, bearer_token};
use crate::hub::{Hub, is_valid_hub_name};
use crate::rest::{ApiError, bad_request};

/// What a request must present, and what it proves (see the module docs).
pub trait Scope: Sized + Send + Sync + 'static {
    /// What a request that passed proves (the user, the hub...).
    type Principal: Send + 'static;
    /// The answer to a request that did not pass.
    type Rejection: IntoResponse;

    /// Checks a request.
    fn authorize(
        hub: &Hub,
        parts: &Parts,
    ) -> impl Future<Output = Result<Self::Principal, Self::Rejection>> + Send;
}

/// The extractor: a request admitted by scope `S`, and what it proved.
#[derive(Debug)]
pub struct Authorized<S: Scope>(pub S::Principal);

impl<S: Scope> FromRequestParts<Arc<Hub>> for Authorized<S> {
    type Rejection = S::Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        hub: &Arc<Hub>,
    ) -> Result<Self, Self::Rejection> {
        S::authorize(hub, parts).await.map(Authorized)
    }
}

fn query(parts: &Parts) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

/// The Azure SignalR Service REST API: a JWT signed with the AccessKey whose `aud` is the
/// request URL ([`crate::auth::AccessKey::validate_rest_token`]).
#[derive(Debug)]
pub struct ServiceRest;

impl Scope for ServiceRest {
    type Principal = ();
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<(), ApiError> {
        let token = bearer_token(&parts.headers).ok_or(AuthError::MissingToken)?;
        let uri = match parts.extensions.get::<OriginalUri>() {
            Some(original) => &original.0,
            None => &parts.uri,
        };
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        hub.access_key.validate_rest_token(token, path_and_query)?;
        Ok(())
    }
}

/// A client endpoint request (`/client/negotiate`, `/client/`): which hub, and who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccess {
    /// The hub of `?hub=` (valid name).
    pub hub: String,
    /// The user id (`nameid`) of the hub access token; `None` for an anonymous connection.
    pub user: Option<String>,
    /// The roles of the hub access token (`role` claim).
    pub roles: Vec<String>,
}

/// The client endpoint: `?hub=NAME` and a hub access token for that hub
/// ([`crate::auth::AccessKey::validate_client_token`]).
#[derive(Debug)]
pub struct ClientEndpoint;

impl Scope for ClientEndpoint {
    type Principal = ClientAccess;
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<ClientAccess, ApiError> {
        let query = query(parts);
        let name = query.get("hub").ok_or_else(|| {
            bad_request("The hub query parameter is required (/client/?hub=NAME)")
        })?;
        if !is_valid_hub_name(name) {
            return Err(bad_request(
                "hub must start with a letter and contain only letters, digits and _",
            ));
        }
        let token = bearer_token(&parts.headers)
            .or_else(|| {
                query
                    .get("access_token")
                    .map(String::as_str)
                    .filter(|t| !t.is_empty())
            })
            .ok_or(AuthError::MissingToken)?;
        let (user, roles) = hub.access_key.validate_client_claims(token, name)?;
        Ok(ClientAccess {
            hub: name.clone(),
            user,
            roles,
        })
    }
}

fn check_server_key(hub: &Hub, parts: &Parts) -> Result<(), AuthError> {
    let query = query(parts);
    hub.access_key
        .check_server_credential(&parts.headers, query.get("code").map(String::as_str))
}

/// The Azure Functions server credential (`x-functions-key: KEY` or `?code=KEY`).
#[derive(Debug)]
pub struct ServerKey;

impl Scope for ServerKey {
    type Principal = ();
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<(), ApiError> {
        Ok(check_server_key(hub, parts)?)
    }
}

async fn user(hub: &Hub, parts: &Parts) -> Result<UserIdentity, AuthError> {
    let token = bearer_token(&parts.headers).ok_or(AuthError::MissingToken)?;
    hub.users.authenticate(token).await
}

/// A signed-in user: `Authorization: Bearer <user token>` (dev sign-in or the OIDC authority).
#[derive(Debug)]
pub struct User;

impl Scope for User {
    type Principal = UserIdentity;
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<UserIdentity, ApiError> {
        Ok(user(hub, parts).await?)
    }
}

/// The server credential when the request sends one (`x-functions-key` or `?code=`): `None`;
/// otherwise a user token: `Some(user id)`.
#[derive(Debug)]
pub struct UserOrServerKey;

impl Scope for UserOrServerKey {
    type Principal = Option<String>;
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, parts: &Parts) -> Result<Option<String>, ApiError> {
        if parts.headers.contains_key("x-functions-key") || query(parts).contains_key("code") {
            check_server_key(hub, parts)?;
            Ok(None)
        } else {
            Ok(Some(user(hub, parts).await?.user_id))
        }
    }
}

fn dev_mode(hub: &Hub, off: &str) -> Result<(), ApiError> {
    if hub.dev_mode() {
        Ok(())
    } else {
        Err(ApiError::Json(StatusCode::NOT_FOUND, off.into()))
    }
}

/// The telephony simulator (dev mode only).
#[derive(Debug)]
pub struct Simulator;

impl Scope for Simulator {
    type Principal = ();
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, _: &Parts) -> Result<(), ApiError> {
        dev_mode(hub, "The simulator runs in dev mode only")
    }
}

/// The CRM host simulators (dev mode only).
#[derive(Debug)]
pub struct HostSimulators;

impl Scope for HostSimulators {
    type Principal = ();
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, _: &Parts) -> Result<(), ApiError> {
        dev_mode(hub, "The host simulators run in dev mode only")
    }
}

/// The dev hooks (`/dev/connections/…/drop`, `/dev/users/…/drop`; dev mode only).
#[derive(Debug)]
pub struct DevHooks;

impl Scope for DevHooks {
    type Principal = ();
    type Rejection = ApiError;

    async fn authorize(hub: &Hub, _: &Parts) -> Result<(), ApiError> {
        dev_mode(hub, "Not found")
    }
}
