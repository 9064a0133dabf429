// Talking to switchboard-hub the way a telephony system does (DESIGN.md §3): the seed's
// SendMessageToUser, the Azure SignalR REST API, and the call registry.
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const PORT = process.env.E2E_PORT ?? '18080';
export const ACCESS_KEY = 'e2e-access-key-0123456789';
export const HUB = `http://127.0.0.1:${PORT}`;
export const HUB_BIN = process.env.SWITCHBOARD_HUB_BIN
  ?? fileURLToPath(new URL('../../../target/debug/switchboard-hub', import.meta.url));

/** The seed's own API, byte for byte: the message is a JSON *string*. Returns the response. */
export async function sendMessageToUser(request, userId, message) {
  return request.post(`${HUB}/api/SendMessageToUser`, {
    headers: { 'x-functions-key': ACCESS_KEY, 'content-type': 'application/json' },
    data: JSON.stringify({ userId, message: JSON.stringify(message) }),
  });
}

/** Rings `userId` through SendMessageToUser and returns the call id the hub reports. */
export async function ring(request, userId, message) {
  const response = await sendMessageToUser(request, userId, message);
  if (response.status() !== 200) throw new Error(`ring: HTTP ${response.status()} ${await response.text()}`);
  const body = await response.json();
  if (!body.callId) throw new Error(`ring: no callId in ${JSON.stringify(body)}`);
  return body.callId;
}

/** GET /api/calls/{callId} with the server credential. */
export async function getCall(request, callId) {
  const response = await request.get(`${HUB}/api/calls/${encodeURIComponent(callId)}`, {
    headers: { 'x-functions-key': ACCESS_KEY },
  });
  if (response.status() !== 200) return { status: response.status() };
  return response.json();
}

const b64url = (data) => Buffer.from(data).toString('base64url');

/** An Azure SignalR REST token: HS256 with the AccessKey, aud = the request URL. */
export function restToken(url, key = ACCESS_KEY, lifetimeSeconds = 300) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ aud: url, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds }));
  const signature = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** Azure SignalR REST: send `target(...arguments)` to every connection of `userId`. */
export async function sendToUser(request, userId, target, args) {
  const url = `${HUB}/api/v1/hubs/switchboard/users/${encodeURIComponent(userId)}`;
  return request.post(url, {
    headers: { authorization: `Bearer ${restToken(url)}`, 'content-type': 'application/json' },
    data: JSON.stringify({ target, arguments: args }),
  });
}

/** A user name of its own for each test, so tests never see each other's calls. */
export function agentName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}
