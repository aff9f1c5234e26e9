import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { uptime } from 'node:os';
import { join } from 'node:path';

/**
 * The file by which the service that runs a data folder's private Redis claims the folder and says
 * where its Redis listens. Other commands (the worker, the blacklist CLI, the bench) read it to use
 * that Redis instead of starting a second one on the same append-only file.
 */
export const RECORD_FILE = 'private-redis.json';

export interface DataFolderRecord {
  /** The service that holds the folder. */
  service_pid: number;
  /** Unix ms when it claimed the folder. */
  claimed_at: number;
  /** Set once its Redis accepts connections. */
  redis?: {
    url: string;
    pid: number;
    /** Redis's own random id of this run (`INFO server`): tells this server from any other on the same port. */
    run_id: string;
    program: string;
  };
}

/** A record nobody finished writing yet (a claim a moment old) is given this long before it counts as stale. */
const UNWRITTEN_GRACE_MS = 5000;

export type RecordRead =
  | { state: 'none' }
  /** Its service is running (or still writing the record). */
  | { state: 'held'; record: DataFolderRecord | undefined }
  /** Its service is gone: a crash, or a kill. Its Redis may still run. */
  | { state: 'abandoned'; record: DataFolderRecord | undefined };

export function recordPath(dataDir: string): string {
  return join(dataDir, RECORD_FILE);
}

export function readRecord(dataDir: string): RecordRead {
  const path = recordPath(dataDir);
  let text: string;
  let writtenAt: number;
  try {
    text = readFileSync(path, 'utf8');
    writtenAt = statSync(path).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    throw error;
  }
  const record = parseRecord(text);
  if (record === undefined) return Date.now() - writtenAt < UNWRITTEN_GRACE_MS ? { state: 'held', record } : { state: 'abandoned', record };
  return { state: serviceAlive(record) ? 'held' : 'abandoned', record };
}

/**
 * Creates the record for this process, only if there is none (O_EXCL): of two services started on
 * one folder at once, one gets it. Answers false when a record is already there.
 */
export function createRecord(dataDir: string): boolean {
  const record: DataFolderRecord = { service_pid: process.pid, claimed_at: Date.now() };
  try {
    writeFileSync(recordPath(dataDir), JSON.stringify(record), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Adds the running Redis to this process's record; written whole, then renamed, so readers never see half. */
export function recordRedis(dataDir: string, redis: NonNullable<DataFolderRecord['redis']>): void {
  const path = recordPath(dataDir);
  const current = parseRecord(readFileSync(path, 'utf8'));
  if (current?.service_pid !== process.pid) throw new Error(`${path} no longer belongs to this process`);
  writeFileSync(`${path}.${process.pid}`, JSON.stringify({ ...current, redis }));
  renameSync(`${path}.${process.pid}`, path);
}

/** Removes the record if it is this process's; another service's is left alone. */
export function removeOwnRecord(dataDir: string): void {
  const path = recordPath(dataDir);
  try {
    if (parseRecord(readFileSync(path, 'utf8'))?.service_pid === process.pid) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Removes an abandoned record, so that `createRecord` can claim the folder. */
export function removeRecord(dataDir: string): void {
  try {
    unlinkSync(recordPath(dataDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function parseRecord(text: string): DataFolderRecord | undefined {
  try {
    const record = JSON.parse(text) as DataFolderRecord;
    return Number.isInteger(record.service_pid) && record.service_pid > 0 ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the process that wrote the record still runs. A record from before the machine last
 * started is stale whatever its pid now names: process ids start over at boot.
 */
function serviceAlive(record: DataFolderRecord): boolean {
  const bootedAt = Date.now() - uptime() * 1000;
  if (record.claimed_at < bootedAt) return false;
  try {
    process.kill(record.service_pid, 0);
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(record.service_pid);
}

/**
 * A process that has exited but whose parent has not yet collected it still answers signal 0.
 * Linux says so in /proc (state Z); elsewhere it counts as running until collected.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
