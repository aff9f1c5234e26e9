export { fieldMap } from '../../src/redis/replies.js';

/** A flat `[name, value, ...]` list (stream entry fields, label lists) as pairs. */
export function pairs(flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
