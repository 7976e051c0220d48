// End-to-end: a session's recording, listed on its recordings page and played in the browser
// (play, then seek to the end, at 8× with idle skipped), ends on the driver's final screen,
// read from the player's xterm rows. The file is fetched with the token in the header: no
// request URL carries it. Screenshot in e2e/artifacts/recording-player.png.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  driverOnNewSession,
  ensureArtifactsDir,
  serverAndBrowser,
  sleep,
  terminalText,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
} from './support/harness.mjs';

/** Rows without trailing blanks, and without blank rows at the end. */
function screenOf(text) {
  const rows = text.split('\n').map((r) => r.replace(/\s+$/u, ''));
  while (rows.length && rows[rows.length - 1] === '') rows.pop();
  return rows.join('\n');
}

const playerText = (page) =>
  page.$eval('#player-terminal .xterm-rows', (el) => [...el.children].map((row) => row.textContent ?? '').join('\n'));

describe('recording player', { timeout: 120_000 }, () => {
  const env = serverAndBrowser();

  it('plays a recording to the end and shows the driver’s final screen', async () => {
    const { page, sessionId } = await driverOnNewSession(env);
    const out = uniqueEcho('rec');
    await typeCommand(page, `printf '\\033[1;32mgreen\\033[0m\\n'; seq 1 30; ${out.command}`);
    await waitForTerminal(page, out.output);
    await sleep(300);
    const driverScreen = screenOf(await terminalText(page));
    assert.match(driverScreen, /\n30\n/);

    await page.click('#detach');
    // The last chunk is sealed within a second of the last output.
    await sleep(1500);
    await page.click(`#sessions li[data-session-id="${sessionId}"] [data-testid="recordings"]`);
    await page.waitForSelector('#recordings-panel:not([hidden]) li[data-testid="recording"]');
    const badge = await page.textContent('li[data-testid="recording"] [data-testid="verified"]');
    assert.equal(badge, 'verified');

    await page.click('li[data-testid="recording"] [data-testid="play-recording"]');
    await page.waitForSelector('#player:not([hidden])');
    await page.selectOption('#player-speed', '8');
    await waitFor(async () => (await page.getAttribute('#player', 'data-state')) === 'playing', { message: 'the player to play' });
    // Seek to the end.
    await page.$eval('#player-seek', (el) => {
      el.value = el.max;
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await waitFor(async () => (await page.getAttribute('#player', 'data-state')) === 'ended', { message: 'the player to reach the end' });
    await waitFor(async () => screenOf(await playerText(page)) === driverScreen, {
      timeout: 10_000,
      message: 'the player to show the driver’s final screen',
    }).catch(async (err) => {
      throw new Error(`${err.message}\n--- driver ---\n${driverScreen}\n--- player ---\n${screenOf(await playerText(page))}`);
    });
    await page.screenshot({ path: path.join(ensureArtifactsDir(), 'recording-player.png') });

    // Back to the start and play again: the same screen at the end.
    await page.$eval('#player-seek', (el) => {
      el.value = '0';
      el.dispatchEvent(new Event('input', { bubbles: true }));
    });
    assert.equal(screenOf(await playerText(page)), '', 'seeking to the start shows the empty screen');
    await page.click('#player-play');
    await waitFor(async () => (await page.getAttribute('#player', 'data-state')) === 'ended', {
      timeout: 30_000,
      message: 'the replay to end',
    });
    assert.equal(screenOf(await playerText(page)), driverScreen);

    const secret = env.server.token.secret;
    for (const r of env.rec.requests) assert.ok(!r.url.includes(secret), `token in a URL: ${r.url}`);
    const fetched = env.rec.requests.filter((r) => r.url.includes(`/api/v1/sessions/${sessionId}/recordings/`));
    assert.ok(fetched.length >= 1, 'the recording was fetched');
    for (const r of fetched) assert.equal(new URL(r.url).search, '', `no query string: ${r.url}`);
  });
});
