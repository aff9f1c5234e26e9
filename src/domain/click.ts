import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';
import { ipField } from './ip.js';

export const MAX_ID_LENGTH = 128;

const id = (name: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`) })
    .min(1, `${name} must not be empty`)
    .max(MAX_ID_LENGTH, `${name} must be at most ${MAX_ID_LENGTH} characters`);

export const clickSchema = z.object(
  {
    device_id: id('device_id'),
    transaction_id: id('transaction_id'),
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
