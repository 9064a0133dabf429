// Issue 13: faults that really happen. Each test runs one fault against four widgets at once,
// one per transport (WebSockets with and without stateful reconnect, Server-Sent Events, long
// polling), each in its own browser context and as its own agent. The hub is a process of its
// own (so it can be killed with SIGKILL), reached through a fault-injecting TCP proxy
// (faultproxy.js) that can black-hole or cut connections. Everything is on 127.0.0.1.
//
// For every cell the test asserts what the agent sees and whether a call was lost:
//  - the truth: sampled every 500 ms, the widget never says `Connected` for longer than the
//    allowed detection time while the hub cannot deliver to it (HEAD .../users/{id} is not 200,
//    or the hub is down);
//  - after healing, the widget is `Connected` again without a click, and a ring reaches it;
//  - a call rung while the hub still took it for connected is shown after recovery (stateful
//    replay, or the `getCalls` resync after a new connection).
// Detection and recovery times are printed per cell (and written to .out/fault-matrix.txt).
// Production timers are used (server timeout 30 s, hub client timeout 30 s); only the slow
// retry interval after the reconnect delays is shortened to 10-20 s (`hub.slowRetrySeconds`,
// the same code path) so the two-minute outage does not wait a full minute more.
import { test, expect, chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { FaultProxy } from './faultproxy.js';
import { ACCESS_KEY, HUB_BIN, agentName, restToken } from './hub.js';

const HUB_PORT = Number(process.env.E2E_FAULT_HUB_PORT ?? 18090);
const PROXY_PORT = Number(process.env.E2E_FAULT_PROXY_PORT ?? 18091);
const DIRECT = `http://127.0.0.1:${HUB_PORT}`;
const VIA = `http://127.0.0.1:${PROXY_PORT}`;
const SERVER_TIMEOUT_MS = 30_000;
const REPORT = '.out/fault-matrix.txt';

const VARIANTS = [
  { name: 'WebSockets + stateful', hub: { transports: ['WebSockets'], statefulReconnect: true } },
  { name: 'WebSockets', hub: { transports: ['WebSockets'], statefulReconnect: false } },
  { name: 'ServerSentEvents', hub: { transports: ['ServerSentEvents'], statefulReconnect: false } },
  { name: 'LongPolling', hub: { transports: ['LongPolling'], statefulReconnect: false } },
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** switchboard-hub as a child process of the test, so it can be SIGKILLed and restarted. */
class HubProcess {
  async start() {
    // A hub left over by an interrupted run would answer in this one's place (and could not be
    // killed by it): refuse to start then.
    const before = await fetch(`${DIRECT}/config.json`, { signal: AbortSignal.timeout(1_000) }).then(() => true, () => false);
    if (before) throw new Error(`something already answers at ${DIRECT}: a switchboard-hub left over by an interrupted run?`);
    this.exited = false;
    this.child = spawn(HUB_BIN, ['--listen', `127.0.0.1:${HUB_PORT}`, '--static', '../../dist',
      '--access-key', ACCESS_KEY, '--ring-timeout', '600'], { stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
    this.child.stderr.on('data', () => {});
    this.child.on('exit', () => { this.exited = true; });
    for (let i = 0; i < 200; i += 1) {
      if (this.exited) throw new Error(`switchboard-hub exited at start: is 127.0.0.1:${HUB_PORT} taken?`);
      try {
        const r = await fetch(`${DIRECT}/config.json`);
        if (r.ok) return;
      } catch { /* not yet */ }
      await sleep(50);
    }
    throw new Error('switchboard-hub did not start within 10 s');
  }

  async kill(signal = 'SIGKILL') {
    if (!this.child || this.exited) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    await Promise.race([gone, sleep(5_000)]);
  }
}

/** The hub's view: can a ring reach this agent now? `up` (HEAD 200), `gone` (404), `down`. */
async function hubView(user) {
  const url = `${DIRECT}/api/v1/hubs/switchboard/users/${encodeURIComponent(user)}`;
  try {
    const r = await fetch(url, { method: 'HEAD', headers: { authorization: `Bearer ${restToken(url)}` },
      signal: AbortSignal.timeout(2_000) });
    return r.status === 200 ? 'up' : 'gone';
  } catch {
    return 'down';
  }
}

/** Rings `user` the seed's way, straight at the hub. Returns {status, callId}. */
async function ring(user, number) {
  try {
    const r = await fetch(`${DIRECT}/api/SendMessageToUser`, {
      method: 'POST',
      headers: { 'x-functions-key': ACCESS_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: user, message: JSON.stringify({ PhoneNumber: number }) }),
      signal: AbortSignal.timeout(5_000),
    });
    const body = r.status === 200 ? await r.json() : {};
    return { status: r.status, callId: body.callId };
  } catch {
    return { status: 0 };
  }
}

async function callState(callId) {
  const r = await fetch(`${DIRECT}/api/calls/${encodeURIComponent(callId)}`, { headers: { 'x-functions-key': ACCESS_KEY } });
  return r.status === 200 ? (await r.json()).state : `HTTP ${r.status}`;
}

/** Opens one widget per variant through the proxy, each signed in as its own agent. */
async function openAgents(browser, label, extraConfig = {}) {
  const agents = [];
  for (const variant of VARIANTS) {
    const context = await browser.newContext({ baseURL: VIA, viewport: { width: 360, height: 640 } });
    const page = await context.newPage();
    await page.route('**/config.json', async (route) => {
      const response = await route.fetch();
      const config = await response.json();
      await route.fulfill({ response, json: { ...config, ...extraConfig,
        hub: { ...config.hub, ...variant.hub, slowRetrySeconds: [10, 20] } } });
    });
    const user = agentName(`f-${label}-${variant.hub.transports[0]}`);
    await page.goto(`/?user=${user}`);
    agents.push({ variant, user, page, context });
  }
  for (const a of agents) {
    await expect(a.page.getByRole('status')).toHaveText('Connected', { timeout: 20_000 });
    // "Connected" can come before the app is there (index.html's start-up script opens the
    // connection); the hub serves the widget's files too, so the faults begin once it is.
    await expect(a.page.locator('#boot-screen')).toHaveCount(0, { timeout: 20_000 });
    // Every change of the status text, with its time: detection and recovery are read from
    // this log, so a change faster than any sampling is still seen.
    await a.page.evaluate(() => {
      window.__statusLog = [];
      let last = 'Connected';
      new MutationObserver(() => {
        const text = document.querySelector('[role=status]')?.textContent.trim();
        if (text !== undefined && text !== last) {
          last = text;
          window.__statusLog.push([Date.now(), text]);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  }
  return agents;
}

/**
 * From the status log: detection (first non-`Connected` at or after `t0`, from `t0`) and
 * recovery (first `Connected` after that and at or after `healAt`, from `healAt`).
 */
async function timings(agents, cells, t0, healAt) {
  for (const a of agents) {
    const log = await a.page.evaluate(() => window.__statusLog);
    const cell = cells.get(a.user);
    const lost = log.find(([t, text]) => t >= t0 && text !== 'Connected');
    if (lost) {
      cell.detectMs = lost[0] - t0;
      // The last change, which left it Connected (it may have been back before the heal).
      const [t] = log[log.length - 1];
      cell.recoverMs = Math.max(0, t - healAt);
    }
  }
}

async function statusOf(agent) {
  try {
    return (await agent.page.getByRole('status').textContent({ timeout: 1_000 }))?.trim();
  } catch {
    return undefined;
  }
}

/**
 * Samples every agent's status and the hub's view every 500 ms for `ms`. A violation is the
 * widget saying `Connected` while the hub cannot deliver to it, for longer than `graceMs`.
 * Also records when each agent first left `Connected` (detection).
 */
async function watch(agents, ms, graceMs, t0, cells) {
  const since = new Map();
  const violations = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await Promise.all(agents.map(async (a) => {
      const [status, view] = await Promise.all([statusOf(a), hubView(a.user)]);
      const cell = cells.get(a.user);
      if (status === 'Connected' && view !== 'up') {
        if (!since.has(a.user)) since.set(a.user, Date.now());
        else if (Date.now() - since.get(a.user) > graceMs) {
          violations.push(`${a.variant.name}: "Connected" while the hub is ${view} for ${Date.now() - since.get(a.user)} ms`);
          since.set(a.user, Date.now());
        }
      } else {
        since.delete(a.user);
      }
      if (cell.hubFreedMs === undefined && view !== 'up') cell.hubFreedMs = Date.now() - t0;
    }));
    await sleep(500);
  }
  return violations;
}

/** Waits (bounded) until every agent is `Connected` again, then reads the timings. */
async function recovered(agents, cells, t0, healAt, timeoutMs) {
  try {
    await Promise.all(agents.map((a) => expect(a.page.getByRole('status'), a.variant.name).toHaveText('Connected', { timeout: timeoutMs })));
  } catch (e) {
    for (const a of agents) {
      const log = await a.page.evaluate(() => window.switchboardDiagnostics()).catch(() => '(no log)');
      console.log(`--- ${a.variant.name}: ${await statusOf(a)}\n${log.split('\n').slice(-25).join('\n')}`);
    }
    throw e;
  }
  await timings(agents, cells, t0, healAt);
}

/** A ring reaches the widget: the dialog shows the number; Reject reaches the hub. */
async function ringReaches(agent, number) {
  const { status, callId } = await ring(agent.user, number);
  expect(status, `${agent.variant.name}: ring after recovery`).toBe(200);
  await shown(agent, callId, number);
}

/**
 * The call `callId` is ringing in the widget; the agent rejects it and the hub hears it
 * (`final`: the registry states accepted as the hub's answer).
 */
async function shown(agent, callId, number, { timeout = 20_000, final = ['rejected'] } = {}) {
  const dialog = agent.page.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(dialog, `${agent.variant.name}: ${number} rings`).toContainText(number, { timeout });
  await dialog.getByRole('button', { name: 'Reject' }).click();
  await expect.poll(() => callState(callId), { timeout: 30_000, message: `${agent.variant.name}: the hub heard the answer` })
    .toMatch(new RegExp(`^(${final.join('|')})$`));
}

function report(fault, agents, cells) {
  mkdirSync('.out', { recursive: true });
  const fmt = (ms) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
  const lines = agents.map((a) => {
    const c = cells.get(a.user);
    return `${fault.padEnd(38)} ${a.variant.name.padEnd(22)} detect ${fmt(c.detectMs).padStart(7)}   recover ${fmt(c.recoverMs).padStart(7)}${c.hubFreedMs !== undefined ? `   hub freed ${fmt(c.hubFreedMs)}` : ''}`;
  });
  console.log(lines.join('\n'));
  appendFileSync(REPORT, `${lines.join('\n')}\n`);
}

const newCells = (agents) => new Map(agents.map((a) => [a.user, {}]));

test.describe.configure({ mode: 'serial' });

let hub;
let proxy;
let browser;

test.beforeAll(async () => {
  hub = new HubProcess();
  await hub.start();
  proxy = new FaultProxy(PROXY_PORT, HUB_PORT);
  await proxy.start();
});

test.afterAll(async () => {
  await proxy?.stop();
  await hub?.kill('SIGTERM');
  await browser?.close();
});

test.beforeEach(async ({ browserName }, testInfo) => {
  expect(browserName).toBe('chromium');
  browser = await chromium.launch(testInfo.project.use.launchOptions);
});

test.afterEach(async () => {
  proxy.heal();
  proxy.steady();
  await browser?.close();
  browser = undefined;
  if (hub.exited) await hub.start();
});

test('hub killed with SIGKILL and restarted at once', async () => {
  test.setTimeout(120_000);
  const agents = await openAgents(browser, 'kill');
  const cells = newCells(agents);
  const t0 = Date.now();
  await hub.kill('SIGKILL');
  await hub.start();
  const violations = await watch(agents, 15_000, 3_000, t0, cells);
  await recovered(agents, cells, t0, t0, 40_000);
  report('SIGKILL, restarted at once', agents, cells);
  expect(violations).toEqual([]);
  for (const a of agents) {
    expect(cells.get(a.user).detectMs, `${a.variant.name} left Connected`).toBeLessThan(5_000);
    await ringReaches(a, '+14255550101');
  }
});

test('hub killed with SIGKILL and down for two minutes, then back', async () => {
  test.setTimeout(300_000);
  const agents = await openAgents(browser, 'down');
  const cells = newCells(agents);
  const t0 = Date.now();
  await hub.kill('SIGKILL');
  const violations = await watch(agents, 120_000, 3_000, t0, cells);
  // While it is down the widget says why and when it tries next, without a click.
  for (const a of agents) {
    await expect(a.page.getByRole('status')).toHaveText('Reconnecting');
    await expect(a.page.locator('.connection-detail__next')).toHaveText(/Next attempt in \d+ seconds?\.|Trying to connect now/);
  }
  await hub.start();
  const back = Date.now();
  await recovered(agents, cells, t0, back, 45_000);
  report('SIGKILL, down for 2 min', agents, cells);
  expect(violations).toEqual([]);
  for (const a of agents) {
    expect(cells.get(a.user).detectMs).toBeLessThan(5_000);
    await ringReaches(a, '+14255550102');
  }
});

test('network black hole in both directions, then it heals', async () => {
  test.setTimeout(240_000);
  const agents = await openAgents(browser, 'hole');
  const cells = newCells(agents);
  const t0 = Date.now();
  proxy.blackHole();
  // Rung while the hub still believes in the connection: must not be lost.
  await sleep(2_000);
  const early = [];
  for (const a of agents) early.push({ agent: a, ...(await ring(a.user, '+14255550103')) });
  const violations = await watch(agents, 48_000, SERVER_TIMEOUT_MS + 5_000, t0, cells);
  // The hub noticed the dead clients within its client timeout (30 s) and freed them.
  for (const a of agents) {
    expect(await hubView(a.user), `${a.variant.name}: the hub freed the dead client`).toBe('gone');
    await expect(a.page.getByRole('status')).not.toHaveText('Connected');
  }
  proxy.heal();
  const healed = Date.now();
  await recovered(agents, cells, t0, healed, 60_000);
  report('black hole 50 s, then heals', agents, cells);
  expect(violations).toEqual([]);
  for (const a of agents) expect(cells.get(a.user).detectMs).toBeLessThan(SERVER_TIMEOUT_MS + 5_000);
  for (const { agent, status, callId } of early) {
    expect(status, `${agent.variant.name}: the hub took the ring`).toBe(200);
    await shown(agent, callId, '+14255550103');
  }
  for (const a of agents) await ringReaches(a, '+14255550104');
});

/**
 * One agent whose app is still loading (the early connection, early.rs): the app's chunk is
 * fetched straight from the hub (not through the proxy, which may be black-holed) when the page
 * asks for it, and handed to the page only when `release()` is called, so the fault happens
 * while the first screen and the early connection are all there is. Released within the
 * watchdog's 20 s (early::ADOPT_WAIT_MS).
 */
async function openLoading(browser, label) {
  const context = await browser.newContext({ baseURL: VIA, viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  let release;
  const released = new Promise((r) => { release = r; });
  // Each chunk read once, while the hub is up (the page asks again when it mounts).
  const bodies = new Map();
  await page.route(/\/(split_mount_app[^/]*|chunk_\d+[^/]*)\.wasm$/, async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (!bodies.has(path)) {
      bodies.set(path, fetch(`${DIRECT}${path}`, { headers: { 'accept-encoding': 'identity' } })
        .then(async (r) => Buffer.from(await r.arrayBuffer())));
    }
    const body = await bodies.get(path);
    await released;
    await route.fulfill({ status: 200, contentType: 'application/wasm', body });
  });
  const user = agentName(`f-${label}`);
  await page.goto(`/?user=${user}`);
  const agent = { variant: { name: `early (${label})` }, user, page, context };
  await expect(page.getByRole('status')).toHaveText('Connected', { timeout: 20_000 });
  await expect(page.locator('#boot-screen'), 'the app is not mounted yet').toHaveCount(1);
  return { agent, release };
}

test('hub killed with SIGKILL while the app is still loading, then restarted', async () => {
  test.skip(!readFileSync('../../dist/index.html', 'utf8').includes('split_mount_app'), 'an unsplit build has no early window');
  test.setTimeout(90_000);
  const { agent, release } = await openLoading(browser, 'early-kill');
  const status = agent.page.getByRole('status');
  await hub.kill('SIGKILL');
  await expect(status, 'the first screen leaves Connected').not.toHaveText('Connected', { timeout: 5_000 });
  await hub.start();
  await expect(status, 'the early connection is back by itself').toHaveText('Connected', { timeout: 15_000 });
  await expect(agent.page.locator('#boot-screen')).toHaveCount(1);
  release();
  await expect(agent.page.locator('#boot-screen')).toHaveCount(0);
  await expect(status).toHaveText('Connected');
  // The app got what happened before it, in order: connected, lost, connected again.
  const log = await agent.page.evaluate(() => window.switchboardDiagnostics());
  expect(log).toMatch(/state: Connected[\s\S]*state: Reconnecting[\s\S]*state: Connected[\s\S]*started before the app was mounted; \d+ reports kept/);
  await ringReaches(agent, '+14255550111');
});

test('network black hole while the app is still loading, then it heals', async () => {
  test.skip(!readFileSync('../../dist/index.html', 'utf8').includes('split_mount_app'), 'an unsplit build has no early window');
  test.setTimeout(150_000);
  const { agent, release } = await openLoading(browser, 'early-hole');
  const status = agent.page.getByRole('status');
  proxy.blackHole();
  await sleep(2_000);
  // Rung while the hub still believes in the connection, before the app is there: not lost.
  const rung = await ring(agent.user, '+14255550112');
  expect(rung.status, 'the hub took the ring').toBe(200);
  release();
  await expect(agent.page.locator('#boot-screen')).toHaveCount(0);
  // The app took over a silent connection: it still finds out, within the server timeout.
  await expect(status).not.toHaveText('Connected', { timeout: SERVER_TIMEOUT_MS + 5_000 });
  proxy.heal();
  await expect(status).toHaveText('Connected', { timeout: 60_000 });
  await shown(agent, rung.callId, '+14255550112');
  await ringReaches(agent, '+14255550113');
});

/**
 * A widget whose first module (the wasm that runs `main`) is held back: index.html's start-up
 * script opens the hub connection meanwhile. `release()` lets the module through.
 */
async function openBeforeCode(browser, label) {
  const context = await browser.newContext({ baseURL: VIA, viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  let release;
  const released = new Promise((r) => { release = r; });
  let asked = 0;
  await page.route(/\/switchboard-[0-9a-f]+_bg\.wasm$/, async (route) => {
    asked += 1;
    const path = new URL(route.request().url()).pathname;
    const body = await fetch(`${DIRECT}${path}`, { headers: { 'accept-encoding': 'identity' } })
      .then(async (r) => Buffer.from(await r.arrayBuffer()));
    await released;
    await route.fulfill({ status: 200, contentType: 'application/wasm', body });
  });
  const user = agentName(`f-${label}`);
  await page.goto(`/?user=${user}`);
  const agent = { variant: { name: `before the code (${label})` }, user, page, context };
  await expect.poll(() => asked, { message: 'the first module was asked for' }).toBe(1);
  return { agent, release };
}

test('the widget\'s code arrives late: the start-up script\'s connection takes a call meanwhile', async () => {
  test.setTimeout(60_000);
  const { agent, release } = await openBeforeCode(browser, 'late-code');
  const status = agent.page.getByRole('status');
  // The hub accepted the handshake before any of the widget's code ran.
  await expect(status).toHaveText('Connected', { timeout: 15_000 });
  await expect.poll(() => hubView(agent.user), { message: 'the hub can deliver to the agent' }).toBe('up');
  const rung = await ring(agent.user, '+14255550121');
  expect(rung.status, 'the hub took the ring').toBe(200);
  await sleep(500);
  await expect(agent.page.locator('#boot-screen'), 'no widget yet').toHaveCount(1);
  release();
  await expect(agent.page.locator('#boot-screen')).toHaveCount(0, { timeout: 15_000 });
  await expect(status).toHaveText('Connected');
  // The call rung into the script's socket rings once the widget has adopted it.
  await shown(agent, rung.callId, '+14255550121');
  const log = await agent.page.evaluate(() => window.switchboardDiagnostics());
  expect(log).toMatch(/opened by the start-up script before the widget ran/);
  expect(log.match(/transport \w+.*, protocol /g), 'one connection: the widget made none of its own').toHaveLength(1);
  await ringReaches(agent, '+14255550122');
  await agent.context.close();
});

test('hub killed with SIGKILL before the widget\'s code runs, then restarted', async () => {
  test.setTimeout(90_000);
  const { agent, release } = await openBeforeCode(browser, 'code-kill');
  const status = agent.page.getByRole('status');
  await expect(status).toHaveText('Connected', { timeout: 15_000 });
  await hub.kill('SIGKILL');
  // The script's socket is gone: the first screen no longer says Connected.
  await expect(status).not.toHaveText('Connected', { timeout: 5_000 });
  await hub.start();
  release();
  // The widget adopts a closed socket and connects by itself.
  await expect(agent.page.locator('#boot-screen')).toHaveCount(0, { timeout: 30_000 });
  await expect(status).toHaveText('Connected', { timeout: 30_000 });
  await ringReaches(agent, '+14255550123');
  await agent.context.close();
});

test('the widget\'s code never arrives: the start-up script\'s connection is closed, and no call is offered there', async () => {
  test.setTimeout(60_000);
  const { agent, release } = await openBeforeCode(browser, 'no-code');
  const status = agent.page.getByRole('status');
  await expect(status).toHaveText('Connected', { timeout: 15_000 });
  await expect(agent.page.getByRole('alert')).toContainText('could not finish loading', { timeout: 25_000 });
  await expect(status).not.toHaveText('Connected');
  await expect.poll(() => hubView(agent.user), { message: 'the hub no longer takes the agent for connected' }).toBe('gone');
  const rung = await ring(agent.user, '+14255550124');
  expect(rung.status, 'the hub refuses the ring instead of losing it').not.toBe(200);
  release();
  await agent.context.close();
});

test('a start-up connection made for another hub URL is closed, not adopted, and the widget connects itself', async () => {
  test.setTimeout(60_000);
  const context = await browser.newContext({ baseURL: VIA, viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  // The start-up script's connection says it was made for another hub URL than config.json's
  // (set as the script hands it over): the client must not take that socket for its own.
  await page.addInitScript(() => {
    Object.defineProperty(window, '__switchboardBoot', {
      configurable: true,
      set(boot) {
        let socket;
        Object.defineProperty(boot, 'socket', {
          configurable: true,
          get: () => socket,
          set: (p) => { socket = p.then((s) => { if (s) s.hubUrl = '/elsewhere'; return s; }); },
        });
        Object.defineProperty(window, '__switchboardBoot', { value: boot, writable: true, configurable: true });
      },
    });
  });
  const user = agentName('f-not-ours');
  await page.goto(`/?user=${user}`);
  const agent = { variant: { name: 'not ours' }, user, page, context };
  await expect(page.locator('#boot-screen')).toHaveCount(0, { timeout: 15_000 });
  await expect(page.getByRole('status')).toHaveText('Connected');
  const log = await page.evaluate(() => window.switchboardDiagnostics());
  expect(log).toMatch(/start-up script's hub connection was not made for this client: closed/);
  expect(log).not.toMatch(/opened by the start-up script/);
  expect(log.match(/transport \w+.*, protocol /g)).toHaveLength(1);
  await ringReaches(agent, '+14255550125');
  await context.close();
});

test('a flaky proxy cuts every connection after 3 s, again and again', async () => {
  test.setTimeout(180_000);
  const agents = await openAgents(browser, 'flaky');
  const cells = newCells(agents);
  const t0 = Date.now();
  proxy.flaky(3_000);
  const watching = watch(agents, 40_000, 3_000, t0, cells);
  // Rung while connections keep being cut: whatever the hub took rings in the widget while
  // the cuts go on (stateful replay, or the resync after a new connection), and the agent's
  // answer reaches the hub: rejected, or missed when the rejectCall was lost with a cut
  // connection and sent again at the next resync. Never left ringing, never unseen.
  await sleep(10_000);
  const rung = [];
  for (const a of agents) rung.push({ agent: a, ...(await ring(a.user, '+14255550105')) });
  await Promise.all(rung.map(async ({ agent, status, callId }) => {
    if (status === 200) await shown(agent, callId, '+14255550105', { timeout: 25_000, final: ['rejected', 'missed'] });
    // Not connected at that instant: refused 409 `offline` (agent state, docs/agent-state.md).
    else expect(status, `${agent.variant.name}: refused, not lost`).toBe(409);
  }));
  const violations = await watching;
  const cuts = proxy.cuts;
  proxy.steady();
  const calm = Date.now();
  await recovered(agents, cells, t0, calm, 60_000);
  report(`flaky proxy (${cuts} cuts in 40 s)`, agents, cells);
  expect(cuts).toBeGreaterThan(8);
  expect(violations).toEqual([]);
  for (const a of agents) await ringReaches(a, '+14255550106');
});

test('the page frozen for 45 s (a sleeping laptop), then resumed', async () => {
  test.setTimeout(180_000);
  // Chromium freezes only hidden pages (Page.setWebLifecycleState refuses nothing but does
  // nothing to a visible one), and a headless page is never hidden, so the page's JavaScript is
  // frozen with the DevTools debugger instead: no timer, no event handler and no socket
  // callback runs until it is resumed, as on a sleeping laptop.
  const agents = await openAgents(browser, 'frozen');
  const cells = newCells(agents);
  const sessions = [];
  for (const a of agents) {
    const cdp = await a.context.newCDPSession(a.page);
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
    sessions.push(cdp);
  }
  const t0 = Date.now();
  await sleep(5_000);
  const rung = [];
  for (const a of agents) rung.push({ agent: a, ...(await ring(a.user, '+14255550107')) });
  await sleep(40_000);
  // The hub freed the frozen clients within its client timeout (30 s).
  for (const a of agents) expect(await hubView(a.user), a.variant.name).toBe('gone');
  const resumed = Date.now();
  for (const cdp of sessions) {
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
  }
  // Within a few seconds of waking, the widget knows the connection is gone (it never keeps
  // claiming "Connected" for a connection the hub freed), then it is back.
  const violations = await watch(agents, 8_000, 5_000, resumed, cells);
  await recovered(agents, cells, resumed, resumed, 45_000);
  report('page frozen 45 s (times from waking)', agents, cells);
  expect(violations).toEqual([]);
  for (const { agent, status, callId } of rung) {
    expect(status).toBe(200);
    await shown(agent, callId, '+14255550107');
  }
  for (const a of agents) await ringReaches(a, '+14255550108');
});

// Chromium's intensive wake-up throttling of hidden tabs (timers at most once a minute, aligned
// to the minute) cannot be switched on here: a headless page is never hidden. The browser's
// scheduling is emulated instead: from the moment the tab "goes to the background", every
// setTimeout and setInterval callback of the page (gloo-timers calls them at run time) is
// deferred to the next whole minute. The widget's own code path is unchanged.
const THROTTLE = `(() => {
  const realSet = window.setTimeout.bind(window), realClear = window.clearTimeout.bind(window);
  const realInterval = window.setInterval.bind(window), realClearInterval = window.clearInterval.bind(window);
  const timers = new Map(); let next = 1e6;
  window.__wakeups = 0;
  const aligned = (delay) => Math.ceil((Date.now() + Math.max(0, delay || 0)) / 60000) * 60000 - Date.now();
  window.setTimeout = (fn, delay, ...args) => {
    const id = next++;
    timers.set(id, realSet(() => { timers.delete(id); window.__wakeups++; if (typeof fn === 'function') fn(...args); }, aligned(delay)));
    return id;
  };
  window.clearTimeout = (id) => { if (timers.has(id)) { realClear(timers.get(id)); timers.delete(id); } else realClear(id); };
  window.setInterval = (fn, delay, ...args) => {
    const id = next++;
    const tick = () => timers.set(id, realSet(() => { window.__wakeups++; if (typeof fn === 'function') fn(...args); if (timers.has(id)) tick(); }, aligned(delay)));
    tick();
    return id;
  };
  window.clearInterval = (id) => { if (timers.has(id)) { realClear(timers.get(id)); timers.delete(id); } else realClearInterval(id); };
  window.__unthrottle = () => { window.setTimeout = realSet; window.clearTimeout = realClear; window.setInterval = realInterval; window.clearInterval = realClearInterval; };
})()`;

test('a background tab under intensive timer throttling stays connected and rings', async () => {
  test.setTimeout(330_000);
  // The ring is checked ~35 s after it starts: a ring time longer than that, so the check does
  // not depend on when the throttled ring timer (aligned to a whole minute) happens to fire
  // (with the default 30 s, the ring was over — "Missed" — in 1 run of 5 in a fresh clone).
  const agents = await openAgents(browser, 'hidden', { ringTimeoutSeconds: 180 });
  const cells = newCells(agents);
  for (const a of agents) await a.page.evaluate(THROTTLE);
  const t0 = Date.now();
  // 100 s in the background (longer than three hub client timeouts), the hub's view sampled
  // throughout: the connection must
  // hold (the widget pings from the receive path, so its throttled timers do not matter).
  const lost = [];
  const span = Number(process.env.E2E_BACKGROUND_MS ?? 100_000);
  const end = t0 + span;
  let rung;
  while (Date.now() < end) {
    for (const a of agents) if ((await hubView(a.user)) !== 'up') lost.push(`${a.variant.name} at ${Date.now() - t0} ms`);
    if (!rung && Date.now() - t0 > (span * 2) / 3) {
      rung = [];
      for (const a of agents) rung.push({ agent: a, ...(await ring(a.user, '+14255550109')) });
    }
    await sleep(2_000);
  }
  // The ring reached the background page (the dialog is in its DOM) while throttled.
  for (const { agent, status } of rung) {
    expect(status).toBe(200);
    try {
      await expect(agent.page.getByRole('alertdialog', { name: /Incoming call/ })).toContainText('+14255550109', { timeout: 20_000 });
    } catch (e) {
      console.log(`--- ${agent.variant.name}\n${(await agent.page.evaluate(() => window.switchboardDiagnostics())).split('\n').slice(-15).join('\n')}`);
      throw e;
    }
  }
  const wakeups = [];
  for (const a of agents) wakeups.push(await a.page.evaluate(() => { const n = window.__wakeups; window.__unthrottle(); return n; }));
  console.log(`background tab: timer wake-ups under throttling: ${wakeups.join(', ')}`);
  await timings(agents, cells, t0, t0);
  report(`background ${span / 1000} s, throttled timers`, agents, cells);
  expect(lost).toEqual([]);
  for (const a of agents) expect(cells.get(a.user).detectMs, `${a.variant.name} never left Connected`).toBeUndefined();
  for (const { agent, callId } of rung) await shown(agent, callId, '+14255550109');
  for (const a of agents) await expect(a.page.getByRole('status')).toHaveText('Connected');
});
