//! `switchboard-loadgen`: loads a switchboard-hub it starts itself on loopback, next to the
//! floor (a bare tokio-tungstenite echo server, this binary's `echo-server` mode) holding the
//! same connections (issue 17, `scripts/bench`).
//!
//! For each connection count it measures, floor first and hub second:
//! - resident memory per idle WebSocket connection (`VmRSS` of the server process before and
//!   after the connections, divided by their number);
//! - connects per second (WebSocket upgrade + SignalR JSON handshake, 64 at a time);
//! - at the hub only: user-targeted REST sends (`POST /api/v1/hubs/switchboard/users/{id}`)
//!   per second from concurrent senders, and the delivery latency of each (send → the frame
//!   read by the client, same process clock) at p50/p99;
//! - with `--storm`, at the largest count: the hub is restarted on the same port and the time
//!   until every client is connected again.
//!
//! With `--cluster K` (issue 16, docs/scale-out.md), at the largest count it also starts a
//! `redis-server` (on a free loopback port, its own temporary directory) and K hubs over it with
//! `--redis`, spreads the connections over the nodes (user `i` on node `i mod K`) and sends every
//! REST send through the *next* node (`i+1 mod K`), so every send crosses Redis; the same
//! measurement through a single node is the `hub` figure of the same run.
//!
//! Everything is bounded: connection counts are capped by the file-descriptor limit (raised to
//! the hard limit first), every phase has a deadline, children are killed on exit. Prints a
//! JSON report on stdout and progress on stderr.

mod chart;
mod client;
mod floor;
mod proc;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use client::{BENCH_TARGET, Peer, Shared};
use proc::Server;
use stats::{percentile, round};
use switchboard_hub::auth::AccessKey;

/// The access key of the hub under load (loopback only, never a real secret).
const ACCESS_KEY: &str = "loadgen-access-key-0123456789";
/// Connects in flight at once.
const CONNECT_CONCURRENCY: usize = 64;
/// Concurrent REST senders.
const SENDERS: usize = 16;
/// Hard ceiling on connections, whatever is asked.
const MAX_CONNECTIONS: usize = 20_000;

struct Options {
    hub_bin: PathBuf,
    counts: Vec<usize>,
    send_seconds: f64,
    max_sends: usize,
    rounds: usize,
    storm: bool,
    csv: Option<PathBuf>,
    hub_log: Option<PathBuf>,
    cluster: usize,
}

const USAGE: &str = "usage: switchboard-loadgen --hub-bin PATH [--connections N[,N…]] [--send-seconds S] \
[--max-sends N] [--rounds R] [--storm] [--quick] [--csv FILE] [--hub-log FILE] [--cluster K]\n       switchboard-loadgen echo-server\n       switchboard-loadgen chart --csv FILE --hub REPORT.json --out DIR";

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        hub_bin: PathBuf::from("target/release/switchboard-hub"),
        counts: vec![1000],
        send_seconds: 5.0,
        max_sends: 200_000,
        rounds: 1,
        storm: false,
        csv: None,
        hub_log: None,
        cluster: 0,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--hub-bin" => options.hub_bin = value()?.into(),
            "--connections" => {
                options.counts = value()?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .map_err(|e| format!("--connections: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--send-seconds" => {
                options.send_seconds = value()?
                    .parse()
                    .map_err(|e| format!("--send-seconds: {e}"))?
            }
            "--max-sends" => {
                options.max_sends = value()?.parse().map_err(|e| format!("--max-sends: {e}"))?
            }
            "--rounds" => {
                options.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?
            }
            "--storm" => options.storm = true,
            "--cluster" => {
                options.cluster = value()?.parse().map_err(|e| format!("--cluster: {e}"))?
            }
            "--quick" => {
                options.counts = vec![200];
                options.send_seconds = 2.0;
                options.rounds = 1;
            }
            "--csv" => options.csv = Some(value()?.into()),
            "--hub-log" => options.hub_log = Some(value()?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    options.send_seconds = options.send_seconds.clamp(0.1, 120.0);
    options.rounds = options.rounds.clamp(1, 10);
    options.cluster = options.cluster.min(8);
    Ok(options)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("echo-server") {
        return match floor::run().await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo-server: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("chart") {
        let value = |name: &str| {
            let i = args.iter().position(|a| a == name)?;
            args.get(i + 1).map(PathBuf::from)
        };
        let (Some(csv), Some(report), Some(out)) = (value("--csv"), value("--hub"), value("--out"))
        else {
            eprintln!("usage: switchboard-loadgen chart --csv FILE --hub REPORT.json --out DIR");
            return std::process::ExitCode::from(2);
        };
        return match chart::render(&csv, &report, &out) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chart: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let options = match parse_options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
            if report["ok"] == Value::Bool(true) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<Value, String> {
    let fd_limit = proc::raise_fd_limit();
    // Each process (this one, the server) holds one descriptor per connection, plus slack.
    let cap = (fd_limit as usize).saturating_sub(200).min(MAX_CONNECTIONS);
    let self_exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut levels = Vec::new();
    let mut latencies_csv = String::from("connections,latency_ms\n");
    let mut all_ok = true;
    let largest = options.counts.iter().copied().max().unwrap_or(0);
    for &asked in &options.counts {
        let n = asked.min(cap);
        if n < asked {
            eprintln!(
                "loadgen: {asked} connections capped at {n} (file-descriptor limit {fd_limit})"
            );
        }
        let mut floors = Vec::new();
        let mut hubs = Vec::new();
        for round_index in 0..options.rounds {
            eprintln!("loadgen: {n} connections, round {}: floor", round_index + 1);
            let floor = measure(
                &self_exe,
                &["echo-server".to_owned()],
                Peer::Floor,
                n,
                &options,
                false,
            )
            .await?;
            eprintln!("loadgen: {n} connections, round {}: hub", round_index + 1);
            let storm = options.storm && asked == largest && round_index + 1 == options.rounds;
            let hub_args = vec![
                "--listen".to_owned(),
                "127.0.0.1:0".to_owned(),
                "--access-key".to_owned(),
                ACCESS_KEY.to_owned(),
                "--max-connections-per-address".to_owned(),
                "1000000".to_owned(),
                "--max-connections-per-user".to_owned(),
                "100000".to_owned(),
            ];
            let hub = measure(&options.hub_bin, &hub_args, Peer::Hub, n, &options, storm).await?;
            if let Some(samples) = hub.get("latencies") {
                for sample in samples.as_array().into_iter().flatten() {
                    latencies_csv.push_str(&format!("{n},{sample}\n"));
                }
            }
            all_ok &= floor["connected"] == json!(n) && hub["connected"] == json!(n);
            floors.push(floor);
            hubs.push(hub);
        }
        let pick = |list: &[Value], key: &str| {
            let values: Vec<f64> = list.iter().filter_map(|v| v[key].as_f64()).collect();
            stats::median(&values).map(|v| round(v, 2))
        };
        let strip = |mut v: Value| {
            if let Some(o) = v.as_object_mut() {
                o.remove("latencies");
            }
            v
        };
        levels.push(json!({
            "connections": n,
            "floor_rss_per_connection_kib": pick(&floors, "rss_per_connection_kib"),
            "hub_rss_per_connection_kib": pick(&hubs, "rss_per_connection_kib"),
            "floor_connects_per_s": pick(&floors, "connects_per_s"),
            "hub_connects_per_s": pick(&hubs, "connects_per_s"),
            "rounds": floors.into_iter().zip(hubs).map(|(f, h)| json!({"floor": strip(f), "hub": strip(h)})).collect::<Vec<_>>(),
        }));
    }
    if let Some(path) = &options.csv {
        std::fs::write(path, latencies_csv).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut report =
        json!({ "ok": all_ok, "fd_limit": fd_limit, "senders": SENDERS, "levels": levels });
    if options.cluster >= 1 {
        let n = largest.min(cap);
        eprintln!(
            "loadgen: {n} connections over a {}-node cluster",
            options.cluster
        );
        let cluster = measure_cluster(n, options.cluster, &options).await?;
        report["ok"] = json!(all_ok && cluster["connected"] == json!(n));
        report["cluster"] = cluster;
    }
    Ok(report)
}

/// Starts the server, holds `n` idle connections, measures; at the hub also sends and (with
/// `storm`) restarts it. Returns this measurement as JSON.
async fn measure(
    program: &std::path::Path,
    args: &[String],
    peer: Peer,
    n: usize,
    options: &Options,
    storm: bool,
) -> Result<Value, String> {
    let log = match (&options.hub_log, peer) {
        (Some(path), Peer::Hub) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok(),
        _ => None,
    };
    let server = Server::spawn(program, args, log).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = server.rss_kib().ok_or("cannot read the server's RSS")?;
    let base = server.base.clone();
    let ws_base = base.replacen("http://", "ws://", 1);
    let url_of = |i: usize| match peer {
        Peer::Hub => {
            let user = format!("lg-{i}");
            format!(
                "{ws_base}/client/?hub=switchboard&access_token={}",
                client_token(&base, &user)
            )
        }
        Peer::Floor => format!("{ws_base}/"),
    };
    let urls: Vec<String> = (0..n).map(url_of).collect();

    let shared = Shared::new();
    let started = Instant::now();
    let connect_deadline = Duration::from_secs(60 + n as u64 / 100);
    let failed = AtomicUsize::new(0);
    let mut holders = Vec::with_capacity(n);
    let mut attempts =
        futures_util::stream::iter(urls.iter().enumerate())
            .map(|(i, url)| async move {
                (i, client::connect(url, peer, Duration::from_secs(10)).await)
            })
            .buffer_unordered(CONNECT_CONCURRENCY);
    let mut first_error = None;
    loop {
        let next = tokio::time::timeout(
            connect_deadline.saturating_sub(started.elapsed()),
            attempts.next(),
        )
        .await;
        match next {
            Ok(Some((i, Ok(ws)))) => {
                holders.push(tokio::spawn(client::hold(
                    ws,
                    urls[i].clone(),
                    peer,
                    shared.clone(),
                    i as u64 + 1,
                )));
            }
            Ok(Some((_, Err(e)))) => {
                failed.fetch_add(1, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
            Ok(None) => break,
            Err(_) => {
                first_error.get_or_insert("connect phase deadline".into());
                break;
            }
        }
    }
    drop(attempts);
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected = holders.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = server.rss_kib().ok_or("cannot read the server's RSS")?;
    let per_connection = if connected > 0 {
        (rss_after.saturating_sub(rss_before)) as f64 / connected as f64
    } else {
        0.0
    };
    eprintln!(
        "loadgen:   {peer:?}: {connected}/{n} connected in {connect_seconds:.2} s; RSS {rss_before} -> {rss_after} KiB ({per_connection:.2} KiB per connection)"
    );
    let mut report = json!({
        "connected": connected,
        "failed": failed.load(Ordering::Relaxed),
        "first_error": first_error,
        "connect_seconds": round(connect_seconds, 3),
        "connects_per_s": round(connected as f64 / connect_seconds.max(1e-6), 1),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_per_connection_kib": round(per_connection, 2),
    });

    let mut server = Some(server);
    if peer == Peer::Hub && connected > 0 {
        let sends = send_load(&base, connected, options, &shared).await;
        eprintln!("loadgen:   sends: {}", sends["summary"]);
        report["sends"] = sends;
        let samples: Vec<f64> = shared.latencies_ms.lock().expect("not poisoned").clone();
        // A bounded sample for the latency chart.
        let step = (samples.len() / 2000).max(1);
        report["latencies"] = json!(
            samples
                .iter()
                .step_by(step)
                .map(|v| round(*v, 3))
                .collect::<Vec<_>>()
        );
        if storm {
            let old = server.take().expect("server");
            let port = base.rsplit(':').next().unwrap_or("0").to_owned();
            let (result, fresh) =
                reconnect_storm(old, program, args, &port, connected, &shared, options).await;
            eprintln!("loadgen:   storm: {result}");
            report["storm"] = result;
            server = fresh;
        }
    }
    // Stop the server first (its side then holds the TIME_WAITs), then the clients.
    if let Some(server) = server {
        server.stop().await;
    }
    let _ = shared.stop.send(true);
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(holders),
    )
    .await;
    Ok(report)
}

/// `k` hubs over one redis-server, `n` connections spread over them, sends through the next node
/// (see the module docs).
async fn measure_cluster(n: usize, k: usize, options: &Options) -> Result<Value, String> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let dir = std::env::temp_dir().join(format!("sb-loadgen-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut redis = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("redis-server ({e}): run scripts/setup"))?;
    let url = format!("redis://127.0.0.1:{port}");
    let mut hubs = Vec::new();
    for _ in 0..k {
        let args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--access-key",
            ACCESS_KEY,
            "--max-connections-per-address",
            "1000000",
            "--max-connections-per-user",
            "100000",
            "--redis",
            &url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        hubs.push(Server::spawn(&options.hub_bin, &args, None).await?);
    }
    let http = reqwest::Client::new();
    for hub in &hubs {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = http
                .get(format!("{}/healthz", hub.base))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{} never healthy (Redis)", hub.base));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let bases: Vec<String> = hubs.iter().map(|h| h.base.clone()).collect();
    let urls: Vec<String> = (0..n)
        .map(|i| {
            let base = &bases[i % k];
            let ws_base = base.replacen("http://", "ws://", 1);
            format!(
                "{ws_base}/client/?hub=switchboard&access_token={}",
                client_token(base, &format!("lg-{i}"))
            )
        })
        .collect();
    let shared = Shared::new();
    let started = Instant::now();
    let mut holders = Vec::with_capacity(n);
    let mut attempts = futures_util::stream::iter(urls.iter().enumerate())
        .map(|(i, url)| async move {
            (
                i,
                client::connect(url, Peer::Hub, Duration::from_secs(10)).await,
            )
        })
        .buffer_unordered(CONNECT_CONCURRENCY);
    let deadline = Duration::from_secs(60 + n as u64 / 100);
    while let Ok(Some((i, result))) =
        tokio::time::timeout(deadline.saturating_sub(started.elapsed()), attempts.next()).await
    {
        if let Ok(ws) = result {
            holders.push(tokio::spawn(client::hold(
                ws,
                urls[i].clone(),
                Peer::Hub,
                shared.clone(),
                i as u64 + 1,
            )));
        }
    }
    drop(attempts);
    let connected = holders.len();
    // Let every node's connection records reach Redis.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sends = send_load_through(&bases, true, connected, options, &shared).await;
    eprintln!("loadgen:   cluster sends: {}", sends["summary"]);
    for hub in hubs {
        hub.stop().await;
    }
    let _ = shared.stop.send(true);
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(holders),
    )
    .await;
    let _ = redis.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "nodes": k,
        "connected": connected,
        "sends_through": "the next node (every send crosses Redis)",
        "sends": sends,
    }))
}

/// Concurrent REST sends to the `n` connected users for `send_seconds` (at most `max_sends`).
async fn send_load(base: &str, n: usize, options: &Options, shared: &Arc<Shared>) -> Value {
    send_load_through(&[base.to_owned()], false, n, options, shared).await
}

/// [`send_load`] through several nodes: user `u` is on node `u mod K`; with `next` its sends go
/// through node `u+1 mod K`.
async fn send_load_through(
    bases: &[String],
    next_node: bool,
    n: usize,
    options: &Options,
    shared: &Arc<Shared>,
) -> Value {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(options.send_seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..SENDERS {
        let (http, next, ok, failed, shared) = (
            http.clone(),
            next.clone(),
            ok.clone(),
            failed.clone(),
            shared.clone(),
        );
        let bases = bases.to_vec();
        let max_sends = options.max_sends;
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_sends {
                    break;
                }
                let user = i % n;
                let node = (user + usize::from(next_node)) % bases.len();
                let base = &bases[node];
                let url = format!("{base}/api/v1/hubs/switchboard/users/lg-{user}");
                let now = switchboard_hub::auth::unix_now();
                let token = AccessKey::new(ACCESS_KEY).sign(&url, None, now, now + 3600);
                let body =
                    json!({ "target": BENCH_TARGET, "arguments": [shared.now_us()] }).to_string();
                let response = http
                    .post(&url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 202 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    futures_util::future::join_all(workers).await;
    let seconds = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    // Deliveries still in flight: wait for them, at most 3 s.
    let drain_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < drain_until
        && (shared.latencies_ms.lock().expect("not poisoned").len() as u64) < ok
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let samples = shared.latencies_ms.lock().expect("not poisoned").clone();
    let p50 = percentile(&samples, 50.0).map(|v| round(v, 3));
    let p99 = percentile(&samples, 99.0).map(|v| round(v, 3));
    let max = percentile(&samples, 100.0).map(|v| round(v, 3));
    let per_s = round(ok as f64 / seconds.max(1e-6), 1);
    json!({
        "seconds": round(seconds, 3),
        "ok": ok,
        "failed": failed.load(Ordering::Relaxed),
        "delivered": samples.len(),
        "per_s": per_s,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "summary": format!("{ok} sent ({per_s}/s), {} delivered, p50 {} ms, p99 {} ms", samples.len(), p50.unwrap_or(f64::NAN), p99.unwrap_or(f64::NAN)),
    })
}

/// Restarts the hub on the same port with every client reconnecting; returns the timings and
/// the new hub (if it started).
async fn reconnect_storm(
    old: Server,
    program: &std::path::Path,
    args: &[String],
    port: &str,
    n: usize,
    shared: &Arc<Shared>,
    options: &Options,
) -> (Value, Option<Server>) {
    const WINDOW: Duration = Duration::from_secs(60);
    *shared.reconnect_until.lock().expect("not poisoned") = Some(Instant::now() + WINDOW);
    let killed = Instant::now();
    old.stop().await;
    let stopped_ms = killed.elapsed().as_millis();
    // Until the clients have noticed (at most 5 s), so "all back" is not read before the drop.
    while shared.open.load(Ordering::SeqCst) >= n && killed.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut args = args.to_vec();
    if let Some(i) = args.iter().position(|a| a == "--listen") {
        args[i + 1] = format!("127.0.0.1:{port}");
    }
    let log = options.hub_log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let fresh = match Server::spawn(program, &args, log).await {
        Ok(server) => server,
        Err(e) => return (json!({ "error": e }), None),
    };
    let restarted = Instant::now();
    while shared.open.load(Ordering::SeqCst) < n && killed.elapsed() < WINDOW {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let back = shared.open.load(Ordering::SeqCst);
    *shared.reconnect_until.lock().expect("not poisoned") = None;
    (
        json!({
            "clients": n,
            "back": back,
            "hub_stop_ms": stopped_ms,
            "seconds_from_restart": round(restarted.elapsed().as_secs_f64(), 3),
            "seconds_from_kill": round(killed.elapsed().as_secs_f64(), 3),
        }),
        Some(fresh),
    )
}

/// A hub access token for `user` at `base` (`http://127.0.0.1:PORT`, hub `switchboard`), minted
/// with the access key exactly as the hub's negotiate does (`AccessKey::issue_client_token`), so
/// the negotiate quota per address is not what gets measured.
fn client_token(base: &str, user: &str) -> String {
    AccessKey::new(ACCESS_KEY).issue_client_token(
        &format!("{base}/client/?hub=switchboard"),
        Some(user),
        switchboard_hub::auth::unix_now(),
    )
}
