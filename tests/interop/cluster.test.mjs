// Interop, scale-out (issue 16): three switchboard-hub processes over one real redis-server
// (Debian's, installed by scripts/setup; started here on a free loopback port with its own
// temporary directory and stopped by pid). The OFFICIAL @microsoft/signalr client connects to
// node C; sends made through node A (Azure SignalR REST API and the adaptor's
// SendMessageToUser) reach it. Every wait has a timeout; hubs and Redis are stopped at the end,
// also on failure.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import jwt from "jsonwebtoken";
import { WAIT_MS, devToken, startHub, withTimeout, next } from "./hub.mjs";

const KEY = "interop-cluster-" + randomBytes(16).toString("hex");

/** A free loopback port (bound, read, released). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port (at most WAIT_MS). */
async function portOpen(port) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    assert.ok(Date.now() < deadline, `redis-server did not open port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let redis; // { pid, dir }
const hubs = []; // { base, stop }
before(async () => {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "sb-interop-redis-"));
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: "ignore" },
  );
  const started = new Promise((resolve, reject) => {
    child.once("error", (e) =>
      reject(new Error(`redis-server could not start (${e.code}): run scripts/setup (Debian package redis-server)`)),
    );
    child.once("spawn", resolve);
  });
  await withTimeout(started, WAIT_MS, "redis-server start");
  redis = { child, dir };
  process.on("exit", () => child.exitCode === null && child.kill("SIGKILL"));
  await portOpen(port);
  for (let i = 0; i < 3; i++) {
    hubs.push(await startHub(KEY, ["--redis", `redis://127.0.0.1:${port}`]));
  }
  for (const { base } of hubs) await until(async () => (await fetch(`${base}/healthz`)).status === 200);
});
after(async () => {
  for (const hub of hubs) await hub.stop();
  if (redis) {
    redis.child.kill("SIGTERM");
    rmSync(redis.dir, { recursive: true, force: true });
  }
});

/** Polls `check` every 50 ms until it resolves truthy, at most 12 s. */
async function until(check) {
  const deadline = Date.now() + 12_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, "condition not met within 12 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function restToken(base, restPath) {
  return jwt.sign({}, KEY, { algorithm: "HS256", audience: `${base}${restPath}`, expiresIn: "5m" });
}

/** Waits until node `via` sees `user` connected (HEAD, Azure SignalR REST API), then sends `Hello`
 * with `text` to the user through `via`; resolves to the REST answer's status. */
async function helloThrough(via, user, text) {
  const restPath = `/api/v1/hubs/switchboard/users/${user}`;
  const auth = () => ({ authorization: `Bearer ${restToken(via.base, restPath)}` });
  await until(async () => (await fetch(`${via.base}${restPath}`, { method: "HEAD", headers: auth() })).status === 200);
  const response = await fetch(`${via.base}${restPath}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth() },
    body: JSON.stringify({ target: "Hello", arguments: [text] }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  return response.status;
}

test("a send through node A reaches the official client on node C", { timeout: 60_000 }, async () => {
  const [a, , c] = hubs;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${c.base}/api`, { accessTokenFactory: () => devToken(c.base, "carol") })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  connection.on("ReceiveNotification", () => {});
  connection.on("Hello", () => {});
  await withTimeout(connection.start(), WAIT_MS, "connection.start()");
  try {
    const hello = next(connection, "Hello");
    assert.equal(await helloThrough(a, "carol", "through node A"), 202);
    assert.deepEqual(await hello, ["through node A"]);

    const notification = next(connection, "ReceiveNotification");
    const ring = await fetch(`${a.base}/api/SendMessageToUser`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-functions-key": KEY },
      body: JSON.stringify({ userId: "carol", message: JSON.stringify({ PhoneNumber: "+14255550123" }) }),
      signal: AbortSignal.timeout(WAIT_MS),
    });
    assert.equal(ring.status, 200);
    const { callId } = await ring.json();
    const [text] = await notification;
    assert.equal(JSON.parse(text).callId, callId);
  } finally {
    await connection.stop();
  }
});

// The official client's matrix against the cluster: every transport and protocol the client
// offers (Server-Sent Events is text only), connected to node C, gets a REST send made through
// node A, and its own invocation and stream on node C still work.
const T = signalR.HttpTransportType;
const matrix = [];
for (const [transport, name] of [
  [T.WebSockets, "WebSockets"],
  [T.ServerSentEvents, "ServerSentEvents"],
  [T.LongPolling, "LongPolling"],
]) {
  for (const protocol of ["json", "messagepack"]) {
    if (protocol === "messagepack" && transport === T.ServerSentEvents) continue;
    matrix.push({ transport, name, protocol });
  }
}
let matrixUsers = 0;
for (const c of matrix) {
  test(`matrix through three nodes: ${c.name} ${c.protocol}`, { timeout: 60_000 }, async () => {
    const [a, , c3] = hubs;
    const user = `cluster-matrix-${++matrixUsers}`;
    let builder = new signalR.HubConnectionBuilder()
      .withUrl(`${c3.base}/api`, { transport: c.transport, accessTokenFactory: () => devToken(c3.base, user) })
      .configureLogging(signalR.LogLevel.Warning);
    if (c.protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
    const connection = builder.build();
    connection.on("Hello", () => {});
    await withTimeout(connection.start(), WAIT_MS, "connection.start()");
    try {
      const hello = next(connection, "Hello");
      assert.equal(await helloThrough(a, user, `${c.name} ${c.protocol} through node A`), 202);
      assert.deepEqual(await hello, [`${c.name} ${c.protocol} through node A`]);
      // The connection's own traffic on node C.
      assert.equal((await withTimeout(connection.invoke("sendMessage", "Accepted"), WAIT_MS, "invoke")) ?? null, null);
      const items = [];
      await withTimeout(
        new Promise((resolve, reject) =>
          connection.stream("counter", 3, 5).subscribe({ next: (v) => items.push(v), complete: resolve, error: reject }),
        ),
        WAIT_MS,
        "stream",
      );
      assert.deepEqual(items, [0, 1, 2]);
    } finally {
      await connection.stop();
    }
  });
}
