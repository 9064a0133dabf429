import { chromium } from 'playwright-core';
const [,, url, out, ringUser] = process.argv;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 340, height: 620 } });
page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log('console:', m.text()); });
await page.goto(url);
await page.waitForTimeout(2500);
if (ringUser) {
  const r = await fetch('http://127.0.0.1:18600/api/SendMessageToUser', { method: 'POST',
    headers: { 'x-functions-key': 'k', 'content-type': 'application/json' },
    body: JSON.stringify({ userId: ringUser, message: JSON.stringify({ PhoneNumber: '+14255550123', callerName: 'Dana Whitfield', queue: 'Billing' }) }) });
  console.log('ring', r.status);
  await page.waitForTimeout(1500);
}
await page.screenshot({ path: out, fullPage: true });
console.log(await page.evaluate(() => document.documentElement.outerHTML.slice(0, 200)));
await browser.close();
