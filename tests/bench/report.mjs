// Turns the JSON of tests/bench/browser.mjs and switchboard-loadgen into one table of figures
// with their baselines and ratios (scripts/bench). With --write FILE, also writes the Markdown
// report (docs/benchmarks.md) with the machine and versions.
//
//   node tests/bench/report.mjs --browser B.json --hub H.json [--size size.txt] [--write FILE]
//     [--machine machine.txt] [--charts DIR-relative-to-FILE]
import { readFileSync, writeFileSync, existsSync } from "node:fs";

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : null;
};
const readJson = (file) => (file && existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null);
const browser = readJson(option("--browser"));
const hub = readJson(option("--hub"));
const size = option("--size") && existsSync(option("--size")) ? readFileSync(option("--size"), "utf8") : null;
const machine = option("--machine") && existsSync(option("--machine")) ? readFileSync(option("--machine"), "utf8") : null;

/** Nearest-rank percentile, as the load generator computes it. */
export function percentile(samples, p) {
  if (!samples?.length) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}
const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits));
const kb = (bytes) => (bytes === null || bytes === undefined ? null : bytes / 1024);
const ratio = (a, b) => (a === null || b === null || a === undefined || b === undefined || b === 0 ? "—" : `${(a / b).toFixed(2)}×`);

const rows = []; // [figure, ours, baseline, ratio, note]
const add = (figure, ours, baseline, digits, note = "") =>
  rows.push([figure, fmt(ours, digits), fmt(baseline, digits), ratio(ours, baseline), note]);

if (browser) {
  const p = browser.payload ?? {};
  add("payload before Connected, gzip -9 (KB): widget / plain page", kb(p.widget?.gzip), kb(p.plain?.gzip), 1,
    "documents, scripts, styles, wasm");
  add("bytes on the wire before Connected (KB)", kb(p.widget?.receivedBytes), kb(p.plain?.receivedBytes), 1,
    `encoded bodies + headers; widget encodings: ${(p.widget?.encodings ?? []).join(", ")} (Chromium offers br only over HTTPS)`);
  add("bytes after decoding, before Connected (KB)", kb(p.widget?.decodedBytes), kb(p.plain?.decodedBytes), 1,
    "what the page parses and compiles");
  const cs = browser.coldStart ?? {};
  add(`cold start → Connected, median of ${cs.widget?.length ?? 0} pairs (ms)`,
    percentile(cs.widget, 50), percentile(cs.plain, 50), 0, "fresh context each");
  // Where the cold start goes: the median of each step over the same pairs (ms since
  // navigation start), widget beside the plain page where the plain page has the step.
  const tl = browser.coldStartTimelines;
  if (tl) {
    const steps = [
      ["documentReceived", "index.html received"],
      ["scriptReceived", "JS received (widget glue / signalr.min.js)"],
      ["wasmReceived", "wasm received"],
      ["wasmInstantiated", "wasm compiled and instantiated"],
      ["mark:mounted", "widget mounted (mark)"],
      ["firstElement", "first element in <body>"],
      ["firstContentfulPaint", "first contentful paint"],
      ["configReceived", "config.json received"],
      ["mark:config", "config.json read (mark)"],
      ["mark:hub-start", "hub connection started (mark)"],
      ["tokenSent", "token request sent"],
      ["tokenReceived", "token received"],
      ["mark:token", "token in the hub client's hands (mark)"],
      ["negotiateSent", "negotiate sent"],
      ["negotiateReceived", "negotiate answered"],
      ["webSocketCreated", "WebSocket created"],
      ["webSocketOpen", "WebSocket open"],
      ["handshakeAnswered", "handshake answered (first frame)"],
      ["mark:desk", "desk view built (mark)"],
      ["connected", "\"Connected\" shown"],
    ];
    const median = (kind, key) => {
      const at = (t) => (key.startsWith("mark:") ? t?.marks?.[key.slice(5)] : t?.[key]);
      const values = (tl[kind] ?? []).map(at).filter((v) => typeof v === "number");
      return values.length ? percentile(values, 50) : null;
    };
    const streaming = (tl.widget ?? []).every((t) => t?.streaming);
    for (const [key, label] of steps) {
      const ours = median("widget", key);
      const base = median("plain", key);
      if (ours === null && base === null) continue;
      rows.push([`  cold start: ${label}, median (ms after navigation start)`, fmt(ours, 0), fmt(base, 0), ratio(ours, base),
        key === "wasmInstantiated" ? (streaming ? "instantiateStreaming" : "instantiate (not streaming)") : base === null ? "widget only" : ""]);
    }
  }
  const rs = browser.reloadStart;
  if (rs) add(`reload → Connected (same context: HTTP and code caches), median of ${rs.widget?.length ?? 0} pairs (ms)`,
    percentile(rs.widget, 50), percentile(rs.plain, 50), 0, "a CRM reload");
  const ct = browser.coldStartThrottled4x;
  if (ct) add(`cold start, CPU throttled 4×, median of ${ct.widget?.length ?? 0} pairs (ms)`,
    percentile(ct.widget, 50), percentile(ct.plain, 50), 0);
  const lat = browser.latency ?? {};
  if (browser.latency) add(`notification REST send → dialog in DOM, p50 of ${lat.widget?.length ?? 0} (ms)`,
    percentile(lat.widget, 50), percentile(lat.plain, 50), 2);
  if (browser.latency) add("notification REST send → dialog in DOM, p99 (ms)", percentile(lat.widget, 99), percentile(lat.plain, 99), 2);
  const split = browser.latencySplit;
  if (split) {
    for (const [key, label] of [["toFrame", "REST send → frame at the page's WebSocket"], ["frameToDialog", "frame → dialog in DOM"]]) {
      add(`  of which ${label}, p50 (ms)`, percentile(split.widget?.[key], 50), percentile(split.plain?.[key], 50), 2);
      add(`  of which ${label}, p99 (ms)`, percentile(split.widget?.[key], 99), percentile(split.plain?.[key], 99), 2);
    }
  }
  const idle = browser.idle;
  if (idle) {
    add(`idle: timer wake-ups per minute (over ${idle.seconds} s, foreground tab)`, idle.widget?.wakeupsPerMinute,
      idle.plain?.wakeupsPerMinute, 1, "setTimeout/setInterval/rAF callbacks");
    add("idle: main-thread CPU per minute (ms)", idle.widget?.cpuMsPerMinute, idle.plain?.cpuMsPerMinute, 1,
      "CDP TaskDuration");
  }
  const mem = browser.memory ?? {};
  if (browser.memory) {
    const first = (k) => mem[k]?.[0];
    const last = (k) => mem[k]?.at(-1);
    const n = last("widget")?.after ?? 0;
    const jsAndWasm = (m) => (m ? (m.jsHeapUsed ?? 0) + (m.wasmBytes ?? 0) : null);
    add("JS heap + wasm memory at start, after 2 warm-up calls (KB)", kb(jsAndWasm(first("widget"))), kb(jsAndWasm(first("plain"))), 0,
      "after a forced GC");
    add(`JS heap + wasm memory after ${n} notifications (KB)`, kb(jsAndWasm(last("widget"))), kb(jsAndWasm(last("plain"))), 0,
      `widget wasm memory ${fmt(kb(first("widget")?.wasmBytes), 0)} → ${fmt(kb(last("widget")?.wasmBytes), 0)} KB`);
    add(`JS heap alone, start → after ${n} (KB growth)`,
      kb((last("widget")?.jsHeapUsed ?? 0) - (first("widget")?.jsHeapUsed ?? 0)),
      kb((last("plain")?.jsHeapUsed ?? 0) - (first("plain")?.jsHeapUsed ?? 0)), 1);
    // Flat or not: the growth between the middle and the last checkpoint, once the history's
    // and the log's caps are reached (full runs only; --quick has no middle checkpoint).
    const middle = (k) => mem[k]?.find((m) => m.after === Math.floor(n / 2));
    if (n >= 200 && middle("widget") && middle("plain")) {
      const per100 = (k) => ((jsAndWasm(last(k)) - jsAndWasm(middle(k))) / 1024) * (100 / (n - Math.floor(n / 2)));
      add(`memory growth from ${Math.floor(n / 2)} to ${n} notifications (KB per 100)`, per100("widget"), per100("plain"), 1,
        `JS heap + wasm memory; about 0 = flat (widget wasm ${fmt(kb(middle("widget").wasmBytes), 0)} → ${fmt(kb(last("widget").wasmBytes), 0)} KB)`);
    }
    add("DOM nodes at start", first("widget")?.nodes, first("plain")?.nodes, 0, "CDP Performance.getMetrics");
    add(`DOM nodes after ${n} notifications`, last("widget")?.nodes, last("plain")?.nodes, 0);
  }
}
if (size) {
  const total = /^total\s+(\d+)/m.exec(size);
  const over = /OVER BUDGET by (\d+)/.exec(size);
  add("scripts/size: first download (first wasm module, JS, CSS), gzip -9 (KB) / plain page", total ? Number(total[1]) / 1024 : null,
    kb(browser?.payload?.plain?.gzip), 1, over ? `over the 120 KB budget by ${(Number(over[1]) / 1024).toFixed(1)} KB` : "within the 120 KB budget");
}
if (hub) {
  for (const level of hub.levels ?? []) {
    const c = level.connections;
    add(`hub RSS per idle WebSocket at ${c} connections (KiB): hub / bare tokio-tungstenite`,
      level.hub_rss_per_connection_kib, level.floor_rss_per_connection_kib, 2, "VmRSS delta / connections");
    add(`connects per second at ${c} (WebSocket + handshake, 64 in flight)`,
      level.hub_connects_per_s, level.floor_connects_per_s, 0);
    const last = level.rounds?.at(-1)?.hub ?? {};
    const s = last.sends;
    if (s) {
      rows.push([`user-targeted REST sends per second at ${c} (${hub.senders} senders)`, fmt(s.per_s, 0), "—", "—",
        `${s.ok} sent, ${s.delivered} delivered`]);
      rows.push([`delivery latency at ${c}, p50 / p99 (ms)`, `${fmt(s.p50_ms, 2)} / ${fmt(s.p99_ms, 2)}`, "—", "—",
        "send → frame read, under saturating load"]);
    }
    if (last.storm) {
      const st = last.storm;
      rows.push([`reconnect storm: ${st.clients} clients back after a hub restart (s)`,
        st.error ? "failed" : fmt(st.seconds_from_restart, 2), "—", "—",
        st.error ?? `${st.back}/${st.clients} back; ${fmt(st.seconds_from_kill, 2)} s from SIGTERM`]);
    }
  }
  // --cluster K (docs/scale-out.md): the same sends through K nodes over Redis, each send through
  // a node other than the receiver's, next to one node at the same connection count.
  const cl = hub.cluster;
  if (cl?.sends) {
    const single = (hub.levels ?? []).find((l) => l.connections === cl.connected)?.rounds?.at(-1)?.hub?.sends;
    add(`user-targeted REST sends per second through ${cl.nodes} nodes over Redis at ${cl.connected} / one node`,
      cl.sends.per_s, single?.per_s, 2, "every send crosses Redis (sent through another node)");
    rows.push([`delivery latency through ${cl.nodes} nodes, p50 / p99 (ms)`, `${fmt(cl.sends.p50_ms, 2)} / ${fmt(cl.sends.p99_ms, 2)}`,
      single ? `${fmt(single.p50_ms, 2)} / ${fmt(single.p99_ms, 2)}` : "—", "—", "baseline: one node, same run"]);
  }
}

function table(markdown) {
  const head = ["figure", "ours", "baseline", "ratio", "note"];
  if (markdown) {
    return [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`,
      ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

console.log(table(false));

const write = option("--write");
if (write) {
  const charts = option("--charts");
  const payloadFiles = (kind) =>
    (browser?.payload?.[kind]?.files ?? []).map((f) => `| ${kind} | \`${f.path}\` | ${f.type} | ${f.bytes} | ${f.gzip} |`).join("\n");
  let md = `# Benchmarks

Written by \`scripts/bench\` (issue 17): every figure next to a baseline measured in the same run, interleaved,
and the ratio between them. **Absolute times on this machine are noise**: it is a shared 2-core VM on which
other builds were running while this was measured; read the ratios.

- Widget: Debian Chromium through Playwright. Baseline: \`tests/bench/plain.html\`, a plain page with the
  official \`@microsoft/signalr\` client (\`signalr.min.js\`), the same dev token and the same hub, one
  \`role="alertdialog"\` per call. Cold start = navigation start → a \`role="status"\` element reads
  "Connected" (MutationObserver in the page), a fresh browser context each time.
- Hub: \`switchboard-loadgen\` (crates/loadgen) on loopback. Baseline ("floor"): a bare tokio-tungstenite
  echo server with the hub's WebSocket settings holding the same connections.

The issue's targets, for reading the table: widget cold start ratio ≤ 1.0 at the median, notification latency
p50/p99 no worse than the plain page's; hub ≤ 8 KB RSS per idle connection at 10,000 connections, ≥ 1,000
connects/s, 5,000 user-targeted sends/s with p99 ≤ 50 ms at 10,000 connections, a 10,000-client reconnect storm
back within 30 s. The load generator runs on the same 2 cores as the hub, so sends/s is a floor of what the hub
can do (16 concurrent REST senders, each send signing its own JWT), and the latency is measured under that
saturating load, not at a fixed rate. RSS per connection at a few hundred connections is dominated by allocator
and thread arenas; read it at 10,000.

Reproduce: \`scripts/build-widget && scripts/bench\` (\`BENCH_CONNECTIONS=1000,10000\` by default); raw JSON in
\`target/bench/\`.

## Machine

\`\`\`
${(machine ?? "").trim()}
\`\`\`

## Figures

${table(true)}
${charts ? `\n![hub delivery latency](${charts}/hub-latency.svg)\n\n![RSS per idle connection](${charts}/hub-rss.svg)\n` : ""}
## Payload before Connected, file by file

| page | path | type | bytes | gzip -9 |
|---|---|---|---|---|
${payloadFiles("widget")}
${payloadFiles("plain")}

${size ? `\`scripts/size\` (the widget's own payload in dist/):\n\n\`\`\`\n${size.trim()}\n\`\`\`\n` : ""}
## Raw samples

Cold start (ms): widget ${JSON.stringify(browser?.coldStart?.widget ?? [])}; plain ${JSON.stringify(browser?.coldStart?.plain ?? [])}.

Reload (ms): widget ${JSON.stringify(browser?.reloadStart?.widget ?? [])}; plain ${JSON.stringify(browser?.reloadStart?.plain ?? [])}.

Cold start, CPU 4× (ms): widget ${JSON.stringify(browser?.coldStartThrottled4x?.widget ?? [])}; plain ${JSON.stringify(browser?.coldStartThrottled4x?.plain ?? [])}.

Memory checkpoints (bytes): \`${JSON.stringify(browser?.memory ?? {})}\`

Hub levels: \`${JSON.stringify(hub?.levels ?? [])}\`
`;
  // Hand-written notes between <!-- kept --> and <!-- /kept --> (e.g. an A/B of a start-up change)
  // survive a rewrite, placed before the payload table.
  const previous = existsSync(write) ? readFileSync(write, "utf8") : "";
  const kept = [...previous.matchAll(/<!-- kept -->[\s\S]*?<!-- \/kept -->\n/g)].map((m) => m[0]).join("\n");
  md = md.replace("## Payload before Connected, file by file", `${kept}${kept ? "\n" : ""}## Payload before Connected, file by file`);
  writeFileSync(write, md);
  console.error(`report written to ${write}`);
}
