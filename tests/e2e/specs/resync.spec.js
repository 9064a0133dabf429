// Resync after a reload (issue 18): the widget calls the hub method `getCalls` after every
// connect and `Desk::resync` restores the agent's live calls. Reloading the page while a call
// rings shows the same call ringing again, and it can be answered; reloading while a call is
// held shows the call panel on hold, and Resume works. The hub's call registry is the witness.
import { test, expect } from '@playwright/test';
import { agentName, getCall, ring } from './hub.js';

const SEED_MESSAGE = { PhoneNumber: '+14255550123', comments: 'Billing' };
const incomingCall = (page) => page.getByRole('alertdialog', { name: /Incoming call/ });
const heading = (page, name) => page.getByRole('heading', { name });
const state = (request, id) => async () => (await getCall(request, id)).state;

async function openWidget(page, user) {
  await page.goto(`/?user=${encodeURIComponent(user)}`);
  await expect(page.getByRole('status')).toHaveText('Connected');
}

test('a reload during a ringing call rings the same call again, and it can be answered', async ({ page, request }) => {
  const user = agentName('resync-ring');
  await openWidget(page, user);
  const callId = await ring(request, user, SEED_MESSAGE);
  await expect(incomingCall(page)).toBeVisible();
  await expect(incomingCall(page)).toContainText('+14255550123');

  await page.reload();
  await expect(page.getByRole('status')).toHaveText('Connected');
  // The reload did not end the call: it still rings at the hub, and the widget shows it again.
  expect((await getCall(request, callId)).state).toBe('ringing');
  const dialog = incomingCall(page);
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText('+14255550123');
  await expect(dialog).toContainText('Billing');

  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect(dialog).toBeHidden();
  await expect.poll(state(request, callId)).toMatch(/^(accepted|connected)$/);
  await expect(heading(page, 'On call')).toBeVisible();
  expect((await getCall(request, callId)).agent).toBe(user);

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(state(request, callId)).toBe('ended');
});

test('a reload during a held call shows the held call, and Resume works', async ({ page, request }) => {
  const user = agentName('resync-hold');
  await openWidget(page, user);
  const callId = await ring(request, user, SEED_MESSAGE);
  await incomingCall(page).getByRole('button', { name: 'Accept' }).click();
  await expect(heading(page, 'On call')).toBeVisible();
  await page.getByRole('button', { name: 'Hold' }).click();
  await expect(heading(page, 'On hold')).toBeVisible();
  await expect.poll(state(request, callId)).toBe('held');

  await page.reload();
  await expect(page.getByRole('status')).toHaveText('Connected');
  expect((await getCall(request, callId)).state).toBe('held');
  // The call panel is back, on hold, with the caller; no incoming-call dialog.
  await expect(heading(page, 'On hold')).toBeVisible();
  await expect(page.locator('.call')).toContainText('+14255550123');
  await expect(incomingCall(page)).toBeHidden();
  const resume = page.getByRole('button', { name: 'Resume' });
  await expect(resume).toHaveAttribute('aria-pressed', 'true');

  await resume.click();
  await expect(heading(page, 'On call')).toBeVisible();
  await expect.poll(state(request, callId)).toBe('connected');

  await page.getByRole('button', { name: 'Hang up' }).click();
  await expect.poll(state(request, callId)).toBe('ended');
});
