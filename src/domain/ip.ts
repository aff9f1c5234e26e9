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
  const family = isIP(text);
  // isIP's IPv4 has no leading zeros, so its text is already the one spelling.
  if (family === 4) return text;
  if (family === 0 || text.includes('%')) return undefined;
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

/**
 * An address as the check scripts match ranges against it: its family and its bits in hex
 * (`4:cb007105` for 203.0.113.5, `6:20010db8…` with 32 digits for IPv6). A range is then a prefix
 * of those digits, which Lua can cut without parsing addresses.
 */
export function addressHex(canonical: string): string {
  if (isIP(canonical) === 4) {
    let hex = '4:';
    for (const part of canonical.split('.')) hex += Number(part).toString(16).padStart(2, '0');
    return hex;
  }
  const bytes = ipaddr.parse(canonical).toByteArray();
  return `${bytes.length === 4 ? 4 : 6}:${Buffer.from(bytes).toString('hex')}`;
}

/** An address range (CIDR), as the blacklist and allowlist keep it. */
export interface AddressRange {
  /** Canonical text: the network address and the prefix length, `203.0.113.0/24`, `2001:db8::/32`. */
  cidr: string;
  /**
   * What the scripts look it up by: the family, the first ceil(length / 4) hex digits of the
   * network, and the length (`4:cb0071/24`); see includes/ranges.lua.
   */
  member: string;
  /** `<family>/<length>`: the prefix lengths in use are what a lookup costs. */
  length: string;
}

/**
 * `203.0.113.0/24` or `2001:db8::/32` as a range; a host address with bits past the prefix
 * (`203.0.113.7/24`) means its network. Undefined for anything else (an IPv4-mapped IPv6 range is
 * refused: addresses are matched in their canonical, unmapped form).
 */
export function parseRange(text: string): AddressRange | undefined {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  if (canonicalIp(match[1]!) === undefined) return undefined;
  const parsed = ipaddr.parse(match[1]!);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) return undefined;
  const length = Number(match[2]);
  const bytes = parsed.toByteArray();
  const bits = bytes.length * 8;
  if (length > bits) return undefined;
  const masked = bytes.map((byte, i) => {
    const keep = Math.max(0, Math.min(8, length - i * 8));
    return byte & (0xff << (8 - keep)) & 0xff;
  });
  const network = ipaddr.fromByteArray(masked);
  const family = bytes.length === 4 ? 4 : 6;
  const hex = Buffer.from(masked).toString('hex').slice(0, Math.ceil(length / 4));
  const cidr = `${family === 4 ? network.toString() : (network as ipaddr.IPv6).toRFC5952String()}/${length}`;
  return { cidr, member: `${family}:${hex}/${length}`, length: `${family}/${length}` };
}

/** An address in its canonical spelling, or a range in its canonical CIDR form; undefined for anything else. */
export function canonicalAddressOrRange(text: string): string | undefined {
  return canonicalIp(text) ?? (text.includes('/') ? parseRange(text)?.cidr : undefined);
}

/** A field that takes an address or a range (the blacklist's and allowlist's entries). */
export const ipOrRangeField = z
  .string({ error: (issue) => (issue.input === undefined ? 'ip is required' : 'ip must be a string') })
  .max(MAX_IP_LENGTH + 4, `ip must be at most ${MAX_IP_LENGTH + 4} characters`)
  .transform((text, ctx) => {
    const canonical = canonicalAddressOrRange(text);
    if (canonical === undefined) {
      ctx.issues.push({ code: 'custom', input: text, message: 'ip must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24' });
      return z.NEVER;
    }
    return canonical;
  });
