// End-to-end: a session nearing its idle close warns (colour and a line of text in its last
// minute), and once it is closed for idleness (4000) the page offers "New session", not Retry,
// which starts a fresh session and attaches to it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { driverOnNewSession, serverAndBrowser, text, typeCommand, uniqueEcho, waitForTerminal, waitForText } from './support/harness.mjs';

describe('session end', { timeout: 120_000 }, () => {
  // The whole idle timeout is inside the warning's last minute.
  const env = serverAndBrowser({ extraConfig: '\n[session]\nidle_timeout = "20s"\n' });

  it('warns before the idle close, then offers New session instead of Retry', async () => {
    const { page } = await driverOnNewSession(env);

    await waitForText(page, '#idle-warning', /^The session closes for inactivity in 0:\d\d unless someone types or it prints output\.$/);
    assert.equal(await page.getAttribute('#idle', 'data-level'), 'urgent');
    const colour = await page.$eval('#idle', (el) => getComputedStyle(el).color);
    const plain = await page.$eval('#holder', (el) => getComputedStyle(el).color);
    assert.notEqual(colour, plain, 'the countdown changes colour');

    await waitForText(page, '#conn-state', /^closed$/, 60_000);
    await waitForText(page, '#close-reason', /idle for too long/);
    assert.equal(await page.isVisible('#retry'), false, 'no Retry: the session is gone');
    assert.equal(await page.isVisible('#start-new'), true, '"New session" is offered');
    assert.equal(await text(page, '#idle-warning'), '', 'the warning goes with the connection');

    await page.click('#start-new');
    await waitForText(page, '#conn-state', /^connected$/);
    await waitForText(page, '#holder', /^you$/);
    const out = uniqueEcho('fresh');
    await typeCommand(page, out.command);
    await waitForTerminal(page, out.output);
    assert.equal(await page.isVisible('#start-new'), false);
  });
});
