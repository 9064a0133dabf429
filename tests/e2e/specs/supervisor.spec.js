// Issue 15: the supervisor view (/supervisor) follows an agent's state live over the hub. The
// agent is driven with the official @microsoft/signalr client in node (the interop suite's
// copy), so this spec does not depend on the widget's state control.
import { test, expect } from '@playwright/test';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { HUB, agentName, sendMessageToUser } from './hub.js';

const require = createRequire(new URL('../../interop/package.json', import.meta.url));
const signalR = require('@microsoft/signalr');
const SCREENSHOTS = process.env.SCREENSHOT_DIR ?? '.out/screenshots';

/** An agent connected with the official client (dev token → /api/negotiate → WebSockets). */
async function connectAgent(request, user) {
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(`${HUB}/api`, {
      accessTokenFactory: async () => {
        const r = await fetch(`${HUB}/dev/token`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }),
        });
        return (await r.json()).accessToken;
      },
      transport: signalR.HttpTransportType.WebSockets,
    })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const notifications = [];
  connection.on('ReceiveNotification', (m) => { notifications.push(JSON.parse(m)); });
  connection.on('AgentStateChanged', () => {});
  connection.on('CallUpdated', () => {});
  connection.on('CallEnded', () => {});
  await connection.start();
  return { connection, notifications };
}

const row = (page, user) => page.locator(`tr[data-user="${user}"]`);

test('the supervisor view shows an agent\'s state changes live; rings obey the state', async ({ page, request }) => {
  const sue = agentName('sue');
  const agent = agentName('agent');
  await page.goto(`/supervisor?user=${encodeURIComponent(sue)}&role=Supervisor`);
  await expect(page.locator('#status')).toHaveText(/Live|No agents yet/);

  const { connection, notifications } = await connectAgent(request, agent);
  try {
    // Connecting makes the agent appear (Ready, the hub's initial state).
    await expect(row(page, agent).locator('td.state')).toHaveText('Ready');
    await expect(row(page, agent)).toContainText('yes');

    // The agent takes a break: the view follows, and a ring is refused 409 not-ready.
    const onBreak = await connection.invoke('setAgentState', 'Break');
    expect(onBreak).toMatchObject({ userId: agent, state: 'Break', source: 'agent' });
    await expect(row(page, agent).locator('td.state')).toHaveText('Break');
    const refused = await sendMessageToUser(request, agent, { PhoneNumber: '+14255550123' });
    expect(refused.status()).toBe(409);
    expect(await refused.json()).toMatchObject({ reason: 'not-ready', state: 'Break', userId: agent });
    expect(notifications).toHaveLength(0);

    // Ready again: rung; accepting puts the agent on call with the caller shown.
    await connection.invoke('setAgentState', 'Ready');
    await expect(row(page, agent).locator('td.state')).toHaveText('Ready');
    const rung = await sendMessageToUser(request, agent, { PhoneNumber: '+14255550123', callerName: 'Dana' });
    expect(rung.status()).toBe(200);
    const { callId } = await rung.json();
    await expect.poll(() => notifications.length).toBe(1);
    await connection.invoke('acceptCall', callId);
    await expect(row(page, agent).locator('td.state')).toHaveText('OnCall');
    await expect(row(page, agent)).toContainText('+14255550123 (accepted)');
    const numbers = row(page, agent).locator('td.num');
    await expect(numbers.nth(0)).toHaveText('1'); // offered
    await expect(numbers.nth(1)).toHaveText('1'); // answered

    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.setViewportSize({ width: 1000, height: 420 });
    await page.screenshot({ path: `${SCREENSHOTS}/supervisor.png` });

    // Hanging up: no wrap-up time in this suite's hub, so straight back to Ready.
    await connection.invoke('hangUp', callId);
    await expect(row(page, agent).locator('td.state')).toHaveText('Ready');
    await expect(row(page, agent)).toContainText('—');
  } finally {
    await connection.stop();
  }
  // The agent's last connection closed: the view says so.
  await expect(row(page, agent).locator('td').nth(3)).toHaveText('no');
});

test('the supervisor view is for supervisors only', async ({ page }) => {
  await page.goto(`/supervisor?user=${encodeURIComponent(agentName('bob'))}`);
  await expect(page.locator('#status')).toHaveText(/Supervisors only/);
  await expect(page.locator('#team')).toBeHidden();
});
