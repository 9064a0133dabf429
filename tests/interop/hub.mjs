// The switchboard-hub process that the interop tests talk to: spawned on 127.0.0.1:0 from
// SWITCHBOARD_HUB_BIN (default ../../target/debug/switchboard-hub), its address read from the
// first stdout line, stopped at the end (also on failure). Every wait has a timeout.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const HUB_BIN =
  process.env.SWITCHBOARD_HUB_BIN ?? path.resolve(here, "../../target/debug/switchboard-hub");

/** How long any single wait may take, in ms. */
export const WAIT_MS = 10_000;

/** `promise`, or a rejection naming `what` after `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Starts the hub with `key` as its access key (and `extraArgs`, e.g. `--redis URL`);
 * resolves to `{ base, stop }`. */
export async function startHub(key, extraArgs = []) {
  assert.ok(existsSync(HUB_BIN), `hub binary not found at ${HUB_BIN}: run cargo build -p switchboard-hub`);
  const hub = spawn(HUB_BIN, ["--listen", "127.0.0.1:0", "--access-key", key, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
  });
  const alive = () => hub.exitCode === null && hub.signalCode === null;
  const kill = () => alive() && hub.kill("SIGTERM");
  process.on("exit", kill);
  const hubLog = []; // the last stderr chunks, shown if it dies early
  hub.stderr.setEncoding("utf8");
  hub.stderr.on("data", (chunk) => {
    hubLog.push(chunk);
    if (hubLog.length > 50) hubLog.shift();
  });
  hub.stdout.setEncoding("utf8");
  const firstLine = new Promise((resolve, reject) => {
    let buffered = "";
    hub.stdout.on("data", (chunk) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end >= 0) resolve(buffered.slice(0, end));
    });
    hub.once("exit", (code) => reject(new Error(`hub exited early (${code}): ${hubLog.join("")}`)));
    hub.once("error", reject);
  });
  const line = await withTimeout(firstLine, WAIT_MS, "hub start-up line");
  const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line.trim());
  assert.ok(match, `unexpected first line: ${line}`);
  const stop = async () => {
    kill();
    if (alive()) {
      await withTimeout(new Promise((r) => hub.once("exit", r)), 5_000, "hub exit").catch(() =>
        hub.kill("SIGKILL"),
      );
    }
  };
  return { base: match[1], stop };
}

/** A dev token for `user` from the hub at `base`. */
export async function devToken(base, user) {
  const response = await fetch(`${base}/dev/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(typeof body.accessToken, "string");
  return body.accessToken;
}

/** The arguments of the next invocation of `target` on `connection`; fails after WAIT_MS. */
export function next(connection, target) {
  return withTimeout(
    new Promise((resolve) => {
      const handler = (...args) => {
        connection.off(target, handler);
        resolve(args);
      };
      connection.on(target, handler);
    }),
    WAIT_MS,
    `${target} from the hub`,
  );
}
