// Issue 16: the widget survives the death of its hub node. A real redis-server and three
// switchboard-hub processes over it (docs/scale-out.md), behind a loopback failover load balancer
// (failover.js: each new connection goes to the first node that accepts it, as a load balancer
// with health checks does; the widget itself knows one URL). The widget, connected through the
// balancer to node A, answers a call rung through node C; node A is killed with SIGKILL. The
// widget reconnects by its own reconnect policy, now to node B, which takes the call over from
// the dead node; the widget still shows the call (same caller, on call), and Hang up ends it,
// as node C reports.
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_KEY, HUB_BIN, agentName } from './hub.js';
import { FailoverBalancer } from './failover.js';

const BASE = Number(process.env.E2E_CLUSTER_PORT ?? 18420);
const [A, B, C, LB] = [BASE, BASE + 1, BASE + 2, BASE + 3];
const REDIS_PORT = Number(process.env.E2E_REDIS_PORT ?? 16420);
const SEED_MESSAGE = { PhoneNumber: '+14255550123', callerName: 'Dana Failover' };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const direct = (port) => `http://127.0.0.1:${port}`;

async function until(check, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function healthy(port) {
  try {
    return (await fetch(`${direct(port)}/healthz`)).status === 200;
  } catch {
    return false;
  }
}

function startHub(port) {
  const child = spawn(HUB_BIN, ['--listen', `127.0.0.1:${port}`, '--static', '../../dist',
    '--access-key', ACCESS_KEY, '--ring-timeout', '120', '--wrap-up-seconds', '0',
    '--redis', `redis://127.0.0.1:${REDIS_PORT}`],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  child.stderr.on('data', () => {});
  return child;
}

async function getCall(request, port, callId) {
  const r = await request.get(`${direct(port)}/api/calls/${encodeURIComponent(callId)}`, {
    headers: { 'x-functions-key': ACCESS_KEY },
  });
  return r.status() === 200 ? r.json() : { status: r.status() };
}

const processes = [];
let balancer;
let dataDir;

test.beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sb-e2e-redis-'));
  const redis = spawn('redis-server', ['--port', String(REDIS_PORT), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dataDir], { stdio: 'ignore' });
  processes.push(redis);
  await until(() => portOpen(REDIS_PORT), 'redis-server up', 5_000);
  for (const port of [A, B, C]) processes.push(startHub(port));
  for (const port of [A, B, C]) await until(() => healthy(port), `hub ${port} healthy`);
  balancer = new FailoverBalancer(LB, [A, B, C]);
  await balancer.start();
});

test.afterAll(async () => {
  await balancer?.stop();
  for (const child of processes) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('the widget on a killed node reconnects to another node and still shows its call', async ({ page, request }) => {
  test.setTimeout(90_000);
  const user = agentName('failover');
  await page.goto(`http://127.0.0.1:${LB}/?user=${encodeURIComponent(user)}`);
  const status = page.getByRole('status');
  await expect(status).toHaveText('Connected');
  expect(new Set(balancer.routed)).toEqual(new Set([A])); // everything went to node A so far

  // Rung through node C; the agent, connected on node A, answers in the widget.
  const rung = await request.post(`${direct(C)}/api/SendMessageToUser`, {
    headers: { 'x-functions-key': ACCESS_KEY, 'content-type': 'application/json' },
    data: JSON.stringify({ userId: user, message: JSON.stringify(SEED_MESSAGE) }),
  });
  expect(rung.status()).toBe(200);
  const { callId } = await rung.json();
  const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(dialog).toBeVisible();
  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect(page.getByRole('heading', { name: 'On call' })).toBeVisible();
  await expect.poll(async () => (await getCall(request, C, callId)).state).toBe('accepted');

  // Node A dies without a word.
  // Counted from the moment node A is gone: until the kernel has closed its sockets, a reconnect
  // can still reach the dying process (seen in a CI run), which is not what this test is about.
  const killedAt = Date.now();
  const exited = new Promise((resolve) => processes[1].once('exit', resolve));
  processes[1].kill('SIGKILL');
  await exited;
  const routedBefore = balancer.routed.length;
  await expect(status).not.toHaveText('Connected', { timeout: 10_000 });
  // Back within the reconnect policy ([0, 2, 10, 30] s; node B waits for A's 5 s heartbeat to
  // expire before it takes the call over), through the balancer to node B.
  await expect(status).toHaveText('Connected', { timeout: 45_000 });
  console.log(`failover: the widget was Connected again ${Date.now() - killedAt} ms after the SIGKILL`);
  const after = balancer.routed.slice(routedBefore);
  expect(after.length).toBeGreaterThan(0);
  expect(new Set(after)).toEqual(new Set([B]));

  // The call is still up, and still shown.
  expect((await getCall(request, C, callId)).state).toBe('accepted');
  await expect(page.getByRole('heading', { name: 'On call' })).toBeVisible();
  await expect(page.locator('.call')).toContainText('Dana Failover');
  await expect(dialog).toBeHidden();

  // Hang up through node B; node C reads the final state.
  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(async () => (await getCall(request, C, callId)).state).toBe('ended');
  expect((await getCall(request, C, callId)).endReason).toBe('completed');
});
