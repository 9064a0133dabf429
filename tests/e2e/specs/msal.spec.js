// Sign-in with the real MSAL.js (npm @azure/msal-browser, copied into dist by the build) against
// a local OpenID Connect provider (npm oidc-provider over HTTPS, self-signed certificate made at
// test time: oidc/server.js) standing in for Entra ID. The spec starts its own provider and its
// own hub in OIDC mode (dev sign-in off), serving dist/ with a config.json in "msal" mode, and
// an iframe host page on another origin of the same site (a CRM stand-in).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { HUB_BIN } from './hub.js';

const OIDC_PORT = Number(process.env.E2E_OIDC_PORT ?? 8441);
const HUB_PORT = Number(process.env.E2E_MSAL_HUB_PORT ?? 18281);
const HOST_PORT = HUB_PORT + 1;
const HUB = `http://127.0.0.1:${HUB_PORT}`;
const ISSUER = `https://localhost:${OIDC_PORT}`;
const AUDIENCE = 'api://switchboard-e2e';
const TTL = 20; // seconds: access tokens expire during the test
const DIST = fileURLToPath(new URL('../../../dist', import.meta.url));
const SERVER = fileURLToPath(new URL('../oidc/server.js', import.meta.url));

let dir;
let oidc;
let hub;
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

const startHub = () => start(HUB_BIN, ['--listen', `127.0.0.1:${HUB_PORT}`, '--static', DIST,
  '--config', join(dir, 'config.json'), '--access-key', 'e2e-msal-key-0123456789',
  '--oidc-authority', ISSUER, '--oidc-audience', AUDIENCE, '--oidc-ca-file', join(dir, 'cert.pem')],
'listening on', { RUST_LOG: 'warn' });

test.describe.configure({ mode: 'serial' });
test.use({ ignoreHTTPSErrors: true });

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-msal-'));
  oidc = await start('node', [SERVER, '--port', String(OIDC_PORT), '--cert-dir', dir,
    '--redirect', `${HUB}/redirect.html`, '--audience', AUDIENCE, '--ttl', String(TTL)], 'issuer');
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
  // The CRM stand-in: another origin (port) of the same site, the widget in an iframe.
  host = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><title>CRM</title><h1>CRM</h1>
<iframe title="Switchboard" src="${HUB}/" style="width:360px;height:600px;border:1px solid #888"></iframe>`);
  });
  await new Promise((resolve) => host.listen(HOST_PORT, '127.0.0.1', resolve));
});

test.afterAll(async () => {
  await stop(hub);
  await stop(oidc);
  await new Promise((resolve) => (host ? host.close(resolve) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const widgetFrame = (page) => page.frames().find((f) => f.url().startsWith(HUB));
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
      .catch(async (e) => { console.log(await diagnostics(page)); throw e; });
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
