import { describe, expect, it } from 'vitest';
import { readLiveDecision } from '../src/domain/decision-entry.js';
import { compareStreamIds, isStreamId } from '../src/domain/stream-id.js';
import { formatDecisionEvent } from '../src/http/events-route.js';

describe('stream ids', () => {
  it.each([
    ['1-0', '1-1', -1],
    ['1-9', '1-10', -1],
    ['9-0', '10-0', -1],
    ['1795316035551-0', '1795316035551-0', 0],
    ['1795316035552-0', '1795316035551-99', 1],
    // Past 2^53, where a Number would round both to the same value.
    ['18446744073709551615-0', '18446744073709551614-0', 1],
    ['5-18446744073709551615', '5-18446744073709551614', 1],
  ])('orders %s against %s as a stream does', (a, b, sign) => {
    expect(Math.sign(compareStreamIds(a, b))).toBe(sign);
    expect(Math.sign(compareStreamIds(b, a))).toBe(0 - sign);
  });

  it.each(['1795316035551-0', '0-0', '0-1'])('accepts %s', (id) => expect(isStreamId(id)).toBe(true));
  it.each(['', '1795316035551', '-', '1-', 'a-1', '1-0\n', '1-0; DROP', '123456789012345678901-0'])('refuses %j', (id) =>
    expect(isStreamId(id)).toBe(false),
  );
});

describe('the live feed format', () => {
  const fields = ['transaction_id', 'tx-1', 'device_id', 'dev\n1', 'ip', '10.0.0.1', 'status', 'fraud', 'fraud_type', 'click_spam', 'ts', '1795316035551'];

  it('reads a decision the API wrote, and writes it as one server-sent event with the stream id as its id', () => {
    const decision = readLiveDecision(fields)!;
    expect(decision).toEqual({ transaction_id: 'tx-1', device_id: 'dev\n1', ip: '10.0.0.1', status: 'fraud', fraud_type: 'click_spam', ts: 1795316035551 });
    // A newline in an id stays inside the JSON, so it cannot end the event early or forge a field.
    expect(formatDecisionEvent('1795316035551-0', decision)).toBe(
      'id: 1795316035551-0\nevent: decision\ndata: {"transaction_id":"tx-1","device_id":"dev\\n1","ip":"10.0.0.1","status":"fraud","fraud_type":"click_spam","ts":1795316035551}\n\n',
    );
  });

  it.each<[string, string, string | undefined]>([
    ['an unknown fraud type', 'fraud_type', 'maybe'],
    ['a ts that is not a time', 'ts', 'soon'],
    ['no device_id', 'device_id', undefined],
  ])('skips an entry with %s', (_what, name, value) => {
    const changed: string[] = [];
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] !== name) changed.push(fields[i]!, fields[i + 1]!);
      else if (value !== undefined) changed.push(name, value);
    }
    expect(readLiveDecision(changed)).toBeUndefined();
  });
});
