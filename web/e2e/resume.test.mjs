// End-to-end SPEC §8 resume in Chromium: after a server-initiated close (max lifetime) the page
// asks for its ticket with `resume_from` = what it has rendered; an exact resume keeps the screen
// (no clear, no replay, nothing twice), and a gap larger than the replay ring gives a
// `resume_gap` snapshot with a note.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  driverOnNewSession,
  Recorder,
  recordedTexts,
  recordTexts,
  serverAndBrowser,
  sleep,
  terminalText,
  typeCommand,
  uniqueEcho,
  waitFor,
  waitForTerminal,
  waitForText,
} from './support/harness.mjs';

describe('resume', { timeout: 300_000 }, () => {
  const env = serverAndBrowser({ extraConfig: '\n[ws]\nmax_lifetime = "10s"\n\n[session]\nreplay_bytes = 65536\n' });

  /** Wait for the page's next socket after `count` sockets, and its hello. */
  async function nextConnection(page, count) {
    const socket = await waitFor(() => env.rec.sockets.filter((s) => s.page === page)[count], {
      timeout: 30_000,
      message: 'the page to reconnect',
    });
    await waitForText(page, '#conn-state', /^connected$/, 30_000);
    return socket;
  }

  it('an exact resume keeps the screen: resume_from sent, hello resumed, no snapshot, nothing twice', async () => {
    const { page } = await driverOnNewSession(env);
    const mine = env.rec.sockets.filter((s) => s.page === page);
    const out = uniqueEcho('kept');
    await typeCommand(page, out.command);
    await waitForTerminal(page, out.output);
    const bodiesBefore = env.rec.ticketBodies().length;

    const second = await nextConnection(page, mine.length);
    const body = env.rec.ticketBodies().slice(bodiesBefore).at(-1);
    assert.ok(Number.isSafeInteger(body?.resume_from) && body.resume_from > 0, `resume_from sent: ${JSON.stringify(body)}`);
    await sleep(500);
    const frames = Recorder.textFrames(second);
    assert.equal(frames[0]?.type, 'hello');
    assert.equal(frames[0].resumed, true, `resumed: ${JSON.stringify(frames[0])}`);
    assert.equal(frames[0].output_offset, body.resume_from);
    assert.ok(!frames.some((f) => f.type === 'snapshot'), 'no snapshot on an exact resume');
    const screen = await terminalText(page);
    assert.equal(screen.split(out.output).length - 1, 1, `the output is on screen exactly once:\n${screen}`);

    await waitForText(page, '#holder', /^you$/);
    const again = uniqueEcho('again');
    await typeCommand(page, again.command);
    await waitForTerminal(page, again.output);
  });

  it('a gap beyond the replay ring gives a resume_gap snapshot and a note', async () => {
    const { page } = await driverOnNewSession(env);
    const mine = env.rec.sockets.filter((s) => s.page === page);
    await recordTexts(page, ['#notice']);
    // Output never stops, so while the page reconnects the session writes far more than 64 KiB.
    await typeCommand(page, 'while :; do seq 1 5000; done');
    const second = await nextConnection(page, mine.length);
    await waitFor(() => Recorder.textFrames(second).find((f) => f.type === 'snapshot'), {
      timeout: 10_000,
      message: 'a snapshot after the resume',
    });
    const frames = Recorder.textFrames(second);
    assert.equal(frames[0].resumed, false);
    const snap = frames.find((f) => f.type === 'snapshot');
    assert.equal(snap.reason, 'resume_gap', JSON.stringify(snap));
    assert.ok(snap.skipped_bytes > 65536, JSON.stringify(snap));
    await waitFor(async () => (await recordedTexts(page)).some((t) => /^#notice=Reconnected: .* no longer held/.test(t)), {
      message: 'the resume_gap note',
    });

    await waitForText(page, '#holder', /^you$/);
    // The loop is stopped with Ctrl-C; a busy machine can deliver it between two `seq`s, where
    // the shell may start the next one, so it is pressed again until the shell answers.
    await page.click('#terminal');
    const after = uniqueEcho('after-gap');
    for (let attempt = 1; ; attempt++) {
      await page.keyboard.press('Control+C');
      await typeCommand(page, after.command);
      try {
        await waitForTerminal(page, after.output, 20_000);
        break;
      } catch (err) {
        // After the fifth Ctrl-C the failure (with the terminal's text) is the test's.
        if (attempt === 5) throw err;
      }
    }
  });
});
