//! A real `redis-server` (Debian's, installed by scripts/setup) for the scale-out tests: a free
//! loopback port in 16400–16499, its own temporary directory, no persistence; stopped by pid
//! when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port (panics with a clear message when redis-server is missing).
    pub fn start() -> Self {
        let base = 16400 + (std::process::id() % 50) as u16;
        for _ in 0..100 {
            let port = 16400 + (base - 16400 + NEXT.fetch_add(1, Ordering::Relaxed)) % 100;
            if TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let dir = std::env::temp_dir().join(format!("sb-redis-{}-{port}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let mut server = Self {
                child: None,
                port,
                dir,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("no free port for redis-server in 16400-16499");
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server could not start ({e}): it is needed by the scale-out tests; run scripts/setup (Debian package redis-server)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL, by pid) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (a restart loses every key).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A hub process that is killed (SIGKILL, by pid) and reaped when dropped, so a failing test
/// leaves no node behind to join a later test's Redis.
pub struct HubChild(pub Child);

impl std::ops::Deref for HubChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for HubChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for HubChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `switchboard-hub` process on `listen` over `redis` with access key `key` (its stderr
/// dropped) → (child, base URL from its first line, `listening on URL`).
pub fn spawn_hub(redis: &RedisServer, listen: &str, key: &str) -> (HubChild, String) {
    spawn_hub_with(redis, listen, key, &[])
}

/// [`spawn_hub`] with more command-line arguments (`--ring-timeout 6`, ...).
pub fn spawn_hub_with(
    redis: &RedisServer,
    listen: &str,
    key: &str,
    extra: &[&str],
) -> (HubChild, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-hub"))
        .args(["--listen", listen, "--access-key", key, "--redis"])
        .arg(redis.url())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hub process");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (HubChild(child), base)
}
