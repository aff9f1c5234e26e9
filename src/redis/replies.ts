/** A flat `[name, value, name, value, ...]` reply (XINFO, TS.INFO) as a map. */
export function fieldMap(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}
