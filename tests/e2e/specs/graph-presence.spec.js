// Teams presence from Graph (issue 15, docs/presence.md): the hub as a real change-notification
// subscriber (its own Graph stand-in plays Microsoft Graph: validation handshake, clientState,
// renewal, lifecycle events), the widget's polling when the hub pushes nothing, the team from a
// group, and the sync engine's 15-second rule, loop detection and InACall renewal (with a faster
// clock through config.json; the shipped defaults stay the seed's).
//
// Two hubs of this spec's own (ports 18310 and 18311, E2E_GRAPH_PORT overrides the first):
//   SUB  – Graph app credentials pointing at its own stand-in (`"push": "subscriptions"`),
//          subscriptions of 20 s renewed with 15 s left (a renewal every ~5 s);
//   POLL – `--graph-stand-in-push off` (`"push": "none"`), as a hub without Graph credentials.
// The sync-engine tests use the suite's hub (stand-in pushes).
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { ACCESS_KEY, HUB, HUB_BIN, agentName } from './hub.js';

const SUB_PORT = Number(process.env.E2E_GRAPH_PORT ?? 18_310);
const SUB = `http://127.0.0.1:${SUB_PORT}`;
const POLL = `http://127.0.0.1:${SUB_PORT + 1}`;
const CLIENT_ID = 'switchboard-e2e';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const hubs = [];

async function startHub(port, extra) {
  const hub = spawn(HUB_BIN, ['--listen', `127.0.0.1:${port}`, '--static', '../../dist', '--access-key', ACCESS_KEY,
    '--ring-timeout', '120', '--wrap-up-seconds', '0', ...extra],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  hubs.push(hub);
  let stderr = '';
  hub.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  for (let i = 0; i < 200 && hub.exitCode === null; i += 1) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/config.json`)).ok) return;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`switchboard-hub on ${port} did not start within 10 s: ${stderr}`);
}

test.beforeAll(async () => {
  await startHub(SUB_PORT, [
    '--graph-tenant', 'dev', '--graph-client-id', CLIENT_ID, '--graph-client-secret', ACCESS_KEY,
    '--graph-notification-url', `${SUB}/api/graph/notifications`,
    '--graph-base-url', `${SUB}/graph/v1.0`,
    '--graph-token-url', `${SUB}/graph/login/dev/oauth2/v2.0/token`,
    '--graph-subscription-seconds', '20', '--graph-renew-before-seconds', '15',
  ]);
  await startHub(SUB_PORT + 1, ['--graph-stand-in-push', 'off']);
});

test.afterAll(async () => {
  for (const hub of hubs) {
    if (hub.exitCode !== null) continue;
    const gone = new Promise((r) => hub.once('exit', r));
    hub.kill('SIGTERM');
    await Promise.race([gone, sleep(5_000)]);
  }
});

async function devToken(request, base, user) {
  const response = await request.post(`${base}/dev/token`, { data: { user } });
  expect(response.status()).toBe(200);
  return (await response.json()).accessToken;
}

/** Changes `user`'s presence as if from the Teams client (the stand-in's simulator). */
async function simulate(request, base, user, availability, activity) {
  const r = await request.post(`${base}/simulator/presence`, { data: { user, availability, activity } });
  expect(r.status()).toBe(200);
}

/** The SUB hub's subscriptions as Graph holds them (GET /subscriptions with the hub's app token). */
async function subscriptions(request) {
  const token = await request.post(`${SUB}/graph/login/dev/oauth2/v2.0/token`, {
    form: { grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: ACCESS_KEY, scope: 'https://graph.microsoft.com/.default' },
  });
  expect(token.status()).toBe(200);
  const r = await request.get(`${SUB}/graph/v1.0/subscriptions`, {
    headers: { authorization: `Bearer ${(await token.json()).access_token}` },
  });
  expect(r.status()).toBe(200);
  return (await r.json()).value;
}

async function metric(request, base, series) {
  const text = await (await request.get(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Opens the widget of `base` for `user`, config.json's `presence` section merged with `presence`. */
async function openWidget(browser, base, user, presence = {}) {
  const context = await browser.newContext({ viewport: { width: 360, height: 720 }, baseURL: base });
  const page = await context.newPage();
  await page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    const merged = { ...config.presence, ...presence, sync: { ...config.presence?.sync, ...presence.sync } };
    await route.fulfill({ response, json: { ...config, presence: merged } });
  });
  return { context, page };
}

async function signedIn(page, user) {
  await page.goto(`/?user=${user}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
  await expect(page.getByLabel('Presence')).toBeVisible();
}

/** Opens the team drawer and narrows it to `query`; the row. */
async function teamRow(page, query) {
  await page.locator('summary', { hasText: 'Team' }).click();
  await page.getByLabel('Search team').fill(query);
  await expect(page.locator('li.mate')).toHaveCount(1);
  return page.locator('li.mate .mate__presence');
}

test('the team is the group switchboard-agents (paged members), and a stand-in change reaches the widget through the hub\'s subscription', async ({ browser, request }) => {
  const { context, page } = await openWidget(browser, SUB, 'bob');
  const members = [];
  page.on('request', (r) => { if (r.url().includes('/groups/switchboard-agents/members')) members.push(r.url()); });
  let polls = 0;
  const hubAnswer = new Promise((resolve) => {
    page.on('websocket', (ws) => ws.on('framereceived', (f) => {
      const text = typeof f.payload === 'string' ? f.payload : '';
      const m = text.match(/"push":"([a-z-]+)"/);
      if (m) resolve(m[1]);
    }));
  });
  await signedIn(page, 'bob');
  // 122 members without bob: two pages of 100, through @odata.nextLink with $select.
  await expect(page.locator('summary', { hasText: 'Team' })).toContainText('121', { timeout: 30_000 });
  expect(members).toHaveLength(2);
  expect(decodeURIComponent(members[0])).toContain('$select=id,displayName,userPrincipalName');
  expect(decodeURIComponent(members[1])).toContain('$skiptoken=100');
  expect(await hubAnswer).toBe('subscriptions');
  page.on('request', (r) => { if (r.url().includes('getPresencesByUserId')) polls += 1; });

  await simulate(request, SUB, 'colleague-007', 'Available', 'Available');
  const presence = await teamRow(page, 'colleague-007');
  await expect(presence).toHaveText('Available');
  // The hub subscribed (one subscription per batch of up to 650 ids it was asked to watch).
  await expect.poll(() => subscriptions(request).then((s) => s.some((x) => x.resource.includes("'colleague-007'")))).toBe(true);

  const accepted = await metric(request, SUB, 'switchboard_graph_notifications_total{outcome="accepted"}');
  const started = Date.now();
  await simulate(request, SUB, 'colleague-007', 'Busy', 'InAMeeting');
  await expect(presence).toHaveText('Busy · In a meeting', { timeout: 2_000 });
  const ms = Date.now() - started;
  console.log(`graph-presence: stand-in change → widget through the subscription in ${ms} ms`);
  // It came as a change notification, not a widget poll.
  expect(await metric(request, SUB, 'switchboard_graph_notifications_total{outcome="accepted"}')).toBeGreaterThan(accepted);
  expect(polls).toBe(0);
  await context.close();
});

test('an expiring subscription is renewed (PATCH, same id, later expiry) and a missed lifecycle event triggers a resync', async ({ browser, request }) => {
  const { context, page } = await openWidget(browser, SUB, 'bob');
  await signedIn(page, 'bob');
  await expect(page.locator('summary', { hasText: 'Team' })).toContainText('121', { timeout: 30_000 });
  const covering = async (id) => (await subscriptions(request)).find((x) => x.resource.includes(`'${id}'`));
  await expect.poll(() => covering('colleague-011').then(Boolean)).toBe(true);
  const first = await covering('colleague-011');
  // 20 s subscriptions renewed with 15 s left: the expiry moves on, the id stays.
  await expect.poll(async () => {
    const now = await covering('colleague-011');
    return now && now.id === first.id && Date.parse(now.expirationDateTime) > Date.parse(first.expirationDateTime);
  }, { timeout: 15_000 }).toBe(true);

  // `missed`: the stand-in drops the next change notification and sends the lifecycle event
  // instead; the hub reads the batch again and the change still reaches the widget.
  const presence = await teamRow(page, 'colleague-011');
  await simulate(request, SUB, 'colleague-011', 'Available', 'Available');
  await expect(presence).toHaveText('Available');
  const missed = await metric(request, SUB, 'switchboard_graph_lifecycle_total{event="missed"}');
  const token = await devToken(request, SUB, 'tester');
  const sub = await covering('colleague-011');
  const hook = await request.post(`${SUB}/graph/v1.0/test/subscriptions/${sub.id}/lifecycle`, {
    headers: { authorization: `Bearer ${token}` }, data: { lifecycleEvent: 'missed' },
  });
  expect(hook.status()).toBe(202);
  await simulate(request, SUB, 'colleague-011', 'DoNotDisturb', 'Presenting');
  await expect(presence).toHaveText('Do not disturb · Presenting');
  expect(await metric(request, SUB, 'switchboard_graph_lifecycle_total{event="missed"}')).toBeGreaterThan(missed);
  await context.close();
});

test('with nothing pushing (no hub Graph credentials) the widget polls getPresencesByUserId and honours Retry-After', async ({ browser, request }) => {
  const { context, page } = await openWidget(browser, POLL, 'bob', { pollSeconds: 5 });
  const polled = [];
  let throttled = false;
  // The first poll after the team load is throttled with Retry-After: 1.
  await page.route('**/communications/getPresencesByUserId', async (route) => {
    polled.push(Date.now());
    if (polled.length === 2 && !throttled) {
      throttled = true;
      await route.fulfill({ status: 429, headers: { 'retry-after': '1', 'access-control-expose-headers': 'Retry-After' }, json: { error: { code: 'TooManyRequests', message: 'e2e' } } });
      return;
    }
    await route.continue();
  });
  await signedIn(page, 'bob');
  await expect(page.locator('summary', { hasText: 'Team' })).toContainText('121', { timeout: 30_000 });
  const presence = await teamRow(page, 'colleague-013');
  await simulate(request, POLL, 'colleague-013', 'Available', 'Available');
  await expect(presence).toHaveText('Available', { timeout: 20_000 });
  await simulate(request, POLL, 'colleague-013', 'Away', 'Away');
  await expect(presence).toHaveText('Away', { timeout: 20_000 });
  expect(throttled).toBe(true);
  expect(polled.length).toBeGreaterThanOrEqual(3);
  // Every request carries at most 650 ids (here: bob and his 121 colleagues).
  await context.close();
});

test('an invalid presence.pollSeconds is explained', async ({ browser }) => {
  const { context, page } = await openWidget(browser, POLL, 'bob', { pollSeconds: 2 });
  await page.goto('/?user=bob');
  await expect(page.getByText('presence.pollSeconds must be a whole number of seconds from 5 to 3600 (got 2)')).toBeVisible();
  await context.close();
});

test('config: presence.team lists the team; teamGroupId and team together are refused', async ({ browser }) => {
  const { context, page } = await openWidget(browser, POLL, 'bob', { teamGroupId: null, team: ['alice@switchboard.test', 'colleague-002'] });
  const users = [];
  page.on('request', (r) => { if (/\/graph\/v1\.0\/users\/[^/]+\?/.test(r.url())) users.push(r.url()); });
  await signedIn(page, 'bob');
  await page.locator('summary', { hasText: 'Team' }).click();
  await expect(page.locator('li.mate')).toHaveCount(2, { timeout: 30_000 });
  await expect(page.locator('li.mate .mate__name')).toHaveText(['Alice Adams', 'Chloe Abbott']);
  expect(users).toHaveLength(2);
  await context.close();
  const both = await openWidget(browser, POLL, 'bob', { teamGroupId: 'switchboard-agents', team: ['alice'] });
  await both.page.goto('/?user=bob');
  await expect(both.page.getByText('presence.teamGroupId and presence.team are both set; use one')).toBeVisible();
  await both.context.close();
});

// ----- the sync engine, against the suite's hub (stand-in pushes) -----

async function graphPresence(request, id) {
  const token = await devToken(request, HUB, 'bob');
  const r = await request.get(`${HUB}/graph/v1.0/users/${id}/presence`, { headers: { authorization: `Bearer ${token}` } });
  expect(r.status()).toBe(200);
  const body = await r.json();
  return `${body.availability}/${body.activity}`;
}

function countWrites(page) {
  const writes = [];
  page.on('request', (r) => {
    const m = r.url().match(/\/presence\/(setPresence|clearPresence|setUserPreferredPresence|clearUserPreferredPresence)$/);
    if (m && r.method() === 'POST') writes.push({ action: m[1], body: r.postDataJSON() });
  });
  return writes;
}

test('15-second rule: a state shorter than minStableSeconds never reaches Teams; one that lasts does, after a notice', async ({ browser, request }) => {
  const user = agentName('g15');
  const { context, page } = await openWidget(browser, HUB, user, { sync: { minStableSeconds: 4, precedenceSeconds: 1 } });
  const writes = countWrites(page);
  await signedIn(page, user);
  await simulate(request, HUB, user, 'Available', 'Available');
  await expect(page.locator('.presence__words')).toHaveText('Available');

  // Break for less than 4 s: held back (the notice says so), then Ready again: nothing written.
  await page.getByLabel('Presence').selectOption('state:Break');
  await expect(page.locator('.presence__held')).toHaveText(/short changes are ignored/);
  await page.getByLabel('Presence').selectOption('state:Ready');
  await expect(page.locator('.presence__held')).toBeEmpty();
  await sleep(5_000);
  expect(writes.filter((w) => w.action === 'setUserPreferredPresence')).toEqual([]);
  expect(await graphPresence(request, user)).toBe('Available/Available');

  // Break that lasts: written once, after the notice.
  await page.getByLabel('Presence').selectOption('state:Break');
  await expect(page.locator('.presence__held')).toHaveText(/short changes are ignored/);
  await expect.poll(() => graphPresence(request, user), { timeout: 15_000 }).toBe('Away/Away');
  await expect(page.locator('.presence__held')).toBeEmpty();
  expect(writes.filter((w) => w.action === 'setUserPreferredPresence')).toHaveLength(1);
  await page.getByLabel('Presence').selectOption('state:Ready');
  await expect.poll(() => graphPresence(request, user), { timeout: 15_000 }).toBe('Available/Available');
  await context.close();
});

test('loop detection: Teams flipping faster than maxFlips per window is held back, with a notice', async ({ browser, request }) => {
  const user = agentName('gloop');
  const { context, page } = await openWidget(browser, HUB, user, {
    sync: { minStableSeconds: 1, precedenceSeconds: 0, maxFlips: 2, flipWindowSeconds: 120 },
  });
  await signedIn(page, user);
  const state = page.locator('.presence__state');
  await simulate(request, HUB, user, 'Available', 'Available');
  // Another system mirrors states into Teams: Away → Break, DoNotDisturb → NotReady …
  await simulate(request, HUB, user, 'Away', 'Away');
  await expect(state).toHaveText(/^Break · /);
  await simulate(request, HUB, user, 'DoNotDisturb', 'DoNotDisturb');
  await expect(state).toHaveText(/^Not ready · /);
  // … the third change within the window is held back and the widget says why.
  await simulate(request, HUB, user, 'Away', 'Away');
  await expect(page.locator('.presence__held')).toHaveText(/keep changing each other/);
  await expect(state).toHaveText(/^Not ready · /);
  await context.close();
});

test('InACall: published once a call has lasted minStableSeconds, renewed every sessionRenewSeconds, cleared after', async ({ browser, request }) => {
  const user = agentName('gcall');
  const { context, page } = await openWidget(browser, HUB, user, {
    sync: { minStableSeconds: 1, sessionRenewSeconds: 2, sessionExpirationSeconds: 300 },
  });
  const writes = countWrites(page);
  await signedIn(page, user);
  const rang = await request.post(`${HUB}/api/SendMessageToUser`, {
    headers: { 'x-functions-key': ACCESS_KEY, 'content-type': 'application/json' },
    data: JSON.stringify({ userId: user, message: JSON.stringify({ PhoneNumber: '+14255550199', callerName: 'Graph E2E' }) }),
  });
  expect(rang.status()).toBe(200);
  await page.getByRole('alertdialog', { name: /Incoming call/ }).getByRole('button', { name: 'Accept' }).click();
  await expect.poll(() => graphPresence(request, user), { timeout: 15_000 }).toBe('Busy/InACall');
  // Renewed while the call lasts: setPresence again, same session, InACall, PT5M.
  await expect.poll(() => writes.filter((w) => w.action === 'setPresence').length, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
  for (const w of writes.filter((x) => x.action === 'setPresence')) {
    expect(w.body).toMatchObject({ sessionId: 'switchboard', availability: 'Busy', activity: 'InACall', expirationDuration: 'PT5M' });
  }
  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(() => writes.some((w) => w.action === 'clearPresence'), { timeout: 15_000 }).toBe(true);
  await context.close();
});
