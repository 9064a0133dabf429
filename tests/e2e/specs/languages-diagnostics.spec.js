// Issue 8: languages (catalogues, right to left, the locale from the browser, config, CIF or
// the postMessage host), the Diagnostics drawer (redacted report, Copy, Download) and the
// pop-out window.
import { test, expect } from '@playwright/test';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { agentName, ring } from './hub.js';
import { DANA } from './hosts.js';

const require = createRequire(import.meta.url);
const AXE_SOURCE = require.resolve('axe-core/axe.min.js');
const AXE_SCRIPT = readFileSync(AXE_SOURCE, 'utf8');

async function axeViolations(page) {
  // Through DevTools, not a <script> tag: the widget's Content-Security-Policy rightly refuses
  // inline scripts, and the test tool must not need the policy weakened.
  await page.evaluate(AXE_SCRIPT);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return result.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

test('German from ?lang=: every text of the ringing call, plural seconds, html lang', async ({ page, request }) => {
  const user = agentName('de');
  await page.goto(`/?user=${user}&lang=de`);
  await expect(page.getByRole('status').first()).toHaveText('Verbunden');
  await expect(page.locator('html')).toHaveAttribute('lang', 'de');
  await expect(page.locator('html')).toHaveAttribute('dir', 'ltr');
  await expect(page.getByLabel('Telefonnummer')).toBeVisible();
  await ring(request, user, { PhoneNumber: DANA.number, callerName: DANA.name, queue: 'Vertrieb' });
  const dialog = page.getByRole('alertdialog', { name: /Eingehender Anruf/ });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText(/Noch \d+ Sekunden zum Annehmen/);
  await expect(dialog.getByRole('button', { name: 'Annehmen' })).toHaveAttribute('title', 'Annehmen (Alt+Shift+A)');
  await dialog.getByRole('button', { name: 'Annehmen' }).click();
  await expect(page.getByRole('heading', { name: 'Im Gespräch' })).toBeVisible();
  await page.getByRole('button', { name: 'Auflegen' }).click();
  await expect(page.getByRole('heading', { name: 'Nachbearbeitung' })).toBeVisible();
  // Dispositions are shown translated, stored in the CRM's stable English values.
  await expect(page.getByLabel('Ergebnis').locator('option', { hasText: 'Gelöst' })).toHaveAttribute('value', 'Resolved');
});

test('the reason for a lost connection is in the agent\'s language too', async ({ page }) => {
  await page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    await route.fulfill({ response, json: { ...config, hub: { ...config.hub, url: 'http://127.0.0.1:9/api', reconnectDelaysMs: [] } } });
  });
  await page.goto(`/?user=${agentName('dedown')}&lang=de`);
  await expect(page.getByText('Der Hub unter http://127.0.0.1:9/api/negotiate ist nicht erreichbar.')).toBeVisible();
  // The widget never gives up (issue 13): it says when it tries next, and the agent may try now.
  await expect(page.getByText(/Nächster Versuch in \d+ Sekunden\./)).toBeVisible();
  await expect(page.getByRole('button', { name: 'Jetzt versuchen' })).toBeVisible();
});

test('Arabic from the browser: mirrored layout, Arabic texts, no axe violations', async ({ browser, request }) => {
  const context = await browser.newContext({ locale: 'ar-EG', viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  const user = agentName('ar');
  await page.goto(`/?user=${user}`);
  await expect(page.locator('html')).toHaveAttribute('dir', 'rtl');
  await expect(page.locator('html')).toHaveAttribute('lang', 'ar');
  await expect(page.getByRole('status').first()).toHaveText('متصل');
  await ring(request, user, { PhoneNumber: DANA.number, callerName: DANA.name });
  const dialog = page.getByRole('alertdialog', { name: /مكالمة واردة/ });
  await expect(dialog).toBeVisible();
  const accept = await dialog.getByRole('button', { name: 'قبول' }).boundingBox();
  const reject = await dialog.getByRole('button', { name: 'رفض' }).boundingBox();
  // Right to left: the first action (Accept) sits on the right.
  expect(accept.x).toBeGreaterThan(reject.x);
  expect(await axeViolations(page)).toEqual([]);
  await context.close();
});

test('the host says the language: CIF userLcid 1031 → German; postMessage SYNC locale es → Spanish', async ({ page }) => {
  await page.goto(`/hosts/cif?user=${agentName('cifde')}&lcid=1031`);
  const cif = page.frameLocator('#widget');
  await expect(cif.getByRole('status')).toHaveText('Verbunden');
  await expect(cif.locator('html')).toHaveAttribute('lang', 'de');

  await page.goto(`/hosts/postmessage?user=${agentName('pmes')}&locale=es-ES`);
  const pm = page.frameLocator('#widget');
  await expect(pm.getByRole('status')).toHaveText('Conectado');
  await expect(pm.getByLabel('Número de teléfono')).toBeVisible();
});

test('the sign-in relay page speaks the browser\'s language too', async ({ browser }) => {
  const context = await browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  // Opened by hand (no opener): it says it only works when Switchboard opens it.
  await page.goto('/popup-relay.html');
  await expect(page.getByRole('heading')).toHaveText('Se connecter à Switchboard');
  await expect(page.getByRole('status')).toContainText('ne fonctionne que lorsque Switchboard');
  await expect(page.getByRole('button', { name: 'Continuer' })).toBeDisabled();
  await context.close();
});

test('the theme follows the host (postMessage SYNC theme) or ?theme=, over the system', async ({ page }) => {
  const background = (where) => where.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto(`/hosts/postmessage?user=${agentName('dark')}&theme=dark`);
  const frame = page.frameLocator('#widget');
  await expect(frame.getByRole('status')).toHaveText('Connected');
  await expect(frame.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await background(frame)).toBe('rgb(31, 31, 31)');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`/?user=${agentName('light')}&theme=light`);
  await expect(page.getByRole('status').first()).toHaveText('Connected');
  // The app applies ?theme= as it mounts, which may follow the first screen's "Connected" (early.rs).
  await expect.poll(() => background(page)).toBe('rgb(245, 245, 245)');
  await page.goto(`/?user=${agentName('system')}`);
  await expect(page.getByRole('status').first()).toHaveText('Connected');
  await expect.poll(() => background(page)).toBe('rgb(31, 31, 31)');
});

test('a language file that cannot be loaded leaves English on screen and says why in the log', async ({ page }) => {
  await page.route('**/locales/fr.json', (route) => route.fulfill({ status: 404, body: 'gone' }));
  await page.goto(`/?user=${agentName('fr404')}&lang=fr`);
  await expect(page.getByRole('status').first()).toHaveText('Connected');
  await expect.poll(() => page.evaluate(() => window.switchboardDiagnostics())).toMatch(/WARN\s+language fr not loaded: locales\/fr\.json: HTTP 404/);
  await expect(page.locator('html')).not.toHaveAttribute('lang', 'fr');
});

test('Diagnostics: facts, problems and log; Copy and Download give a report without tokens or numbers', async ({ browser, request }) => {
  const context = await browser.newContext({ viewport: { width: 360, height: 800 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const page = await context.newPage();
  const user = agentName('diag');
  await page.goto(`/?user=${user}`);
  await expect(page.getByRole('status').first()).toHaveText('Connected');
  // A call whose number must not reach the report, and a refused input that is a problem.
  await ring(request, user, { PhoneNumber: DANA.number, callerName: DANA.name });
  await page.getByRole('button', { name: 'Reject' }).click();
  await page.evaluate(() => console.log('noise'));

  await page.getByText('Diagnostics', { exact: true }).click();
  const drawer = page.locator('details.diag');
  await expect(drawer.locator('dd').first()).toHaveText('Connected');
  await expect(drawer).toContainText('transport WebSockets');
  await expect(drawer).toContainText(/host: standalone/);
  await expect(drawer.getByRole('button', { name: 'Copy' })).toBeVisible();

  await drawer.getByRole('button', { name: 'Copy' }).click();
  await expect(drawer.getByRole('status')).toHaveText('Copied to the clipboard.');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  expect(copied).toContain('Switchboard diagnostics');
  expect(copied).toContain(`User: ${user}`);
  expect(copied).toMatch(/Transport: transport WebSockets, protocol json/);
  expect(copied).toMatch(/INFO\s+state: Connected/);

  const [download] = await Promise.all([page.waitForEvent('download'), drawer.getByRole('link', { name: 'Download' }).click()]);
  expect(download.suggestedFilename()).toBe('switchboard-diagnostics.txt');
  const file = readFileSync(await download.path(), 'utf8');
  expect(file).toContain('Switchboard diagnostics');
  for (const report of [copied, file]) {
    expect(report).not.toContain('4255550123');
    expect(report).not.toContain(DANA.name);
    expect(report).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
  }
  // The token the widget did use is nowhere in the report.
  const token = await page.evaluate(async (u) => (await (await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: u }) })).json()).accessToken, user);
  expect(token).toMatch(/^eyJ/);
  expect(file).not.toContain(token.split('.')[2]);
  await context.close();
});

test('pop-out: the widget moves to its own window, that window rings, closing it brings the frame back', async ({ page, request }) => {
  const user = agentName('pop');
  await page.goto(`/hosts/postmessage?user=${user}`);
  const frame = page.frameLocator('#widget');
  await expect(frame.getByRole('status')).toHaveText('Connected');
  const [popup] = await Promise.all([
    page.waitForEvent('popup'),
    frame.getByRole('button', { name: 'Open in its own window' }).click(),
  ]);
  await expect(popup.getByRole('status').first()).toHaveText('Connected');
  await expect.poll(() => popup.evaluate(() => window.switchboardDiagnostics())).toContain('host: standalone');
  await expect(frame.getByRole('heading', { name: 'Switchboard is open in its own window.' })).toBeVisible();
  await expect(frame.getByRole('status')).toHaveText('Disconnected');
  // Only the pop-out offers the call.
  await ring(request, user, { PhoneNumber: DANA.number, callerName: DANA.name });
  await expect(popup.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();
  await expect(frame.getByRole('alertdialog')).toHaveCount(0);
  await popup.getByRole('button', { name: 'Reject' }).click();
  await popup.close();
  await expect(frame.getByRole('status')).toHaveText('Connected');
  await expect(frame.getByRole('button', { name: 'Open in its own window' })).toBeVisible();
});
