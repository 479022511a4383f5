/**
 * Runbook: "Analyze Slow Queries", step 4 — adding a missing index, and knowing which
 * indexes are likely missing or unused.
 *
 * Names reach SQL only through `quoteIdent`, after a syntax check and a catalog lookup:
 * a table is `name` or `schema.name` as PostgreSQL stores it (unquoted, case-sensitive),
 * columns are existing columns of that table.
 */
import { createHash } from 'node:crypto';
import type { Queryable } from '../../db/pool.ts';
import { quoteIdent } from '../../db/pool.ts';

/** One name as stored in the catalog: letters, digits, _ and $, not starting with a digit or $. */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
/** At most this many key columns (PostgreSQL's INDEX_MAX_KEYS is 32). */
export const MAX_INDEX_COLUMNS = 32;
/** Tables with at least this many live rows count as large for the missing-index heuristic. */
export const LARGE_TABLE_ROWS = 10_000;
/** …and a sequential scan reading at least this many rows on average counts as expensive. */
export const EXPENSIVE_SCAN_ROWS = 1_000;

export interface TableName {
  readonly schema: string;
  readonly name: string;
}

/** `tasks` → public.tasks, `auth.users` → auth.users; undefined when not a plain name. */
export function parseTableName(text: string): TableName | undefined {
  const parts = text.split('.');
  if (parts.length > 2 || parts.some((part) => !IDENTIFIER_PATTERN.test(part))) return undefined;
  return parts.length === 2 ? { schema: parts[0] ?? '', name: parts[1] ?? '' } : { schema: 'public', name: parts[0] ?? '' };
}

export function qualified(table: TableName): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/**
 * The generated index name: `idx_<table>_<col>_<col>` as the runbook names them
 * (`idx_tasks_user_id`), shortened with a hash suffix when it would pass PostgreSQL's
 * 63-byte limit (which would otherwise silently truncate it).
 */
export function indexNameFor(table: string, columns: readonly string[]): string {
  const full = `idx_${table}_${columns.join('_')}`.toLowerCase();
  if (Buffer.byteLength(full) <= 63) return full;
  const hash = createHash('sha256')
    .update(`${table}(${columns.join(',')})`)
    .digest('hex')
    .slice(0, 8);
  return `${full.slice(0, 63 - 9)}_${hash}`;
}

export interface TableFacts {
  readonly oid: number;
  /** r = table, p = partitioned table, … */
  readonly kind: string;
  readonly columns: readonly string[];
  readonly liveRows: number;
  readonly bytes: number;
}

/** The table's kind, columns and size, or undefined when there is no such table. */
export async function tableFacts(db: Queryable, table: TableName): Promise<TableFacts | undefined> {
  const { rows } = await db.query<{ oid: number; relkind: string; columns: string[] | null; live: number; bytes: number }>(
    `SELECT c.oid::int AS oid, c.relkind::text AS relkind,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            coalesce(s.n_live_tup, 0)::float8 AS live, pg_total_relation_size(c.oid)::float8 AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
      WHERE n.nspname = $1::text AND c.relname = $2::text`,
    [table.schema, table.name],
  );
  const row = rows[0];
  return row === undefined ? undefined : { oid: row.oid, kind: row.relkind, columns: row.columns ?? [], liveRows: row.live, bytes: row.bytes };
}

export interface IndexFacts {
  readonly name: string;
  readonly valid: boolean;
  readonly ready: boolean;
  readonly table: string;
  readonly bytes: number;
  /** Key columns in order (empty entries for expressions). */
  readonly columns: readonly string[];
  readonly definition: string;
}

/** The index of that name in the schema, or undefined. */
export async function findIndex(db: Queryable, schema: string, name: string): Promise<IndexFacts | undefined> {
  const { rows } = await db.query<{
    name: string;
    valid: boolean;
    ready: boolean;
    table_name: string;
    bytes: number;
    columns: string[] | null;
    definition: string;
  }>(
    `SELECT i.relname AS name, x.indisvalid AS valid, x.indisready AS ready, t.relname AS table_name,
            pg_relation_size(i.oid)::float8 AS bytes, pg_get_indexdef(i.oid) AS definition,
            (SELECT array_agg(coalesce(a.attname::text, '') ORDER BY k.ord)
               FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS columns
       FROM pg_class i JOIN pg_namespace n ON n.oid = i.relnamespace
       JOIN pg_index x ON x.indexrelid = i.oid JOIN pg_class t ON t.oid = x.indrelid
      WHERE n.nspname = $1::text AND i.relname = $2::text AND i.relkind IN ('i', 'I')`,
    [schema, name],
  );
  const row = rows[0];
  return row === undefined
    ? undefined
    : { name: row.name, valid: row.valid, ready: row.ready, table: row.table_name, bytes: row.bytes, columns: row.columns ?? [], definition: row.definition };
}

/** A valid index on the table whose leading key columns are exactly `columns` (it already serves those lookups). */
export async function coveringIndex(db: Queryable, table: TableName, columns: readonly string[]): Promise<string | undefined> {
  const { rows } = await db.query<{ name: string; columns: string[] | null }>(
    `SELECT i.relname AS name,
            (SELECT array_agg(coalesce(a.attname::text, '') ORDER BY k.ord)
               FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) AS columns
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1::text AND t.relname = $2::text AND x.indisvalid AND x.indpred IS NULL AND i.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')`,
    [table.schema, table.name],
  );
  return rows.find((row) => columns.every((column, i) => (row.columns ?? [])[i] === column))?.name;
}

export interface MissingIndexHint {
  readonly table: string;
  readonly liveRows: number;
  readonly seqScans: number;
  readonly indexScans: number;
  /** Rows read per sequential scan, on average. */
  readonly rowsPerSeqScan: number;
  readonly bytes: number;
}

export interface UnusedIndex {
  readonly index: string;
  readonly table: string;
  readonly bytes: number;
  readonly definition: string;
}

export interface IndexAdvice {
  /** Since when the counters run (pg_stat_database.stats_reset; null = since the cluster was created). */
  readonly statsSince: string | null;
  readonly likelyMissing: readonly MissingIndexHint[];
  readonly unused: readonly UnusedIndex[];
}

/**
 * Large tables read mostly by sequential scans (likely missing an index), and indexes never
 * scanned since the statistics were reset (excluding unique and primary-key indexes, which
 * enforce constraints, and those backing constraints).
 */
export async function indexAdvice(db: Queryable, options: { minRows?: number; minRowsPerScan?: number } = {}): Promise<IndexAdvice> {
  const since = await db.query<{ since: Date | null }>('SELECT stats_reset AS since FROM pg_stat_database WHERE datname = current_database()');
  const missing = await db.query<{ table_name: string; live: number; seq: number; idx: number; per_scan: number; bytes: number }>(
    `SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS table_name, n_live_tup::float8 AS live,
            seq_scan::float8 AS seq, coalesce(idx_scan, 0)::float8 AS idx,
            (seq_tup_read::float8 / greatest(seq_scan, 1)) AS per_scan, pg_total_relation_size(relid)::float8 AS bytes
       FROM pg_stat_user_tables
      WHERE n_live_tup >= $1::bigint AND seq_scan > coalesce(idx_scan, 0)
        AND seq_tup_read::float8 / greatest(seq_scan, 1) >= $2::float8
      ORDER BY seq_tup_read DESC
      LIMIT 20`,
    [options.minRows ?? LARGE_TABLE_ROWS, options.minRowsPerScan ?? EXPENSIVE_SCAN_ROWS],
  );
  const unused = await db.query<{ index_name: string; table_name: string; bytes: number; definition: string }>(
    `SELECT quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname) AS index_name,
            quote_ident(s.schemaname) || '.' || quote_ident(s.relname) AS table_name,
            pg_relation_size(s.indexrelid)::float8 AS bytes, pg_get_indexdef(s.indexrelid) AS definition
       FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid
      WHERE s.idx_scan = 0 AND NOT x.indisunique AND NOT x.indisprimary
        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
      ORDER BY pg_relation_size(s.indexrelid) DESC, 1
      LIMIT 50`,
  );
  return {
    statsSince: since.rows[0]?.since?.toISOString() ?? null,
    likelyMissing: missing.rows.map((row) => ({
      table: row.table_name,
      liveRows: row.live,
      seqScans: row.seq,
      indexScans: row.idx,
      rowsPerSeqScan: Math.round(row.per_scan),
      bytes: row.bytes,
    })),
    unused: unused.rows.map((row) => ({ index: row.index_name, table: row.table_name, bytes: row.bytes, definition: row.definition })),
  };
}
