// Unit tests for the output offset tracker: hello starts it, snapshots move it, output advances
// it, and a snapshot's payload frame does not.

import { describe, expect, it } from 'vitest';

import { isOffset, OutputOffset } from '../src/offset';

describe('OutputOffset', () => {
  it('is unknown until a hello carries output_offset (older servers never do)', () => {
    const o = new OutputOffset();
    expect(o.binary(10)).toBe('output');
    expect(o.value).toBeNull();
    o.hello(undefined);
    o.binary(5);
    expect(o.value).toBeNull();
  });

  it('advances by the length of every output frame', () => {
    const o = new OutputOffset();
    o.hello(100);
    o.binary(10);
    o.binary(0);
    o.binary(7);
    expect(o.value).toBe(117);
  });

  it('the one frame after a snapshot is its payload; output continues from the snapshot offset', () => {
    const o = new OutputOffset();
    o.hello(0);
    o.snapshot(5000);
    expect(o.binary(999)).toBe('snapshot');
    expect(o.value).toBe(5000);
    expect(o.binary(3)).toBe('output');
    expect(o.value).toBe(5003);
  });

  it('a connection lost before the snapshot payload forgets the offset; after it, keeps it', () => {
    const o = new OutputOffset();
    o.hello(0);
    o.snapshot(10);
    o.interrupted();
    expect(o.value).toBeNull();
    o.hello(0);
    o.snapshot(10);
    o.binary(4);
    o.interrupted();
    expect(o.value).toBe(10);
  });

  it('accepts only exact non-negative integers as offsets', () => {
    expect([0, 1, 2 ** 53 - 1].every(isOffset)).toBe(true);
    expect([-1, 1.5, 2 ** 53, '5', null, Number.NaN].some(isOffset)).toBe(false);
  });
});
