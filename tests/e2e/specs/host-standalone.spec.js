// The widget in a tab of its own (issue 5): a system notification while the tab is hidden
// (permission granted), the title flashing, the ringtone hint until the agent clicks, and the
// tel: protocol handler.
import { test, expect } from '@playwright/test';
import { agentName, getCall, ring } from './hub.js';
import { mkdirSync } from 'node:fs';
import { DANA } from './hosts.js';

const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? '.out/screenshots';

test.use({ permissions: ['notifications'] });

// Records Notification and registerProtocolHandler calls; `hide()` makes the tab hidden.
// Headless Chromium lets every AudioContext run (it ignores --autoplay-policy), so the spy
// keeps contexts suspended until resume(), as a browser does before the first gesture, and
// counts the ringtone's oscillators.
async function spy(page) {
  await page.addInitScript(() => {
    const RealAudio = window.AudioContext;
    window.tones = 0;
    window.AudioContext = class extends RealAudio {
      constructor(...args) { super(...args); this.locked = true; }
      get state() { return this.locked ? 'suspended' : super.state; }
      resume() { this.locked = false; return super.resume(); }
      createOscillator() { window.tones += 1; return super.createOscillator(); }
    };
    window.notifications = [];
    const Real = window.Notification;
    class Recorded {
      constructor(title, options) { window.notifications.push({ title, options, closed: false }); this.index = window.notifications.length - 1; }
      close() { window.notifications[this.index].closed = true; }
      static get permission() { return Real.permission; }
      static requestPermission() { return Real.requestPermission(); }
    }
    window.Notification = Recorded;
    window.protocolHandlers = [];
    navigator.registerProtocolHandler = (scheme, url) => window.protocolHandlers.push({ scheme, url });
    window.hide = () => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    };
  });
}

test('standalone: hidden tab gets a Notification with the caller; the title flashes; the ringtone hint shows until a click', async ({ page, request }) => {
  const user = agentName('tab');
  await spy(page);
  await page.goto(`/?user=${encodeURIComponent(user)}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
  // The app (its own chunk) starts the host adapter, which registers the handler: it may still be
  // loading when the first screen says "Connected" (early.rs).
  await expect.poll(() => page.evaluate(() => window.protocolHandlers)).toEqual([{ scheme: 'tel', url: `${new URL(page.url()).origin}/?dial=%s` }]);
  const title = await page.title();
  await page.evaluate(() => window.hide());

  const callId = await ring(request, user, { PhoneNumber: DANA.number, callerName: 'Dana Whitfield' });
  await expect(page.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();
  await expect.poll(() => page.evaluate(() => window.notifications)).toEqual([
    { title: 'Incoming call', options: { body: `Dana Whitfield ${DANA.number}`, tag: callId, requireInteraction: true }, closed: false },
  ]);
  await expect.poll(() => page.title()).toBe(`Incoming call: Dana Whitfield ${DANA.number}`);
  await expect.poll(() => page.title(), { timeout: 5000 }).toBe(title);
  await expect.poll(() => page.title(), { timeout: 5000 }).toBe(`Incoming call: Dana Whitfield ${DANA.number}`);
  const hint = page.getByRole('note');
  await expect(hint).toHaveText('Click anywhere in Switchboard to turn on the ringtone.');
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/host-standalone-hint.png` });

  // The first click unlocks the sound: the hint goes, the ringtone plays.
  await page.getByRole('heading', { name: 'Incoming call' }).click();
  await expect(hint).toBeHidden();
  await expect.poll(() => page.evaluate(() => window.tones)).toBeGreaterThan(0);
  await expect.poll(() => page.evaluate(() => window.notifications[0].closed)).toBe(false);

  await page.getByRole('button', { name: 'Accept' }).click();
  await expect.poll(async () => (await getCall(request, callId)).acknowledgement).toBe('Accepted');
  await expect.poll(() => page.evaluate(() => window.notifications[0].closed)).toBe(true);
  await expect.poll(() => page.title()).toBe(title);
});

test('standalone: a visible tab gets no Notification; a tel: link (?dial=) places the call once connected', async ({ page, request }) => {
  const user = agentName('tab-tel');
  await spy(page);
  await page.goto(`/?user=${encodeURIComponent(user)}&dial=${encodeURIComponent('tel:+44 20 7946 0958')}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
  await expect.poll(async () => {
    const calls = await (await request.get(`${new URL(page.url()).origin}/simulator/calls`)).json();
    return calls.filter((c) => c.agent === user && c.direction === 'outbound').map((c) => c.phoneNumber);
  }).toEqual(['+442079460958']);
  await ring(request, user, { PhoneNumber: DANA.number });
  // Busy with the outbound call or ringing: either way, a visible tab never raises a notification.
  await page.waitForTimeout(500);
  expect(await page.evaluate(() => window.notifications)).toEqual([]);
});
