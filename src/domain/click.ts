import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';
import { ipField } from './ip.js';
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

/** A click as the API accepts it: ids bounded, ip in canonical form. */
export type Click = z.output<typeof clickSchema>;

export type ClickParse = { ok: true; click: Click } | { ok: false; problems: FieldProblem[] };

export function parseClick(body: unknown): ClickParse {
  const result = clickSchema.safeParse(body);
  return result.success ? { ok: true, click: result.data } : { ok: false, problems: fieldProblems(result.error.issues, '(body)') };
}
