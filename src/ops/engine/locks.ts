/**
 * Keeping runs that touch the same resource apart.
 *
 * Two layers, taken in this order and released together:
 * - a lock file `STATE_DIR/locks/<resource>.lock`, created with O_EXCL, holding the run id,
 *   operator, pid and start time. It works when the database is down or is the very thing
 *   being replaced. A file whose process is gone is stale and is taken over.
 * - a session-level PostgreSQL advisory lock per resource on one dedicated connection, when
 *   the database is a real server and reachable. It keeps apart runs on different hosts
 *   that share the database, and it is released by the server if this process dies.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../../db/index.ts';
import type { PoolClient } from '../../db/pool.ts';
import { describeError, errnoCode, ShipError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { currentProcess, liveness } from './process-identity.ts';

export interface LockRecord {
  readonly resource: string;
  readonly runId: string;
  readonly operator: string;
  readonly pid: number;
  readonly host: string;
  readonly processStart?: string | undefined;
  readonly since: string;
}

export interface HeldLocks {
  readonly resources: readonly string[];
  /** Whether the PostgreSQL advisory layer is held too. */
  readonly advisory: boolean;
  release(): Promise<void>;
}

export interface AcquireLocksOptions {
  readonly stateDir: string;
  readonly resources: readonly string[];
  readonly runId: string;
  readonly operator: string;
  /** A real PostgreSQL server to take advisory locks on; undefined → lock files only. */
  readonly database: Database | undefined;
  /** Queue behind the holder instead of failing with SHIP_ERR_LOCKED. */
  readonly wait: boolean;
  readonly signal?: AbortSignal | undefined;
  readonly logger: Logger;
  readonly now: () => Date;
  readonly pollMs?: number;
}

/** A lock file whose first write never happened (crash right after create) is stale after this. */
const EMPTY_LOCK_STALE_MS = 60_000;

export function lockFilePath(stateDir: string, resource: string): string {
  return path.join(stateDir, 'locks', `${encodeResource(resource)}.lock`);
}

/** Readable and safe as one file name: `database:app` stays as is, `/` and the like are %-encoded. */
function encodeResource(resource: string): string {
  const encoded = resource.replace(/[^A-Za-z0-9._:@=+-]/g, (char) =>
    [...Buffer.from(char, 'utf8')].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
  return encoded.startsWith('.') ? `%2E${encoded.slice(1)}` : encoded;
}

/** The advisory lock key: 64 bits of a hash of the resource name, namespaced away from the migrator's key. */
export function advisoryKey(resource: string): bigint {
  const digest = createHash('sha256').update(`shipshape:run-lock:${resource}`).digest();
  return digest.readBigInt64BE(0);
}

export async function acquireLocks(options: AcquireLocksOptions): Promise<HeldLocks> {
  const resources = [...new Set(options.resources)].sort();
  const pollMs = options.pollMs ?? 1_000;
  let announced = false;
  for (;;) {
    const outcome = await tryAcquireAll(options, resources);
    if (outcome.held) return outcome.held;
    if (!options.wait) throw lockedError(outcome.conflict);
    if (!announced) {
      options.logger.warn(
        { resource: outcome.conflict.resource, heldBy: outcome.conflict.runId },
        `waiting for ${outcome.conflict.resource}, held by ${describeHolder(outcome.conflict)}`,
      );
      announced = true;
    }
    try {
      await sleep(pollMs, undefined, { signal: options.signal });
    } catch {
      throw new ShipError(
        'SHIP_ERR_LOCKED',
        `Interrupted while waiting for ${outcome.conflict.resource}, held by ${describeHolder(outcome.conflict)}. Nothing was changed.`,
      );
    }
  }
}

interface Conflict {
  readonly resource: string;
  readonly runId: string | undefined;
  readonly operator: string | undefined;
  readonly since: string | undefined;
  readonly where: string;
  readonly lockFile: string | undefined;
  /** The holder ran on another host, so its liveness could not be checked. */
  readonly otherHost: boolean;
}

async function tryAcquireAll(
  options: AcquireLocksOptions,
  resources: string[],
): Promise<{ held: HeldLocks; conflict?: undefined } | { held?: undefined; conflict: Conflict }> {
  const files: string[] = [];
  const releaseFiles = async () => {
    for (const file of files.reverse()) await removeOwnLock(file, options.runId);
  };
  for (const resource of resources) {
    const result = await tryFileLock(options, resource);
    if (result !== 'acquired') {
      await releaseFiles();
      return { conflict: result };
    }
    files.push(lockFilePath(options.stateDir, resource));
  }
  let client: PoolClient | undefined;
  if (options.database?.kind === 'postgres' && resources.length > 0) {
    const advisory = await tryAdvisoryLocks(options, options.database, resources);
    if ('conflict' in advisory) {
      await releaseFiles();
      return { conflict: advisory.conflict };
    }
    if ('unavailable' in advisory) {
      options.logger.warn({ err: advisory.unavailable }, 'database unreachable: holding the lock files only');
    } else {
      client = advisory.client;
    }
  }
  const held = client;
  return {
    held: {
      resources,
      advisory: held !== undefined,
      release: async () => {
        if (held) {
          try {
            await held.query('SELECT pg_advisory_unlock_all()');
            held.release();
          } catch (error) {
            // The session is gone, and with it the locks; drop the broken connection.
            held.release(error instanceof Error ? error : true);
          }
        }
        await releaseFiles();
      },
    },
  };
}

async function tryFileLock(options: AcquireLocksOptions, resource: string): Promise<'acquired' | Conflict> {
  const file = lockFilePath(options.stateDir, resource);
  await mkdir(path.dirname(file), { recursive: true });
  const me = currentProcess();
  const record: LockRecord = {
    resource,
    runId: options.runId,
    operator: options.operator,
    pid: me.pid,
    host: me.host,
    processStart: me.processStart,
    since: options.now().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await open(file, 'wx', 0o660);
      try {
        await handle.writeFile(`${JSON.stringify(record)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return 'acquired';
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
    }
    const existing = await readLockFile(file);
    if (existing === 'missing') continue;
    if (existing.record !== undefined && existing.record.runId === options.runId && liveness(existing.record) === 'alive') {
      // This very run in this very process already holds it (a resource listed twice).
      return 'acquired';
    }
    if (!(await isStale(existing, file))) {
      return {
        resource,
        runId: existing.record?.runId,
        operator: existing.record?.operator,
        since: existing.record?.since,
        where: existing.record ? `pid ${existing.record.pid} on ${existing.record.host}` : 'an unreadable lock file',
        lockFile: file,
        otherHost: existing.record !== undefined && liveness(existing.record) === 'unknown',
      };
    }
    await takeOverStale(file, existing.text, options.logger);
  }
  return { resource, runId: undefined, operator: undefined, since: undefined, where: 'a lock file that keeps changing', lockFile: file, otherHost: false };
}

async function readLockFile(file: string): Promise<'missing' | { text: string; record: LockRecord | undefined }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  return { text, record: parseLockRecord(text) };
}

function parseLockRecord(text: string): LockRecord | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const field = (name: string): unknown => (name in value ? Reflect.get(value, name) : undefined);
    const [resource, runId, operator, pid, host, since, processStart] = ['resource', 'runId', 'operator', 'pid', 'host', 'since', 'processStart'].map(field);
    if (typeof resource !== 'string' || typeof runId !== 'string' || typeof operator !== 'string') return undefined;
    if (typeof pid !== 'number' || typeof host !== 'string' || typeof since !== 'string') return undefined;
    return { resource, runId, operator, pid, host, since, processStart: typeof processStart === 'string' ? processStart : undefined };
  } catch {
    return undefined;
  }
}

async function isStale(existing: { text: string; record: LockRecord | undefined }, file: string): Promise<boolean> {
  if (existing.record) return liveness(existing.record) === 'dead';
  try {
    const info = await stat(file);
    return Date.now() - info.mtimeMs > EMPTY_LOCK_STALE_MS;
  } catch {
    return false;
  }
}

/**
 * Moves a stale lock aside atomically. Two processes may both see the same stale file; the
 * loser of that race may have moved the winner's fresh lock, so it checks what it moved
 * and puts a fresh lock back.
 */
async function takeOverStale(file: string, staleText: string, logger: Logger): Promise<void> {
  const aside = `${file}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved === staleText) {
    logger.warn({ lockFile: file, stale: parseLockRecord(staleText)?.runId }, 'removed a stale lock left by a process that is gone');
    await unlink(aside).catch(() => undefined);
    return;
  }
  await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

async function removeOwnLock(file: string, runId: string): Promise<void> {
  const existing = await readLockFile(file).catch(() => 'missing' as const);
  if (existing === 'missing' || existing.record?.runId !== runId) return;
  await unlink(file).catch(() => undefined);
}

type AdvisoryOutcome = { client: PoolClient } | { conflict: Conflict } | { unavailable: string };

async function tryAdvisoryLocks(options: AcquireLocksOptions, database: Database, resources: string[]): Promise<AdvisoryOutcome> {
  let client: PoolClient;
  try {
    client = await database.pool.connect();
  } catch (error) {
    return { unavailable: describeError(error) };
  }
  // A checked-out client that loses its server emits 'error'; without a listener that kills the process.
  client.on('error', (error) => options.logger.warn({ err: error.message }, 'lost the advisory-lock connection; the lock files still hold'));
  try {
    // Lets a run on another host name the holder: pg_stat_activity shows it.
    await client.query("SELECT set_config('application_name', $1::text, false)", [`shipshape-run ${options.runId} ${options.operator}`.slice(0, 63)]);
    for (const resource of resources) {
      const key = advisoryKey(resource);
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [key.toString()]);
      if (rows[0]?.locked) continue;
      const conflict = await advisoryHolder(client, resource, key);
      await client.query('SELECT pg_advisory_unlock_all()');
      client.release();
      return { conflict };
    }
    return { client };
  } catch (error) {
    client.release(error instanceof Error ? error : true);
    return { unavailable: describeError(error) };
  }
}

async function advisoryHolder(client: PoolClient, resource: string, key: bigint): Promise<Conflict> {
  const unsigned = BigInt.asUintN(64, key);
  const { rows } = await client.query<{ application_name: string; backend_start: Date | null; pid: number }>(
    `SELECT a.application_name, a.backend_start, a.pid
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1
      LIMIT 1`,
    [(unsigned >> 32n).toString(), (unsigned & 0xffff_ffffn).toString()],
  );
  const row = rows[0];
  const [, runId, operator] = /^shipshape-run (\S+) (\S+)/.exec(row?.application_name ?? '') ?? [];
  return {
    resource,
    runId,
    operator,
    since: row?.backend_start?.toISOString(),
    where: row ? `database backend pid ${row.pid}` : 'a database session',
    lockFile: undefined,
    otherHost: false,
  };
}

function describeHolder(conflict: Conflict): string {
  const who = conflict.runId ? `run ${conflict.runId}` : 'another run';
  const facts = [conflict.operator ? `operator ${conflict.operator}` : undefined, conflict.where, conflict.since ? `since ${conflict.since}` : undefined]
    .filter((fact) => fact !== undefined)
    .join(', ');
  return `${who} (${facts})`;
}

function lockedError(conflict: Conflict): ShipError {
  const show = conflict.runId ? ` See it with \`shipshape runs show ${conflict.runId}\`.` : '';
  const stale = conflict.lockFile && conflict.otherHost ? ` If that process is gone on its host, remove ${conflict.lockFile} by hand.` : '';
  return new ShipError(
    'SHIP_ERR_LOCKED',
    `${conflict.resource} is locked by ${describeHolder(conflict)}. Nothing was changed. Wait for it to finish, or pass --wait to queue behind it.${show}${stale}`,
    { details: { resource: conflict.resource, heldByRun: conflict.runId, heldBy: conflict.operator, since: conflict.since } },
  );
}
