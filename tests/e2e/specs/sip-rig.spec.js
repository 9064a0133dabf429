// Issue 14's test rig, proven against code we did not write: JsSIP (npm jssip@3.12.0) in a plain page
// takes ephemeral credentials from switchboard-hub's POST /api/sip/credentials, registers to Kamailio
// over WebSocket, and takes a call from baresip (the customer's phone) through rtpengine (WebRTC <->
// plain RTP). Audio is checked both ways by its frequency: the page hears baresip's 440 Hz tone in the
// remote stream (AnalyserNode), and baresip's recording holds the browser's 1000 Hz tone (Chromium's
// fake microphone). RFC 4733 DTMF from JsSIP arrives at baresip; the browser hangs up. Then the other
// way: JsSIP calls the customer, baresip answers and hangs up. Before all that, Kamailio must refuse
// wrong, expired and borrowed credentials.
//
// The rig, the hub this spec starts and the Chromium it launches all run inside a network namespace
// that has only loopback (scripts/sip-rig; ../shared/FIELD-NOTES.md): WebRTC would otherwise gather
// candidates on every interface. Needs root and the Debian packages of scripts/setup. The suite's
// default hub (playwright.config.js webServer) is not used here.
import { createHmac } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { AGENT_HZ, CUSTOMER_HZ, expectHearsCustomer as expectHears, sipRig } from './sip-helpers.js';

const OUT = fileURLToPath(new URL('../.out/sip-rig/', import.meta.url));
const PAGE_DIR = join(OUT, 'page');
const HUB_PORT = 18090; // inside the namespace, which has ports of its own
const sip = sipRig({ out: OUT, netns: `${process.env.E2E_NETNS_PREFIX ?? 'sbsip'}-${process.pid}`, hubPort: HUB_PORT });
const { secret: SECRET, events, phone, recordings } = sip;

let rig = null;
let browser;

/** The page's levels of both tones now (window.phone.levels), or null. */
async function pageLevels(page) {
  const now = await page.evaluate((f) => window.phone.levels(f), [CUSTOMER_HZ, AGENT_HZ]);
  return now === null ? null : { customer: now[CUSTOMER_HZ], agent: now[AGENT_HZ] };
}

/** Waits until the page hears the customer's tone; then the median of ten readings over a second. */
const expectHearsCustomer = (page) => expectHears(page, pageLevels, 'browser heard (median of 10 FFT readings):');

/** What baresip heard in the call recorded after `before` (sndfile's *-dec.wav): the agent's tone, not its own. */
function expectRecordedAgent(before) {
  const fresh = recordings().filter((f) => !before.includes(f));
  expect(fresh.length, `new recordings: ${fresh.join(', ')} (before: ${before.join(', ')})`).toBe(1);
  sip.expectRecordingHoldsAgent(fresh[0]);
}

test.describe('SIP rig: JsSIP ⇄ Kamailio ⇄ rtpengine ⇄ baresip, in a loopback-only namespace', () => {
  test.describe.configure({ mode: 'serial', timeout: 120_000 });

  test.beforeAll(async () => {
    test.setTimeout(90_000);
    sip.clean(PAGE_DIR);
    copyFileSync(fileURLToPath(new URL('../sip-phone/index.html', import.meta.url)), join(PAGE_DIR, 'index.html'));
    copyFileSync(fileURLToPath(new URL('../node_modules/jssip/dist/jssip.min.js', import.meta.url)), join(PAGE_DIR, 'jssip.min.js'));

    rig = await sip.startRig();
    browser = await sip.startHubPhoneAndBrowser(PAGE_DIR, 'e2e-sip-key-0123456789', rig.SIP_WS_URI);
  });

  test.afterAll(() => sip.teardown());

  test('Kamailio takes the hub\'s credentials and refuses wrong, expired and borrowed ones', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${HUB_PORT}/`);
    const target = { wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN };
    const credentials = (user) => page.evaluate(async (u) => {
      const t = await (await fetch('/dev/token', { method: 'POST', body: JSON.stringify({ user: u }) })).json();
      return (await fetch('/api/sip/credentials', { method: 'POST', headers: { authorization: `Bearer ${t.accessToken}` } })).json();
    }, user);
    const probe = (o) => page.evaluate((p) => window.phone.probe(p), { ...target, ...o });
    const carol = await credentials('carol');
    const dave = await credentials('dave');
    const expired = `${Math.floor(Date.now() / 1000) - 60}:carol`;

    expect(await probe({ user: 'carol', username: carol.username, password: carol.password })).toBe('registered');
    expect(await probe({ user: 'carol', username: carol.username, password: dave.password })).toMatch(/^401 /);
    expect(await probe({ user: 'carol', username: expired, password: createHmac('sha1', SECRET).update(expired).digest('base64') })).toMatch(/^401 /);
    expect(await probe({ user: 'carol', username: dave.username, password: dave.password })).toMatch(/^403 /);
    await page.close();
  });

  test('baresip rings JsSIP; audio both ways (tone frequencies), RFC 4733 DTMF, hang up', async () => {
    const page = await browser.newPage();
    page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`page: ${m.text()}`); });
    await page.goto(`http://127.0.0.1:${HUB_PORT}/`);

    // Credentials from the hub, REGISTER with them (Kamailio's auth_ephemeral checks the HMAC).
    const registered = await page.evaluate((o) => window.phone.start(o), { user: 'alice', wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN });
    expect(registered.username).toMatch(/^\d+:alice$/);

    // The customer dials the agent; the browser rings and answers.
    const before = recordings();
    const dialled = await phone('dial', `sip:alice@${rig.SIP_DOMAIN}`);
    expect(dialled.ok, JSON.stringify(dialled)).toBeTruthy();
    await expect.poll(() => page.evaluate(() => window.phone.incoming), { timeout: 10_000 }).toBe(true);
    await page.evaluate(() => window.phone.answer());
    await expect.poll(() => events.some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000 }).toBe(true);

    // The agent hears the customer's tone, and not its own.
    await expectHearsCustomer(page);

    // Let baresip record a few seconds of the agent's tone, then send DTMF as RTP telephone-events.
    await page.waitForTimeout(3_000);
    await page.evaluate(() => window.phone.dtmf('1597#'));
    const digits = () => events.filter((e) => e.type === 'CALL_DTMF_START').map((e) => e.param).join('');
    await expect.poll(digits, { timeout: 10_000, message: 'baresip reports every digit' }).toBe('1597#');

    // The agent hangs up: BYE reaches baresip and the page.
    await page.evaluate(() => window.phone.hangup());
    await expect.poll(() => events.some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);
    await expect.poll(() => page.evaluate(() => window.phone.ended)).toMatch(/^ended by local/);
    const calls = await phone('listcalls');
    expect(calls.data).toContain('Active calls (0)');

    expectRecordedAgent(before);

    await page.evaluate(() => window.phone.stop());
    await page.close();
  });

  test('JsSIP calls the customer; baresip answers, audio both ways, baresip hangs up', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${HUB_PORT}/`);
    await page.evaluate((o) => window.phone.start(o), { user: 'bob', wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN });
    const before = recordings();
    const seen = events.length;

    // The agent dials out (offer from WebRTC: rtpengine turns it into plain RTP for baresip).
    await page.evaluate((uri) => window.phone.call(uri), `sip:customer@${rig.SIP_DOMAIN}`);
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_INCOMING'), { timeout: 10_000 }).toBe(true);
    expect((await phone('accept')).ok).toBeTruthy();
    await expect.poll(() => page.evaluate(() => window.phone.log.some((l) => l.endsWith(' confirmed'))), { timeout: 10_000 }).toBe(true);

    await expectHearsCustomer(page);
    await page.waitForTimeout(3_000);

    // The customer hangs up: the BYE goes from the plain phone to the WebSocket contact.
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect.poll(() => page.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);
    expectRecordedAgent(before);

    await page.evaluate(() => window.phone.stop());
    await page.close();
  });
});
