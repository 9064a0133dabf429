// Every state of the widget, looked at and checked: axe-core (WCAG 2.2 AA rules) reports no
// violations, and a screenshot of each state at panel width (320 px) and full width (1280 px),
// light and dark, lands in SCREENSHOT_DIR for people to look at.
import { test, expect } from '@playwright/test';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { agentName, ring } from './hub.js';

const require = createRequire(import.meta.url);
const AXE_SOURCE = require.resolve('axe-core/axe.min.js');
const AXE_SCRIPT = readFileSync(AXE_SOURCE, 'utf8');
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? '.out/screenshots';

async function axeViolations(page) {
  // Through DevTools, not a <script> tag: the widget's Content-Security-Policy rightly refuses
  // inline scripts, and the test tool must not need the policy weakened.
  await page.evaluate(AXE_SCRIPT);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

async function look(page, name) {
  expect(await axeViolations(page), `axe violations in state "${name}"`).toEqual([]);
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    expect(await axeViolations(page), `axe violations in state "${name}" (${scheme})`).toEqual([]);
    for (const width of [320, 1280]) {
      await page.setViewportSize({ width, height: width === 320 ? 560 : 720 });
      await page.screenshot({ path: `${SCREENSHOTS}/${name}-${width}-${scheme}.png` });
    }
  }
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });
  await page.setViewportSize({ width: 360, height: 640 });
}

test('sign-in form', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByLabel('User name')).toBeVisible();
  await look(page, 'signed-out');
});

test('idle, ringing, in call, and after a missed call', async ({ page, request }) => {
  const user = agentName('look');
  await page.goto(`/?user=${user}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
  await look(page, 'idle');

  // The team drawer open, with live presences (group switchboard-agents of the Graph stand-in).
  await page.locator('summary', { hasText: 'Team' }).click();
  await expect(page.getByLabel('Search team')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('li.mate').first()).toBeVisible();
  await page.locator('li.mate').nth(1).getByRole('button', { name: /^Favourite/ }).click();
  await look(page, 'team-drawer');
  await page.locator('summary', { hasText: 'Team' }).click();

  await ring(request, user, { PhoneNumber: '+14255550123', callerName: 'Dana Whitfield', queue: 'Billing', comments: 'Invoice 4471' });
  const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(dialog).toBeVisible();
  await look(page, 'ringing');

  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect(page.getByRole('heading', { name: 'On call' })).toBeVisible();
  await look(page, 'in-call');

  await page.getByRole('button', { name: 'Hold' }).click();
  await expect(page.getByRole('heading', { name: 'On hold' })).toBeVisible();
  await look(page, 'on-hold');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.getByRole('button', { name: 'Transfer' }).click();
  await page.getByLabel('Transfer to').fill('+44 20 7946 0958');
  await page.getByRole('button', { name: 'Consult first' }).click();
  await expect(page.getByRole('heading', { name: /^Consulting / })).toBeVisible();
  await look(page, 'transferring');
  await page.getByRole('button', { name: 'Back to caller' }).click();
  await expect(page.getByRole('heading', { name: 'On hold' })).toBeVisible();
  await page.getByRole('button', { name: 'Resume' }).click();
  await expect(page.getByRole('heading', { name: 'On call' })).toBeVisible();

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect(page.getByRole('heading', { name: 'Wrap-up' })).toBeVisible();
  await look(page, 'wrap-up');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText(/Call ended with/)).toBeVisible();
  await look(page, 'after-call');

  await page.getByText('Diagnostics', { exact: true }).click();
  await expect(page.locator('details.diag dd').first()).toHaveText('Connected');
  await look(page, 'diagnostics');
});

test('Arabic, right to left: ringing and in call', async ({ browser, request }) => {
  const context = await browser.newContext({ locale: 'ar', viewport: { width: 360, height: 640 } });
  const page = await context.newPage();
  const user = agentName('lookar');
  await page.goto(`/?user=${user}`);
  await expect(page.getByRole('status')).toHaveText('متصل');
  await ring(request, user, { PhoneNumber: '+14255550123', callerName: 'Dana Whitfield', queue: 'Billing' });
  await expect(page.getByRole('alertdialog')).toBeVisible();
  await look(page, 'ringing-ar');
  await page.getByRole('button', { name: 'قبول' }).click();
  await expect(page.getByRole('heading', { name: 'في مكالمة' })).toBeVisible();
  await look(page, 'in-call-ar');
  await context.close();
});

test('disconnected and configuration error', async ({ page }) => {
  await page.route('**/config.json', async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    await route.fulfill({ response, json: { ...config, hub: { ...config.hub, url: 'http://127.0.0.1:9/api' } } });
  });
  await page.goto('/?user=alice');
  await expect(page.getByText(/Cannot reach the hub/)).toBeVisible();
  await look(page, 'hub-unreachable');

  await page.unroute('**/config.json');
  await page.route('**/config.json', (route) => route.fulfill({ body: '{', contentType: 'application/json' }));
  await page.goto('/?user=alice');
  await expect(page.getByRole('alert')).toContainText('config.json');
  await look(page, 'config-error');
});
