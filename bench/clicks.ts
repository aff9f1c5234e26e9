/** The clicks the benchmark sends: a new transaction every time, from a bounded set of devices. */
export interface BenchClick {
  device_id: string;
  ip: string;
  transaction_id: string;
}

/** The address of the n-th click: 10.0.0.0/8, never one the benchmark blacklists (see blacklistedIp). */
function clickIp(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** The n-th blacklisted address: 100.64.0.0/10, apart from every click's address. */
export function blacklistedIp(n: number): string {
  return `100.${64 + ((n >> 16) & 63)}.${(n >> 8) & 255}.${n & 255}`;
}

/**
 * Clicks of `devices` devices named `<prefix>-<n>`, in turn (`order: 'cycle'`, so that every device
 * clicks again within the window, as the article's load does) or at random (`'random'`, the growth
 * section, so that every click may touch any of a million devices). Transaction ids never repeat
 * within a run.
 */
export function clickSource(devices: number, { prefix = 'dev', order = 'cycle' }: { prefix?: string; order?: 'cycle' | 'random' } = {}): () => BenchClick {
  const run = Date.now().toString(36);
  let n = 0;
  return () => {
    const i = n++;
    const device = order === 'cycle' ? i % devices : Math.floor(Math.random() * devices);
    return { device_id: `${prefix}-${device}`, ip: clickIp(i), transaction_id: `${run}-${i}` };
  };
}
