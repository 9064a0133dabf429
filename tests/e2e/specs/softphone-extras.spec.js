// Issue 14, the softphone (telephony.mode "sip") where softphone.spec.js and softphone-hosts.spec.js do
// not take it: the tenant's own ringtone (telephony.sip.ringtone) and the call quality figures with the
// estimated MOS in the Diagnostics drawer. The same rig (scripts/sip-rig: Kamailio over WebSocket,
// rtpengine, baresip as the customer, all in a loopback-only network namespace).
//
// - A custom ringtone: config.json names `ring.wav` (relative to config.json, a 700 Hz tone made by
//   sox); baresip calls → the ringer <audio> plays that file, looped, and carries 700 Hz (captureStream +
//   AnalyserNode); Reject → it stops; baresip cancels the next call → it stops; the file gone → the
//   generated 440 + 480 Hz ring plays instead.
// - Diagnostics during a call: "Call quality" with the estimated MOS and the figures both ways.
// - Being transferred: a JsSIP caller (nothing of ours) REFERs the agent to baresip's `customer` → the
//   widget says "Transferred to …", calls customer, the agent hears baresip's 440 Hz, JsSIP gets NOTIFY
//   100 then 200 and the widget's BYE; a REFER to a user that does not exist → NOTIFY 404, the agent is
//   told, and the call with JsSIP goes on with audio both ways. Attended: JsSIP consults a colleague's
//   widget and REFERs the agent with Replaces (RFC 3891) → the agent's INVITE reaches the colleague, whose
//   widget takes the call over; agent and colleague hear each other, JsSIP's two calls end.
// - The pop-out (a framed widget, the postMessage host) during a SIP call: the button is disabled with
//   "Pop out after this call" while baresip's call rings and while it is up (its audio stays in the
//   frame, it is never dropped); after the call the window opens, takes the line (the frame lets the Web
//   Lock go) and baresip's next call rings there, not in the frame.
//
// Needs root, the rig's Debian packages and both widget builds; skipped without dist/sip.
import { copyFileSync, cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { AGENT_HZ, CUSTOMER_HZ, ROOT, acceptOn, expectHearsCustomer as expectHears, levels, run, settledLevels as settled, sipRig } from './sip-helpers.js';

const DIST = join(ROOT, 'dist');
const OUT = fileURLToPath(new URL('../.out/softphone-extras/', import.meta.url));
const WIDGET_DIR = join(OUT, 'widget');
const HUB_PORT = 18093; // inside the namespace, which has ports of its own
const RING_HZ = 700;
const sip = sipRig({ out: OUT, netns: `${process.env.E2E_NETNS_PREFIX ?? 'sbextra'}-${process.pid}`, hubPort: HUB_PORT });
const { events, phone } = sip;

let rig = null;
let browser;

/** A widget page signed in as `user`, its SIP line registered. */
async function agentPage(user) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`page: ${m.text()}`); });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/?user=${user}`);
  await expect(page).toHaveURL(/\/sip\/\?user=/, { timeout: 15_000 }); // the default build hands over
  await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
  return page;
}

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

/** A JsSIP phone page (nothing of ours) registered as `user` that calls `callee`. */
async function jssipCaller(user, callee) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`jssip: ${m.text()}`); });
  await page.goto(`http://127.0.0.1:${HUB_PORT}/jssip.html`);
  await page.evaluate((o) => window.phone.start(o), { user, wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN });
  await page.evaluate((uri) => window.phone.call(uri), `sip:${callee}@${rig.SIP_DOMAIN}`);
  return page;
}

/** Levels (dBFS) at `freqs` of what the ringer element plays now (captureStream), or null. */
function ringerLevels(page, freqs) {
  return page.evaluate((fs) => {
    const el = document.querySelector('audio[data-switchboard-ringer]');
    if (!el || el.paused) return null;
    if (!el.__meter) {
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(el.captureStream()).connect(analyser);
      el.__meter = { ctx, analyser };
    }
    const { ctx, analyser } = el.__meter;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const width = ctx.sampleRate / analyser.fftSize;
    const at = (f) => {
      let best = -Infinity;
      for (let i = Math.floor((f - 10) / width); i <= Math.ceil((f + 10) / width); i++) best = Math.max(best, bins[i]);
      return Math.round(best * 10) / 10;
    };
    return Object.fromEntries(fs.map((f) => [f, at(f)]));
  }, freqs);
}

/** baresip calls `user`; resolves once the widget rings. */
async function ring(page, user) {
  expect((await phone('dial', `sip:${user}@${rig.SIP_DOMAIN}`)).ok).toBeTruthy();
  await expect(page.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible({ timeout: 10_000 });
}

test.describe('softphone extras: the configured ringtone, call quality in Diagnostics, being transferred', () => {
  test.describe.configure({ mode: 'serial', timeout: 120_000 });
  test.skip(!existsSync(join(DIST, 'sip', 'index.html')), 'no SIP build: scripts/build-widget --sip');

  test.beforeAll(async () => {
    test.setTimeout(90_000);
    sip.clean();
    rig = await sip.startRig();
    cpSync(DIST, WIDGET_DIR, { recursive: true });
    const config = JSON.parse(readFileSync(join(DIST, 'config.json'), 'utf8'));
    config.ringTimeoutSeconds = 60;
    config.telephony = {
      mode: 'sip',
      sip: { wsUri: rig.SIP_WS_URI, domain: rig.SIP_DOMAIN, credentialsUrl: '/api/sip/credentials', dtmf: 'rfc4733', audioProcessing: false, ringtone: 'ring.wav' },
    };
    writeFileSync(join(WIDGET_DIR, 'config.json'), JSON.stringify(config, null, 2));
    copyFileSync(fileURLToPath(new URL('../sip-phone/index.html', import.meta.url)), join(WIDGET_DIR, 'jssip.html'));
    copyFileSync(fileURLToPath(new URL('../node_modules/jssip/dist/jssip.min.js', import.meta.url)), join(WIDGET_DIR, 'jssip.min.js'));
    // The tenant's ringtone beside config.json: 3 s of 700 Hz (the SIP build at /sip/ must resolve
    // `ring.wav` against config.json, not against its own page).
    await run('sox', ['-q', '-n', '-r', '48000', '-c', '1', '-b', '16', join(WIDGET_DIR, 'ring.wav'), 'synth', '3', 'sine', String(RING_HZ), 'vol', '0.5'], { timeout: 10_000 });
    browser = await sip.startHubPhoneAndBrowser(WIDGET_DIR, 'e2e-softphone-extras-key-0123456789', rig.SIP_WS_URI);
  });

  test.afterAll(() => sip.teardown());

  test('the configured ringtone plays looped on the ringer while a call rings, stops on Reject and CANCEL; a missing file falls back to the generated ring', async () => {
    const page = await agentPage('rita');
    const ringer = page.locator('audio[data-switchboard-ringer]');

    await ring(page, 'rita');
    await expect(ringer).toHaveCount(1);
    await expect(ringer).toHaveAttribute('data-switchboard-ringtone', 'custom');
    expect(await ringer.evaluate((a) => a.currentSrc)).toBe(`http://127.0.0.1:${HUB_PORT}/ring.wav`);
    expect(await ringer.evaluate((a) => a.loop)).toBe(true);
    // It plays: time advances past the 3 s file's end (looped), and it carries the file's 700 Hz.
    await expect.poll(() => ringer.evaluate((a) => !a.paused && a.currentTime > 0.2), { timeout: 10_000 }).toBe(true);
    await expect.poll(async () => { const l = await ringerLevels(page, [RING_HZ, 440]); return l !== null && l[RING_HZ] > -40; },
      { timeout: 10_000, message: 'the ringer plays the configured file\'s 700 Hz' }).toBe(true);
    const heard = await ringerLevels(page, [RING_HZ, 440, 480]);
    console.log(`custom ringtone: ${RING_HZ} Hz at ${heard[RING_HZ]} dB, 440 Hz at ${heard[440]} dB, 480 Hz at ${heard[480]} dB`);
    expect(heard[RING_HZ] - Math.max(heard[440], heard[480])).toBeGreaterThan(20);

    // Reject: it stops (the element goes), baresip's call closes.
    const seen = events.length;
    await page.getByRole('alertdialog', { name: /Incoming call/ }).getByRole('button', { name: 'Reject' }).click();
    await expect(ringer).toHaveCount(0);
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);

    // baresip gives up while it rings (CANCEL): it stops.
    await ring(page, 'rita');
    await expect(ringer).toHaveAttribute('data-switchboard-ringtone', 'custom');
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(page.getByRole('alertdialog', { name: /Incoming call/ })).toHaveCount(0, { timeout: 10_000 });
    await expect(ringer).toHaveCount(0);

    // The file cannot be loaded (gone: 404): the generated two-tone ring plays instead.
    rmSync(join(WIDGET_DIR, 'ring.wav'));
    await page.reload();
    await expect(page.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await ring(page, 'rita');
    await expect(ringer).toHaveAttribute('data-switchboard-ringtone', 'generated', { timeout: 10_000 });
    expect(await ringer.evaluate((a) => a.srcObject !== null && !a.hasAttribute('src'))).toBe(true);
    expect(await page.evaluate(() => window.switchboardDiagnostics())).toContain('the configured ringtone could not be played');
    await acceptOn(page);
    await expect(ringer).toHaveCount(0);
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await page.close();
  });

  test('Diagnostics shows the call\'s estimated MOS with jitter, loss and round trip during a call, and not after it', async () => {
    const page = await agentPage('milo');
    await ring(page, 'milo');
    await acceptOn(page);
    await page.getByText('Diagnostics', { exact: true }).click();
    const drawer = page.locator('details.diag');
    await expect(drawer.locator('dt', { hasText: 'Phone line' })).toBeVisible();
    const quality = drawer.locator('dt:has-text("Call quality") + dd');
    // getStats every 2 s; the estimate needs two readings.
    await expect(quality).toHaveText(/^estimated MOS \d\.\d · you hear: loss \d+\.\d %, jitter \d+ ms \(MOS \d\.\d\)/, { timeout: 15_000 });
    const text = await quality.textContent();
    console.log(`Diagnostics, Call quality: ${text}`);
    const mos = Number(text.match(/^estimated MOS (\d\.\d)/)[1]);
    expect(mos, 'a clean loopback call').toBeGreaterThan(4.0);
    expect(text).toMatch(/· RTT \d+ ms$/);
    await expect(drawer.locator('dt:has-text("Call audio") + dd')).toHaveText(/^jitter \d+ ms · loss/);
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(quality).toHaveText('-');
    await page.close();
  });

  test('being transferred: a JsSIP caller REFERs the agent to baresip, the widget calls it and hears it, NOTIFY 100 then 200, the old call ends by BYE', async () => {
    const page = await agentPage('tess');
    const caller = await jssipCaller('jo', 'tess');
    await acceptOn(page);
    await expectHearsBrowser(caller, jssipLevels, 'before the transfer: JsSIP hears the agent');
    const seen = events.length;
    await caller.evaluate((uri) => window.phone.refer(uri), `sip:customer@${rig.SIP_DOMAIN}`);
    await expect(page.getByText(/Transferred to customer@/)).toBeVisible({ timeout: 10_000 });
    // baresip rings with the widget's INVITE and answers; the widget reports 200 to JsSIP and hangs up on it.
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_INCOMING'), { timeout: 10_000, message: 'the widget calls baresip' }).toBe(true);
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible();
    expect(await caller.evaluate(() => window.phone.ended), 'the call with JsSIP waits for the outcome').toBeNull();
    expect((await phone('accept')).ok).toBeTruthy();
    await expect.poll(() => caller.evaluate(() => window.phone.referProgress), { timeout: 10_000 })
      .toEqual(['requestSucceeded 202', 'trying 100', 'accepted 200']);
    await expect.poll(() => caller.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(page.getByText(/^Transferred to customer@[^:]*\.$/)).toBeVisible();
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible();
    await expect(page.locator('audio[data-switchboard-remote]')).toHaveCount(1);
    await expectHears(page, levels, 'transferred to baresip: the widget hears');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), { timeout: 10_000 }).toBe(true);
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, page]) await p.close();
  });

  test('being transferred, attended: the JsSIP caller consults a colleague, then REFERs the agent with Replaces; the agent\'s widget calls the colleague, whose widget takes the call over', async () => {
    const page = await agentPage('vic');
    const colleague = await agentPage('wes');
    const caller = await jssipCaller('lou', 'vic');
    await acceptOn(page);
    await expectHearsBrowser(caller, jssipLevels, 'attended, before: JsSIP hears the agent');
    await caller.evaluate((uri) => window.phone.consult(uri), `sip:wes@${rig.SIP_DOMAIN}`);
    await acceptOn(colleague);
    await expect.poll(() => caller.evaluate(() => window.phone.consultState), { timeout: 10_000 }).toBe('confirmed');
    await caller.evaluate(() => window.phone.referReplaces());
    // The agent's INVITE carries the Replaces of JsSIP's consultation: the colleague's widget takes it
    // over (and BYEs JsSIP's consultation); the agent reports 200 to JsSIP and BYEs its call with JsSIP.
    await expect.poll(() => caller.evaluate(() => window.phone.referProgress), { timeout: 10_000 })
      .toEqual(['requestSucceeded 202', 'trying 100', 'accepted 200']);
    await expect.poll(() => caller.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect.poll(() => caller.evaluate(() => window.phone.consultState), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(page.getByText(/^Transferred to wes@[^?;]*\.$/)).toBeVisible();
    for (const p of [page, colleague]) {
      await expect(p.getByRole('button', { name: 'Hang up' })).toBeVisible();
      await expect(p.locator('audio[data-switchboard-remote]')).toHaveCount(1);
    }
    await expectHearsBrowser(page, levels, 'attended, after: the agent hears the colleague');
    await expectHearsBrowser(colleague, levels, 'attended, after: the colleague hears the agent');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect(colleague.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, page, colleague]) await p.close();
  });

  test('being transferred to a user who does not exist: NOTIFY 404, the agent is told, the call with the transferor goes on', async () => {
    const page = await agentPage('uma');
    const caller = await jssipCaller('kit', 'uma');
    await acceptOn(page);
    await expectHearsBrowser(caller, jssipLevels, 'before the transfer: JsSIP hears the agent');
    await caller.evaluate((uri) => window.phone.refer(uri), `sip:nobody-here@${rig.SIP_DOMAIN}`);
    await expect.poll(() => caller.evaluate(() => window.phone.referProgress), { timeout: 10_000 })
      .toEqual(['requestSucceeded 202', 'trying 100', 'failed 404']);
    await expect(page.getByText(/The transfer to nobody-here@\S+ did not go through \(404\)/)).toBeVisible();
    expect(await caller.evaluate(() => window.phone.ended)).toBeNull();
    await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible();
    await expectHearsBrowser(caller, jssipLevels, 'after the failed transfer: JsSIP hears the agent');
    await expectHearsBrowser(page, levels, 'after the failed transfer: the agent hears JsSIP');
    // Browser to browser, the far end's RTCP receiver reports arrive (remote-inbound-rtp): its view is in the MOS.
    await page.getByText('Diagnostics', { exact: true }).click();
    const quality = page.locator('details.diag dt:has-text("Call quality") + dd');
    await expect(quality).toHaveText(/^estimated MOS \d\.\d · you hear: .* · the far end hears: loss \d+\.\d %, jitter \d+ ms \(MOS \d\.\d\) · RTT \d+ ms$/, { timeout: 15_000 });
    console.log(`Diagnostics with JsSIP, Call quality: ${await quality.textContent()}`);
    await page.getByRole('button', { name: 'Hang up' }).click();
    await expect.poll(() => caller.evaluate(() => window.phone.ended), { timeout: 10_000 }).toMatch(/^ended by remote/);
    await expect(page.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await caller.evaluate(() => window.phone.stop());
    for (const p of [caller, page]) await p.close();
  });

  test('pop-out during a SIP call: disabled with "Pop out after this call", the call goes on in the frame; afterwards the window takes the line', async () => {
    const page = await browser.newPage();
    page.on('console', (m) => { if (process.env.E2E_DEBUG) console.log(`host: ${m.text()}`); });
    await page.goto(`http://127.0.0.1:${HUB_PORT}/hosts/postmessage?user=pia`);
    const ui = page.frameLocator('#widget');
    await expect(ui.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    const frame = page.frames().find((f) => /\/sip\/\?/.test(f.url()));
    expect(frame, 'the framed widget handed over to /sip/').toBeTruthy();
    const popOut = ui.getByRole('button', { name: 'Open in its own window' });
    await expect(popOut).toBeEnabled();

    const seen = events.length;
    expect((await phone('dial', `sip:pia@${rig.SIP_DOMAIN}`)).ok).toBeTruthy();
    await expect(ui.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible({ timeout: 10_000 });
    const waiting = ui.getByRole('button', { name: /^Pop out after this call/ });
    await expect(waiting).toBeDisabled();
    await ui.getByRole('alertdialog', { name: /Incoming call/ }).getByRole('button', { name: 'Accept' }).click();
    await expect(ui.getByRole('button', { name: 'Hang up' })).toBeVisible({ timeout: 10_000 });
    await expect(waiting).toBeDisabled();
    await expect(waiting).toHaveAttribute('title', /^Pop out after this call/);
    await expectHears(frame, levels, 'framed, the pop-out waiting: the widget hears');
    expect(events.slice(seen).some((e) => e.type === 'CALL_CLOSED'), 'the call was not dropped').toBe(false);

    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(ui.getByRole('heading', { name: /Wrap-up/ })).toBeVisible({ timeout: 10_000 });
    await expect(popOut).toBeEnabled();
    const [popup] = await Promise.all([page.waitForEvent('popup'), popOut.click()]);
    await expect(popup.getByText('Phone line: ready')).toBeVisible({ timeout: 15_000 });
    await expect(ui.getByRole('heading', { name: 'Switchboard is open in its own window.' })).toBeVisible();
    expect((await phone('dial', `sip:pia@${rig.SIP_DOMAIN}`)).ok).toBeTruthy();
    await expect(popup.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible({ timeout: 10_000 });
    await expect(ui.getByRole('alertdialog')).toHaveCount(0);
    expect((await phone('hangup')).ok).toBeTruthy();
    await expect(popup.getByRole('alertdialog', { name: /Incoming call/ })).toHaveCount(0, { timeout: 10_000 });
    await popup.close();
    await page.close();
  });
});
