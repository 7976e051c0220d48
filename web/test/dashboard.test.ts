import { describe, expect, it } from 'vitest';

import {
  ageText,
  backendText,
  countsText,
  cssColor,
  holderDetail,
  holderName,
  idleCountdownText,
  parseDashboard,
  SseParser,
  thumbnailRows,
} from '../src/dashboard';

const BODY = {
  viewer: { subject: 'alice', tenant: 'acme', scopes: ['sessions:read', 'attach:moderate'] },
  sessions: [
    {
      id: 's-1',
      name: null,
      tenant: 'acme',
      created_by: 'alice',
      created_at: '2026-01-01T00:00:00Z',
      backend: 'local',
      command: ['/bin/bash'],
      pod: null,
      idle_deadline: '2026-01-01T00:30:00Z',
      holder: { connection_id: 'c-1', subject: 'bob' },
      drivers: 1,
      observers: 2,
      output_offset: 10,
      size: { cols: 80, rows: 24 },
      thumbnail: {
        offset: 10,
        cols: 80,
        rows: 2,
        cursor: { col: 2, row: 0 },
        lines: [[{ text: '$ ' }, { text: 'red', fg: 1, attrs: ['bold'] }], []],
      },
    },
    { id: 'pod-a', name: 'pod-a', backend: 'kube', pod: 'pod-a', command: [], holder: null, drivers: 0, observers: 0 },
    { name: 'no id: dropped' },
  ],
};

describe('parseDashboard', () => {
  it('turns the server body into cards', () => {
    const d = parseDashboard(BODY);
    expect(d.viewer.scopes).toContain('attach:moderate');
    expect(d.sessions.map((s) => s.id)).toEqual(['s-1', 'pod-a']);
    const a = d.sessions[0]!;
    const b = d.sessions[1]!;
    expect(holderName(a)).toBe('bob');
    expect(holderName(b)).toBe('nobody');
    expect(holderDetail(a)).toBe('bob (c-1)');
    expect(holderDetail(b)).toBe('');
    expect(countsText(a)).toBe('1 driver · 2 observers');
    expect(backendText(a)).toBe('local');
    expect(backendText(b)).toBe('pod pod-a');
    expect(thumbnailRows(a.thumbnail!)).toEqual(['$ red', '']);
    expect(a.thumbnail!.lines[0]?.[1]).toEqual({ text: 'red', fg: 1, bg: undefined, attrs: ['bold'] });
    expect(b.thumbnail).toBeNull();
  });

  it('names the holder by display name when the token gave one', () => {
    const named = { ...BODY.sessions[0], holder: { connection_id: 'c-1', subject: 'u-42', name: 'Bob Builder' } };
    const [card] = parseDashboard({ viewer: BODY.viewer, sessions: [named] }).sessions;
    expect(holderName(card!)).toBe('Bob Builder');
    expect(holderDetail(card!)).toBe('u-42 (c-1)');
  });

  it('survives bodies that are not dashboards', () => {
    expect(parseDashboard(null)).toEqual({ viewer: { subject: '', scopes: [] }, sessions: [] });
    expect(parseDashboard({ sessions: 'x' }).sessions).toEqual([]);
  });
});

describe('SseParser', () => {
  it('assembles events across chunk boundaries and skips comments', () => {
    const p = new SseParser();
    expect(p.feed('event: sessions\nda')).toEqual([]);
    expect(p.feed('ta: {"a":1}\n')).toEqual([]);
    expect(p.feed('\n: keepalive\n\nevent: sessions\r\ndata: 2\r\n\r\n')).toEqual([
      { event: 'sessions', data: '{"a":1}' },
      { event: 'sessions', data: '2' },
    ]);
  });

  it('joins multi-line data and defaults the event name', () => {
    expect(new SseParser().feed('data: a\ndata: b\n\n')).toEqual([{ event: 'message', data: 'a\nb' }]);
  });
});

describe('times', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  it('ages and idle countdowns', () => {
    expect(ageText('2026-01-01T00:00:00Z', t0 + 65_000)).toBe('1:05');
    expect(ageText(null, t0)).toBe('—');
    expect(idleCountdownText('2026-01-01T00:30:00Z', t0 + 60_000)).toBe('closes in 29:00');
    expect(idleCountdownText('not a date', t0)).toBe('—');
  });
});

describe('cssColor', () => {
  it('maps the xterm palette and rgb', () => {
    expect(cssColor(1)).toBe('#cd0000');
    expect(cssColor(16)).toBe('#000000');
    expect(cssColor(196)).toBe('#ff0000');
    expect(cssColor(232)).toBe('#080808');
    expect(cssColor('#0a0b0c')).toBe('#0a0b0c');
    expect(cssColor('red; x')).toBeNull();
    expect(cssColor(256)).toBeNull();
    expect(cssColor(undefined)).toBeNull();
  });
});
