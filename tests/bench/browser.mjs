// The browser half of scripts/bench (issue 17): the widget (dist/, served by switchboard-hub
// --static) next to a plain page with the official signalr.min.js (tests/bench/plain.html,
// served by a tiny static server here), both against the same hub, in Debian's Chromium via
// Playwright (playwright-core from tests/e2e/node_modules). Every figure is taken from both in
// the same run, interleaved; the report gives ratios (absolute times on shared machines are noise).
//
//   node tests/bench/browser.mjs [--quick] [--cold-only] [--pairs N] --hub-bin PATH --dist DIR --out FILE.json
//
// Measures (a) payload before Connected (gzip -9 of documents, scripts, styles and wasm, and
// every byte received); (b) cold start navigation -> role=status "Connected", fresh browser
// context each time, interleaved pairs, also with the CPU throttled 4x, and each page reloaded
// in its context (a CRM reload: HTTP and code caches warm); (c) notification latency
// REST send -> role=alertdialog in the DOM or shown (MutationObserver in the page; both clocks are
// performance.timeOrigin + performance.now(), the wall clock of this machine); (d) JS heap (after
// a forced GC), wasm memory and DOM nodes before and after many notifications.
// Exits non-zero only when something broke (a page never connected, a call never showed).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants as zlibConstants } from "node:zlib";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const require = createRequire(path.join(root, "tests/e2e/package.json"));
const { chromium } = require("playwright-core");

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const QUICK = flag("--quick");
// --cold-only: the cold starts alone (with their breakdown and the payload), for trying a change.
const COLD_ONLY = flag("--cold-only");
const HUB_BIN = path.resolve(option("--hub-bin", path.join(root, "target/release/switchboard-hub")));
const DIST = path.resolve(option("--dist", path.join(root, "dist")));
const OUT = option("--out", null);
const PAIRS = Number(option("--pairs", QUICK ? 2 : 15));
const THROTTLED_PAIRS = Number(option("--throttled-pairs", QUICK ? 1 : 15));
const NOTIFICATIONS = Number(option("--notifications", QUICK ? 50 : 1000));
const IDLE_SECONDS = Number(option("--idle-seconds", QUICK ? 2 : 60));
const ACCESS_KEY = "bench-access-key-0123456789";
const SIGNALR_JS = path.join(root, "tests/interop/node_modules/@microsoft/signalr/dist/browser/signalr.min.js");
const DEADLINE = Date.now() + (QUICK ? 120_000 : 1_800_000); // the whole run, hard bound
const STEP_MS = 30_000; // any single wait

const log = (...a) => console.error("bench:", ...a);
const now = () => performance.timeOrigin + performance.now();
function checkDeadline() {
  if (Date.now() > DEADLINE) throw new Error("the run's deadline passed");
}

// ---- the hub --------------------------------------------------------------------------------
async function startHub() {
  if (!existsSync(HUB_BIN)) throw new Error(`no hub binary at ${HUB_BIN}`);
  const hub = spawn(HUB_BIN, [
    "--listen", "127.0.0.1:0", "--static", DIST, "--access-key", ACCESS_KEY, "--ring-timeout", "600",
    // Delivery is measured here, not routing: every agent state may be rung (docs/agent-state.md).
    "--routable-state", "*",
    "--max-connections-per-address", "100000", "--negotiates-per-second-per-address", "10000",
    "--negotiates-per-second-per-user", "10000",
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } });
  const stderr = [];
  hub.stderr.setEncoding("utf8").on("data", (c) => { stderr.push(c); if (stderr.length > 50) stderr.shift(); });
  const base = await new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error("the hub printed nothing in 30 s")), 30_000);
    hub.stdout.setEncoding("utf8").on("data", (chunk) => {
      buffered += chunk;
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\s*$/m.exec(buffered);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    hub.once("exit", (code) => { clearTimeout(timer); reject(new Error(`hub exited (${code}): ${stderr.join("")}`)); });
  });
  return { base, pid: hub.pid, stop: () => stopChild(hub) };
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); resolve(); }, 5_000);
    child.once("exit", () => { clearTimeout(timer); resolve(); });
    child.kill("SIGTERM");
  });
}

// ---- the plain page's static server ---------------------------------------------------------
function startPlainServer() {
  const files = {
    "/": { body: readFileSync(path.join(here, "plain.html")), type: "text/html; charset=utf-8", cache: "no-cache" },
    // Cached as the hub caches the widget's hashed files (a versioned CDN copy of the library).
    "/signalr.min.js": { body: readFileSync(SIGNALR_JS), type: "text/javascript; charset=utf-8",
      cache: "public, max-age=31536000, immutable" },
  };
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) { res.writeHead(404).end(); return; }
    // Uncompressed, as switchboard-hub --static serves the widget today: same footing.
    res.writeHead(200, { "content-type": file.type, "cache-control": file.cache }).end(file.body);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => {
    resolve({ base: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) });
  }));
}

// ---- REST send (Azure SignalR REST API, HS256 with the access key, aud = the URL) -----------
const b64url = (data) => Buffer.from(data).toString("base64url");
function restToken(url) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify({ aud: url, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const signature = createHmac("sha256", ACCESS_KEY).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}
async function sendCall(hubBase, user, i) {
  const url = `${hubBase}/api/v1/hubs/switchboard/users/${encodeURIComponent(user)}`;
  const token = restToken(url);
  const body = JSON.stringify({ target: "IncomingCall", arguments: [{ phoneNumber: "+14255550123", callerName: `Bench caller ${i}` }] });
  const sentAt = now();
  const response = await fetch(url, {
    method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body,
    signal: AbortSignal.timeout(STEP_MS),
  });
  if (response.status !== 202) throw new Error(`REST send: HTTP ${response.status} ${await response.text()}`);
  return sentAt;
}

// ---- in-page probe (same script in both pages) ----------------------------------------------
// Records when a role=status element first reads "Connected" (ms since navigation start),
// captures the wasm memory of any instance, and (once armed) the wall-clock time of every
// role=alertdialog added to the DOM or shown (its `hidden` attribute removed).
const PROBE = () => {
  const bench = (window.__bench = { connectedAt: null, dialogs: [], frames: [], wasmMemory: null });
  // When each WebSocket frame carrying an IncomingCall arrives (wall clock), before the page's
  // own handler runs: splits the latency into send -> frame and frame -> dialog.
  const Native = window.WebSocket;
  if (Native) {
    const add = Native.prototype.addEventListener;
    const stamp = (event) => {
      bench.points.firstMessage ??= performance.now();
      if (typeof event.data === "string" && event.data.includes('"IncomingCall"')) {
        bench.frames.push(performance.timeOrigin + performance.now());
      }
    };
    const first = (socket) => {
      if (!socket.__benchStamped) {
        socket.__benchStamped = true;
        add.call(socket, "message", stamp);
      }
    };
    Native.prototype.addEventListener = function (type, ...rest) {
      if (type === "message") first(this);
      return add.call(this, type, ...rest);
    };
    const onmessage = Object.getOwnPropertyDescriptor(Native.prototype, "onmessage");
    Object.defineProperty(Native.prototype, "onmessage", {
      configurable: true, enumerable: onmessage.enumerable,
      get() { return onmessage.get.call(this); },
      set(handler) { first(this); onmessage.set.call(this, handler); },
    });
  }
  // Cold-start breakdown (ms since navigation start): the page's WebSocket (constructed, open,
  // first message = the SignalR handshake answer), the wasm instantiation (called, resolved) and
  // the first element added to <body> (the first render); the rest comes from Resource Timing.
  bench.points = {};
  const point = (name) => { bench.points[name] ??= performance.now(); };
  if (Native) {
    window.WebSocket = new Proxy(Native, {
      construct(target, a) {
        point("webSocketCreated");
        const socket = Reflect.construct(target, a);
        Native.prototype.addEventListener.call(socket, "open", () => point("webSocketOpen"));
        return socket;
      },
    });
  }
  new MutationObserver((mutations, self) => {
    if (document.body && document.body.querySelector("*:not(script)")) {
      point("firstElement");
      self.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
  const connected = () =>
    [...document.querySelectorAll("[role=status]")].some((e) => e.textContent.trim() === "Connected");
  const watch = new MutationObserver(() => {
    if (bench.connectedAt === null && connected()) {
      bench.connectedAt = performance.now();
      watch.disconnect();
    }
  });
  watch.observe(document, { childList: true, subtree: true, characterData: true });
  for (const name of ["instantiateStreaming", "instantiate"]) {
    const original = WebAssembly[name];
    if (!original) continue;
    WebAssembly[name] = async function (...a) {
      point(`${name}Called`);
      const result = await original.apply(this, a);
      point("wasmInstantiated");
      const instance = result.instance ?? result;
      if (instance?.exports?.memory) bench.wasmMemory = instance.exports.memory;
      return result;
    };
  }
  // Timer wake-ups (idle cost): every setTimeout/setInterval/requestAnimationFrame callback run.
  bench.wakeups = 0;
  for (const name of ["setTimeout", "setInterval", "requestAnimationFrame"]) {
    const original = window[name];
    window[name] = function (callback, ...rest) {
      if (typeof callback !== "function") return original.call(this, callback, ...rest);
      return original.call(this, function (...a) { bench.wakeups++; return callback.apply(this, a); }, ...rest);
    };
  }
  bench.arm = () => {
    new MutationObserver((mutations) => {
      const t = performance.timeOrigin + performance.now();
      for (const m of mutations) {
        // Shown: a dialog that stays in the page (the widget's) loses its `hidden` attribute.
        if (m.type === "attributes" && m.target.matches("[role=alertdialog]") && !m.target.hidden) {
          bench.dialogs.push(t);
        }
        for (const node of m.addedNodes) {
          if (node.nodeType === 1 && (node.matches("[role=alertdialog]:not([hidden])") || node.querySelector("[role=alertdialog]:not([hidden])"))) {
            bench.dialogs.push(t);
          }
        }
      }
    }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["hidden"] });
  };
};

const LAUNCH = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
};

// BENCH_WIDGET_CONFIG='{"hub":{"statefulReconnect":false}}' merges into the widget's config.json
// (one level deep), to try what a setting changes.
const CONFIG_OVERRIDE = process.env.BENCH_WIDGET_CONFIG ? JSON.parse(process.env.BENCH_WIDGET_CONFIG) : null;

async function openPage(browser, url, { throttle = 1, record = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 360, height: 640 } });
  if (CONFIG_OVERRIDE) {
    await context.route("**/config.json", async (route) => {
      const response = await route.fetch();
      const config = await response.json();
      for (const [key, value] of Object.entries(CONFIG_OVERRIDE)) {
        config[key] = value && typeof value === "object" && !Array.isArray(value) ? { ...config[key], ...value } : value;
      }
      await route.fulfill({ response, json: config });
    });
  }
  await context.addInitScript(PROBE);
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  if (throttle > 1) await cdp.send("Emulation.setCPUThrottlingRate", { rate: throttle });
  const responses = [];
  if (record) page.on("response", (r) => responses.push(r));
  await page.goto(url, { waitUntil: "commit", timeout: STEP_MS });
  await page.waitForFunction(() => window.__bench?.connectedAt != null, null, { timeout: STEP_MS * throttle, polling: 50 });
  const connectedMs = await page.evaluate(() => window.__bench.connectedAt);
  const timeline = await page.evaluate(TIMELINE);
  return { context, page, cdp, connectedMs, responses, timeline };
}

// The cold-start breakdown of one page (ms since navigation start; null where the page has no
// such step): Navigation and Resource Timing (responseEnd of each download, startTime and
// responseEnd of the token and negotiate requests) and the probe's points. The widget's glue JS
// is the script that is not signalr.min.js.
const TIMELINE = () => {
  const nav = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const find = (test) => resources.find((e) => test(new URL(e.name).pathname));
  const end = (e) => (e ? e.responseEnd : null);
  const p = window.__bench.points;
  const script = find((path) => path.endsWith(".js"));
  const token = find((path) => path.endsWith("/dev/token"));
  const negotiate = find((path) => path.endsWith("/negotiate"));
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {
    documentReceived: nav ? nav.responseEnd : null,
    scriptReceived: end(script),
    wasmReceived: end(find((path) => path.endsWith(".wasm"))),
    wasmInstantiated: p.wasmInstantiated ?? null,
    streaming: p.instantiateStreamingCalled != null,
    firstElement: p.firstElement ?? null,
    firstContentfulPaint: paint ? paint.startTime : null,
    configReceived: end(find((path) => path.endsWith("/config.json"))),
    tokenSent: token ? token.startTime : null,
    tokenReceived: end(token),
    negotiateSent: negotiate ? negotiate.startTime : null,
    negotiateReceived: end(negotiate),
    webSocketCreated: p.webSocketCreated ?? null,
    webSocketOpen: p.webSocketOpen ?? null,
    handshakeAnswered: p.firstMessage ?? null,
    connected: window.__bench.connectedAt,
    // The widget's own User Timing marks (browser.rs `mark`): mounted, config, hub-start, token, desk.
    marks: Object.fromEntries(performance.getEntriesByType("mark")
      .filter((m) => m.name.startsWith("switchboard:")).map((m) => [m.name.slice(12), m.startTime])),
    requests: resources.filter((e) => e.startTime < window.__bench.connectedAt)
      .map((e) => `${new URL(e.name).pathname} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`),
  };
};

const KINDS = ["widget", "plain"];
function urlOf(kind, ctx, user) {
  return kind === "widget"
    ? `${ctx.hub.base}/?user=${encodeURIComponent(user)}`
    : `${ctx.plain.base}/?hub=${encodeURIComponent(ctx.hub.base)}&user=${encodeURIComponent(user)}`;
}

// (a) payload
async function payload(responses) {
  const files = [];
  let received = 0; // on the wire: encoded bodies and headers (Playwright's request.sizes())
  let decoded = 0; // after Content-Encoding is undone (what r.body() returns)
  for (const r of responses) {
    let body;
    try { body = await r.body(); } catch { continue; }
    decoded += body.length;
    try {
      const sizes = await r.request().sizes();
      received += sizes.responseBodySize + sizes.responseHeadersSize;
    } catch { received += body.length; }
    const type = r.request().resourceType();
    const url = new URL(r.url());
    const isWasm = url.pathname.endsWith(".wasm") || (r.headers()["content-type"] ?? "").includes("wasm");
    if (!["document", "script", "stylesheet"].includes(type) && !isWasm) continue;
    files.push({ path: url.pathname, type: isWasm ? "wasm" : type, bytes: body.length,
      gzip: gzipSync(body, { level: zlibConstants.Z_BEST_COMPRESSION }).length });
  }
  const sum = (key) => files.reduce((s, f) => s + f[key], 0);
  return { files, bytes: sum("bytes"), gzip: sum("gzip"), receivedBytes: received, decodedBytes: decoded,
    encodings: [...new Set(responses.map((r) => r.headers()["content-encoding"] ?? "identity"))], requests: responses.length };
}

// (b) cold start
async function coldStarts(browser, ctx, pairs, throttle, label) {
  const out = { widget: [], plain: [] };
  const warm = { widget: [], plain: [] };
  const timelines = { widget: [], plain: [] };
  let firstPayload = null;
  for (let i = 0; i < pairs; i++) {
    checkDeadline();
    const order = i % 2 === 0 ? KINDS : [...KINDS].reverse();
    for (const kind of order) {
      const record = throttle === 1 && i === 0;
      const opened = await openPage(browser, urlOf(kind, ctx, `bench-cold-${kind}-${label}-${i}`), { throttle, record });
      out[kind].push(Math.round(opened.connectedMs * 10) / 10);
      timelines[kind].push(opened.timeline);
      if (record) (firstPayload ??= {})[kind] = await payload(opened.responses);
      // The same page reloaded in the same context (a CRM reload): scripts and wasm from the
      // HTTP cache (the hub serves hashed names `immutable`), V8's code cache where it has one.
      await opened.page.reload({ waitUntil: "commit", timeout: STEP_MS });
      await opened.page.waitForFunction(() => window.__bench?.connectedAt != null, null, { timeout: STEP_MS * throttle, polling: 50 });
      warm[kind].push(Math.round((await opened.page.evaluate(() => window.__bench.connectedAt)) * 10) / 10);
      await opened.context.close();
    }
    log(`cold start ${label} pair ${i + 1}/${pairs}: widget ${out.widget.at(-1)} ms, plain ${out.plain.at(-1)} ms; reloaded: widget ${warm.widget.at(-1)} ms, plain ${warm.plain.at(-1)} ms`);
  }
  return { samples: out, payload: firstPayload, timelines, warm };
}

// (c) + (d) notifications: interleaved sends, each dialog dismissed before the next send.
async function heap(opened) {
  await opened.cdp.send("HeapProfiler.collectGarbage");
  const { metrics } = await opened.cdp.send("Performance.getMetrics");
  const metric = (name) => metrics.find((m) => m.name === name)?.value ?? null;
  const inPage = await opened.page.evaluate(() => ({
    domElements: document.getElementsByTagName("*").length,
    wasmBytes: window.__bench.wasmMemory ? window.__bench.wasmMemory.buffer.byteLength : 0,
  }));
  return { jsHeapUsed: metric("JSHeapUsedSize"), nodes: metric("Nodes"), listeners: metric("JSEventListeners"), ...inPage };
}

const WARMUP = 2;
/** Latency split per page: REST send -> frame at the page's WebSocket, frame -> dialog. */
const split = { widget: { toFrame: [], frameToDialog: [] }, plain: { toFrame: [], frameToDialog: [] } };
const kinds = new WeakMap();
const pageKind = (page) => kinds.get(page);

/** One call to `user`'s page: REST send, wait for the dialog, dismiss it. Returns the latency. */
async function notifyOnce(ctx, { page, user }, i) {
  const [before, framesBefore] = await page.evaluate(() => [window.__bench.dialogs.length, window.__bench.frames.length]);
  const sentAt = await sendCall(ctx.hub.base, user, i);
  await page.waitForFunction((n) => window.__bench.dialogs.length > n, before, { timeout: STEP_MS, polling: 5 });
  const [shownAt, frameAt] = await page.evaluate(([n, f]) => [window.__bench.dialogs[n], window.__bench.frames[f]], [before, framesBefore]);
  if (i >= 0 && frameAt !== undefined && frameAt !== null) {
    const r = (v) => Math.round(v * 1000) / 1000;
    split[pageKind(page)]?.toFrame.push(r(frameAt - sentAt));
    split[pageKind(page)]?.frameToDialog.push(r(shownAt - frameAt));
  }
  // Dismiss (the widget's Reject reaches the hub; the plain page's removes its element).
  await page.evaluate(() => document.querySelector("[role=alertdialog]:not([hidden]) .btn--reject").click());
  await page.waitForFunction(() => !document.querySelector("[role=alertdialog]:not([hidden])"), null, { timeout: STEP_MS, polling: 5 });
  return Math.round((shownAt - sentAt) * 1000) / 1000;
}

async function notifications(browser, ctx, count) {
  const pages = {};
  for (const kind of KINDS) {
    const user = `bench-note-${kind}-${Date.now().toString(36)}`;
    pages[kind] = { user, ...(await openPage(browser, urlOf(kind, ctx, user))) };
    kinds.set(pages[kind].page, kind);
    await pages[kind].cdp.send("Performance.enable");
    await pages[kind].page.evaluate(() => window.__bench.arm());
  }
  const latency = { widget: [], plain: [] };
  const memory = { widget: [], plain: [] };
  // Two warm-up calls each (not counted): the first call's one-off work (code paths compiled,
  // caches filled) is not what "flat over many notifications" asks about.
  for (let w = 0; w < WARMUP; w++) for (const kind of KINDS) await notifyOnce(ctx, pages[kind], -1 - w);
  const checkpoints = new Set(QUICK ? [0, count]
    : [0, Math.floor(count / 4), Math.floor(count / 2), Math.floor((3 * count) / 4), count]);
  for (let i = 0; i <= count; i++) {
    if (checkpoints.has(i)) {
      for (const kind of KINDS) memory[kind].push({ after: i, ...(await heap(pages[kind])) });
    }
    if (i === count) break;
    checkDeadline();
    const order = i % 2 === 0 ? KINDS : [...KINDS].reverse();
    for (const kind of order) latency[kind].push(await notifyOnce(ctx, pages[kind], i));
    if ((i + 1) % Math.max(1, Math.floor(count / 10)) === 0) log(`notifications ${i + 1}/${count}`);
  }
  for (const kind of KINDS) await pages[kind].context.close();
  return { latency, latencySplit: split, memory };
}

// (e) idle cost: both pages connected and left alone for the same minute (foreground tabs:
// headless Chromium shows every page, so this is the upper bound of a background tab's cost).
async function idleCost(browser, ctx, seconds) {
  const pages = {};
  for (const kind of KINDS) {
    pages[kind] = await openPage(browser, urlOf(kind, ctx, `bench-idle-${kind}-${Date.now().toString(36)}`));
    await pages[kind].cdp.send("Performance.enable");
  }
  const sample = async (opened) => {
    const { metrics } = await opened.cdp.send("Performance.getMetrics");
    const metric = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
    return { task: metric("TaskDuration"), script: metric("ScriptDuration"),
      wakeups: await opened.page.evaluate(() => window.__bench.wakeups) };
  };
  const start = {};
  for (const kind of KINDS) start[kind] = await sample(pages[kind]);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const out = { seconds };
  for (const kind of KINDS) {
    const end = await sample(pages[kind]);
    const perMinute = 60 / seconds;
    out[kind] = {
      wakeupsPerMinute: Math.round((end.wakeups - start[kind].wakeups) * perMinute * 10) / 10,
      cpuMsPerMinute: Math.round((end.task - start[kind].task) * 1000 * perMinute * 10) / 10,
      scriptMsPerMinute: Math.round((end.script - start[kind].script) * 1000 * perMinute * 10) / 10,
    };
    await pages[kind].context.close();
  }
  return out;
}

// ---- main -----------------------------------------------------------------------------------
async function main() {
  if (!existsSync(path.join(DIST, "index.html"))) throw new Error(`no widget build in ${DIST} (scripts/build-widget)`);
  if (!existsSync(SIGNALR_JS)) throw new Error(`no ${SIGNALR_JS} (npm ci in tests/interop)`);
  const ctx = { hub: await startHub(), plain: await startPlainServer() };
  let browser;
  const stopAll = async () => {
    await browser?.close().catch(() => {});
    await ctx.plain.stop();
    await ctx.hub.stop();
  };
  process.once("SIGINT", () => stopAll().then(() => process.exit(130)));
  process.once("SIGTERM", () => stopAll().then(() => process.exit(143)));
  try {
    browser = await chromium.launch(LAUNCH);
    log(`hub ${ctx.hub.base} (${HUB_BIN}), plain page ${ctx.plain.base}, Chromium ${browser.version()}`);
    const result = { quick: QUICK, chromium: browser.version(), hubBin: HUB_BIN };
    const cold = await coldStarts(browser, ctx, PAIRS, 1, "normal");
    result.payload = cold.payload;
    result.coldStart = cold.samples;
    result.coldStartTimelines = cold.timelines;
    result.reloadStart = cold.warm;
    if (COLD_ONLY) {
      result.ok = true;
      const text = JSON.stringify(result, null, 1);
      if (OUT) writeFileSync(OUT, text); else console.log(text);
      return;
    }
    result.coldStartThrottled4x = (await coldStarts(browser, ctx, THROTTLED_PAIRS, 4, "cpu4x")).samples;
    Object.assign(result, await notifications(browser, ctx, NOTIFICATIONS));
    result.idle = await idleCost(browser, ctx, IDLE_SECONDS);
    log(`idle ${IDLE_SECONDS} s: ${JSON.stringify(result.idle)}`);
    result.ok = true;
    const text = JSON.stringify(result, null, 1);
    if (OUT) writeFileSync(OUT, text); else console.log(text);
  } finally {
    await stopAll();
  }
}

main().catch((e) => {
  console.error(`bench: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
