// Salesforce Open CTI (issue 5) against the hub's Lightning-like page (/hosts/opencti) and its
// stand-in opencti_min.js: panel shown on ring, searchAndScreenPop on accept, saveLog on call
// end, onClickToDial places a call.
import { test, expect } from '@playwright/test';
import { agentName, getCall, ring } from './hub.js';
import { CLICK_E164, DANA, callerHangsUp, outboundCalls, recorded, waitForCall, widgetFrame } from './hosts.js';

async function openCti(page, user) {
  await page.setViewportSize({ width: 1100, height: 700 });
  await page.goto(`/hosts/opencti?user=${encodeURIComponent(user)}`);
  const frame = await widgetFrame(page);
  await waitForCall(page, 'openCtiCalls', (c) => c.method === 'notifyInitializationComplete');
  return frame;
}

test('Open CTI: click-to-dial enabled; ring shows the softphone panel; accept screen-pops and acknowledges with the call id; call end saves a Task log', async ({ page, request }) => {
  const user = agentName('octi');
  const frame = await openCti(page, user);
  const methods = (await recorded(page, 'openCtiCalls')).map((c) => c.method);
  expect(methods.slice(0, 3)).toEqual(['enableClickToDial', 'onClickToDial', 'notifyInitializationComplete']);

  const callId = await ring(request, user, { PhoneNumber: DANA.number, callerName: 'Dana Whitfield' });
  const visible = await waitForCall(page, 'openCtiCalls', (c) => c.method === 'setSoftphonePanelVisibility');
  expect(visible.args).toEqual({ visible: true });
  const dialog = frame.getByRole('alertdialog', { name: /Incoming call/ });
  await dialog.getByRole('button', { name: 'Accept' }).click();
  await expect.poll(async () => (await getCall(request, callId)).acknowledgement).toBe('Accepted');
  expect((await getCall(request, callId)).state).toBe('accepted');
  const pop = await waitForCall(page, 'openCtiCalls', (c) => c.method === 'searchAndScreenPop');
  expect(pop.args).toEqual({ searchParams: DANA.number, queryParams: `callId=${encodeURIComponent(callId)}`, callType: 'inbound', deferred: false });
  await expect(page.getByRole('heading', { name: 'Screen pop: Dana Whitfield' })).toBeVisible();

  await callerHangsUp(request, callId);
  // Wrap-up in the widget: the host's log gets the agent's disposition and notes.
  await expect(frame.getByRole('heading', { name: 'Wrap-up' })).toBeVisible();
  await frame.getByLabel('Disposition').selectOption('Resolved');
  await frame.getByLabel('Notes').fill('Refund agreed');
  await frame.getByRole('button', { name: 'Save' }).click();
  const log = await waitForCall(page, 'openCtiCalls', (c) => c.method === 'saveLog');
  expect(log.args.value).toMatchObject({
    entityApiName: 'Task', Subject: 'Call from Dana Whitfield', Status: 'Completed', TaskSubtype: 'Call',
    CallType: 'Inbound', CallObject: callId, Phone: DANA.number,
  });
  expect(typeof log.args.value.CallDurationInSeconds).toBe('number');
  await waitForCall(page, 'openCtiCalls', (c) => c.method === 'refreshView');
});

test('Open CTI: onClickToDial places the call', async ({ page, request }) => {
  const user = agentName('octi-dial');
  await openCti(page, user);
  await page.getByRole('button', { name: 'Click to dial' }).click();
  await expect.poll(async () => (await outboundCalls(request, user)).map((c) => c.phoneNumber)).toEqual([CLICK_E164]);
});
