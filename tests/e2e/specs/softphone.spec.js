// Issue 14, the widget as a real softphone: telephony.mode "sip" against the rig of sip-rig.spec.js
// (Kamailio over WebSocket, rtpengine, baresip as the customer), with nothing of ours on the far side.
// The hub serves the widget (dist/ with the SIP build in dist/sip/, built by scripts/build-widget and
// scripts/build-widget --sip) and a config.json that points telephony at the rig; the default build
// hands the agent over to sip/. Audio is asserted, not just signalling: the page hears baresip's
// 440 Hz tone in the remote stream (AnalyserNode on the widget's <audio data-switchboard-remote>),
// baresip's recording holds the browser's 1000 Hz tone (Goertzel), RFC 4733 digits pressed on the
// widget's keypad reach baresip, Hold silences the far end's audio and Resume brings it back.
// Transfers with JsSIP as the caller (/jssip.html, tests/e2e/sip-phone): blind (REFER) to baresip, and
// attended (Consult, then Complete: REFER with Replaces) to a second agent's widget, with the caller held
// (silence) during the consultation and caller and colleague hearing each other after; a consultation
// refused and one cancelled. A network change mid-call: an `online` event restarts ICE at once; then
// iptables in the namespace drops the browser's media port, ICE restarts by re-INVITE with a new
// ufrag/pwd and the tone comes back; real packet loss (iptables statistic match) raises the quality warning.
//
// Everything (rig, hub, Chromium) runs inside a loopback-only network namespace (FIELD-NOTES). Needs
// root, the rig's Debian packages and both widget builds; skipped without dist/sip.
import { copyFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { AGENT_HZ, CUSTOMER_HZ, ROOT, acceptOn, expectHearsCustomer as expectHears, levels, settledLevels as settled, sipRig, transfer } from './sip-helpers.js';

const DIST = join(ROOT, 'dist');
const OUT = fileURLToPath(new URL('../.out/softphone/', import.meta.url));
const WIDGET_DIR = join(OUT, 'widget');
const HUB_PORT = 18091;
const sip = sipRig({ out: OUT, netns: `${process.env.E2E_NETNS_PREFIX ?? 'sbphone'}-${process.pid}`, hubPort: HUB_PORT });
const { events, phone, recordings } = sip;

let rig = null;
let browser;

/** baresip's recording of the call that started after `before` holds the agent's tone. */
async function expectRecordedAgent(before) {
  let fresh = [];
  await expect.poll(() => { fresh = recordings().filter((f) => !before.includes(f)); return fresh.length; },
    { timeout: 10_000, message: 'baresip wrote a recording' }).toBe(1);
  sip.expectRecordingHoldsAgent(fresh[0]);
}

/** The median of ten readings over a second, once `ok(reading)` held (bounded). */
const settledLevels = (page, ok, message) => settled(page, levels, ok, message);

const expectHearsCustomer = (page, what) => expectHears(page, levels, `${what}: the widget hears`);

/** Levels (dBFS) of both tones in the JsSIP page's remote audio now, or null. */
async function jssipLevels(page) {
  const now = await page.evaluate((f) => window.phone.levels(f), [CUSTOMER_HZ, AGENT_HZ]);
  return now === null ? null : { customer: now[CUSTOMER_HZ], agent: now[AGENT_HZ] };
}

/**
 * Waits until `read(page)` carries a browser's tone (every page of this Chromium sends AGENT_HZ from
 * the fake microphone), loud and well above baresip's; logs `what`.
 */
async function expectHearsBrowser(page, read, what) {
  const heard = await settled(page, read, (l) => l.agent > -50, `${what}: a browser's tone arrives`);
  console.log(`${what}: ${AGENT_HZ} Hz at ${heard.agent} dB, ${CUSTOMER_HZ} Hz at ${heard.customer} dB`);
  expect(heard.agent).toBeGreaterThan(-40);
  expect(heard.agent - heard.customer).toBeGreaterThan(30);
}

/** Waits until `read(page)` is silent at both tones (a held call). */
async function expectSilence(page, read, what) {
  const heard = await settled(page, read, (l) => l.agent < -70 && l.customer < -70, `${what}: silence`);
  console.log(`${what}: ${AGENT_HZ} Hz at ${heard.agent} dB, ${CUSTOMER_HZ} Hz at ${heard.customer} dB`);
}

/** Init script: every RTCPeerConnection the page makes is kept in window.__pcs (for its selected path). */
function recordPeerConnections() {
  const Real = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Real {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
}

/** The local UDP port of the selected ICE pair of the page's newest open peer connection, or null. */
function selectedPort(page) {
  return page.evaluate(async () => {
    for (const pc of [...(window.__pcs ?? [])].reverse()) {
      if (pc.connectionState === 'closed') continue;
      const stats = await pc.getStats();
      let pairId = null;
      stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
      const pair = pairId && stats.get(pairId);
      if (pair) return stats.get(pair.localCandidateId)?.port ?? null;
    }
    return null;
  });
}

/** A JsSIP phone page (nothing of ours) registered as `user`, that calls `callee` and accepts transfers. */
async function jssipCaller(user, callee) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`jssip: ${m.text()}`); });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/jssip.html`);
  await page.evaluate((o) => window.phone.start(o), { user, wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN });
  await page.evaluate((uri) => window.phone.call(uri), `sip:${callee}@${rig.SIP_DOMAIN}`);
  await page.evaluate(() => window.phone.acceptTransfers());
  return page;
}

/** A widget page signed in as `user`, its SIP line registered. */
async function agentPage(user) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`page: ${m.text()}`); });
  if (process.env.E2E_DEBUG) {
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => console.log(`>>> ${String(f.payload).slice(0, 3000)}`));
      ws.on('framereceived', (f) => console.log(`<<< ${String(f.payload).slice(0, 3000)}`));
    });
  }
  await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=${user}`);
  await expect(page).toHaveURL(/\/sip\/\?user=/, { timeout: 15_000 }); // the default build hands over
  await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
  return page;
}

test.describe('softphone: the widget in telephony.mode "sip" against Kamailio, rtpengine and baresip', () => {
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
    // JsSIP (nothing of ours) as a caller who gets transferred: /jssip.html.
    copyFileSync(fileURLToPath(new URL('../sip-phone/index.html', import.meta.url)), join(WIDGET_DIR, 'jssip.html'));
    copyFileSync(fileURLToPath(new URL('../node_modules/jssip/dist/jssip.min.js', import.meta.url)), join(WIDGET_DIR, 'jssip.min.js'));

    browser = await sip.startHubPhoneAndBrowser(WIDGET_DIR, 'e2e-softphone-key-0123456789', rig.SIP_WS_URI);
  });

  test.afterAll(() => sip.teardown());

  test('baresip calls the agent: the dialog rings, Accept, audio both ways, keypad DTMF, Hold/Resume, Hang up, wrap-up', async () => {
    const page = await agentPage('alice');
    const before = recordings();
    const seen = events.length;
    const dialled = await phone('dial', `sip:alice@${rig.SIP_DOMAIN}`);
    expect(dialled.ok, JSON.stringify(dialled)).toBeTruthy();

    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await expect(dialog).toContainText('customer');
    await dialog.getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000 }).toBe(true);
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible();

    await expectHearsCustomer(page, 'inbound call');

    // baresip records what it hears until the first re-INVITE: let it take a few seconds first.
    await page.waitForTimeout(4_000);
    await page.getByRole('button', { name: 'Keypad' }).click();
    const keypad = page.getByRole('group', { name: 'Keypad' });
    for (const key of ['1', '5', '9', '#']) {
      await keypad.getByRole('button', { name: key, exact: true }).click();
      await page.waitForTimeout(250);
    }
    const digits = () => events.slice(seen).filter((e) => e.type === 'CALL_DTMF_START').map((e) => e.param).join('');
    await expect.poll(digits, { timeout: 10_000, message: 'baresip reports every digit' }).toBe('159#');
    await page.getByRole('button', { name: 'Keypad' }).click();

    // Hold: re-INVITE a=sendonly; the far end answers recvonly, so its tone stops reaching the agent.
    await page.getByRole('button', { name: 'Hold' }).click();
    await expect(page.getByRole('button', { name: 'Resume' })).toBeVisible({ timeout: 10_000 });
    const held = await settledLevels(page, (l) => l.customer < -70, 'silence on hold');
    console.log(`on hold: the widget hears ${CUSTOMER_HZ} Hz at ${held.customer} dB`);
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect(page.getByRole('button', { name: 'Hold' })).toBeVisible({ timeout: 10_000 });
    await expectHearsCustomer(page, 'resumed');

    // Hang up: BYE to baresip; wrap-up as in hub mode.
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible();
    expect((await phone('listcalls')).data).toContain('Active calls (0)');
    await expectRecordedAgent(before);
    await page.close();
  });

  test('the agent dials baresip from the dial pad; baresip answers and hangs up', async () => {
    const page = await agentPage('bob');
    const before = recordings();
    const seen = events.length;
    await page.getByLabel('Phone number').fill('customer');
    await page.getByRole('button', { name: 'Call', exact: true }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_INCOMING'), { timeout: 10_000 }).toBe(true);
    expect((await phone('accept')).ok).toBeTruthy();
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible();
    await expectHearsCustomer(page, 'outbound call');
    await page.waitForTimeout(3_000);
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expectRecordedAgent(before);
    await page.close();
  });

  test('the caller hangs up while it rings (CANCEL): the dialog goes', async () => {
    const page = await agentPage('carol');
    await phone('dial', `sip:carol@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(dialog).toBeHidden({ timeout: 10_000 });
    await page.close();
  });

  test('microphone denied: a clear message, and the call is not answered', async () => {
    // The rig's Chromium grants the microphone (--use-fake-ui-for-media-stream); here getUserMedia
    // fails as Chrome fails it for a blocked site: a NotAllowedError.
    const page = await browser.newPage();
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=dave`);
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    const seen = events.length;
    await phone('dial', `sip:dave@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await dialog.getByRole('button', { name: 'Accept' }).click();
    await expect(page.getByText(/The microphone is blocked, so the call was not answered/)).toBeVisible({ timeout: 10_000 });
    await expect(dialog).toBeVisible();
    await page.waitForTimeout(1_000);
    expect(events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED')).toBe(false);
    await phone('hangup');
    await expect(dialog).toBeHidden({ timeout: 10_000 });
    await page.close();
  });

  test('audio devices: microphone, speaker and ringer picked, remembered, the ringtone on the ringer, the call on the speaker', async () => {
    const page = await agentPage('frank');
    const ids = await page.evaluate(async () => Object.fromEntries((await navigator.mediaDevices.enumerateDevices())
      .filter((d) => d.kind.startsWith('audio')).map((d) => [d.label, d.deviceId])));
    await page.getByText('Audio devices').click();
    await page.getByLabel('Microphone', { exact: true }).selectOption({ label: 'Fake Audio Input 2' });
    await page.getByLabel('Speaker (the call)').selectOption({ label: 'Fake Audio Output 1' });
    await page.getByLabel('Ringer (the ringtone)').selectOption({ label: 'Fake Audio Output 2' });
    // Remembered per browser: device ids only, no labels.
    const stored = await page.evaluate(() => ({ ...localStorage }));
    expect(stored['switchboard.microphone']).toBe(ids['Fake Audio Input 2']);
    expect(stored['switchboard.speaker']).toBe(ids['Fake Audio Output 1']);
    expect(stored['switchboard.ringer']).toBe(ids['Fake Audio Output 2']);
    expect(JSON.stringify(stored)).not.toContain('Fake Audio');

    await page.reload();
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await page.getByText('Audio devices').click();
    await expect(page.getByLabel('Ringer (the ringtone)')).toHaveValue(ids['Fake Audio Output 2']);
    await expect(page.getByLabel('Speaker (the call)')).toHaveValue(ids['Fake Audio Output 1']);
    await expect(page.getByLabel('Microphone', { exact: true })).toHaveValue(ids['Fake Audio Input 2']);
    await page.setViewportSize({ width: 320, height: 900 });
    await page.screenshot({ path: join(OUT, 'devices-320-light.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(OUT, 'devices-320-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });

    // baresip rings: the ringtone plays on the ringer device, 440 + 480 Hz.
    const seen = events.length;
    await phone('dial', `sip:frank@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    const ringer = page.locator('audio[data-switchboard-ringer]');
    await expect(ringer).toHaveCount(1);
    await expect.poll(() => ringer.evaluate((a) => a.sinkId)).toBe(ids['Fake Audio Output 2']);
    const ring = await page.evaluate(async () => {
      const a = document.querySelector('audio[data-switchboard-ringer]');
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      ctx.createMediaStreamSource(a.srcObject).connect(analyser);
      const bins = new Float32Array(analyser.frequencyBinCount);
      let best = { 440: -Infinity, 480: -Infinity, 1000: -Infinity };
      for (let n = 0; n < 30; n++) {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(bins);
        for (const f of [440, 480, 1000]) best[f] = Math.max(best[f], bins[Math.round(f / (ctx.sampleRate / analyser.fftSize))]);
      }
      return { playing: !a.paused, ...best };
    });
    console.log(`ringtone: 440 Hz at ${ring[440].toFixed(1)} dB, 480 Hz at ${ring[480].toFixed(1)} dB, 1000 Hz at ${ring[1000].toFixed(1)} dB`);
    expect(ring.playing).toBe(true);
    expect(ring[440]).toBeGreaterThan(-50);
    expect(ring[480]).toBeGreaterThan(-50);
    expect(ring[440] - ring[1000]).toBeGreaterThan(30);

    // Accept: the ringtone stops; the call plays on the speaker; the microphone's level shows.
    await dialog.getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000 }).toBe(true);
    await expect(ringer).toHaveCount(0);
    const remote = page.locator('audio[data-switchboard-remote]');
    await expect.poll(() => remote.evaluate((a) => a.sinkId)).toBe(ids['Fake Audio Output 1']);
    const meter = page.getByRole('meter', { name: 'Microphone level' });
    await expect(meter).toBeVisible({ timeout: 5_000 });
    await expect.poll(async () => Number(await meter.getAttribute('aria-valuenow')), { message: 'the 1000 Hz tone moves the meter' }).toBeGreaterThan(-30);
    await expectHearsCustomer(page, 'on the chosen speaker');
    await page.screenshot({ path: join(OUT, 'call-audio-320-light.png'), fullPage: true });

    // Switched live during the call.
    await page.getByLabel('Speaker (the call)').selectOption({ label: 'Fake Audio Output 2' });
    await expect.poll(() => remote.evaluate((a) => a.sinkId)).toBe(ids['Fake Audio Output 2']);

    // Talking while muted: the far end hears nothing, the agent is told.
    await page.getByRole('button', { name: 'Mute' }).click();
    await expect(page.getByText('You are muted: the caller does not hear you.')).toBeVisible({ timeout: 10_000 });
    await expect(page.getByRole('button', { name: 'Unmute' })).toHaveAttribute('aria-pressed', 'true');
    await page.getByRole('button', { name: 'Unmute' }).click();
    await expect(page.getByText('You are muted: the caller does not hear you.')).toBeHidden({ timeout: 5_000 });

    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(meter).toBeHidden();
    await page.close();
  });

  test('a device that goes away: the picker says so and the default is used until it is back', async () => {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      const real = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
      navigator.mediaDevices.enumerateDevices = async () => (await real())
        .filter((d) => !(window.__unplugged && d.label === 'Fake Audio Output 2'));
    });
    await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=grace`);
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await page.getByText('Audio devices').click();
    await page.getByLabel('Ringer (the ringtone)').selectOption({ label: 'Fake Audio Output 2' });
    await expect(page.getByText('The chosen device is not plugged in')).toBeHidden();
    // The headset is unplugged: the browser fires devicechange.
    await page.evaluate(() => { window.__unplugged = true; navigator.mediaDevices.dispatchEvent(new Event('devicechange')); });
    await expect(page.getByText('The chosen device is not plugged in, so the system default is used until it is back.')).toBeVisible();
    await expect(page.getByLabel('Ringer (the ringtone)')).toHaveValue('');
    // While it is away a call rings on the default output.
    await phone('dial', `sip:grace@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await expect.poll(() => page.locator('audio[data-switchboard-ringer]').evaluate((a) => a.sinkId)).toBe('');
    await phone('hangup');
    await expect(dialog).toBeHidden({ timeout: 10_000 });
    await expect(page.locator('audio[data-switchboard-ringer]')).toHaveCount(0);
    // Plugged in again: the choice is back.
    await page.evaluate(() => { window.__unplugged = false; navigator.mediaDevices.dispatchEvent(new Event('devicechange')); });
    await expect(page.getByText('The chosen device is not plugged in')).toBeHidden();
    await expect(page.getByLabel('Ringer (the ringtone)')).not.toHaveValue('');
    await page.close();
  });

  test('a silent microphone and a poor connection: the agent is told during the call', async () => {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      // A microphone that gives only silence (a dead headset): a track from an empty Web Audio graph.
      navigator.mediaDevices.getUserMedia = async () => new AudioContext().createMediaStreamDestination().stream;
    });
    await page.addInitScript(recordPeerConnections);
    await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=heidi`);
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    const seen = events.length;
    await phone('dial', `sip:heidi@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await dialog.getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000 }).toBe(true);
    await expect(page.getByText(/^No sound from your microphone\./)).toBeVisible({ timeout: 15_000 });
    // Real packet loss: a quarter of what reaches the browser's media port is dropped (iptables'
    // statistic match in the rig's namespace; sch_netem is not in this kernel).
    let port = null;
    await expect.poll(async () => { port = await selectedPort(page); return port; }, { timeout: 10_000 }).not.toBeNull();
    const lossRule = ['INPUT', '-p', 'udp', '--dport', String(port), '-m', 'statistic', '--mode', 'random', '--probability', '0.25', '-j', 'DROP'];
    await sip.iptables('-I', ...lossRule);
    try {
      await expect(page.getByText(/^Poor call quality: (1[5-9]|2\d|3[0-5]) % of the audio is lost \(estimated MOS [12]\.\d\)\.$/)).toBeVisible({ timeout: 30_000 });
    } finally {
      await sip.iptables('-D', ...lossRule);
    }
    await page.setViewportSize({ width: 320, height: 900 });
    await page.screenshot({ path: join(OUT, 'call-warnings-320-light.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(OUT, 'call-warnings-320-dark.png'), fullPage: true });
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(page.getByText(/^Poor call quality/)).toBeHidden();
    await page.close();
  });

  test('two tabs of one agent: only one holds the SIP line and rings; the other takes over when it closes', async () => {
    const context = await browser.newContext(); // one browser profile: the tabs share Web Locks
    const first = await context.newPage();
    await first.goto(`http://127.0.0.1:${HUB_PORT}/?user=judy`);
    await expect(first.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    const second = await context.newPage();
    const sipSockets = [];
    second.on('websocket', (ws) => { if (ws.url().startsWith(rig.SIP_WS_URI)) sipSockets.push(ws); });
    await second.goto(`http://127.0.0.1:${HUB_PORT}/?user=judy`);
    await expect(second.getByText(/^Phone line: in use in another tab or window of this browser/)).toBeVisible({ timeout: 15_000 });
    // One registration: the waiting tab opened no SIP WebSocket (so an INVITE is not forked to it).
    await second.setViewportSize({ width: 320, height: 640 });
    await second.screenshot({ path: join(OUT, 'line-elsewhere-320-light.png') });
    expect(sipSockets.length, 'SIP WebSockets of the second tab').toBe(0);
    await phone('dial', `sip:judy@${rig.SIP_DOMAIN}`);
    await expect(first.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible({ timeout: 10_000 });
    await expect(second.getByRole('alertdialog', { name: /Incoming call/ })).toHaveCount(0);
    await phone('hangup');
    await expect(first.getByRole('alertdialog', { name: /Incoming call/ })).toBeHidden({ timeout: 10_000 });

    // The first tab closes: the second registers and rings.
    await first.close();
    await expect(second.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await phone('dial', `sip:judy@${rig.SIP_DOMAIN}`);
    const dialog = second.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await phone('hangup');
    await expect(dialog).toBeHidden({ timeout: 10_000 });
    await context.close();
  });

  test('Kamailio killed and restarted mid-shift: the line says so, re-registers by itself and takes a call again', async () => {
    const page = await agentPage('kim');
    await sip.crashKamailio();
    // The WebSocket died with it: the line says so (and when it tries again) without the agent doing anything.
    await expect(page.getByText(/^Phone line: (not connected|connecting)/)).toBeVisible({ timeout: 10_000 });
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 30_000 });
    const seen = events.length;
    await phone('dial', `sip:kim@${rig.SIP_DOMAIN}`);
    const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(dialog).toBeVisible({ timeout: 10_000 });
    await dialog.getByRole('button', { name: 'Accept' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_ESTABLISHED'), { timeout: 10_000 }).toBe(true);
    await expectHearsCustomer(page, 'after the Kamailio restart');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await page.close();
  });

  test('blind transfer (REFER): a JsSIP caller goes to baresip, hears it, and the agent wraps up', async () => {
    const page = await agentPage('olga');
    const caller = await jssipCaller('pat', 'olga');
    await acceptOn(page);
    await expectHearsBrowser(caller, jssipLevels, 'blind transfer, before: the caller hears the agent');
    const seen = events.length;
    await transfer(page, 'customer', 'Transfer now');
    // JsSIP takes the REFER and calls baresip; the agent's leg ends on the final NOTIFY 2xx.
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_INCOMING'), { timeout: 10_000 }).toBe(true);
    expect((await phone('accept')).ok).toBeTruthy();
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 10_000 }).toBe('confirmed');
    expect(await caller.evaluate(() => window.phone.referredTo)).toMatch(/^sip:customer@/);
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expectHears(caller, jssipLevels, 'blind transfer, after: the caller hears baresip');
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await caller.evaluate(() => window.phone.stop());
    await caller.close();
    await page.close();
  });

  test('attended transfer: Consult a colleague (the caller held), Complete (REFER with Replaces): caller and colleague talk', async () => {
    const alice = await agentPage('quinn');
    const bob = await agentPage('ruth');
    const caller = await jssipCaller('sam', 'quinn');
    await acceptOn(alice);
    await expectHearsBrowser(caller, jssipLevels, 'attended, talking: the caller hears the agent');
    await expectHearsBrowser(alice, levels, 'attended, talking: the agent hears the caller');

    // Consult: the caller goes on hold (silence), the colleague rings and answers.
    await transfer(alice, 'ruth', 'Consult first');
    await acceptOn(bob);
    await expect(alice.getByRole('button', { name: 'Complete transfer' })).toBeVisible({ timeout: 10_000 });
    await expect(alice.getByText(/Consulting ruth/)).toBeVisible();
    await expectSilence(caller, jssipLevels, 'attended, consulting: the caller on hold hears');
    await expectHearsBrowser(bob, levels, 'attended, consulting: the colleague hears the agent');

    // Complete: REFER to the caller; JsSIP's INVITE with Replaces takes the colleague's call over.
    await alice.getByRole('button', { name: 'Complete transfer' }).click();
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 15_000 }).toBe('confirmed');
    expect(decodeURIComponent(await caller.evaluate(() => window.phone.referredTo))).toMatch(/^sip:ruth@[^?]+\?Replaces=[^;]+;to-tag=[^;]+;from-tag=/i);
    await expect(alice.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(alice.locator('audio[data-switchboard-remote]')).toHaveCount(0);
    // The colleague's desk keeps one call (now with the caller), and both hear each other.
    await expect(bob.getByRole('button', { name: 'Hang up' })).toBeVisible();
    await expect(bob.locator('audio[data-switchboard-remote]')).toHaveCount(1, { timeout: 10_000 });
    await expectHearsBrowser(caller, jssipLevels, 'attended, transferred: the caller hears the colleague');
    await expectHearsBrowser(bob, levels, 'attended, transferred: the colleague hears the caller');

    await bob.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => caller.evaluate(() => window.phone.transfer), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(bob.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, alice, bob]) await p.close();
  });

  test('attended transfer refused, then cancelled: back to the held caller, Resume brings the audio back', async () => {
    const alice = await agentPage('tara');
    const bob = await agentPage('uma');
    const caller = await jssipCaller('vic', 'tara');
    await acceptOn(alice);
    await expectHearsBrowser(caller, jssipLevels, 'refused: the caller hears the agent');

    // The colleague declines: the consultation ends, the agent is told, the caller stays on hold.
    await transfer(alice, 'uma', 'Consult first');
    const ringing = bob.getByRole('alertdialog', { name: /Incoming call/ });
    await expect(ringing).toBeVisible({ timeout: 10_000 });
    await ringing.getByRole('button', { name: /Decline|Reject/ }).click();
    await expect(alice.getByText(/did not accept this, code (486|603)/)).toBeVisible({ timeout: 10_000 });
    await expect(alice.getByRole('button', { name: 'Resume' })).toBeVisible();
    await expectSilence(caller, jssipLevels, 'refused: the caller on hold hears');

    // Consult again; the colleague answers; Back to caller ends the consultation.
    await alice.getByRole('button', { name: 'Resume' }).click();
    await expect(alice.getByRole('button', { name: 'Hold' })).toBeVisible({ timeout: 10_000 });
    await transfer(alice, 'uma', 'Consult first');
    await acceptOn(bob);
    await expect(alice.getByRole('button', { name: 'Back to caller' })).toBeVisible({ timeout: 10_000 });
    await alice.getByRole('button', { name: 'Back to caller' }).click();
    await expect(bob.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(alice.getByRole('button', { name: 'Resume' })).toBeVisible({ timeout: 10_000 });
    await alice.getByRole('button', { name: 'Resume' }).click();
    await expect(alice.getByRole('button', { name: 'Hold' })).toBeVisible({ timeout: 10_000 });
    await expectHearsBrowser(caller, jssipLevels, 'cancelled, resumed: the caller hears the agent again');
    await expect(alice.locator('audio[data-switchboard-remote]')).toHaveCount(1);

    await alice.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => caller.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, alice, bob]) await p.close();
  });

  test('network change mid-call: online and a cut path each restart ICE by re-INVITE with new credentials, the tone comes back', async () => {
    const page = await browser.newPage();
    await page.addInitScript(recordPeerConnections);
    const sent = [];
    page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(String(f.payload))));
    await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=wendy`);
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await phone('dial', `sip:wendy@${rig.SIP_DOMAIN}`);
    await acceptOn(page);
    await expectHearsCustomer(page, 'before the cut');
    const ufrag = (text) => /a=ice-ufrag:(\S+)/.exec(text)?.[1];
    const answer = sent.find((f) => f.startsWith('SIP/2.0 200') && ufrag(f));
    expect(answer, 'our 200 OK carries ICE credentials').toBeTruthy();
    const reinvites = () => sent.filter((f) => f.startsWith('INVITE ') && ufrag(f));

    // The browser reports a network change (`online`): ICE restarts at once, the audio goes on.
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await expect.poll(() => reinvites().length, { timeout: 10_000, message: 'an ICE restart re-INVITE on online' }).toBe(1);
    expect(ufrag(reinvites()[0])).not.toBe(ufrag(answer));
    await expectHearsCustomer(page, 'after the restart on online');
    const before = reinvites()[0];

    let port = null;
    await expect.poll(async () => { port = await selectedPort(page); return port; }, { timeout: 10_000 }).not.toBeNull();
    const cut = ['INPUT', '-p', 'udp', '--dport', String(port), '-j', 'DROP'];
    await sip.iptables('-I', ...cut);
    try {
      await settledLevels(page, (l) => l.customer < -70, 'the path is cut: silence');
      // ICE goes disconnected; after the grace the widget re-INVITEs with a new ufrag and pwd.
      await expect.poll(() => reinvites().length, { timeout: 30_000, message: 'an ICE restart re-INVITE' }).toBeGreaterThan(1);
      const restart = reinvites()[1];
      expect(ufrag(restart)).not.toBe(ufrag(before));
      expect(/a=ice-pwd:(\S+)/.exec(restart)[1]).not.toBe(/a=ice-pwd:(\S+)/.exec(before)[1]);
      await expectHearsCustomer(page, 'after the ICE restart');
      expect(await selectedPort(page)).not.toBe(port);
    } finally {
      await sip.iptables('-D', ...cut);
    }
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await page.close();
  });

  test('wrong credentials: the line says the server refused them and keeps retrying with backoff', async () => {
    const page = await browser.newPage();
    let asked = 0;
    await page.route('**/api/sip/credentials', (route) => {
      asked += 1;
      const expiry = Math.floor(Date.now() / 1000) + 600;
      route.fulfill({ json: { username: `${expiry}:erin`, password: 'not-the-hmac', expiresOn: expiry, iceServers: [] } });
    });
    await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=erin`);
    await expect(page.getByText(/Phone line: not connected \(the phone server refused the sign-in, code 401\)\. Next attempt in \d+ s\./))
      .toBeVisible({ timeout: 15_000 });
    // It tries again by itself (fresh credentials each time), never faster than the backoff.
    await expect.poll(() => asked, { timeout: 15_000 }).toBeGreaterThanOrEqual(2);
    await expect(page.getByRole('status')).toHaveText(/Connected/); // the hub connection is not affected
    await page.close();
  });
});
