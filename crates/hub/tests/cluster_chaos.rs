//! Chaos, bounded (issue 16): three `switchboard-hub` processes over one real redis-server, an
//! agent on each node, a stream of 60 user-targeted REST sends spread over the nodes; node C is
//! killed with SIGKILL mid-stream and started again on the same port, and Redis is restarted
//! (empty) once. Every agent that stayed connected receives every send addressed to it that
//! was accepted (202) exactly once; the killed node's user stops counting as connected.
//! Sends are only made while every running node reports Redis up (`/healthz` 200); messages
//! published while a node is cut off are lost by design (docs/scale-out.md).

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use reqwest::Method;
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(12);
const SENDS: usize = 60;

async fn until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + SETTLE;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hub process over `redis` on `listen` → (child, base URL), once `/healthz` says 200.
async fn hub_process(redis: &RedisServer, listen: &str) -> (Child, String) {
    let (child, base) = common::redis::spawn_hub(redis, listen, KEY);
    let health = format!("{base}/healthz");
    until(|| async { get_status(&health).await == 200 }).await;
    (child, base)
}

struct Agent {
    user: String,
    client: Client,
    /// Sequence numbers accepted (202) for this user and not yet received.
    owed: usize,
    received: Vec<u64>,
    expected: Vec<u64>,
}

impl Agent {
    /// Receives everything owed so far.
    async fn catch_up(&mut self) {
        let got = self.client.take_invocations("Seq", self.owed).await;
        self.owed = 0;
        self.received
            .extend(got.iter().map(|args| args[0].as_u64().unwrap()));
    }
}

#[tokio::test]
async fn a_node_kill_and_a_redis_restart_lose_or_repeat_nothing_for_connected_agents() {
    let mut redis = RedisServer::start();
    let (a_child, a) = hub_process(&redis, "127.0.0.1:0").await;
    let (b_child, b) = hub_process(&redis, "127.0.0.1:0").await;
    let (mut c_child, c) = hub_process(&redis, "127.0.0.1:0").await;
    let c_listen = c.trim_start_matches("http://").to_owned();
    let mut children = vec![a_child, b_child];

    let mut agents: Vec<Agent> = Vec::new();
    for (user, base) in [("ann", &a), ("ben", &b)] {
        agents.push(Agent {
            user: user.into(),
            client: Client::connect(base, user).await,
            owed: 0,
            received: Vec::new(),
            expected: Vec::new(),
        });
    }
    let _cid = Client::connect(&c, "cid").await; // on the node that is killed
    for user in ["ann", "ben", "cid"] {
        let path = format!("/api/v1/hubs/switchboard/users/{user}");
        until(|| async { rest(Method::HEAD, &a, &path, "", None).await == 200 }).await;
    }

    let mut c_up = true;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for i in 0..SENDS {
        match i {
            20 => {
                for agent in &mut agents {
                    agent.catch_up().await;
                }
                c_child.kill().unwrap(); // SIGKILL
                c_child.wait().unwrap();
                c_up = false;
                let path = "/api/v1/hubs/switchboard/users/cid";
                until(|| async { rest(Method::HEAD, &a, path, "", None).await == 404 }).await;
            }
            30 => {
                let (child, _) = hub_process(&redis, &c_listen).await;
                c_child = child;
                c_up = true;
                agents.push(Agent {
                    user: "cora".into(),
                    client: Client::connect(&c, "cora").await,
                    owed: 0,
                    received: Vec::new(),
                    expected: Vec::new(),
                });
                let path = "/api/v1/hubs/switchboard/users/cora";
                until(|| async { rest(Method::HEAD, &a, path, "", None).await == 200 }).await;
            }
            40 => {
                for agent in &mut agents {
                    agent.catch_up().await;
                }
                redis.restart();
                for base in [&a, &b, &c] {
                    let health = format!("{base}/healthz");
                    until(|| async { get_status(&health).await == 200 }).await;
                }
                for agent in &agents {
                    let path = format!("/api/v1/hubs/switchboard/users/{}", agent.user);
                    until(|| async { rest(Method::HEAD, &a, &path, "", None).await == 200 }).await;
                }
            }
            _ => {}
        }
        let nodes: Vec<&String> = if c_up { vec![&a, &b, &c] } else { vec![&a, &b] };
        let through = nodes[i % nodes.len()];
        let target = i % agents.len();
        let path = format!("/api/v1/hubs/switchboard/users/{}", agents[target].user);
        let body = json!({"target": "Seq", "arguments": [i]});
        let status = rest(Method::POST, through, &path, "", Some(body))
            .await
            .as_u16();
        *statuses.entry(status).or_default() += 1;
        if status == 202 {
            agents[target].owed += 1;
            agents[target].expected.push(i as u64);
        }
    }
    for agent in &mut agents {
        agent.catch_up().await;
        let mut received = agent.received.clone();
        received.sort_unstable();
        assert_eq!(
            received, agent.expected,
            "{}: every accepted send exactly once",
            agent.user
        );
        // Nothing more is on its way: a last send arrives and no repeat comes before it.
        let path = format!("/api/v1/hubs/switchboard/users/{}", agent.user);
        let body = json!({"target": "Last", "arguments": []});
        assert_eq!(rest(Method::POST, &b, &path, "", Some(body)).await, 202);
        agent.client.expect_invocation("Last").await;
        assert_eq!(agent.client.queued("Seq"), 0, "{}: a repeat", agent.user);
    }
    assert_eq!(statuses.get(&202), Some(&SENDS), "{statuses:?}");

    c_child.kill().unwrap();
    c_child.wait().unwrap();
    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
