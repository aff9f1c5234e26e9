/**
 * Redis stream entry ids, `<ms>-<seq>`. Ids grow strictly along a stream, so comparing them is how
 * the live feed knows what a client has already seen. Both parts are 64-bit, past what a Number
 * holds exactly, so they are compared as digit strings.
 */
const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;

export function isStreamId(text: string): boolean {
  return STREAM_ID.test(text);
}

/** Negative when `a` comes before `b` in a stream, 0 when equal, positive when after. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = '', aSeq = ''] = a.split('-');
  const [bMs = '', bSeq = ''] = b.split('-');
  return compareDigits(aMs, bMs) || compareDigits(aSeq, bSeq);
}

/** Compares two unsigned decimal numbers written without leading zeros (as Redis writes them). */
function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
