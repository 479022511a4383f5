/**
 * The facts a manifest records about the database at the moment of the dump, and that a
 * restore is checked against: exact row counts of every table, the schema version, and the
 * newest row of the app profile's recent-data table.
 *
 * Counts are exact (`count(*)`), not planner estimates: a restore check that compares
 * estimates proves nothing. They are read in the dump's own snapshot, so they describe
 * exactly what the dump holds even while the application keeps writing.
 */
import type { AppProfile } from '../../app-profile.ts';
import { quoteIdent, quoteQualified } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import type { BackupManifest, TableCount } from './manifest.ts';

/** Runs one query and returns its rows: adapts a pg client, a pool or a PGlite instance. */
export type RowReader = <R>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

interface Queryable {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

export function rowReader(db: Queryable): RowReader {
  return async <R>(sql: string, params: readonly unknown[] = []) => (await db.query(sql, [...params])).rows as R[];
}

export type SchemaVersion = BackupManifest['schemaVersion'];
export type RecentData = NonNullable<BackupManifest['recentData']>;

/** Ordinary tables outside the system schemas, extension-owned ones excepted (pg_dump skips their data too). */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS name
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r'
     AND n.nspname <> 'information_schema'
     AND n.nspname !~ '^pg_'
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
   ORDER BY n.nspname, c.relname`;

/**
 * Exact row counts of every table, ordered by name: the catalog is read, then every table is
 * counted in one statement (an array of scalar subqueries, so it has no column limit), which
 * PostgreSQL may run with parallel workers.
 */
export async function countTables(read: RowReader): Promise<TableCount[]> {
  const tables = await read<{ schema: string; name: string }>(TABLES_SQL);
  if (tables.length === 0) return [];
  const subqueries = tables.map((table) => `(SELECT count(*) FROM ${quoteIdent(table.schema)}.${quoteIdent(table.name)})`);
  const [row] = await read<{ counts: string[] }>(`SELECT ARRAY[${subqueries.join(', ')}]::text[] AS counts`);
  const counts = row?.counts ?? [];
  if (counts.length !== tables.length) {
    throw new ShipError(
      'SHIP_ERR_INTERNAL',
      `Counting rows returned ${counts.length} counts for ${tables.length} tables; this is a Shipshape bug, please report it.`,
    );
  }
  return tables.map((table, index) => ({ name: `${table.schema}.${table.name}`, rows: Number(counts[index]) }));
}

/** Exact row counts of the named tables (`users` means `public.users`); a missing table counts as null. */
export async function countNamedTables(read: RowReader, names: readonly string[]): Promise<Array<{ name: string; rows: number | null }>> {
  const out: Array<{ name: string; rows: number | null }> = [];
  for (const name of names) {
    const qualified = qualifiedName(name);
    const [exists] = await read<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [quoteQualified(qualified)]);
    if (!exists?.found) {
      out.push({ name: qualified, rows: null });
      continue;
    }
    const [row] = await read<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteQualified(qualified)}`);
    out.push({ name: qualified, rows: Number(row?.n ?? 0) });
  }
  return out;
}

/** The newest applied migration per the profile's tracking table. */
export async function readSchemaVersion(read: RowReader, profile: AppProfile): Promise<SchemaVersion> {
  const trackingTable = profile.migrations.trackingTable;
  const [exists] = await read<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [quoteQualified(trackingTable)]);
  if (!exists?.found) return { trackingTable, version: null, name: null };
  const [row] = await read<{ version: string; name: string }>(
    `SELECT version::text AS version, name FROM ${quoteQualified(trackingTable)} ORDER BY version DESC LIMIT 1`,
  );
  return { trackingTable, version: row === undefined ? null : Number(row.version), name: row?.name ?? null };
}

/**
 * The newest value of the recent-data column, as seconds since the epoch in text. Epoch
 * seconds rather than a formatted timestamp, because text output of a timestamp depends on
 * each session's TimeZone and DateStyle, and the restored database is read by another session.
 */
export async function readRecentData(read: RowReader, profile: AppProfile): Promise<RecentData | null> {
  const { table, timestampColumn } = profile.recentData;
  const qualified = qualifiedName(table);
  const [exists] = await read<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [quoteQualified(qualified)]);
  if (!exists?.found) return null;
  const [row] = await read<{ epoch: string | null }>(
    `SELECT extract(epoch FROM max(${quoteIdent(timestampColumn)}))::text AS epoch FROM ${quoteQualified(qualified)}`,
  );
  const epoch = row?.epoch ?? null;
  return { table: qualified, column: timestampColumn, newestEpoch: epoch, newest: epoch === null ? null : new Date(Number(epoch) * 1_000).toISOString() };
}

/** Whether two epoch texts name the same instant (to the microsecond PostgreSQL keeps). */
export function sameInstant(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  return Number(a).toFixed(6) === Number(b).toFixed(6);
}

/** `users` → `public.users`; already-qualified names pass through. */
export function qualifiedName(name: string): string {
  return name.includes('.') ? name : `public.${name}`;
}
