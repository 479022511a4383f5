/**
 * Runbook: "Analyze Slow Queries", step 2 — the top statements by mean time from
 * pg_stat_statements.
 *
 * The runbook's columns (`total_time`, `mean_time`, `max_time`) were renamed in PostgreSQL 13
 * (`total_exec_time`, `mean_exec_time`, `max_exec_time`, with planning time counted apart), so
 * the names are picked from `server_version_num`. The view only has data when the library is
 * loaded at server start (shared_preload_libraries) *and* the extension is created in the
 * database; when either is missing the answer says which, and exactly how to enable it.
 */
import type { Queryable } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import { quoteIdent } from '../../db/pool.ts';
import { maskLiterals, oneLine } from './sql-text.ts';

const QUERY_TEXT_MAX = 200;

export interface SlowQuery {
  readonly queryId: string | null;
  /** Normalised by pg_stat_statements ($1 for constants); remaining literals masked. */
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly maxMs: number;
  readonly rows: number;
  /** Share of the statement's page reads served from shared buffers, 0..1; null before any read. */
  readonly cacheHitRatio: number | null;
}

export interface SlowQueryReport {
  readonly serverVersionNum: number;
  /** The columns used, as named on this server. */
  readonly columns: { readonly total: string; readonly mean: string; readonly max: string };
  readonly schema: string;
  /** Statements slower than this (log_min_duration_statement) are logged; null when logging is off (-1). */
  readonly logMinDurationMs: number | null;
  readonly queries: readonly SlowQuery[];
}

export interface StatStatementsStatus {
  readonly serverVersionNum: number;
  /** The extension's schema in this database, or null when it was never created here. */
  readonly schema: string | null;
  /** Whether the library is in shared_preload_libraries; null when this role may not see the setting. */
  readonly preloaded: boolean | null;
}

/** Column names for pg_stat_statements on a server of this version. */
export function statementColumns(serverVersionNum: number): SlowQueryReport['columns'] {
  return serverVersionNum >= 130_000
    ? { total: 'total_exec_time', mean: 'mean_exec_time', max: 'max_exec_time' }
    : { total: 'total_time', mean: 'mean_time', max: 'max_time' };
}

export async function statStatementsStatus(db: Queryable): Promise<StatStatementsStatus> {
  const { rows } = await db.query<{ version: number; schema: string | null; preload: string | null }>(
    `SELECT current_setting('server_version_num')::int AS version,
            (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements') AS schema,
            (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload`,
  );
  const row = rows[0];
  // pg_settings hides superuser-only settings from roles without pg_read_all_settings (no row).
  const preloaded =
    row?.preload === null || row?.preload === undefined
      ? null
      : row.preload
          .split(',')
          .map((lib) => lib.trim().replace(/^"|"$/g, ''))
          .includes('pg_stat_statements');
  return { serverVersionNum: row?.version ?? 0, schema: row?.schema ?? null, preloaded };
}

/** The exact steps to make pg_stat_statements work here, for the message and the README. */
export function enableInstructions(status: Pick<StatStatementsStatus, 'preloaded' | 'schema'>, databaseName: string): string {
  const create = `CREATE EXTENSION IF NOT EXISTS pg_stat_statements;   -- as a superuser (or the database owner on 13+), in database ${databaseName}`;
  if (status.preloaded === true && status.schema === null) return `Run:\n  ${create}`;
  return [
    '1. Load the library at server start: add pg_stat_statements to shared_preload_libraries, keeping what is there:',
    "     SHOW shared_preload_libraries;                                     -- e.g. '' or 'auto_explain'",
    "     ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';  -- or 'auto_explain,pg_stat_statements'",
    '   (or edit postgresql.conf; on RDS/Cloud SQL/Supabase use the parameter group or dashboard, where it is often on already)',
    '2. Restart PostgreSQL (a reload is not enough), e.g.: sudo systemctl restart postgresql',
    `3. ${create}`,
  ].join('\n');
}

/**
 * The top `limit` statements of the application database by mean execution time. Throws
 * SHIP_ERR_PREREQUISITE_FAILED (exit 3) with the enable instructions when the view is unusable.
 */
export async function slowQueries(db: Queryable, options: { limit: number; databaseName: string }): Promise<SlowQueryReport> {
  const status = await statStatementsStatus(db);
  if (status.schema === null) {
    throw new ShipError(
      'SHIP_ERR_PREREQUISITE_FAILED',
      `pg_stat_statements is not installed in database ${options.databaseName}${status.preloaded === false ? ' and not in shared_preload_libraries' : ''}, so there are no query statistics to read.\n${enableInstructions(status, options.databaseName)}`,
    );
  }
  const columns = statementColumns(status.serverVersionNum);
  const view = `${quoteIdent(status.schema)}.pg_stat_statements`;
  let rows: Array<{
    queryid: string | null;
    query: string | null;
    calls: number;
    total: number;
    mean: number;
    max: number;
    rows: number;
    hit: number;
    read: number;
  }>;
  try {
    // Column names come from the table above, never from input.
    ({ rows } = await db.query(
      `SELECT queryid::text AS queryid, query, calls::float8 AS calls, ${columns.total}::float8 AS total, ${columns.mean}::float8 AS mean,
              ${columns.max}::float8 AS max, rows::float8 AS rows, shared_blks_hit::float8 AS hit, shared_blks_read::float8 AS read
         FROM ${view}
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY ${columns.mean} DESC
        LIMIT $1::int`,
      [options.limit],
    ));
  } catch (error) {
    // 55000: "pg_stat_statements must be loaded via shared_preload_libraries"
    if (error instanceof Error && 'code' in error && error.code === '55000') {
      throw new ShipError(
        'SHIP_ERR_PREREQUISITE_FAILED',
        `pg_stat_statements is installed in database ${options.databaseName} but the server did not load it at start (it is not in shared_preload_libraries), so it collects nothing.\n${enableInstructions({ preloaded: false, schema: status.schema }, options.databaseName)}`,
      );
    }
    throw error;
  }
  const log = await db.query<{ value: number }>("SELECT current_setting('log_min_duration_statement')::int AS value");
  const logMin = log.rows[0]?.value ?? -1;
  return {
    serverVersionNum: status.serverVersionNum,
    columns,
    schema: status.schema,
    logMinDurationMs: logMin < 0 ? null : logMin,
    queries: rows.map((row) => ({
      queryId: row.queryid,
      query: oneLine(maskLiterals(row.query ?? '<insufficient privilege>'), QUERY_TEXT_MAX),
      calls: row.calls,
      totalMs: round(row.total),
      meanMs: round(row.mean),
      maxMs: round(row.max),
      rows: row.rows,
      cacheHitRatio: row.hit + row.read === 0 ? null : Math.round((row.hit / (row.hit + row.read)) * 10_000) / 10_000,
    })),
  };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
