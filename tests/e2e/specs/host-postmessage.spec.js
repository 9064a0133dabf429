// Any CRM over postMessage (issue 5, docs/host-protocol.md) with the example host page
// (/hosts/postmessage): SYNC/SYNC_ACK, events out, commands in, and a foreign origin ignored.
import { test, expect } from '@playwright/test';
import { PORT, agentName, getCall, ring } from './hub.js';
import { CLICK_E164, CLICK_NUMBER, DANA, outboundCalls, recorded, waitForCall, widgetFrame } from './hosts.js';

const received = (page, type) => waitForCall(page, 'hostMessages', (m) => m.direction === 'in' && m.type === type);

test('postMessage: SYNC_ACK, INCOMING_CALL, ACCEPT from the host acknowledged with the call id, CALL_ANSWERED, DIAL places a call', async ({ page, request }) => {
  const user = agentName('pm');
  await page.goto(`/hosts/postmessage?user=${encodeURIComponent(user)}`);
  const frame = await widgetFrame(page);
  const ack = await received(page, 'SYNC_ACK');
  expect(ack.payload).toEqual({ version: 1, host: 'postmessage' });
  expect(ack.messageId).toMatch(/^host-\d+$/);

  const callId = await ring(request, user, { PhoneNumber: DANA.number, callerName: 'Dana Whitfield', queue: 'Sales' });
  const incoming = await received(page, 'INCOMING_CALL');
  expect(incoming.payload).toEqual({ callId, number: DANA.number, name: 'Dana Whitfield', queue: 'Sales' });
  expect(incoming.messageId).toMatch(/^sb-\d+$/);
  await expect(frame.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();

  await page.getByRole('button', { name: 'Accept' }).click();
  await expect.poll(async () => (await getCall(request, callId)).state).toBe('accepted');
  await expect.poll(async () => (await getCall(request, callId)).acknowledgement).toBe('Accepted');
  expect((await received(page, 'CALL_ANSWERED')).payload).toEqual({ callId });
  await frame.getByRole('button', { name: 'Hang up' }).click();
  // Wrap-up in the widget: the host's log gets the agent's disposition and notes.
  await expect(frame.getByRole('heading', { name: 'Wrap-up' })).toBeVisible();
  await frame.getByLabel('Disposition').selectOption('Resolved');
  await frame.getByLabel('Notes').fill('Refund agreed');
  await frame.getByRole('button', { name: 'Save' }).click();
  const ended = await received(page, 'CALL_ENDED');
  expect(ended.payload).toMatchObject({ callId, direction: 'inbound', number: DANA.number, name: 'Dana Whitfield', outcome: 'completed', notes: 'Refund agreed', disposition: 'Resolved' });
  expect(typeof ended.payload.durationSeconds).toBe('number');

  await page.getByRole('textbox', { name: 'Number' }).fill(CLICK_NUMBER);
  await page.getByRole('button', { name: 'Dial' }).click();
  await expect.poll(async () => (await outboundCalls(request, user)).map((c) => c.phoneNumber)).toEqual([CLICK_E164]);
});

test('postMessage: REJECT from the host, CALL_DISMISSED, an unknown type answered with ERROR', async ({ page, request }) => {
  const user = agentName('pm-reject');
  await page.goto(`/hosts/postmessage?user=${encodeURIComponent(user)}`);
  await widgetFrame(page);
  await received(page, 'SYNC_ACK');
  const callId = await ring(request, user, { PhoneNumber: DANA.number });
  await received(page, 'INCOMING_CALL');
  await page.getByRole('button', { name: 'Reject' }).click();
  await expect.poll(async () => (await getCall(request, callId)).state).toBe('rejected');
  expect((await received(page, 'CALL_DISMISSED')).payload).toEqual({ callId, outcome: 'rejected' });
  await page.evaluate(() => window.hostSend('TELEPORT', {}));
  const error = await received(page, 'ERROR');
  expect(error.payload.message).toBe('unknown type TELEPORT');
});

test('postMessage: a host on a foreign origin gets no SYNC_ACK and its DIAL does nothing', async ({ page, request }) => {
  const user = agentName('pm-foreign');
  const warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning') warnings.push(m.text()); });
  // The page is on localhost, the widget on 127.0.0.1: two origins; only the widget's own is allowed.
  await page.goto(`http://localhost:${PORT}/hosts/postmessage?user=${encodeURIComponent(user)}`
    + `&widget=${encodeURIComponent(`http://127.0.0.1:${PORT}`)}&host=postmessage`);
  await widgetFrame(page);
  await page.evaluate(() => window.hostSend('DIAL', { number: '+44 20 7946 0958' }));
  await expect.poll(() => warnings.filter((w) => w.includes(`ignored a message from http://localhost:${PORT}`)).length).toBeGreaterThan(1);
  await ring(request, user, { PhoneNumber: DANA.number });
  await expect(page.frameLocator('#widget').getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();
  await page.waitForTimeout(1000);
  const inbound = (await recorded(page, 'hostMessages')).filter((m) => m.direction === 'in');
  expect(inbound).toEqual([]);
  expect(await outboundCalls(request, user)).toEqual([]);
});
