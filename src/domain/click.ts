import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';
import { ipField, MAX_IP_LENGTH } from './ip.js';
import { textField } from './text.js';

/** Most characters (code points) of a device or transaction id. */
export const MAX_ID_LENGTH = 128;

export const clickSchema = z.object(
  {
    device_id: textField('device_id', MAX_ID_LENGTH),
    transaction_id: textField('transaction_id', MAX_ID_LENGTH),
    ip: ipField,
  },
  { error: 'body must be a JSON object with device_id, ip and transaction_id' },
);

/** Most bytes one id character takes in JSON: a character past U+FFFF as two escapes, `\ud83d\ude00` (raw UTF-8 is at most 4). */
const MAX_JSON_BYTES_PER_ID_CHARACTER = 12;
/** An address is ASCII: at most a `\u0031` escape per character. */
const MAX_JSON_BYTES_PER_IP_CHARACTER = 6;
/** A pretty-printer's line breaks and indentation: `JSON.stringify(batch, null, 4)` adds 60 bytes to each click. */
const MAX_WHITESPACE_PER_CLICK = 64;

/**
 * Most bytes one valid click takes as an item of a JSON array, however its writer escapes it
 * (Python's json.dumps escapes every non-ASCII character by default): both ids at their limit in
 * the longest escapes, the ip at its limit likewise, the field names and punctuation, a comma, and
 * indentation. 3,565 bytes, so that a batch of valid clicks is never refused for its size.
 */
export const MAX_CLICK_JSON_BYTES =
  JSON.stringify({ device_id: '', ip: '', transaction_id: '' }).length +
  ','.length +
  MAX_WHITESPACE_PER_CLICK +
  2 * MAX_ID_LENGTH * MAX_JSON_BYTES_PER_ID_CHARACTER +
  MAX_IP_LENGTH * MAX_JSON_BYTES_PER_IP_CHARACTER;

/** A click as the API accepts it: ids bounded, ip in canonical form. */
export type Click = z.output<typeof clickSchema>;

export type ClickParse = { ok: true; click: Click } | { ok: false; problems: FieldProblem[] };

export function parseClick(body: unknown): ClickParse {
  const result = clickSchema.safeParse(body);
  return result.success ? { ok: true, click: result.data } : { ok: false, problems: fieldProblems(result.error.issues, '(body)') };
}
