import calculateSlot from 'cluster-key-slot';
import type { Config } from '../config.js';
import type { Resolution, SeriesName } from '../stats/series.js';
import type { OffenderKind, OffendersBackend } from './offenders.js';

/**
 * Every key the service uses, named in this one place.
 *
 * Decisions are split into partitions: a device always belongs to the same one, and all the keys
 * of a partition (its devices' windows and verdicts, its decision stream and dead letters, and the
 * counters its workers write) share one hash tag, so that every script touches a single cluster
 * slot. The blacklist keeps the name operators type (`redis-cli -c CF.ADDNX ip_cf <ip>`), and the
 * ban registry shares its slot.
 *
 * On a single Redis with one partition, keys carry no partition tag: the names are those of the
 * reference article's service (`fraud:decisions`, `fraud:window:{<device>}`, ...).
 */
export interface Keyspace {
  /** Whether keys carry hash tags (a cluster, or more than one partition). */
  tagged: boolean;
  partitions: Partition[];
  /** The partition a device's clicks go to: stable for a given number of partitions. */
  partitionOf(deviceId: string): Partition;
  blacklist: string;
  /** Blacklisted ranges and the allowlist, looked up with the blacklist, in its slot. */
  lists: ListKeys;
  /** Keys of the ban registry (redis-om entities and the sweep's indexes), in the blacklist's slot. */
  bans: BanKeys;
  /** An address's windows for the per-address rules, in the address's own slot (`{<ip>}`). */
  address(ip: string): { clicks: string; devices: string };
  /** The rule set in force (a hash: version, source, updated_at, rules). */
  rules: string;
}

export interface ListKeys {
  /** Hash: range member -> CIDR (see includes/ranges.lua). */
  blacklistRanges: string;
  /** Hash: `<family>/<length>` -> ranges of that length. */
  blacklistRangeLengths: string;
  /** Hash: address -> JSON of why it is allowlisted. */
  allowAddresses: string;
  allowRanges: string;
  allowRangeLengths: string;
  /** Hash: device id -> JSON of why it is allowlisted. */
  allowDevices: string;
}

export interface Partition {
  index: number;
  /** The hash tag shared by the partition's keys, braces included; '' when keys are untagged. */
  tag: string;
  stream: string;
  deadLetters: string;
  window(deviceId: string): string;
  verdicts(deviceId: string): string;
  /** RedisTimeSeries: per-second counts, or their per-minute compaction. */
  timeSeries(series: SeriesName, resolution: Resolution): string;
  /** RedisTimeSeries: decisions of the partition not yet counted. */
  workerLag: string;
  /** Plain Redis: a minute's per-second counts of every series. */
  minuteCounts(minuteStartMs: number): string;
  /** Plain Redis: an hour's per-minute counts of every series. */
  hourCounts(hourStartMs: number): string;
  /**
   * A minute's top offending devices or addresses (see offenders.ts). The backend is in the name,
   * as the counters' is, so that a change of OFFENDERS_BACKEND never meets a key of the other type.
   */
  offenders(kind: OffenderKind, backend: OffendersBackend, minuteStartMs: number): string;
}

export interface BanKeys {
  /** redis-om keeps the entry of an ip at `<schemaName>:<ip>`. */
  schemaName: string;
  entryPrefix: string;
  /** ip scored by expiry (unix ms): drives the sweep. */
  byExpiry: string;
  /** ip scored by time added: the listing where RediSearch is not used. */
  byAdded: string;
}

export interface KeyspaceSettings {
  keyPrefix: string;
  blacklistKey: string;
  streamKey: string;
  deadLetterKey: string;
  partitions: number;
  cluster: boolean;
}

const SLOTS = 16_384;
/** DECISION_STREAM_PARTITIONS=auto on a cluster: spread evenly over 1, 2, 3, 4, 6 or 12 masters. */
export const CLUSTER_PARTITIONS = 12;

/** The service's keyspace for its settings, on a cluster or a single Redis. */
export function keyspaceFor(config: Pick<Config, 'keyPrefix' | 'blacklist' | 'stream' | 'worker'>, cluster: boolean): Keyspace {
  const { partitions } = config.stream;
  return createKeyspace({
    keyPrefix: config.keyPrefix,
    blacklistKey: config.blacklist.key,
    streamKey: config.stream.key,
    deadLetterKey: config.worker.deadLetterKey,
    partitions: partitions === 'auto' ? (cluster ? CLUSTER_PARTITIONS : 1) : partitions,
    cluster,
  });
}

export function createKeyspace({ keyPrefix, blacklistKey, streamKey, deadLetterKey, partitions: count, cluster }: KeyspaceSettings): Keyspace {
  const tagged = cluster || count > 1;
  const partitions = Array.from({ length: count }, (_, index) =>
    tagged ? taggedPartition(keyPrefix, streamKey, deadLetterKey, index, partitionTag(index, count)) : untaggedPartition(keyPrefix, streamKey, deadLetterKey),
  );
  const banTag = tagged ? `{${hashTagOf(blacklistKey)}}` : '';
  const banSchema = tagged ? `${keyPrefix}ban:${banTag}` : `${keyPrefix}ban`;
  const list = (name: string) => (tagged ? `${keyPrefix}${name}:${banTag}` : `${keyPrefix}${name}`);
  return {
    tagged,
    partitions,
    partitionOf: (deviceId) => partitions[count === 1 ? 0 : fnv1a(deviceId) % count]!,
    blacklist: blacklistKey,
    lists: {
      blacklistRanges: list('blacklist:ranges'),
      blacklistRangeLengths: list('blacklist:range_lengths'),
      allowAddresses: list('allow:ips'),
      allowRanges: list('allow:ranges'),
      allowRangeLengths: list('allow:range_lengths'),
      allowDevices: list('allow:devices'),
    },
    address: (ip) => ({ clicks: `${keyPrefix}ip:{${ip}}:clicks`, devices: `${keyPrefix}ip:{${ip}}:devices` }),
    rules: `${keyPrefix}rules`,
    bans: {
      schemaName: banSchema,
      entryPrefix: `${banSchema}:`,
      byExpiry: tagged ? `${keyPrefix}bans:${banTag}:by_expiry` : `${keyPrefix}bans:by_expiry`,
      byAdded: tagged ? `${keyPrefix}bans:${banTag}:by_added` : `${keyPrefix}bans:by_added`,
    },
  };
}

/** The reference article's names: one stream, a device's keys tagged by the device itself. */
function untaggedPartition(prefix: string, streamKey: string, deadLetterKey: string): Partition {
  return {
    index: 0,
    tag: '',
    stream: streamKey,
    deadLetters: deadLetterKey,
    window: (deviceId) => `${prefix}window:{${deviceId}}`,
    verdicts: (deviceId) => `${prefix}verdicts:{${deviceId}}`,
    timeSeries: (series, resolution) => (resolution === '1s' ? `${prefix}ts:${series}` : `${prefix}ts:${series}:1m`),
    workerLag: `${prefix}ts:worker_lag`,
    minuteCounts: (minute) => `${prefix}counts:${minute}`,
    hourCounts: (hour) => `${prefix}counts:h:${hour}`,
    offenders: (kind, backend, minute) => `${prefix}offenders:${backend}:${kind}:${minute}`,
  };
}

/**
 * The tag comes before any device id in a key, so that it is the key's first `{...}` (the one
 * Redis hashes) whatever the id holds.
 */
function taggedPartition(prefix: string, streamKey: string, deadLetterKey: string, index: number, tag: string): Partition {
  return {
    index,
    tag,
    stream: `${streamKey}:${tag}`,
    deadLetters: `${deadLetterKey}:${tag}`,
    window: (deviceId) => `${prefix}window:${tag}:${deviceId}`,
    verdicts: (deviceId) => `${prefix}verdicts:${tag}:${deviceId}`,
    timeSeries: (series, resolution) => (resolution === '1s' ? `${prefix}ts:${tag}:${series}` : `${prefix}ts:${tag}:${series}:1m`),
    workerLag: `${prefix}ts:${tag}:worker_lag`,
    minuteCounts: (minute) => `${prefix}counts:${tag}:${minute}`,
    hourCounts: (hour) => `${prefix}counts:${tag}:h:${hour}`,
    offenders: (kind, backend, minute) => `${prefix}offenders:${tag}:${backend}:${kind}:${minute}`,
  };
}

/**
 * Partition i's tag is the first `p<i>.<n>` whose slot lies in the i-th of `count` equal shares of
 * the 16,384 slots. `redis-cli --cluster create` gives each master an equal run of slots, so with a
 * partition count that is a multiple of the masters, each master holds the same number of
 * partitions (random tags would pile several onto one master).
 */
export function partitionTag(index: number, count: number): string {
  const [from, to] = [Math.floor((index * SLOTS) / count), Math.floor(((index + 1) * SLOTS) / count)];
  for (let n = 0; ; n++) {
    const candidate = `p${index}.${n}`;
    const slot = calculateSlot(candidate);
    if (slot >= from && slot < to) return `{${candidate}}`;
  }
}

/** What Redis hashes of a key: the first non-empty `{...}`, else the whole key. */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

/** FNV-1a over UTF-8: cheap, stable across processes and versions, and well spread. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
