//! Quotas per user and per client address (issue 18): one client must never hurt the others.
//!
//! | quota | default | flag | refused with |
//! |---|---|---|---|
//! | TCP connections per client IP address (HTTP, WebSockets, SSE, long polling alike) | 200 | `--max-connections-per-address` | `429` + `Retry-After: 5`, written on the socket, then closed |
//! | live hub connections per user (all hubs) | 20 | `--max-connections-per-user` | `/client/negotiate`: `429` + `Retry-After: 5` |
//! | negotiates per client address (`/api/negotiate`, `/client/negotiate`) | 20/s, burst 100 | `--negotiates-per-second-per-address` | `429` + `Retry-After` |
//! | negotiates per user (`/client/negotiate`) | 5/s, burst 20 | `--negotiates-per-second-per-user` | `429` + `Retry-After` |
//! | calls placed per user (`makeCall`) | 30 a minute | `--calls-per-minute` | completion error `Too many calls placed: ...` |
//!
//! The negotiate buckets also bound what one client can hold in the hub's table of pending
//! negotiations (entries live `Timeouts::connection_token_ttl`, 15 s): at most
//! `burst + rate × 15` per user (95 by default) and per address (400), far below the table's
//! 10 000 ([`crate::hub::MAX_PENDING`]). Bodies answered are `{"error": "..."}`. The call
//! registry evicts only finished calls; full of live calls, a new ring answers `503` and
//! `makeCall` fails ([`crate::registry::CallRegistry::has_room`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The configurable quotas (see the module docs for defaults and flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaConfig {
    /// TCP connections open at once from one IP address (200).
    pub connections_per_address: usize,
    /// Live hub connections of one user (20).
    pub connections_per_user: usize,
    /// Negotiates per second from one address (20), with this burst (100).
    pub negotiates_per_second_per_address: f64,
    /// Burst of the per-address negotiate bucket (100).
    pub negotiate_burst_per_address: f64,
    /// Negotiates per second of one user (5), with this burst (20).
    pub negotiates_per_second_per_user: f64,
    /// Burst of the per-user negotiate bucket (20).
    pub negotiate_burst_per_user: f64,
    /// Calls one user may place (`makeCall`) per minute (30).
    pub calls_per_minute: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            connections_per_address: 200,
            connections_per_user: 20,
            negotiates_per_second_per_address: 20.0,
            negotiate_burst_per_address: 100.0,
            negotiates_per_second_per_user: 5.0,
            negotiate_burst_per_user: 20.0,
            calls_per_minute: 30,
        }
    }
}

/// Buckets kept per table before idle (full) ones are forgotten.
const MAX_BUCKETS: usize = 50_000;

/// A token bucket: `rate` tokens a second up to `burst`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, bounded in number.
#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<String, Bucket>,
}

impl Buckets {
    /// Takes one token for `key`; `Err(wait)` when none is left, `wait` until the next one.
    fn take(&mut self, key: &str, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        if self.map.len() >= MAX_BUCKETS && !self.map.contains_key(key) {
            self.map
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = self.map.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else if rate > 0.0 {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        } else {
            Err(Duration::from_secs(60))
        }
    }
}

/// The quota state of one hub (buckets and counters; see the module docs).
#[derive(Debug)]
pub struct Quotas {
    pub(crate) config: QuotaConfig,
    negotiate_by_address: Mutex<Buckets>,
    negotiate_by_user: Mutex<Buckets>,
    calls_by_user: Mutex<Buckets>,
}

/// A refusal: what to say and when to come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The `{"error"}` text / completion error.
    pub error: String,
    /// Whole seconds for `Retry-After` (at least 1).
    pub retry_after: u64,
}

impl Refusal {
    pub(crate) fn new(quota: &'static str, error: String, wait: Duration) -> Self {
        crate::metrics::quota_refusal(quota);
        Self {
            error,
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({ "error": self.error })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after));
        response
    }
}

fn lock(m: &Mutex<Buckets>) -> std::sync::MutexGuard<'_, Buckets> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Quotas {
    /// Quotas with this configuration.
    pub fn new(config: QuotaConfig) -> Self {
        Self {
            config,
            negotiate_by_address: Mutex::default(),
            negotiate_by_user: Mutex::default(),
            calls_by_user: Mutex::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// One negotiate from `address`.
    pub fn negotiate_from_address(&self, address: IpAddr) -> Result<(), Refusal> {
        let c = &self.config;
        lock(&self.negotiate_by_address)
            .take(
                &address.to_string(),
                c.negotiates_per_second_per_address,
                c.negotiate_burst_per_address,
                Instant::now(),
            )
            .map_err(|wait| {
                Refusal::new(
                    "negotiate_per_address",
                    format!(
                        "Too many negotiate requests from this address (at most {} a second)",
                        c.negotiates_per_second_per_address
                    ),
                    wait,
                )
            })
    }

    /// One negotiate of `user`.
    pub fn negotiate_of_user(&self, user: &str) -> Result<(), Refusal> {
        let c = &self.config;
        lock(&self.negotiate_by_user)
            .take(
                user,
                c.negotiates_per_second_per_user,
                c.negotiate_burst_per_user,
                Instant::now(),
            )
            .map_err(|wait| {
                Refusal::new(
                    "negotiate_per_user",
                    format!(
                        "Too many negotiate requests for this user (at most {} a second)",
                        c.negotiates_per_second_per_user
                    ),
                    wait,
                )
            })
    }

    /// One call placed by `user` (`makeCall`).
    pub fn call_placed(&self, user: &str) -> Result<(), Refusal> {
        let per_minute = self.config.calls_per_minute;
        let rate = f64::from(per_minute) / 60.0;
        lock(&self.calls_by_user)
            .take(user, rate, f64::from(per_minute), Instant::now())
            .map_err(|wait| {
                let r = Refusal::new("calls_per_minute", String::new(), wait);
                Refusal {
                    error: format!(
                        "Too many calls placed: at most {per_minute} a minute; try again in {} s",
                        r.retry_after
                    ),
                    ..r
                }
            })
    }
}

/// The peer address of a request, as [`LimitedListener`] accepted it (an extension through
/// `ConnectInfo<ClientAddr>`; absent when the router is served another way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, LimitedListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, LimitedListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// A TCP listener that caps connections per client IP address: one over the cap gets an
/// HTTP `429` with `Retry-After: 5` written on the socket (best effort, within a second) and
/// is closed; the hub never reads from it.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    max_per_address: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl LimitedListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener, max_per_address: usize) -> Self {
        Self {
            inner,
            max_per_address: max_per_address.max(1),
            open: Arc::default(),
        }
    }
}

/// The body of the 429 that [`LimitedListener`] writes.
pub const TOO_MANY_CONNECTIONS: &str = r#"{"error":"Too many connections from this address"}"#;

impl axum::serve::Listener for LimitedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (mut stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let ip = addr.ip();
            // A hub's writes are small frames (a notification, a completion, a ping): sent at
            // once, not held back by Nagle's algorithm until the peer's delayed ACK (up to 40 ms;
            // issue 17's latency tail). RFC 896, RFC 1122 §4.2.3.4.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                let n = open.entry(ip).or_insert(0);
                if *n < self.max_per_address {
                    *n += 1;
                    return (
                        CountedStream {
                            stream,
                            ip,
                            open: self.open.clone(),
                        },
                        addr,
                    );
                }
            }
            crate::metrics::quota_refusal("connections_per_address");
            tokio::spawn(async move {
                let answer = format!(
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{TOO_MANY_CONNECTIONS}",
                    TOO_MANY_CONNECTIONS.len()
                );
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                })
                .await;
            });
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection, counted against its address until dropped.
#[derive(Debug)]
pub struct CountedStream {
    stream: TcpStream,
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_their_rate() {
        let mut b = Buckets::default();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(b.take("a", 1.0, 3.0, t).is_ok());
        }
        let wait = b.take("a", 1.0, 3.0, t).unwrap_err();
        assert!(wait <= Duration::from_secs(1));
        assert!(b.take("b", 1.0, 3.0, t).is_ok(), "other keys are apart");
        assert!(b.take("a", 1.0, 3.0, t + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn calls_per_minute_refuse_with_a_clear_error() {
        let q = Quotas::new(QuotaConfig {
            calls_per_minute: 2,
            ..QuotaConfig::default()
        });
        assert!(q.call_placed("alice").is_ok());
        assert!(q.call_placed("alice").is_ok());
        let r = q.call_placed("alice").unwrap_err();
        assert!(
            r.error
                .starts_with("Too many calls placed: at most 2 a minute")
        );
        assert!(r.retry_after >= 1 && r.retry_after <= 30, "{r:?}");
        assert!(q.call_placed("bob").is_ok());
    }
}
