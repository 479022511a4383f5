/**
 * Runbook: "Troubleshooting Guide" as checks. Each looks at one of the guide's issues (and at
 * the state other procedures can leave behind), and every finding carries the guide's remedy
 * and the exact command that applies it.
 *
 *   High Database Connection Count → connections vs max_connections   (pool connections)
 *   Slow API Responses             → pg_stat_statements by mean time    (add indexes, optimise)
 *   High Memory Usage              → database size, dead rows           (archive, optimise tables)
 *   plus: long transactions, maintenance mode left on, backup freshness, pending migrations.
 */
import type { Config } from '../../config/index.ts';
import { describeConnection } from '../../db/backends.ts';
import { openDatabase, type Database } from '../../db/index.ts';
import { readAppState } from '../../domain/app-state.ts';
import { describeError, isShipError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { migratorFor } from '../../db/migrator.ts';
import { applicationDatabaseName } from '../backups/database-target.ts';
import { formatDurationMs } from '../../config/duration.ts';
import { backupFreshness } from './backup-freshness.ts';
import { databaseSize, largestTables } from './diagnose.ts';
import { formatBytes } from '../../bytes.ts';
import { connectionUsage, listSessions, longTransactions, LONG_TRANSACTION_SECONDS, seconds } from './sessions.ts';
import { slowQueries } from './slow-queries.ts';
import { connectionsBreach, inHours, thresholds } from './thresholds.ts';

/** Mean execution time from which a statement is a finding. */
export const SLOW_QUERY_MEAN_MS = 500;
/** A table whose dead rows reach this share of its live rows (and DEAD_ROWS_MIN) needs a VACUUM. */
export const DEAD_ROWS_RATIO = 0.2;
export const DEAD_ROWS_MIN = 10_000;

export interface DoctorCheck {
  readonly name: string;
  /** `unverified`: the check could not be made (e.g. no pg_stat_statements); `skip`: it does not apply here. */
  readonly status: 'ok' | 'finding' | 'unverified' | 'skip';
  readonly detail: string;
  /** The runbook's remedy, in words. */
  readonly remedy?: string;
  /** The exact commands that apply it. */
  readonly commands?: readonly string[];
}

export interface DoctorReport {
  readonly healthy: boolean;
  /** Every check that applies could be made (none is `unverified`). */
  readonly verified: boolean;
  readonly database: string;
  readonly checks: readonly DoctorCheck[];
}

export async function runDoctor(config: Config, logger: Logger): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  let database: Database | undefined;
  try {
    database = await openDatabase(config, logger, 'shipshape-doctor');
    await database.pool.query('SELECT 1');
  } catch (error) {
    await database?.close().catch(() => undefined);
    checks.push({
      name: 'database reachable',
      status: 'finding',
      detail: `cannot reach the database: ${describeError(error)}`,
      remedy: 'start PostgreSQL or fix DATABASE_URL; nothing else can be checked until then',
      commands: ['pg_isready -d "$DATABASE_URL"'],
    });
    checks.push(await backupCheck(config));
    return { healthy: false, verified: false, database: applicationDatabaseName(config), checks };
  }
  try {
    const db = database;
    const postgres = db.kind === 'postgres';
    checks.push(postgres ? await safely('connection count', () => connectionsCheck(db)) : notApplicable('connection count'));
    checks.push(postgres ? await safely('slow queries', () => slowQueryCheck(db, config)) : notApplicable('slow queries', 'PGlite has no pg_stat_statements'));
    checks.push(await safely('database size', () => sizeCheck(db)));
    checks.push(postgres ? await safely('long transactions', () => longTransactionCheck(db)) : notApplicable('long transactions'));
    checks.push(await safely('maintenance mode', () => maintenanceCheck(db)));
    checks.push(await safely('backup freshness', () => backupCheck(config)));
    checks.push(await safely('pending migrations', () => migrationsCheck(db, logger)));
  } finally {
    await database.close();
  }
  return {
    healthy: checks.every((check) => check.status !== 'finding'),
    verified: checks.every((check) => check.status !== 'unverified'),
    database: applicationDatabaseName(config),
    checks,
  };
}

/** A check that cannot run is itself a finding (a missing table usually means pending migrations). */
async function safely(name: string, check: () => Promise<DoctorCheck>): Promise<DoctorCheck> {
  try {
    return await check();
  } catch (error) {
    const missingTable = error instanceof Error && 'code' in error && error.code === '42P01';
    return {
      name,
      status: 'finding',
      detail: `could not check: ${describeError(error)}`,
      remedy: missingTable ? 'the schema is missing or behind: apply the migrations' : 'look at the error; the database may be misconfigured',
      commands: missingTable ? ['shipshape db migrate status', 'shipshape db migrate up --backup'] : ['shipshape db diagnose'],
    };
  }
}

function notApplicable(name: string, why = 'the embedded database is a single backend shared by every client'): DoctorCheck {
  return { name, status: 'skip', detail: `does not apply: ${why}` };
}

async function connectionsCheck(database: Database): Promise<DoctorCheck> {
  const usage = await connectionUsage(database.pool);
  const detail = `${usage.total} of ${usage.usable} usable connections (max_connections ${usage.maxConnections}, ${usage.reserved} reserved): ${usage.byState.map((s) => `${s.count} ${s.state}`).join(', ')}`;
  if (!connectionsBreach(usage.usedRatio)) return { name: 'connection count', status: 'ok', detail };
  const idle = usage.byState.find((s) => s.state === 'idle')?.count ?? 0;
  return {
    name: 'connection count',
    status: 'finding',
    detail: `${detail} — at ${Math.round(usage.usedRatio * 100)} % of the limit${idle > usage.total / 2 ? '; most are idle, held open by pools' : ''}`,
    remedy:
      'Enable connection pooling: put PgBouncer (or the provider’s pooler, e.g. Supabase’s) in front and point DATABASE_URL at it, and keep DATABASE_POOL_MAX × instances well under the limit',
    commands: [
      'shipshape db diagnose   # connections per client address and application: find the leak',
      'DATABASE_POOL_MAX=5 shipshape serve   # fewer connections per instance',
    ],
  };
}

async function slowQueryCheck(database: Database, config: Config): Promise<DoctorCheck> {
  try {
    const report = await slowQueries(database.pool, { limit: 3, databaseName: applicationDatabaseName(config) });
    const slow = report.queries.filter((q) => q.meanMs >= SLOW_QUERY_MEAN_MS);
    if (slow.length === 0) {
      const top = report.queries[0];
      return {
        name: 'slow queries',
        status: 'ok',
        detail: top === undefined ? 'no statements recorded yet' : `slowest mean ${top.meanMs} ms (under ${SLOW_QUERY_MEAN_MS} ms)`,
      };
    }
    return {
      name: 'slow queries',
      status: 'finding',
      detail: slow.map((q) => `${q.meanMs} ms mean × ${q.calls} calls: ${q.query}`).join('\n'),
      remedy: 'Add indexes, optimize queries: explain the statement (with real values for $1, $2…), then add the index it lacks',
      commands: [
        'shipshape db slow-queries',
        `shipshape db explain "<the statement with values>"`,
        'shipshape db index-advice',
        'shipshape db index <table> <column…>',
      ],
    };
  } catch (error) {
    if (isShipError(error) && error.code === 'SHIP_ERR_PREREQUISITE_FAILED') {
      return {
        name: 'slow queries',
        status: 'unverified',
        detail: `cannot tell: ${error.message.split('\n')[0] ?? ''}`,
        commands: ['shipshape db slow-queries   # shows how to enable pg_stat_statements'],
      };
    }
    throw error;
  }
}

async function sizeCheck(database: Database): Promise<DoctorCheck> {
  const size = await databaseSize(database.pool);
  const tables = await largestTables(database.pool, 20);
  const top = tables[0];
  const detail = `database ${size.name} is ${formatBytes(size.bytes)}${top === undefined ? '' : `; largest table ${top.table} ${formatBytes(top.totalBytes)}`}`;
  const bloated = tables.filter((t) => t.deadRows >= DEAD_ROWS_MIN && t.deadRows >= DEAD_ROWS_RATIO * Math.max(1, t.liveRows));
  if (bloated.length === 0) return { name: 'database size', status: 'ok', detail };
  return {
    name: 'database size',
    status: 'finding',
    detail: `${detail}; dead rows waiting for VACUUM: ${bloated.map((t) => `${t.table} ${t.deadRows} dead / ${t.liveRows} live`).join(', ')}`,
    remedy: 'Archive old data, optimize tables: VACUUM (ANALYZE) the tables with many dead rows (and look for long transactions holding VACUUM back)',
    commands: bloated.map((t) => `psql "$DATABASE_URL" -c 'VACUUM (ANALYZE) ${t.table}'`),
  };
}

async function longTransactionCheck(database: Database): Promise<DoctorCheck> {
  const long = longTransactions(await listSessions(database.pool));
  if (long.length === 0)
    return { name: 'long transactions', status: 'ok', detail: `no transaction open longer than ${formatDurationMs(LONG_TRANSACTION_SECONDS * 1000)}` };
  return {
    name: 'long transactions',
    status: 'finding',
    detail: long
      .map((s) => `${describeConnection(s)} ${s.state ?? '?'}, transaction open ${seconds(s.transactionSeconds)}${s.query ? `: ${s.query}` : ''}`)
      .join('\n'),
    remedy:
      'Long transactions hold locks and keep VACUUM from cleaning up: end them (cancel the statement, or terminate an idle-in-transaction session) and fix the client that leaves them open',
    commands: long.map((s) => `shipshape db kill ${s.pid}${s.state === 'active' ? '' : ' --force'} --yes --yes-irreversible`),
  };
}

async function maintenanceCheck(database: Database): Promise<DoctorCheck> {
  const { maintenance } = await readAppState(database.pool);
  if (!maintenance.enabled) return { name: 'maintenance mode', status: 'ok', detail: 'off: the app is serving users' };
  const since = maintenance.since === null ? '' : ` since ${maintenance.since.toISOString()}`;
  return {
    name: 'maintenance mode',
    status: 'finding',
    detail: `ON${since}, set by ${maintenance.setBy ?? '?'}: "${maintenance.message ?? ''}" — every app route answers 503`,
    remedy: 'If the work it was turned on for is over, re-enable the app',
    commands: ['shipshape emergency enable'],
  };
}

async function backupCheck(config: Config): Promise<DoctorCheck> {
  const backup = await backupFreshness(config);
  switch (backup.state) {
    case 'fresh':
      return {
        name: 'backup freshness',
        status: 'ok',
        detail: `newest verified backup ${backup.id} is ${formatDurationMs(Math.round(backup.ageMs / 60_000) * 60_000)} old`,
      };
    case 'stale':
      return {
        name: 'backup freshness',
        status: 'finding',
        detail: `newest verified backup ${backup.id} is ${formatDurationMs(Math.round(backup.ageMs / 60_000) * 60_000)} old (more than ${inHours(thresholds.backupMaxAgeMs)})`,
        remedy: 'Take a backup now, and check why the scheduled one did not run',
        commands: ['shipshape db backup'],
      };
    case 'none':
      return { name: 'backup freshness', status: 'finding', detail: backup.detail, remedy: 'Take a verified backup', commands: ['shipshape db backup'] };
    case 'unreadable':
      return {
        name: 'backup freshness',
        status: 'finding',
        detail: backup.detail,
        remedy: 'Fix BACKUP_STORAGE_URL or its credentials, then list the backups',
        commands: ['shipshape db backups'],
      };
  }
}

async function migrationsCheck(database: Database, logger: Logger): Promise<DoctorCheck> {
  const pending = await migratorFor(database, logger).pending();
  if (pending.length === 0) return { name: 'pending migrations', status: 'ok', detail: 'the schema is up to date' };
  return {
    name: 'pending migrations',
    status: 'finding',
    detail: `${pending.length} pending: ${pending.map((file) => file.fileName).join(', ')}`,
    remedy: 'Apply them with a verified backup first (the API refuses to start on an old schema)',
    commands: ['shipshape db migrate plan', 'shipshape db migrate up --backup'],
  };
}
