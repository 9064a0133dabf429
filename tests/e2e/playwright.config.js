// End-to-end tests: switchboard-hub serves the release build from dist/, Debian's Chromium
// (never a downloaded browser) drives the widget. Run through scripts/test, which builds both.
import { defineConfig } from '@playwright/test';
import { ACCESS_KEY, PORT, HUB_BIN } from './specs/hub.js';

export default defineConfig({
  testDir: './specs',
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list'], ['json', { outputFile: '.out/results.json' }]],
  outputDir: '.out/artifacts',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    viewport: { width: 360, height: 640 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
  },
  // Agent state (docs/agent-state.md) with the production routing (only Ready is rung; an agent
  // with no connection is refused 409 offline) but no automatic wrap-up time: many specs ring
  // the same agent again right after a hang-up, which a 60 s WrapUp would refuse.
  webServer: {
    command: `${HUB_BIN} --listen 127.0.0.1:${PORT} --static ../../dist --access-key ${ACCESS_KEY} --ring-timeout 120 --wrap-up-seconds 0`,
    url: `http://127.0.0.1:${PORT}/config.json`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: { RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  },
});
