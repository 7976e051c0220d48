// End-to-end: two people (two tokens) share a session in Chromium. Names are shown, bob asks
// alice for control from the page, alice's page prompts her, a grant moves control, alice is told.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  attach,
  Attachd,
  createSession,
  launchBrowser,
  Recorder,
  signIn,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

describe('asking for control between two people', { timeout: 180_000 }, () => {
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

  it('bob requests, alice is prompted and grants, alice is told she lost control to Bob', async () => {
    const alice = await (await rec.newContext(browser)).newPage();
    await signIn(alice, server.origin, server.token.secret);
    const sessionId = await createSession(alice);
    await attach(alice, sessionId, 'driver');
    await waitForText(alice, '#whoami', /^you are alice$/);
    await waitForText(alice, '#holder', /^you$/);

    const bob = await (await rec.newContext(browser)).newPage();
    await signIn(bob, server.origin, server.bobToken.secret);
    await attach(bob, sessionId, 'driver');
    await waitForText(bob, '#whoami', /^you are Bob$/);
    await waitForText(bob, '#holder', /^alice$/);

    // Bob's keystrokes say why they go nowhere.
    await bob.click('#terminal');
    await bob.keyboard.type('x');
    await waitForText(bob, '#notice', /^alice holds control: request control to type\.$/);

    // Bob asks; alice's page shows the prompt.
    await waitFor(() => bob.isEnabled('#acquire'), { message: '#acquire enabled while alice holds control' });
    await bob.click('#acquire');
    await waitForText(bob, '#notice', /^Asked alice for control; waiting for an answer\.$/);
    await waitForText(alice, '[data-testid="control-request"] span', /^Bob asks for control\.$/);

    // Alice grants: control moves to bob; alice is told.
    await alice.click('[data-testid="control-request"] button.grant');
    await waitForText(bob, '#holder', /^you$/);
    await waitForText(alice, '#holder', /^Bob$/);
    await waitForText(alice, '#notice', /^You lost control to Bob\.$/);
    assert.equal(await alice.$$eval('[data-testid="control-request"]', (els) => els.length), 0, 'the prompt is gone');
    assert.equal(await bob.getAttribute('#terminal', 'data-input'), 'enabled');

    // Bob types and both see it.
    const out = uniqueEcho('bob');
    await typeCommand(bob, out.command);
    await waitForTerminal(alice, out.output);

    // Alice asks back and bob denies: alice hears it.
    await alice.click('#acquire');
    await waitForText(bob, '[data-testid="control-request"] span', /^alice asks for control\.$/);
    await bob.click('[data-testid="control-request"] button.deny');
    await waitForText(alice, '#notice', /^Bob denied your request for control\.$/);
    await waitForText(bob, '#holder', /^you$/);
  });
});
