// Helpers for the host simulator specs (host-*.spec.js): the pages served by switchboard-hub
// under /hosts/ in dev mode, and the telephony simulator's call list.
import { expect } from '@playwright/test';
import { HUB } from './hub.js';

/** Dana Whitfield, the contact the CIF simulator's search finds. */
export const DANA = { id: '7d9e2c4a-0000-4000-8000-000000000001', name: 'Dana Whitfield', number: '+14255550123' };
/** The number the simulators' click-to-dial buttons dial, and how the hub stores it. */
export const CLICK_NUMBER = '+44 20 7946 0958';
export const CLICK_E164 = '+442079460958';

/** The widget's frame in a host page, once it says Connected. */
export async function widgetFrame(page) {
  const frame = page.frameLocator('#widget');
  await expect(frame.getByRole('status')).toHaveText('Connected');
  return frame;
}

/** Calls recorded by a host page (`window.cifCalls`, `window.openCtiCalls`, ...). */
export async function recorded(page, name) {
  return page.evaluate((n) => JSON.parse(JSON.stringify(window[n] ?? [])), name);
}

/** Waits for a recorded call matching `filter` and returns it. */
export async function waitForCall(page, name, filter) {
  let found;
  await expect.poll(async () => {
    found = (await recorded(page, name)).find(filter);
    return Boolean(found);
  }, { timeout: 15_000 }).toBe(true);
  return found;
}

/** The agent's outbound calls, from the telephony simulator. */
export async function outboundCalls(request, agent) {
  const response = await request.get(`${HUB}/simulator/calls`);
  const calls = await response.json();
  return calls.filter((c) => c.agent === agent && c.direction === 'outbound');
}

/** The caller hangs up (telephony simulator). */
export async function callerHangsUp(request, callId) {
  const response = await request.post(`${HUB}/simulator/calls/${encodeURIComponent(callId)}/abandon`);
  expect(response.status()).toBe(200);
}
