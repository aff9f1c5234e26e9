import { createHash, timingSafeEqual } from 'node:crypto';

/** A secret as a fixed-length digest: what `matchesSecret` compares against. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/**
 * Whether `given` is the secret whose digest is `expected`. Digests are compared, in constant time,
 * so that neither the secret's content nor its length leaks through how long the answer takes.
 */
export function matchesSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(secretDigest(given), expected);
}
