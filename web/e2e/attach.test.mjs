// End-to-end: the built web client against a real attachd in Debian's Chromium. Driver and
// observer attach, control hand-over, foreign-origin refusal, CSP and token-leak checks.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  attach,
  Attachd,
  createSession,
  ensureArtifactsDir,
  launchBrowser,
  pageStorage,
  Recorder,
  signIn,
  sleep,
  startStaticServer,
  terminalText,
  text,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

describe('attachd web client', { timeout: 180_000 }, () => {
  let server;
  let browser;
  const rec = new Recorder();
  let driverPage; // page A: the first driver
  let sessionId;
  let firstOutput;

  before(async () => {
    server = await Attachd.start();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('signs in, creates a session, attaches as driver and runs a command', async () => {
    const ctx = await rec.newContext(browser);
    driverPage = await ctx.newPage();
    await signIn(driverPage, server.origin, server.token.secret);
    assert.equal(await driverPage.inputValue('#token'), '', 'the token field is cleared after sign-in');

    sessionId = await createSession(driverPage);
    await attach(driverPage, sessionId, 'driver');
    assert.equal(await text(driverPage, '#role'), 'driver');
    await waitForText(driverPage, '#holder', /^you$/);
    await waitForText(driverPage, '#participants', /^1 driver, 0 observers$/);
    await waitForText(driverPage, '#idle', /^(idle close in \d+:\d\d(:\d\d)?|—)$/);
    assert.equal(await driverPage.getAttribute('#terminal', 'data-input'), 'enabled');
    assert.equal(await driverPage.isDisabled('#acquire'), true, 'acquire is disabled while holding control');
    assert.equal(await driverPage.isEnabled('#release'), true);

    firstOutput = uniqueEcho('hello');
    await typeCommand(driverPage, firstOutput.command);
    await waitForTerminal(driverPage, firstOutput.output);

    // The xterm theme/dimension rules reached the page despite `style-src 'self'`.
    const css = await driverPage.$eval('.xterm-rows', (el) => {
      const s = getComputedStyle(el);
      return { whiteSpace: s.whiteSpace, pointerEvents: s.pointerEvents };
    });
    assert.deepEqual(css, { whiteSpace: 'pre', pointerEvents: 'none' });
    const violations = await driverPage.evaluate(() => window.__cspViolations);
    assert.deepEqual(violations, [], 'no Content-Security-Policy violations');

    const shot = path.join(ensureArtifactsDir(), 'terminal.png');
    await driverPage.screenshot({ path: shot });
  });

  it('serves the page under the strict CSP', async () => {
    const res = await fetch(`${server.origin}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"]) {
      assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
    }
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script>');
    assert.doesNotMatch(html, /<style|\sstyle=/i, 'no inline style');
  });

  it('an observer sees the same output and cannot type', async () => {
    const ctx = await rec.newContext(browser);
    const obs = await ctx.newPage();
    await signIn(obs, server.origin, server.token.secret);
    await attach(obs, sessionId, 'observer');
    assert.equal(await text(obs, '#role'), 'observer');
    assert.equal(await obs.getAttribute('#terminal', 'data-input'), 'disabled');
    assert.equal(await obs.isDisabled('#acquire'), true);
    assert.equal(await obs.isDisabled('#release'), true);
    await waitForText(obs, '#holder', /^alice$/);
    await waitForText(obs, '#whoami', /^you are alice$/);
    // Scrollback replay brings the earlier output.
    await waitForTerminal(obs, firstOutput.output);
    await waitForText(driverPage, '#participants', /^1 driver, 1 observer$/);

    // Live output reaches the observer.
    const live = uniqueEcho('live');
    await typeCommand(driverPage, live.command);
    await waitForTerminal(obs, live.output);

    // Keystrokes on the observer page never leave the browser.
    const before = rec.binaryFramesSent(obs).length;
    await typeCommand(obs, 'echo observer-typed');
    await sleep(700);
    assert.equal(rec.binaryFramesSent(obs).length, before, 'observer sent no binary (stdin) frames');
    assert.equal(before, 0);
    assert.ok(!(await terminalText(driverPage)).includes('observer-typed'), 'observer input did not reach the shell');
    await waitForText(obs, '#notice', /^You are observing: typing is off\.$/);
    await ctx.close();
    await waitForText(driverPage, '#participants', /^1 driver, 0 observers$/);
  });

  it('control passes between two drivers (release on one, acquire on the other)', async () => {
    const ctx = await rec.newContext(browser);
    const second = await ctx.newPage();
    await signIn(second, server.origin, server.token.secret);
    await attach(second, sessionId, 'driver');
    await waitForText(second, '#holder', /^alice$/);
    assert.equal(await second.getAttribute('#terminal', 'data-input'), 'disabled');
    assert.equal(await second.isDisabled('#acquire'), false, 'may request control while someone holds it');
    await waitForText(driverPage, '#participants', /^2 drivers, 0 observers$/);

    await driverPage.click('#release');
    await waitForText(driverPage, '#holder', /^nobody$/);
    await waitForText(second, '#holder', /^nobody$/);
    assert.equal(await driverPage.getAttribute('#terminal', 'data-input'), 'disabled');

    await waitFor(() => second.isEnabled('#acquire'), { message: '#acquire enabled on the second driver' });
    await second.click('#acquire');
    await waitForText(second, '#holder', /^you$/);
    await waitForText(driverPage, '#holder', /^alice$/);
    assert.equal(await second.getAttribute('#terminal', 'data-input'), 'enabled');

    const ctl = uniqueEcho('ctl');
    await typeCommand(second, ctl.command);
    await waitForTerminal(second, ctl.output);
    await waitForTerminal(driverPage, ctl.output);

    const sentBefore = rec.binaryFramesSent(driverPage).length;
    await typeCommand(driverPage, 'echo not-the-holder');
    await sleep(700);
    assert.equal(rec.binaryFramesSent(driverPage).length, sentBefore, 'the former driver sends no stdin');

    // Hand control back so later scenarios start from page A holding it.
    await second.click('#release');
    await waitForText(driverPage, '#holder', /^nobody$/);
    await driverPage.click('#acquire');
    await waitForText(driverPage, '#holder', /^you$/);
    await ctx.close();
  });

  it('a page from a foreign origin cannot attach with the victim’s cookie ticket', async () => {
    const foreign = await startStaticServer('<!doctype html><title>foreign</title><p>not attachd</p>');
    try {
      // The victim (same context = same cookie jar) obtains a cookie ticket it has not used yet.
      const status = await driverPage.evaluate(
        async ({ id, secret }) => {
          const res = await fetch(`/api/v1/sessions/${encodeURIComponent(id)}/attach-tickets`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ role: 'driver', delivery: 'cookie' }),
          });
          return { status: res.status, body: await res.text() };
        },
        { id: sessionId, secret: server.token.secret },
      );
      assert.equal(status.status, 201);
      assert.doesNotMatch(status.body, /"ticket"/, 'cookie delivery returns no ticket in the body');
      const cookies = await driverPage.context().cookies(server.origin + `/api/v1/sessions/${sessionId}/attach`);
      const cookie = cookies.find((c) => c.name === 'attach_ticket');
      assert.ok(cookie, 'attach_ticket cookie is set');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.equal(cookie.path, `/api/v1/sessions/${sessionId}/attach`);
      assert.ok(!(await driverPage.evaluate(() => document.cookie)).includes('attach_ticket'), 'not readable by script');

      const tryAttach = ({ url, wait }) =>
        new Promise((resolve) => {
          const out = { opened: false, messages: [], closeCode: null, error: false };
          const ws = new WebSocket(url, ['attach.v1']);
          ws.binaryType = 'arraybuffer';
          ws.onopen = () => (out.opened = true);
          ws.onerror = () => (out.error = true);
          ws.onmessage = (e) => {
            out.messages.push(typeof e.data === 'string' ? e.data : '[binary]');
            if (typeof e.data === 'string' && e.data.includes('"hello"')) ws.close(1000);
          };
          ws.onclose = (e) => {
            out.closeCode = e.code;
            resolve(out);
          };
          setTimeout(() => resolve(out), wait);
        });
      const wsUrl = `ws://127.0.0.1:${server.port}/api/v1/sessions/${sessionId}/attach`;

      const evil = await driverPage.context().newPage();
      await evil.goto(`${foreign.origin}/`);
      const attempt = await evil.evaluate(tryAttach, { url: wsUrl, wait: 8000 });
      assert.ok(!attempt.messages.some((m) => m.includes('"hello"')), `no hello for the foreign origin: ${JSON.stringify(attempt)}`);
      assert.equal(attempt.opened, false, 'refused before the upgrade (403 origin_not_allowed)');
      assert.ok(attempt.error || attempt.closeCode !== null, 'the socket failed');
      await evil.close();

      // Control: the same cookie still works from the right origin, so it was sent, valid and
      // unconsumed, and only the Origin check stopped the foreign page.
      const own = await driverPage.evaluate(tryAttach, { url: wsUrl, wait: 8000 });
      assert.ok(own.messages.some((m) => m.includes('"hello"')), `same-origin attach with the cookie works: ${JSON.stringify(own)}`);
    } finally {
      await foreign.close();
    }
  });

  it('the token never appears in a URL, in storage or in script-readable cookies', async () => {
    const secret = server.token.secret;
    assert.ok(rec.requests.length > 5, 'requests were recorded');
    assert.ok(rec.sockets.length >= 3, 'attach sockets were recorded');
    for (const r of rec.requests) assert.ok(!r.url.includes(secret), `token in request URL ${r.url}`);
    for (const s of rec.sockets) {
      assert.ok(!s.url.includes(secret), `token in WebSocket URL ${s.url}`);
      assert.equal(new URL(s.url).search, '', `no query string on ${s.url}`);
    }
    for (const page of rec.pages.filter((p) => !p.isClosed())) {
      const dump = await pageStorage(page);
      assert.ok(!dump.includes(secret), `token in storage: ${dump}`);
    }
    const app = rec.pages.filter((p) => !p.isClosed() && p.url().startsWith(server.origin));
    for (const page of app) assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
    assert.deepEqual(
      rec.console.filter((m) => /Content Security Policy|Refused to/i.test(m)),
      [],
      'no CSP errors on the console',
    );
  });
});
