// End-to-end SPEC §8 in Chromium against a real attachd: a smaller observer window shows exactly
// the driver's screen with `vi` open (rendered at the session's size, scaled, never re-wrapped);
// floods typed by the driver (`seq 1 3000000`, 30 MB of `yes`) end with no close and no
// reconnect, the end visible and the shell answering; a slow observer tab is resynced, not
// closed; a 25 s sustained flood draws no 429 and the pages stay connected.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  attach,
  driverOnNewSession,
  ensureArtifactsDir,
  recordedTexts,
  recordTexts,
  serverAndBrowser,
  signIn,
  sleep,
  terminalText,
  text,
  textFramesSent,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

const STATUS = ['#conn-state', '#close-reason', '#notice'];

/** A second page on the same session, in its own context (its own window size). */
async function observerOn(env, sessionId, viewport) {
  const ctx = await env.rec.newContext(env.browser, viewport);
  const page = await ctx.newPage();
  await signIn(page, env.server.origin, env.server.token.secret);
  await attach(page, sessionId, 'observer');
  return { ctx, page };
}

/**
 * A page's rendered rows as runs of [classes, text]: the DOM renderer gives every run of cells
 * with the same colours and attributes one span, so this compares characters and attributes.
 * The cursor's own classes are left out (focus differs between the pages), and so are trailing
 * blanks.
 */
async function screenRuns(page) {
  return page.$eval('.xterm-rows', (el) =>
    [...el.children].map((row) => {
      const runs = [];
      const cells = row.children.length ? [...row.children] : [row];
      for (const cell of cells) {
        const cls = [...(cell.classList ?? [])].filter((c) => !c.startsWith('xterm-cursor')).sort().join(' ');
        const last = runs.at(-1);
        if (last && last[0] === cls) last[1] += cell.textContent ?? '';
        else runs.push([cls, cell.textContent ?? '']);
      }
      while (runs.length && runs.at(-1)[1].trimEnd() === '' && runs.at(-1)[0] === '') runs.pop();
      if (runs.length) runs.at(-1)[1] = runs.at(-1)[0] === '' ? runs.at(-1)[1].trimEnd() : runs.at(-1)[1];
      return JSON.stringify(runs);
    }),
  );
}

/** Both pages render the same rows, characters and attributes. */
async function sameScreen(a, b) {
  const [ra, rb] = [await screenRuns(a), await screenRuns(b)];
  return ra.length === rb.length && ra.every((r, i) => r === rb[i]) ? ra : false;
}

async function waitSameScreen(a, b, what, timeout = 30_000) {
  return waitFor(() => sameScreen(a, b), { timeout, message: `the observer to show the driver's screen (${what})` }).catch(
    async (err) => {
      throw new Error(`${err.message}\n--- driver ---\n${await terminalText(a)}\n--- observer ---\n${await terminalText(b)}`);
    },
  );
}

/** Each page (by name) opened one socket, never closed it, and never left `connected`. */
async function assertStayedConnected(env, pages) {
  for (const [who, page] of Object.entries(pages)) {
    const sockets = env.rec.sockets.filter((s) => s.page === page);
    const counts = { opened: sockets.length, closed: sockets.filter((s) => s.closed).length };
    assert.deepEqual(counts, { opened: 1, closed: 0 }, `${who}: one socket, never closed`);
    const texts = await recordedTexts(page);
    assert.ok(!texts.some((t) => /^#conn-state=(?!connected)/.test(t)), `${who} stayed connected: ${texts.join(' | ')}`);
    assert.equal(await text(page, '#conn-state'), 'connected');
  }
}

/** Wait until one of the page's rows reads exactly `row` (a marker printed on its own line). */
async function waitForRow(page, row, timeout) {
  await waitFor(async () => (await terminalText(page)).split('\n').some((r) => r.trimEnd() === row), {
    timeout,
    interval: 500,
    message: `the terminal to show the row ${JSON.stringify(row)}`,
  });
}

describe('terminal state and flow control', { timeout: 600_000 }, () => {
  const env = serverAndBrowser();

  it('an observer smaller than the driver shows exactly the driver\'s screen with vi open', async () => {
    const { page: driver, sessionId } = await driverOnNewSession(env, { width: 1100, height: 760 });
    // Lines wider than the observer's window would be: a re-wrapping observer would garble them.
    const file = `/tmp/attachd-e2e-vi-${process.pid}-${Date.now()}.txt`;
    await typeCommand(driver, `for i in $(seq 1 60); do printf 'row %03d %s\\n' $i "$(seq -s . 1 28)"; done > ${file}; vi ${file}`);
    await waitForTerminal(driver, 'row 001 1.2.3.4.5.6.7.8.9.10');
    const { cols } = (await textFramesSent(driver)).filter((f) => f.msg.type === 'resize').at(-1).msg;
    assert.ok(cols >= 100, `the driver is wider than the file's lines (${cols} columns)`);

    const { page: observer } = await observerOn(env, sessionId, { width: 640, height: 480 });
    await waitSameScreen(driver, observer, 'on join');
    const scale = Number(await observer.getAttribute('#terminal .xterm', 'data-scale'));
    assert.ok(scale > 0 && scale < 1, `the observer is scaled down, not re-wrapped (scale ${scale})`);
    assert.equal(await observer.getAttribute('#terminal', 'class'), 'terminal scaled');

    // Live updates too: jump to the end, number the lines, search.
    await driver.click('#terminal');
    await driver.keyboard.type('G:set number\n/row 033\n', { delay: 20 });
    await waitForTerminal(driver, ' 33 row 033');
    const runs = await waitSameScreen(driver, observer, 'after vi commands');
    assert.ok(runs.some((r) => /xterm-fg-\d/.test(r)), 'coloured cells (the line numbers) are part of the comparison');
    await driver.screenshot({ path: path.join(ensureArtifactsDir(), 'vi-driver.png') });
    await observer.screenshot({ path: path.join(ensureArtifactsDir(), 'vi-observer.png') });

    // The driver's window shrinks: the PTY follows, and so does the observer, still identical.
    await driver.setViewportSize({ width: 900, height: 600 });
    await sleep(500);
    await waitSameScreen(driver, observer, 'after the driver resized');
    await driver.keyboard.type(':q!\n', { delay: 20 });
  });

  for (const flood of [
    { name: '`seq 1 3000000`', command: 'seq 1 3000000', last: '3000000' },
    { name: '`yes | head -c 30000000; echo END-MARK`', command: 'yes | head -c 30000000; echo END-MARK', last: 'END-MARK' },
  ]) {
    it(`${flood.name} typed by the driver: no close, no reconnect, the end and the prompt visible; a slow observer resyncs`, async (t) => {
      const { page: driver, sessionId } = await driverOnNewSession(env);
      const { page: observer } = await observerOn(env, sessionId);
      // The observer tab renders 20x slower than the driver's: it falls behind and must be resynced.
      const cdp = await observer.context().newCDPSession(observer);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 20 });
      await recordTexts(driver, STATUS);
      await recordTexts(observer, STATUS);
      const ticketsBefore = env.rec.ticketPosts().length;

      const started = Date.now();
      await typeCommand(driver, flood.command);
      await waitForRow(driver, flood.last, 300_000);
      t.diagnostic(`${flood.name}: the driver showed ${flood.last} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const after = uniqueEcho('after-flood');
      await typeCommand(driver, after.command);
      await waitForTerminal(driver, after.output, 60_000);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
      await waitForTerminal(observer, after.output, 120_000);

      await assertStayedConnected(env, { driver, observer });
      assert.equal(env.rec.ticketPosts().length, ticketsBefore, 'no new ticket: nobody reconnected');
      const obsTexts = await recordedTexts(observer);
      assert.ok(
        obsTexts.some((t) => /^#notice=Output was faster than this page: skipped [\d.]+ [kMG]?B to catch up\.$/.test(t)),
        `the slow observer was resynced, with a note: ${obsTexts.join(' | ')}`,
      );
      // The shell still answers on both screens; the observer ends on the driver's screen.
      await waitSameScreen(driver, observer, 'after the flood');
    });
  }

  it('a 25 s sustained flood: no 429, the pages stay connected', async () => {
    const { page: driver, sessionId } = await driverOnNewSession(env);
    const { page: observer } = await observerOn(env, sessionId);
    await recordTexts(driver, STATUS);
    await recordTexts(observer, STATUS);
    const responsesBefore = env.rec.responses.length;
    // `timeout` may cut yes mid-line: the marker gets a line of its own.
    await typeCommand(driver, 'timeout 25 yes attachd-sustained-flood; echo; echo FLOOD-DONE');
    await waitForRow(driver, 'FLOOD-DONE', 180_000);
    const after = uniqueEcho('after-sustained');
    await typeCommand(driver, after.command);
    await waitForTerminal(driver, after.output, 60_000);
    await waitForTerminal(observer, after.output, 60_000);
    const refused = env.rec.responses.slice(responsesBefore).filter((r) => r.status === 429);
    assert.deepEqual(refused, [], 'no 429 answers');
    await assertStayedConnected(env, { driver, observer });
  });
});
