/**
 * Waits for `work` until `deadlineMs` (unix ms) at the latest; true when it finished in time. The
 * work itself goes on: the caller decides what to cut.
 */
export async function settledBy(work: Promise<unknown>, deadlineMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((done) => (timer = setTimeout(() => done(false), Math.max(0, deadlineMs - Date.now()))));
  try {
    return await Promise.race([work.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
