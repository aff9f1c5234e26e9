import { describe, expect, it } from 'vitest';
import { formatCursor, isBehind, parseCursor } from '../src/domain/feed-cursor.js';

describe('live-feed cursors', () => {
  it('are the stream id itself with one partition', () => {
    expect(formatCursor(['1795316035551-0'])).toBe('1795316035551-0');
    expect(parseCursor('1795316035551-0', 1)).toEqual(['1795316035551-0']);
    expect(parseCursor('mhxk3b9_0.1', 1)).toBeUndefined();
  });

  it('carry every partition compactly with several, and read back the same', () => {
    const cursor = ['1795316035551-0', '1795316035560-3', '0-0', '1795316036000-0'];
    const text = formatCursor(cursor);
    expect(text).toBe(`0_${(1795316035551).toString(36)}.${(1795316035560).toString(36)}-3.0.${(1795316036000).toString(36)}`);
    expect(parseCursor(text, 4)).toEqual(cursor);
    const live = ['1795316035551-0', '1795316035560-3', '1795316035555-0', '1795316036000-12'];
    expect(formatCursor(live)).toBe(`${(1795316035551).toString(36)}_0.9-3.4.${(449).toString(36)}-12`);
    expect(parseCursor(formatCursor(live), 4)).toEqual(live);
    expect(formatCursor(live).length).toBeLessThan(40);
  });

  it('take a single stream id as that id in every partition', () => {
    expect(parseCursor('1795316035551-7', 3)).toEqual(['1795316035551-7', '1795316035551-7', '1795316035551-7']);
  });

  it.each(['', 'abc', '1_2', 'zz_0.0', `${(1795316035551).toString(36)}_0.0.0`, `${(1795316035551).toString(36)}_0.0.0.0.0`, '0_0.-1.0.0', 'zzzzzzzzzzzz_0.0.0.0'])(
    'refuse %j for 4 partitions',
    (text) => {
      expect(parseCursor(text, 4)).toBeUndefined();
    },
  );

  it('tell whether one is behind another in any partition', () => {
    expect(isBehind(['1-0', '5-0'], ['1-0', '6-0'])).toBe(true);
    expect(isBehind(['2-0', '5-0'], ['1-0', '5-0'])).toBe(false);
  });
});
