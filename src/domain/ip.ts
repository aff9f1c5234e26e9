import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** Long enough for any textual IPv6 address, short enough to refuse junk early. */
export const MAX_IP_LENGTH = 64;

/**
 * The one spelling of an address that every blacklist lookup and every record uses, so that
 * `::FFFF:1.1.1.1`, `::ffff:0101:0101` and `1.1.1.1` are the same client.
 *
 * `net.isIP` is the gate because it is strict: it refuses the legacy inet_aton forms
 * (`01.1.1.1`, `1.1.1`, `0x1.1.1.1`) whose meaning differs between parsers, and a spelling we
 * would read differently from the ad network is exactly how a client could dodge a ban.
 * Zone ids (`fe80::1%eth0`) name an interface on the sender's host, not a client, so they are
 * refused too.
 */
export function canonicalIp(text: string): string | undefined {
  if (isIP(text) === 0 || text.includes('%')) return undefined;
  const address = ipaddr.parse(text);
  if (address.kind() === 'ipv4') return address.toString();
  const v6 = address as ipaddr.IPv6;
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String();
}

/** An `ip` field of a request: any spelling in, the canonical form out. */
export const ipField = z
  .string({ error: (issue) => (issue.input === undefined ? 'ip is required' : 'ip must be a string') })
  .max(MAX_IP_LENGTH, `ip must be at most ${MAX_IP_LENGTH} characters`)
  .transform((text, ctx) => {
    const ip = canonicalIp(text);
    if (ip === undefined) {
      ctx.issues.push({ code: 'custom', input: text, message: 'ip must be an IPv4 or IPv6 address' });
      return z.NEVER;
    }
    return ip;
  });
