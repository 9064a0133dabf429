// Presence (issue 6): own presence, the team drawer, Teams ⇄ agent-state sync, and InACall
// during a call, against the hub's Graph stand-in. presence.sync.minStableSeconds is set to 1
// through config.json so the 15 s stability rule does not slow the tests down.
import { test, expect } from '@playwright/test';
import { HUB, ring } from './hub.js';

async function devToken(request, user) {
  const response = await request.post(`${HUB}/dev/token`, { data: { user } });
  expect(response.status()).toBe(200);
  return (await response.json()).accessToken;
}

/** GET /graph/v1.0/users/{id}/presence as `asUser`. */
async function graphPresence(request, id, asUser = 'bob') {
  const token = await devToken(request, asUser);
  const response = await request.get(`${HUB}/graph/v1.0/users/${id}/presence`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(response.status()).toBe(200);
  const body = await response.json();
  return `${body.availability}/${body.activity}`;
}

/** Puts `user` back to Available in Teams with no preferred presence. */
async function resetPresence(request, user) {
  const token = await devToken(request, user);
  const cleared = await request.post(`${HUB}/graph/v1.0/users/${user}/presence/clearUserPreferredPresence`, {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    data: {},
  });
  expect(cleared.status()).toBe(200);
  await request.post(`${HUB}/graph/v1.0/users/${user}/presence/clearPresence`, {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    data: { sessionId: 'switchboard' },
  });
  const teams = await request.post(`${HUB}/simulator/presence`, {
    data: { user, availability: 'Available', activity: 'Available' },
  });
  expect(teams.status()).toBe(200);
  expect(await graphPresence(request, user)).toBe('Available/Available');
}

async function fastSync(page, patch = {}) {
  await page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    const presence = { ...(config.presence ?? {}), ...patch };
    await route.fulfill({
      response,
      json: { ...config, presence: { ...presence, sync: { ...(presence.sync ?? {}), minStableSeconds: 1, precedenceSeconds: 1 } } },
    });
  });
}

async function openWidget(browser, user) {
  const context = await browser.newContext({ viewport: { width: 360, height: 720 } });
  const page = await context.newPage();
  await fastSync(page);
  await page.goto(`/?user=${user}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
  await expect(page.getByLabel('Presence')).toBeVisible();
  return { context, page };
}

async function openTeam(page) {
  await page.locator('summary', { hasText: 'Team' }).click();
  await expect(page.getByLabel('Search team')).toBeVisible({ timeout: 30_000 });
}

const row = (page, name) => page.locator('li.mate', { hasText: name });

// The hub keeps alice's agent state (issue 15), and the Teams sync sets it: leave her Ready in
// Teams and in the hub, for the next test and the specs after this one.
test.afterEach(async ({ browser, request }) => {
  await resetPresence(request, 'alice');
  const { context, page } = await openWidget(browser, 'alice');
  await page.getByLabel('Presence').selectOption('state:Ready');
  await expect(page.locator('.presence__state')).toHaveText(/^Ready · /);
  await context.close();
});

test('alice sets Busy in her widget; bob sees it in his team list', async ({ browser, request }) => {
  await resetPresence(request, 'alice');
  const alice = await openWidget(browser, 'alice');
  const bob = await openWidget(browser, 'bob');
  await openTeam(bob.page);
  await bob.page.getByLabel('Search team').fill('alice');
  await expect(row(bob.page, 'Alice Adams')).toContainText('Available');

  await alice.page.getByLabel('Presence').selectOption({ label: 'Busy' });
  await expect(alice.page.locator('.presence__source')).toHaveText('set here');
  await expect(row(bob.page, 'Alice Adams')).toContainText('Busy');
  await expect(row(bob.page, 'Alice Adams').locator('.dot')).toHaveClass(/dot--busy/);
  expect(await graphPresence(request, 'alice')).toBe('Busy/Busy');
  await alice.context.close();
  await bob.context.close();
});

test('a Teams change for alice shows in her widget, from Teams, and sets her agent state', async ({ browser, request }) => {
  await resetPresence(request, 'alice');
  const { context, page } = await openWidget(browser, 'alice');
  await expect(page.locator('.presence__words')).toHaveText('Available');
  await expect(page.getByLabel('Presence')).toHaveValue('state:Ready');

  const response = await request.post(`${HUB}/simulator/presence`, {
    data: { user: 'alice', availability: 'Busy', activity: 'InAMeeting' },
  });
  expect(response.status()).toBe(200);
  await expect(page.locator('.presence__words')).toHaveText('Busy · In a meeting');
  await expect(page.locator('.presence__source')).toHaveText('from Teams');
  // Seed 003: a meeting maps to NotReady once it has held for minStableSeconds.
  await expect(page.getByLabel('Presence')).toHaveValue('state:NotReady');
  await context.close();
});

test('a call publishes InACall; hanging up restores the previous presence', async ({ browser, request }) => {
  await resetPresence(request, 'alice');
  const { context, page } = await openWidget(browser, 'alice');
  // The agent goes Not ready: sync writes the preferred presence Busy/Busy.
  await page.getByLabel('Presence').selectOption({ label: 'Not ready' });
  await expect.poll(() => graphPresence(request, 'alice'), { timeout: 15_000 }).toBe('Busy/Busy');

  // Not ready, the hub rings her no more (issue 15), but she may call out.
  await page.getByLabel('Phone number').fill('+14255550123');
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  await expect(page.getByRole('heading', { name: 'On call' })).toBeVisible({ timeout: 15_000 });
  await expect.poll(() => graphPresence(request, 'alice'), { timeout: 15_000 }).toBe('Busy/InACall');
  await expect(page.locator('.presence__words')).toHaveText('Busy · In a call');
  await expect(page.locator('.presence__source')).toHaveText('automatic');

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(() => graphPresence(request, 'alice'), { timeout: 15_000 }).toBe('Busy/Busy');
  await expect(page.locator('.presence__words')).toHaveText('Busy');
  await context.close();
});

test('700 colleagues load in two getPresencesByUserId batches; search, favourites, click-to-call', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 360, height: 720 } });
  const page = await context.newPage();
  let batches = 0;
  page.on('request', (r) => {
    if (r.url().includes('/communications/getPresencesByUserId')) batches += 1;
  });
  // Neither presence.teamGroupId nor presence.team: the whole directory (GET /users), as before.
  await fastSync(page, { teamGroupId: null, team: null });
  await page.goto('/?user=bob');
  await expect(page.getByRole('status')).toHaveText('Connected');
  await expect(page.locator('summary', { hasText: 'Team' })).toContainText('701', { timeout: 30_000 });
  expect(batches).toBe(2);
  await openTeam(page);
  await expect(page.getByText('Showing 50 of 701')).toBeVisible();

  await page.getByLabel('Search team').fill('colleague-700');
  await expect(page.locator('li.mate')).toHaveCount(1);
  await expect(page.locator('li.mate')).not.toContainText('Unknown');

  // Favourites: starred by keyboard, first in the list, kept across a reload (ids only).
  const star = page.locator('li.mate').first().getByRole('button', { name: /^Favourite / });
  await expect(star).toHaveAttribute('aria-pressed', 'false');
  await star.focus();
  await page.keyboard.press('Enter');
  await expect(star).toHaveAttribute('aria-pressed', 'true');
  await expect(star).toBeFocused();
  await page.reload();
  await openTeam(page);
  await expect(page.locator('li.mate').first().getByRole('button', { name: /^Favourite/ })).toHaveAttribute('aria-pressed', 'true');
  const stored = await page.evaluate(() => localStorage.getItem('switchboard.favourites'));
  expect(JSON.parse(stored)).toEqual(['colleague-700']);

  expect(batches).toBe(4); // the reload read the team again: 2 more batches

  // Click-to-call a colleague who is signed in: the hub's makeCall rings her widget, with bob
  // as the caller, and bob's widget shows the outbound call ringing her.
  const alice = await context.newPage();
  await alice.goto('/?user=alice');
  await expect(alice.getByRole('status')).toHaveText('Connected');
  await page.getByLabel('Search team').fill('Alice Adams');
  await page.locator('li.mate', { hasText: 'Alice Adams' }).getByRole('button', { name: /^Call / }).click();
  await expect(page.locator('.call__state')).toHaveText(/Ringing…|Calling…/);
  await expect(page.locator('.call .caller__name')).toHaveText('alice');
  const offer = alice.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(offer).toContainText('bob');
  await offer.getByRole('button', { name: 'Reject' }).click();
  await expect(offer).toBeHidden();
  // She declined: bob's call ends unanswered, with no wrap-up.
  await expect(page.getByText('Not reached:')).toBeVisible();
  await context.close();
});

test('Graph throttling (429 with Retry-After) is waited out and the read retried', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 360, height: 720 } });
  const page = await context.newPage();
  let reads = 0;
  await page.route('**/communications/getPresencesByUserId', async (route) => {
    reads += 1;
    if (reads === 1) {
      await route.fulfill({
        status: 429,
        headers: { 'Retry-After': '1' },
        json: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
      });
    } else {
      await route.continue();
    }
  });
  await fastSync(page, { teamGroupId: null, team: null }); // the directory: two batches
  await page.goto('/?user=bob');
  await expect(page.getByRole('status')).toHaveText('Connected');
  await expect(page.locator('summary', { hasText: 'Team' })).toContainText('701', { timeout: 30_000 });
  expect(reads).toBe(3); // the throttled batch again, then the second batch
  await openTeam(page);
  await page.getByLabel('Search team').fill('Alice Adams');
  await expect(row(page, 'Alice Adams')).not.toContainText('Unknown');
  await context.close();
});

test('Graph refusing a presence change (403) tells the agent what to ask for', async ({ browser }) => {
  const { context, page } = await openWidget(browser, 'frank');
  await page.route('**/presence/setUserPreferredPresence', (route) =>
    route.fulfill({ status: 403, json: { error: { code: 'Forbidden', message: 'Insufficient privileges' } } }));
  await page.getByLabel('Presence').selectOption({ label: 'Busy' });
  await expect(page.getByText(/Microsoft Graph refused this \(HTTP 403\).*Presence\.ReadWrite/)).toBeVisible();
  await context.close();
});

test('signing out during a call clears the InACall session presence', async ({ browser, request }) => {
  await resetPresence(request, 'dave');
  const { context, page } = await openWidget(browser, 'dave');
  await ring(request, 'dave', { PhoneNumber: '+14255550123' });
  await page.getByRole('alertdialog', { name: /Incoming call/ }).getByRole('button', { name: 'Accept' }).click();
  await expect.poll(() => graphPresence(request, 'dave'), { timeout: 15_000 }).toBe('Busy/InACall');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByLabel('User name')).toBeVisible();
  await expect.poll(() => graphPresence(request, 'dave'), { timeout: 15_000 }).not.toBe('Busy/InACall');
  await context.close();
});
