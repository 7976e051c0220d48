// End-to-end: the sessions dashboard in Chromium. Three sessions of tenant acme (two with a
// driver) and one of another tenant: three cards, thumbnails showing what each driver's terminal
// shows (row by row), the holder's name, counts following a join and a leave, "Observe"
// attaching, and the page at desktop and phone sizes (screenshots in e2e/artifacts/).

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  attach,
  ensureArtifactsDir,
  makeToken,
  serverAndBrowser,
  signIn,
  sleep,
  terminalText,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

const BOB = makeToken();
const OTHER = makeToken();
const tokenToml = (subject, tenant, t, name = null) => `
[[auth.static_tokens]]
subject = "${subject}"${name ? `\nname = "${name}"` : ''}
tenant = "${tenant}"
scopes = ["sessions:read", "sessions:write", "attach:observe", "attach:drive"]
sha256 = "${t.sha256}"
`;

async function createSession(origin, secret) {
  const res = await fetch(`${origin}/api/v1/sessions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: '{}',
  });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).id;
}

/** A row as a person reads it: no-break spaces are spaces, trailing blanks dropped. */
const norm = (s) => s.replaceAll('\u00a0', ' ').trimEnd();

async function driverRows(page) {
  return (await terminalText(page)).split('\n').map(norm);
}

async function thumbRows(page, sid) {
  return page.$$eval(`[data-testid="session-card"][data-session-id="${sid}"] .thumb-row`, (rows) =>
    rows.map((r) => r.textContent ?? ''),
  ).then((rows) => rows.map(norm));
}

async function field(page, sid, name) {
  return page.$eval(`[data-testid="session-card"][data-session-id="${sid}"] [data-field="${name}"]`, (e) => e.textContent ?? '');
}

async function cardIds(page) {
  return page.$$eval('[data-testid="session-card"]', (els) => els.map((e) => e.dataset.sessionId).sort());
}

/** Waits until the card's `name` field matches; returns how long it took, in ms. */
async function timeUntilField(page, sid, name, pattern) {
  const t0 = Date.now();
  await waitFor(async () => pattern.test(await field(page, sid, name)), {
    timeout: 15_000,
    interval: 50,
    message: `${name} of ${sid} to match ${pattern}`,
  });
  return Date.now() - t0;
}

describe('dashboard', { timeout: 240_000 }, () => {
  const env = serverAndBrowser({
    extraConfig: tokenToml('bob', 'acme', BOB, 'Bob Builder') + tokenToml('oscar', 'globex', OTHER),
  });

  it('shows every session of the tenant as a live card, and nothing of another tenant', async () => {
    const { server, browser, rec } = env;
    const alice = server.token.secret;
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await createSession(server.origin, alice));
    const theirs = await createSession(server.origin, OTHER.secret);
    const [withAlice, withBob, idle] = ids;

    // Two drivers, each in its own browser, each printing something of its own.
    const drivers = [];
    for (const [sid, secret, tag] of [
      [withAlice, alice, 'alpha'],
      [withBob, BOB.secret, 'bravo'],
    ]) {
      const ctx = await rec.newContext(browser, { width: 900, height: 500 });
      const page = await ctx.newPage();
      await signIn(page, server.origin, secret);
      await attach(page, sid, 'driver');
      const out = uniqueEcho(tag);
      await typeCommand(page, out.command);
      await waitForTerminal(page, out.output);
      drivers.push({ ctx, page, sid, out });
    }

    const dashCtx = await rec.newContext(browser, { width: 1280, height: 900 });
    const dash = await dashCtx.newPage();
    await signIn(dash, server.origin, alice);
    await dash.click('#open-dashboard');
    await waitFor(async () => (await cardIds(dash)).length === 3, { message: 'three cards' });
    assert.deepEqual(await cardIds(dash), [...ids].sort());

    // The thumbnails are the drivers' screens, row by row.
    for (const d of drivers) {
      let last = null;
      await waitFor(
        async () => {
          const want = await driverRows(d.page);
          const got = await thumbRows(dash, d.sid);
          last = { want, got };
          return want.some((r) => r.includes(d.out.output)) && JSON.stringify(want) === JSON.stringify(got);
        },
        { timeout: 15_000, message: `the thumbnail of ${d.sid} to equal its driver's screen` },
      ).catch((err) => {
        throw new Error(`${err.message}\n${JSON.stringify(last, null, 1)}`);
      });
    }
    assert.equal(await field(dash, withAlice, 'holder'), 'alice');
    // A holder with a display name is shown by it, with the subject in the tooltip.
    assert.equal(await field(dash, withBob, 'holder'), 'Bob Builder');
    const tip = await dash.$eval(
      `[data-testid="session-card"][data-session-id="${withBob}"] [data-field="holder"]`,
      (e) => e.getAttribute('title') ?? '',
    );
    assert.match(tip, /^bob \(/);
    assert.equal(await field(dash, idle, 'holder'), 'nobody');
    assert.equal(await field(dash, withAlice, 'counts'), '1 driver · 0 observers');
    assert.equal(await field(dash, idle, 'counts'), '0 drivers · 0 observers');
    assert.equal(await field(dash, idle, 'backend'), 'local');
    assert.equal(await field(dash, idle, 'command'), '/bin/sh');
    assert.match(await field(dash, idle, 'age'), /^\d+:\d\d$/);
    assert.match(await field(dash, idle, 'idle'), /^closes in \d+:\d\d$/);
    // alice holds attach:moderate: the revoke button shows (bob and oscar do not).
    assert.equal(await dash.isVisible(`[data-session-id="${withAlice}"] [data-testid="revoke"]`), true);
    await dash.screenshot({ path: path.join(ensureArtifactsDir(), 'dashboard-desktop.png'), fullPage: true });

    // A join and a leave show in the counts within a couple of seconds.
    const obsCtx = await rec.newContext(browser);
    const obs = await obsCtx.newPage();
    await signIn(obs, server.origin, BOB.secret);
    await attach(obs, idle, 'observer');
    const joinMs = await timeUntilField(dash, idle, 'counts', /^0 drivers · 1 observer$/);
    await obsCtx.close();
    const leaveMs = await timeUntilField(dash, idle, 'counts', /^0 drivers · 0 observers$/);
    console.log(`dashboard counts followed a join in ${joinMs} ms and a leave in ${leaveMs} ms`);
    assert.ok(joinMs <= 3000 && leaveMs <= 3000, `join ${joinMs} ms, leave ${leaveMs} ms`);

    // The phone layout: one column, nothing wider than the screen.
    await dash.setViewportSize({ width: 390, height: 844 });
    await sleep(300);
    const layout = await dash.evaluate(() => {
      const cards = [...document.querySelectorAll('[data-testid="session-card"]')].map((c) => c.getBoundingClientRect());
      return {
        innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
        lefts: [...new Set(cards.map((r) => Math.round(r.left)))],
        rights: cards.map((r) => r.right),
      };
    });
    assert.ok(layout.scrollWidth <= layout.innerWidth, `no sideways scroll on a phone: ${JSON.stringify(layout)}`);
    assert.equal(layout.lefts.length, 1, `one column on a phone: ${JSON.stringify(layout)}`);
    assert.ok(layout.rights.every((r) => r <= layout.innerWidth), `cards inside the screen: ${JSON.stringify(layout)}`);
    await dash.screenshot({ path: path.join(ensureArtifactsDir(), 'dashboard-phone.png'), fullPage: true });

    // The other tenant's session never showed up.
    assert.ok(!(await dash.content()).includes(theirs), 'another tenant\'s session is not on the page');

    // "Observe" attaches this page to the session as an observer.
    await dash.click(`[data-session-id="${withBob}"] [data-testid="observe"]`);
    await waitForText(dash, '#conn-state', /^connected$/);
    await waitForText(dash, '#role', /observer/);
    await waitForTerminal(dash, drivers[1].out.output);
    const gone = await dash.$$eval('[data-testid="session-card"]', (els) => els.length);
    assert.equal(await dash.isVisible('#dashboard-panel'), false, `the dashboard is closed (${gone} cards kept)`);

    // No token in any URL the pages used.
    for (const secret of [alice, BOB.secret]) {
      assert.ok(!rec.requests.some((r) => r.url.includes(secret)), 'a token appeared in a URL');
    }
    for (const d of drivers) await d.ctx.close();
    await dashCtx.close();
  });
});
