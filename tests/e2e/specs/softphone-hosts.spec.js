// Issue 14, the softphone (telephony.mode "sip") where softphone.spec.js does not take it: inside the
// Dynamics 365 CIF 2.0 host (the hub's /hosts/cif simulator frames the widget) and against JsSIP and a
// second agent's widget instead of baresip. The same rig (scripts/sip-rig: Kamailio over WebSocket,
// rtpengine, baresip as the customer, all in a loopback-only network namespace) and the same audio
// proof: the page hears baresip's 440 Hz tone in the widget's remote stream, baresip's recording holds
// the browser's 1000 Hz tone, and a JsSIP page or a second widget hears a browser's tone (every page of
// the rig's Chromium sends 1000 Hz from the fake microphone; a page can only hear it from the far end).
//
// - CIF 2.0: baresip calls the agent → notifyEvent → the host's toast → Accept in the toast answers the
//   INVITE (createSession) → the agent hears the caller, baresip hears the agent.
// - CIF 2.0: onclicktoact → the widget INVITEs the number (Kamailio sends digits to baresip) → baresip
//   answers → audio both ways.
// - The dial pad calls a JsSIP phone (nothing of ours) → JsSIP answers → audio both ways.
// - Blind transfer (REFER) of a JsSIP caller to a second agent's widget: caller and colleague hear each other.
//
// Needs root, the rig's Debian packages and both widget builds; skipped without dist/sip.
import { copyFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { AGENT_HZ, CUSTOMER_HZ, ROOT, acceptOn, expectHearsCustomer as expectHears, levels, settledLevels as settled, sipRig, transfer } from './sip-helpers.js';
import { recorded, waitForCall } from './hosts.js';

const DIST = join(ROOT, 'dist');
const OUT = fileURLToPath(new URL('../.out/softphone-hosts/', import.meta.url));
const WIDGET_DIR = join(OUT, 'widget');
const HUB_PORT = 18092; // inside the namespace, which has ports of its own
const sip = sipRig({ out: OUT, netns: `${process.env.E2E_NETNS_PREFIX ?? 'sbhosts'}-${process.pid}`, hubPort: HUB_PORT });
const { events, phone, recordings } = sip;

let rig = null;
let browser;

const expectHearsCustomer = (target, what) => expectHears(target, levels, `${what}: the widget hears`);

/** Levels (dBFS) of both tones in the JsSIP page's remote audio now, or null. */
async function jssipLevels(page) {
  const now = await page.evaluate((f) => window.phone.levels(f), [CUSTOMER_HZ, AGENT_HZ]);
  return now === null ? null : { customer: now[CUSTOMER_HZ], agent: now[AGENT_HZ] };
}

/** Waits until `read(target)` carries a browser's tone, loud and well above baresip's; logs `what`. */
async function expectHearsBrowser(target, read, what) {
  const heard = await settled(target, read, (l) => l.agent > -50, `${what}: a browser's tone arrives`);
  console.log(`${what}: ${AGENT_HZ} Hz at ${heard.agent} dB, ${CUSTOMER_HZ} Hz at ${heard.customer} dB`);
  expect(heard.agent).toBeGreaterThan(-40);
  expect(heard.agent - heard.customer).toBeGreaterThan(30);
}

/** baresip's recording of the call that started after `before` holds the agent's tone. */
async function expectRecordedAgent(before) {
  let fresh = [];
  await expect.poll(() => { fresh = recordings().filter((f) => !before.includes(f)); return fresh.length; },
    { timeout: 10_000, message: 'baresip wrote a recording' }).toBe(1);
  sip.expectRecordingHoldsAgent(fresh[0]);
}

/** A JsSIP phone page (nothing of ours) registered as `user`. */
async function jssipPhone(user) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`jssip: ${m.text()}`); });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/jssip.html`);
  await page.evaluate((o) => window.phone.start(o), { user, wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN });
  return page;
}

/** A JsSIP phone page registered as `user` that calls `callee` and accepts transfers. */
async function jssipCaller(user, callee) {
  const page = await jssipPhone(user);
  await page.evaluate((uri) => window.phone.call(uri), `sip:${callee}@${rig.SIP_DOMAIN}`);
  await page.evaluate(() => window.phone.acceptTransfers());
  return page;
}

/** A widget page signed in as `user`, its SIP line registered. */
async function agentPage(user) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`page: ${m.text()}`); });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=${user}`);
  await expect(page).toHaveURL(/\/sip\/\?user=/, { timeout: 15_000 }); // the default build hands over
  await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
  return page;
}

/**
 * The CIF 2.0 host simulator framing the widget of `user`, initialised (getMode asked) and its SIP
 * line registered: the host page, the widget's FrameLocator (`ui`), its Frame (`frame`, for audio) and
 * the WebSocket frames the page sent (`sent`).
 */
async function cifHost(user) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`cif: ${m.text()}`); });
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));
  if (process.env.E2E_DEBUG) page.on('websocket', (ws) => ws.on('framereceived', (f) => console.log(`<<< ${String(f.payload).slice(0, 600)}`)));
  await page.setViewportSize({ width: 1100, height: 700 });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/hosts/cif?user=${user}`);
  const ui = page.frameLocator('#widget');
  await expect(ui.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
  await waitForCall(page, 'cifCalls', (c) => c.api === 'getMode');
  const frame = page.frames().find((f) => /\/sip\/\?/.test(f.url()));
  expect(frame, 'the framed widget handed over to /sip/').toBeTruthy();
  // The dev sign-in's ?user= kept the host's ucilib, so the SIP build found the CIF host too.
  expect(new URL(frame.url()).searchParams.get('ucilib')).toMatch(/\/hosts\/cif\/msdyn_ciLibrary\.js$/);
  return { page, ui, frame, sent };
}

test.describe('softphone in hosts and between browsers: CIF 2.0, JsSIP, a colleague\'s widget', () => {
  test.describe.configure({ mode: 'serial', timeout: 120_000 });
  test.skip(!existsSync(join(DIST, 'sip', 'index.html')), 'no SIP build: scripts/build-widget --sip');

  test.beforeAll(async () => {
    test.setTimeout(90_000);
    sip.clean();
    rig = await sip.startRig();
    // The tenant's config.json: telephony at the rig; no audio processing (a steady tone fades).
    cpSync(DIST, WIDGET_DIR, { recursive: true });
    const config = JSON.parse(readFileSync(join(DIST, 'config.json'), 'utf8'));
    config.ringTimeoutSeconds = 60;
    config.telephony = { mode: 'sip', sip: { wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN, credentialsUrl: '/api/sip/credentials', dtmf: 'rfc4733', audioProcessing: false } };
    writeFileSync(join(WIDGET_DIR, 'config.json'), JSON.stringify(config, null, 2));
    copyFileSync(fileURLToPath(new URL('../sip-phone/index.html', import.meta.url)), join(WIDGET_DIR, 'jssip.html'));
    copyFileSync(fileURLToPath(new URL('../node_modules/jssip/dist/jssip.min.js', import.meta.url)), join(WIDGET_DIR, 'jssip.min.js'));
    browser = await sip.startHubPhoneAndBrowser(WIDGET_DIR, 'e2e-softphone-hosts-key-0123456789', rig.SIP_WS_URI);
  });

  test.afterAll(() => sip.teardown());

  test('CIF 2.0: baresip calls the agent, the host\'s toast rings, Accept in the toast answers the INVITE, audio both ways', async () => {
    const { page, ui, frame } = await cifHost('xena');
    const before = recordings();
    const seen = events.length;
    expect((await phone('dial', `sip:xena@${rig.SIP_DOMAIN}`)).ok).toBeTruthy();

    const notify = await waitForCall(page, 'cifCalls', (c) => c.api === 'notifyEvent');
    expect(notify.args[0].templateName).toBe('extn_voice_notification');
    const toast = page.getByRole('dialog', { name: /Notification extn_voice_notification/ });
    await expect(toast).toBeVisible();
    await expect(ui.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();
    expect(events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED')).toBe(false);

    await toast.getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000, message: 'baresip: answered' }).toBe(true);
    const session = await waitForCall(page, 'cifCalls', (c) => c.api === 'createSession');
    expect(session.args[0].templateParameters.extn_interactionid).toBe(notify.args[0].cancellationToken);
    await expect(ui.getByRole('button', { name: 'Hang up' })).toBeVisible();
    await expectHearsCustomer(frame, 'CIF, accepted in the toast');
    await page.waitForTimeout(3_000); // baresip records a few seconds of the agent

    await ui.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);
    await expect(ui.getByRole('heading', { name: /Wrap-up/ })).toBeVisible();
    await expectRecordedAgent(before);
    expect((await recorded(page, 'cifCalls')).some((c) => c.api === 'cancelEvent' && c.args[0] === notify.args[0].cancellationToken)).toBe(false);
    await page.close();
  });

  test('CIF 2.0: click-to-act dials the number over SIP, baresip answers, audio both ways', async () => {
    const { page, ui, frame, sent } = await cifHost('yves');
    const before = recordings();
    const seen = events.length;
    await page.getByLabel('Click-to-act number').fill('+1 425 555 0199');
    await page.getByRole('button', { name: 'Click to call' }).click();
    // The widget INVITEs the number itself (Kamailio routes digits to baresip, the PSTN gateway stand-in).
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_INCOMING'), { timeout: 10_000, message: 'baresip rings' }).toBe(true);
    expect(sent.some((f) => f.startsWith(`INVITE sip:+14255550199@${rig.SIP_DOMAIN}`)), 'an INVITE to the clicked number').toBe(true);
    expect((await phone('accept')).ok).toBeTruthy();
    await expect(ui.getByRole('button', { name: 'Hang up' })).toBeVisible({ timeout: 10_000 });
    await expectHearsCustomer(frame, 'CIF click-to-act');
    await page.waitForTimeout(3_000); // baresip records a few seconds of the agent
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(ui.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expectRecordedAgent(before);
    await page.close();
  });

  test('the dial pad calls a JsSIP phone, JsSIP answers, audio both ways, the agent hangs up', async () => {
    const callee = await jssipPhone('zoe');
    const page = await agentPage('abe');
    await page.getByLabel('Phone number').fill('zoe');
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    await expect.poll(() => callee.evaluate(() => window.phone.incoming), { timeout: 10_000, message: 'JsSIP rings' }).toBe(true);
    expect(await callee.evaluate(() => window.phone.session.remote_identity.uri.user)).toBe('abe');
    await callee.evaluate(() => window.phone.answer());
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible({ timeout: 10_000 });
    await expectHearsBrowser(callee, jssipLevels, 'widget to JsSIP: JsSIP hears the agent');
    await expectHearsBrowser(page, levels, 'widget to JsSIP: the agent hears JsSIP');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => callee.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await callee.evaluate(() => window.phone.stop());
    for (const p of [callee, page]) await p.close();
  });

  test('blind transfer (REFER) of a JsSIP caller to a colleague\'s widget: it rings there, caller and colleague hear each other', async () => {
    const alice = await agentPage('bea');
    const bob = await agentPage('cal');
    const caller = await jssipCaller('dot', 'bea');
    await acceptOn(alice);
    await expectHearsBrowser(caller, jssipLevels, 'blind to a colleague, before: the caller hears the agent');
    await transfer(alice, 'cal', 'Transfer now');
    // JsSIP takes the REFER and calls the colleague, whose widget rings; the agent's leg ends on NOTIFY 2xx.
    await acceptOn(bob);
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 10_000 }).toBe('confirmed');
    expect(await caller.evaluate(() => window.phone.referredTo)).toMatch(/^sip:cal@/);
    await expect(alice.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(alice.locator('audio[data-switchboard-remote]')).toHaveCount(0);
    await expectHearsBrowser(caller, jssipLevels, 'blind to a colleague, after: the caller hears the colleague');
    await expectHearsBrowser(bob, levels, 'blind to a colleague, after: the colleague hears the caller');
    await bob.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(bob.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, alice, bob]) await p.close();
  });
});
