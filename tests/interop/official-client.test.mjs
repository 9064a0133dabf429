// Interop: the OFFICIAL @microsoft/signalr client against switchboard-hub.
//
// Spawns the hub binary (env SWITCHBOARD_HUB_BIN, default ../../target/debug/switchboard-hub
// relative to this file) on 127.0.0.1:0, reads the address from its first stdout line, then:
// connects through /api/negotiate (dev token; the client follows the redirect to /client/),
// receives a message sent with POST /api/SendMessageToUser and one sent with the Azure SignalR
// REST API (JWT signed with the access key), invokes acceptCall and checks GET /api/calls/{id}.
// Every wait has a timeout; the hub is killed at the end, also on failure.
//
// Run: cargo build -p switchboard-hub && cd tests/interop && npm ci && node --test

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as signalR from "@microsoft/signalr";
import { WAIT_MS, devToken as hubDevToken, startHub, withTimeout, next } from "./hub.mjs";
import jwt from "jsonwebtoken";

const KEY = "interop-" + randomBytes(16).toString("hex");

let base; // http://127.0.0.1:PORT
let stopHub;
before(async () => {
  ({ base, stop: stopHub } = await startHub(KEY));
});
after(() => stopHub?.());

const devToken = (user) => hubDevToken(base, user);

/** The next call of `target` on the connection, as an argument array. */
async function getCall(callId) {
  const response = await fetch(`${base}/api/calls/${encodeURIComponent(callId)}`, {
    headers: { "x-functions-key": KEY },
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(response.status, 200);
  return response.json();
}

test("the official client talks to switchboard-hub", { timeout: 60_000 }, async (t) => {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${base}/api`, { accessTokenFactory: () => devToken("alice") })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  // Register handlers before start so nothing sent early is missed.
  connection.on("ReceiveNotification", () => {});
  connection.on("IncomingCall", () => {});
  connection.on("CallUpdated", () => {});

  try {
    await withTimeout(connection.start(), WAIT_MS, "connection.start()");
    assert.equal(connection.state, signalR.HubConnectionState.Connected);
    assert.ok(connection.connectionId, "a connection id from /client/negotiate");

    let callId;
    await t.test("SendMessageToUser reaches ReceiveNotification", async () => {
      const received = next(connection, "ReceiveNotification");
      const message = JSON.stringify({ PhoneNumber: "+15551234567", comments: "Billing" });
      const response = await fetch(`${base}/api/SendMessageToUser`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-functions-key": KEY },
        body: JSON.stringify({ userId: "alice", message }),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      assert.equal(response.status, 200);
      callId = (await response.json()).callId;
      assert.equal(typeof callId, "string");
      const [text] = await received;
      assert.deepEqual(JSON.parse(text), {
        PhoneNumber: "+15551234567",
        comments: "Billing",
        callId,
      });
    });

    await t.test("Azure SignalR REST send-to-user reaches the client", async () => {
      const restPath = "/api/v1/hubs/switchboard/users/alice";
      const token = jwt.sign({}, KEY, {
        algorithm: "HS256",
        audience: `${base}${restPath}`,
        expiresIn: "5m",
      });
      const received = next(connection, "IncomingCall");
      const response = await fetch(`${base}${restPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          target: "IncomingCall",
          arguments: [{ callId: "rest-1", phoneNumber: "+14255550123", callerName: "Dana" }],
        }),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      assert.equal(response.status, 202);
      const [call] = await received;
      assert.deepEqual(call, { callId: "rest-1", phoneNumber: "+14255550123", callerName: "Dana" });
      assert.equal((await getCall("rest-1")).state, "ringing");

      const wrongAudience = jwt.sign({}, KEY, {
        algorithm: "HS256",
        audience: `${base}/api/v1/hubs/switchboard/users/bob`,
        expiresIn: "5m",
      });
      const refused = await fetch(`${base}${restPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${wrongAudience}` },
        body: JSON.stringify({ target: "IncomingCall", arguments: [] }),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      assert.equal(refused.status, 401);
    });

    await t.test("acceptCall returns the call and the registry agrees", async () => {
      const updated = next(connection, "CallUpdated");
      const call = await withTimeout(connection.invoke("acceptCall", callId), WAIT_MS, "acceptCall");
      assert.equal(call.callId, callId);
      assert.equal(call.state, "accepted");
      assert.equal(call.agent, "alice");
      assert.equal(call.phoneNumber, "+15551234567");
      const [pushed] = await updated;
      assert.equal(pushed.state, "accepted");
      const registry = await getCall(callId);
      assert.equal(registry.state, "accepted");
      assert.equal(typeof registry.answeredAt, "number");

      await assert.rejects(
        withTimeout(connection.invoke("acceptCall", callId), WAIT_MS, "second acceptCall"),
        /Call .* is accepted, it can no longer be accepted/,
      );
      await assert.rejects(
        withTimeout(connection.invoke("noSuchMethod"), WAIT_MS, "unknown method"),
        /Unknown hub method 'noSuchMethod'/,
      );
    });
  } finally {
    await withTimeout(connection.stop(), WAIT_MS, "connection.stop()").catch(() => {});
  }
});
