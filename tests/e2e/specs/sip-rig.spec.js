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
import { spawn, execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import readline from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test, expect, chromium } from '@playwright/test';
import { HUB_BIN } from './hub.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RIG = join(ROOT, 'scripts/sip-rig');
const OUT = fileURLToPath(new URL('../.out/sip-rig/', import.meta.url));
const PAGE_DIR = join(OUT, 'page');
const RIG_DIR = join(OUT, 'rig');
const NETNS = `sbsip-${process.pid}`;
const HUB_PORT = 18090; // inside the namespace, which has ports of its own
const CTRL_PORT = 4444;
const CUSTOMER_HZ = 440; // baresip's tone (scripts/sip-rig)
const AGENT_HZ = 1000; // the browser's fake microphone
const SECRET = `e2e-${Math.random().toString(36).slice(2)}`;
const ENV = { ...process.env, SIP_RIG_NETNS: NETNS, SIP_RIG_DIR: RIG_DIR, SWITCHBOARD_SIP_SECRET: SECRET, SIP_RIG_TONE_HZ: String(CUSTOMER_HZ) };

let rig = null;
let rigStarting = false;
let hub;
let ctrl;
let browser;
const events = [];

/** Spawns a process and waits (bounded) for a stdout line matching `ready`. */
function start(cmd, args, ready, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => { child.kill(); reject(new Error(`${what}: not ready in 15 s\n${err}`)); }, 15_000);
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (ready(line)) { clearTimeout(timer); resolve(child); }
      child.emit('line', line);
    });
    child.stderr.on('data', (d) => { err = (err + d).slice(-4000); if (process.env.E2E_DEBUG) process.stderr.write(d); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}\n${err}`)); });
  });
}

function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 5_000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    child.kill('SIGTERM');
  });
}

/** A ctrl_tcp command to baresip; resolves with its response (bounded). */
function phone(command, params = '') {
  const token = `t${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ctrl.off('message', onMessage); reject(new Error(`baresip: no answer to ${command} in 5 s`)); }, 5_000);
    const onMessage = (m) => {
      if (m.response && m.token === token) { clearTimeout(timer); ctrl.off('message', onMessage); resolve(m); }
    };
    ctrl.on('message', onMessage);
    ctrl.stdin.write(`${JSON.stringify({ command, params, token })}\n`);
  });
}

/** Power (dBFS) of `hz` in 16-bit PCM mono samples, by the Goertzel algorithm. */
function goertzelDb(samples, rate, hz) {
  const k = 2 * Math.cos((2 * Math.PI * hz) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x / 32768 + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  const amplitude = (2 * Math.sqrt(Math.max(power, 0))) / samples.length; // a full-scale sine gives 1
  return Math.round(20 * Math.log10(Math.max(amplitude, 1e-9)) * 10) / 10;
}

/** The PCM of a WAV file (16-bit; the first channel), tolerant of a header written before the end. */
function readWav(file) {
  const data = readFileSync(file);
  let offset = 12;
  let rate = 8000;
  let channels = 1;
  while (offset + 8 <= data.length) {
    const id = data.toString('ascii', offset, offset + 4);
    const size = data.readUInt32LE(offset + 4);
    if (id === 'fmt ') {
      channels = data.readUInt16LE(offset + 10);
      rate = data.readUInt32LE(offset + 12);
    }
    if (id === 'data') {
      const end = size > 0 && offset + 8 + size <= data.length ? offset + 8 + size : data.length;
      const samples = [];
      for (let i = offset + 8; i + 1 < end; i += 2 * channels) samples.push(data.readInt16LE(i));
      return { rate, samples };
    }
    offset += 8 + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}

/** Waits until the page hears the customer's tone; then the median of ten readings over a second. */
async function expectHearsCustomer(page) {
  await expect.poll(async () => {
    const now = await page.evaluate((f) => window.phone.levels(f), [CUSTOMER_HZ, AGENT_HZ]);
    return now !== null && now[CUSTOMER_HZ] > -50;
  }, { timeout: 15_000, message: 'the remote stream carries baresip\'s tone' }).toBe(true);
  const readings = [];
  for (let i = 0; i < 10; i++) {
    readings.push(await page.evaluate((f) => window.phone.levels(f), [CUSTOMER_HZ, AGENT_HZ]));
    await page.waitForTimeout(100);
  }
  const median = (hz) => readings.map((r) => r[hz]).sort((a, b) => a - b)[5];
  const heard = { [CUSTOMER_HZ]: median(CUSTOMER_HZ), [AGENT_HZ]: median(AGENT_HZ) };
  console.log(`browser heard (median of 10 FFT readings): ${CUSTOMER_HZ} Hz at ${heard[CUSTOMER_HZ]} dB, ${AGENT_HZ} Hz at ${heard[AGENT_HZ]} dB`);
  expect(heard[CUSTOMER_HZ]).toBeGreaterThan(-40);
  expect(heard[CUSTOMER_HZ] - heard[AGENT_HZ]).toBeGreaterThan(30);
}

const recordings = () => readdirSync(join(RIG_DIR, 'recordings')).filter((f) => f.endsWith('-dec.wav'));

/** What baresip heard in the call recorded after `before` (sndfile's *-dec.wav): the agent's tone, not its own. */
function expectRecordedAgent(before) {
  const fresh = recordings().filter((f) => !before.includes(f));
  expect(fresh.length, `new recordings: ${fresh.join(', ')} (before: ${before.join(', ')})`).toBe(1);
  const { rate, samples } = readWav(join(RIG_DIR, 'recordings', fresh[0]));
  expect(samples.length / rate, 'seconds recorded').toBeGreaterThan(2);
  const middle = samples.slice(Math.floor(samples.length / 2) - rate, Math.floor(samples.length / 2) + rate);
  const agent = goertzelDb(middle, rate, AGENT_HZ);
  const customer = goertzelDb(middle, rate, CUSTOMER_HZ);
  console.log(`baresip recorded (${fresh[0]}, ${(samples.length / rate).toFixed(1)} s at ${rate} Hz): ${AGENT_HZ} Hz at ${agent} dB, ${CUSTOMER_HZ} Hz at ${customer} dB`);
  expect(agent).toBeGreaterThan(-30);
  expect(agent - customer).toBeGreaterThan(30);
}

test.describe('SIP rig: JsSIP ⇄ Kamailio ⇄ rtpengine ⇄ baresip, in a loopback-only namespace', () => {
  test.describe.configure({ mode: 'serial', timeout: 120_000 });

  test.beforeAll(async () => {
    test.setTimeout(90_000);
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(PAGE_DIR, { recursive: true });
    copyFileSync(fileURLToPath(new URL('../sip-phone/index.html', import.meta.url)), join(PAGE_DIR, 'index.html'));
    copyFileSync(fileURLToPath(new URL('../node_modules/jssip/dist/jssip.min.js', import.meta.url)), join(PAGE_DIR, 'jssip.min.js'));

    rigStarting = true;
    const started = await run(RIG, ['start'], { env: ENV, timeout: 60_000 });
    rig = Object.fromEntries(started.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    // The agent's tone: Chromium loops it as the microphone.
    await run('sox', ['-q', '-n', '-r', '48000', '-c', '1', '-b', '16', join(OUT, 'agent-tone.wav'), 'synth', '10', 'sine', String(AGENT_HZ), 'vol', '0.5'], { timeout: 10_000 });

    hub = await start(RIG, ['exec', HUB_BIN, '--listen', `127.0.0.1:${HUB_PORT}`, '--static', PAGE_DIR,
      '--access-key', 'e2e-sip-key-0123456789', '--sip-secret', SECRET, '--sip-credentials-ttl', '600',
      // The widget's pages may open the SIP WebSocket (CSP connect-src, the hub's --connect-src).
      '--connect-src', rig.SIP_WS_URI],
    (l) => l.startsWith('listening on'), 'switchboard-hub');
    ctrl = await start(RIG, ['exec', 'node', join(ROOT, 'tests/sip-rig/ctrl.mjs'), String(CTRL_PORT)],
      (l) => l.includes('"connected":true'), 'baresip ctrl_tcp client');
    ctrl.on('line', (line) => {
      try { const m = JSON.parse(line); if (m.event) events.push(m); ctrl.emit('message', m); } catch { /* not JSON */ }
    });

    browser = await chromium.launch({
      executablePath: join(RIG_DIR, 'bin/chromium'), // /usr/bin/chromium under ip netns exec
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${join(OUT, 'agent-tone.wav')}`,
        '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection'],
    });
  });

  test.afterAll(async () => {
    await browser?.close().catch(() => {});
    ctrl?.stdin.end();
    await stop(ctrl);
    await stop(hub);
    if (rigStarting) await run(RIG, ['stop'], { env: ENV, timeout: 30_000 }).catch((e) => console.error(`sip-rig stop: ${e}`));
  });

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
