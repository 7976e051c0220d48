// End-to-end reconnect behaviour against a real attachd: server restart on the same port, and a
// server-initiated close (max lifetime) that the page recovers from by itself with a fresh ticket.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  attach,
  Attachd,
  createSession,
  keepOnFailure,
  launchBrowser,
  pageStorage,
  Recorder,
  recordedTexts,
  recordTexts,
  signIn,
  sleep,
  terminalText,
  text,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

const STATUS = ['#conn-state', '#close-reason'];

describe('reconnect', { timeout: 180_000 }, () => {
  let browser;
  const rec = new Recorder();
  const servers = [];

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    for (const s of servers) await s.dispose();
  });

  it('after a server restart on the same port the page retries by itself with a fresh ticket', async () => {
    const server = await Attachd.start();
    servers.push(server);
    const page = await (await rec.newContext(browser)).newPage();
    // On failure: the page's status history, every ticket POST with its time, and the log of
    // both server processes (the drained one and its successor) go to e2e/artifacts/.
    const evidence = async () =>
      [
        '--- status history (#conn-state, #close-reason) ---',
        ...(await recordedTexts(page).catch(() => ['(page gone)'])),
        '--- ticket POSTs sent ---',
        ...rec.requests
          .filter((r) => r.method === 'POST' && /\/attach-tickets$/.test(new URL(r.url).pathname))
          .map((r) => `${new Date(r.time).toISOString()} ${r.url}`),
        '--- ticket POSTs answered ---',
        ...rec.ticketPosts().map((p) => `${new Date(p.time).toISOString()} ${p.status} ${p.url}`),
        '--- attachd log ---',
        server.logTail(400),
      ].join('\n');
    await keepOnFailure('reconnect-restart', evidence, async () => {
      await signIn(page, server.origin, server.token.secret);
      const sessionId = await createSession(page);
      await attach(page, sessionId, 'driver');
      const out = uniqueEcho('before');
      await typeCommand(page, out.command);
      await waitForTerminal(page, out.output);
      await recordTexts(page, STATUS);

      const ticketsBefore = rec.ticketPosts().length;
      await server.stop(); // SIGTERM: `shutdown` frame, close 1001
      await waitForText(page, '#conn-state', /^(reconnecting|failed)/);
      await server.launch(); // same port, same config

      // A local PTY session does not survive its process: a fresh ticket POST that the page makes on
      // its own answers 404 (from the draining or the restarted process), and the client must stop
      // right there (no reconnect after 404).
      await waitFor(() => rec.ticketPosts().slice(ticketsBefore).find((p) => p.status === 404), {
        timeout: 60_000,
        message: 'a ticket POST answered 404',
      });
      await waitForText(page, '#conn-state', /^failed$/, 3_000);
      await waitForText(page, '#close-reason', /no longer exists/);
      assert.doesNotMatch(await text(page, '#close-reason'), /Gave up/, 'stopped by the 404, not by running out of attempts');
      // Retry cannot bring a gone session back: "New session" is offered instead.
      assert.equal(await page.isVisible('#retry'), false, 'no Retry for a session that no longer exists');
      assert.equal(await page.isVisible('#start-new'), true, '"New session" is offered');
      const texts = await recordedTexts(page);
      assert.ok(texts.some((t) => /^#close-reason=.*shutting down/.test(t)), `shutdown explained: ${texts.join(' | ')}`);
      assert.ok(
        texts.some((t) => /^#conn-state=reconnecting \(attempt \d+(, next try in \d+s)?\)$/.test(t)),
        `attempt shown: ${texts.join(' | ')}`,
      );

      await sleep(3000);
      const notFound = rec.ticketPosts().slice(ticketsBefore).filter((p) => p.status === 404);
      assert.equal(notFound.length, 1, 'exactly one attempt got 404; none after it');

      // The signed-in page keeps working against the restarted server.
      await page.click('#detach');
      const fresh = await createSession(page);
      await attach(page, fresh, 'driver');
      await waitForText(page, '#holder', /^you$/);
      const after = uniqueEcho('after');
      await typeCommand(page, after.command);
      await waitForTerminal(page, after.output);
    });
  });

  it('after a server-initiated close (max lifetime) the page reconnects and replays the scrollback once', async () => {
    const server = await Attachd.start({ extraConfig: '\n[ws]\nmax_lifetime = "10s"\n' });
    servers.push(server);
    const page = await (await rec.newContext(browser)).newPage();
    await signIn(page, server.origin, server.token.secret);
    const sessionId = await createSession(page);
    await attach(page, sessionId, 'driver');
    const out = uniqueEcho('kept');
    await typeCommand(page, out.command);
    await waitForTerminal(page, out.output);
    await recordTexts(page, STATUS);
    const ticketsBefore = rec.ticketPosts().length;

    await waitFor(async () => (await recordedTexts(page)).some((t) => t.startsWith('#conn-state=reconnecting')), {
      timeout: 20_000,
      message: 'the lifetime close to start a reconnect',
    });
    await waitForText(page, '#conn-state', /^connected$/, 30_000);
    const texts = await recordedTexts(page);
    assert.ok(texts.some((t) => /^#close-reason=.*maximum lifetime/.test(t)), `4002 explained: ${texts.join(' | ')}`);
    const posts = rec.ticketPosts().slice(ticketsBefore);
    assert.ok(posts.length >= 1 && posts.every((p) => p.status === 201), 'a fresh ticket per attempt');
    assert.equal(await text(page, '#close-reason'), '', 'the close reason clears once connected');

    // The terminal was reset before the replay: the output line appears exactly once.
    await waitForTerminal(page, out.output);
    await sleep(500);
    const screen = await terminalText(page);
    const count = screen.split(out.output).length - 1;
    assert.equal(count, 1, `output replayed exactly once after reset:\n${screen}`);

    // Control comes back to the same subject within the grace period; input works again.
    await waitForText(page, '#holder', /^you$/);
    const again = uniqueEcho('again');
    await typeCommand(page, again.command);
    await waitForTerminal(page, again.output);

    const secret = server.token.secret;
    for (const r of rec.requests) assert.ok(!r.url.includes(secret), `token in request URL ${r.url}`);
    for (const s of rec.sockets) assert.equal(new URL(s.url).search, '', `no query string on ${s.url}`);
    assert.ok(!(await pageStorage(page)).includes(secret));
  });
});
