// Interop matrix: the OFFICIAL @microsoft/signalr client (+ @microsoft/signalr-protocol-msgpack)
// against switchboard-hub, for every transport (WebSockets, ServerSentEvents, LongPolling) x
// hub protocol (json, messagepack where the transport carries binary) x stateful reconnect
// (WebSockets only): invoke, send, server -> client messages, a server -> client stream
// (`counter`), and reconnect after the hub drops the transport (dev hook
// POST /dev/connections/{id}/drop): the same connection with stateful reconnect, a new one
// (automatic reconnect) without. Every wait has a timeout; the hub is killed at the end.
//
// Run: cargo build -p switchboard-hub && cd tests/interop && npm ci && node --test

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as signalR from "@microsoft/signalr";
import { WAIT_MS, devToken as hubDevToken, startHub, withTimeout, next } from "./hub.mjs";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

const KEY = "interop-" + randomBytes(16).toString("hex");

let base; // http://127.0.0.1:PORT
let stopHub;
before(async () => {
  ({ base, stop: stopHub } = await startHub(KEY));
});
after(() => stopHub?.());

const devToken = (user) => hubDevToken(base, user);

async function notify(user, message) {
  const response = await fetch(`${base}/api/SendMessageToUser`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-functions-key": KEY },
    body: JSON.stringify({ userId: user, message }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(response.status, 200, await response.text());
}

async function dropTransport(connectionId) {
  const response = await fetch(`${base}/dev/connections/${encodeURIComponent(connectionId)}/drop`, {
    method: "POST",
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { dropped: 1 });
}

function collect(stream) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const items = [];
      stream.subscribe({ next: (i) => items.push(i), complete: () => resolve(items), error: reject });
    }),
    WAIT_MS,
    "stream",
  );
}

const T = signalR.HttpTransportType;
const cases = [];
for (const [transport, name] of [
  [T.WebSockets, "WebSockets"],
  [T.ServerSentEvents, "ServerSentEvents"],
  [T.LongPolling, "LongPolling"],
]) {
  for (const protocol of ["json", "messagepack"]) {
    if (protocol === "messagepack" && transport === T.ServerSentEvents) continue; // text only
    for (const stateful of transport === T.WebSockets ? [false, true] : [false]) {
      cases.push({ transport, name, protocol, stateful });
    }
  }
}

let userCount = 0;
for (const c of cases) {
  const label = `${c.name} ${c.protocol}${c.stateful ? " stateful" : ""}`;
  test(label, { timeout: 30_000 }, async () => {
    const user = `matrix-${++userCount}`;
    let builder = new signalR.HubConnectionBuilder()
      .withUrl(`${base}/api`, { transport: c.transport, accessTokenFactory: () => devToken(user) })
      .withAutomaticReconnect([0, 200, 1000])
      .configureLogging(signalR.LogLevel.None);
    if (c.protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
    if (c.stateful) builder = builder.withStatefulReconnect();
    const connection = builder.build();
    try {
      await withTimeout(connection.start(), WAIT_MS, "start");
      assert.equal(connection.state, signalR.HubConnectionState.Connected);

      // invoke and send
      assert.equal((await withTimeout(connection.invoke("sendMessage", "Accepted"), WAIT_MS, "invoke")) ?? null, null);
      await withTimeout(connection.send("sendMessage", "x"), WAIT_MS, "send");
      // server -> client
      const got = next(connection, "ReceiveNotification");
      await notify(user, "hello-1");
      assert.deepEqual(await got, ["hello-1"]);
      // stream
      assert.deepEqual(await collect(connection.stream("counter", 3, 5)), [0, 1, 2]);
      // errors come back as errors
      await assert.rejects(withTimeout(connection.invoke("noSuchMethod"), WAIT_MS, "invoke"), /Unknown hub method/);

      // The hub drops the transport.
      const firstId = connection.connectionId;
      if (c.stateful) {
        let reconnecting = false;
        connection.onreconnecting(() => (reconnecting = true));
        await dropTransport(firstId);
        const again = next(connection, "ReceiveNotification");
        await notify(user, "hello-2");
        assert.deepEqual(await again, ["hello-2"]);
        assert.equal(connection.connectionId, firstId, "same connection after a stateful reconnect");
        assert.equal(reconnecting, false, "no onreconnecting for a stateful reconnect");
      } else {
        const reconnected = withTimeout(
          new Promise((resolve) => connection.onreconnected(resolve)),
          WAIT_MS,
          "onreconnected",
        );
        await dropTransport(firstId);
        const newId = await reconnected;
        assert.notEqual(newId, firstId, "a new connection after automatic reconnect");
        const again = next(connection, "ReceiveNotification");
        await notify(user, "hello-2");
        assert.deepEqual(await again, ["hello-2"]);
      }
      assert.equal((await withTimeout(connection.invoke("sendMessage", "Accepted"), WAIT_MS, "invoke after reconnect")) ?? null, null);
      assert.deepEqual(await collect(connection.stream("counter", 2, 0)), [0, 1]);
    } finally {
      await withTimeout(connection.stop(), WAIT_MS, "stop").catch(() => {});
    }
  });
}
