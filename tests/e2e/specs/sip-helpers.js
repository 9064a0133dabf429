// The SIP rig as sip-rig.spec.js and softphone.spec.js drive it (scripts/sip-rig): Kamailio,
// rtpengine and baresip, the hub and Chromium, all in one loopback-only network namespace
// (../shared/FIELD-NOTES.md), plus the tone checks both specs make. Not a spec: a module they import.
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import readline from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, chromium } from '@playwright/test';
import { HUB_BIN } from './hub.js';

export const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const RIG = join(ROOT, 'scripts/sip-rig');
export const CTRL_PORT = 4444;
export const CUSTOMER_HZ = 440; // baresip's tone (scripts/sip-rig)
export const AGENT_HZ = 1000; // the browser's fake microphone

/** Power (dBFS) of `hz` in 16-bit PCM mono samples, by the Goertzel algorithm. */
export function goertzelDb(samples, rate, hz) {
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
export function readWav(file) {
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

/**
 * The median of ten readings over a second of `read(page)` ({ customer, agent } levels in dBFS, or
 * null), once `ok(reading)` held (bounded).
 */
export async function settledLevels(page, read, ok, message) {
  await expect.poll(async () => { const l = await read(page); return l !== null && ok(l); }, { timeout: 15_000, message }).toBe(true);
  const readings = [];
  for (let i = 0; i < 10; i++) {
    readings.push(await read(page));
    await page.waitForTimeout(100);
  }
  const median = (k) => readings.map((r) => r[k]).sort((x, y) => x - y)[5];
  return { customer: median('customer'), agent: median('agent') };
}

/** Waits until the page hears the customer's tone, loud and well above the agent's own; logs `what`. */
export async function expectHearsCustomer(page, read, what) {
  const heard = await settledLevels(page, read, (l) => l.customer > -50, 'the remote stream carries baresip\'s tone');
  console.log(`${what} ${CUSTOMER_HZ} Hz at ${heard.customer} dB, ${AGENT_HZ} Hz at ${heard.agent} dB`);
  expect(heard.customer).toBeGreaterThan(-40);
  expect(heard.customer - heard.agent).toBeGreaterThan(30);
}

/** `page` (a widget) takes the ringing call. */
export async function acceptOn(page) {
  const dialog = page.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(dialog).toBeVisible({ timeout: 10_000 });
  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect(page.getByRole('button', { name: 'Hang up' })).toBeVisible({ timeout: 10_000 });
}

/** The agent on `page` opens Transfer, types `target` and presses `button` ('Transfer now' or 'Consult first'). */
export async function transfer(page, target, button) {
  await page.getByRole('button', { name: 'Transfer', exact: true }).click();
  await page.getByLabel('Transfer to').fill(target);
  await page.getByRole('button', { name: button }).click();
}

/**
 * One rig for one spec: its own namespace (`netns`), output folder (`out`), hub port and SIP
 * secret. `start`ed processes run with the rig's environment; `teardown` ends all it started.
 */
export function sipRig({ out, netns, hubPort }) {
  const rigDir = join(out, 'rig');
  const secret = `e2e-${Math.random().toString(36).slice(2)}`;
  const env = { ...process.env, SIP_RIG_NETNS: netns, SIP_RIG_DIR: rigDir, SWITCHBOARD_SIP_SECRET: secret, SIP_RIG_TONE_HZ: String(CUSTOMER_HZ) };
  const events = [];
  let rigStarting = false;
  let hub;
  let ctrl;
  let browser;

  /** Spawns a process and waits (bounded) for a stdout line matching `ready`. */
  function start(cmd, args, ready, what) {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
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

  /** An empty `out`, with `dir` (below it) made. */
  function clean(dir = out) {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  /** Starts the rig and writes the agent's tone; resolves with the rig's variables (SIP_WS_URI, ...). */
  async function startRig() {
    rigStarting = true;
    const started = await run(RIG, ['start'], { env, timeout: 60_000 });
    const rig = Object.fromEntries(started.stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    // The agent's tone: Chromium loops it as the microphone.
    await run('sox', ['-q', '-n', '-r', '48000', '-c', '1', '-b', '16', join(out, 'agent-tone.wav'), 'synth', '10', 'sine', String(AGENT_HZ), 'vol', '0.5'], { timeout: 10_000 });
    return rig;
  }

  /**
   * The hub (serving `staticDir`), baresip's ctrl_tcp client and Chromium, in the namespace;
   * resolves with the browser. `sipWsUri`: the rig's SIP WebSocket, which the pages may open
   * (CSP `connect-src`, the hub's `--connect-src`).
   */
  async function startHubPhoneAndBrowser(staticDir, accessKey, sipWsUri) {
    hub = await start(RIG, ['exec', HUB_BIN, '--listen', `127.0.0.1:${hubPort}`, '--static', staticDir,
      '--access-key', accessKey, '--sip-secret', secret, '--sip-credentials-ttl', '600',
      '--connect-src', sipWsUri],
    (l) => l.startsWith('listening on'), 'switchboard-hub');
    ctrl = await start(RIG, ['exec', 'node', join(ROOT, 'tests/sip-rig/ctrl.mjs'), String(CTRL_PORT)],
      (l) => l.includes('"connected":true'), 'baresip ctrl_tcp client');
    ctrl.on('line', (line) => {
      try { const m = JSON.parse(line); if (m.event) events.push(m); ctrl.emit('message', m); } catch { /* not JSON */ }
    });
    browser = await chromium.launch({
      executablePath: join(rigDir, 'bin/chromium'), // /usr/bin/chromium under ip netns exec
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${join(out, 'agent-tone.wav')}`,
        '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection'],
    });
    return browser;
  }

  async function teardown() {
    await browser?.close().catch(() => {});
    ctrl?.stdin.end();
    await stop(ctrl);
    await stop(hub);
    if (rigStarting) await run(RIG, ['stop'], { env, timeout: 30_000 }).catch((e) => console.error(`sip-rig stop: ${e}`));
  }

  /** Kamailio killed with SIGKILL and started again (scripts/sip-rig crash-kamailio): its registrations are gone. */
  const crashKamailio = () => run(RIG, ['crash-kamailio'], { env, timeout: 30_000 });

  /** iptables in the rig's namespace (the path cut and packet loss of the softphone e2e). */
  const iptables = (...args) => run(RIG, ['exec', 'iptables', ...args], { env, timeout: 10_000 });

  const recordings = () => readdirSync(join(rigDir, 'recordings')).filter((f) => f.endsWith('-dec.wav'));

  /** baresip's recording `file` (sndfile's *-dec.wav) holds the agent's tone, not its own. */
  function expectRecordingHoldsAgent(file) {
    const { rate, samples } = readWav(join(rigDir, 'recordings', file));
    expect(samples.length / rate, 'seconds recorded').toBeGreaterThan(2);
    const middle = samples.slice(Math.floor(samples.length / 2) - rate, Math.floor(samples.length / 2) + rate);
    const agent = goertzelDb(middle, rate, AGENT_HZ);
    const customer = goertzelDb(middle, rate, CUSTOMER_HZ);
    console.log(`baresip recorded (${file}, ${(samples.length / rate).toFixed(1)} s at ${rate} Hz): ${AGENT_HZ} Hz at ${agent} dB, ${CUSTOMER_HZ} Hz at ${customer} dB`);
    expect(agent).toBeGreaterThan(-30);
    expect(agent - customer).toBeGreaterThan(30);
  }

  return { secret, events, phone, clean, startRig, startHubPhoneAndBrowser, teardown, recordings, expectRecordingHoldsAgent, crashKamailio, iptables };
}

/** Levels (dBFS) of the customer's and the agent's tone in the widget's remote audio now (`target`: a page or frame). */
export function levels(target) {
  return target.evaluate(([a, b]) => {
    const el = document.querySelector('audio[data-switchboard-remote]');
    if (!el || !el.srcObject) return null;
    if (el.__meter?.stream !== el.srcObject) {
      // Chrome feeds WebRTC audio to Web Audio once a media element plays it (the widget's does).
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      ctx.createMediaStreamSource(el.srcObject).connect(analyser);
      el.__meter = { stream: el.srcObject, ctx, analyser };
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
    return { customer: at(a), agent: at(b) };
  }, [CUSTOMER_HZ, AGENT_HZ]);
}
