// Sign-in with the real MSAL.js (npm @azure/msal-browser, copied into dist by the build) against
// a local OpenID Connect provider (npm oidc-provider over HTTPS, self-signed certificate made at
// test time: oidc/server.js) standing in for Entra ID. The spec starts its own provider and its
// own hub in OIDC mode (dev sign-in off), serving dist/ with a config.json in "msal" mode, and
// an iframe host page (a CRM stand-in) served as another origin of the same site
// (http://127.0.0.1:HOST_PORT) and as another site (http://localhost:HOST_PORT); a second hub
// with --dev-auth on serves the CIF host simulator (dev routes) for the ssoSilent case.
//
// Playwright starts Chromium with third-party storage partitioning switched off
// (--disable-features=…ThirdPartyStoragePartitioning…); Chrome ships it on. This spec passes its
// own --disable-features without it (the last occurrence of a switch wins), so cross-site frames
// behave as in the field, and checks that they do.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect, chromium } from '@playwright/test';
import { HUB_BIN } from './hub.js';

const OIDC_PORT = Number(process.env.E2E_OIDC_PORT ?? 8441);
const HUB_PORT = Number(process.env.E2E_MSAL_HUB_PORT ?? 18281);
const HOST_PORT = Number(process.env.E2E_MSAL_HOST_PORT ?? HUB_PORT + 1);
const CIF_HUB_PORT = Number(process.env.E2E_MSAL_CIF_HUB_PORT ?? HUB_PORT + 2);
const HUB = `http://127.0.0.1:${HUB_PORT}`;
const CIF_HUB = `http://127.0.0.1:${CIF_HUB_PORT}`;
const ISSUER = `https://localhost:${OIDC_PORT}`;
const AUDIENCE = 'api://switchboard-e2e';
const TTL = 20; // seconds: access tokens expire during the test
const DIST = fileURLToPath(new URL('../../../dist', import.meta.url));
const SERVER = fileURLToPath(new URL('../oidc/server.js', import.meta.url));

let dir;
let oidc;
let hub;
let cifHub;
let host;

/** Spawns a process and waits (bounded) for a stdout line starting with `ready`. */
function start(cmd, args, ready, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill(); reject(new Error(`${cmd}: not ready in 20 s\n${out}\n${err}`)); }, 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.split('\n').some((l) => l.startsWith(ready))) { clearTimeout(timer); resolve(child); }
    });
    child.stderr.on('data', (d) => { err = (err + d).slice(-4000); if (process.env.E2E_DEBUG) process.stderr.write(d); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}\n${err}`)); });
  });
}

function stop(child) {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 5_000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

const startHub = (port = HUB_PORT, extra = []) => start(HUB_BIN, ['--listen', `127.0.0.1:${port}`, '--static', DIST,
  '--config', join(dir, 'config.json'), '--access-key', 'e2e-msal-key-0123456789',
  '--oidc-authority', ISSUER, '--oidc-audience', AUDIENCE, '--oidc-ca-file', join(dir, 'cert.pem'),
  // The CRM stand-in frames the widget from both host names (CSP frame-ancestors).
  '--frame-ancestor', `http://127.0.0.1:${HOST_PORT}`, '--frame-ancestor', `http://localhost:${HOST_PORT}`, ...extra],
'listening on', { RUST_LOG: 'warn' });

// Playwright 1.65's own --disable-features list minus ThirdPartyStoragePartitioning.
const PLAYWRIGHT_DISABLED_FEATURES = ['AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose',
  'HttpsUpgrades', 'HttpsFirstBalancedModeAutoEnable', 'LensOverlay', 'MediaRouter', 'PaintHolding',
  'AvoidCorsURLLoaderRestartOnRedirect', 'TcpPortRandomizationWin', 'OptimizationHints',
  'NetworkTimeServiceQuerying', 'AimEnabled', 'PreconnectToSearch'];

const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--disable-features=${PLAYWRIGHT_DISABLED_FEATURES.join(',')}`],
};

test.describe.configure({ mode: 'serial' });
test.use({ ignoreHTTPSErrors: true, launchOptions: LAUNCH });

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-msal-'));
  oidc = await start('node', [SERVER, '--port', String(OIDC_PORT), '--cert-dir', dir,
    '--redirect', `${HUB}/redirect.html,${CIF_HUB}/redirect.html`, '--audience', AUDIENCE, '--ttl', String(TTL)], 'issuer');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    hub: { url: '/api', reconnectDelaysMs: [0, 1000, 2000, 5000, 10000] },
    auth: {
      mode: 'msal', clientId: 'switchboard-e2e', authority: ISSUER,
      knownAuthorities: [`localhost:${OIDC_PORT}`], protocolMode: 'OIDC',
      scopes: [`${AUDIENCE}/access_as_user`], graphScopes: [],
      // oidc-provider grants offline_access (refresh tokens) only with prompt=consent.
      prompt: 'consent',
    },
  }));
  hub = await startHub();
  // The CIF simulator is a dev route: this hub also keeps dev sign-in (the widget still uses MSAL).
  cifHub = await startHub(CIF_HUB_PORT, ['--dev-auth', 'on']);
  // The CRM stand-in: the widget in an iframe. As http://127.0.0.1:HOST_PORT it is another
  // origin (port) of the widget's site; as http://localhost:HOST_PORT another site.
  // /probe frames a plain page of the hub instead (the partitioning check).
  host = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    const src = req.url.startsWith('/probe') ? `${HUB}/favicon.svg` : `${HUB}/`;
    res.end(`<!doctype html><title>CRM</title><h1>CRM</h1>
<iframe title="Switchboard" src="${src}" style="width:360px;height:600px;border:1px solid #888"></iframe>`);
  });
  await new Promise((resolve) => host.listen(HOST_PORT, '127.0.0.1', resolve));
});

test.afterAll(async () => {
  await stop(hub);
  await stop(cifHub);
  await stop(oidc);
  await new Promise((resolve) => (host ? host.close(resolve) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const widgetFrame = (page, origin = HUB) => page.frames().find((f) => f.url().startsWith(origin));
const diagnostics = async (page) => widgetFrame(page).evaluate(() => window.switchboardDiagnostics());
const tokenIds = (text) => new Set([...text.matchAll(/token \w[^:]*: expires in \d+ s \(id (\w+)\)/g)].map((m) => m[1]));

test('popup sign-in from an iframe, silent renewal across a reconnect, sign-out', async ({ page, context }, testInfo) => {
  test.setTimeout(120_000);
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  await page.goto(`http://127.0.0.1:${HOST_PORT}/`);
  const frame = page.frameLocator('iframe');
  const signIn = frame.getByRole('button', { name: 'Sign in', exact: true });
  await expect(signIn).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('msal-sign-in.png') });

  await test.step('popup sign-in from inside the iframe', async () => {
    const popupPromise = page.waitForEvent('popup');
    await signIn.click();
    const popup = await popupPromise;
    await popup.locator('input[name="login"]').fill('alice');
    await popup.locator('input[name="password"]').fill('any');
    await popup.getByRole('button', { name: 'Sign-in' }).click();
    await popup.getByRole('button', { name: 'Continue' }).click(); // the consent page
    await expect(frame.getByRole('status')).toHaveText(/Connected/, { timeout: 20_000 })
      .catch(async (e) => { e.message += `\nwidget diagnostics:\n${await diagnostics(page)}`; throw e; });
    await expect(frame.getByText('alice', { exact: true })).toBeVisible();
    await page.screenshot({ path: testInfo.outputPath('msal-connected.png') });
  });

  await test.step('silent renewal keeps the hub reachable after the first token expired', async () => {
    const first = tokenIds(await diagnostics(page));
    // Wait (bounded) for the first token to expire; the widget renews it in the background.
    await page.waitForTimeout((TTL + 3) * 1000);
    const renewed = await diagnostics(page);
    expect(renewed).toMatch(/token renewed: expires in/);
    // A reconnect after expiry negotiates with a fresh token: restart the hub.
    await stop(hub);
    await expect(frame.getByRole('status')).not.toHaveText(/^Connected/);
    hub = await startHub();
    await expect(frame.getByRole('status')).toHaveText(/Connected/, { timeout: 30_000 });
    const after = tokenIds(await diagnostics(page));
    expect(after.size).toBeGreaterThan(first.size);
    expect(await diagnostics(page)).not.toMatch(/eyJ/); // never a token in the log
  });

  await test.step('sign-out disconnects and forgets the account', async () => {
    await frame.getByRole('button', { name: 'Sign out' }).click();
    await expect(frame.getByRole('status')).toHaveText(/Disconnected/);
    await expect(signIn).toBeVisible();
    await page.reload();
    await expect(page.frameLocator('iframe').getByRole('button', { name: 'Sign in', exact: true })).toBeVisible();
    await expect(page.frameLocator('iframe').getByRole('status')).toHaveText(/Disconnected/);
  });
});

test('the hub refuses a token for another audience at negotiate (401) and takes its own', async ({ request }) => {
  const mint = async (aud) => (await (await request.get(`${ISSUER}/test/token?aud=${encodeURIComponent(aud)}&sub=bob`, { ignoreHTTPSErrors: true })).json()).accessToken;
  const wrong = await request.post(`${HUB}/api/negotiate`, { headers: { authorization: `Bearer ${await mint('api://someone-else')}` } });
  expect(wrong.status()).toBe(401);
  expect((await wrong.json()).error).toBe(`Invalid token: audience does not match ${AUDIENCE}`);
  const right = await request.post(`${HUB}/api/negotiate`, { headers: { authorization: `Bearer ${await mint(AUDIENCE)}` } });
  expect(right.status()).toBe(200);
  // Dev sign-in is off next to OIDC.
  expect((await request.post(`${HUB}/dev/token`, { data: { user: 'alice' } })).status()).toBe(404);
});

/** Signs in on the IdP's pages (oidc-provider's dev interactions) as `login`, then consents. */
async function idpSignIn(page, login) {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click(); // the consent page
}

test('popup sign-in from a cross-site iframe goes through the popup relay page', async ({ page, context }, testInfo) => {
  test.setTimeout(90_000);
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());

  await test.step('this Chromium partitions a cross-site frame\'s BroadcastChannel (as Chrome does)', async () => {
    // A top-level page of the widget's origin listens; the same origin framed by another site
    // (localhost) posts first, then framed by the same site (127.0.0.1). Only the second arrives.
    const listener = await context.newPage();
    await listener.goto(`${HUB}/favicon.svg`);
    await listener.evaluate(() => {
      window.heard = [];
      new BroadcastChannel('probe').onmessage = (e) => window.heard.push(e.data);
    });
    for (const [hostname, said] of [['localhost', 'cross-site'], ['127.0.0.1', 'same-site']]) {
      const crm = await context.newPage();
      await crm.goto(`http://${hostname}:${HOST_PORT}/probe`);
      await widgetFrame(crm).evaluate((said) => new BroadcastChannel('probe').postMessage(said), said);
      await crm.close();
    }
    await expect.poll(() => listener.evaluate(() => window.heard.join())).toBe('same-site');
    await listener.close();
  });

  await test.step('Sign in in the CRM frame → relay page → Continue → IdP → connected', async () => {
    await page.goto(`http://localhost:${HOST_PORT}/`);
    const frame = page.frameLocator('iframe');
    const relayPromise = page.waitForEvent('popup');
    await frame.getByRole('button', { name: 'Sign in', exact: true }).click();
    const relay = await relayPromise;
    // Top-level, on the widget's own origin, the IdP request in its hash.
    await relay.waitForURL((url) => url.origin === HUB && url.pathname === '/popup-relay.html' && url.hash.includes('req='));
    const idpPromise = relay.waitForEvent('popup');
    await relay.getByRole('button', { name: 'Continue' }).click();
    const idp = await idpPromise;
    expect(new URL(idp.url()).origin).toBe(ISSUER);
    expect(relay.url()).not.toContain('req='); // scrubbed from the relay's address at once
    await idpSignIn(idp, 'carol');
    await expect(frame.getByRole('status')).toHaveText(/Connected/, { timeout: 20_000 })
      .catch(async (e) => { e.message += `\nwidget diagnostics:\n${await diagnostics(page)}`; throw e; });
    await expect(frame.getByText('carol', { exact: true })).toBeVisible();
    // Closed when the widget acknowledged the answer, not by the relay's 15 s fallback.
    await expect.poll(() => relay.isClosed(), { timeout: 5_000 }).toBe(true);
    expect(await diagnostics(page)).toMatch(/sign-in: popup relay \(framed by another site\)/);
    await page.screenshot({ path: testInfo.outputPath('msal-cross-site-connected.png') });
  });
});

test('the relay window closed before signing in: the agent is told, not left waiting', async ({ page, context }) => {
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  await page.goto(`http://localhost:${HOST_PORT}/`);
  const frame = page.frameLocator('iframe');
  const relayPromise = page.waitForEvent('popup');
  await frame.getByRole('button', { name: 'Sign in', exact: true }).click();
  const relay = await relayPromise;
  await relay.waitForURL(/popup-relay\.html/);
  await expect(relay.getByRole('button', { name: 'Continue' })).toBeEnabled();
  await relay.close();
  await expect(frame.getByRole('alert')).toHaveText(/closed before you finished/);
  await expect(frame.getByRole('button', { name: 'Sign in', exact: true })).toBeEnabled();
});

test('the IdP window closed under the relay: the agent is told, and may sign in again', async ({ page, context }) => {
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  await page.goto(`http://localhost:${HOST_PORT}/`);
  const frame = page.frameLocator('iframe');
  const relayPromise = page.waitForEvent('popup');
  await frame.getByRole('button', { name: 'Sign in', exact: true }).click();
  const relay = await relayPromise;
  await relay.waitForURL(/popup-relay\.html/);
  const idpPromise = relay.waitForEvent('popup');
  await relay.getByRole('button', { name: 'Continue' }).click();
  const idp = await idpPromise;
  await idp.locator('input[name="login"]').waitFor();
  await idp.close();
  // The relay counts the IdP window closed after 2 s without an answer, tells the widget and
  // closes at once (no answer to wait for).
  await expect(frame.getByRole('alert')).toHaveText(/closed before you finished/, { timeout: 10_000 });
  await expect.poll(() => relay.isClosed(), { timeout: 5_000 }).toBe(true);
  await expect(frame.getByRole('button', { name: 'Sign in', exact: true })).toBeEnabled();
});

test('top-level redirect sign-in; then in the CIF host, ssoSilent with the Dynamics user and no click', async ({}, testInfo) => { // eslint-disable-line no-empty-pattern
  test.setTimeout(90_000);
  // ssoSilent loads the IdP in a hidden iframe under the widget's site: the IdP's session cookie
  // is a third-party cookie there. This Chromium (156) blocks third-party cookies by default,
  // both in Playwright's contexts and in a fresh profile (observed: the prompt=none request came
  // without the cookie, sec-fetch-site cross-site, and got login_required). Chrome and Edge
  // allow them by default, so this profile does too (cookie_controls_mode 0); where they are
  // blocked, ssoSilent fails and the Sign in button comes, as in the first step.
  const profile = mkdtempSync(join(tmpdir(), 'sb-msal-profile-'));
  mkdirSync(join(profile, 'Default'));
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: 0, block_third_party_cookies: false } }));
  const context = await chromium.launchPersistentContext(profile, { ...LAUNCH, ignoreHTTPSErrors: true, viewport: { width: 360, height: 640 } });
  try {
  const page = context.pages()[0] ?? await context.newPage();
  await context.route(/fonts\.googleapis\.com/, (route) => route.abort());
  const hints = async () => (await (await context.request.get(`${ISSUER}/test/login-hints`)).json());
  const cifFrame = (p) => p.frameLocator('iframe#widget');
  const cifLog = (p) => p.frames().find((f) => f.url().startsWith(`${CIF_HUB}/?`)).evaluate(() => window.switchboardDiagnostics());

  await test.step('CIF without an IdP session: ssoSilent fails, the Sign in button comes (no hang)', async () => {
    const cif = await context.newPage();
    await cif.goto(`${CIF_HUB}/hosts/cif?user=dana`);
    await expect(cifFrame(cif).getByRole('button', { name: 'Sign in', exact: true })).toBeVisible({ timeout: 20_000 });
    expect(await hints()).toContain('dana@contoso.com');
    await cif.close();
  });

  await test.step('standalone tab: Sign in redirects to the IdP and back, connected', async () => {
    await page.goto(`${CIF_HUB}/`);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL((url) => url.origin === ISSUER);
    await idpSignIn(page, 'alice@contoso.com');
    await page.waitForURL((url) => url.origin === CIF_HUB);
    await expect(page.getByRole('status')).toHaveText(/Connected/, { timeout: 20_000 })
      .catch(async (e) => { console.log(await page.evaluate(() => window.switchboardDiagnostics())); throw e; });
    await expect(page.getByText('alice@contoso.com', { exact: true })).toBeVisible();
    expect(page.url()).not.toMatch(/code=|state=/); // nothing of the answer left in the address
    expect(await page.evaluate(() => window.switchboardDiagnostics())).toMatch(/sign-in: redirect answer taken/);
    await page.screenshot({ path: testInfo.outputPath('msal-redirect-connected.png') });
  });

  await test.step('a new tab with the CIF host: signed in as the Dynamics user without a click', async () => {
    const before = (await hints()).length;
    // A new tab has its own sessionStorage (MSAL's cache): only the IdP session is shared.
    const cif = await context.newPage();
    await cif.goto(`${CIF_HUB}/hosts/cif?user=alice`);
    await expect(cifFrame(cif).getByRole('status')).toHaveText(/Connected/, { timeout: 20_000 })
      .catch(async (e) => { console.log(await cifLog(cif)); throw e; });
    await expect(cifFrame(cif).getByText('alice@contoso.com', { exact: true })).toBeVisible();
    expect((await hints()).slice(before)).toEqual(['alice@contoso.com']);
    const log = await cifLog(cif);
    expect(log).toMatch(/sign-in: ssoSilent with a login hint/);
    expect(log).not.toMatch(/alice@contoso\.com|eyJ/); // neither the user name nor a token in the log
    await cif.close();
  });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
