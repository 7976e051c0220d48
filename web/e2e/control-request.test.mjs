// End-to-end: two people (two tokens) share a session in Chromium. Names are shown, bob asks
// alice for control from the page, alice's page prompts her, a grant moves control, alice is told.
// In a moderated session bob's typing is held until alice watches with attach:moderate.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  attach,
  Attachd,
  boxes,
  createSession,
  launchBrowser,
  Recorder,
  signIn,
  sleep,
  terminalText,
  textFramesSent,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

/** How many resizes the page has sent. */
async function resizesSent(page) {
  return (await textFramesSent(page)).filter((f) => f.msg.type === 'resize').length;
}

describe('two people sharing a session', { timeout: 180_000 }, () => {
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
    const resizesBefore = await resizesSent(alice);
    const termBefore = (await boxes(alice, ['#terminal']))['#terminal'];
    await bob.click('#acquire');
    await waitForText(bob, '#notice', /^Asked alice for control; waiting for an answer\.$/);
    await waitForText(alice, '[data-testid="control-request"] span', /^Bob asks for control\.$/);
    // The prompt and the notice leave alice's terminal (so the PTY) at its size.
    await sleep(300); // past the resize throttle and a ResizeObserver turn
    assert.deepEqual((await boxes(alice, ['#terminal']))['#terminal'], termBefore, 'the prompt moved the terminal');
    assert.equal(await resizesSent(alice), resizesBefore, 'the prompt resized the PTY');

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
