/**
 * Runbook: "Investigate High Memory Usage" as one report: database and largest tables'
 * sizes, connections per client address and application (connection leaks), long-running
 * and idle-in-transaction sessions, who blocks whom, and the cache hit ratio.
 *
 * On the embedded database the session sections do not apply (one backend, shared by every
 * client); sizes, the cache hit ratio and index advice still do.
 */
import type { Database } from '../../db/index.ts';
import type { Queryable } from '../../db/pool.ts';
import { indexAdvice, type IndexAdvice } from './indexes.ts';
import {
  blocking,
  connectionsByClient,
  connectionUsage,
  idleInTransaction,
  listSessions,
  longRunning,
  type BlockingReport,
  type ConnectionUsage,
  type Session,
} from './sessions.ts';

/** Below this share of reads served from memory, an OLTP database is short of shared_buffers (or reads too much). */
export const CACHE_HIT_TARGET = 0.99;

export interface TableSize {
  readonly table: string;
  readonly totalBytes: number;
  readonly tableBytes: number;
  readonly indexBytes: number;
  readonly liveRows: number;
  readonly deadRows: number;
}

export interface Diagnosis {
  readonly database: { readonly name: string; readonly bytes: number; readonly kind: Database['kind'] };
  readonly largestTables: readonly TableSize[];
  /** Share of block reads served from shared buffers since the statistics were reset; null before any read. */
  readonly cacheHitRatio: number | null;
  /** Null on the embedded database. */
  readonly sessions: {
    readonly usage: ConnectionUsage;
    readonly byClient: ReadonlyArray<{ clientAddr: string; applicationName: string; count: number; idle: number }>;
    readonly longRunning: readonly Session[];
    readonly idleInTransaction: readonly Session[];
    readonly blocking: BlockingReport;
  } | null;
  readonly indexes: IndexAdvice;
}

export async function databaseSize(db: Queryable): Promise<{ name: string; bytes: number }> {
  const { rows } = await db.query<{ name: string; bytes: number }>('SELECT current_database() AS name, pg_database_size(current_database())::float8 AS bytes');
  return { name: rows[0]?.name ?? '?', bytes: rows[0]?.bytes ?? 0 };
}

export async function largestTables(db: Queryable, limit = 10): Promise<TableSize[]> {
  const { rows } = await db.query<{ table_name: string; total: number; heap: number; indexes: number; live: number; dead: number }>(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS table_name,
            pg_total_relation_size(c.oid)::float8 AS total, pg_table_size(c.oid)::float8 AS heap,
            pg_indexes_size(c.oid)::float8 AS indexes,
            coalesce(s.n_live_tup, 0)::float8 AS live, coalesce(s.n_dead_tup, 0)::float8 AS dead
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
      WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      ORDER BY pg_total_relation_size(c.oid) DESC, 1
      LIMIT $1::int`,
    [limit],
  );
  return rows.map((row) => ({
    table: row.table_name,
    totalBytes: row.total,
    tableBytes: row.heap,
    indexBytes: row.indexes,
    liveRows: row.live,
    deadRows: row.dead,
  }));
}

export async function cacheHitRatio(db: Queryable): Promise<number | null> {
  const { rows } = await db.query<{ hit: number; read: number }>(
    'SELECT blks_hit::float8 AS hit, blks_read::float8 AS read FROM pg_stat_database WHERE datname = current_database()',
  );
  const row = rows[0];
  if (row === undefined || row.hit + row.read === 0) return null;
  return Math.round((row.hit / (row.hit + row.read)) * 10_000) / 10_000;
}

export async function diagnose(database: Database): Promise<Diagnosis> {
  const db = database.pool;
  const size = await databaseSize(db);
  const tables = await largestTables(db);
  const ratio = await cacheHitRatio(db);
  const indexes = await indexAdvice(db);
  let sessions: Diagnosis['sessions'] = null;
  if (database.kind === 'postgres') {
    const all = await listSessions(db);
    sessions = {
      usage: await connectionUsage(db),
      byClient: await connectionsByClient(db),
      longRunning: longRunning(all, 0).slice(0, 10),
      idleInTransaction: idleInTransaction(all),
      blocking: blocking(all),
    };
  }
  return { database: { ...size, kind: database.kind }, largestTables: tables, cacheHitRatio: ratio, sessions, indexes };
}
