// End-to-end layout of the attached page in Chromium: the terminal fills the height the status
// bar leaves (desktop, phone portrait 390x844, phone landscape 844x390), nothing overflows, the
// status bar stays compact on a phone, the xterm fills its box to the bottom edge, and a resize
// storm sends at most one resize per 100 ms. Screenshots land in e2e/artifacts/.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  boxes,
  driverOnNewSession,
  ensureArtifactsDir,
  serverAndBrowser,
  sleep,
  textFramesSent,
  typeCommand,
  waitFor,
  waitForTerminal,
} from './support/harness.mjs';

const VIEWPORTS = [
  { name: 'desktop', width: 1100, height: 760 },
  { name: 'phone-portrait', width: 390, height: 844 },
  { name: 'phone-landscape', width: 844, height: 390 },
];

/** The boxes the layout checks read. */
const PARTS = ['#statusbar', '#statusbar .actions', '#terminal', '#terminal .xterm', '#terminal .xterm-viewport', '#terminal .xterm-screen'];

async function resizeFrames(page) {
  return (await textFramesSent(page)).filter((f) => f.msg.type === 'resize');
}

describe('layout', { timeout: 180_000 }, () => {
  const env = serverAndBrowser();

  for (const vp of VIEWPORTS) {
    it(`${vp.name} (${vp.width}x${vp.height}): the terminal fills the page below a compact status bar`, async () => {
      const { ctx, page } = await driverOnNewSession(env, { width: vp.width, height: vp.height });
      await sleep(300); // let the last fit settle
      await page.screenshot({ path: path.join(ensureArtifactsDir(), `${vp.name}.png`) });

      const b = await boxes(page, PARTS);
      const info = JSON.stringify(b);
      assert.ok(b.scrollHeight <= b.innerHeight && b.scrollWidth <= b.innerWidth, `no page overflow: ${info}`);
      const term = b['#terminal'];
      assert.ok(term.bottom <= b.innerHeight, `the terminal ends inside the window: ${info}`);
      // Fills the space: only the page's and panel's padding below it, never a fixed share.
      assert.ok(b.innerHeight - term.bottom <= 32, `the terminal reaches the bottom of the window: ${info}`);
      assert.ok(term.top < b.innerHeight * 0.35, `the status bar leaves the terminal most of the height: ${info}`);

      // Compact status bar: two rows of fields at most, the buttons on one row.
      const bar = b['#statusbar'];
      assert.ok(bar.height <= 72, `status bar height ${bar.height} px: ${info}`);
      const tops = await page.$$eval('#statusbar .actions button', (els) =>
        els.filter((e) => e.offsetParent !== null).map((e) => Math.round(e.getBoundingClientRect().top)),
      );
      assert.equal(new Set(tops).size, 1, `the visible buttons share one row: ${tops}`);
      assert.ok(b['#statusbar .actions'].right <= b.innerWidth, `buttons inside the window: ${info}`);

      // The xterm, its viewport and scrollbar span the whole box: no strip at the bottom edge.
      for (const part of ['#terminal .xterm', '#terminal .xterm-viewport']) {
        assert.ok(Math.abs(b[part].bottom - term.bottom) <= 1, `${part} ends at the box's bottom edge: ${info}`);
        assert.ok(Math.abs(b[part].top - term.top) <= 1, `${part} starts at the box's top edge: ${info}`);
      }
      // Rows fill the box: what is left under the last row is less than one row.
      const rows = await page.$eval('.xterm-rows', (el) => el.children.length);
      const screen = b['#terminal .xterm-screen'];
      assert.ok(term.bottom - screen.bottom < screen.height / rows, `less than one row left over: ${info}`);
      await ctx.close();
    });
  }

  it('a resize storm sends at most one resize per 100 ms, ending with the final size', async () => {
    const { ctx, page } = await driverOnNewSession(env);
    await waitFor(async () => (await resizeFrames(page)).length > 0, { message: 'the resize sent on taking control' });
    await sleep(300);
    const before = (await resizeFrames(page)).length;

    // Shrink the window in 20 steps over ~0.4 s, as dragging a window edge does.
    const t0 = await page.evaluate(() => performance.now());
    for (let i = 1; i <= 20; i++) {
      await page.setViewportSize({ width: 1100 - i * 20, height: 760 - i * 8 });
      await sleep(20);
    }
    await sleep(600); // the trailing resize
    const frames = (await resizeFrames(page)).slice(before);
    const t1 = await page.evaluate(() => performance.now());
    assert.ok(frames.length >= 1, 'the storm ends in a resize');
    const gaps = frames.slice(1).map((f, i) => f.t - frames[i].t);
    assert.ok(gaps.every((g) => g >= 99), `resizes at least 100 ms apart: gaps ${gaps.map((g) => g.toFixed(0))}`);
    assert.ok(frames.length <= Math.ceil((t1 - t0) / 100) + 1, `${frames.length} resizes in ${(t1 - t0).toFixed(0)} ms`);
    const size = await page.evaluate(() => {
      const rows = document.querySelectorAll('.xterm-rows > div').length;
      return { rows };
    });
    const last = frames.at(-1).msg;
    assert.equal(last.rows, size.rows, `the last resize carries the final size: ${JSON.stringify(last)}`);
    // The PTY follows: the shell sees the final size.
    await typeCommand(page, 'stty size');
    await waitForTerminal(page, `${last.rows} ${last.cols}`);
    await ctx.close();
  });
});
