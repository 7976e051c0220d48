// End-to-end: a moderated session in Chromium. Bob drives and his typing is held (the page says
// so) until alice attaches as an observer with attach:moderate; when she detaches it is held again.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  attach,
  Attachd,
  launchBrowser,
  Recorder,
  signIn,
  sleep,
  terminalText,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

describe('a moderated session', { timeout: 180_000 }, () => {
  let server;
  let browser;
  const rec = new Recorder();

  before(async () => {
    server = await Attachd.start();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('holds the driver\'s typing until a moderator watches, and again after she leaves', async () => {
    const created = await fetch(`${server.origin}/api/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ policy: { moderated: true } }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const sessionId = (await created.json()).id;

    const bob = await (await rec.newContext(browser)).newPage();
    await signIn(bob, server.origin, server.bobToken.secret);
    await attach(bob, sessionId, 'driver');
    await waitForText(bob, '#moderation', /^moderated: waiting for a moderator — typing is held$/);
    assert.equal(await bob.isHidden('#moderation-field'), false);

    const held = uniqueEcho('held');
    await typeCommand(bob, held.command);
    await sleep(1000);
    assert.ok(!(await terminalText(bob)).includes(held.output), 'held input ran without a moderator');

    // Alice moderates: bob's page goes live and the held command runs.
    const alice = await (await rec.newContext(browser)).newPage();
    await signIn(alice, server.origin, server.token.secret);
    await attach(alice, sessionId, 'observer');
    await waitForText(alice, '#moderation', /^moderated: live \(1 moderator\)$/);
    await waitForText(bob, '#moderation', /^moderated: live \(1 moderator\)$/);
    await waitForText(bob, '#notice', /^A moderator is attached: typing is live\.$/);
    await waitForTerminal(bob, held.output);
    await waitForTerminal(alice, held.output);

    // She detaches: held again, and bob is told.
    await alice.click('#detach');
    await waitForText(bob, '#moderation', /^moderated: waiting for a moderator — typing is held$/);
    await waitForText(bob, '#notice', /^The moderator left: typing is held until a moderator attaches\.$/);
    const again = uniqueEcho('again');
    await typeCommand(bob, again.command);
    await sleep(1000);
    assert.ok(!(await terminalText(bob)).includes(again.output), 'input ran after the moderator left');
    await waitFor(async () => (await bob.getAttribute('#moderation', 'data-state')) === 'frozen', {
      message: '#moderation data-state frozen',
    });
  });
});
