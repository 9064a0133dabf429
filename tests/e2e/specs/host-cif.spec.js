// Dynamics 365 CIF 2.0 and 1.0 (issue 5) against the hub's CIF simulator (/hosts/cif, /hosts/cif1):
// the exact Microsoft.CIFramework arguments, and the hub's record of the call.
import { test, expect } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { agentName, getCall, ring } from './hub.js';
import { CLICK_E164, DANA, callerHangsUp, outboundCalls, recorded, waitForCall, widgetFrame } from './hosts.js';

const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? '.out/screenshots';
const QUERY = "?$select=contactid,fullname&$filter=mobilephone%20eq%20'%2B14255550123'"
  + "%20or%20telephone1%20eq%20'%2B14255550123'%20or%20telephone2%20eq%20'%2B14255550123'";

async function openCif(page, user, path = '/hosts/cif') {
  await page.setViewportSize({ width: 1100, height: 700 });
  await page.goto(`${path}?user=${encodeURIComponent(user)}`);
  const frame = await widgetFrame(page);
  // Initialised: click-to-act on, handlers registered, environment read (customParams).
  await waitForCall(page, 'cifCalls', (c) => c.api === 'getMode');
  return frame;
}

const toast = (page) => page.getByRole('dialog', { name: /Notification extn_voice_notification/ });

test('CIF 2.0: initialises after CIFInitDone, rings with the caller looked up, Accept in the toast pops a session and acknowledges with the call id', async ({ page, request }) => {
  const user = agentName('cif');
  const frame = await openCif(page, user);
  const calls = await recorded(page, 'cifCalls');
  expect(calls.find((c) => c.api === 'setClickToAct').args).toEqual([true]);
  const handlers = calls.filter((c) => c.api === 'addHandler').map((c) => c.args[0]);
  expect(handlers).toEqual(expect.arrayContaining(['onclicktoact', 'onmodechanged', 'onsizechanged', 'onsessionswitched', 'onsessionclosed']));
  expect(calls.findIndex((c) => c.api === 'setClickToAct')).toBeLessThan(calls.findIndex((c) => c.api === 'getEnvironment'));

  const callId = await ring(request, user, { PhoneNumber: DANA.number, comments: 'Billing' });
  const search = await waitForCall(page, 'cifCalls', (c) => c.api === 'searchAndOpenRecords');
  expect(search.args).toEqual(['contact', QUERY, true]);
  const notify = await waitForCall(page, 'cifCalls', (c) => c.api === 'notifyEvent');
  expect(notify.args).toEqual([{
    templateName: 'extn_voice_notification',
    templateParameters: {
      customerName: DANA.name, customerEntityName: 'contact', customerRecordId: DANA.id,
      extn_media_type: 1, extn_phonenumber: DANA.number, extn_interactionid: callId, extn_callid: callId,
      extn_comments: 'Billing', extnbr_session_template: 'sim_voice_session',
    },
    cancellationToken: callId,
  }]);
  await expect(toast(page)).toContainText(DANA.name);
  await expect(frame.getByRole('alertdialog', { name: /Incoming call/ })).toBeVisible();
  // The hub gave no name; the widget names the caller after the CRM record it found.
  await expect(frame.getByRole('alertdialog').locator('.caller__name')).toHaveText(DANA.name);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: `${SCREENSHOTS}/host-cif-ringing.png` });

  await toast(page).getByRole('button', { name: 'Accept' }).click();
  await expect.poll(async () => (await getCall(request, callId)).state).toBe('accepted');
  await expect.poll(async () => (await getCall(request, callId)).acknowledgement).toBe('Accepted');
  const session = await waitForCall(page, 'cifCalls', (c) => c.api === 'createSession');
  expect(session.args[0].templateName).toBe('sim_voice_session');
  expect(session.args[0].templateParameters).toMatchObject({ customerRecordId: DANA.id, customerEntityName: 'contact', extn_interactionid: callId });
  expect(session.args[0].context).toEqual(session.args[0].templateParameters);
  await expect(frame.getByRole('heading', { name: 'On call' })).toBeVisible();
  await expect(frame.locator('.call .caller__name')).toHaveText(DANA.name);
  expect((await recorded(page, 'cifCalls')).some((c) => c.api === 'cancelEvent')).toBe(false);

  // The call ends: a phonecall activity with direction, number, duration and the call id.
  await callerHangsUp(request, callId);
  // Wrap-up in the widget: the host's log gets the agent's disposition and notes.
  await expect(frame.getByRole('heading', { name: 'Wrap-up' })).toBeVisible();
  await frame.getByLabel('Disposition').selectOption('Resolved');
  await frame.getByLabel('Notes').fill('Refund agreed');
  await frame.getByRole('button', { name: 'Save' }).click();
  const record = await waitForCall(page, 'cifCalls', (c) => c.api === 'createRecord' && c.args[0] === 'phonecall');
  const phonecall = JSON.parse(record.args[1]);
  expect(phonecall).toMatchObject({ subject: `Call from ${DANA.name}`, phonenumber: DANA.number, directioncode: false });
  expect(phonecall.actualdurationminutes).toBeLessThanOrEqual(1);
  expect(phonecall.description).toContain(`Call id: ${callId}`);
  expect(phonecall.description).toContain('Refund agreed');
  expect(phonecall.description).toContain('Disposition: Resolved.');
});

test('CIF 2.0: Reject in the toast rejects with the call id and logs a task; a timed-out toast is a missed call', async ({ page, request }) => {
  const user = agentName('cif-reject');
  await openCif(page, user);
  const rejected = await ring(request, user, { PhoneNumber: DANA.number });
  await toast(page).getByRole('button', { name: 'Reject' }).click();
  await expect.poll(async () => (await getCall(request, rejected)).state).toBe('rejected');
  await expect.poll(async () => (await getCall(request, rejected)).acknowledgement).toBe('Rejected');
  const task = await waitForCall(page, 'cifCalls', (c) => c.api === 'createRecord' && c.args[0] === 'task');
  expect(JSON.parse(task.args[1])).toEqual({ subject: `Call rejected: ${DANA.number}`, description: `Call id: ${rejected}` });

  const missed = await ring(request, user, { PhoneNumber: DANA.number });
  await toast(page).getByRole('button', { name: 'Let it time out' }).click();
  await expect.poll(async () => (await getCall(request, missed)).state).toBe('missed');
  const task2 = await waitForCall(page, 'cifCalls', (c) => c.api === 'createRecord' && c.args[1].includes(missed));
  expect(JSON.parse(task2.args[1]).subject).toBe(`Call missed: ${DANA.number}`);
});

test('CIF 2.0: the caller hanging up cancels the toast; accepting in the widget cancels it too', async ({ page, request }) => {
  const user = agentName('cif-cancel');
  const frame = await openCif(page, user);
  const abandoned = await ring(request, user, { PhoneNumber: '+14255550100' });
  await waitForCall(page, 'cifCalls', (c) => c.api === 'notifyEvent' && c.args[0].cancellationToken === abandoned);
  await callerHangsUp(request, abandoned);
  const cancel = await waitForCall(page, 'cifCalls', (c) => c.api === 'cancelEvent');
  expect(cancel.args).toEqual([abandoned]);
  await expect(toast(page)).toHaveCount(0);
  // Not found in the CRM: the number is the name, no record id.
  const notify = (await recorded(page, 'cifCalls')).find((c) => c.api === 'notifyEvent');
  expect(notify.args[0].templateParameters.customerName).toBe('+14255550100');
  expect(notify.args[0].templateParameters.customerRecordId).toBeUndefined();

  const taken = await ring(request, user, { PhoneNumber: DANA.number });
  await waitForCall(page, 'cifCalls', (c) => c.api === 'notifyEvent' && c.args[0].cancellationToken === taken);
  await frame.getByRole('button', { name: 'Accept' }).click();
  await waitForCall(page, 'cifCalls', (c) => c.api === 'cancelEvent' && c.args[0] === taken);
  await waitForCall(page, 'cifCalls', (c) => c.api === 'createSession');
  await expect.poll(async () => (await getCall(request, taken)).acknowledgement).toBe('Accepted');
});

test('CIF: onclicktoact dials the number through the hub', async ({ page, request }) => {
  const user = agentName('cif-c2a');
  await openCif(page, user);
  await page.getByRole('button', { name: 'Click to call' }).click();
  await expect.poll(async () => (await outboundCalls(request, user)).map((c) => c.phoneNumber)).toEqual([CLICK_E164]);
});

test('CIF 1.0: no toast or session; the widget rings itself, docks the panel, and screen-pops with searchAndOpenRecords', async ({ page, request }) => {
  const user = agentName('cif1');
  const frame = await openCif(page, user, '/hosts/cif1');
  const callId = await ring(request, user, { PhoneNumber: DANA.number });
  const dialog = frame.getByRole('alertdialog', { name: /Incoming call/ });
  await expect(dialog).toBeVisible();
  await waitForCall(page, 'cifCalls', (c) => c.api === 'setMode');
  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect.poll(async () => (await getCall(request, callId)).acknowledgement).toBe('Accepted');
  const pop = await waitForCall(page, 'cifCalls', (c) => c.api === 'searchAndOpenRecords' && c.args[2] === false);
  expect(pop.args).toEqual(['contact', QUERY, false]);
  const apis = (await recorded(page, 'cifCalls')).map((c) => c.api);
  expect(apis).not.toContain('notifyEvent');
  expect(apis).not.toContain('createSession');
  expect((await recorded(page, 'cifCalls')).find((c) => c.api === 'setMode').args).toEqual([1]);
});
